"""`driftloop jobs` as users run it (real processes, SQLite home)."""

import json
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
from tests.conftest import run_cli


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
