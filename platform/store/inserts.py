"""``INSERT … ON CONFLICT DO NOTHING`` in the store's dialect.

The store runs on PostgreSQL and SQLite, and both spell "insert unless the unique key exists"
the same way; SQLAlchemy's generic ``insert`` has no such clause, so each dialect's is used.
"""

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from driftloop.platform.store.models import Base


def insert_unless_present(session: Session, model: type[Base]) -> postgresql.Insert | sqlite.Insert:
    """An insert into ``model``'s table that skips rows whose unique key is already stored
    (by another process, say), instead of failing the transaction."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    return insert(model).on_conflict_do_nothing()
