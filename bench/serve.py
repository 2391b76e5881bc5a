"""The prediction API under load, against the model's own batched forward pass.

    .venv/bin/python bench/serve.py [--clients 1 8 32 128] [--seconds 20]

A head-mode champion trained on real health-news tweets (the label is the outlet) is served by a
real ``driftloop serve`` process (one worker, PostgreSQL store, the default batcher settings).
Closed-loop clients (asyncio, a minimal keep-alive HTTP/1.1 client, in this process) each keep one request of one tweet in
flight, ``?store=false``; for each client count: throughput (texts/s), p50 and p99 latency, errors.

The limit, measured in the same run on the same machine, before the server starts and after it
stops (their mean): the same model's
``predict_proba`` over the same tweets in this process, in batches of DRIFTLOOP_SERVE_MAX_BATCH,
in request order (what the batcher can at best do). Targets (issue 15): at 32 clients >= 0.8x the
raw throughput, p99 < 5x the single-request latency (the p50 at one client); zero errors while a
new version is promoted and rolled back under 32 clients. Also measured: 32 clients with
``?store=true`` (every text written to the stream with its prediction).

The clients share the machine with the server: on a 2-core machine their CPU is taken from it.
"""

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import torch
from sqlalchemy import Engine
from stores import fresh_store  # bench/stores.py: these scripts run from this folder

from driftloop.platform import corpora
from driftloop.platform.config import Settings
from driftloop.platform.ingestion.service import ingest
from driftloop.platform.labels.service import import_labels
from driftloop.platform.modeling import registry
from driftloop.platform.modeling.encoder import load_encoder
from driftloop.platform.modeling.rounds import RoundRequest, load_version, train_round
from driftloop.platform.store.engine import session_scope
from driftloop.platform.tasks import create_task, get_task

DRIFTLOOP = str(Path(sys.executable).with_name("driftloop"))
TASK = "tweets"


@dataclass
class Run:
    clients: int
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    versions: dict[int, int] = field(default_factory=dict)
    server_cores: float = 0.0  # the server process's CPU seconds per second, over the whole run

    @property
    def throughput(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.latencies, q)) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32, 128])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per client count (after a warm-up)")
    parser.add_argument("--train", type=int, default=1500, help="tweets labelled to train the champion")
    parser.add_argument("--server-env", nargs="*", default=[], help="NAME=VALUE for the server only (e.g. DRIFTLOOP_SERVE_MAX_WAIT_MS=10)")
    args = parser.parse_args()

    tweets = sorted(corpora.health_tweets(), key=lambda t: t.time)
    outlets = sorted({t.label for t in tweets})
    requests = [t.text for t in tweets[2 * args.train : 2 * args.train + 4000]]  # never trained on
    settings_batch = Settings().serve_max_batch
    print(f"machine: {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), batch {settings_batch}", flush=True)
    with fresh_store() as (engine, home):
        settings = Settings(home=home, database_url=engine.url.render_as_string(hide_password=False))
        first, second = champion(engine, settings, tweets[: 2 * args.train], outlets, args.train)
        before = raw_throughput(engine, settings, requests, settings_batch)
        print(f"raw batched forward pass (batches of {settings_batch}, request order): {before:.0f} texts/s", flush=True)
        with serving(settings, dict(pair.split("=", 1) for pair in args.server_env)) as (base, key, pid):
            runs = [measured(pid, load(base, key, requests, n, args.seconds)) for n in args.clients]
            stored = measured(pid, load(base, key, requests, 32, args.seconds, store=True))
            swap = measured(pid, load(base, key, requests, 32, 24.0, swap=(engine, second)))
        after = raw_throughput(engine, settings, requests, settings_batch)  # the machine drifts: the limit is their mean
        print(f"raw batched forward pass again, the server stopped: {after:.0f} texts/s", flush=True)
        report(runs, (before + after) / 2, stored, swap, first, second)


