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
