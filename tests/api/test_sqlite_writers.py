"""Concurrent writers on the embedded default: a real `driftloop serve` on its SQLite store, three
clients ingesting, one cycling the admin routes (tasks, labels, schedules, job submission and
cancel), a selection and a training job writing heartbeats every 0.2 s in the server's runner, and a
foreground `driftloop select` beside them. Nothing may fail with "database is locked": every
answer is a success (or the documented 409 of a job that ended before its cancel), every text is
stored, and both jobs succeed.

Before every writing unit took SQLite's write lock at BEGIN, this pattern answered 500 to nearly
every `POST /v1/tasks` and failed selection jobs in `_record` (issue 21)."""

import json
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from driftloop.labeling.server.ports import free_port
from tests.api_keys import cli_key
from tests.conftest import DRIFTLOOP, run_cli

LOAD_SECONDS = 20.0
JOBS_DEADLINE = 420.0  # loading torch and the encoder, embedding ~300 headlines, a head fit: a loaded 2-core machine


@dataclass
class Tally:
    answers: int = 0
    failures: list[str] = field(default_factory=list)
    ingested: set[str] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, what: str, response: httpx.Response | None, error: Exception | None = None, ok: tuple[int, ...] = ()) -> bool:
        with self.lock:
            self.answers += 1
            if error is not None:
                self.failures.append(f"{what}: {type(error).__name__}: {error}")
                return False
            assert response is not None
            if response.status_code >= 300 and response.status_code not in ok:
                self.failures.append(f"{what}: {response.status_code} {response.text[:300]}")
                return False
            return True


@dataclass
class Server:
    url: str
    key: str
    task: str
    env: dict[str, str]
    log: Path


