"""Where the CLI writes: results to stdout, progress and problems to stderr."""

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

out = Console(highlight=False)
# Problems are one line each, never wrapped: scripts and people grep them.
err = Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    """``--json`` output: plain JSON on stdout, never wrapped or coloured by rich."""
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


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

