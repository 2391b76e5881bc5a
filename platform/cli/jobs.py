"""`driftloop jobs`: long work (trainings, selections, syncs) as ops see it, and the reaping of jobs whose process died."""

import time

import typer
from rich.table import Table

from driftloop.platform.cli.console import (
    CELL_WIDTH,
    command_group,
    err,
    field_lines,
    first_line,
    fraction_progress,
    json_option,
    out,
    print_json,
    typed_command,
)
from driftloop.platform.cli.store import current_engine
from driftloop.platform.config import get_settings
from driftloop.platform.jobs import JobInfo, cancel_job, job_info, list_jobs, run_job
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.models import JobState

app = command_group("Jobs: state, progress, owner and heartbeat; reap the lost ones.")

_STATES = ", ".join(s.value for s in JobState)


@app.command("list")
def list_(
    task: str | None = typer.Option(None, "--task", help="Only this task's jobs."),
    state: str | None = typer.Option(None, "--state", help=f"Only jobs in this state: {_STATES}."),
    limit: int = typer.Option(50, min=1, help="At most this many, newest first."),
    as_json: bool = json_option(),
) -> None:
    """List jobs, newest first. A job whose process died is marked failed (lost) before it is shown."""
    if state is not None and state not in JobState.__members__:
        raise typer.BadParameter(f"use one of {_STATES}", param_hint="--state")
    with session_scope(current_engine()) as session:
        jobs = list_jobs(session, task=task, state=state, limit=limit, lost_after=get_settings().job_lost_after_seconds)
    if as_json:
        print_json(jobs)
        return
    table = Table(
        "id", "kind", "task", "state", "progress", "message", "queue", "worker", "attempts", "owner", "heartbeat", "created", title="jobs"
    )
    for j in jobs:
        table.add_row(
            str(j.id),
            j.kind,
            j.task or "-",
            j.state,
            progress_text(j),
            first_line((j.error if j.state == "failed" else j.message) or "-", CELL_WIDTH),
            j.queue or "-",
            j.worker or "-",
            str(j.attempts),
            _owner(j),
            j.heartbeat_at or "-",
            j.created_at,
        )
    out.print(table)


@app.command()
def show(
    job_id: int = typer.Argument(..., metavar="ID", help="Job id."),
    as_json: bool = json_option(),
) -> None:
    """Show one job. A job whose process died is marked failed (lost) first."""
    with session_scope(current_engine()) as session:
        job = job_info(session, job_id, lost_after=get_settings().job_lost_after_seconds)
    if as_json:
        print_json(job)
        return
    progress = progress_text(job)
    shown = f"job {job.id}: {job.kind}{f' of task {job.task}' if job.task else ''}, {job.state}{'' if progress == '-' else f', {progress}'}"
    out.print(shown, markup=False)
    if job.message:
        out.print(f"  message: {job.message}", markup=False)
    if job.error:  # whole, its later lines under its first
        out.print("  error: " + "\n         ".join(job.error.strip().splitlines()), markup=False)
    if job.result:
        out.print("  result:\n" + "\n".join(field_lines(job.result, indent="    ")), markup=False)
    for field, value in (
        ("queue", job.queue),
        ("worker", job.worker),
        ("attempts", job.attempts),
        ("owner", _owner(job)),
        ("heartbeat", job.heartbeat_at),
        ("created", job.created_at),
        ("started", job.started_at),
        ("finished", job.finished_at),
    ):
        if value is not None:
            out.print(f"  {field}: {value}", markup=False)


@app.command()
def watch(
    job_id: int = typer.Argument(..., metavar="ID", help="Job id."),
    interval: float = typer.Option(1.0, min=0.1, help="Seconds between two looks at the job."),
    as_json: bool = json_option(),
) -> None:
    """Follow a job to its end with a progress bar; exit 0 if it succeeded, 1 if it failed or was cancelled."""
    job = wait_for_job(job_id, interval)
    if as_json:
        print_json(job)
    elif job.state != "succeeded":
        out.print(failure_line(job), markup=False)
    else:
        out.print("\n".join([f"{_name(job)} succeeded", *field_lines(job.result or {}, indent="    ")]), markup=False)
    if job.state != "succeeded":
        raise typer.Exit(1)


