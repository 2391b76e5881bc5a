"""SIGTERM to a real `driftloop serve` (no broker) while its own runner trains: with no grace left
the training is handed back (queued again, never lost, its checkpoint kept); the next serve runs
it as it starts, resuming from the checkpoint, and stopped in turn lets it finish within the grace.
On the embedded SQLite store and on PostgreSQL."""

import signal
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine

from driftloop.labeling.server.ports import free_port
from driftloop.platform.config import Settings
from driftloop.platform.modeling.rounds import checkpoint_path
from driftloop.platform.store.models import JobState
from tests.api_keys import make_key
from tests.job_watch import assert_resumed_once_and_finished, job_row, training_run_states, wait_for_job_row
from tests.learning_loop import Loop
from tests.processes import Driftloop, own_store


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Engine, dict[str, str]]]:
    with own_store(request.param, tmp_path / "home") as found:
        yield found


def _serve(env: dict[str, str], grace: str) -> tuple[Driftloop, str]:
    port = free_port()
    server = Driftloop(["serve", "--port", str(port)], {**env, "DRIFTLOOP_STOP_GRACE_SECONDS": grace})
    server.wait_for("Application startup complete")
    return server, f"http://127.0.0.1:{port}"


def test_a_stopped_server_hands_its_training_back_and_the_next_one_resumes_it_and_lets_it_finish(
    store: tuple[Engine, dict[str, str]], tmp_path: Path, headlines
) -> None:  # type: ignore[no-untyped-def]
    engine, env = store
    env = {**env, "DRIFTLOOP_BROKER_URL": "", "DRIFTLOOP_CHECKPOINT_STEPS": "2"}
    loop = Loop(engine, tmp_path / "home", headlines[:200], encoder=None)
    loop.label(loop.headlines[:100])
    admin = {"Authorization": f"Bearer {make_key(engine)}"}
    settings = Settings(home=tmp_path / "home", database_url=engine.url.render_as_string(hide_password=False))
    servers: list[Driftloop] = []
    try:
        first, base = _serve(env, grace="0")
        servers.append(first)
        queued = httpx.post(f"{base}/v1/tasks/{loop.task}/train", json={"mode": "lora", "epochs": 4}, headers=admin, timeout=60)
        assert queued.status_code == 202, queued.text
        job_id = queued.json()["job"]
        checkpoint = checkpoint_path(settings, job_id)
        wait_for_job_row(engine, job_id, lambda j: j.state == JobState.running and checkpoint.exists())

        assert first.stop() in (0, -signal.SIGTERM), first.log()  # uvicorn ends with the signal it got, once stopped
        handed = first.wait_for(f"job {job_id} handed back, queued again for the next runner: it did not finish within DRIFTLOOP_STOP_GRACE_SECONDS (0s)")
        assert f"(0s) after its runner (pid {first.pid} on host " in handed and handed.endswith(") stopped"), handed
        job = job_row(engine, job_id)
        assert (job.state, job.owner_pid, job.error, job.finished_at, job.attempts) == (JobState.queued, None, None, None, 1)
        assert job.message.startswith(f"handed back: its runner (pid {first.pid} on host ") and job.message.endswith(") stopped"), job.message
        assert training_run_states(engine, job_id) == [JobState.cancelled]
        assert checkpoint.exists()  # the next attempt resumes from it

        second, _ = _serve(env, grace="600")  # a bound for a loaded machine: the training needs far less
        servers.append(second)
        second.wait_for(f"running 1 queued job(s) that no live process owned: {job_id}")
        resumed = wait_for_job_row(engine, job_id, lambda j: j.state != JobState.queued)
        assert (resumed.state, resumed.owner_pid, resumed.attempts) == (JobState.running, second.pid, 2), resumed.error

        assert second.stop(timeout=600) in (0, -signal.SIGTERM), second.log()  # it waits for the training
        stopping = second.wait_for("stopping: job ")
        assert stopping == f"INFO:     stopping: job {job_id} may finish within DRIFTLOOP_STOP_GRACE_SECONDS (600s), else it is handed back", stopping
        second.wait_for(f"job {job_id} succeeded before the stop")
        assert not second.said(f"job {job_id} handed back"), second.log()
    finally:
        for server in servers:
            server.kill()

    assert_resumed_once_and_finished(engine, job_id, checkpoint)
