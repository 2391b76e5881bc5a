"""labeling: pushes to the labeling tool and its webhooks

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 13:57:49.637214
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import driftloop.platform.store.types

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('webhooks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('url', sa.String(length=2000), nullable=False),
    sa.Column('external_id', sa.String(length=200), nullable=False),
    sa.Column('secret', sa.String(length=200), nullable=False),
    sa.Column('created_at', driftloop.platform.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhooks')),
    sa.UniqueConstraint('url', name=op.f('uq_webhooks_url'))
    )
    op.create_table('pushes',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('text_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('round_id', sa.Integer(), nullable=True),
    sa.Column('record_id', sa.String(length=200), nullable=False),
    sa.Column('dataset', sa.String(length=200), nullable=True),
    sa.Column('state', sa.Enum('pending', 'pushed', name='push_state', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('queued_at', driftloop.platform.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('pushed_at', driftloop.platform.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['round_id'], ['selection_rounds.id'], name=op.f('fk_pushes_round_id_selection_rounds'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_pushes_task_id_tasks'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['text_id'], ['texts.id'], name=op.f('fk_pushes_text_id_texts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_pushes')),
    sa.UniqueConstraint('text_id', name=op.f('uq_pushes_text_id'))
    )
    op.create_index('ix_pushes_task_id_state', 'pushes', ['task_id', 'state'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_pushes_task_id_state', table_name='pushes')
    op.drop_table('pushes')
    op.drop_table('webhooks')
