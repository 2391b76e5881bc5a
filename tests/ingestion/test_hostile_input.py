"""Values that used to crash ingest or lose the valid records around them: a lone surrogate, an
escaped NUL, nesting 10,000 deep, an integer of 5,001 digits, NaN and Infinity. Each is now a
rejection of its own record, with a reason, the same on SQLite and PostgreSQL, over the CLI and
over HTTP; the records around it are stored."""

import json
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, func, select

from driftloop.platform.api.app import create_app
from driftloop.platform.config import Settings
from driftloop.platform.ingestion.decoding import MalformedBody, decode, decode_array
from driftloop.platform.ingestion.records import Record, Rejection, parse_record
from driftloop.platform.ingestion.service import Status, ingest
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.models import Task, TextRecord
from driftloop.platform.tasks import create_task
from tests.api_keys import admin_client
from tests.conftest import run_cli, store_env

DEEP = '{"a":' * 10_000 + "1" + "}" * 10_000

# (raw JSON of the bad record, the rejection code, words its reason must contain)
HOSTILE = [
    ('{"text": "a\\ud800b", "id": "s1"}', "invalid_text", "lone surrogate (U+D800"),
    ('{"text": "fine", "id": "\\udfff"}', "bad_id", "lone surrogate (U+DFFF"),
    ('{"text": "fine", "meta": {"k": "x\\ud800"}}', "bad_meta", "meta.k contains a lone surrogate"),
    ('{"text": "fine", "meta": {"\\ud800": 1}}', "bad_meta", "a key of meta contains a lone surrogate"),
    ('{"text": "a\\u0000b", "id": "n1"}', "invalid_text", "NUL character (U+0000) at character 2"),
    ('{"text": "fine", "id": "n\\u0000"}', "bad_id", "NUL character"),
    ('{"text": "fine", "meta": {"k": ["\\u0000"]}}', "bad_meta", "meta.k[0] contains a NUL"),
    ('{"text": "deep", "meta": ' + DEEP + "}", "too_deep", "nested too deeply"),
    ('{"text": "less deep", "meta": ' + '{"a":' * 40 + "1" + "}" * 40 + "}", "too_deep", "more than 32 levels"),
    ('{"text": "big id", "id": ' + "9" * 5001 + "}", "bad_id", "an integer of 5001 digits"),
    ('{"text": "big meta", "meta": {"n": -' + "9" * 5001 + "}}", "bad_meta", "meta.n is an integer of 5001 digits"),
    ('{"text": "nan", "meta": {"x": NaN}}', "bad_meta", "NaN, which is not a JSON number"),
    ('{"text": "inf", "meta": {"x": 1e999}}', "bad_meta", "out of range"),
]


def _valid(i: int) -> str:
    return json.dumps({"text": f"valid neighbour {i}", "id": f"v{i}"})


def _count(engine: Engine, task: str) -> int:
    with session_scope(engine) as session:
        return session.scalar(select(func.count()).select_from(TextRecord).join(Task).where(Task.name == task))


def test_cli_rejects_each_bad_line_alone_and_stores_its_neighbours(engine: Engine, task_name: str, tmp_path: Path) -> None:
    lines = []
    for i, (bad, _, _) in enumerate(HOSTILE):
        lines += [_valid(i), bad]
    source = tmp_path / "hostile.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8", errors="surrogatepass")

    result = run_cli("ingest", task_name, str(source), env=store_env(engine, tmp_path))

    assert result.returncode == 3, result.stderr.decode()
    assert result.stdout.decode().strip() == f"ingested {len(HOSTILE)}, duplicates 0, rejected {len(HOSTILE)}"
    stderr = result.stderr.decode()
    for i, (_, _, words) in enumerate(HOSTILE):
        assert f"line {2 * i + 2}: " in stderr and words in stderr, words
    assert "Traceback" not in stderr
    assert _count(engine, task_name) == len(HOSTILE)


