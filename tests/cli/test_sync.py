"""`driftloop sync` as users run it when no Argilla answers: a real process on a SQLite home."""

import json
from pathlib import Path

from sqlalchemy import select

from driftloop.platform.labels.outbox import queue_picks
from driftloop.platform.store.engine import make_engine, session_scope
from driftloop.platform.store.models import SelectionRound, TextRecord
from driftloop.platform.tasks import get_task
from tests.conftest import run_cli


def _two_pending_picks(tmp_path: Path) -> dict[str, str]:
    """A SQLite home whose task has two picks waiting in the outbox; the CLI's environment for it."""
    env = {"DRIFTLOOP_HOME": str(tmp_path), "DRIFTLOOP_DATABASE_URL": ""}
    assert run_cli("task", "create", "news", "--labels", "business,tech", env=env).returncode == 0
    texts = b'{"id": "1", "text": "shares fell"}\n{"id": "2", "text": "a new phone"}\n'
    assert run_cli("ingest", "news", "-", env=env, stdin=texts).returncode == 0
    # two picks waiting in the outbox, as a selection round leaves them
    engine = make_engine(f"sqlite:///{tmp_path / 'driftloop.db'}")
    with session_scope(engine) as session:
        task_id = get_task(session, "news").id
        round_ = SelectionRound(task_id=task_id, strategy="random", budget=2, params={})
        session.add(round_)
        session.flush()
        queue_picks(session, task_id, round_.id, list(session.scalars(select(TextRecord.id).where(TextRecord.task_id == task_id))))
    engine.dispose()
    return env


def test_sync_without_argilla_keeps_the_pushes_pending_and_says_so_in_json(tmp_path: Path) -> None:
    env = _two_pending_picks(tmp_path)

    synced = run_cli("sync", "news", "--json", env=env)

    assert synced.returncode == 1  # as without --json: Argilla could not be reached
    result = json.loads(synced.stdout)
    assert (result["task"], result["responses"], result["labels_changed"], result["skipped"], result["unresolved"]) == ("news", 0, 0, 0, 0)
    assert result["agreement"] is None
    push = result["push"]
    assert (push["pushed"], push["pending"], push["dataset"]) == (0, 2, None)
    assert push["error"].startswith("LabelingUnavailable: no Argilla configured")
    assert "2 records stay pending" in synced.stderr.decode()


def test_sync_no_wait_runs_as_a_job_in_a_detached_process_that_says_why_it_failed(tmp_path: Path) -> None:
    env = _two_pending_picks(tmp_path)

    queued = run_cli("sync", "news", "--no-wait", env=env)

    assert queued.returncode == 0, queued.stderr
    job_id = int(queued.stdout.decode())  # the id alone on stdout
    watched = run_cli("jobs", "watch", str(job_id), "--json", env=env, timeout=120)
    job = json.loads(watched.stdout)
    # the detached `jobs run` knew the labeling kind, ran it, and the job says why it failed
    assert (job["kind"], job["task"], job["state"]) == ("sync", "news", "failed"), job
    assert job["error"].startswith("Unavailable: Argilla could not be reached; 2 pushes stay pending"), job["error"]
    assert watched.returncode == 1