def failure_line(job: JobInfo) -> str:
    """A job that did not succeed, in one line: its state and the first line of its error, and
    where the whole error is when there is more of it."""
    error = job.error or "no error recorded"
    line = f"{_name(job)} {job.state}: {first_line(error)}"
    if first_line(error) != error.strip():
        line += f" (`{typed_command()} jobs show {job.id}` shows all of it)"
    return line


def progress_text(job: JobInfo) -> str:
    """How far a job got. One that failed or was cancelled stopped where it was: never "100%",
    which read as done; "-" when it stopped before it began or after its last step."""
    if job.state in ("failed", "cancelled"):
        return f"stopped at {job.progress:.0%}" if 0 < job.progress < 1 else "-"
    return f"{job.progress:.0%}"


def _name(job: JobInfo) -> str:
    return f"job {job.id} ({job.kind}{f' of {job.task}' if job.task else ''})"


def wait_for_job(job_id: int, interval: float = 1.0) -> JobInfo:
    """Poll the job until it ends, drawing its progress and message (on stderr, terminal only)."""
    engine, settings = current_engine(), get_settings()
    with fraction_progress() as progress:
        bar = None
        while True:
            with session_scope(engine) as session:
                job = job_info(session, job_id, lost_after=settings.job_lost_after_seconds)
            if bar is None:
                bar = progress.add_task(_name(job), total=1.0, summary="")
            if job.state in ("failed", "cancelled"):  # its bar ends saying so, not "done"
                progress.update(bar, completed=job.progress, summary=job.state, outcome=job.state)
                return job
            progress.update(bar, completed=job.progress, summary=job.message or job.state)
            if job.state not in ("queued", "running"):
                return job
            time.sleep(interval)


@app.command()
def cancel(job_id: int = typer.Argument(..., metavar="ID", help="Job id.")) -> None:
    """Cancel a queued or running job: a queued one never starts, a running one stops at its next
    progress report and commits nothing."""
    with session_scope(current_engine()) as session:
        job = cancel_job(session, job_id)
        state = job.state.value
    out.print(f"job {job_id}: {state}")


@app.command("run", hidden=True)
def run(job_id: int = typer.Argument(..., metavar="ID", help="Job id.")) -> None:
    """Run a queued job in this process (how `--no-wait` runs one when no broker is configured)."""
    from driftloop.labeling import register_jobs

    register_jobs()
    engine, settings = current_engine(), get_settings()
    run_job(engine, settings, job_id, follow_ups="process")  # this process exits after: its follow-ups must not die with it
    with session_scope(engine) as session:
        job = job_info(session, job_id, lost_after=settings.job_lost_after_seconds)
    if job.state != "succeeded":
        err.print(failure_line(job), markup=False)
        raise typer.Exit(1)


@app.command()
def reap(as_json: bool = json_option()) -> None:
    """Mark every job whose process died failed (lost), with its training run, and remove the
    artifacts such trainings left without a model version."""
    from driftloop.platform.recovery import recover  # the registry, and with it numpy: only to reap

    report = recover(current_engine(), get_settings())
    if as_json:
        print_json(report.to_dict())
        return
    for lost in report.lost_jobs:
        runs = f"; training run {', '.join(map(str, lost.training_runs))} failed with it" if lost.training_runs else ""
        task = f" of task {lost.task}" if lost.task else ""
        out.print(f"job {lost.id} ({lost.kind}{task}): {lost.error}{runs}", markup=False)
    for artifact in report.artifacts:
        out.print(f"{artifact.action} {artifact.path}: {artifact.reason}", markup=False)
    removed = sum(a.action == "removed" for a in report.artifacts)
    out.print(f"reaped {_count(len(report.lost_jobs), 'lost job')}, removed {_count(removed, 'orphan artifact')}")


def _owner(job: JobInfo) -> str:
    return f"pid {job.owner_pid} on {job.owner_host}" if job.owner_pid is not None else "-"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
