import typer
from sqlalchemy import Engine

from driftloop.platform.cli.jsonl_input import consume_jsonl
from driftloop.platform.cli.store import current_engine
from driftloop.platform.config import Settings, get_settings
from driftloop.platform.ingestion.service import IngestSummary, Status, ingest


def ingest_command(
    name: str = typer.Argument(..., help="Task to ingest into."),
    source: str = typer.Argument(..., metavar="FILE|-", help='JSON Lines file, or "-" for standard input.'),
) -> None:
    """Ingest JSON Lines records {"text", "id"?, "ts"?, "meta"?} into task NAME.

    Exit status: 0 all stored or duplicate, 3 some lines rejected or in conflict (an id already
    given to another text; the valid ones are stored), 2 usage error (unknown task, unreadable file).
    """
    settings = get_settings()
    engine = current_engine()
    summary = IngestSummary()
    try:
        consume_jsonl(
            source,
            f"ingest {name}",
            lambda entries: ingest(
                engine, name, entries, max_text_chars=settings.ingest_max_text_chars, batch_size=settings.ingest_batch_size
            ),
            lambda outcome: outcome.status in (Status.rejected, Status.conflict),
            summary,
        )
    finally:  # it exits with the ingest's status; what was stored is refreshed either way
        if summary.ingested:
            _refresh_pool(engine, settings, name)


def _refresh_pool(engine: Engine, settings: Settings, task: str) -> None:
    """Queue the embedding and scoring of the new texts, when workers (a broker) do that."""
    if settings.refreshes_pool:
        from driftloop.platform.selection.pool import submit_score

        submit_score(engine, settings, task, runner="process")