def measured(pid: int, work: Coroutine[None, None, Run]) -> Run:
    def cpu() -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    before, started = cpu(), time.perf_counter()
    run = asyncio.run(work)
    run.server_cores = (cpu() - before) / (time.perf_counter() - started)
    return run


def champion(engine: Engine, settings: Settings, tweets: list[corpora.LabelledText], outlets: list[str], n: int) -> tuple[int, int]:
    """v1, the champion (first ``n`` labels), and v2, trained on ``n`` more but not promoted (for the swap)."""
    with session_scope(engine) as session:
        create_task(session, TASK, outlets)
    list(ingest(engine, TASK, enumerate({"id": t.id, "text": t.text} for t in tweets), max_text_chars=100_000, batch_size=5000))
    encoder = load_encoder(settings)
    versions = []
    for part, promote in ((tweets[:n], True), (tweets[n:], False)):
        entries = enumerate({"id": t.id, "label": t.label} for t in part)
        list(import_labels(engine, TASK, entries, gold=False, default_annotator="bench", eval_fraction=0.2))
        outcome = train_round(engine, settings, RoundRequest(task=TASK, mode="head", promote=promote), encoder=encoder)
        versions.append(outcome.version)
        print(f"trained v{outcome.version} on {len(part)} more labels ({'promoted' if outcome.promoted else 'kept as candidate'})", flush=True)
    assert versions[0] is not None and versions[1] is not None
    return versions[0], versions[1]


def raw_throughput(engine: Engine, settings: Settings, texts: list[str], batch: int) -> float:
    with session_scope(engine) as session:
        version = registry.champion(session, get_task(session, TASK).id)
        model = load_version(version, load_encoder(settings))
    model.predict_proba(texts[:batch])  # warm
    started = time.perf_counter()
    done = 0
    while time.perf_counter() - started < 10:
        for start in range(0, len(texts), batch):
            model.predict_proba(texts[start : start + batch])
            done += len(texts[start : start + batch])
            if time.perf_counter() - started >= 10:
                break
    return done / (time.perf_counter() - started)


