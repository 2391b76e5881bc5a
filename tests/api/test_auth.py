"""API keys at the API: every /v1 route, taken from the app's own route table and OpenAPI spec (a
route added later is in the matrix by itself), refuses a request without a valid key (401), with a
key that lacks its scope or is for another task (403), and lets a good key through to the route."""

import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient
from sqlalchemy import Engine, inspect, select, text, update

from driftloop.platform import jobs
from driftloop.platform.api import auth
from driftloop.platform.api.app import create_app
from driftloop.platform.api.errors import declare
from driftloop.platform.api_keys import SCOPES, create_key, revoke_key
from driftloop.platform.config import Settings
from driftloop.platform.errors import ConfigError
from driftloop.platform.schedules import add as add_schedule
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.models import ApiKey
from driftloop.platform.store.types import utcnow
from driftloop.platform.tasks import create_task, get_task
from tests.api_keys import make_key

WEBHOOK = ("POST", "/v1/labeling/webhook")
SECURITY = [{"BearerKey": []}, {"ApiKeyHeader": []}]

# Bodies that a route accepts, so that a good key's request gets as far as the route's own work;
# a route missing here is sent no body, and may answer 422: what is asserted is only the key check.
BODIES: dict[tuple[str, str], Any] = {
    ("POST", "/v1/tasks"): {"name": "made-by-key", "labels": ["a"]},
    ("POST", "/v1/tasks/{task}/labels"): {"labels": ["z"]},
    ("PATCH", "/v1/tasks/{task}"): {"gate": "strict"},
    ("POST", "/v1/tasks/{task}/texts"): [{"text": "hello"}],
    ("POST", "/v1/tasks/{task}/predict"): {"texts": ["hello"]},
    ("POST", "/v1/tasks/{task}/select"): {"budget": 1},
    ("POST", "/v1/tasks/{task}/schedules"): {"action": "sync", "every": "2h"},
}


class QueuedOnly:
    """Stands in for the API's job runner: a submitted job stays queued, nothing is trained."""

    def submit(self, *_: Any) -> None:
        return None


