"""`driftloop index`: each task's FAISS index of its texts' embeddings (faiss and the encoder are
imported by the commands, not with the module: the CLI imports it to answer ``--help``)."""

from dataclasses import asdict

import typer
from sqlalchemy import Engine

from driftloop.platform.cli.console import command_group, count_progress, json_option, out, print_json, typed_command
from driftloop.platform.cli.store import current_engine
from driftloop.platform.config import Settings, get_settings
from driftloop.platform.store.engine import session_scope
from driftloop.platform.tasks import get_task

app = command_group("The vector index selection searches: status, rebuild after an encoder change.")


@app.command()
def status(name: str = typer.Argument(..., help="Task."), as_json: bool = json_option()) -> None:
    """How many of task NAME's texts have a vector for the configured encoder, and how many the index holds.

    --json: {"task", "encoder_id", "path", "texts", "embedded", "indexed", "other_encoders"}."""
    from driftloop.platform.modeling.encoder import checkpoint_id, default_encoder_path
    from driftloop.platform.selection.task_index import index_status

    settings, engine, task_id = _task(name)
    # the id is a hash of the weight files: no need to load the model to learn it
    state = index_status(engine, settings.storage, task_id, checkpoint_id(default_encoder_path(settings)))
    if as_json:
        print_json({"task": name, **asdict(state)})
        return
    out.print(f"encoder {state.encoder_id}: {state.embedded:,} of {state.texts:,} texts embedded, {state.indexed:,} in the index")
    driftloop = typed_command()
    out.print(f"index file {state.path}" if state.indexed else f"no index file yet: `{driftloop} select` or `{driftloop} index rebuild` builds it")
    if state.embedded < state.texts:
        out.print(f"texts without a vector are embedded by the next selection round that sees them, or all at once by `{driftloop} index rebuild`")
    if state.other_encoders:
        out.print(f"indexes of other encoders, unused while this one is configured: {', '.join(state.other_encoders)}")


@app.command()
def rebuild(name: str = typer.Argument(..., help="Task.")) -> None:
    """Embed every text of task NAME with the configured encoder, then build its index afresh."""
    from driftloop.platform.modeling.encoder import load_encoder
    from driftloop.platform.selection.task_index import rebuild_index

    settings, engine, task_id = _task(name)
    encoder = load_encoder(settings)
    with count_progress() as progress:
        bar = progress.add_task(f"embed {name}", total=None, summary=encoder.id)
        index = rebuild_index(
            engine, settings.storage, task_id, encoder, progress=lambda done, total: progress.update(bar, completed=done, total=total)
        )
    out.print(f"rebuilt the index of {name} for {encoder.id}: {len(index):,} vectors")


def _task(name: str) -> tuple[Settings, Engine, int]:
    settings = get_settings()
    engine = current_engine()
    with session_scope(engine) as session:
        return settings, engine, get_task(session, name).id
