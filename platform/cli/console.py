"""Where the CLI writes: results to stdout, progress and problems to stderr.

With ``--json`` a command prints exactly one JSON document on stdout (:func:`print_json`), and
whatever else it has to say goes to stderr. Human output piped or redirected is for grep and
scripts: tables are as wide as their content and lines are not wrapped to a screen's width."""

import dataclasses
import json
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from enum import Enum
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.rule import Rule

# Wider than any table or line we print: rich sizes a table to its content (expand is off), so
# this only lifts the cap, it pads nothing.
_UNBOUNDED = 1_000_000
# A rule (a heading line) fills the width it is given: when piped, this much.
_PIPED_RULE_WIDTH = 80


def _stdout() -> Console:
    console = Console(highlight=False)
    if console.is_terminal:
        return console
    # Not a terminal: rich would take the width of the terminal the pipe started from (or COLUMNS,
    # or 80) and cut cells to fit, so `driftloop models list | grep champion` found `champ…`.
    return Console(highlight=False, width=_UNBOUNDED)


out = _stdout()
# Problems are one line each, never wrapped: scripts and people grep them.
err = Console(stderr=True, highlight=False, soft_wrap=True)


def json_option() -> Any:
    """The ``--json`` switch of every command that lists or shows something."""
    return typer.Option(False, "--json", help="Print one JSON document on stdout instead; progress and notices go to stderr.")


def print_json(data: Any) -> None:
    """``--json`` output: one JSON document on stdout, never wrapped or coloured by rich.

    Dataclasses, datetimes, paths, enums and numpy numbers become plain JSON; a NaN or an
    infinity becomes ``null``, which every JSON reader accepts (``NaN`` is not JSON)."""
    sys.stdout.write(json.dumps(_plain(data), indent=2, ensure_ascii=False, allow_nan=False) + "\n")
    sys.stdout.flush()


def _plain(value: Any) -> Any:
    """``value`` as JSON's types: dict, list, str, int, float (finite), bool, None."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {field.name: _plain(getattr(value, field.name)) for field in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_plain(item) for item in value]
    if isinstance(value, Enum):
        return _plain(value.value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if type(value).__module__ == "numpy":  # a numpy scalar or array, without importing numpy here
        return _plain(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, str | int | float | bool):
        return value
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def rule(title: str) -> None:
    """A heading line across the screen; 80 columns when piped."""
    out.print(Rule(title), width=None if out.is_terminal else _PIPED_RULE_WIDTH)


def print_queued(job_id: int, settings: Any) -> None:
    """``--no-wait``: the job id alone on stdout (``id=$(driftloop train t --no-wait)``), how it runs on stderr."""
    runner = "by the Celery workers" if settings.broker_url else "by a detached driftloop process"
    err.print(f"job {job_id} queued, run {runner}: follow it with `driftloop jobs watch {job_id}`", markup=False)
    sys.stdout.write(f"{job_id}\n")


def byte_progress() -> Progress:
    """A bar over bytes read; drawn only when stderr is a terminal."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[summary]}"),
        TimeRemainingColumn(),
        console=err,
        disable=not err.is_terminal,
    )


def count_progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[summary]}"),
        TimeRemainingColumn(),
        console=err,
        disable=not err.is_terminal,
    )


def fraction_progress() -> Progress:
    """A bar over a job's own 0..1 progress, with its latest message."""
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[summary]}"),
        console=err,
        disable=not err.is_terminal,
    )


@contextmanager
def stage_progress() -> Iterator[Callable[[str, int, int], None]]:
    """One bar per named stage (embed, score…), and the (stage, done, total) callback that moves them."""
    with count_progress() as progress:
        bars: dict[str, int] = {}

        def report(stage: str, done: int, total: int) -> None:
            if stage not in bars:
                bars[stage] = progress.add_task(stage, total=total, summary="")
            progress.update(bars[stage], completed=done, total=total)

        yield report

