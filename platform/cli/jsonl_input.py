"""The shared shape of commands that read JSON Lines: a file or stdin, a progress bar over the
bytes read, each rejected line on stderr with its number and reason, a summary line on stdout,
and exit status 3 when some lines were rejected (0 otherwise, 2 when the input can't be read)."""

import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO, Protocol, TypeVar

import typer

from driftloop.platform.cli.console import as_typed, byte_progress, err, out
from driftloop.platform.ingestion.jsonl import read_jsonl

EXIT_SOME_REJECTED = 3
EXIT_USAGE = 2


class LineOutcome(Protocol):
    position: int

    @property
    def reason(self) -> str | None: ...


class Tally(Protocol):
    def count(self, outcomes: Iterable) -> None: ...  # type: ignore[type-arg]


O = TypeVar("O", bound=LineOutcome)


def consume_jsonl(
    source: str,
    description: str,
    process: Callable[[Iterator[tuple[int, object]]], Iterator[list[O]]],
    is_rejected: Callable[[O], bool],
    tally: Tally,
) -> None:
    stream, size = _open(source)
    bytes_read = 0
    refused = 0

    def count_bytes(n: int) -> None:
        nonlocal bytes_read
        bytes_read += n

    with stream, byte_progress() as progress:
        bar = progress.add_task(description, total=size, summary="")
        for outcomes in process(read_jsonl(stream, on_bytes=count_bytes)):
            for outcome in outcomes:
                if is_rejected(outcome):
                    refused += 1
                    progress.console.print(f"line {outcome.position}: {as_typed(outcome.reason)}", markup=False)
            tally.count(outcomes)
            progress.update(bar, completed=bytes_read, summary=str(tally))
    out.print(str(tally))
    raise typer.Exit(EXIT_SOME_REJECTED if refused else 0)


def _open(source: str) -> tuple[BinaryIO, int | None]:
    if source == "-":
        return sys.stdin.buffer, None
    path = Path(source)
    try:
        return path.open("rb"), path.stat().st_size
    except OSError as error:
        err.print(f"error: cannot read {source}: {error.strerror}", markup=False)
        raise typer.Exit(EXIT_USAGE) from None
