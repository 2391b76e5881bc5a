import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

import typer

from driftloop.platform.cli.store import current_engine
from driftloop.platform.config import get_settings


def serve_command(
    host: str | None = typer.Option(None, help="Address to bind; unset = DRIFTLOOP_API_HOST (127.0.0.1)."),
    port: int = typer.Option(8000, help="Port to bind."),
    workers: int = typer.Option(1, min=1, help="Worker processes."),
) -> None:
    """Serve the HTTP API. Without a broker (DRIFTLOOP_BROKER_URL) it also fires the stored schedules
    and runs their jobs itself; with one, run `driftloop beat` beside the workers."""
    import uvicorn

    from driftloop.platform.api_keys import refuse_open_exposure

    if host is not None:
        # the app is built by uvicorn's factory, in this process or in its workers: both read the
        # settings from the environment, and the auth rule depends on the address
        os.environ["DRIFTLOOP_API_HOST"] = host
        get_settings.cache_clear()
    settings = get_settings()
    refuse_open_exposure(settings)  # before anything starts: a ConfigError is one line and exit 1
    current_engine()  # migrate the embedded store (or refuse a stale shared one) before forking
    with prometheus_shared_across(workers):
        uvicorn.run(
            "driftloop.platform.api.app:serve_app",
            factory=True,
            host=settings.api_host,
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
