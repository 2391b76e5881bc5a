"""Ingest (``POST …/texts``) and predict (``POST …/predict``) read their bodies alike: the same
content types, the same limits on bytes and on records, the same error codes, the same ids."""

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

ROUTES = ["texts", "predict"]


def post(
    client: TestClient, task: str, route: str, records: list[Any], content_type: str | None = "application/json", **headers: str
) -> Any:
    """``records`` sent as each route takes them: ingest a bare array, predict ``{"records": […]}``."""
    body = json.dumps(records if route == "texts" else {"records": records}).encode()
    if content_type is not None:
        headers["content-type"] = content_type
    return client.post(f"/v1/tasks/{task}/{route}", content=body, headers=headers)


@pytest.mark.parametrize("route", ROUTES)
def test_more_records_than_the_limit_is_413_too_many_records(client: TestClient, task_name: str, route: str) -> None:
    answer = post(client, task_name, route, [{"text": f"text {i}"} for i in range(51)])  # the client fixture's limit is 50
    assert answer.status_code == 413, answer.text
    body = answer.json()
    assert (body["error"], body["index"], body["limit"]) == ("too_many_records", 50, 50)
    assert body["detail"].startswith("51 records, over the limit of 50 per request")
    assert client.get(f"/v1/tasks/{task_name}").json()["texts"] == 0


def test_predict_counts_bare_texts_against_the_same_limit(client: TestClient, task_name: str) -> None:
    answer = client.post(f"/v1/tasks/{task_name}/predict", json={"texts": [f"text {i}" for i in range(51)]})
    assert answer.status_code == 413, answer.text
    assert (answer.json()["error"], answer.json()["index"], answer.json()["limit"]) == ("too_many_records", 50, 50)
    assert answer.json()["detail"].startswith("51 texts, over the limit of 50 per request")


@pytest.mark.parametrize("route", ROUTES)
def test_a_body_over_the_byte_limit_is_413_body_too_large(client: TestClient, task_name: str, route: str) -> None:
    answer = post(client, task_name, route, [{"text": "y" * 90}] * 300)  # the client fixture's limit is 20,000 bytes
    assert (answer.status_code, answer.json()["error"]) == (413, "body_too_large"), answer.text


@pytest.mark.parametrize("route", ROUTES)
def test_a_content_length_of_thousands_of_digits_is_no_500(client: TestClient, task_name: str, route: str) -> None:
    # int() refuses 4,301 digits; the bytes that came are what counts
    answer = post(client, task_name, route, [{"text": "fine"}], **{"content-length": "9" * 5000})
    assert (answer.status_code, answer.json().get("error")) == ((200, None) if route == "texts" else (409, "no_champion")), answer.text


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/xml"])
def test_a_body_not_sent_as_json_is_415(client: TestClient, task_name: str, route: str, content_type: str | None) -> None:
    answer = post(client, task_name, route, [{"text": "fine"}], content_type=content_type)
    assert answer.status_code == 415, answer.text
    assert answer.json()["error"] == "unsupported_media_type"
    assert "application/json" in answer.json()["detail"]
    assert client.get(f"/v1/tasks/{task_name}").json()["texts"] == 0


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON", "application/vnd.driftloop+json"])
def test_json_content_types_are_read(client: TestClient, task_name: str, route: str, content_type: str) -> None:
    answer = post(client, task_name, route, [{"text": "fine"}], content_type=content_type)
    # ingest stores it; predict reads it and finds no model to answer with yet
    assert (answer.status_code, answer.json().get("error")) == ((200, None) if route == "texts" else (409, "no_champion")), answer.text


@pytest.mark.parametrize(("value", "kind"), [(1.5, "a float"), (2.0, "a float"), (True, "a boolean"), ([1], "an array"), ({"n": 1}, "an object")])
def test_an_id_that_is_neither_a_string_nor_an_integer_is_refused_saying_what_is_accepted(
    client: TestClient, task_name: str, value: object, kind: str
) -> None:
    said = f'"id" must be a string or an integer, got {kind}'
    ingested = post(client, task_name, "texts", [{"text": "fine", "id": value}])
    assert ingested.status_code == 200, ingested.text
    assert ingested.json()["results"][0]["status"] == "rejected" and ingested.json()["results"][0]["reason"] == said
    predicted = post(client, task_name, "predict", [{"text": "fine", "id": value}])
    assert (predicted.status_code, predicted.json()["detail"]) == (422, f"records[0]: {said}")


def test_an_integer_id_is_its_decimal_string(client: TestClient, task_name: str) -> None:
    ingested = post(client, task_name, "texts", [{"text": "numbered", "id": 12345678901234567890}])
    assert ingested.json()["results"][0]["id"] == "12345678901234567890"
    again = post(client, task_name, "texts", [{"text": "numbered", "id": "12345678901234567890"}])
    assert again.json()["results"][0]["status"] == "duplicate"
    assert post(client, task_name, "predict", [{"text": "numbered", "id": 7}]).json()["error"] == "no_champion"  # the body was taken
