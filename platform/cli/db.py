"""`driftloop db`: the store's migrations (alembic is imported by the commands, not with the
module: the CLI imports it to answer ``--help``)."""

import typer

from driftloop.platform.cli.console import command_group, json_option, out, print_json
from driftloop.platform.store.engine import get_engine

app = command_group("Schema migrations of the store.")


@app.command()
def upgrade(revision: str = typer.Argument("head", help="Target revision.")) -> None:
    """Migrate the store up to REVISION (default: the newest)."""
    from driftloop.platform.store import schema

    engine = get_engine()
    schema.upgrade(engine, revision)
    out.print(f"store at revision {schema.current_revision(engine)} ({engine.url.render_as_string()})")


@app.command()
def downgrade(revision: str = typer.Argument(..., help="Target revision, or 'base' for an empty store.")) -> None:
    """Migrate the store down to REVISION."""
    from driftloop.platform.store import schema

    engine = get_engine()
    schema.downgrade(engine, revision)
    out.print(f"store at revision {schema.current_revision(engine) or 'base'}")


@app.command()
def current(as_json: bool = json_option()) -> None:
    """Print the store's revision and the newest one this driftloop knows.

    --json: {"current": the store's revision or null for an empty store, "head"}."""
    from driftloop.platform.store import schema

    engine = get_engine()
    if as_json:
        print_json({"current": schema.current_revision(engine), "head": schema.head_revision(engine)})
        return
    out.print(f"current {schema.current_revision(engine) or 'base'}, head {schema.head_revision(engine)}")
