import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import typer

from driftloop.platform.cli.store import current_engine


def serve_command(
    host: str = typer.Option("127.0.0.1", help="Address to bind."),
    port: int = typer.Option(8000, help="Port to bind."),
    workers: int = typer.Option(1, min=1, help="Worker processes."),
) -> None:
    """Serve the HTTP API. Without a broker (DRIFTLOOP_BROKER_URL) it also fires the stored schedules
    and runs their jobs itself; with one, run `driftloop beat` beside the workers."""
    import uvicorn

    current_engine()  # migrate the embedded store (or refuse a stale shared one) before forking
    with prometheus_shared_across(workers):
        uvicorn.run(
            "driftloop.platform.api.app:serve_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            # uvicorn kills a worker that does not answer its supervisor's ping within this many
            # seconds. Its default (5 s) is shorter than a worker's start (importing torch) on a busy
            # machine, so with --workers > 1 the workers were killed and restarted in a loop.
            timeout_worker_healthcheck=60,
        )


@contextmanager
def prometheus_shared_across(workers: int) -> Iterator[None]:
    """With several worker processes, each writes its counters to files in one folder that
    /metrics reads whole (prometheus_client's multiprocess mode): a scrape lands on one process
    but reports them all. The folder must be empty at start, so it is a fresh one per run unless
    PROMETHEUS_MULTIPROC_DIR names one (then keeping it clean is the deployment's job)."""
    if workers == 1 or os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        yield
        return
    folder = tempfile.mkdtemp(prefix="driftloop-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder  # read by the workers' prometheus_client at import
    try:
        yield
    finally:
        del os.environ["PROMETHEUS_MULTIPROC_DIR"]
        shutil.rmtree(folder, ignore_errors=True)