def test_http_rejects_each_bad_record_alone_and_stores_its_neighbours(engine: Engine, task_name: str, tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, database_url=engine.url.render_as_string(hide_password=False))
    body = "[" + ",".join(f"{_valid(i)},{bad}" for i, (bad, _, _) in enumerate(HOSTILE)) + "]"
    with admin_client(create_app(settings), raise_server_exceptions=False) as client:
        response = client.post(f"/v1/tasks/{task_name}/texts", content=body.encode("utf-8"), headers={"content-type": "application/json"})

    assert response.status_code == 200, response.text
    payload = response.json()
    assert (payload["stored"], payload["rejected"]) == (len(HOSTILE), len(HOSTILE))
    for i, (_, code, words) in enumerate(HOSTILE):
        outcome = payload["results"][2 * i + 1]
        assert (outcome["index"], outcome["status"], outcome["error"]) == (2 * i + 1, "rejected", code)
        assert words in outcome["reason"]
    assert _count(engine, task_name) == len(HOSTILE)


def test_a_deep_record_in_a_body_is_found_without_losing_strings_that_look_like_structure() -> None:
    body = '[{"text": "a ] } , [ { \\" quoted"}, ' + DEEP + ', {"text": "last"}]'
    first, deep, last = decode_array(body.encode())
    assert first == {"text": 'a ] } , [ { " quoted'}
    assert isinstance(deep, Rejection) and deep.code == "too_deep"
    assert last == {"text": "last"}


@pytest.mark.parametrize("body", ["[" + DEEP + ",]", "[" + DEEP + "] x", "[" + DEEP, "{" + DEEP])
def test_a_broken_body_with_a_deep_record_is_still_refused_whole(body: str) -> None:
    with pytest.raises(MalformedBody):
        decode_array(body.encode())


# Arbitrary JSON values, with the strings and numbers that used to break things mixed in.
_strings = st.text() | st.sampled_from(["\x00", "a\x00b", "\ud800", "x\udfff", "", " "])
HUGE = "<an integer of 5001 digits>"  # a marker: such an int can't even be repr()'d by Hypothesis
_numbers = st.integers() | st.floats(allow_nan=True, allow_infinity=True) | st.just(HUGE)
_leaves = st.none() | st.booleans() | _numbers | _strings
_json = st.recursive(_leaves, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_strings, inner, max_size=4), max_leaves=20)
_records = st.one_of(
    _json,
    st.fixed_dictionaries({"text": _strings}, optional={"id": _json, "ts": _json | st.datetimes().map(str), "meta": _json}),
)


def _as_document(value: object) -> str:
    """``value`` written as a producer might: lone surrogates as escapes, NaN and Infinity as
    literals, and a huge integer as 5,001 digits."""
    if value is HUGE:
        return "9" * 5001
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{_as_document(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_as_document(v) for v in value) + "]"
    return json.dumps(value, allow_nan=True)


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(raw=_records)
def test_validator_stores_or_rejects_anything_with_a_reason_never_raises(raw: object) -> None:
    decoded = decode(_as_document(raw))
    result = decoded if isinstance(decoded, Rejection) else parse_record(decoded, max_text_chars=1000)
    if isinstance(result, Rejection):
        assert result.code and result.reason
        result.reason.encode("utf-8")  # a reason can always be printed and sent back
        return
    assert isinstance(result, Record)
    # What is accepted can be written by both backends: valid UTF-8, no NUL, finite JSON.
    for value in (result.text, result.external_id):
        value.encode("utf-8")
        assert "\x00" not in value
    if result.meta is not None:
        encoded = json.dumps(result.meta, allow_nan=False)
        encoded.encode("utf-8")
        assert "\\u0000" not in encoded


@settings(max_examples=25, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(bad=st.lists(_records, min_size=1, max_size=5))
def test_valid_neighbours_are_always_stored(postgresql_engine: Engine, bad: list[object]) -> None:
    name = f"h-{uuid.uuid4().hex[:10]}"
    with session_scope(postgresql_engine) as session:
        create_task(session, name, ["a"])
    entries: list[tuple[int, object]] = []
    for i, raw in enumerate(bad):
        entries.append((2 * i, {"text": f"neighbour {i}", "id": f"{name}-{i}"}))
        entries.append((2 * i + 1, decode(_as_document(raw))))
    outcomes = [o for batch in ingest(postgresql_engine, name, entries, max_text_chars=1000, batch_size=4) for o in batch]
    assert [o.position for o in outcomes] == list(range(2 * len(bad)))
    assert all(o.status is Status.stored for o in outcomes[::2])
