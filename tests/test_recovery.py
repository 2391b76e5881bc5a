"""`kill -9` of a real `driftloop train` on PostgreSQL, at two points made deterministic with
real locks: mid-fit, and right after the artifact is written. Before anyone looks, the job
still says running (the lie); the next look marks it failed as lost, the sweep removes the
orphan artifact, and the next training works and registers exactly one version."""

import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pytest
from sqlalchemy import Engine, func, select, text

from driftloop.platform.ingestion.service import ingest
from driftloop.platform.jobs import get_job
from driftloop.platform.labels.service import import_labels
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.models import Job, JobState, ModelVersion, TrainingRun
from driftloop.platform.tasks import create_task, get_task
from tests.conftest import DRIFTLOOP, run_cli, store_env

TOPICS = ["business", "entertainment", "politics", "sports", "tech"]
T = TypeVar("T")
QUICK = ["--epochs", "20"]


@pytest.fixture
def labelled_task(postgresql_engine: Engine, headlines) -> str:  # type: ignore[no-untyped-def]
    """A task with 300 labelled headlines: 240 to train on, 60 held out."""
    name = f"news-{uuid.uuid4().hex[:8]}"
    rows = headlines[:300]
    with session_scope(postgresql_engine) as session:
        create_task(session, name, TOPICS)
    list(ingest(postgresql_engine, name, enumerate({"id": i, "text": t} for i, t, _ in rows), max_text_chars=1000, batch_size=1000))
    answers = enumerate({"id": i, "label": topic} for i, _, topic in rows)
    list(import_labels(postgresql_engine, name, answers, gold=False, default_annotator="sim", eval_fraction=0.2))
    return name


@pytest.mark.parametrize("moment", ["mid-fit", "after-artifact"])
def test_a_training_killed_at_any_moment_is_reaped_and_leaves_nothing(
    moment: str, postgresql_engine: Engine, labelled_task: str, tmp_path: Path
) -> None:
    engine, task = postgresql_engine, labelled_task
    env = {**os.environ, **store_env(engine, tmp_path)}
    models = tmp_path / "models" / task
    log = (tmp_path / "train.log").open("wb")
    with engine.connect() as lock:
        if moment == "after-artifact":
            # The round touches gate_decisions only in its last transaction, after the artifact
            # is written: it can get that far and no further.
            lock.execute(text("LOCK TABLE gate_decisions IN ACCESS EXCLUSIVE MODE"))
        # mid-fit needs the default epochs, for a fit of seconds; elsewhere a short one will do
        epochs = [] if moment == "mid-fit" else QUICK
        training = subprocess.Popen([DRIFTLOOP, "train", task, *epochs], env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            job_id, run_id = _until(lambda: _latest_job(engine, task), training, tmp_path)
            if moment == "mid-fit":
                _until(lambda: 0.3 < _job(engine, job_id).progress < 0.85 or None, training, tmp_path)
                # Hold the job's row: the training's next progress report, inside fit(), waits
                # for it. Read under the lock, progress proves it has not reached the gate yet.
                progress = lock.execute(select(Job.progress).where(Job.id == job_id).with_for_update()).scalar_one()
                assert 0.3 < progress < 0.85
            else:
                _until(lambda: (models / f"run-{run_id}").is_dir() or None, training, tmp_path)
            training.send_signal(signal.SIGKILL)
            assert training.wait(timeout=60) == -signal.SIGKILL
        finally:
            if training.poll() is None:
                training.kill()
                training.wait()
            # The killed process's connection is still waiting for the lock: once it gets it,
            # it finds its client gone and rolls back.
            lock.rollback()

    # the lie, until someone looks
    job, run = _job(engine, job_id), _run(engine, run_id)
    assert (job.state, run.state) == (JobState.running, JobState.running)
    orphans = sorted(p.name for p in models.iterdir()) if models.exists() else []
    assert orphans == ([f"run-{run_id}"] if moment == "after-artifact" else [])

    if moment == "mid-fit":
        with session_scope(engine) as session:  # what GET /v1/jobs/{id} does
            read = get_job(session, job_id, lost_after=60)
            assert read.state == JobState.failed
    else:
        reaped = run_cli("jobs", "reap", "--json", env=store_env(engine, tmp_path))
        assert reaped.returncode == 0, reaped.stderr.decode()
        report = json.loads(reaped.stdout)
        assert [(j["id"], j["task"], j["training_runs"]) for j in report["lost_jobs"] if j["task"] == task] == [(job_id, task, [run_id])]
        assert [(Path(a["path"]).name, a["action"]) for a in report["artifacts"]] == [(f"run-{run_id}", "removed")]
    job, run = _job(engine, job_id), _run(engine, run_id)
    assert job.state == JobState.failed and job.finished_at is not None
    assert job.error.startswith(f"lost: the process that ran it (pid {training.pid} on host ") and " is gone; last heartbeat at " in job.error
    assert (run.state, run.error) == (JobState.failed, job.error)

    after = run_cli("train", task, *QUICK, env=store_env(engine, tmp_path))
    assert after.returncode == 0, after.stderr.decode()
    assert "candidate version 1 (head, from scratch): 240 new labels" in after.stdout.decode()
    with session_scope(engine) as session:
        task_id = get_task(session, task).id
        versions = session.execute(select(ModelVersion.version, ModelVersion.training_run_id).where(ModelVersion.task_id == task_id)).all()
        running = session.scalar(select(func.count()).select_from(Job).where(Job.task_id == task_id, Job.state == JobState.running))
    assert len(versions) == 1 and versions[0][1] != run_id and running == 0
    assert sorted(p.name for p in models.iterdir()) == [f"run-{versions[0][1]}"]  # no orphan, no .tmp-*


def _until(probe: Callable[[], T | None], training: subprocess.Popen, home: Path, timeout: float = 240) -> T:
    """Poll ``probe`` until it answers; fail at once if the training ended first."""
    deadline = time.monotonic() + timeout
    while (answer := probe()) is None:
        if training.poll() is not None:
            pytest.fail(f"the training ended first ({training.returncode}):\n{(home / 'train.log').read_text()[-3000:]}")
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return answer


def _latest_job(engine: Engine, task: str) -> tuple[int, int] | None:
    with session_scope(engine) as session:
        row = session.execute(
            select(Job.id, TrainingRun.id)
            .join(TrainingRun, TrainingRun.job_id == Job.id)
            .where(Job.task_id == get_task(session, task).id)
            .order_by(Job.id.desc())
            .limit(1)
        ).first()
        return tuple(row) if row else None  # type: ignore[return-value]


def _job(engine: Engine, job_id: int) -> Job:
    with session_scope(engine) as session:
        job = session.get(Job, job_id)
        session.expunge(job)
        return job


def _run(engine: Engine, run_id: int) -> TrainingRun:
    with session_scope(engine) as session:
        run = session.get(TrainingRun, run_id)
        session.expunge(run)
        return run
