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


def test_set_then_show_the_settings_with_the_defaults_marked(engine: Engine, task_name: str, tmp_path: Path) -> None:
    env = {**store_env(engine, tmp_path), "DRIFTLOOP_EVAL_FRACTION": "0.25"}
    shown = run_cli("task", "show", task_name, env=env)
    assert shown.returncode == 0, shown.stderr.decode()
    assert shown.stdout.decode().splitlines() == [
        f"task: {task_name}",
        "labels: a, b, c",
        "texts: 0",
        shown.stdout.decode().splitlines()[3],  # created: the minute the fixture made it
        "settings:",
        "  gate: current (default)",
        "  half-life: 200 (default)",
        "  eval-fraction: 0.25 (default, DRIFTLOOP_EVAL_FRACTION)",
        "  store-predictions: on (default, DRIFTLOOP_PREDICT_STORE)",
    ]

    changed = run_cli("task", "set", task_name, "--gate", "strict", "--half-life", "50", "--eval-fraction", "0", env=env)
    assert changed.returncode == 0, changed.stderr.decode()
    assert changed.stdout.decode().splitlines() == [
        f"task {task_name} settings:",
        "  gate: strict",
        "  half-life: 50",
        "  eval-fraction: 0.0",
        "  store-predictions: on (default, DRIFTLOOP_PREDICT_STORE)",
    ]
    assert run_cli("task", "set", task_name, "--no-store-predictions", env=env).stdout.decode().splitlines()[-1] == "  store-predictions: off"

    as_json = run_cli("task", "show", task_name, "--json", env=env)
    assert as_json.returncode == 0, as_json.stderr.decode()
    shown_json = json.loads(as_json.stdout)
    assert (shown_json["name"], shown_json["labels"], shown_json["texts"]) == (task_name, ["a", "b", "c"], 0)
    assert shown_json["settings"] == {"gate": "strict", "half_life_labels": 50, "eval_fraction": 0.0, "store_predictions": False, "defaults": []}


def test_set_refuses_what_is_not_a_setting_naming_it(engine: Engine, task_name: str, tmp_path: Path) -> None:
    env = store_env(engine, tmp_path)
    for args, says in [
        ([], "nothing to change: give --gate, --half-life, --eval-fraction or --store-predictions/--no-store-predictions"),
        (["--gate", "lax"], "gate policy 'lax' is not one of current, strict"),
        (["--half-life", "0"], "half_life_labels must be an integer >= 1, got 0"),
        (["--gate", "strict", "--eval-fraction", "1"], "eval_fraction must be a number from 0 up to, not including, 1; got 1.0"),
        (["--eval-fraction", "nan"], "eval_fraction must be"),
        (["--half-life", "ten"], "Invalid value for '--half-life'"),
    ]:
        refused = run_cli("task", "set", task_name, *args, env=env)
        assert refused.returncode == 2, (args, refused.stdout.decode())
        assert says in refused.stderr.decode(), (args, refused.stderr.decode())
    assert "(default)" in run_cli("task", "show", task_name, env=env).stdout.decode().split("gate:")[1].splitlines()[0]

    for args in (["set", "no-such-task", "--gate", "strict"], ["show", "no-such-task"]):
        unknown = run_cli("task", *args, env=env)
        assert unknown.returncode == 2 and "no task named 'no-such-task'" in unknown.stderr.decode()


def test_label_import_splits_with_the_task_s_eval_fraction(engine: Engine, tmp_path: Path) -> None:
    env = store_env(engine, tmp_path)
    texts = "".join(json.dumps({"id": f"x{i}", "text": f"text {i}"}) + "\n" for i in range(50)).encode()
    labels = "".join(json.dumps({"id": f"x{i}", "label": "ab"[i % 2]}) + "\n" for i in range(50)).encode()
    shown = {}
    for fraction in ("0", "0.5"):
        name = f"cli-{uuid.uuid4().hex[:8]}"
        assert run_cli("task", "create", name, "--labels", "a,b", env=env).returncode == 0
        assert run_cli("task", "set", name, "--eval-fraction", fraction, env=env).returncode == 0
        assert run_cli("ingest", name, "-", env=env, stdin=texts).returncode == 0
        imported = run_cli("label", "import", name, "-", env=env, stdin=labels)
        assert imported.returncode == 0, imported.stderr.decode()
        shown[fraction] = _splits(engine, name)
    assert shown == {"0": {"train": 50}, "0.5": {"train": 26, "eval": 24}}  # 0.5: round(25 * 0.5) of each class's 25


def _splits(engine: Engine, task: str) -> dict[str, int]:
    from collections import Counter

    from sqlalchemy import select

    from driftloop.platform.store.engine import session_scope
    from driftloop.platform.store.models import Label, Task

    with session_scope(engine) as session:
        rows = session.scalars(select(Label.split).join(Task, Task.id == Label.task_id).where(Task.name == task))
        return dict(Counter(split.value for split in rows))
