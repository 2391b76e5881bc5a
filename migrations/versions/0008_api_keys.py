"""api_keys: the API's scoped keys, each stored as a public prefix and the sha256 of its secret

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-10 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import driftloop.platform.store.types

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
_TIME = driftloop.platform.store.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table('api_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('prefix', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('secret_hash', sa.String(length=64), nullable=False),
    sa.Column('scopes', _JSON, nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=True),
    sa.Column('created_at', _TIME, nullable=False),
    sa.Column('expires_at', _TIME, nullable=True),
    sa.Column('revoked_at', _TIME, nullable=True),
    sa.Column('last_used_at', _TIME, nullable=True),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_api_keys_task_id_tasks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
    sa.UniqueConstraint('prefix', name=op.f('uq_api_keys_prefix'))
    )


def downgrade() -> None:
    op.drop_table('api_keys')
