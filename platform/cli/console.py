"""Where the CLI writes: results to stdout, progress and problems to stderr.

Human output piped or redirected is for grep and scripts: tables are as wide as their content
and lines are not wrapped to a screen's width."""

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

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


def print_json(data: Any) -> None:
    """``--json`` output: plain JSON on stdout, never wrapped or coloured by rich."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def rule(title: str) -> None:
    """A heading line across the screen; 80 columns when piped."""
    out.print(Rule(title), width=None if out.is_terminal else _PIPED_RULE_WIDTH)


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

