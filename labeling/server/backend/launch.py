"""Runs the Argilla server, its background worker or one of its CLI commands, with driftloop's SQL
search backend registered. A script for the server's virtualenv, started by ``embedded.py``:

    <venv>/bin/python backend/launch.py --state-dir DIR server --host 127.0.0.1 --port 6900
    <venv>/bin/python backend/launch.py --state-dir DIR worker
    <venv>/bin/python backend/launch.py --state-dir DIR cli "database migrate" "database users create_default ..."

Everything else (database, Redis, auth secret) comes from the ``ARGILLA_*`` environment.
"""

import argparse
import atexit
import os
import shlex
import shutil
import signal
import sys
import tempfile
from pathlib import Path

SEARCH_ENGINE = "driftloop-sql"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--state-dir", type=Path, required=True)
    commands = parser.add_subparsers(dest="command", required=True)
    server = commands.add_parser("server")
    server.add_argument("--host", default="127.0.0.1")
    server.add_argument("--port", type=int, required=True)
    commands.add_parser("worker")
    cli = commands.add_parser("cli", help="argilla_server CLI commands, each one argument, run in order")
    cli.add_argument("command_lines", nargs="+")
    args = parser.parse_args()

    name = args.command if args.command != "cli" else f"cli-{os.getpid()}"
    _use_private_tmp(args.state_dir, name)
    os.environ.setdefault("ARGILLA_SEARCH_ENGINE", SEARCH_ENGINE)
    import sql_search  # noqa: F401  (registers the engine; must precede the server's start-up ping)

    if args.command == "server":
        _serve(args.host, args.port)
    elif args.command == "worker":
        _work()
    else:
        _run_cli(args.command_lines)


def _use_private_tmp(state_dir: Path, name: str) -> None:
    # Every import of argilla_server copies its 14 MB UI into a fresh temp folder and never removes
    # it: keep those copies in one folder per process kind, emptied at each start and at exit.
    folder = state_dir / "tmp" / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    os.environ["TMPDIR"] = str(folder)
    tempfile.tempdir = str(folder)
    atexit.register(shutil.rmtree, folder, True)


def _serve(host: str, port: int) -> None:
    import uvicorn
    from argilla_server import app

    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again for the handler found at
    # start: make that handler an exit, so the atexit clean-up still runs.
    signal.signal(signal.SIGTERM, lambda number, frame: sys.exit(0))
    uvicorn.run(app, host=host, port=port, access_log=False)


def _work() -> None:
    from argilla_server.cli.worker import worker
    from argilla_server.jobs.queues import DEFAULT_QUEUE, HIGH_QUEUE

    # One worker process: the jobs (webhooks, record status after a distribution change) are light.
    worker(queues=[DEFAULT_QUEUE.name, HIGH_QUEUE.name], num_workers=1)


def _run_cli(command_lines: list[str]) -> None:
    # One process for several commands: each start of argilla_server costs seconds of imports.
    from argilla_server.cli import app

    for line in command_lines:
        app(args=shlex.split(line), prog_name="argilla_server", standalone_mode=False)


if __name__ == "__main__":
    main()
