"""Where the CLI writes: results to stdout, progress and problems to stderr.

Progress is a rich bar when stderr is a terminal. Elsewhere (CI logs, ``| tee``, a file) rich
draws nothing, so the same progress prints plain lines instead: a stage that is still running
after ``DRIFTLOOP_PROGRESS_SECONDS`` prints a line then and at every interval after (count, rate,
ETA, elapsed), and one when it ends. A log then shows long work moving and never stays silent for
long, while quick commands print only their results and problems, as on a terminal.

With ``--json`` a command prints exactly one JSON document on stdout (:func:`print_json`), and
whatever else it has to say goes to stderr. Human output piped or redirected is for grep and
scripts: tables are as wide as their content and lines are not wrapped to a screen's width."""

import dataclasses
import json
import math
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

import typer
from rich.console import Console
from rich.filesize import decimal
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.rule import Rule

from driftloop.platform.config import get_settings

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

# What a progress counts: items, bytes, a 0..1 fraction (a job's own progress), or nothing (a
# step of unknown length, shown with its latest message).
Unit = Literal["count", "bytes", "fraction", "activity"]


# How typer renders help texts. Its "rich" mode keeps the single line breaks of a docstring's
# later paragraphs and of a command's summary in its group's list, so help broke mid-sentence
# where the source line was full; it also reads "[default: …]" in a help text as a style tag and
# drops it. Markdown reflows each paragraph to the screen and leaves brackets alone.
HELP_MARKUP = "markdown"


def command_group(help: str) -> typer.Typer:
    """A group of commands (`driftloop jobs …`), its help rendered like every other."""
    return typer.Typer(help=help, no_args_is_help=True, rich_markup_mode=HELP_MARKUP)


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


class LoggedProgress(Progress):
    """rich's Progress on stderr; where stderr is not a terminal, progress lines instead of a bar."""

    def __init__(self, *columns: str | ProgressColumn, unit: Unit, transient: bool = False) -> None:
        super().__init__(*columns, console=err, disable=not err.is_terminal, transient=transient)
        self.unit = unit
        self._shown: set[TaskID] = set()  # tasks that printed a line: they print one when they end
        self._ended: set[TaskID] = set()
        self._stopping = threading.Event()
        self._ticker: threading.Thread | None = None
        self._failed = False  # the work inside raised: its stages stopped rather than ended

    def start(self) -> None:
        super().start()
        if self.disable and self._ticker is None:
            interval = get_settings().progress_seconds
            self._stopping.clear()
            self._ticker = threading.Thread(target=self._tick, args=(interval,), name="progress-lines", daemon=True)
            self._ticker.start()

    def stop(self) -> None:
        if self._ticker is not None:
            self._stopping.set()
            self._ticker.join()
            self._ticker = None
            self._print_lines(final=True)
        super().stop()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc_val: BaseException | None, exc_tb: TracebackType | None
    ) -> None:
        self._failed = exc_type is not None
        super().__exit__(exc_type, exc_val, exc_tb)

    def add_task(
        self,
        description: str,
        start: bool = True,
        total: float | None = 100.0,
        completed: int = 0,
        visible: bool = True,
        **fields: Any,
    ) -> TaskID:
        task_id = super().add_task(description, start, total, completed, visible, **fields)
        if self.disable and self.unit == "activity":  # its steps print as they come: say what they are for
            err.print(f"{description} …", markup=False, highlight=False)
            self._shown.add(task_id)
        return task_id

    def _tick(self, interval: float) -> None:
        while not self._stopping.wait(interval):
            self._print_lines(final=False)

    def _print_lines(self, *, final: bool) -> None:
        for task in self.tasks:
            ended = final or task.finished
            if task.id in self._ended or (ended and task.id not in self._shown):
                continue  # a quick stage stays quiet, as on a terminal once its bar is gone
            self._shown.add(task.id)
            if ended:
                self._ended.add(task.id)
            err.print(self._line(task, ended=ended), markup=False, highlight=False)

    def _line(self, task: Task, *, ended: bool) -> str:
        parts = []
        if self.unit == "fraction":
            if not ended or self._failed:  # a job's last step may report no progress: done, not "86%"
                parts.append(f"{task.percentage:.0f}%")
        elif self.unit != "activity":
            done = self._amount(task.completed)
            parts.append(done if task.total is None else f"{done}/{self._amount(task.total)} ({task.percentage:.0f}%)")
        elapsed = _duration(task.finished_time if task.finished_time is not None else task.elapsed)
        if ended:
            parts.append(f"{'stopped' if self._failed else 'done'} after {elapsed}")
        else:
            # rich's speed needs two updates within its window; until then, the rate since the start
            speed = task.speed or (task.completed / task.elapsed if task.completed and task.elapsed else None)
            if speed and self.unit in ("count", "bytes"):
                parts.append(f"{self._amount(speed)}/s")
            if task.total is not None and self.unit != "activity":
                remaining = task.remaining / speed if speed and task.remaining is not None else None
                parts.append(f"ETA {_duration(remaining)}" if remaining is not None else "ETA unknown yet")
            parts.append(f"{elapsed} elapsed")
        if summary := task.fields.get("summary"):
            parts.append(str(summary))
        return f"{task.description}: {', '.join(parts)}"

    def _amount(self, value: float | None) -> str:
        if value is None:
            return "?"
        if self.unit == "bytes":
            return decimal(int(value))
        return f"{value:,.1f}" if value < 10 and value != int(value) else f"{value:,.0f}"


def _duration(seconds: float | None) -> str:
    return "?" if seconds is None else str(timedelta(seconds=round(seconds)))


def byte_progress() -> LoggedProgress:
    """A bar over bytes read."""
    return LoggedProgress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TextColumn("{task.fields[summary]}"),
        TimeRemainingColumn(),
        unit="bytes",
    )


def count_progress() -> LoggedProgress:
    return LoggedProgress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[summary]}"),
        TimeRemainingColumn(),
        unit="count",
    )


def fraction_progress() -> LoggedProgress:
    """A bar over a job's own 0..1 progress, with its latest message."""
    return LoggedProgress(
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[summary]}"),
        TimeRemainingColumn(),
        unit="fraction",
    )


@contextmanager
def activity(description: str) -> Iterator[Callable[[str], None]]:
    """A step of unknown length (starting a server): a spinner with the latest message on a
    terminal; elsewhere each message on a line of its own, and the progress lines between them."""
    # markup=False: messages hold brackets (pip's "[notice]").
    with LoggedProgress(
        SpinnerColumn(),
        TextColumn("{task.description}", markup=False),
        TextColumn("{task.fields[summary]}", markup=False),
        TimeElapsedColumn(),
        unit="activity",
        transient=True,
    ) as progress:
        task = progress.add_task(description, total=None, summary="")

        def step(message: str) -> None:
            if progress.disable:
                err.print(message, markup=False, highlight=False)
            progress.update(task, summary=message[:100])

        yield step


@contextmanager
def stage_progress() -> Iterator[Callable[[str, int, int], None]]:
    """One bar per named stage (embed, score…), and the (stage, done, total) callback that moves them."""
    with count_progress() as progress:
        bars: dict[str, TaskID] = {}

        def report(stage: str, done: int, total: int) -> None:
            if stage not in bars:
                bars[stage] = progress.add_task(stage, total=total, summary="")
            progress.update(bars[stage], completed=done, total=total)

        yield report
