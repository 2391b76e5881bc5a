import typer
from rich.table import Table

from driftloop.platform import tasks
from driftloop.platform.cli.console import command_group, json_option, out, print_json
from driftloop.platform.cli.store import current_engine
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
    store_predictions: bool = typer.Option(
        ..., "--store-predictions/--no-store-predictions", help="Whether prediction requests keep their texts when they do not say (?store=)."
    ),
) -> None:
    """Change a setting of task NAME."""
    with session_scope(current_engine()) as session:
        task = tasks.set_store_predictions(session, name, store_predictions)
        out.print(f"task {task.name}: prediction requests {'store' if store_predictions else 'do not store'} their texts unless they say")