@pytest.fixture
def api(engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setattr(jobs, "_pool", QueuedOnly)
    settings = Settings(home=tmp_path, database_url=engine.url.render_as_string(hide_password=False))
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


class Keys:
    """The keys of the matrix, for ``task`` and ``other``, made and spoiled through the service."""

    def __init__(self, engine: Engine, task: str, other: str) -> None:
        self.engine, self.task, self.other = engine, task, other
        self.revoked = self.make("admin")
        with session_scope(engine) as session:
            revoke_key(session, self.revoked.split("_")[1])
        self.expired = self.make("admin")
        with session_scope(engine) as session:
            session.execute(update(ApiKey).where(ApiKey.prefix == self.expired.split("_")[1]).values(expires_at=utcnow() - timedelta(seconds=1)))

    def make(self, scopes: str, task: str | None = None) -> str:
        return make_key(self.engine, scopes, task=task)


def operations(client: TestClient) -> list[tuple[str, str]]:
    spec = client.app.openapi()  # type: ignore[attr-defined]
    return [(method.upper(), path) for path, item in spec["paths"].items() for method in item if path.startswith("/v1/")]


def fill(path: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    assert "{" not in path, f"no value for a parameter of {path}: add it to the test"
    return path


def test_every_v1_route_asks_for_a_valid_key_with_its_scope_and_task(api: TestClient, engine: Engine) -> None:
    task, other = f"t-{uuid.uuid4().hex[:8]}", f"o-{uuid.uuid4().hex[:8]}"
    with session_scope(engine) as session:
        create_task(session, task, ["a", "b"])
        create_task(session, other, ["a", "b"])
        job = jobs.create_job(session, "train", get_task(session, task).id, {}).id
    with session_scope(engine) as session:
        schedule = add_schedule(session, task, "sync", every="1h").id
    keys = Keys(engine, task, other)
    values = {"task": task, "job_id": str(job), "version": "1", "schedule_id": str(schedule)}
    checks = api.app.state.key_checks  # type: ignore[attr-defined]
    ops = operations(api)
    assert len(ops) >= 20 and WEBHOOK in ops

    seen = []
    for method, template in ops:
        if (method, template) == WEBHOOK:
            continue
        check = checks[(method, template)]
        assert isinstance(check, auth.Guard), f"{method} {template}"
        # a job's routes take the scope from the job: cancelling a training needs train
        scope = "train" if isinstance(check, auth.JobGuard) and check.cancel else check.scope
        on_a_task = "{task}" in template or isinstance(check, auth.JobGuard)
        path, body = fill(template, values), BODIES.get((method, template))

        def call(headers: dict[str, str]) -> Any:
            return api.request(method, path, headers=headers, json=body)  # noqa: B023 - called at once

        def bearer(key: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {key}"}

        good = keys.make(scope or "ingest", task=task if on_a_task else None)
        wrong = good.rsplit("_", 1)[0] + "_" + "0" * 64
        refused = {
            "no key": ({}, 401),
            "malformed key": (bearer("not-a-key"), 401),
            "wrong secret": (bearer(wrong), 401),
            "revoked key": ({"X-API-Key": keys.revoked}, 401),
            "expired key": (bearer(keys.expired), 401),
        }
        if scope is not None:
            lacking = ",".join(s for s in SCOPES if s not in (scope, "admin"))
            refused["key without the scope"] = ({"X-API-Key": keys.make(lacking)}, 403)
        if on_a_task or check.all_tasks:
            # a job of another task is not there for the key: 404, as a job that does not exist
            refused["key for another task"] = (bearer(keys.make("admin", task=other)), 404 if isinstance(check, auth.JobGuard) else 403)
        for case, (headers, status) in refused.items():
            answer = call(headers)
            assert answer.status_code == status, f"{method} {template}, {case}: {answer.status_code} {answer.text}"
            assert answer.json()["error"] == {401: "unauthenticated", 403: "forbidden", 404: "not_found"}[status]
            if status == 401:
                assert answer.headers["WWW-Authenticate"] == "Bearer"
        for headers in (bearer(good), {"X-API-Key": good}):
            answer = call(headers)
            assert answer.status_code not in (401, 403), f"{method} {template}, good key: {answer.status_code} {answer.text}"
            assert answer.status_code < 500, answer.text
        seen.append((method, template))
    assert ("POST", "/v1/tasks/{task}/predict") in seen and ("POST", "/v1/jobs/{job_id}/cancel") in seen


def test_a_job_is_cancelled_by_an_admin_or_by_the_scope_that_starts_its_kind(api: TestClient, engine: Engine, task_name: str) -> None:
    with session_scope(engine) as session:
        task_id = get_task(session, task_name).id
        ids = {kind: jobs.create_job(session, kind, task_id, {}).id for kind in ("train", "select", "score", "sync")}
        untasked = jobs.create_job(session, "train", None, {}).id
    for kind, scope in (("train", "train"), ("select", "label"), ("sync", "label"), ("score", "ingest")):
        others = ",".join(s for s in SCOPES if s not in (scope, "admin"))
        refused = api.post(f"/v1/jobs/{ids[kind]}/cancel", headers={"X-API-Key": make_key(engine, others, task=task_name)})
        assert refused.status_code == 403 and f"lacks scope '{scope}'" in refused.json()["detail"], refused.text
        allowed = api.post(f"/v1/jobs/{ids[kind]}/cancel", headers={"X-API-Key": make_key(engine, scope, task=task_name)})
        assert allowed.status_code == 200 and allowed.json()["state"] == "cancelled", allowed.text
    # a job of no task is for keys of every task only
    bound = {"X-API-Key": make_key(engine, "admin", task=task_name)}
    assert api.get(f"/v1/jobs/{untasked}", headers=bound).status_code == 404
    assert api.get(f"/v1/jobs/{untasked}", headers={"X-API-Key": make_key(engine, "predict")}).status_code == 200
    assert api.get("/v1/jobs/999999", headers=bound).status_code == 404


def test_a_key_bound_to_a_task_cannot_tell_another_task_s_job_from_a_missing_one(api: TestClient, engine: Engine, task_name: str) -> None:
    other = f"o-{uuid.uuid4().hex[:8]}"
    with session_scope(engine) as session:
        create_task(session, other, ["a", "b"])
        others = jobs.create_job(session, "train", get_task(session, other).id, {}).id
        untasked = jobs.create_job(session, "train", None, {}).id
    missing = 2**31 - 1  # a job id no test makes
    bound = {"X-API-Key": make_key(engine, "admin", task=task_name)}
    for method, template in (("GET", "/v1/jobs/{}"), ("POST", "/v1/jobs/{}/cancel")):
        absent = api.request(method, template.format(missing), headers=bound)
        assert (absent.status_code, absent.json()) == (404, {"error": "not_found", "detail": f"no job {missing}", "job": missing})
        for job in (others, untasked):
            hidden = api.request(method, template.format(job), headers=bound)
            assert (hidden.status_code, hidden.json()) == (404, {"error": "not_found", "detail": f"no job {job}", "job": job}), hidden.text
    # a key for every task still sees the job, and a key of its task does
    assert api.get(f"/v1/jobs/{others}", headers={"X-API-Key": make_key(engine, "admin")}).status_code == 200
    assert api.get(f"/v1/jobs/{others}", headers={"X-API-Key": make_key(engine, "predict", task=other)}).status_code == 200


def test_the_key_is_checked_before_the_body_is_read_on_every_route_with_a_body(api: TestClient, engine: Engine) -> None:
    task, other = f"t-{uuid.uuid4().hex[:8]}", f"o-{uuid.uuid4().hex[:8]}"
    with session_scope(engine) as session:
        create_task(session, task, ["a", "b"])
        create_task(session, other, ["a", "b"])
    spec = api.app.openapi()  # type: ignore[attr-defined]
    checks = api.app.state.key_checks  # type: ignore[attr-defined]
    with_body = [
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if path.startswith("/v1/") and "requestBody" in operation and (method.upper(), path) != WEBHOOK
    ]
    assert len(with_body) >= 8 and ("POST", "/v1/tasks/{task}/texts") in with_body and ("POST", "/v1/tasks") in with_body
    for method, template in with_body:
        check = checks[(method, template)]
        path = fill(template, {"task": task, "version": "1", "schedule_id": "1", "job_id": "1"})
        for body in (b"{", b'"not what it takes"'):  # not JSON; JSON, but not what any route takes
            def send(headers: dict[str, str]) -> Any:
                return api.request(method, path, content=body, headers={"content-type": "application/json", **headers})  # noqa: B023 - called at once

            where = f"{method} {template} with {body[:20]!r}"
            refused = [({}, 401), ({"X-API-Key": "dlk_bad"}, 401)]
            if check.scope is not None:
                refused.append(({"X-API-Key": keys_lacking(engine, check.scope)}, 403))
            if "{task}" in template or check.all_tasks:
                refused.append(({"X-API-Key": make_key(engine, "admin", task=other)}, 403))
            for headers, status in refused:
                answer = send(headers)
                assert answer.status_code == status, f"{where}, {headers or 'no key'}: {answer.status_code} {answer.text}"
            good = send({"X-API-Key": make_key(engine, check.scope or "ingest", task=None if check.all_tasks else task)})
            assert good.status_code == 422, f"{where}, good key: {good.status_code} {good.text}"


def keys_lacking(engine: Engine, scope: str) -> str:
    return make_key(engine, ",".join(s for s in SCOPES if s not in (scope, "admin")))


def test_a_key_bound_to_a_task_lists_that_task_alone(api: TestClient, engine: Engine, task_name: str) -> None:
    everything = api.get("/v1/tasks", headers={"X-API-Key": make_key(engine, "predict")}).json()
    assert len(everything) >= 1 and task_name in {t["name"] for t in everything}
    mine = api.get("/v1/tasks", headers={"X-API-Key": make_key(engine, "predict", task=task_name)})
    assert [t["name"] for t in mine.json()] == [task_name]
    created = api.post("/v1/tasks", json={"name": "x", "labels": ["a"]}, headers={"X-API-Key": make_key(engine, "admin", task=task_name)})
    assert created.status_code == 403 and f"is for task {task_name} only" in created.json()["detail"]


def test_two_different_keys_in_one_request_are_refused(api: TestClient, engine: Engine) -> None:
    one, two = make_key(engine, "admin"), make_key(engine, "admin")
    assert api.get("/v1/tasks", headers={"Authorization": f"Bearer {one}", "X-API-Key": one}).status_code == 200
    refused = api.get("/v1/tasks", headers={"Authorization": f"Bearer {one}", "X-API-Key": two})
    assert refused.status_code == 401 and "two different keys" in refused.json()["detail"]


def test_errors_say_why_a_key_is_refused(api: TestClient, engine: Engine, task_name: str) -> None:
    with session_scope(engine) as session:
        _, revoked = create_key(session, "old-ci", "admin")
        revoke_key(session, revoked.split("_")[1])
        _, expired = create_key(session, "short", "admin")
        session.execute(update(ApiKey).where(ApiKey.name == "short").values(expires_at=utcnow() - timedelta(hours=1)))
    prefix = revoked.split("_")[1]
    assert f"key {prefix} (old-ci) was revoked at " in api.get("/v1/tasks", headers={"X-API-Key": revoked}).json()["detail"]
    assert "(short) expired at " in api.get("/v1/tasks", headers={"X-API-Key": expired}).json()["detail"]
    lacking = api.post(f"/v1/tasks/{task_name}/train", headers={"X-API-Key": make_key(engine, "predict,ingest")})
    assert "lacks scope 'train' (it has ingest, predict)" in lacking.json()["detail"]


def test_last_used_at_is_recorded_at_most_once_a_minute(engine: Engine, tmp_path: Path) -> None:
    # every request reads its key (no trust window), so the store's record alone decides the write
    settings = Settings(home=tmp_path, database_url=engine.url.render_as_string(hide_password=False), auth_cache_seconds=0)
    api = TestClient(create_app(settings))
    key = make_key(engine, "predict")
    prefix = key.split("_")[1]

    def last_used() -> Any:
        with session_scope(engine) as session:
            return session.scalar(select(ApiKey.last_used_at).where(ApiKey.prefix == prefix))

    assert last_used() is None
    assert api.get("/v1/tasks", headers={"X-API-Key": key}).status_code == 200
    first = last_used()
    assert first is not None and utcnow() - first < timedelta(minutes=1)
    assert api.get("/v1/tasks", headers={"X-API-Key": key}).status_code == 200
    assert last_used() == first  # no write per request
    with session_scope(engine) as session:
        session.execute(update(ApiKey).where(ApiKey.prefix == prefix).values(last_used_at=first - timedelta(minutes=2)))
    assert api.get("/v1/tasks", headers={"X-API-Key": key}).status_code == 200
    assert last_used() > first - timedelta(minutes=2)


def test_a_verified_key_is_trusted_for_the_cache_time_but_never_past_its_expiry(engine: Engine, tmp_path: Path, task_name: str) -> None:
    settings = Settings(home=tmp_path, database_url=engine.url.render_as_string(hide_password=False), auth_cache_seconds=1.5)
    with TestClient(create_app(settings)) as api:
        key = make_key(engine, "predict", task=task_name)
        assert api.get(f"/v1/tasks/{task_name}", headers={"X-API-Key": key}).status_code == 200
        with session_scope(engine) as session:
            revoke_key(session, key.split("_")[1])
        # verified 0 s ago: still taken (the documented window), with its scope and task still checked
        assert api.get(f"/v1/tasks/{task_name}", headers={"X-API-Key": key}).status_code == 200
        assert api.post(f"/v1/tasks/{task_name}/train", headers={"X-API-Key": key}, json={}).status_code == 403
        time.sleep(1.6)
        assert api.get(f"/v1/tasks/{task_name}", headers={"X-API-Key": key}).status_code == 401

        short = make_key(engine, "predict", task=task_name, expires_in="2s")
        assert api.get(f"/v1/tasks/{task_name}", headers={"X-API-Key": short}).status_code == 200
        time.sleep(2.1)  # expired while verified 0.5 s ago, say: refused at once
        for _ in range(3):
            assert api.get(f"/v1/tasks/{task_name}", headers={"X-API-Key": short}).status_code == 401
            time.sleep(0.2)


def test_a_failing_last_used_write_does_not_fail_the_request(api: TestClient, engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.exc import OperationalError

    from driftloop.platform import api_keys

    def locked(*_: Any, **__: Any) -> Any:
        raise OperationalError("UPDATE api_keys", {}, Exception("database is locked"))

    monkeypatch.setattr(api_keys, "session_scope", locked)
    assert api.get("/v1/tasks", headers={"X-API-Key": make_key(engine, "predict")}).status_code == 200


def test_keys_cannot_be_recovered_from_the_store(engine: Engine, task_name: str) -> None:
    with session_scope(engine) as session:
        _, key = create_key(session, "leak-check", "ingest,predict", task=task_name, expires_in="90d")
    secret = key.rsplit("_", 1)[1]
    assert key.startswith("dlk_") and len(secret) == 64  # 256 bits, in hex
    with engine.connect() as connection:
        values = [
            str(value)
            for table in inspect(engine).get_table_names()
            for row in connection.execute(text(f'SELECT * FROM "{table}"'))
            for value in row
        ]
    assert values and key.split("_")[1] in values  # the prefix is stored: the dump did read the row
    assert not any(secret in value or key in value for value in values)


def test_healthz_and_metrics_are_open_unless_metrics_auth(engine: Engine, tmp_path: Path) -> None:
    url = engine.url.render_as_string(hide_password=False)
    with TestClient(create_app(Settings(home=tmp_path, database_url=url))) as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/metrics").status_code == 200
    with TestClient(create_app(Settings(home=tmp_path, database_url=url, metrics_auth=True))) as client:
        assert client.get("/healthz").status_code == 200
        refused = client.get("/metrics")
        assert refused.status_code == 401 and refused.headers["WWW-Authenticate"] == "Bearer"
        assert client.get("/metrics", headers={"X-API-Key": make_key(engine, "predict")}).status_code == 200
        assert client.app.openapi()["paths"]["/metrics"]["get"]["security"] == SECURITY  # type: ignore[attr-defined]


def test_auth_off_is_refused_unless_the_api_listens_on_loopback_only(engine: Engine, tmp_path: Path) -> None:
    url = engine.url.render_as_string(hide_password=False)
    for host in ("0.0.0.0", "10.1.2.3", "::", "api.example.com"):
        with pytest.raises(ConfigError, match=f"DRIFTLOOP_AUTH=off is refused while the API listens on {host}"):
            create_app(Settings(home=tmp_path, database_url=url, auth=False, api_host=host))
    for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        create_app(Settings(home=tmp_path, database_url=url, auth=False, api_host=host))
    create_app(Settings(home=tmp_path, database_url=url, api_host="0.0.0.0"))  # auth on: any address
    with TestClient(create_app(Settings(home=tmp_path, database_url=url, auth=False))) as client:
        name = f"open-{uuid.uuid4().hex[:8]}"
        assert client.post("/v1/tasks", json={"name": name, "labels": ["a"]}).status_code == 201
        assert client.get(f"/v1/tasks/{name}").status_code == 200


def test_the_openapi_spec_shows_the_two_schemes_and_which_operations_need_a_key(api: TestClient) -> None:
    spec = api.app.openapi()  # type: ignore[attr-defined]
    schemes = spec["components"]["securitySchemes"]
    assert schemes["BearerKey"] == {"type": "http", "scheme": "bearer", "description": schemes["BearerKey"]["description"]}
    assert (schemes["ApiKeyHeader"]["type"], schemes["ApiKeyHeader"]["in"], schemes["ApiKeyHeader"]["name"]) == ("apiKey", "header", "X-API-Key")
    for method, path in operations(api):
        operation = spec["paths"][path][method.lower()]
        if (method, path) == WEBHOOK:
            assert "security" not in operation and "401" in operation["responses"]  # its signature
            continue
        assert operation.get("security") == SECURITY, f"{method} {path}"
        assert "401" in operation["responses"], f"{method} {path}"
    assert "security" not in spec["paths"]["/healthz"]["get"] and "security" not in spec["paths"]["/metrics"]["get"]
    assert "403" in spec["paths"]["/v1/tasks/{task}/train"]["post"]["responses"]


def test_a_v1_route_without_a_key_check_is_refused_when_the_app_is_built() -> None:
    forgetful = APIRouter(route_class=auth.KeyCheckedRoute)

    @forgetful.get("/v1/forgotten")
    def forgotten() -> None: ...

    with pytest.raises(RuntimeError, match=r"GET /v1/forgotten has no key check"):
        auth.check_routes([forgetful])

    body_first = APIRouter()  # FastAPI's own route class: it reads the body before any check

    @body_first.post("/v1/tasks/{task}/thing", responses=declare(401, 403), dependencies=[auth.require("train")])
    def posted(task: str, body: dict[str, int]) -> None: ...

    with pytest.raises(RuntimeError, match=r"POST /v1/tasks/\{task\}/thing would read its body before checking the key"):
        auth.check_routes([body_first])

    undeclared = APIRouter(route_class=auth.KeyCheckedRoute)

    @undeclared.get("/v1/tasks/{task}/thing", dependencies=[auth.require("train")])
    def thing(task: str) -> None: ...

    with pytest.raises(RuntimeError, match=r"can answer \[401, 403\]"):
        auth.check_routes([undeclared])

    fine = APIRouter(route_class=auth.KeyCheckedRoute)

    @fine.get("/v1/tasks/{task}/thing", responses=declare(401, 403), dependencies=[auth.require("train")])
    def declared(task: str) -> None: ...

    @fine.post("/v1/hook", dependencies=[auth.no_key("signed")])
    def hook() -> None: ...

    @fine.get("/open")
    def open_() -> None: ...

    found = auth.check_routes([fine])
    assert isinstance(found[("GET", "/v1/tasks/{task}/thing")], auth.Guard) and isinstance(found[("POST", "/v1/hook")], auth.NoKey)
    with pytest.raises(ValueError):
        auth.require("trian")  # a misspelt scope fails where the route is defined
