from collections.abc import Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from driftloop.platform.errors import SchemaOutOfDate
from driftloop.platform.store import schema
from driftloop.platform.store.engine import make_engine, session_scope
from driftloop.platform.store.models import Base, ModelStatus, ModelVersion, Task
from tests.conftest import fresh_postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty store: its own SQLite file, or its own fresh database on PostgreSQL."""
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / 'empty.db'}"
        else:
            url = stack.enter_context(fresh_postgres_database())
        engine = make_engine(url)
        stack.callback(engine.dispose)
        yield engine


def test_upgrade_to_head_then_downgrade_to_base(empty_engine: Engine) -> None:
    schema.upgrade(empty_engine)
    assert schema.current_revision(empty_engine) == schema.head_revision(empty_engine)
    tables = set(inspect(empty_engine).get_table_names())
    assert set(Base.metadata.tables) <= tables

    schema.downgrade(empty_engine, "base")
    assert schema.current_revision(empty_engine) is None
    assert set(inspect(empty_engine).get_table_names()) <= {"alembic_version"}


def test_job_owners_downgrade_keeps_the_jobs_training_runs_refer_to(empty_engine: Engine) -> None:
    # SQLite's batch mode would copy the table and drop the old one, which its foreign keys forbid
    schema.upgrade(empty_engine)
    with empty_engine.begin() as connection:
        task = connection.execute(text("INSERT INTO tasks (name, created_at, settings) VALUES ('t', '2026-01-01', '{}') RETURNING id")).scalar()
        job = connection.execute(
            text(
                "INSERT INTO jobs (kind, task_id, state, progress, params, created_at, updated_at, owner_pid) "
                "VALUES ('train', :task, 'failed', 1, '{}', '2026-01-01', '2026-01-01', 42) RETURNING id"
            ),
            {"task": task},
        ).scalar()
        connection.execute(
            text(
                "INSERT INTO training_runs (task_id, job_id, mode, replay, params, state, metrics, started_at) "
                "VALUES (:task, :job, 'head', 'none', '{}', 'failed', '{}', '2026-01-01')"
            ),
            {"task": task, "job": job},
        )
    schema.downgrade(empty_engine, "0002")
    assert "owner_pid" not in {c["name"] for c in inspect(empty_engine).get_columns("jobs")}
    with empty_engine.connect() as connection:
        assert connection.execute(text("SELECT j.state FROM training_runs r JOIN jobs j ON j.id = r.job_id")).scalars().all() == ["failed"]
    schema.upgrade(empty_engine)
    assert "owner_pid" in {c["name"] for c in inspect(empty_engine).get_columns("jobs")}


def test_migrations_match_the_models(empty_engine: Engine) -> None:
    schema.upgrade(empty_engine)
    with empty_engine.connect() as connection:
        assert compare_metadata(MigrationContext.configure(connection), Base.metadata) == []


def test_stream_indexes_exist(empty_engine: Engine) -> None:
    schema.upgrade(empty_engine)
    inspector = inspect(empty_engine)
    indexed = {tuple(ix["column_names"]) for ix in inspector.get_indexes("texts")}
    unique = {tuple(uq["column_names"]) for uq in inspector.get_unique_constraints("texts")}
    unique |= {tuple(ix["column_names"]) for ix in inspector.get_indexes("texts") if ix["unique"]}
    assert ("task_id", "received_at") in indexed
    assert ("task_id", "content_hash") in indexed
    assert ("task_id", "external_id") in unique


def test_shared_store_behind_head_is_refused_with_the_fix(empty_engine: Engine) -> None:
    with pytest.raises(SchemaOutOfDate, match="driftloop db upgrade"):
        schema.ensure_current(empty_engine, auto_upgrade=False)
    schema.ensure_current(empty_engine, auto_upgrade=True)
    assert schema.current_revision(empty_engine) == schema.head_revision(empty_engine)


def test_database_allows_one_champion_per_task(engine: Engine) -> None:
    with session_scope(engine) as session:
        task = Task(name="champion-check-" + engine.dialect.name + str(id(session)), settings={})
        session.add(task)
        session.flush()
        for version in (1, 2):
            session.add(_model(task.id, version, ModelStatus.champion if version == 1 else ModelStatus.candidate))
        task_id = task.id
    with pytest.raises(IntegrityError), session_scope(engine) as session:
        session.add(_model(task_id, 3, ModelStatus.champion))


def _model(task_id: int, version: int, status: ModelStatus) -> ModelVersion:
    return ModelVersion(
        task_id=task_id,
        version=version,
        mode="head",
        artifact_uri=f"file:///m/{version}",
        sha256="0" * 64,
        label_set=["a"],
        metrics={},
        status=status,
    )


def test_webhook_secrets_are_encrypted_by_the_upgrade_and_decrypted_by_the_downgrade(empty_engine: Engine, tmp_path: Path) -> None:
    from cryptography.fernet import Fernet

    from driftloop.platform.config import Settings
    from driftloop.platform.secrets import decrypt

    settings = Settings(home=tmp_path / "home", secret_key=Fernet.generate_key().decode())
    schema.upgrade(empty_engine, "0002")
    with empty_engine.begin() as connection:
        connection.execute(
            text("INSERT INTO webhooks (url, external_id, secret, created_at) VALUES ('http://api/hook', 'w1', 'whsec_c2VjcmV0', :at)"),
            {"at": datetime(2026, 11, 22, tzinfo=UTC)},
        )

    schema.upgrade(empty_engine, "0004", settings=settings)
    with empty_engine.connect() as connection:
        row = connection.execute(text("SELECT * FROM webhooks")).mappings().one()
    assert "secret" not in row and "c2VjcmV0" not in row["secret_encrypted"]
    assert decrypt(settings, row["secret_encrypted"]) == "whsec_c2VjcmV0"
    assert {"webhook_deliveries"} <= set(inspect(empty_engine).get_table_names())
    assert not (tmp_path / "home").exists()  # the configured key was used, no key file written

    schema.downgrade(empty_engine, "0002", settings=settings)
    with empty_engine.connect() as connection:
        assert connection.execute(text("SELECT url, secret FROM webhooks")).one() == ("http://api/hook", "whsec_c2VjcmV0")
    assert "webhook_deliveries" not in inspect(empty_engine).get_table_names()


def test_a_downgrade_with_another_key_fails_and_changes_nothing(empty_engine: Engine, tmp_path: Path) -> None:
    from cryptography.fernet import Fernet

    from driftloop.platform.config import Settings
    from driftloop.platform.errors import WrongSecretKey

    schema.upgrade(empty_engine, "0002")
    with empty_engine.begin() as connection:
        connection.execute(
            text("INSERT INTO webhooks (url, external_id, secret, created_at) VALUES ('http://api/hook', 'w1', 'whsec_c2VjcmV0', :at)"),
            {"at": datetime(2026, 11, 22, tzinfo=UTC)},
        )
    schema.upgrade(empty_engine, "0004", settings=Settings(home=tmp_path, secret_key=Fernet.generate_key().decode()))
    with pytest.raises(WrongSecretKey):
        schema.downgrade(empty_engine, "0002", settings=Settings(home=tmp_path, secret_key=Fernet.generate_key().decode()))
    assert schema.current_revision(empty_engine) == "0004"
    assert "secret_encrypted" in {c["name"] for c in inspect(empty_engine).get_columns("webhooks")}


def test_schedules_downgrade_restores_the_old_table_and_upgrade_replaces_it(empty_engine: Engine) -> None:
    schema.upgrade(empty_engine)
    columns = {c["name"] for c in inspect(empty_engine).get_columns("schedules")}
    assert {"action", "every_seconds", "cron", "after_labels", "on_drift", "paused", "last_fired_at", "next_run_at"} <= columns
    assert "schedule_firings" in inspect(empty_engine).get_table_names()

    schema.downgrade(empty_engine, "0005")
    inspector = inspect(empty_engine)
    assert {c["name"] for c in inspector.get_columns("schedules")} == {
        "id", "task_id", "kind", "interval_seconds", "params", "enabled", "last_run_at", "next_run_at"
    }
    assert "schedule_firings" not in inspector.get_table_names()
    schema.upgrade(empty_engine)
    assert "every_seconds" in {c["name"] for c in inspect(empty_engine).get_columns("schedules")}
