"""`driftloop keys` as an operator runs it: a key printed once and never again, lists without
secrets, revocation the API honours at the next request, and usage errors that name the problem;
and `driftloop serve` refusing to run without keys on a public address."""

import json
import re
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import Engine

from driftloop.platform.api.app import create_app
from driftloop.platform.config import Settings
from driftloop.platform.store.engine import session_scope
from driftloop.platform.tasks import create_task
from tests.conftest import run_cli, store_env


def _task(engine: Engine) -> str:
    name = f"k-{uuid.uuid4().hex[:8]}"
    with session_scope(engine) as session:
        create_task(session, name, ["a", "b"])
    return name


def test_create_prints_the_key_once_list_never_shows_it_and_revoke_locks_it_out(sqlite_engine: Engine, tmp_path: Path) -> None:
    env = store_env(sqlite_engine, tmp_path)
    task = _task(sqlite_engine)

    made = run_cli("keys", "create", "--name", "ingest-bot", "--scopes", "ingest,predict", "--task", task, env=env)
    assert made.returncode == 0, made.stderr
    key = made.stdout.decode().strip()
    assert key.startswith("dlk_") and len(key.split("_")) == 3 and "\n" not in key  # the key alone on stdout
    notice = made.stderr.decode()
    assert "cannot be shown again" in notice and f"scopes ingest,predict on task {task}" in notice and key not in notice

    as_json = run_cli("keys", "create", "--name", "admin-1", "--scopes", "admin", "--json", env=env)
    admin = json.loads(as_json.stdout)
    assert admin["key"].startswith(f"dlk_{admin['prefix']}_") and (admin["scopes"], admin["task"], admin["expires_at"]) == (["admin"], None, None)

    secrets_ = (key, key.split("_")[2], admin["key"], admin["key"].split("_")[2])
    table = run_cli("keys", "list", env=env).stdout.decode()
    listed = run_cli("keys", "list", "--json", env=env).stdout.decode()
    assert "ingest-bot" in table and key.split("_")[1] in table and "ingest,predict" in table and task in table
    assert [k["name"] for k in json.loads(listed)] == ["ingest-bot", "admin-1"]
    assert not any(secret in table or secret in listed for secret in secrets_)
    assert "secret" not in listed and "hash" not in listed

    app = create_app(Settings(home=tmp_path, database_url=env["DRIFTLOOP_DATABASE_URL"], auth_cache_seconds=1.0))
    with TestClient(app) as client:
        assert client.get(f"/v1/tasks/{task}", headers={"X-API-Key": key}).status_code == 200
        revoked = run_cli("keys", "revoke", "ingest-bot", env=env)  # by name
        assert revoked.returncode == 0 and revoked.stdout.decode() == f"key {key.split('_')[1]} (ingest-bot) revoked\n"
        time.sleep(1.1)  # the API trusts a key it verified for DRIFTLOOP_AUTH_CACHE_SECONDS (1 here), then reads it again
        refused = client.get(f"/v1/tasks/{task}", headers={"X-API-Key": key})
        assert refused.status_code == 401 and "was revoked at" in refused.json()["detail"]
        assert client.get(f"/v1/tasks/{task}", headers={"Authorization": f"Bearer {admin['key']}"}).status_code == 200
    entry = next(k for k in json.loads(run_cli("keys", "list", "--json", env=env).stdout) if k["name"] == "ingest-bot")
    assert entry["revoked_at"] is not None and entry["last_used_at"] is not None

    again = run_cli("keys", "revoke", key.split("_")[1], env=env)  # by prefix
    assert again.returncode == 2 and "was revoked already" in again.stderr.decode()
    assert run_cli("keys", "revoke", "nobody", env=env).returncode == 2


