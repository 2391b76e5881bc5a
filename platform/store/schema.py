"""Schema versions: Alembic upgrade / downgrade, and the check that the store is current."""

from importlib.resources import files

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from driftloop.platform.config import Settings
from driftloop.platform.errors import SchemaOutOfDate
from driftloop.platform.store.engine import read_only


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(files("driftloop.migrations")))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def upgrade(engine: Engine, revision: str = "head", settings: Settings | None = None) -> None:
    _run(engine, command.upgrade, revision, settings)


def downgrade(engine: Engine, revision: str, settings: Settings | None = None) -> None:
    _run(engine, command.downgrade, revision, settings)


def _run(engine: Engine, step, revision: str, settings: Settings | None) -> None:  # type: ignore[no-untyped-def]
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        # Revisions that move secrets need the key; the caller's settings, else the environment's.
        config.attributes["settings"] = settings
        step(config, revision)


def current_revision(engine: Engine) -> str | None:
    with read_only(engine).connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision(engine: Engine) -> str | None:
    url = engine.url.render_as_string(hide_password=False)
    return ScriptDirectory.from_config(alembic_config(url)).get_current_head()


def ensure_current(engine: Engine, *, auto_upgrade: bool, settings: Settings | None = None) -> None:
    """Bring an embedded store to head, or refuse to work on a shared store that is behind."""
    current, head = current_revision(engine), head_revision(engine)
    if current == head:
        return
    if auto_upgrade:
        upgrade(engine, settings=settings)
        return
    raise SchemaOutOfDate(
        f"the database schema is at revision {current or 'none'}, this driftloop needs {head}: "
        "run `driftloop db upgrade`",
        current=current,
        head=head,
    )
