"""`driftloop jobs` as users run it (real processes, SQLite home)."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import psutil

from driftloop.platform.jobs import create_job
from driftloop.platform.store import schema
from driftloop.platform.store.engine import make_engine, session_scope
from driftloop.platform.store.models import JobState
from driftloop.platform.store.types import utcnow
from driftloop.platform.tasks import create_task
from tests.conftest import DRIFTLOOP, run_cli


def test_list_and_show_never_show_a_dead_job_as_running(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'driftloop.db'}")
    schema.upgrade(engine)
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    started = psutil.Process(child.pid).create_time()
    child.communicate(b"")
    with session_scope(engine) as session:
        task = create_task(session, "news", ["a", "b"])
        dead = create_job(session, "train", task.id, {})
        dead.state, dead.started_at, dead.heartbeat_at, dead.progress = JobState.running, utcnow(), utcnow(), 0.5
        dead.owner_host, dead.owner_pid, dead.owner_started_at = socket.gethostname(), child.pid, started
        queued = create_job(session, "train", None, {})
        dead_id, queued_id = dead.id, queued.id
    engine.dispose()
    env = {"DRIFTLOOP_HOME": str(tmp_path), "DRIFTLOOP_DATABASE_URL": "", "COLUMNS": "200"}

    listed = run_cli("jobs", "list", "--task", "news", "--json", env=env)
    assert listed.returncode == 0, listed.stderr.decode()
    [job] = json.loads(listed.stdout)
    assert (job["id"], job["task"], job["state"], job["owner_pid"]) == (dead_id, "news", "failed", child.pid)
    assert job["error"].startswith(f"lost: the process that ran it (pid {child.pid} on host {socket.gethostname()}) is gone")

    shown = run_cli("jobs", "show", str(queued_id), env=env)
    assert shown.returncode == 0 and shown.stdout.decode().startswith(f"job {queued_id}: train, queued, 0%")
    shown_json = run_cli("jobs", "show", str(dead_id), "--json", env=env)
    assert shown_json.returncode == 0, shown_json.stderr.decode()
    job = json.loads(shown_json.stdout)
    assert (job["id"], job["kind"], job["task"], job["state"], job["progress"]) == (dead_id, "train", "news", "failed", 0.5)
    assert job["error"].startswith("lost: ") and job["owner_host"] == socket.gethostname() and job["heartbeat_at"]


def test_the_jobs_command_module_does_not_load_torch() -> None:
    # ops run it on a box that is busy, or broken: it must not wait for torch (or the gate's scipy
    # and scikit-learn, which the registry's gate decisions must not bring) to load
    heavy = "{'torch', 'transformers', 'scipy', 'sklearn'}"
    code = f"import sys, driftloop.platform.cli.jobs; print(sorted({heavy} & set(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


# What SQLAlchemy puts in a job's error when a statement fails: several lines, the SQL among them.
SQL_ERROR = (
    "OperationalError: (sqlite3.OperationalError) database is locked\n"
    "[SQL: INSERT INTO selection_picks (round_id, text_id, rank) VALUES (?, ?, ?)]\n"
    "[parameters: (1, 17, 0)]\n"
    "(Background on this error at: https://sqlalche.me/e/20/e3q8)"
)


def test_human_output_shows_errors_and_results_as_fields_and_json_stays_whole(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'driftloop.db'}")
    schema.upgrade(engine)
    with session_scope(engine) as session:
        task = create_task(session, "news", ["a", "b"])
        failed = create_job(session, "select", task.id, {})
        failed.state, failed.progress, failed.error, failed.finished_at = JobState.failed, 1.0, SQL_ERROR, utcnow()
        cancelled = create_job(session, "train", task.id, {})
        cancelled.state, cancelled.progress, cancelled.error = JobState.cancelled, 0.4, "cancelled by request"
        done = create_job(session, "select", task.id, {})
        done.state, done.progress, done.finished_at = JobState.succeeded, 1.0, utcnow()
        done.result = {"round": 3, "picks": 250, "pool_size": 2225, "model_version": None, "push": {"pushed": 250, "error": None}}
        failed_id, cancelled_id, done_id = failed.id, cancelled.id, done.id
    engine.dispose()
    env = {"DRIFTLOOP_HOME": str(tmp_path), "DRIFTLOOP_DATABASE_URL": "", "COLUMNS": "200"}

    listed = run_cli("jobs", "list", env=env)
    assert listed.returncode == 0, listed.stderr.decode()
    rows = {int(line.split("│")[1]): [c.strip() for c in line.split("│")[1:-1]] for line in listed.stdout.decode().splitlines()
            if line.startswith("│") and line.split("│")[1].strip().isdigit()}
    assert set(rows) == {failed_id, cancelled_id, done_id}  # one line per job: no error line spills into a row of its own
    header = [c.strip() for c in next(line for line in listed.stdout.decode().splitlines() if "┃ id" in line).split("┃")[1:-1]]
    cell = {job_id: dict(zip(header, row, strict=True)) for job_id, row in rows.items()}
    assert cell[failed_id]["message"] == "OperationalError: (sqlite3.OperationalError) database is locked"
    assert cell[failed_id]["progress"] != "100%" and cell[cancelled_id]["progress"] == "stopped at 40%"
    assert cell[done_id]["progress"] == "100%"
    assert "[SQL:" not in listed.stdout.decode()

    shown = run_cli("jobs", "show", str(failed_id), env=env).stdout.decode()
    assert shown.startswith(f"job {failed_id}: select of task news, failed\n")  # not "100%"
    assert all(line in shown for line in SQL_ERROR.splitlines())  # the whole error, every line of it
    result = run_cli("jobs", "show", str(done_id), env=env).stdout.decode()
    assert "{" not in result and "'" not in result  # no Python dict
    assert "  result:\n    round: 3\n    picks: 250\n    pool_size: 2225\n    model_version: -\n    push.pushed: 250\n    push.error: -\n" in result

    watched = run_cli("jobs", "watch", str(done_id), env=env)
    assert watched.returncode == 0 and "{" not in watched.stdout.decode() and "    picks: 250\n" in watched.stdout.decode()
    watched_failed = run_cli("jobs", "watch", str(failed_id), env=env)
    assert watched_failed.returncode == 1
    [line] = watched_failed.stdout.decode().splitlines()
    assert line.startswith(f"job {failed_id} (select of news) failed: OperationalError: (sqlite3.OperationalError) database is locked (`")
    assert line.endswith(f"driftloop jobs show {failed_id}` shows all of it)")

    # --json as before: the whole error and the result as stored
    as_json = json.loads(run_cli("jobs", "show", str(failed_id), "--json", env=env).stdout)
    assert (as_json["error"], as_json["progress"]) == (SQL_ERROR, 1.0)
    assert json.loads(run_cli("jobs", "list", "--json", env=env).stdout)[0]["result"] == {
        "round": 3, "picks": 250, "pool_size": 2225, "model_version": None, "push": {"pushed": 250, "error": None}
    }


def test_a_job_that_fails_while_watched_reads_failed_not_done(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'driftloop.db'}")
    schema.upgrade(engine)
    owner = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    with session_scope(engine) as session:
        task = create_task(session, "news", ["a", "b"])
        job = create_job(session, "train", task.id, {})
        job.state, job.started_at, job.heartbeat_at, job.progress = JobState.running, utcnow(), utcnow(), 0.5
        job.owner_host, job.owner_pid, job.owner_started_at = socket.gethostname(), owner.pid, psutil.Process(owner.pid).create_time()
        job_id = job.id
    engine.dispose()
    env = {"DRIFTLOOP_HOME": str(tmp_path), "DRIFTLOOP_DATABASE_URL": "", "DRIFTLOOP_PROGRESS_SECONDS": "0.2"}
    watch = subprocess.Popen(
        [DRIFTLOOP, "jobs", "watch", str(job_id), "--interval", "0.2"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **env},
    )
    try:
        assert watch.stderr is not None
        first = watch.stderr.readline().decode()  # a progress line while the job runs: its owner lives
        assert first.startswith(f"job {job_id} (train of news): 50%"), first
        owner.communicate(b"")  # the owner dies: the watcher's next look finds the job lost
        stdout, stderr = watch.communicate(timeout=120)
    finally:
        if owner.poll() is None:
            owner.kill()
        if watch.poll() is None:
            watch.kill()
    assert watch.returncode == 1
    last = stderr.decode().splitlines()[-1]
    assert last.startswith(f"job {job_id} (train of news): failed at 50% after "), stderr.decode()
    assert "done" not in stderr.decode()
    assert stdout.decode().startswith(f"job {job_id} (train of news) failed: lost: the process that ran it (pid {owner.pid}")
