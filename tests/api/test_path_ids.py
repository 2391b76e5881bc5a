"""Numeric ids in paths (jobs, model versions, schedules): whatever text stands where a number
should, of any length, the answer is 422 with the usual JSON error, never a 500. The routes are
taken from the app's own spec, so a route added later is checked by itself."""

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.api_keys import make_key

NOT_ROW_NUMBERS = [
    "9" * 4301,  # one digit over what Python converts from text
    "1" * 20_000,
    "²",  # a digit to str.isdigit(), not to int()
    "abc",
    "1.5",
    "1e3",
    "-1",
    "0",
    "2147483648",  # over the 32-bit columns
]


def numeric_path_routes(client: TestClient) -> list[tuple[str, str, str]]:
    spec = client.app.openapi()  # type: ignore[attr-defined]
    return [
        (method.upper(), path, parameter["name"])
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "path" and parameter["schema"].get("type") == "integer"
    ]


@pytest.mark.parametrize("bound", [False, True], ids=["admin key", "key bound to the task"])
def test_a_path_id_that_is_not_a_row_number_is_422_on_every_route(client: TestClient, engine: Engine, task_name: str, bound: bool) -> None:
    routes = numeric_path_routes(client)
    assert {path for _, path, _ in routes} >= {"/v1/jobs/{job_id}", "/v1/tasks/{task}/models/{version}/promote", "/v1/tasks/{task}/schedules/{schedule_id}"}
    headers = {"Authorization": f"Bearer {make_key(engine, 'admin', task=task_name)}"} if bound else {}
    for method, template, name in routes:
        for raw in NOT_ROW_NUMBERS:
            path = template.replace("{task}", task_name).replace("{" + name + "}", raw)
            answer = client.request(method, path, headers=headers)
            where = f"{method} {template} with {raw[:12]}… ({len(raw)} characters)"
            assert answer.status_code == 422, f"{where}: {answer.status_code} {answer.text[:300]}"
            assert answer.json()["error"] == "invalid_request", where
            assert [problem["loc"] for problem in answer.json()["problems"]] == [["path", name]], where
