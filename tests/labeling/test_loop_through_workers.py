"""The loop running by itself through real Celery workers (one on `default`, one on `train`), a
real Argilla and a PostgreSQL store: texts ingested over HTTP are embedded by a worker; `loop`
passes (what a schedule fires) select and push a round, sync the answers a simulated annotator
gives in Argilla, and queue a training; the train worker trains, gates and promotes; the new
champion re-scores the pool. No CLI step in between."""

import uuid
from pathlib import Path

import pytest
from sqlalchemy import Engine, select

from driftloop.labeling import register_jobs
from driftloop.labeling.annotator import AnnotatorLogin, SimulatedAnnotator
from driftloop.labeling.dataset import generations
from driftloop.platform.api.app import create_app
from driftloop.platform.config import Settings
from driftloop.platform.jobs import submit
from driftloop.platform.modeling import registry
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.models import Job, JobState, TextRecord
from driftloop.platform.tasks import get_task
from driftloop.workers.app import create_celery
from tests.api_keys import admin_client
from tests.conftest import store_env
from tests.job_watch import wait_for_job_row
from tests.workers.celery_workers import Workers

# The machine's Redis (a database index of its own) and its RabbitMQ: the loop must run on both.
BROKERS = ["redis://127.0.0.1:6379/12", "amqp://guest:guest@127.0.0.1:5672//"]
ANNOTATOR = "annotator-1"


def _jobs(engine: Engine, task: str, kind: str) -> list[Job]:
    with session_scope(engine) as session:
        task_id = get_task(session, task).id
        rows = session.scalars(select(Job).where(Job.task_id == task_id, Job.kind == kind).order_by(Job.id)).all()
        for row in rows:
            session.expunge(row)
        return list(rows)


@pytest.mark.parametrize("broker", BROKERS, ids=["redis", "rabbitmq"])
def test_the_loop_runs_through_the_workers_from_ingest_to_a_promoted_model(broker: str, postgresql_engine, tmp_path: Path, headlines, argilla_server):  # type: ignore[no-untyped-def]
    engine = postgresql_engine
    task = f"news-{uuid.uuid4().hex[:8]}"
    argilla = {"argilla_url": argilla_server.url, "argilla_api_key": argilla_server.api_key, "argilla_workspace": argilla_server.workspace}
    settings = Settings(home=tmp_path, database_url=engine.url.render_as_string(hide_password=False), broker_url=broker, **argilla)
    env = {**store_env(engine, tmp_path), "DRIFTLOOP_BROKER_URL": broker, **{f"DRIFTLOOP_{k.upper()}": v for k, v in argilla.items()}}
    create_celery(settings).control.purge()  # what an earlier run may have left in the queues
    workers = Workers(env, tmp_path / "logs")
    register_jobs()
    try:
        workers.start("default", "default")
        workers.start("train", "train")
        with admin_client(create_app(settings)) as api:
            assert api.post("/v1/tasks", json={"name": task, "labels": ["business", "entertainment", "politics", "sports", "tech"]}).status_code == 201
            records = [{"id": i, "text": text} for i, text, _ in headlines[:300]]
            assert api.post(f"/v1/tasks/{task}/texts", json=records).json()["stored"] == 300

        # the ingest queued the embedding of the new texts; a default worker ran it
        [refresh] = _jobs(engine, task, "score")
        refresh = wait_for_job_row(engine, refresh.id)
        assert (refresh.state, refresh.result["indexed"], refresh.result["scored_by"]) == (JobState.succeeded, 300, None), refresh.error
        assert refresh.worker.startswith("default@")

        params = {"task": task, "budget": 60, "retrain_after": 40}
        first = wait_for_job_row(engine, submit(engine, settings, "loop", task, params))
        assert first.state == JobState.succeeded, first.error
        assert (first.result["picks"], first.result["pushed"], first.result["training_job"]) == (60, 60, None)

        # an annotator answers the round in Argilla, with the corpus's topics
        topic_of = {i: topic for i, _, topic in headlines}
        with session_scope(engine) as session:
            truth = {t: topic_of[e] for t, e in session.execute(select(TextRecord.id, TextRecord.external_id).where(TextRecord.task_id == get_task(session, task).id))}
            dataset = generations(get_task(session, task))[-1]
        login = AnnotatorLogin(argilla_server.url, ANNOTATOR, argilla_server.annotators[ANNOTATOR])
        assert SimulatedAnnotator(truth.get, ANNOTATOR).label_in_argilla(login, dataset) == 60

        second = wait_for_job_row(engine, submit(engine, settings, "loop", task, params))
        assert second.state == JobState.succeeded, second.error
        assert second.result["sync"]["responses"] == 60 and second.result["new_labels"] >= 40
        assert second.result["picks"] == 60  # the round was answered: the next one goes out

        training = wait_for_job_row(engine, second.result["training_job"])
        assert (training.state, training.result["promoted"], training.queue) == (JobState.succeeded, True, "train"), training.error
        assert training.worker.startswith("train@")
        with session_scope(engine) as session:
            champion = registry.champion(session, get_task(session, task).id)
            assert champion is not None and champion.version == training.result["version"] == 1

        # the new champion re-scored the pool
        rescored = wait_for_job_row(engine, _jobs(engine, task, "score")[-1].id)
        assert (rescored.state, rescored.result["scored_by"]) == (JobState.succeeded, 1), rescored.error
        assert all(j.worker.startswith("default@") for j in _jobs(engine, task, "loop"))
    finally:
        workers.stop_all()
        create_celery(settings).control.purge()
