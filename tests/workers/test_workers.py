"""Celery workers, for real: `driftloop worker` processes (one on `default`, one on `train`)
against the machine's Redis (a database index of this file's own) and a PostgreSQL store; jobs
submitted through the dispatch seam; workers killed with kill -9 mid-training."""

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import redis
from sqlalchemy import Engine, func, select

from driftloop.platform.config import Settings
from driftloop.platform.jobs import submit
from driftloop.platform.modeling.rounds import RoundRequest, request_params
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.models import JobState, ModelVersion, TrainingRun
from driftloop.platform.tasks import get_task
from tests.conftest import store_env
from tests.job_watch import wait_for_job_row
from tests.learning_loop import Loop
from tests.workers.celery_workers import Workers

BROKER = "redis://127.0.0.1:6379/12"  # this file's own database: parallel runs and a demo use others


@pytest.fixture
def broker() -> Iterator[str]:
    client = redis.Redis.from_url(BROKER)
    client.flushdb()
    yield BROKER
    client.flushdb()


def worker_env(engine: Engine, home: Path, **settings: str) -> dict[str, str]:
    return {**store_env(engine, home), "DRIFTLOOP_BROKER_URL": BROKER, **{f"DRIFTLOOP_{k.upper()}": v for k, v in settings.items()}}


@pytest.fixture
def workers(postgresql_engine: Engine, tmp_path: Path, broker: str) -> Iterator[Workers]:
    pool = Workers(worker_env(postgresql_engine, tmp_path), tmp_path / "logs")
    yield pool
    pool.stop_all()


def training(engine: Engine, loop: Loop, settings: Settings) -> int:
    request = RoundRequest(task=loop.task, replay_capacity=settings.replay_capacity, replay_ratio=settings.replay_ratio)
    return submit(engine, settings, "train", loop.task, request_params(request))


def versions(engine: Engine, task: str) -> int:
    with session_scope(engine) as session:
        task_id = get_task(session, task).id
        return session.scalar(select(func.count()).select_from(ModelVersion).where(ModelVersion.task_id == task_id)) or 0


def test_jobs_go_to_their_queue_and_the_workers_record_themselves(postgresql_engine, tmp_path, headlines, encoder, workers):  # type: ignore[no-untyped-def]
    loop = Loop(postgresql_engine, tmp_path, headlines[:400], encoder)
    loop.label(loop.headlines[:150])
    settings = loop.settings.model_copy(update={"broker_url": BROKER})
    default = workers.start("default", "default")
    workers.start("train", "train")

    trained = wait_for_job_row(postgresql_engine, training(postgresql_engine, loop, settings))
    selected_id = submit(postgresql_engine, settings, "select", loop.task, {"task": loop.task, "budget": 5})
    selected = wait_for_job_row(postgresql_engine, selected_id)

    assert (trained.state, trained.result["version"], trained.result["promoted"]) == (JobState.succeeded, 1, True), trained.error
    assert (trained.queue, trained.worker.split("@")[0], trained.attempts) == ("train", "train", 1)
    assert (selected.state, selected.result["picks"], selected.queue) == (JobState.succeeded, 5, "default"), selected.error
    assert selected.worker.startswith("default@")
    # CUDA (torch) is never initialised in a worker's parent process, only in the children that run tasks
    assert not _maps_torch(default.pid)
    assert any(_maps_torch(child.pid) for child in psutil.Process(default.pid).children())


def test_a_training_whose_worker_process_is_killed_runs_again_and_makes_one_version(postgresql_engine, tmp_path, headlines, encoder, workers):  # type: ignore[no-untyped-def]
    loop = Loop(postgresql_engine, tmp_path, headlines[:400], encoder)
    loop.label(loop.headlines[:300])
    settings = loop.settings.model_copy(update={"broker_url": BROKER})
    workers.start("train", "train")
    job_id = training(postgresql_engine, loop, settings)
    started = wait_for_job_row(postgresql_engine, job_id, lambda j: j.state == JobState.running and j.progress >= 0.05)

    os.kill(started.owner_pid, signal.SIGKILL)  # the pool process that trains: its worker gets the task back

    job = wait_for_job_row(postgresql_engine, job_id)
    assert (job.state, job.attempts, job.result["version"]) == (JobState.succeeded, 2, 1), job.error
    assert versions(postgresql_engine, loop.task) == 1
    with session_scope(postgresql_engine) as session:
        runs = session.execute(select(TrainingRun.state, TrainingRun.error).where(TrainingRun.job_id == job_id).order_by(TrainingRun.id)).all()
    assert [state for state, _ in runs] == [JobState.failed, JobState.succeeded]
    assert runs[0].error.startswith("lost: the process that ran it")
    # nothing half-written stays: one artifact folder, the registered version's
    assert len(list((tmp_path / "models" / loop.task).iterdir())) == 1


