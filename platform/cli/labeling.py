"""`driftloop sync` and the `driftloop labeling` group: the store's side of Argilla."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer

from driftloop.platform.cli.console import (
    command_group,
    count_progress,
    err,
    json_option,
    out,
    print_json,
    print_queued,
    typed_command,
)
from driftloop.platform.cli.store import current_engine
from driftloop.platform.config import get_settings
from driftloop.platform.store.engine import session_scope
from driftloop.platform.tasks import get_task

if TYPE_CHECKING:
    from driftloop.labeling.push import PushResult

app = command_group("Labeling in Argilla: dataset switches, pushes, webhooks.")


def sync_command(
    name: str = typer.Argument(..., help="Task."),
    as_json: bool = json_option(),
    no_wait: bool = typer.Option(
        False, "--no-wait", help="Queue the sync as a job, print its id and return; follow it with `driftloop jobs watch ID`."
    ),
) -> None:
    """Push pending picks to Argilla, then pull annotators' responses into the store.

    Exit status 1 when Argilla could not be reached (the pushes stay pending).

    --json: {"task", "responses", "labels_changed", "skipped", "unresolved", "agreement", "push"}."""
    from driftloop.labeling.connection import connect
    from driftloop.labeling.jobs import submit_sync, sync_summary
    from driftloop.labeling.sync import sync

    settings = get_settings()
    if no_wait:
        print_queued(submit_sync(current_engine(), settings, name, runner="process"), settings)
        return
    with _bar("read responses") as report:
        result = sync(current_engine(), settings, name, lambda: connect(settings), progress=report)
    print_push(result.push, as_json=as_json)
    if as_json:
        print_json(sync_summary(name, result))
        if result.push.error is not None:
            raise typer.Exit(1)
        return
    if result.push.error is None:
        out.print(
            f"read {result.responses} responses: {result.labels_changed} labels new or changed, "
            f"{result.skipped} texts discarded, {result.unresolved} unresolved"
        )
    if result.agreement is not None:
        value = "undefined" if result.agreement.value is None else f"{result.agreement.value:.3f}"
        out.print(
            f"agreement ({result.agreement.method.replace('_', ' ')}): {value} over {result.agreement.items} texts "
            f"and {result.agreement.annotators} annotators"
        )
    if result.push.error is not None:
        raise typer.Exit(1)


@app.command("push")
def push_command(name: str = typer.Argument(..., help="Task.")) -> None:
    """Send the task's pending picks to its Argilla dataset (retries earlier failures)."""
    from driftloop.labeling.connection import connect
    from driftloop.labeling.push import push_pending

    settings = get_settings()
    with _bar("push records") as report:
        result = push_pending(current_engine(), settings, name, lambda: connect(settings), progress=report)
    print_push(result)
    if result.error is not None:
        raise typer.Exit(1)


@app.command("configure")
def configure_command(
    name: str = typer.Argument(..., help="Task."),
    min_submitted: int | None = typer.Option(None, min=1, help="Responses a record needs; 2 or more measures agreement."),
    suggestions: bool | None = typer.Option(
        None, "--suggestions/--no-suggestions", help="Show the champion's prediction to annotators (off avoids anchoring)."
    ),
) -> None:
    """Set a task's labeling switches; they reach Argilla with the next push."""
    from driftloop.labeling.dataset import configure

    with session_scope(current_engine()) as session:
        config = configure(session, get_task(session, name, lock=True), min_submitted=min_submitted, suggestions=suggestions)
    out.print(f"{name}: min_submitted {config.min_submitted}, suggestions {'on' if config.suggestions else 'off'}")


@app.command("requeue")
def requeue_command(name: str = typer.Argument(..., help="Task.")) -> None:
    """Send texts whose answers tie back to Argilla as new records, for more opinions."""
    from driftloop.labeling.sync import requeue_ties

    count = requeue_ties(current_engine(), name)
    driftloop = typed_command()
    out.print(f"re-queued {count} unresolved texts; `{driftloop} labeling push {name}` (or `{driftloop} sync {name}`) sends them")


@app.command("webhook")
def webhook_command(
    url: str = typer.Argument(..., help="Where Argilla should post events: the driftloop API's /v1/labeling/webhook."),
) -> None:
    """Register (once) a webhook in Argilla so that responses trigger a sync."""
    from driftloop.labeling.connection import connect
    from driftloop.labeling.webhooks import register

    settings = get_settings()
    hook = register(connect(settings), current_engine(), settings, url)
    out.print(f"webhook {hook.external_id} posts to {hook.url}")


def print_push(result: "PushResult", *, as_json: bool = False) -> None:
    """What a push sent (on stdout, unless a --json document carries it) and why it failed (on stderr)."""
    if (result.pushed or result.moved) and not as_json:
        moved = f" ({result.moved} unanswered moved from an older generation)" if result.moved else ""
        out.print(f"pushed {result.pushed} records to dataset {result.dataset}{moved}")
    if result.error is not None:
        err.print(f"Argilla push failed, {result.pending} records stay pending and will be retried: {result.error}", markup=False)


@contextmanager
def _bar(description: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr, and the (done, total) callback that moves it."""
    with count_progress() as progress:
        bar = progress.add_task(description, total=None, summary="")
        yield lambda done, total: progress.update(bar, completed=done, total=total)

