"""All of driftloop's settings, read once from ``DRIFTLOOP_*`` environment variables."""

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DRIFTLOOP_", extra="ignore")

    home: Path = Field(Path(".driftloop"), description="State folder: SQLite store, indexes, artifacts.")
    database_url: str | None = Field(None, description="SQLAlchemy URL; unset = SQLite file under home.")
    data_dir: Path | None = Field(
        None,
        description="Where model artifacts, vectors, indexes and training checkpoints live; unset = home. Workers on "
        "several machines point theirs at one shared filesystem, mounted at the same path everywhere.",
    )
    secret_key: SecretStr | None = Field(
        None,
        description="Fernet key that encrypts the secrets kept in the store (the webhook's signing secret); every "
        "API host of one store needs the same. Unset = the key file home/secret.key, generated on first use.",
    )
    broker_url: str | None = Field(None, description="Celery broker; unset = tasks run in-process.")
    argilla_url: str | None = None
    argilla_api_key: SecretStr | None = None
    argilla_workspace: str = Field("driftloop", description="Argilla workspace holding the tasks' datasets.")
    argilla_venv: Path | None = Field(
        None,
        description="Virtualenv of the embedded Argilla server (`driftloop argilla up`); unset = one per "
        "requirements set under ~/.cache/driftloop, shared by every home.",
    )
    argilla_port: int = Field(6900, gt=0, lt=65536, description="Port of the embedded Argilla server on 127.0.0.1.")
    argilla_redis_url: str = Field(
        "redis://127.0.0.1:6379/5",
        description="Redis of the embedded Argilla server (its job queues have fixed names: give each home its own "
        "database index), or 'embedded' for a private redis-server under the home, stopped with the server.",
    )

    auth: bool = Field(
        True,
        description="Every /v1 route asks for an API key (`driftloop keys create`). off is refused unless the API "
        "listens on loopback only (DRIFTLOOP_API_HOST).",
    )
    api_host: str = Field(
        "127.0.0.1", description="The address the API listens on (`driftloop serve --host` sets it for its processes)."
    )
    auth_cache_seconds: float = Field(
        5.0,
        ge=0.0,
        description="An API process trusts a key it verified for this long before reading it from the store again (a "
        "revoked key is refused within it; an expired one at once); 0 = read it on every request.",
    )
    metrics_auth: bool = Field(False, description="/metrics asks for an API key too (any valid key); off = open to scrapers.")

    ingest_max_text_chars: int = Field(100_000, gt=0, description="Longer texts are rejected.")
    ingest_max_records_per_request: int = Field(1_000, gt=0)
    ingest_max_request_bytes: int = Field(16 * 1024 * 1024, gt=0)
    ingest_batch_size: int = Field(5_000, gt=0, description="Records per transaction in bulk ingest.")

    # 0: every label trains, and the gate judges on cross-fitted and prequential evidence (issue
    # 22); a task that trains full/lora candidates, or wants past windows judged, keeps a split.
    eval_fraction: float = Field(0.0, ge=0.0, lt=1.0, description="Share of each class's labels held out for eval.")

    replay_capacity: int = Field(2000, gt=0, description="Labels kept per replay buffer and task.")
    replay_ratio: float = Field(1.0, ge=0.0, description="Replayed examples per new example in a training round.")

    selection_duplicate_threshold: float = Field(
        0.95, gt=0.0, le=1.0, description="Picks at this cosine similarity or more to a labeled, queued or picked text are skipped."
    )
    selection_max_pool: int = Field(200_000, gt=0, description="Newest unlabeled texts a selection round considers at most.")
    selection_hybrid_within_cluster: Literal["central", "representative", "uncertain"] = Field(
        "central",
        description="Which candidate of a cluster the hybrid strategy takes first (bench/RESULTS.md compares them).",
    )

    progress_seconds: float = Field(
        10.0,
        gt=0,
        description="Where stderr is not a terminal (CI logs, a pipe), how often long work prints a progress line.",
    )

    gate_freeze_after: int = Field(
        3,
        ge=1,
        description="After this many candidates in a row refused by the gate, the task raises a notice: the served "
        "model has stopped learning.",
    )

    encoder_path: Path | None = Field(
        None, description="Local transformers checkpoint of the base encoder; unset = all-MiniLM-L6-v2 from its package."
    )
    device: str | None = Field(None, description="torch device for encoding and training; unset = cuda if present, else cpu.")

    job_heartbeat_seconds: float = Field(
        10.0, gt=0.0, description="How often a running job's process writes its heartbeat to the store."
    )
    job_lost_after_seconds: float = Field(
        60.0,
        gt=0.0,
        description="A job whose heartbeat is older than this is lost (when its process cannot be checked on this host).",
    )

    pool_refresh: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Embed and score new texts as they arrive and re-score the pool after a promotion, as `score` "
        "jobs: auto = when a broker is set (workers do it); without one the next selection does it, and the "
        "in-process runner stays free for trainings.",
    )
    serve_check_seconds: float = Field(
        5.0,
        ge=0.0,
        description="How often an API process looks at the registry for a new champion to serve (promoted or rolled "
        "back anywhere): the bound on how long it serves the previous one.",
    )
    serve_max_batch: int = Field(64, gt=0, description="Most texts in one forward pass of the prediction batcher.")
    serve_max_wait_ms: float = Field(
        5.0, ge=0.0, description="Longest a prediction request waits for others to share its batch, in milliseconds."
    )
    serve_max_queue: int = Field(
        2048, gt=0, description="Most texts waiting for one model; past it a prediction request is answered 503 with Retry-After."
    )
    predict_store: bool = Field(
        True,
        description="Whether POST /v1/tasks/{task}/predict stores its texts in the stream (with their predictions) when "
        "the request does not say (?store=) and the task has no setting of its own (`driftloop task set`).",
    )
    checkpoint_steps: int = Field(
        200, gt=0, description="A full or lora training saves a checkpoint every this many optimizer steps (resumed after a crash)."
    )
    job_max_attempts: int = Field(
        3, ge=1, description="A job whose worker died is run again (redelivered) at most until it has been started this often."
    )
    stop_grace_seconds: float = Field(
        20.0,
        ge=0.0,
        description="On SIGTERM, how long `driftloop serve` (its in-process jobs) and `driftloop worker` let a running job "
        "finish before handing it back: queued again for the next runner, a training's checkpoint kept. Keep it under "
        "the supervisor's own kill timeout (docker stop -t, Kubernetes terminationGracePeriodSeconds).",
    )
    scheduler_lease_seconds: float = Field(
        30.0,
        gt=0.0,
        description="SQLite: the scheduler's lease in the store lasts this long unless its holder renews it (at each "
        "tick); another scheduler takes over once it has run out, or at once when the holder's process is gone from "
        "this host. PostgreSQL decides with an advisory lock instead.",
    )
    job_busy_retry_seconds: float = Field(
        15.0, gt=0.0, description="How long a training waits before trying again while another training of its task runs."
    )

    task_soft_time_limit: int = Field(
        6 * 3600, gt=0, description="Seconds a Celery task may run before it is asked to stop (a full fine-tune takes hours)."
    )
    task_time_limit: int = Field(
        6 * 3600 + 600, gt=0, description="Seconds after which a Celery task's process is killed (it is then redelivered)."
    )
    broker_visibility_timeout: int | None = Field(
        None,
        gt=0,
        description="Redis broker: seconds before an unacknowledged task (its worker died) is delivered again; unset = "
        "the hard time limit plus 10 minutes. It must exceed the hard time limit, or a task that is still running is "
        "delivered a second time.",
    )
    worker_max_tasks_per_child: int = Field(
        500,
        gt=0,
        description="A worker process is replaced after this many tasks. Replacing one costs seconds (torch and the "
        "encoder load again), so this is a backstop; the memory limit is what recycles a process after big trainings.",
    )
    worker_max_memory_per_child_mb: int = Field(
        8192, gt=0, description="A worker process is replaced after its task if it holds more than this (resident MiB)."
    )

    @model_validator(mode="after")
    def _visibility_outlasts_the_time_limit(self) -> "Settings":
        if self.task_soft_time_limit >= self.task_time_limit:
            raise ValueError(
                f"DRIFTLOOP_TASK_SOFT_TIME_LIMIT ({self.task_soft_time_limit}) must be less than DRIFTLOOP_TASK_TIME_LIMIT "
                f"({self.task_time_limit}): the soft limit asks a task to stop before the hard one kills it"
            )
        if self.broker_visibility_timeout is not None and self.broker_visibility_timeout <= self.task_time_limit:
            raise ValueError(
                f"DRIFTLOOP_BROKER_VISIBILITY_TIMEOUT ({self.broker_visibility_timeout}) must be greater than "
                f"DRIFTLOOP_TASK_TIME_LIMIT ({self.task_time_limit}): a task still running would be delivered twice"
            )
        return self

    @property
    def refreshes_pool(self) -> bool:
        return self.pool_refresh == "on" or (self.pool_refresh == "auto" and bool(self.broker_url))

    @property
    def visibility_timeout(self) -> int:
        return self.broker_visibility_timeout or self.task_time_limit + 600

    @model_validator(mode="after")
    def _heartbeat_beats_the_lost_rule(self) -> "Settings":
        # otherwise every healthy job would be declared lost between two heartbeats
        if self.job_lost_after_seconds <= self.job_heartbeat_seconds:
            raise ValueError(
                f"DRIFTLOOP_JOB_LOST_AFTER_SECONDS ({self.job_lost_after_seconds:g}) must be greater than "
                f"DRIFTLOOP_JOB_HEARTBEAT_SECONDS ({self.job_heartbeat_seconds:g})"
            )
        return self

    @property
    def storage(self) -> Path:
        """The folder of the data every host shares: artifacts, vectors, indexes, checkpoints."""
        return self.data_dir or self.home

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.home / 'driftloop.db').resolve()}"

    @property
    def is_embedded_store(self) -> bool:
        return self.resolved_database_url.startswith("sqlite")


@lru_cache
def get_settings() -> Settings:
    return Settings()
