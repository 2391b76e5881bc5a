"""Gate decisions as the store keeps them: what let a candidate replace the champion, or refused it.

A decision is the gate's outcome (its rules and per-slice metrics), or an ops override, a pass
the gate did not give, kept with its reason. Promotion requires a passed decision taken against
the current champion (:mod:`driftloop.platform.modeling.registry`), and the freeze notice counts
refused ones (:mod:`driftloop.platform.modeling.freeze`); both read what is recorded here.
"""

from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from driftloop.platform.errors import InvalidInput
from driftloop.platform.store.models import GateDecision, ModelVersion, Verdict

if TYPE_CHECKING:  # the gate brings scipy and scikit-learn; the registry and the reaper stay light
    from driftloop.platform.evaluation.gate import GateOutcome


def record_decision(
    session: Session,
    candidate: ModelVersion,
    champion: ModelVersion | None,
    *,
    outcome: "GateOutcome | None" = None,
    override_reason: str | None = None,
) -> GateDecision:
    """Record the decision on ``candidate`` against ``champion`` (None: the task had none): the
    gate's ``outcome``, or an override with its ``override_reason``; exactly one of the two."""
    if outcome is not None and override_reason is None:
        report = outcome.to_dict()
        verdict = Verdict.passed if outcome.passed else Verdict.failed
        rules, slices, reason = report["rules"], {s["name"]: s for s in report["slices"]}, None
    elif override_reason is not None and outcome is None:
        reason = override_reason.strip()
        if not reason:
            raise InvalidInput("an override needs a reason")
        verdict, rules, slices = Verdict.passed, [{"rule": "ops_override", "passed": True, "detail": reason}], {}
    else:
        raise ValueError("a gate decision is the gate's outcome or an override, exactly one of them")
    decision = GateDecision(
        task_id=candidate.task_id,
        candidate_id=candidate.id,
        champion_id=champion.id if champion else None,
        slices=slices,
        rules=rules,
        verdict=verdict,
        override_reason=reason,
    )
    session.add(decision)
    session.flush()
    return decision


def decision_on(session: Session, candidate: ModelVersion) -> GateDecision | None:
    """The latest decision on ``candidate`` (the gate's, or an override)."""
    return session.scalar(
        select(GateDecision).where(GateDecision.candidate_id == candidate.id).order_by(GateDecision.decided_at.desc(), GateDecision.id.desc())
    )
