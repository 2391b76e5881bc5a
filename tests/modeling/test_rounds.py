"""Rounds of continual learning on real BBC headlines and the real encoder: first model, the
gate refusing a candidate that forgets, replay rescuing it, overrides, rollback, clean failure,
and concurrent promotions on PostgreSQL."""

import threading
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from driftloop.platform.errors import PromotionRefused
from driftloop.platform.modeling import registry, replay
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.models import (
    GateDecision,
    Job,
    JobState,
    ModelStatus,
    ModelVersion,
    ReplayBuffer,
    TrainingRun,
)
from driftloop.platform.tasks import get_task
from tests.learning_loop import Loop


def test_first_model_is_gated_against_the_majority_class_and_promoted(loop: Loop) -> None:
    loop.label(loop.headlines[:300])
    result = loop.train()
    assert result.promoted and result.version == 1 and result.init == "scratch"
    assert [r.rule for r in result.gate.rules] == ["beats_majority"]
    assert loop.champion_version() == 1
    with session_scope(loop.engine) as session:
        job = session.get(Job, result.job_id)
        assert (job.state, job.progress) == (JobState.succeeded, 1.0)
        run = session.get(TrainingRun, result.run_id)
        assert run.state == JobState.succeeded and run.params["n_new"] == 240
        # what the champion learned is now remembered by every replay buffer
        task_id = get_task(session, loop.task).id
        assert len(replay.buffer_contents(session, task_id, "reservoir")) == 240
        assert len(replay.buffer_contents(session, task_id, "balanced")) == 240


def test_gate_refuses_a_candidate_that_forgets_and_replay_prevents_it(loop: Loop) -> None:
    # 90 past eval labels: enough for the gate to show a drop beyond its tolerance (60 were
    # enough for a point estimate, not for an interval)
    loop.label(loop.headlines[:450])
    loop.train()
    # New labels cover two topics only: trained on them alone, the model forgets the others.
    narrow = [h for h in loop.headlines[450:] if h[2] in ("business", "sports")][:150]
    loop.label(narrow)

    # under the default policy, forgetting a class that is still in recent traffic is a veto
    naive = loop.train(replay="none", past_windows=1)
    assert not naive.gate.passed and not naive.promoted, [(r.rule, r.slice, r.detail) for r in naive.gate.rules]
    failed = [r for r in naive.gate.rules if r.status == "fail"]
    assert any(r.rule == "class_lost" and "still in recent traffic" in r.detail for r in failed), failed
    # under strict, the loss on the past window is itself a veto
    loop.gate(policy="strict")
    strict = loop.train(replay="none", past_windows=1)
    failed = [r for r in strict.gate.rules if r.status == "fail"]
    assert any(r.rule == "no_forgetting" and r.slice.startswith("past1:labels 1-") for r in failed), failed
    assert loop.champion_version() == 1
    loop.gate(policy="current")

    with_replay = loop.train(replay="balanced", replay_ratio=2.0, past_windows=1)
    forgetting = [r for r in with_replay.gate.rules if r.rule in ("no_forgetting", "class_lost")]
    assert forgetting and all(r.status != "fail" for r in forgetting), with_replay.gate.rules
    assert with_replay.n_replay > 0 and with_replay.init == "champion v1"