def test_a_killed_worker_s_training_is_picked_up_by_a_restarted_worker(postgresql_engine, tmp_path, headlines, encoder, broker):  # type: ignore[no-untyped-def]
    loop = Loop(postgresql_engine, tmp_path, headlines[:400], encoder)
    loop.label(loop.headlines[:150])
    # Redis gives an unacknowledged task back once its visibility timeout has passed since its
    # delivery; it must outlast the hard time limit, so both are small here.
    limits = {"task_soft_time_limit": "30", "task_time_limit": "35", "broker_visibility_timeout": "40"}
    workers = Workers(worker_env(postgresql_engine, tmp_path, **limits), tmp_path / "logs")
    try:
        workers.start("train", "train")
        settings = loop.settings.model_copy(update={"broker_url": BROKER})
        job_id = training(postgresql_engine, loop, settings)
        wait_for_job_row(postgresql_engine, job_id, lambda j: j.state == JobState.running)

        workers.kill("train")  # the whole worker, kill -9
        workers.start("train-2", "train")

        job = wait_for_job_row(postgresql_engine, job_id, timeout=400)
        assert (job.state, job.attempts, job.worker.split("@")[0]) == (JobState.succeeded, 2, "train-2"), job.error
        assert versions(postgresql_engine, loop.task) == 1
    finally:
        workers.stop_all()


def test_a_job_that_succeeded_is_not_run_again_when_its_task_is_delivered_twice(postgresql_engine, tmp_path, headlines, encoder, workers):  # type: ignore[no-untyped-def]
    from driftloop.workers.app import create_celery

    loop = Loop(postgresql_engine, tmp_path, headlines[:300], encoder)
    loop.label(loop.headlines[:150])
    settings = loop.settings.model_copy(update={"broker_url": BROKER})
    workers.start("train", "train")
    job_id = training(postgresql_engine, loop, settings)
    first = wait_for_job_row(postgresql_engine, job_id)
    assert first.state == JobState.succeeded, first.error

    again = create_celery(settings).send_task("driftloop.train", args=[job_id], queue="train")
    assert again.get(timeout=120) is None  # the worker ran the task and found nothing to do

    after = wait_for_job_row(postgresql_engine, job_id)
    assert (after.attempts, after.finished_at, versions(postgresql_engine, loop.task)) == (1, first.finished_at, 1)


def test_the_broker_s_visibility_timeout_outlasts_the_hard_time_limit(tmp_path: Path) -> None:
    from pydantic import ValidationError

    from driftloop.workers.app import create_celery

    settings = Settings(home=tmp_path, broker_url=BROKER, task_soft_time_limit=50, task_time_limit=60)
    app = create_celery(settings)
    with app.connection_for_write() as connection:
        # what kombu's Redis channel will use, not only what was configured
        assert connection.default_channel.visibility_timeout == 660 == settings.visibility_timeout
    with pytest.raises(ValidationError, match="must be greater than DRIFTLOOP_TASK_TIME_LIMIT"):
        Settings(home=tmp_path, task_soft_time_limit=50, task_time_limit=60, broker_visibility_timeout=60)


def _maps_torch(pid: int) -> bool:
    """Whether the process has torch's library mapped (it imported torch)."""
    return "libtorch" in Path(f"/proc/{pid}/maps").read_text()


