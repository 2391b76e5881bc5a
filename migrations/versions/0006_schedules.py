"""schedules, editable at run time: an action for a task and exactly one trigger (every N seconds,
a cron expression, N new train labels, or drift), paused or not; and schedule_firings, every
firing with the job it enqueued or why it was skipped

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-08 09:00:00.000000

The `schedules` table of 0001 was never written by any code: it is replaced, not altered.
The downgrade restores it as 0001 made it (empty: its rows cannot be expressed in it).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import driftloop.platform.store.types

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql')
_TIME = driftloop.platform.store.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.drop_table('schedules')
    op.create_table('schedules',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('action', sa.Enum('train', 'select', 'sync', 'drift', 'loop', name='schedule_action', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('every_seconds', sa.Integer(), nullable=True),
    sa.Column('cron', sa.String(length=200), nullable=True),
    sa.Column('after_labels', sa.Integer(), nullable=True),
    sa.Column('on_drift', sa.Boolean(), nullable=False),
    sa.Column('params', _JSON, nullable=False),
    sa.Column('paused', sa.Boolean(), nullable=False),
    sa.Column('created_at', _TIME, nullable=False),
    sa.Column('last_fired_at', _TIME, nullable=True),
    sa.Column('next_run_at', _TIME, nullable=True),
    sa.CheckConstraint(
        '(CASE WHEN every_seconds IS NOT NULL THEN 1 ELSE 0 END) + (CASE WHEN cron IS NOT NULL THEN 1 ELSE 0 END)'
        ' + (CASE WHEN after_labels IS NOT NULL THEN 1 ELSE 0 END) + (CASE WHEN on_drift THEN 1 ELSE 0 END) = 1',
        name=op.f('ck_schedules_one_trigger'),
    ),
    sa.CheckConstraint('every_seconds > 0', name=op.f('ck_schedules_positive_every')),
    sa.CheckConstraint('after_labels > 0', name=op.f('ck_schedules_positive_after_labels')),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_schedules_task_id_tasks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_schedules'))
    )
    op.create_index('ix_schedules_task_id', 'schedules', ['task_id'], unique=False)
    op.create_table('schedule_firings',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('schedule_id', sa.Integer(), nullable=False),
    sa.Column('fired_at', _TIME, nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=True),
    sa.Column('skipped', sa.Text(), nullable=True),
    sa.Column('trigger_detail', sa.String(length=500), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_schedule_firings_job_id_jobs'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['schedule_id'], ['schedules.id'], name=op.f('fk_schedule_firings_schedule_id_schedules'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_schedule_firings'))
    )
    op.create_index('ix_schedule_firings_schedule_id_fired_at', 'schedule_firings', ['schedule_id', 'fired_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_schedule_firings_schedule_id_fired_at', table_name='schedule_firings')
    op.drop_table('schedule_firings')
    op.drop_index('ix_schedules_task_id', table_name='schedules')
    op.drop_table('schedules')
    # as 0001 created it
    op.create_table('schedules',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=50), nullable=False),
    sa.Column('interval_seconds', sa.Integer(), nullable=False),
    sa.Column('params', _JSON, nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('last_run_at', _TIME, nullable=True),
    sa.Column('next_run_at', _TIME, nullable=True),
    sa.CheckConstraint('interval_seconds > 0', name=op.f('ck_schedules_positive_interval')),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_schedules_task_id_tasks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_schedules')),
    sa.UniqueConstraint('task_id', 'kind', name=op.f('uq_schedules_task_id_kind'))
    )
