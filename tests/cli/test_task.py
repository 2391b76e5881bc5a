import json
import re
import uuid
from pathlib import Path

from sqlalchemy import Engine

from tests.conftest import run_cli, store_env


def test_create_add_labels_and_list(engine: Engine, tmp_path: Path) -> None:
    env = store_env(engine, tmp_path)
    name = f"cli-{uuid.uuid4().hex[:8]}"
    created = run_cli("task", "create", name, "--labels", "sports, politics,tech", env=env)
    assert created.returncode == 0, created.stderr.decode()
    assert "labels sports, politics, tech" in created.stdout.decode()

    added = run_cli("task", "add-labels", name, "health,tech", env=env)
    assert added.stdout.decode().strip().endswith("sports, politics, tech, health")

    listed = run_cli("task", "list", env=env).stdout.decode()
    assert name in listed and "sports, politics, tech, health" in listed
    as_json = run_cli("task", "list", "--json", env=env)
    assert as_json.returncode == 0, as_json.stderr.decode()
    [task] = [t for t in json.loads(as_json.stdout) if t["name"] == name]
    assert (task["labels"], task["texts"]) == (["sports", "politics", "tech", "health"], 0)
    assert task["created_at"][:16].replace("T", " ") in listed  # the table's "created", to the minute

    again = run_cli("task", "create", name, "--labels", "x", env=env)
    assert again.returncode == 2
    assert "already exists" in again.stderr.decode()


def test_a_piped_table_is_as_wide_as_its_content(tmp_path: Path) -> None:
    # COLUMNS as narrow as a phone: a table written to a pipe ignores it, and keeps every word
    # whole and every row on one line, for grep
    env = {"DRIFTLOOP_HOME": str(tmp_path), "DRIFTLOOP_DATABASE_URL": "", "COLUMNS": "40"}
    name = "customer-support-tickets-from-the-north-american-region"
    labels = ["billing-and-invoices-disputes", "technical-problems-with-the-mobile-application", "account-closure"]
    assert run_cli("task", "create", name, "--labels", ",".join(labels), env=env).returncode == 0
    listed = run_cli("task", "list", env=env)
    assert listed.returncode == 0, listed.stderr.decode()
    [row] = [line for line in listed.stdout.decode().splitlines() if name in line]
    assert ", ".join(labels) in row and "…" not in listed.stdout.decode()


def test_embedded_store_is_created_and_migrated_on_first_use(tmp_path: Path) -> None:
    env = {"DRIFTLOOP_HOME": str(tmp_path / "home"), "DRIFTLOOP_DATABASE_URL": ""}
    result = run_cli("task", "create", "first", "--labels", "a,b", env=env)
    assert result.returncode == 0, result.stderr.decode()
    assert (tmp_path / "home" / "driftloop.db").exists()


def test_shared_store_behind_is_refused_until_db_upgrade(tmp_path: Path) -> None:
    from alembic.script import ScriptDirectory

    from driftloop.platform.store.schema import alembic_config
    from tests.conftest import fresh_postgres_database

    with fresh_postgres_database() as url:
        env = {"DRIFTLOOP_HOME": str(tmp_path), "DRIFTLOOP_DATABASE_URL": url}
        refused = run_cli("task", "list", env=env)
        assert refused.returncode == 1
        assert re.search(r"run `\S*driftloop db upgrade`", refused.stderr.decode())  # as this shell runs driftloop

        upgraded = run_cli("db", "upgrade", env=env)
        head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
        assert upgraded.returncode == 0 and f"revision {head}" in upgraded.stdout.decode()
        assert run_cli("task", "list", env=env).returncode == 0
        assert json.loads(run_cli("db", "current", "--json", env=env).stdout) == {"current": head, "head": head}

        down = run_cli("db", "downgrade", "base", env=env)
        assert down.returncode == 0 and "base" in down.stdout.decode()
        assert json.loads(run_cli("db", "current", "--json", env=env).stdout) == {"current": None, "head": head}
