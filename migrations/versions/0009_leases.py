"""leases: a role one process holds at a time (the store's one scheduler), with its holder's
identity and an expiry it renews

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-12 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import driftloop.platform.store.types

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TIME = driftloop.platform.store.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('leases',
    sa.Column('name', sa.String(length=50), nullable=False),
    sa.Column('holder', sa.String(length=32), nullable=False),
    sa.Column('holder_name', sa.String(length=100), nullable=False),
    sa.Column('host', sa.String(length=255), nullable=False),
    sa.Column('pid', sa.Integer(), nullable=False),
    sa.Column('process_started_at', sa.Float(), nullable=True),
    sa.Column('acquired_at', _TIME, nullable=False),
    sa.Column('renewed_at', _TIME, nullable=False),
    sa.Column('expires_at', _TIME, nullable=True),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_leases'))
    )


def downgrade() -> None:
    op.drop_table('leases')
