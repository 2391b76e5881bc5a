"""webhook secrets encrypted at rest, and the ids of accepted deliveries (replays are refused)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 10:00:00.000000

The upgrade encrypts the stored secrets with the configured key (DRIFTLOOP_SECRET_KEY, else
DRIFTLOOP_HOME/secret.key, created then); the downgrade decrypts them with it.
"""

from collections.abc import Callable, Sequence

import sqlalchemy as sa
from alembic import context, op

import driftloop.platform.store.types
from driftloop.platform import secrets
from driftloop.platform.config import Settings, get_settings

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('webhooks') as batch:
        batch.add_column(sa.Column('secret_encrypted', sa.Text(), nullable=True))
    _convert('secret', 'secret_encrypted', secrets.encrypt)
    with op.batch_alter_table('webhooks') as batch:
        batch.alter_column('secret_encrypted', existing_type=sa.Text(), nullable=False)
        batch.drop_column('secret')

    op.create_table('webhook_deliveries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('message_id', sa.String(length=255), nullable=False),
    sa.Column('received_at', driftloop.platform.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_deliveries')),
    sa.UniqueConstraint('message_id', name=op.f('uq_webhook_deliveries_message_id'))
    )
    op.create_index('ix_webhook_deliveries_received_at', 'webhook_deliveries', ['received_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_webhook_deliveries_received_at', table_name='webhook_deliveries')
    op.drop_table('webhook_deliveries')

    with op.batch_alter_table('webhooks') as batch:
        batch.add_column(sa.Column('secret', sa.String(length=200), nullable=True))
    _convert('secret_encrypted', 'secret', secrets.decrypt)
    with op.batch_alter_table('webhooks') as batch:
        batch.alter_column('secret', existing_type=sa.String(length=200), nullable=False)
        batch.drop_column('secret_encrypted')


def _convert(source: str, target: str, convert: Callable[[Settings, str], str]) -> None:
    webhooks = sa.table('webhooks', sa.column('id', sa.Integer()), sa.column(source, sa.Text()), sa.column(target, sa.Text()))
    bind = op.get_bind()
    rows = bind.execute(sa.select(webhooks.c.id, webhooks.c[source])).all()
    if not rows:
        return  # no key is read, nor a key file created, for a store without webhooks
    # Like migrations/env.py takes its connection: from whoever runs the migration (the CLI, the
    # API with its own settings), else the environment's settings.
    settings = context.config.attributes.get('settings') or get_settings()
    for row_id, value in rows:
        bind.execute(webhooks.update().where(webhooks.c.id == row_id).values({target: convert(settings, value)}))
