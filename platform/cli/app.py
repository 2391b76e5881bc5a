"""Entry point of the `driftloop` command.

Every command module is imported here, so that typer can list them in ``--help``: none of them
may import torch, transformers, peft, faiss, the Argilla SDK or scikit-learn at module level.
Each command imports what it needs when it runs (tests/cli/test_fast_cli.py holds the line)."""

import os
import sys

import typer

from driftloop.platform.cli import argilla, db, index, jobs, keys, label, labeling, loop, models, schedule, task
from driftloop.platform.cli.console import HELP_MARKUP, install_diagnostics, report_crash, report_error, show_everything
from driftloop.platform.cli.demo import demo_command
from driftloop.platform.cli.ingest import ingest_command
from driftloop.platform.cli.jsonl_input import EXIT_USAGE
from driftloop.platform.cli.select import select_command
from driftloop.platform.cli.serve import serve_command
from driftloop.platform.cli.train import train_command
from driftloop.platform.cli.worker import worker_command
from driftloop.platform.errors import AlreadyExists, Conflict, DriftloopError, InvalidInput, NotFound, PromotionRefused

app = typer.Typer(
    help="driftloop: continual learning for text classifiers with an active labeling loop.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=HELP_MARKUP,
)
# Long-running services: their stderr is their log (a terminal, a container's), so it keeps
# whole records and tracebacks; other commands print one line per problem (see console.py).
SERVICES = frozenset({"serve", "worker", "beat"})


@app.callback()
def _global_options(
    ctx: typer.Context,
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Print tracebacks and info messages on stderr; without it a problem is one line there, in full in DRIFTLOOP_HOME/logs/driftloop.log."
    ),
) -> None:
    show_everything(verbose=verbose, tracebacks=ctx.invoked_subcommand in SERVICES)


app.add_typer(db.app, name="db")
app.add_typer(task.app, name="task")
app.add_typer(label.app, name="label")
app.add_typer(models.app, name="models")
app.add_typer(labeling.app, name="labeling")
app.add_typer(argilla.app, name="argilla")
app.add_typer(index.app, name="index")
app.add_typer(jobs.app, name="jobs")
app.add_typer(loop.app, name="loop")
app.add_typer(schedule.app, name="schedule")
app.add_typer(keys.app, name="keys")
app.command("ingest")(ingest_command)
app.command("serve")(serve_command)
app.command("train")(train_command)
app.command("select")(select_command)
app.command("sync")(labeling.sync_command)
app.command("demo")(demo_command)
app.command("worker")(worker_command)
app.command("beat")(schedule.beat_command)

_USAGE_ERRORS = (NotFound, InvalidInput, AlreadyExists, Conflict, PromotionRefused)


def main() -> None:
    # Like ssh-keygen: this process writes secrets (the key file, Argilla's credentials) and user
    # data (the store, models, indexes, logs), so nothing it creates is readable by other users.
    os.umask(0o077)
    # transformers draws a bar for every checkpoint it loads; our own progress is what users read.
    # Said through the environment, which huggingface_hub reads when it is first imported (and
    # transformers takes its default from), so that commands that never load a model never import
    # transformers to say it. A user's own setting stands.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    install_diagnostics()
    try:
        app()
    except DriftloopError as error:
        report_error(error.message)
        sys.exit(EXIT_USAGE if isinstance(error, _USAGE_ERRORS) else 1)
    except Exception as error:  # a bug, or a failure nothing translated (a store that does not answer)
        report_crash(error, sys.argv[1:])
        sys.exit(1)
