"""texts.source: how a text entered the stream, "ingest" (the texts endpoint, the CLI) or
"predict" (an application's prediction request with store=true), so ops can tell the two apart
and selection and drift can see both

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 06:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('texts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('source', sa.String(length=20), nullable=False, server_default='ingest'))


def downgrade() -> None:
    # In place: labels, picks, pushes and predictions refer to `texts`, so it must not be recreated.
    with op.batch_alter_table('texts', schema=None, recreate='never') as batch_op:
        batch_op.drop_column('source')
