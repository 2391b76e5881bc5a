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
import functools
import json
import logging
import math
import os
import shlex
import shutil
import sys
import threading
import traceback
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
from driftloop.platform.home import private_home

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

# A table cell holds this much of a long text (an error's first line), then "…".
CELL_WIDTH = 80

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
    err.print(f"job {job_id} queued, run {runner}: follow it with `{typed_command()} jobs watch {job_id}`", markup=False)
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
        self._stopped_by: str | None = None  # how the work inside raised: its stages failed (or were interrupted), not done

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
        if exc_type is not None:
            self._stopped_by = "interrupted" if issubclass(exc_type, KeyboardInterrupt) else "failed"
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
        # what ended it: the task's own word (a job that failed or was cancelled), else the work's
        outcome = task.fields.get("outcome") or self._stopped_by or "done"
        elapsed = _duration(task.finished_time if task.finished_time is not None else task.elapsed)
        if self.unit == "fraction" and ended and outcome != "done":
            return f"{task.description}: {outcome} at {task.percentage:.0f}% after {elapsed}"
        if self.unit == "fraction":
            if not ended:  # a job's last step may report no progress: done, not "86%"
                parts.append(f"{task.percentage:.0f}%")
        elif self.unit != "activity":
            done = self._amount(task.completed)
            parts.append(done if task.total is None else f"{done}/{self._amount(task.total)} ({task.percentage:.0f}%)")
        if ended:
            parts.append(f"{outcome} after {elapsed}")
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


@functools.cache
def typed_command() -> str:
    """How to run this driftloop from the user's shell: ``driftloop`` when PATH finds this very
    one; else its path, relative to the working directory when below it (``.venv/bin/driftloop``
    after ``make demo``, whose virtualenv is not on PATH)."""
    script = Path(sys.argv[0])
    if script.name != "driftloop":  # `python -m driftloop.platform.cli`, or a test's runner
        script = Path(sys.executable).with_name("driftloop")
        if not script.exists():
            return f"{shlex.quote(sys.executable)} -m driftloop.platform.cli"
    found = shutil.which("driftloop")
    if found and Path(found).resolve() == script.resolve():
        return "driftloop"
    absolute = Path(os.path.abspath(script))  # not resolve(): .venv may be a link, and the user typed its path
    try:
        shown = str(absolute.relative_to(Path.cwd()))
    except ValueError:
        shown = str(absolute)
    return shlex.quote(shown if "/" in shown else f"./{shown}")  # a bare name would be looked up on PATH


def as_typed(text: str) -> str:
    """``text`` with each `driftloop …` it quotes as the user has to type it (see :func:`typed_command`)."""
    command = typed_command()
    return text if command == "driftloop" else text.replace("`driftloop ", f"`{command} ")


def first_line(text: str, width: int | None = None) -> str:
    """The first non-empty line of ``text``, cut to ``width`` characters with "…"."""
    line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return line if width is None or len(line) <= width else line[: width - 1].rstrip() + "…"


def field_lines(fields: dict[str, Any], indent: str = "  ") -> list[str]:
    """A mapping (a job's result) as ``key: value`` lines; nested mappings as ``outer.inner: value``,
    lists of plain values joined with commas, anything else as compact JSON, None as ``-``."""
    lines = []
    for key, value in fields.items():
        if isinstance(value, dict) and value:
            lines += field_lines({f"{key}.{inner}": item for inner, item in value.items()}, indent)
            continue
        if value is None:
            shown = "-"
        elif isinstance(value, str | int | float | bool):
            shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        elif isinstance(value, list) and all(isinstance(item, str | int | float | bool) for item in value):
            shown = ", ".join(map(str, value)) or "-"
        else:
            shown = json.dumps(_plain(value), ensure_ascii=False)
        lines.append(f"{indent}{key}: {shown}")
    return lines


# Problems, as the CLI reports them. A command's stderr gets one line per problem: what failed,
# the first line of why, and where the rest is; the whole (a traceback, a multi-line error) goes
# to the log file under DRIFTLOOP_HOME, and to stderr too with `driftloop --verbose`.
LOG_FILE = Path("logs") / "driftloop.log"


def log_path() -> Path | None:
    """The log file of this home; None when the settings cannot be read (then stderr gets all)."""
    try:
        return get_settings().home / LOG_FILE
    except Exception:  # invalid settings: the very error to report, and nowhere to put it
        return None


