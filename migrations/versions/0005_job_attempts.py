"""jobs: attempts, the worker and queue that ran them, and when the broker took them (Celery
redelivers a task whose worker died; ops see how often a job was tried, where, from which queue;
a job the broker never took, because it was down, is sent again when it is back)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 03:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import driftloop.platform.store.types

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('jobs', schema=None) as batch_op:
        batch_op.add_column(sa.Column('attempts', sa.Integer(), nullable=False, server_default='0'))
        batch_op.add_column(sa.Column('worker', sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column('queue', sa.String(length=50), nullable=True))
        batch_op.add_column(sa.Column('sent_at', driftloop.platform.store.types.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # In place (see 0003): the training runs refer to `jobs`, so it must not be recreated.
    with op.batch_alter_table('jobs', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('sent_at')
        batch_op.drop_column('queue')
        batch_op.drop_column('worker')
        batch_op.drop_column('attempts')
