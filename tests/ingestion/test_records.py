from datetime import UTC, datetime

import pytest

from driftloop.platform.ingestion.records import DERIVED_ID_PREFIX, Record, Rejection, content_hash, parse_record


def parse(raw: object) -> Record | Rejection:
    return parse_record(raw, max_text_chars=50)


@pytest.mark.parametrize(
    ("raw", "code", "reason"),
    [
        (["text"], "not_object", "expected a JSON object, got an array"),
        ("just a string", "not_object", "got a string"),
        ({"id": "1"}, "missing_text", 'missing "text"'),
        ({"text": None}, "missing_text", '"text" is null'),
        ({"text": ""}, "empty_text", '"text" is empty'),
        ({"text": "  \n\t "}, "empty_text", '"text" is empty'),
        ({"text": 42}, "text_not_string", '"text" must be a string, got a number'),
        ({"text": ["a"]}, "text_not_string", "got an array"),
        ({"text": "x" * 51}, "text_too_long", "51 characters, over the limit of 50"),
        ({"text": "ok", "ts": "yesterday"}, "bad_timestamp", "not an ISO-8601 timestamp: 'yesterday'"),
        ({"text": "ok", "ts": 1700000000}, "bad_timestamp", "must be an ISO-8601 string, got a number"),
        ({"text": "ok", "id": ""}, "bad_id", '"id" is empty: give a non-empty string or an integer'),
        ({"text": "ok", "id": "  "}, "bad_id", '"id" is empty'),
        ({"text": "ok", "id": True}, "bad_id", '"id" must be a string or an integer, got a boolean'),
        ({"text": "ok", "id": 1.5}, "bad_id", '"id" must be a string or an integer, got a float'),
        ({"text": "ok", "id": 3.0}, "bad_id", '"id" must be a string or an integer, got a float'),
        ({"text": "ok", "id": [3]}, "bad_id", '"id" must be a string or an integer, got an array'),
        ({"text": "ok", "id": "x" * 300}, "bad_id", "over the limit"),
        ({"text": "ok", "id": "sha256:abc"}, "bad_id", "prefix marks content ids"),
        ({"text": "ok", "meta": [1]}, "bad_meta", '"meta" must be an object'),
    ],
)
def test_each_bad_record_is_rejected_with_its_reason(raw: object, code: str, reason: str) -> None:
    result = parse(raw)
    assert isinstance(result, Rejection)
    assert result.code == code
    assert reason in result.reason


def test_a_valid_record_keeps_its_fields() -> None:
    result = parse({"text": "Flu season starts", "id": "t1", "ts": "2014-03-01T10:00:00+02:00", "meta": {"src": "x"}})
    assert isinstance(result, Record)
    assert (result.external_id, result.text, result.meta, result.has_given_id) == ("t1", "Flu season starts", {"src": "x"}, True)
    assert result.event_time == datetime(2014, 3, 1, 8, 0, tzinfo=UTC)


def test_naive_and_zulu_timestamps_are_utc() -> None:
    assert parse({"text": "a", "ts": "2014-03-01T10:00:00"}).event_time == datetime(2014, 3, 1, 10, tzinfo=UTC)
    assert parse({"text": "a", "ts": "2014-03-01T10:00:00Z"}).event_time == datetime(2014, 3, 1, 10, tzinfo=UTC)


def test_integer_ids_are_their_decimal_string() -> None:
    assert parse({"text": "a", "id": 1234}).external_id == "1234"
    assert parse({"text": "a", "id": -7}).external_id == "-7"
    assert parse({"text": "a", "id": 0}).external_id == "0"


def test_records_without_id_get_a_content_id() -> None:
    result = parse({"text": "same words"})
    assert result.external_id == DERIVED_ID_PREFIX + content_hash("same words").hex()
    assert not result.has_given_id


def test_content_hash_ignores_outer_whitespace_and_unicode_normal_form() -> None:
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    assert content_hash(composed) == content_hash(f"  {decomposed}\n")
    assert content_hash("cafe") != content_hash(composed)
