"""The whole data model as SQLAlchemy 2 models (docs/architecture.md, "Data model").

Tables that grow with the stream (texts, embeddings, predictions, annotations, labels) are
indexed for the questions the loop asks of them: "the newest texts of a task", "has this
external id / this content been seen", "what is still unlabeled". Enumerations are stored as
checked strings rather than native enums so that adding a value is a plain migration.
"""

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy import Enum as SAEnum
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from driftloop.platform.store.types import BigId, UTCDateTime, utcnow

# Constraint names are fixed so migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# SQL NULL, not JSON null, for absent values (e.g. a text without meta).
Json = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _enum(cls: type[enum.Enum], name: str) -> SAEnum:
    return SAEnum(
        cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=32,
        values_callable=lambda members: [m.value for m in members],
    )


class Split(enum.StrEnum):
    train = "train"
    eval = "eval"
    gold = "gold"


class AnnotationStatus(enum.StrEnum):
    submitted = "submitted"
    discarded = "discarded"
    draft = "draft"


class ModelStatus(enum.StrEnum):
    candidate = "candidate"
    champion = "champion"
    rejected = "rejected"
    retired = "retired"


class JobState(enum.StrEnum):
    queued = "queued"
    running = "running"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"


class Verdict(enum.StrEnum):
    passed = "pass"
    failed = "fail"


# --- tasks and the stream -------------------------------------------------------------------


class Task(Base):
    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    settings: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)

    labels: Mapped[list["TaskLabel"]] = relationship(
        back_populates="task", order_by="TaskLabel.position", cascade="all, delete-orphan"
    )


