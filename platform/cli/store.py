"""The engine the CLI works on: the configured store, brought to the current schema when it is
the embedded default, refused with a clear message when a shared one is behind."""

from sqlalchemy import Engine

from driftloop.platform.config import get_settings
from driftloop.platform.store.engine import get_engine


def current_engine() -> Engine:
    # alembic is imported here, not with the module: `driftloop --help` has no store to check.
    from driftloop.platform.store.schema import ensure_current

    settings = get_settings()
    engine = get_engine(settings)
    ensure_current(engine, auto_upgrade=settings.is_embedded_store, settings=settings)
    return engine
