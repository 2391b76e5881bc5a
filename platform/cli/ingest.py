import sys
from pathlib import Path
from typing import BinaryIO

import typer

from driftloop.platform.cli.console import byte_progress, err, out
from driftloop.platform.cli.store import current_engine
from driftloop.platform.config import get_settings
from driftloop.platform.ingestion.jsonl import read_jsonl
from driftloop.platform.ingestion.service import IngestSummary, Status, ingest

EXIT_SOME_REJECTED = 3
EXIT_USAGE = 2


def ingest_command(
    name: str = typer.Argument(..., help="Task to ingest into."),
    source: str = typer.Argument(..., metavar="FILE|-", help='JSON Lines file, or "-" for standard input.'),
) -> None:
    """Ingest JSON Lines records {"text", "id"?, "ts"?, "meta"?} into task NAME.

    Exit status: 0 all stored or duplicate, 3 some lines rejected (the valid ones are stored),
    2 usage error (unknown task, unreadable file).
    """
    settings = get_settings()
    engine = current_engine()
    stream, size = _open(source)
    summary = IngestSummary()
    bytes_read = 0

    def count_bytes(n: int) -> None:
        nonlocal bytes_read
        bytes_read += n

    with stream, byte_progress() as progress:
        bar = progress.add_task(f"ingest {name}", total=size, summary="")
        entries = read_jsonl(stream, on_bytes=count_bytes)
        batches = ingest(
            engine,
            name,
            entries,
            max_text_chars=settings.ingest_max_text_chars,
            batch_size=settings.ingest_batch_size,
        )
        for outcomes in batches:
            for outcome in outcomes:
                if outcome.status is Status.rejected:
                    progress.console.print(f"line {outcome.position}: {outcome.reason}", markup=False, soft_wrap=True)
            summary.count(outcomes)
            progress.update(bar, completed=bytes_read, summary=str(summary))
    out.print(str(summary))
    raise typer.Exit(EXIT_SOME_REJECTED if summary.rejected else 0)


def _open(source: str) -> tuple[BinaryIO, int | None]:
    if source == "-":
        return sys.stdin.buffer, None
    path = Path(source)
    try:
        return path.open("rb"), path.stat().st_size
    except OSError as error:
        err.print(f"error: cannot read {source}: {error.strerror}", markup=False)
        raise typer.Exit(EXIT_USAGE) from None