class TaskLabel(Base):
    """One class of a task. ``position`` keeps the order; labels are only ever appended."""

    __tablename__ = "task_labels"
    __table_args__ = (
        UniqueConstraint("task_id", "name"),
        UniqueConstraint("task_id", "position"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    position: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    task: Mapped[Task] = relationship(back_populates="labels")


class TextRecord(Base):
    """One text of the stream.

    ``external_id`` is the producer's id, or ``sha256:<content hash>`` when none was given, so
    that one unique index makes ingest idempotent in both cases.
    """

    __tablename__ = "texts"
    __table_args__ = (
        UniqueConstraint("task_id", "external_id"),
        Index("ix_texts_task_id_received_at", "task_id", "received_at"),
        Index("ix_texts_task_id_content_hash", "task_id", "content_hash"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    external_id: Mapped[str] = mapped_column(String(256))
    text: Mapped[str] = mapped_column(Text)
    meta: Mapped[dict[str, Any] | None] = mapped_column(Json, nullable=True)
    event_time: Mapped[datetime] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    content_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    # "ingest" or "predict": how the text came in (see ingestion.service.ingest)
    source: Mapped[str] = mapped_column(String(20), default="ingest", server_default="ingest")


class Embedding(Base):
    """Where a text's vector lives in its task's FAISS index, for one encoder."""

    __tablename__ = "embeddings"
    __table_args__ = (
        UniqueConstraint("text_id", "encoder_id"),
        UniqueConstraint("task_id", "encoder_id", "vector_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    text_id: Mapped[int] = mapped_column(ForeignKey("texts.id", ondelete="CASCADE"))
    encoder_id: Mapped[str] = mapped_column(String(200))
    vector_id: Mapped[int] = mapped_column(BigId)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Prediction(Base):
    __tablename__ = "predictions"
    __table_args__ = (
        UniqueConstraint("text_id", "model_version_id"),
        Index("ix_predictions_model_version_id", "model_version_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    text_id: Mapped[int] = mapped_column(ForeignKey("texts.id", ondelete="CASCADE"))
    model_version_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(String(200))
    probabilities: Mapped[list[float]] = mapped_column(Json)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# --- selection and labeling -----------------------------------------------------------------


class SelectionRound(Base):
    __tablename__ = "selection_rounds"
    __table_args__ = (Index("ix_selection_rounds_task_id_created_at", "task_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    strategy: Mapped[str] = mapped_column(String(50))
    budget: Mapped[int] = mapped_column(Integer)
    params: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    model_version_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SelectionPick(Base):
    """A text chosen for labeling. Unique per (task, text): a text is never picked twice."""

    __tablename__ = "selection_picks"
    __table_args__ = (
        UniqueConstraint("task_id", "text_id"),
        Index("ix_selection_picks_round_id", "round_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    round_id: Mapped[int] = mapped_column(ForeignKey("selection_rounds.id", ondelete="CASCADE"))
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    text_id: Mapped[int] = mapped_column(ForeignKey("texts.id", ondelete="CASCADE"))
    rank: Mapped[int] = mapped_column(Integer)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    cluster: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reason: Mapped[str] = mapped_column(String(200))
    is_random: Mapped[bool] = mapped_column(Boolean, default=False)


class PushState(enum.StrEnum):
    pending = "pending"  # queued, or a push that failed and will be retried
    pushed = "pushed"


class Push(Base):
    """A picked text on its way to the labeling tool. One per text: the record id is derived
    from the text id, so pushing again updates the same record instead of adding one."""

    __tablename__ = "pushes"
    __table_args__ = (
        UniqueConstraint("text_id"),
        Index("ix_pushes_task_id_state", "task_id", "state"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    text_id: Mapped[int] = mapped_column(ForeignKey("texts.id", ondelete="CASCADE"))
    round_id: Mapped[int | None] = mapped_column(ForeignKey("selection_rounds.id", ondelete="SET NULL"), nullable=True)
    record_id: Mapped[str] = mapped_column(String(200))
    dataset: Mapped[str | None] = mapped_column(String(200), nullable=True)  # where it was last pushed
    state: Mapped[PushState] = mapped_column(_enum(PushState, "push_state"), default=PushState.pending)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    pushed_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Webhook(Base):
    """A webhook registered in the labeling tool, with the secret that signs its deliveries,
    encrypted (driftloop.platform.secrets): the store alone does not reveal it."""

    __tablename__ = "webhooks"
    __table_args__ = (UniqueConstraint("url"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    external_id: Mapped[str] = mapped_column(String(200))
    secret_encrypted: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookDelivery(Base):
    """The id of a webhook delivery that was accepted, kept while a replay of it could still pass
    the signature check, so that the replay is refused. Older ones are deleted as new ones come."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("message_id"),
        Index("ix_webhook_deliveries_received_at", "received_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    message_id: Mapped[str] = mapped_column(String(255))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiKey(Base):
    """A key that lets a client call the API (driftloop.platform.api_keys): its public ``prefix``,
    shown in lists and named in errors, and the sha256 of its secret, never the secret itself.
    ``scopes`` is the list of what it may do; ``task_id`` set binds it to that task alone."""

    __tablename__ = "api_keys"
    __table_args__ = (UniqueConstraint("prefix"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    prefix: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(100))
    secret_hash: Mapped[str] = mapped_column(String(64))  # hex sha256
    scopes: Mapped[list[str]] = mapped_column(Json)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Annotation(Base):
    """One annotator's answer for one text, as last seen in the labeling tool."""

    __tablename__ = "annotations"
    __table_args__ = (
        UniqueConstraint("text_id", "annotator"),
        Index("ix_annotations_task_id_updated_at", "task_id", "updated_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    text_id: Mapped[int] = mapped_column(ForeignKey("texts.id", ondelete="CASCADE"))
    annotator: Mapped[str] = mapped_column(String(200))
    label: Mapped[str | None] = mapped_column(String(200), nullable=True)
    status: Mapped[AnnotationStatus] = mapped_column(_enum(AnnotationStatus, "annotation_status"))
    source_record: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Label(Base):
    """The aggregated label of a text. Its split is decided on arrival and never changes."""

    __tablename__ = "labels"
    __table_args__ = (
        UniqueConstraint("text_id"),
        Index("ix_labels_task_id_split_created_at", "task_id", "split", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    text_id: Mapped[int] = mapped_column(ForeignKey("texts.id", ondelete="CASCADE"))
    label: Mapped[str] = mapped_column(String(200))
    agreement: Mapped[float | None] = mapped_column(Float, nullable=True)
    n_annotations: Mapped[int] = mapped_column(Integer, default=1)
    split: Mapped[Split] = mapped_column(_enum(Split, "label_split"))
    source: Mapped[str] = mapped_column(String(50), default="annotators")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ReplayBuffer(Base):
    """A task's replay buffer: its sampling strategy, capacity and running state."""

    __tablename__ = "replay_buffers"
    __table_args__ = (UniqueConstraint("task_id", "strategy"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    strategy: Mapped[str] = mapped_column(String(50))
    capacity: Mapped[int] = mapped_column(Integer)
    state: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ReplayItem(Base):
    __tablename__ = "replay_items"
    __table_args__ = (UniqueConstraint("buffer_id", "text_id"), UniqueConstraint("buffer_id", "slot"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    buffer_id: Mapped[int] = mapped_column(ForeignKey("replay_buffers.id", ondelete="CASCADE"))
    text_id: Mapped[int] = mapped_column(ForeignKey("texts.id", ondelete="CASCADE"))
    slot: Mapped[int] = mapped_column(Integer)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# --- models, training and the gate ----------------------------------------------------------


class ModelVersion(Base):
    __tablename__ = "model_versions"
    __table_args__ = (
        UniqueConstraint("task_id", "version"),
        # At most one champion per task, enforced by the database: of two concurrent
        # promotions only one can commit.
        Index(
            "uq_model_versions_one_champion",
            "task_id",
            unique=True,
            sqlite_where=text("status = 'champion'"),
            postgresql_where=text("status = 'champion'"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"), nullable=True)
    training_run_id: Mapped[int | None] = mapped_column(ForeignKey("training_runs.id"), nullable=True)
    mode: Mapped[str] = mapped_column(String(20))
    artifact_uri: Mapped[str] = mapped_column(String(1000))
    sha256: Mapped[str] = mapped_column(String(64))
    label_set: Mapped[list[str]] = mapped_column(Json)
    metrics: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    status: Mapped[ModelStatus] = mapped_column(_enum(ModelStatus, "model_status"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    promoted_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class TrainingRun(Base):
    __tablename__ = "training_runs"
    __table_args__ = (Index("ix_training_runs_task_id_started_at", "task_id", "started_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id"), nullable=True)
    mode: Mapped[str] = mapped_column(String(20))
    replay: Mapped[str] = mapped_column(String(20))
    params: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    state: Mapped[JobState] = mapped_column(_enum(JobState, "training_state"))
    metrics: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class GateDecision(Base):
    __tablename__ = "gate_decisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    candidate_id: Mapped[int] = mapped_column(ForeignKey("model_versions.id", ondelete="CASCADE"))
    champion_id: Mapped[int | None] = mapped_column(ForeignKey("model_versions.id"), nullable=True)
    slices: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    rules: Mapped[list[dict[str, Any]]] = mapped_column(Json, default=list)
    verdict: Mapped[Verdict] = mapped_column(_enum(Verdict, "gate_verdict"))
    override_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# --- operations -----------------------------------------------------------------------------


class DriftReport(Base):
    __tablename__ = "drift_reports"
    __table_args__ = (Index("ix_drift_reports_task_id_created_at", "task_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    method: Mapped[str] = mapped_column(String(50))
    reference_start: Mapped[datetime] = mapped_column(UTCDateTime)
    reference_end: Mapped[datetime] = mapped_column(UTCDateTime)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime)
    window_end: Mapped[datetime] = mapped_column(UTCDateTime)
    statistic: Mapped[float] = mapped_column(Float)
    p_value: Mapped[float | None] = mapped_column(Float, nullable=True)
    drifted: Mapped[bool] = mapped_column(Boolean)
    details: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ScheduleAction(enum.StrEnum):
    """What a schedule enqueues: a kind of job (``loop`` and ``drift`` are kinds yet to come)."""

    train = "train"
    select = "select"
    sync = "sync"
    drift = "drift"
    loop = "loop"


class Schedule(Base):
    """A stored schedule: an action for a task, and the one trigger that fires it (every N
    seconds, a cron expression, N new train labels, or a drift report). ``next_run_at`` is the
    next firing of a time trigger; a firing claims it by a compare-and-set on it and on
    ``last_fired_at`` (driftloop.platform.schedules), so each period fires once whoever runs."""

    __tablename__ = "schedules"
    __table_args__ = (
        Index("ix_schedules_task_id", "task_id"),
        CheckConstraint(
            "(CASE WHEN every_seconds IS NOT NULL THEN 1 ELSE 0 END) + (CASE WHEN cron IS NOT NULL THEN 1 ELSE 0 END)"
            " + (CASE WHEN after_labels IS NOT NULL THEN 1 ELSE 0 END) + (CASE WHEN on_drift THEN 1 ELSE 0 END) = 1",
            name="one_trigger",
        ),
        CheckConstraint("every_seconds > 0", name="positive_every"),
        CheckConstraint("after_labels > 0", name="positive_after_labels"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    task_id: Mapped[int] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    action: Mapped[ScheduleAction] = mapped_column(_enum(ScheduleAction, "schedule_action"))
    every_seconds: Mapped[int | None] = mapped_column(Integer, nullable=True)
    cron: Mapped[str | None] = mapped_column(String(200), nullable=True)
    after_labels: Mapped[int | None] = mapped_column(Integer, nullable=True)
    on_drift: Mapped[bool] = mapped_column(Boolean, default=False)
    params: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_fired_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class ScheduleFiring(Base):
    """One firing of a schedule: the job it enqueued, or why nothing was (``skipped``), and what
    triggered it (``every 6h``, ``after 200 labels: 213 new``, ``drift``)."""

    __tablename__ = "schedule_firings"
    __table_args__ = (Index("ix_schedule_firings_schedule_id_fired_at", "schedule_id", "fired_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    schedule_id: Mapped[int] = mapped_column(ForeignKey("schedules.id", ondelete="CASCADE"))
    fired_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    job_id: Mapped[int | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), nullable=True)
    skipped: Mapped[str | None] = mapped_column(Text, nullable=True)
    trigger_detail: Mapped[str] = mapped_column(String(500))


class Lease(Base):
    """A role that one process holds at a time, by name: ``scheduler``, the one scheduler of the
    store (driftloop.platform.leases). Its holder renews ``expires_at`` at each tick; another
    process takes it over once it has run out, or at once when the holder's process is gone from
    the host that looks. On PostgreSQL an advisory lock decides instead, and the row only names the
    holder (``expires_at`` NULL)."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(50), primary_key=True)
    holder: Mapped[str] = mapped_column(String(32))  # a token of the holding object, new each time one takes the lease
    holder_name: Mapped[str] = mapped_column(String(100))  # what holds it: "driftloop serve", "driftloop beat"
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    process_started_at: Mapped[float | None] = mapped_column(Float, nullable=True)  # tells the holder from a later process with its pid
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime)
    renewed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)


class Job(Base):
    """Long work, as ops see it: state, progress (0..1) with a message, error, timings.

    The process running a job is its owner (host, pid, and the process's creation time, which
    tells the owner from a later process that reuses its pid) and writes a heartbeat while it
    works, so that a job whose process died can be told from one that is still running.
    """

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_state_created_at", "state", "created_at"),
        CheckConstraint("progress >= 0 AND progress <= 1", name="progress_range"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(50))
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), nullable=True)
    state: Mapped[JobState] = mapped_column(_enum(JobState, "job_state"), default=JobState.queued)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str | None] = mapped_column(String(500), nullable=True)
    params: Mapped[dict[str, Any]] = mapped_column(Json, default=dict)
    result: Mapped[dict[str, Any] | None] = mapped_column(Json, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    owner_host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    owner_pid: Mapped[int | None] = mapped_column(Integer, nullable=True)
    owner_started_at: Mapped[float | None] = mapped_column(Float, nullable=True)  # seconds since the epoch
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # starts, redeliveries included
    worker: Mapped[str | None] = mapped_column(String(255), nullable=True)  # the Celery worker's name, or the runner
    queue: Mapped[str | None] = mapped_column(String(50), nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime, nullable=True)  # when the broker accepted it
