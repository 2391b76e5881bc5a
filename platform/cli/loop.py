"""`driftloop loop run NAME`: the task's active-learning loop, run by itself in the foreground:
a ``loop`` pass every ``--every`` seconds (sync, retrain when enough labels arrived, select and
push the next round when the last one is answered), with the trainings it queues run by this
process (or by the workers, when a broker is configured)."""

import time

import typer

from driftloop.platform.cli.console import command_group, err, out
from driftloop.platform.cli.jobs import failure_line
from driftloop.platform.cli.store import current_engine
from driftloop.platform.config import get_settings

app = command_group("The active-learning loop, run by itself.")


@app.command("run")
def run(
    name: str = typer.Argument(..., help="Task."),
    every: float = typer.Option(30.0, min=1.0, help="Seconds between two passes."),
    budget: int = typer.Option(50, min=1, help="Texts per selection round."),
    retrain_after: int = typer.Option(200, min=1, help="New train labels that start a training."),
    passes: int | None = typer.Option(None, min=1, help="Stop after this many passes (default: until Ctrl-C)."),
) -> None:
    """Run the loop of task NAME until Ctrl-C: one line per pass, one per training that ends."""
    from driftloop.labeling import register_jobs
    from driftloop.platform.jobs import cancel_job, create_job, job_info, run_job
    from driftloop.platform.store.engine import session_scope
    from driftloop.platform.tasks import get_task

    register_jobs()
    engine, settings = current_engine(), get_settings()
    params = {"task": name, "budget": budget, "retrain_after": retrain_after}
    trainings: list[int] = []
    done = 0
    try:
        while passes is None or done < passes:
            started = time.monotonic()
            with session_scope(engine) as session:
                job_id = create_job(session, "loop", get_task(session, name).id, params).id
            run_job(engine, settings, job_id)  # this pass, here; the trainings it queues run in this process's runner
            with session_scope(engine) as session:
                job = job_info(session, job_id, lost_after=settings.job_lost_after_seconds)
            done += 1
            if job.state != "succeeded":
                err.print(f"pass {done}: {failure_line(job)}", markup=False)
            else:
                out.print(_describe(done, job.result or {}), markup=False)
                if job.result and job.result["training_job"]:
                    trainings.append(job.result["training_job"])
            trainings = _report_ended(engine, settings, trainings)
            time.sleep(max(0.0, every - (time.monotonic() - started)))
        while trainings:  # a bounded run waits for the trainings it started
            time.sleep(1.0)
            trainings = _report_ended(engine, settings, trainings)
    except KeyboardInterrupt:
        with session_scope(engine) as session:
            for training in trainings:
                if job_info(session, training, lost_after=settings.job_lost_after_seconds).state in ("queued", "running"):
                    cancel_job(session, training)
                    err.print(f"training job {training} cancelled")
        raise typer.Exit(130) from None


def _describe(number: int, result: dict) -> str:  # type: ignore[type-arg]
    parts = []
    if result["sync"] is not None:
        parts.append(f"synced {result['sync']['responses']} answers ({result['sync']['labels_changed']} labels new or changed)")
    if result["training_job"]:
        parts.append(f"{result['new_labels']} new train labels: training job {result['training_job']} queued")
    elif result["training_skipped"]:
        parts.append(f"no training ({result['training_skipped']})")
    if result["selection_round"]:
        parts.append(f"round {result['selection_round']}: {result['picks']} picks, {result['pushed']} pushed to Argilla")
    else:
        parts.append(f"{result['awaiting_answers']} picks await answers")
    return f"pass {number}: " + "; ".join(parts)


def _report_ended(engine, settings, trainings: list[int]) -> list[int]:  # type: ignore[no-untyped-def]
    """Print the trainings that ended; those still queued or running."""
    from driftloop.platform.jobs import job_info
    from driftloop.platform.store.engine import session_scope

    live = []
    with session_scope(engine) as session:
        for training in trainings:
            job = job_info(session, training, lost_after=settings.job_lost_after_seconds)
            if job.state in ("queued", "running"):
                live.append(training)
            elif job.state == "succeeded" and job.result:
                fate = "promoted to champion" if job.result["promoted"] else "rejected by the gate"
                out.print(f"training job {training}: version {job.result['version']} {fate}", markup=False)
            else:
                err.print(failure_line(job), markup=False)
    return live
