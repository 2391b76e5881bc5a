"""initial schema: the whole data model

Revision ID: 0001
Revises: 
Create Date: 2026-11-22 10:51:37.448304
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import driftloop.platform.store.types

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('tasks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('created_at', driftloop.platform.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('settings', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tasks')),
    sa.UniqueConstraint('name', name=op.f('uq_tasks_name'))
    )
    op.create_table('drift_reports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('method', sa.String(length=50), nullable=False),
    sa.Column('reference_start', driftloop.platform.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('reference_end', driftloop.platform.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('window_start', driftloop.platform.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('window_end', driftloop.platform.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('statistic', sa.Float(), nullable=False),
    sa.Column('p_value', sa.Float(), nullable=True),
    sa.Column('drifted', sa.Boolean(), nullable=False),
    sa.Column('details', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', driftloop.platform.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_drift_reports_task_id_tasks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_drift_reports'))
    )
    op.create_index('ix_drift_reports_task_id_created_at', 'drift_reports', ['task_id', 'created_at'], unique=False)
    op.create_table('jobs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=50), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=True),
    sa.Column('state', sa.Enum('queued', 'running', 'succeeded', 'failed', 'cancelled', name='job_state', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('progress', sa.Float(), nullable=False),
    sa.Column('message', sa.String(length=500), nullable=True),
    sa.Column('params', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('result', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', driftloop.platform.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('started_at', driftloop.platform.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', driftloop.platform.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('updated_at', driftloop.platform.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('progress >= 0 AND progress <= 1', name=op.f('ck_jobs_progress_range')),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_jobs_task_id_tasks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_jobs'))
    )
    op.create_index('ix_jobs_state_created_at', 'jobs', ['state', 'created_at'], unique=False)
    op.create_table('replay_buffers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('strategy', sa.String(length=50), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=False),
    sa.Column('state', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('updated_at', driftloop.platform.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_replay_buffers_task_id_tasks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_replay_buffers')),
    sa.UniqueConstraint('task_id', 'strategy', name=op.f('uq_replay_buffers_task_id_strategy'))
    )
    op.create_table('schedules',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=50), nullable=False),
    sa.Column('interval_seconds', sa.Integer(), nullable=False),
    sa.Column('params', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('last_run_at', driftloop.platform.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('next_run_at', driftloop.platform.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.CheckConstraint('interval_seconds > 0', name=op.f('ck_schedules_positive_interval')),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_schedules_task_id_tasks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_schedules')),
    sa.UniqueConstraint('task_id', 'kind', name=op.f('uq_schedules_task_id_kind'))
    )
    op.create_table('task_labels',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('created_at', driftloop.platform.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_task_labels_task_id_tasks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_task_labels')),
    sa.UniqueConstraint('task_id', 'name', name=op.f('uq_task_labels_task_id_name')),
    sa.UniqueConstraint('task_id', 'position', name=op.f('uq_task_labels_task_id_position'))
    )
    op.create_table('texts',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('external_id', sa.String(length=256), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('meta', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('event_time', driftloop.platform.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('received_at', driftloop.platform.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('content_hash', sa.LargeBinary(length=32), nullable=False),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_texts_task_id_tasks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_texts')),
    sa.UniqueConstraint('task_id', 'external_id', name=op.f('uq_texts_task_id_external_id'))
    )
    op.create_index('ix_texts_task_id_content_hash', 'texts', ['task_id', 'content_hash'], unique=False)
    op.create_index('ix_texts_task_id_received_at', 'texts', ['task_id', 'received_at'], unique=False)
    op.create_table('annotations',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('text_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('annotator', sa.String(length=200), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=True),
    sa.Column('status', sa.Enum('submitted', 'discarded', 'draft', name='annotation_status', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('source_record', sa.String(length=200), nullable=True),
    sa.Column('created_at', driftloop.platform.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', driftloop.platform.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_annotations_task_id_tasks'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['text_id'], ['texts.id'], name=op.f('fk_annotations_text_id_texts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_annotations')),
    sa.UniqueConstraint('text_id', 'annotator', name=op.f('uq_annotations_text_id_annotator'))
    )
    op.create_index('ix_annotations_task_id_updated_at', 'annotations', ['task_id', 'updated_at'], unique=False)
    op.create_table('embeddings',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('text_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('encoder_id', sa.String(length=200), nullable=False),
    sa.Column('vector_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('created_at', driftloop.platform.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_embeddings_task_id_tasks'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['text_id'], ['texts.id'], name=op.f('fk_embeddings_text_id_texts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_embeddings')),
    sa.UniqueConstraint('task_id', 'encoder_id', 'vector_id', name=op.f('uq_embeddings_task_id_encoder_id_vector_id')),
    sa.UniqueConstraint('text_id', 'encoder_id', name=op.f('uq_embeddings_text_id_encoder_id'))
    )
    op.create_table('labels',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('text_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('agreement', sa.Float(), nullable=True),
    sa.Column('n_annotations', sa.Integer(), nullable=False),
    sa.Column('split', sa.Enum('train', 'eval', 'gold', name='label_split', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('source', sa.String(length=50), nullable=False),
    sa.Column('created_at', driftloop.platform.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_labels_task_id_tasks'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['text_id'], ['texts.id'], name=op.f('fk_labels_text_id_texts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_labels')),
    sa.UniqueConstraint('text_id', name=op.f('uq_labels_text_id'))
    )
    op.create_index('ix_labels_task_id_split_created_at', 'labels', ['task_id', 'split', 'created_at'], unique=False)
    op.create_table('replay_items',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('buffer_id', sa.Integer(), nullable=False),
    sa.Column('text_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('slot', sa.Integer(), nullable=False),
    sa.Column('added_at', driftloop.platform.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['buffer_id'], ['replay_buffers.id'], name=op.f('fk_replay_items_buffer_id_replay_buffers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['text_id'], ['texts.id'], name=op.f('fk_replay_items_text_id_texts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_replay_items')),
    sa.UniqueConstraint('buffer_id', 'slot', name=op.f('uq_replay_items_buffer_id_slot')),
    sa.UniqueConstraint('buffer_id', 'text_id', name=op.f('uq_replay_items_buffer_id_text_id'))
    )
    op.create_table('training_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=True),
    sa.Column('mode', sa.String(length=20), nullable=False),
    sa.Column('replay', sa.String(length=20), nullable=False),
    sa.Column('params', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('state', sa.Enum('queued', 'running', 'succeeded', 'failed', 'cancelled', name='training_state', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('metrics', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('started_at', driftloop.platform.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', driftloop.platform.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_training_runs_job_id_jobs')),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_training_runs_task_id_tasks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_training_runs'))
    )
    op.create_index('ix_training_runs_task_id_started_at', 'training_runs', ['task_id', 'started_at'], unique=False)
    op.create_table('model_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('parent_id', sa.Integer(), nullable=True),
    sa.Column('training_run_id', sa.Integer(), nullable=True),
    sa.Column('mode', sa.String(length=20), nullable=False),
    sa.Column('artifact_uri', sa.String(length=1000), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('label_set', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('metrics', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('status', sa.Enum('candidate', 'champion', 'rejected', 'retired', name='model_status', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('created_at', driftloop.platform.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('promoted_at', driftloop.platform.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['parent_id'], ['model_versions.id'], name=op.f('fk_model_versions_parent_id_model_versions')),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_model_versions_task_id_tasks'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['training_run_id'], ['training_runs.id'], name=op.f('fk_model_versions_training_run_id_training_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_model_versions')),
    sa.UniqueConstraint('task_id', 'version', name=op.f('uq_model_versions_task_id_version'))
    )
    op.create_index('uq_model_versions_one_champion', 'model_versions', ['task_id'], unique=True, sqlite_where=sa.text("status = 'champion'"), postgresql_where=sa.text("status = 'champion'"))
    op.create_table('gate_decisions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('candidate_id', sa.Integer(), nullable=False),
    sa.Column('champion_id', sa.Integer(), nullable=True),
    sa.Column('slices', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('rules', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('verdict', sa.Enum('pass', 'fail', name='gate_verdict', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('override_reason', sa.Text(), nullable=True),
    sa.Column('decided_at', driftloop.platform.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['candidate_id'], ['model_versions.id'], name=op.f('fk_gate_decisions_candidate_id_model_versions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['champion_id'], ['model_versions.id'], name=op.f('fk_gate_decisions_champion_id_model_versions')),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_gate_decisions_task_id_tasks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_gate_decisions'))
    )
    op.create_table('predictions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('text_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('model_version_id', sa.Integer(), nullable=False),
    sa.Column('label', sa.String(length=200), nullable=False),
    sa.Column('probabilities', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('created_at', driftloop.platform.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['model_version_id'], ['model_versions.id'], name=op.f('fk_predictions_model_version_id_model_versions'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['text_id'], ['texts.id'], name=op.f('fk_predictions_text_id_texts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_predictions')),
    sa.UniqueConstraint('text_id', 'model_version_id', name=op.f('uq_predictions_text_id_model_version_id'))
    )
    op.create_index('ix_predictions_model_version_id', 'predictions', ['model_version_id'], unique=False)
    op.create_table('selection_rounds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('strategy', sa.String(length=50), nullable=False),
    sa.Column('budget', sa.Integer(), nullable=False),
    sa.Column('params', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.Column('model_version_id', sa.Integer(), nullable=True),
    sa.Column('created_at', driftloop.platform.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['model_version_id'], ['model_versions.id'], name=op.f('fk_selection_rounds_model_version_id_model_versions')),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_selection_rounds_task_id_tasks'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_selection_rounds'))
    )
    op.create_index('ix_selection_rounds_task_id_created_at', 'selection_rounds', ['task_id', 'created_at'], unique=False)
    op.create_table('selection_picks',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('round_id', sa.Integer(), nullable=False),
    sa.Column('task_id', sa.Integer(), nullable=False),
    sa.Column('text_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('rank', sa.Integer(), nullable=False),
    sa.Column('score', sa.Float(), nullable=True),
    sa.Column('cluster', sa.Integer(), nullable=True),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('is_random', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['round_id'], ['selection_rounds.id'], name=op.f('fk_selection_picks_round_id_selection_rounds'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['task_id'], ['tasks.id'], name=op.f('fk_selection_picks_task_id_tasks'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['text_id'], ['texts.id'], name=op.f('fk_selection_picks_text_id_texts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_selection_picks')),
    sa.UniqueConstraint('task_id', 'text_id', name=op.f('uq_selection_picks_task_id_text_id'))
    )
    op.create_index('ix_selection_picks_round_id', 'selection_picks', ['round_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_selection_picks_round_id', table_name='selection_picks')
    op.drop_table('selection_picks')
    op.drop_index('ix_selection_rounds_task_id_created_at', table_name='selection_rounds')
    op.drop_table('selection_rounds')
    op.drop_index('ix_predictions_model_version_id', table_name='predictions')
    op.drop_table('predictions')
    op.drop_table('gate_decisions')
    op.drop_index('uq_model_versions_one_champion', table_name='model_versions', sqlite_where=sa.text("status = 'champion'"), postgresql_where=sa.text("status = 'champion'"))
    op.drop_table('model_versions')
    op.drop_index('ix_training_runs_task_id_started_at', table_name='training_runs')
    op.drop_table('training_runs')
    op.drop_table('replay_items')
    op.drop_index('ix_labels_task_id_split_created_at', table_name='labels')
    op.drop_table('labels')
    op.drop_table('embeddings')
    op.drop_index('ix_annotations_task_id_updated_at', table_name='annotations')
    op.drop_table('annotations')
    op.drop_index('ix_texts_task_id_received_at', table_name='texts')
    op.drop_index('ix_texts_task_id_content_hash', table_name='texts')
    op.drop_table('texts')
    op.drop_table('task_labels')
    op.drop_table('schedules')
    op.drop_table('replay_buffers')
    op.drop_index('ix_jobs_state_created_at', table_name='jobs')
    op.drop_table('jobs')
    op.drop_index('ix_drift_reports_task_id_created_at', table_name='drift_reports')
    op.drop_table('drift_reports')
    op.drop_table('tasks')
