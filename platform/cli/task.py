from dataclasses import fields

import typer
from rich.table import Table

from driftloop.platform import tasks
from driftloop.platform.cli.console import command_group, json_option, out, print_json
from driftloop.platform.cli.store import current_engine
from driftloop.platform.config import get_settings
from driftloop.platform.errors import InvalidInput
from driftloop.platform.store.engine import session_scope

app = command_group("Classification tasks and their label sets.")


def _split(labels: str) -> list[str]:
    return [label for label in (part.strip() for part in labels.split(",")) if label]


@app.command()
def create(name: str, labels: str = typer.Option(..., "--labels", help="Comma-separated labels, in order.")) -> None:
    """Create task NAME with an ordered label set."""
    with session_scope(current_engine()) as session:
        task = tasks.create_task(session, name, _split(labels))
        out.print(f"created task {task.name} with labels {', '.join(tasks.label_names(task))}")


@app.command("add-labels")
def add_labels(name: str, labels: str = typer.Argument(..., help="Comma-separated labels to append.")) -> None:
    """Append labels to task NAME (existing labels keep their place)."""
    with session_scope(current_engine()) as session:
        task = tasks.add_labels(session, name, _split(labels))
        out.print(f"task {task.name} labels: {', '.join(tasks.label_names(task))}")


@app.command("list")
def list_(as_json: bool = json_option()) -> None:
    """List tasks with their labels and text counts."""
    with session_scope(current_engine()) as session:
        summaries = tasks.list_tasks(session)
    if as_json:
        print_json(summaries)
        return
    table = Table("task", "labels", "texts", "created")
    for t in summaries:
        table.add_row(t.name, ", ".join(t.labels), f"{t.texts:,}", t.created_at.strftime("%Y-%m-%d %H:%M"))
    out.print(table)


@app.command("set")
def set_(
    name: str,
    store_predictions: bool | None = typer.Option(
        None, "--store-predictions/--no-store-predictions", help="Whether prediction requests keep their texts when they do not say (?store=)."
    ),
    gate: str | None = typer.Option(
        None,
        "--gate",
        metavar="current|strict",
        help="The gate's policy. current (the default): promote the candidate that is best for today's traffic, "
        "forgetting of the past is a bounded cost (hard caps on the gold set and on classes still in recent traffic). "
        "strict: refuse any candidate that loses on any past slice or the gold set beyond the tolerance.",
    ),
    half_life: int | None = typer.Option(
        None,
        "--half-life",
        metavar="N",
        help="How much a label stands for today's traffic halves with every N labels that arrived after it (an integer >= 1).",
    ),
    eval_fraction: float | None = typer.Option(
        None,
        "--eval-fraction",
        metavar="F",
        help="Share of each class's new labels held out for eval (0 <= F < 1), instead of DRIFTLOOP_EVAL_FRACTION; "
        "labels that have a split keep it.",
    ),
) -> None:
    """Change settings of task NAME (at least one); prints its settings as they then are."""
    if store_predictions is None and gate is None and half_life is None and eval_fraction is None:
        raise InvalidInput("nothing to change: give --gate, --half-life, --eval-fraction or --store-predictions/--no-store-predictions")
    with session_scope(current_engine()) as session:
        task = tasks.update_settings(
            session, name, store_predictions=store_predictions, gate_policy=gate, half_life_labels=half_life, eval_fraction=eval_fraction
        )
        effective = tasks.task_settings(task, get_settings())
    out.print(f"task {name} settings:", markup=False)
    out.print("\n".join(_setting_lines(effective)), markup=False)


@app.command()
def show(name: str, as_json: bool = json_option()) -> None:
    """Show task NAME: its labels, texts and settings, and which settings are defaults."""
    with session_scope(current_engine()) as session:
        task = tasks.get_task(session, name)
        summary = tasks.summarize(session, task)
        effective = tasks.task_settings(task, get_settings())
    if as_json:
        print_json({**vars(summary), "settings": effective})
        return
    lines = [
        f"task: {summary.name}",
        f"labels: {', '.join(summary.labels)}",
        f"texts: {summary.texts:,}",
        f"created: {summary.created_at.strftime('%Y-%m-%d %H:%M')}",
        "settings:",
        *_setting_lines(effective),
    ]
    out.print("\n".join(lines), markup=False)


# where a setting's default comes from, when not from the code
_DEFAULT_FROM = {"eval_fraction": "DRIFTLOOP_EVAL_FRACTION", "store_predictions": "DRIFTLOOP_PREDICT_STORE"}


def _setting_lines(effective: tasks.TaskSettings) -> list[str]:
    """One line per setting, by the name of its `task set` option, defaults marked as such."""
    lines = []
    for field in (f.name for f in fields(effective) if f.name != "defaults"):
        value = getattr(effective, field)
        shown = ("on" if value else "off") if isinstance(value, bool) else str(value)
        if field in effective.defaults:
            shown += f" (default, {_DEFAULT_FROM[field]})" if field in _DEFAULT_FROM else " (default)"
        option = "half-life" if field == "half_life_labels" else field.replace("_", "-")
        lines.append(f"  {option}: {shown}")
    return lines