def test_revoking_by_a_name_that_two_live_keys_share_asks_for_the_prefix(sqlite_engine: Engine, tmp_path: Path) -> None:
    env = store_env(sqlite_engine, tmp_path)
    prefixes = [json.loads(run_cli("keys", "create", "--name", "ci", "--scopes", "train", "--json", env=env).stdout)["prefix"] for _ in range(2)]
    ambiguous = run_cli("keys", "revoke", "ci", env=env)
    assert ambiguous.returncode == 2 and f"2 keys are named 'ci' ({prefixes[0]}, {prefixes[1]})" in ambiguous.stderr.decode()
    assert run_cli("keys", "revoke", prefixes[0], env=env).returncode == 0
    assert run_cli("keys", "revoke", "ci", "--json", env=env).returncode == 0  # one live key left of that name


def test_expires_takes_a_duration_and_refuses_anything_else(sqlite_engine: Engine, tmp_path: Path) -> None:
    env = store_env(sqlite_engine, tmp_path)
    for value, lifetime in (("90d", timedelta(days=90)), ("12h", timedelta(hours=12)), ("30m", timedelta(minutes=30))):
        made = json.loads(run_cli("keys", "create", "--name", f"x-{value}", "--scopes", "predict", "--expires", value, "--json", env=env).stdout)
        expires = datetime.fromisoformat(made["expires_at"]) - datetime.fromisoformat(made["created_at"])
        assert expires == lifetime, value
    for bad, says in (("soon", "expires: 'soon' is not a duration"), ("90", "is not a duration"), ("0d", "must be from 1s to")):
        refused = run_cli("keys", "create", "--name", "bad", "--scopes", "predict", "--expires", bad, env=env)
        assert refused.returncode == 2 and says in refused.stderr.decode(), (bad, refused.stderr)
    assert "bad" not in run_cli("keys", "list", env=env).stdout.decode()


def test_unknown_scopes_and_tasks_are_refused_by_name(sqlite_engine: Engine, tmp_path: Path) -> None:
    env = store_env(sqlite_engine, tmp_path)
    scope = run_cli("keys", "create", "--name", "x", "--scopes", "predict,deploy", env=env)
    assert scope.returncode == 2
    assert "unknown scope 'deploy': use one or more of ingest, predict, label, train, promote, admin" in scope.stderr.decode()
    task = run_cli("keys", "create", "--name", "x", "--scopes", "predict", "--task", "no-such-task", env=env)
    assert task.returncode == 2 and "no task named 'no-such-task'" in task.stderr.decode()
    assert run_cli("keys", "create", "--name", "x", "--scopes", " , ", env=env).returncode == 2
    assert json.loads(run_cli("keys", "list", "--json", env=env).stdout) == []


def test_serve_refuses_auth_off_on_a_public_address_before_starting(tmp_path: Path) -> None:
    env = {"DRIFTLOOP_HOME": str(tmp_path), "DRIFTLOOP_DATABASE_URL": "", "DRIFTLOOP_AUTH": "off"}
    started = time.monotonic()
    refused = run_cli("serve", "--host", "0.0.0.0", "--port", "1", env=env, timeout=60)
    output = refused.stdout.decode() + refused.stderr.decode()
    assert refused.returncode == 1, output
    # the hint names driftloop as this shell runs it (`.venv/bin/driftloop` when it is not on PATH)
    assert re.fullmatch(
        re.escape(
            "error: DRIFTLOOP_AUTH=off is refused while the API listens on 0.0.0.0: without keys anyone who can reach it "
            "may ingest, train and promote. Keep auth on (`"
        )
        + r"\S*driftloop"
        + re.escape(" keys create`), or listen on 127.0.0.1 only."),
        output.strip(),
    ), output
    assert time.monotonic() - started < 60 and not (tmp_path / "driftloop.db").exists()  # nothing started, not even the store
    # the address can come from the environment too
    assert run_cli("serve", "--port", "1", env={**env, "DRIFTLOOP_API_HOST": "10.0.0.1"}, timeout=60).returncode == 1
