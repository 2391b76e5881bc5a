"""/openapi.json stands alone: every ``$ref`` in it names something the document defines, so a
client generator or validator can read it without guessing."""

from typing import Any

from fastapi.testclient import TestClient


def refs(value: Any) -> list[str]:
    if isinstance(value, dict):
        own = [value["$ref"]] if isinstance(value.get("$ref"), str) else []
        return own + [ref for item in value.values() for ref in refs(item)]
    if isinstance(value, list):
        return [ref for item in value for ref in refs(item)]
    return []


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), f"{ref} points outside the document"
    found: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")  # JSON pointer escapes
        assert isinstance(found, dict) and part in found, f"{ref}: nothing at {part!r}"
        found = found[part]
    return found


def test_every_ref_in_the_spec_resolves_within_it(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    found = refs(document)
    # the routes that read their bodies themselves describe them with refs too
    assert "#/components/schemas/RecordIn" in found and "#/components/schemas/ErrorBody" in found
    for ref in sorted(set(found)):
        assert isinstance(resolve(document, ref), dict), ref


def test_a_self_read_body_is_described_in_the_spec(client: TestClient) -> None:
    document = client.get("/openapi.json").json()
    texts = document["paths"]["/v1/tasks/{task}/texts"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert texts["type"] == "array" and resolve(document, texts["items"]["$ref"])["properties"]["text"]["type"] == "string"
    predict = document["paths"]["/v1/tasks/{task}/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert set(resolve(document, predict["$ref"])["properties"]) == {"texts", "records"}
    record_id = resolve(document, "#/components/schemas/RecordIn")["properties"]["id"]
    assert "a string or an integer" in record_id["description"]
