"""`driftloop worker`: a Celery worker of the `default` and/or `train` queue (imports Celery's
worker machinery and the tasks when it runs, not with the module)."""

import os

import typer

from driftloop.platform.config import get_settings
from driftloop.platform.errors import InvalidInput


def worker_command(
    queues: str = typer.Option("default,train", help="Queues to consume, comma-separated: default, train."),
    concurrency: int | None = typer.Option(
        None, min=1, help="Processes. Default: 1 for a train-only worker (one training per GPU), else the CPU count."
    ),
    gpu: str | None = typer.Option(
        None, help="Run on this GPU only (sets CUDA_VISIBLE_DEVICES): start one train worker per GPU."
    ),
    name: str | None = typer.Option(None, help="Worker name (NAME@host); default: the queues' names."),
    loglevel: str = typer.Option("INFO", help="Celery log level."),
) -> None:
    """Run a Celery worker that runs the jobs sent to the broker (DRIFTLOOP_BROKER_URL)."""
    from driftloop.workers.app import QUEUES, create_celery

    wanted = [q.strip() for q in queues.split(",") if q.strip()]
    unknown = sorted(set(wanted) - set(QUEUES))
    if not wanted or unknown:
        raise InvalidInput(f"unknown queue {', '.join(unknown) or '(none given)'}: use {', '.join(QUEUES)}", field="queues")
    processes = concurrency or (1 if wanted == ["train"] else os.cpu_count() or 1)
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    # Each process's torch takes every core by default: N processes would fight over them.
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // processes)))
    app = create_celery(get_settings())
    app.worker_main(
        [
            "worker",
            f"--queues={','.join(wanted)}",
            f"--concurrency={processes}",
            f"--hostname={name or '-'.join(wanted)}@%h",
            f"--loglevel={loglevel}",
            "--pool=prefork",
        ]
    )