class Connection:
    """One keep-alive HTTP/1.1 connection, written by hand: httpx spends ~2 ms of CPU per request,
    which on a small machine is taken from the server being measured; this spends a tenth of it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, headers: dict[str, str]) -> None:
        self.reader, self.writer = reader, writer
        self.head = f"Host: {host}\r\nContent-Type: application/json\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())

    @classmethod
    async def open(cls, base: str, headers: dict[str, str]) -> "Connection":
        host = base.removeprefix("http://")
        name, port = host.split(":")
        reader, writer = await asyncio.open_connection(name, int(port))
        return cls(reader, writer, host, headers)

    async def post(self, path: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        self.writer.write(f"POST {path} HTTP/1.1\r\n{self.head}Content-Length: {len(body)}\r\n\r\n".encode() + body)
        status_line, *lines = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines if line)}
        return int(status_line.split()[1]), headers, await self.reader.readexactly(int(headers["content-length"]))

    def close(self) -> None:
        self.writer.close()


async def load(base: str, key: str | None, texts: list[str], clients: int, seconds: float, store: bool = False, swap: tuple[Engine, int] | None = None) -> Run:
    run = Run(clients)
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    path = f"/v1/tasks/{TASK}/predict?store={str(store).lower()}"
    bodies = [json.dumps({"texts": [text]}).encode() for text in texts]
    measuring = False
    stop = False

    async def client(index: int) -> None:
        connection = await Connection.open(base, headers)
        i = index
        try:
            while not stop:
                body = bodies[i % len(bodies)]
                i += clients
                started = time.perf_counter()
                try:
                    status, answer_headers, answer = await connection.post(path, body)
                except (OSError, asyncio.IncompleteReadError) as error:
                    if measuring:
                        run.errors.append(repr(error))
                    connection.close()
                    connection = await Connection.open(base, headers)
                    continue
                if not measuring:
                    continue
                if status != 200:
                    run.errors.append(f"{status} {answer[:200]!r}")
                    continue
                run.latencies.append(time.perf_counter() - started)
                version = int(answer_headers["x-model-version"])
                run.versions[version] = run.versions.get(version, 0) + 1
        finally:
            connection.close()

    tasks = [asyncio.create_task(client(i)) for i in range(clients)]
    await asyncio.sleep(3)  # warm-up: connections open, batches at their steady size
    measuring = True
    started = time.perf_counter()
    if swap is None:
        await asyncio.sleep(seconds)
    else:
        engine, version = swap
        await asyncio.sleep(seconds / 4)
        await asyncio.to_thread(_registry_change, engine, version)
        await asyncio.sleep(seconds / 3)
        await asyncio.to_thread(_registry_change, engine, None)
        await asyncio.sleep(seconds - seconds / 4 - seconds / 3)
    run.seconds = time.perf_counter() - started
    measuring = False
    stop = True
    await asyncio.gather(*tasks)
    label = f"{clients} clients" + (", store=true" if store else "") + (", promote + rollback" if swap else "")
    print(f"{label}: {run.throughput:.0f} texts/s, p50 {run.percentile(50):.1f} ms, p99 {run.percentile(99):.1f} ms, "
          f"{len(run.errors)} errors, versions {run.versions}", flush=True)
    return run


def _registry_change(engine: Engine, promote: int | None) -> None:
    with session_scope(engine) as session:
        if promote is None:
            registry.rollback(session, TASK)
        else:
            registry.promote(session, TASK, promote, replay_capacity=0, force_reason="bench: swap under load")


def report(runs: list[Run], raw: float, stored: Run, swap: Run, first: int, second: int) -> None:
    single = next((r.percentile(50) for r in runs if r.clients == 1), float("nan"))
    print("\n| clients | texts/s | x raw | p50 ms | p99 ms | p99 / single | errors | server cores |\n|---:|---:|---:|---:|---:|---:|---:|---:|")
    for run in [*runs, stored]:
        name = f"{run.clients}" + (" (store=true)" if run is stored else "")
        print(f"| {name} | {run.throughput:.0f} | {run.throughput / raw:.2f} | {run.percentile(50):.1f} | {run.percentile(99):.1f} | "
              f"{run.percentile(99) / single:.1f} | {len(run.errors)} | {run.server_cores:.2f} |")
    print(f"| raw batched forward | {raw:.0f} | 1.00 | | | | | |")
    print(f"\nswap under 32 clients (v{first} -> v{second} -> v{first}): {len(swap.latencies)} answers, {len(swap.errors)} errors, "
          f"versions {swap.versions}, {swap.throughput:.0f} texts/s, p99 {swap.percentile(99):.1f} ms")
    for error in swap.errors[:5]:
        print("  ", error)


@contextmanager
def serving(settings: Settings, extra: dict[str, str]) -> Iterator[tuple[str, str | None, int]]:
    """``driftloop serve`` on a free port: its base URL, an API key for the task, its process id."""
    from driftloop.labeling.server.ports import free_port

    port = free_port()
    env = {**os.environ, "DRIFTLOOP_DATABASE_URL": settings.database_url or "", "DRIFTLOOP_HOME": str(settings.home), "DRIFTLOOP_SERVE_CHECK_SECONDS": "1", **extra}
    key = _key(env)
    settings.home.mkdir(parents=True, exist_ok=True)
    log = open(settings.home / "serve.log", "wb")  # noqa: SIM115 - closed below
    server = subprocess.Popen([DRIFTLOOP, "serve", "--port", str(port)], env=env, stdout=log, stderr=log, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield base, key, server.pid
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def _key(env: dict[str, str]) -> str | None:
    """A predict key, where this version of driftloop has keys."""
    made = subprocess.run([DRIFTLOOP, "keys", "create", "--name", "bench", "--scopes", "predict", "--task", TASK, "--json"], env=env, capture_output=True, text=True)
    if made.returncode != 0:
        return None
    return json.loads(made.stdout)["key"]


if __name__ == "__main__":
    main()