def test_override_is_recorded_and_rollback_restores_the_previous_champion(loop: Loop) -> None:
    loop.label(loop.headlines[:300])
    loop.train()
    loop.label([h for h in loop.headlines[300:] if h[2] == "tech"][:60])
    rejected = loop.train(replay="none", past_windows=1)
    assert not rejected.gate.passed

    with pytest.raises(PromotionRefused, match="rejected, not a candidate"), session_scope(loop.engine) as session:
        registry.promote(session, loop.task, rejected.version, replay_capacity=100)
    with session_scope(loop.engine) as session:
        registry.promote(session, loop.task, rejected.version, replay_capacity=100, force_reason="tech launch, accepted risk")
    assert loop.champion_version() == rejected.version
    with session_scope(loop.engine) as session:
        override = session.scalar(select(GateDecision).where(GateDecision.override_reason.is_not(None)))
        assert override.override_reason == "tech launch, accepted risk"

    with session_scope(loop.engine) as session:
        restored = registry.rollback(session, loop.task)
    assert restored.version == 1 and loop.champion_version() == 1
    with session_scope(loop.engine) as session:
        statuses = dict(session.execute(select(ModelVersion.version, ModelVersion.status)).all())
    assert statuses[rejected.version] == ModelStatus.rejected

    # promoted again by force after the rollback: its labels are already in the replay buffers
    def buffers() -> dict:  # type: ignore[type-arg]
        with session_scope(loop.engine) as session:
            task_id = get_task(session, loop.task).id
            states = dict(session.execute(select(ReplayBuffer.strategy, ReplayBuffer.state).where(ReplayBuffer.task_id == task_id)).all())
            return {s: (states[s], replay.buffer_contents(session, task_id, s)) for s in replay.STRATEGIES}

    before = buffers()
    with session_scope(loop.engine) as session:
        registry.promote(session, loop.task, rejected.version, replay_capacity=100, force_reason="second look")
    assert buffers() == before


def test_a_failed_training_leaves_no_artifact_and_no_new_version(loop: Loop) -> None:
    loop.label(loop.headlines[:300])
    loop.train()
    loop.label(loop.headlines[300:400])
    # A real fault after training: something already occupies the artifact's place.
    with session_scope(loop.engine) as session:
        next_run = session.scalar(select(func.max(TrainingRun.id))) + 1
    models = loop.settings.home / "models" / loop.task
    (models / f"run-{next_run}").write_text("in the way")

    with pytest.raises(FileExistsError):
        loop.train()
    with session_scope(loop.engine) as session:
        assert session.scalar(select(func.count()).select_from(ModelVersion)) == 1
        run = session.scalars(select(TrainingRun).order_by(TrainingRun.id.desc())).first()
        job = session.get(Job, run.job_id)
        assert run.state == JobState.failed and "Error" in run.error
        assert job.state == JobState.failed and job.error
    assert not list(models.glob(".tmp-*")), "a half-written artifact was left behind"
    assert loop.champion_version() == 1


def test_concurrent_promotions_cannot_both_win(postgresql_engine: Engine, tmp_path: Path, headlines, encoder) -> None:  # type: ignore[no-untyped-def]
    loop = Loop(postgresql_engine, tmp_path, headlines, encoder)
    loop.label(loop.headlines[:300])
    loop.train()
    loop.label(loop.headlines[300:500])
    first = loop.train(promote=False, past_windows=1)
    second = loop.train(promote=False, past_windows=1)  # same data and seed: an equally good twin
    assert first.gate.passed and second.gate.passed, (first.gate.rules, second.gate.rules)

    barrier = threading.Barrier(2)
    outcomes: dict[int, str] = {}

    def promote(version: int) -> None:
        barrier.wait()
        try:
            with session_scope(postgresql_engine) as session:
                registry.promote(session, loop.task, version, replay_capacity=100)
            outcomes[version] = "promoted"
        except PromotionRefused as error:
            outcomes[version] = error.message

    threads = [threading.Thread(target=promote, args=(v,)) for v in (first.version, second.version)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(o == "promoted" for o in outcomes.values()) == [False, True], outcomes
    assert any("gated against another champion" in o for o in outcomes.values())
    with session_scope(postgresql_engine) as session:
        task_id = get_task(session, loop.task).id  # the database is shared with other tests' tasks
        champions = session.scalar(
            select(func.count())
            .select_from(ModelVersion)
            .where(ModelVersion.task_id == task_id, ModelVersion.status == ModelStatus.champion)
        )
    assert champions == 1