def test_a_worker_with_an_empty_home_trains_into_the_shared_storage(postgresql_engine, tmp_path, headlines, encoder, broker):  # type: ignore[no-untyped-def]
    """What a worker on another machine needs: the store, the broker and the shared data folder
    (DRIFTLOOP_DATA_DIR); its own home may be empty."""
    from driftloop.platform.modeling import registry
    from driftloop.platform.modeling.artifacts import path_from_uri
    from driftloop.platform.modeling.rounds import load_version
    from driftloop.platform.selection.rounds import SelectionRequest, run_selection

    shared, worker_home, api_home = tmp_path / "shared", tmp_path / "worker-home", tmp_path / "api-home"
    loop = Loop(postgresql_engine, shared, headlines[:300], encoder)
    loop.label(loop.headlines[:150])
    env = {**worker_env(postgresql_engine, worker_home), "DRIFTLOOP_DATA_DIR": str(shared)}
    workers = Workers(env, tmp_path / "logs")
    try:
        workers.start("train", "train")
        api = Settings(home=api_home, data_dir=shared, database_url=loop.settings.database_url, broker_url=BROKER)
        job = wait_for_job_row(postgresql_engine, training(postgresql_engine, loop, api))
        assert (job.state, job.result["version"]) == (JobState.succeeded, 1), job.error
    finally:
        workers.stop_all()

    assert not (worker_home / "models").exists() and not (worker_home / "vectors").exists()
    with session_scope(postgresql_engine) as session:
        champion = registry.champion(session, get_task(session, loop.task).id)
        assert path_from_uri(champion.artifact_uri).is_relative_to(shared)
        model = load_version(champion, encoder)  # another host loads what the worker trained
    assert model.predict_proba(["shares fell sharply"]).shape == (1, 5)
    # and finds the vectors the worker computed: a selection here reuses them
    picked = run_selection(postgresql_engine, api, SelectionRequest(task=loop.task, budget=5), encoder=encoder)
    assert len(picked.picks) == 5


def test_a_lora_training_killed_after_a_checkpoint_resumes_from_it_when_delivered_again(postgresql_engine, tmp_path, headlines, encoder):  # type: ignore[no-untyped-def]
    """The job-level path of a checkpoint: a lora training's pool process is killed after its
    job-scoped checkpoint is written; the worker gets the task back and the next attempt's fit
    starts from that checkpoint's step."""
    from driftloop.platform.modeling.rounds import checkpoint_path
    from driftloop.platform.modeling.training import TrainingConfig

    loop = Loop(postgresql_engine, tmp_path, headlines[:200], encoder)
    loop.label(loop.headlines[:60])
    env = {**worker_env(postgresql_engine, tmp_path), "DRIFTLOOP_CHECKPOINT_STEPS": "2"}
    redis.Redis.from_url(BROKER).flushdb()
    workers = Workers(env, tmp_path / "logs")
    try:
        workers.start("train", "train")
        settings = loop.settings.model_copy(update={"broker_url": BROKER})
        request = RoundRequest(task=loop.task, mode="lora", training=TrainingConfig(epochs=2, batch_size=4, patience=10))
        job_id = submit(postgresql_engine, settings, "train", loop.task, request_params(request))
        checkpoint = checkpoint_path(settings, job_id)
        started = wait_for_job_row(postgresql_engine, job_id, lambda j: j.state == JobState.running and checkpoint.exists())
        time.sleep(1.0)  # a step or two past it

        os.kill(started.owner_pid, signal.SIGKILL)

        job = wait_for_job_row(postgresql_engine, job_id)
        assert (job.state, job.attempts) == (JobState.succeeded, 2), job.error
        with session_scope(postgresql_engine) as session:
            [run] = session.scalars(select(TrainingRun).where(TrainingRun.job_id == job_id, TrainingRun.state == JobState.succeeded)).all()
        fit = run.metrics["fit"]
        assert fit["resumed_from_step"] is not None and fit["resumed_from_step"] >= 2, fit
        assert fit["steps"] > fit["resumed_from_step"]
        # removed once the job succeeded: just after its success commits (a crash between the two
        # leaves a checkpoint of a finished job, never a finished job without its checkpoint)
        deadline = time.monotonic() + 30
        while checkpoint.parent.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not checkpoint.parent.exists()
    finally:
        workers.stop_all()
        redis.Redis.from_url(BROKER).flushdb()
