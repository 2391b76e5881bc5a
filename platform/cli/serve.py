import typer
import uvicorn

from driftloop.platform.cli.store import current_engine


def serve_command(
    host: str = typer.Option("127.0.0.1", help="Address to bind."),
    port: int = typer.Option(8000, help="Port to bind."),
    workers: int = typer.Option(1, min=1, help="Worker processes."),
) -> None:
    """Serve the HTTP API."""
    current_engine()  # migrate the embedded store (or refuse a stale shared one) before forking
    uvicorn.run("driftloop.platform.api.app:create_app", factory=True, host=host, port=port, workers=workers)
