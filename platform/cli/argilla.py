"""`driftloop argilla up | down | status`: the embedded Argilla server (labeling UI and API) of this
DRIFTLOOP_HOME, on 127.0.0.1."""

import typer

from driftloop.labeling.server import embedded
from driftloop.platform.cli.console import activity, command_group, json_option, out, print_json, typed_command

app = command_group("The embedded Argilla server: labeling UI and API on this machine.")


def _split(names: str) -> list[str]:
    return [name for name in (part.strip() for part in names.split(",")) if name]


@app.command()
def up(
    port: int | None = typer.Option(None, "--port", help="Port on 127.0.0.1 [default: DRIFTLOOP_ARGILLA_PORT, 6900]."),
    annotators: str = typer.Option("", "--annotators", help="Comma-separated annotator usernames to create."),
    workspace: str | None = typer.Option(None, "--workspace", help="Workspace of the annotators [default: driftloop]."),
) -> None:
    """Start the embedded Argilla server unless it runs (the first time also builds its virtualenv:
    minutes), and print how to log in."""
    with activity(up_message()) as step:
        result = embedded.up(port=port, workspace=workspace, annotators=_split(annotators), progress=step)
    connection = result.connection
    state = "already running" if result.already_running else "running"
    out.print(f"Argilla is {state} at {connection.url}", markup=False)
    out.print(f"  owner      {connection.owner_username} / {connection.owner_password}", markup=False)
    for name, password in connection.annotators.items():
        out.print(f"  annotator  {name} / {password}  (workspace {connection.workspace})", markup=False)
    out.print("For driftloop's labeling commands:", markup=False)
    out.print(f"  export DRIFTLOOP_ARGILLA_URL={connection.url}", markup=False)
    out.print(f"  export DRIFTLOOP_ARGILLA_API_KEY={connection.api_key}", markup=False)
    out.print(f"Stop it with: {typed_command()} argilla down", markup=False)


def up_message() -> str:
    """What starting the embedded Argilla is about to do and how long it takes: "a few minutes"
    only when its virtualenv has to be built."""
    work = embedded.up_work()
    if work == "running":
        return "the embedded Argilla runs already: checking its users"
    if work == "start":
        return "starting the embedded Argilla (seconds; a minute on a busy machine)"
    return "starting the embedded Argilla; first its environment is built (once: about 580 MB, a few minutes)"


@app.command()
def down() -> None:
    """Stop the embedded Argilla server, its worker and its private Redis."""
    stopped = embedded.down()
    out.print(f"stopped {', '.join(stopped)}" if stopped else "Argilla was not running")


@app.command()
def status(as_json: bool = json_option()) -> None:
    """Whether the embedded Argilla server runs (exit 0) or not (exit 1).

    --json: {"running", "answering", "url", "server_pid", "worker_pid", "redis_pid", "state_dir"}."""
    current = embedded.status()
    if as_json:
        print_json(
            {
                "running": current.running,
                "answering": current.answering,
                "url": current.url,
                "server_pid": current.server_pid,
                "worker_pid": current.worker_pid,
                "redis_pid": current.redis_pid,
                "state_dir": current.state_dir,
            }
        )
        if not current.running:
            raise typer.Exit(1)
        return
    if not current.running:
        out.print(f"Argilla is not running (state in {current.state_dir})", markup=False)
        raise typer.Exit(1)
    answer = "answering" if current.answering else "NOT answering"
    out.print(f"Argilla is running at {current.url}, {answer} (server pid {current.server_pid})", markup=False)
    worker = f"pid {current.worker_pid}" if current.worker_pid else "NOT running"
    out.print(f"  worker {worker}", markup=False)
    if current.redis_pid:
        out.print(f"  private redis-server pid {current.redis_pid}", markup=False)
    out.print(f"  state in {current.state_dir}", markup=False)