@pytest.fixture
def server(tmp_path: Path, headlines: list[tuple[str, str, str]]) -> Iterator[Server]:
    env = {
        "DRIFTLOOP_HOME": str(tmp_path / "home"),
        "DRIFTLOOP_DATABASE_URL": "",  # the embedded default
        "DRIFTLOOP_BROKER_URL": "",  # the server's own runner
        "DRIFTLOOP_JOB_HEARTBEAT_SECONDS": "0.2",  # heartbeats as often as a busy job could write them
        "DRIFTLOOP_ARGILLA_URL": "",
        "COLUMNS": "200",
    }
    task = "news"
    topics = ",".join(sorted({topic for _, _, topic in headlines}))
    assert run_cli("task", "create", task, "--labels", topics, env=env).returncode == 0
    rows = headlines[:300]
    texts = "".join(json.dumps({"id": i, "text": text}) + "\n" for i, text, _ in rows)
    assert run_cli("ingest", task, "-", env=env, stdin=texts.encode()).returncode == 0
    labels = "".join(json.dumps({"id": i, "label": topic}) + "\n" for i, _, topic in rows[:60])
    imported = run_cli("label", "import", task, "-", env=env, stdin=labels.encode())
    assert imported.returncode == 0, imported.stderr.decode()
    key = cli_key(env)
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [DRIFTLOOP, "serve", "--port", str(port)], env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, process, log)
        yield Server(url, key, task, env, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()


def _wait_until_up(url: str, process: subprocess.Popen, log: Path) -> None:  # type: ignore[type-arg]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"driftloop serve exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"driftloop serve did not answer /healthz within 120 s:\n{log.read_text()[-3000:]}")


def _ingest(server: Server, client: int, stop: threading.Event, tally: Tally) -> None:
    with httpx.Client(base_url=server.url, timeout=120, headers={"X-API-Key": server.key}) as http:
        batch = 0
        while not stop.is_set():
            records = [{"id": f"c{client}-{batch}-{k}", "text": f"client {client} batch {batch} text {k} {uuid.uuid4().hex}"} for k in range(5)]
            try:
                answer = http.post(f"/v1/tasks/{server.task}/texts", json=records)
            except httpx.HTTPError as error:
                tally.record("ingest", None, error)
                continue
            if tally.record("ingest", answer):
                with tally.lock:
                    tally.ingested.update(r["id"] for r in records)
            batch += 1


def _admin(server: Server, stop: threading.Event, tally: Tally) -> None:
    with httpx.Client(base_url=server.url, timeout=120, headers={"X-API-Key": server.key}) as http:

        def call(what: str, method: str, path: str, body: dict | None = None, ok: tuple[int, ...] = ()) -> httpx.Response | None:  # type: ignore[type-arg]
            try:
                answer = http.request(method, path, json=body)
            except httpx.HTTPError as error:
                tally.record(what, None, error)
                return None
            return answer if tally.record(what, answer, ok=ok) else None

        round_ = 0
        while not stop.is_set():
            name = f"admin-{round_}"
            call("create task", "POST", "/v1/tasks", {"name": name, "labels": ["a", "b"]})
            call("add labels", "POST", f"/v1/tasks/{name}/labels", {"labels": ["c"]})
            added = call("add schedule", "POST", f"/v1/tasks/{server.task}/schedules", {"action": "sync", "every": "6h"})
            if added is not None:
                schedule = f"/v1/tasks/{server.task}/schedules/{added.json()['id']}"
                call("pause", "POST", f"{schedule}/pause")
                call("resume", "POST", f"{schedule}/resume")
                call("remove schedule", "DELETE", schedule)
            queued = call("submit select", "POST", f"/v1/tasks/{server.task}/select", {"budget": 1})
            if queued is not None:
                job = queued.json()["job"]
                call("cancel", "POST", f"/v1/jobs/{job}/cancel", ok=(409,))  # 409: it ended before the cancel
                call("read job", "GET", f"/v1/jobs/{job}")
            round_ += 1


def _state(server: Server, job: int, tally: Tally) -> str:
    try:
        answer = httpx.get(f"{server.url}/v1/jobs/{job}", headers={"X-API-Key": server.key}, timeout=120)
    except httpx.HTTPError as error:
        tally.record("poll job", None, error)
        return "unknown"
    return answer.json()["state"] if tally.record("poll job", answer) else "unknown"


@pytest.mark.timeout(900)
def test_concurrent_writers_on_the_embedded_store_never_fail(server: Server) -> None:
    with httpx.Client(base_url=server.url, timeout=120, headers={"X-API-Key": server.key}) as http:
        select = http.post(f"/v1/tasks/{server.task}/select", json={"budget": 20})
        train = http.post(f"/v1/tasks/{server.task}/train", json={"promote": True})
    assert select.status_code == 202 and train.status_code == 202, (select.text, train.text)
    jobs = {"select": select.json()["job"], "train": train.json()["job"]}

    tally, stop = Tally(), threading.Event()
    threads = [threading.Thread(target=_ingest, args=(server, n, stop, tally)) for n in range(3)]
    threads.append(threading.Thread(target=_admin, args=(server, stop, tally)))
    for thread in threads:
        thread.start()
    # a foreground selection in its own process, as `make demo` runs one, beside the server's writers
    foreground = subprocess.Popen(
        [DRIFTLOOP, "select", server.task, "--budget", "5", "--strategy", "random", "--json"],
        env={**os.environ, **server.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    started = time.monotonic()
    states: dict[str, str] = {}
    try:
        # the load runs at least LOAD_SECONDS and until both jobs have ended, so they overlap it
        while time.monotonic() - started < JOBS_DEADLINE:
            states = {kind: _state(server, job, tally) for kind, job in jobs.items()}
            if time.monotonic() - started >= LOAD_SECONDS and all(s not in ("queued", "running") for s in states.values()):
                break
            time.sleep(1.0)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=180)
        out, err = foreground.communicate(timeout=600)

    log = server.log.read_text()
    assert "database is locked" not in log, log[-3000:]
    assert not tally.failures, f"{len(tally.failures)} of {tally.answers} requests failed, e.g. {tally.failures[:5]}"
    assert tally.answers > 50 and len(tally.ingested) > 50  # the load really ran
    details = {kind: httpx.get(f"{server.url}/v1/jobs/{job}", headers={"X-API-Key": server.key}).json() for kind, job in jobs.items()}
    assert all(d["state"] == "succeeded" for d in details.values()), details
    assert foreground.returncode == 0, err.decode()[-2000:]
    assert len(json.loads(out)["picks"]) == 5

    stored = run_cli("task", "list", "--json", env=server.env)
    counts = {t["name"]: t["texts"] for t in json.loads(stored.stdout)}
    assert counts[server.task] == 300 + len(tally.ingested)  # every accepted text is there, once
