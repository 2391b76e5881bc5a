"""jobs: the owner process and its heartbeat, to tell a dead job from a running one

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29 10:12:31.402217
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import driftloop.platform.store.types

revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('owner_host', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('owner_pid', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('owner_started_at', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('heartbeat_at', driftloop.platform.store.types.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # In place, not by copying the table (batch's default on SQLite): dropping the old `jobs`
    # would fail on the training runs that refer to it while SQLite enforces foreign keys. The
    # columns carry no index or constraint, so SQLite (3.35+) can drop them directly.
    with op.batch_alter_table('jobs', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('heartbeat_at')
        batch_op.drop_column('owner_started_at')
        batch_op.drop_column('owner_pid')
        batch_op.drop_column('owner_host')
