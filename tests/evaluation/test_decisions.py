"""Gate decisions as recorded in the store: the gate's outcome, or an override with its reason."""

import numpy as np
import pytest
from sqlalchemy import Engine, func, select

from driftloop.platform.errors import InvalidInput
from driftloop.platform.evaluation.decisions import record_decision
from driftloop.platform.evaluation.gate import EvalSlice, GateOutcome, evaluate_gate
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.models import GateDecision, ModelStatus, ModelVersion, Verdict
from driftloop.platform.tasks import get_task

LABELS = ["a", "b", "c"]
Y_TRUE = np.arange(60) % 3


def add_versions(engine: Engine, task_name: str) -> tuple[int, int]:
    """Ids of a champion (version 1) and a candidate (version 2) of the task."""
    with session_scope(engine) as session:
        task_id = get_task(session, task_name).id
        rows = [
            ModelVersion(
                task_id=task_id, version=n, mode="head", artifact_uri=f"file:///m/{n}", sha256="0" * 64, label_set=LABELS, status=status
            )
            for n, status in ((1, ModelStatus.champion), (2, ModelStatus.candidate))
        ]
        session.add_all(rows)
        session.flush()
        return rows[0].id, rows[1].id


def first_model_outcome(right: bool) -> GateOutcome:
    predicted = Y_TRUE if right else np.zeros_like(Y_TRUE)  # always "a": no better than the majority
    proba = np.eye(3)[predicted] * 0.9 + 0.1 / 3
    return evaluate_gate([EvalSlice("all", "all", Y_TRUE)], {"all": proba}, None, LABELS)


@pytest.mark.parametrize("right", [True, False])
def test_the_gate_outcome_is_recorded_with_its_verdict_rules_and_slices(engine: Engine, task_name: str, right: bool) -> None:
    champion_id, candidate_id = add_versions(engine, task_name)
    outcome = first_model_outcome(right)
    assert outcome.passed is right
    with session_scope(engine) as session:
        candidate, champion = session.get(ModelVersion, candidate_id), session.get(ModelVersion, champion_id)
        decision_id = record_decision(session, candidate, champion, outcome=outcome).id
    with session_scope(engine) as session:
        decision = session.get(GateDecision, decision_id)
        assert decision.verdict == (Verdict.passed if right else Verdict.failed)
        assert (decision.candidate_id, decision.champion_id, decision.override_reason) == (candidate_id, champion_id, None)
        assert [r["rule"] for r in decision.rules] == [r.rule for r in outcome.rules] == ["beats_majority"]
        assert list(decision.slices) == ["all"] and decision.slices["all"]["candidate"]["n"] == 60


def test_an_override_is_a_pass_kept_with_its_reason_and_needs_one(engine: Engine, task_name: str) -> None:
    _, candidate_id = add_versions(engine, task_name)
    with session_scope(engine) as session:
        candidate = session.get(ModelVersion, candidate_id)
        with pytest.raises(InvalidInput, match="needs a reason"):
            record_decision(session, candidate, None, override_reason="  ")
        with pytest.raises(ValueError, match="exactly one"):
            record_decision(session, candidate, None)
        with pytest.raises(ValueError, match="exactly one"):
            record_decision(session, candidate, None, outcome=first_model_outcome(True), override_reason="both")
        assert session.scalar(select(func.count()).select_from(GateDecision).where(GateDecision.candidate_id == candidate_id)) == 0
        decision = record_decision(session, candidate, None, override_reason=" launch day, accepted risk ")
        assert (decision.verdict, decision.override_reason, decision.champion_id) == (Verdict.passed, "launch day, accepted risk", None)
        assert decision.rules == [{"rule": "ops_override", "passed": True, "detail": "launch day, accepted risk"}]
