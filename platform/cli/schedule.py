"""`driftloop schedule`: stored schedules, editable while schedulers run (they see a change at their
next tick), and `driftloop beat`, the scheduler that fires them."""

import json
import signal
import sys
import threading
from typing import Annotated, Any

import typer
from rich.table import Table

from driftloop.platform.cli.console import command_group, err, json_option, out, print_json
from driftloop.platform.cli.store import current_engine
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.models import ScheduleAction

# The services are imported by each command: they bring numpy (through the model registry),
# which `driftloop --help` does without.
_ACTIONS = " | ".join(a.value for a in ScheduleAction)

app = command_group("Schedules: run train, select, sync… every N, by cron, after N labels or on drift.")


def _params(pairs: list[str]) -> dict[str, Any]:
    """``k=v`` pairs; a value is read as JSON when it is JSON (``50``, ``0.5``, ``false``), else as text."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise typer.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--param")
        try:
            params[key.strip()] = json.loads(value)
        except ValueError:
            params[key.strip()] = value
    return params


@app.command()
def add(
    task: str = typer.Argument(..., help="Task."),
    action: str = typer.Option(..., "--action", help=f"What to run: {_ACTIONS}."),
    every: str | None = typer.Option(None, "--every", help="Every duration: 30s, 10m, 6h, 1d."),
    cron: str | None = typer.Option(None, "--cron", help='A cron expression, in UTC: "0 3 * * *".'),
    after_labels: int | None = typer.Option(None, "--after-labels", help="After N new train labels (since the champion's data and the last firing)."),
    on_drift: bool = typer.Option(False, "--on-drift", help="When drift detection reports drift in the task."),
    param: Annotated[
        list[str] | None,
        typer.Option("--param", help="KEY=VALUE for the action, repeatable: budget=50 (select), mode=head, epochs=3 (train)."),
    ] = None,
    as_json: bool = json_option(),
) -> None:
    """Add a schedule: ACTION for TASK with exactly one trigger (--every, --cron, --after-labels or --on-drift)."""
    from driftloop.platform import schedules

    params = _params(param or [])
    with session_scope(current_engine()) as session:
        info = schedules.add(session, task, action, every=every, cron=cron, after_labels=after_labels, on_drift=on_drift, params=params)
    if as_json:
        print_json(info)
        return
    nxt = f", next at {info.next_run_at.isoformat(timespec='seconds')}" if info.next_run_at else ""
    out.print(f"schedule {info.id}: {info.action} of task {info.task}, {info.trigger}{nxt}", markup=False)


@app.command("list")
def list_(
    task: str | None = typer.Argument(None, help="Only this task's schedules."),
    as_json: bool = json_option(),
) -> None:
    """List schedules, oldest first."""
    from driftloop.platform import schedules

    with session_scope(current_engine()) as session:
        found = schedules.list_schedules(session, task)
    if as_json:
        print_json(found)
        return
    table = Table("id", "task", "action", "trigger", "params", "state", "next run", "last fired", title="schedules")
    for s in found:
        table.add_row(
            str(s.id),
            s.task,
            s.action,
            s.trigger,
            _params_text(s.params),
            "paused" if s.paused else "active",
            _time(s.next_run_at),
            _time(s.last_fired_at),
        )
    out.print(table)


@app.command()
def show(
    schedule_id: int = typer.Argument(..., metavar="ID", help="Schedule id."),
    as_json: bool = json_option(),
) -> None:
    """Show a schedule and its latest firings: the job each enqueued, or why it was skipped."""
    from driftloop.platform import schedules

    with session_scope(current_engine()) as session:
        info = schedules.show(session, schedule_id)
    if as_json:
        print_json(info)
        return
    state = "paused" if info.paused else "active"
    out.print(f"schedule {info.id}: {info.action} of task {info.task}, {info.trigger}, {state}", markup=False)
    for field, value in (
        ("params", _params_text(info.params) if info.params else None),
        ("next run", _time(info.next_run_at) if info.next_run_at else None),
        ("last fired", _time(info.last_fired_at) if info.last_fired_at else None),
        ("created", _time(info.created_at)),
    ):
        if value is not None:
            out.print(f"  {field}: {value}", markup=False)
    if not info.firings:
        out.print("  never fired")
        return
    table = Table("fired", "trigger", "job", "skipped", title=f"latest firings of schedule {info.id}")
    for f in info.firings:
        table.add_row(_time(f.fired_at), f.trigger, str(f.job) if f.job is not None else "-", f.skipped or "-")
    out.print(table)


@app.command()
def pause(schedule_id: int = typer.Argument(..., metavar="ID", help="Schedule id.")) -> None:
    """Pause a schedule: it does not fire until resumed."""
    from driftloop.platform import schedules

    with session_scope(current_engine()) as session:
        info = schedules.pause(session, schedule_id)
    out.print(f"schedule {info.id} paused", markup=False)


@app.command()
def resume(schedule_id: int = typer.Argument(..., metavar="ID", help="Schedule id.")) -> None:
    """Resume a paused schedule (what fell due while it was paused is not caught up)."""
    from driftloop.platform import schedules

    with session_scope(current_engine()) as session:
        info = schedules.resume(session, schedule_id)
    nxt = f", next at {info.next_run_at.isoformat(timespec='seconds')}" if info.next_run_at else ""
    out.print(f"schedule {info.id} resumed{nxt}", markup=False)


@app.command()
def remove(schedule_id: int = typer.Argument(..., metavar="ID", help="Schedule id.")) -> None:
    """Remove a schedule and the record of its firings."""
    from driftloop.platform import schedules

    with session_scope(current_engine()) as session:
        info = schedules.remove(session, schedule_id)
    out.print(f"schedule {info.id} removed ({info.action} of task {info.task}, {info.trigger})", markup=False)


def beat_command(
    interval: float = typer.Option(1.0, min=0.1, max=60.0, help="Seconds between two looks at the schedules."),
) -> None:
    """Run the scheduler in the foreground until SIGTERM or Ctrl-C: fire due schedules, one line per firing.

    Jobs go to the Celery workers when DRIFTLOOP_BROKER_URL is set, else each runs in a detached
    driftloop process. One scheduler acts per store (a beat, or a serve without a broker): the
    others stand by, say who leads, and one takes over when it stops or dies."""
    from driftloop.labeling import register_jobs
    from driftloop.platform.config import get_settings
    from driftloop.platform.scheduler import Scheduler, describe
    from driftloop.platform.schedules import FiringInfo

    register_jobs()  # an edge: labeling's kinds of job (sync) can be scheduled too
    settings = get_settings()
    engine = current_engine()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())

    def firing_line(firing: FiringInfo) -> None:
        out.print(describe(firing), markup=False)
        sys.stdout.flush()

    runs = "by the Celery workers" if settings.broker_url else "each in a detached driftloop process"
    err.print(f"beat: schedules of {engine.url.render_as_string()} fire here; their jobs run {runs}", markup=False)
    scheduler = Scheduler(
        engine, settings, runner="process", name="driftloop beat", on_firing=firing_line, on_role=lambda line: err.print(line, markup=False)
    )
    scheduler.run(stop, interval)
    err.print("beat: stopped", markup=False)


def _params_text(params: dict[str, Any]) -> str:
    return " ".join(f"{key}={json.dumps(value) if not isinstance(value, str) else value}" for key, value in params.items()) or "-"


def _time(value: Any) -> str:
    return value.isoformat(timespec="seconds") if value is not None else "-"
