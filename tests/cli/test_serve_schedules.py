"""The embedded path: `driftloop serve` with no broker fires the stored schedules itself and its own
runner runs their jobs (no Redis, no beat), and stops them cleanly with the server."""

import os
import signal
import subprocess
import time
from pathlib import Path

import httpx

from tests.api_keys import cli_key
from tests.cli.test_serve_and_demo import _free_port
from tests.conftest import DRIFTLOOP


def test_serve_without_a_broker_fires_schedules_and_runs_their_jobs(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "DRIFTLOOP_HOME": str(tmp_path), "DRIFTLOOP_DATABASE_URL": "", "DRIFTLOOP_BROKER_URL": ""}
    env.pop("DRIFTLOOP_ARGILLA_URL", None)  # no Argilla: a sync job fails fast, and says why
    server = subprocess.Popen([DRIFTLOOP, "serve", "--port", str(port)], env=env, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120  # readiness, not speed: start-up is slow on a busy machine
        while True:
            assert time.monotonic() < deadline and server.poll() is None, "the server did not start"
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        key_env = {k: env[k] for k in ("DRIFTLOOP_HOME", "DRIFTLOOP_DATABASE_URL")}
        admin = {"Authorization": f"Bearer {cli_key(key_env)}"}
        assert httpx.post(f"{base}/v1/tasks", json={"name": "news", "labels": ["a", "b"]}, headers=admin).status_code == 201
        created = httpx.post(f"{base}/v1/tasks/news/schedules", json={"action": "sync", "every": "2s"}, headers=admin)
        assert created.status_code == 201, created.text
        url = created.headers["location"]

        # the first firing's job runs in the server (importing the Argilla SDK takes a while): firings
        # meanwhile are skipped; once it has ended, the next firing queues the next job
        deadline = time.monotonic() + 90
        while True:
            assert time.monotonic() < deadline, httpx.get(f"{base}{url}", headers=admin).json()
            firings = list(reversed(httpx.get(f"{base}{url}", headers=admin).json()["firings"]))
            jobs = [f["job"] for f in firings if f["job"] is not None]
            if len(jobs) >= 2:
                break
            time.sleep(0.5)
        for job_id in jobs[:1]:
            job = httpx.get(f"{base}/v1/jobs/{job_id}", headers=admin).json()
            assert (job["kind"], job["state"], job["owner_pid"]) == ("sync", "failed", server.pid), job
            assert "no Argilla configured" in job["error"]
        between = [f for f in firings if f["id"] > firings[0]["id"] and f["job"] is None and f["id"] < _made(firings, jobs[1])]
        assert all(f["skipped"] in (f"job {jobs[0]} (sync) is still queued", f"job {jobs[0]} (sync) is still running") for f in between)
        assert firings[0]["job"] == jobs[0]
        assert {f["trigger"] for f in firings} == {"every 2s"}
    finally:
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=30)
        log = server.stderr.read() if server.stderr else ""
    assert code in (0, -signal.SIGTERM), log  # uvicorn re-raises the signal once it has shut down
    assert "Application shutdown complete" in log, log
    # the server's log says what fired, each firing on a line
    assert "schedules fire in this process and their jobs run here (no broker configured)" in log
    assert f"schedule 1 (sync of task news, every 2s): job {jobs[0]}" in log
    assert "scheduler tick failed" not in log and "could not fire" not in log


def _made(firings: list[dict], job: int) -> int:  # type: ignore[type-arg]
    """The id of the firing that queued ``job``."""
    return next(f["id"] for f in firings if f["job"] == job)