class _HomeLog(logging.Handler):
    """Appends records, tracebacks included, to the home's log file, created (0600 in a 0700
    folder) by the first record: a command that logs nothing leaves no file."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.setFormatter(logging.Formatter("%(asctime)s pid %(process)d %(levelname)s %(name)s: %(message)s"))
        self.path: Path | None = None  # where records went; None until one was written

    def emit(self, record: logging.LogRecord) -> None:
        try:
            path = log_path()
            if path is None:
                return
            private_home(path.parent)
            with path.open("a", encoding="utf-8") as log:
                log.write(self.format(record) + "\n")
            self.path = path
        except Exception:  # a log that cannot be written must not hide the problem it reports
            self.path = None


class _OneLine(logging.Formatter):
    """A record as one line: its message and its exception's first line, and where the rest is."""

    def __init__(self, home_log: _HomeLog) -> None:
        super().__init__()
        self.home_log = home_log

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        line = first_line(message)
        more = line != message.strip()
        if record.exc_info and record.exc_info[1] is not None:
            line, more = f"{line}: {describe(record.exc_info[1])}", True
        if more and self.home_log.path is not None:
            line += f" (all of it in {self.home_log.path}; `{typed_command()} --verbose …` prints it here)"
        return ("error: " if record.levelno >= logging.ERROR else "") + line


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """stderr as it is when a record comes (a test's runner swaps it)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


@dataclasses.dataclass
class _Diagnostics:
    home_log: _HomeLog
    stderr: _Stderr
    whole: bool = False  # stderr gets whole messages and tracebacks (--verbose, or a service)


_diagnostics: _Diagnostics | None = None
_FULL = logging.Formatter("%(levelname)s %(name)s: %(message)s")


def install_diagnostics() -> None:
    """Route log records (a job's failure in this process, a library's warning) to the home's log
    file and, one line each, to stderr. Until now they reached stderr whole through logging's
    last resort: a failed job printed a page of SQLAlchemy traceback between progress lines."""
    global _diagnostics
    if _diagnostics is not None:
        return
    home_log = _HomeLog()
    stderr = _Stderr()
    stderr.setLevel(logging.WARNING)
    stderr.setFormatter(_OneLine(home_log))
    root = logging.getLogger()
    root.addHandler(home_log)  # first: the one-line record names the file it was written to
    root.addHandler(stderr)
    _diagnostics = _Diagnostics(home_log, stderr)


def show_everything(*, verbose: bool, tracebacks: bool) -> None:
    """``verbose`` (`--verbose`): info records and whole tracebacks on stderr. ``tracebacks``
    alone: whole records on stderr from warnings up, as a service's log (serve, worker, beat
    write their stderr to a terminal or a container's log, not to a person between two commands)."""
    if _diagnostics is None:
        return
    _diagnostics.whole = verbose or tracebacks
    if verbose or tracebacks:
        _diagnostics.stderr.setFormatter(_FULL)
    if verbose:
        _diagnostics.stderr.setLevel(logging.INFO)
        logging.getLogger().setLevel(logging.INFO)


def describe(error: BaseException) -> str:
    """An exception in one line: its type and the first line of its message."""
    message = first_line(str(error))
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def report_error(message: str) -> None:
    """A failure the user can act on (a DriftloopError): its first line on stderr, with the
    commands it names as the user types them; the rest, if any, in the log file."""
    line = first_line(message)
    if line != message.strip():
        if _diagnostics is not None and _diagnostics.whole:
            err.print(f"error: {as_typed(message)}", markup=False)
            return
        path = _log_whole(message, None)
        if path is not None:
            line += f" (all of it in {path})"
    err.print(f"error: {as_typed(line)}", markup=False)


def report_crash(error: BaseException, command: list[str]) -> None:
    """An error driftloop did not expect: one line on stderr, the traceback in the log file (and
    on stderr too with `--verbose`)."""
    whole = _diagnostics is not None and _diagnostics.whole
    path = _log_whole(f"{' '.join(['driftloop', *command])} failed", error)
    if whole or path is None:
        traceback.print_exception(error, file=sys.stderr)
    err.print(f"error: {describe(error)}", markup=False)
    if path is not None and not whole:
        err.print(f"the traceback is in {path}; `{typed_command()} --verbose …` prints it here", markup=False)


def _log_whole(message: str, error: BaseException | None) -> Path | None:
    """Write ``message`` (and ``error``'s traceback) to the home's log file; its path, or None."""
    if _diagnostics is None:
        return None
    exc_info = (type(error), error, error.__traceback__) if error is not None else None
    record = logging.LogRecord("driftloop.cli", logging.ERROR, __file__, 0, message, None, exc_info)
    _diagnostics.home_log.handle(record)
    return _diagnostics.home_log.path
