"""`driftloop schedule` as a user runs it: the round trip with --json, and usage errors (exit 2)
that say what is wrong and where."""

import json
import uuid
from pathlib import Path

from sqlalchemy import Engine

from driftloop.platform.store.engine import session_scope
from driftloop.platform.tasks import create_task
from tests.conftest import run_cli, store_env


def test_add_list_show_pause_resume_remove_round_trip(sqlite_engine: Engine, tmp_path: Path) -> None:
    env = store_env(sqlite_engine, tmp_path)
    task = f"s-{uuid.uuid4().hex[:8]}"
    with session_scope(sqlite_engine) as session:
        create_task(session, task, ["a", "b"])

    added = run_cli("schedule", "add", task, "--action", "select", "--every", "2h", "--param", "budget=25", "--param", "strategy=margin", "--json", env=env)
    assert added.returncode == 0, added.stderr
    select_ = json.loads(added.stdout)
    assert (select_["action"], select_["trigger"], select_["params"]) == ("select", "every 2h", {"budget": 25, "strategy": "margin"})
    human = run_cli("schedule", "add", task, "--action", "train", "--cron", "30 4 * * 1", "--param", "promote=false", "--param", "epochs=3", env=env)
    assert human.returncode == 0, human.stderr
    assert human.stdout.decode().startswith(f"schedule {select_['id'] + 1}: train of task {task}, cron 30 4 * * 1, next at ")

    listed = run_cli("schedule", "list", task, "--json", env=env)
    rows = json.loads(listed.stdout)
    assert [(r["action"], r["trigger"], r["params"]) for r in rows] == [
        ("select", "every 2h", {"budget": 25, "strategy": "margin"}),
        ("train", "cron 30 4 * * 1", {"promote": False, "epochs": 3}),
    ]
    table = run_cli("schedule", "list", env=env).stdout.decode()
    assert "cron 30 4 * * 1" in table and "promote=false epochs=3" in table and "active" in table

    assert run_cli("schedule", "pause", str(select_["id"]), env=env).stdout.decode() == f"schedule {select_['id']} paused\n"
    again = run_cli("schedule", "pause", str(select_["id"]), env=env)
    assert again.returncode == 2 and "is paused already" in again.stderr.decode()
    shown = json.loads(run_cli("schedule", "show", str(select_["id"]), "--json", env=env).stdout)
    assert shown["paused"] is True and shown["firings"] == []
    assert "never fired" in run_cli("schedule", "show", str(select_["id"]), env=env).stdout.decode()
    resumed = run_cli("schedule", "resume", str(select_["id"]), env=env)
    assert resumed.returncode == 0 and resumed.stdout.decode().startswith(f"schedule {select_['id']} resumed, next at ")

    removed = run_cli("schedule", "remove", str(select_["id"]), env=env)
    assert removed.returncode == 0 and "removed (select of task" in removed.stdout.decode()
    missing = run_cli("schedule", "show", str(select_["id"]), env=env)
    assert missing.returncode == 2 and f"no schedule {select_['id']}" in missing.stderr.decode()
    assert [r["action"] for r in json.loads(run_cli("schedule", "list", "--json", env=env).stdout)] == ["train"]


def test_usage_errors_exit_2_and_say_what_and_where(sqlite_engine: Engine, tmp_path: Path) -> None:
    env = store_env(sqlite_engine, tmp_path)
    task = f"s-{uuid.uuid4().hex[:8]}"
    with session_scope(sqlite_engine) as session:
        create_task(session, task, ["a", "b"])
    for args, message in (
        (["--action", "sync"], "a schedule needs exactly one trigger: every, cron, after_labels or on_drift (got none)"),
        (["--action", "sync", "--every", "1h", "--on-drift"], "(got every and on_drift)"),
        (["--action", "sync", "--every", "soon"], "every: 'soon' is not a duration"),
        (["--action", "sync", "--cron", "0 3 * * 8"], "cron: '0 3 * * 8' is not a valid cron expression"),
        (["--action", "select", "--after-labels", "100"], "select needs the param budget"),
        (["--action", "select", "--every", "1h", "--param", "budget"], "'budget' is not KEY=VALUE"),
        (["--action", "deploy", "--every", "1h"], "unknown action 'deploy': use one of train, select, sync, drift, loop"),
    ):
        result = run_cli("schedule", "add", task, *args, env=env)
        assert result.returncode == 2, (args, result.stderr)
        assert message in result.stderr.decode(), (args, result.stderr)
    unknown = run_cli("schedule", "add", "no-such-task", "--action", "sync", "--every", "1h", env=env)
    assert unknown.returncode == 2 and "no task named 'no-such-task'" in unknown.stderr.decode()
    assert json.loads(run_cli("schedule", "list", "--json", env=env).stdout) == []
