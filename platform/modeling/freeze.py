"""The freeze notice: when the gate has refused ``freeze_after`` candidates in a row, the served
model has stopped learning, and whoever runs the task must hear it with the reasons.

It is computed from what the store already holds (model versions and their gate decisions): the
candidates registered since the task's last promotion whose gate decision failed, counted back
from the newest until one that did not fail. A promotion (by the gate, by force, or a rollback)
clears it. Until alerts are routed, the notice is shown by `driftloop models list`, after a
refused `driftloop train`, in the demo and at ``GET /v1/tasks/{task}/gate``.
"""

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from driftloop.platform.modeling import registry
from driftloop.platform.store.models import GateDecision, ModelVersion, Verdict
from driftloop.platform.tasks import get_task


@dataclass(frozen=True)
class FailedRule:
    rule: str
    slice: str
    value: float
    threshold: float
    detail: str


@dataclass(frozen=True)
class RefusedRound:
    version: int
    decided_at: str
    failed: list[FailedRule]


@dataclass(frozen=True)
class FreezeNotice:
    message: str
    rounds: list[RefusedRound]  # the last ``freeze_after`` refused rounds, newest first


@dataclass(frozen=True)
class JudgedRule:
    """One row of a gate table as the decision stored it: the term, its weight and its interval."""

    rule: str
    slice: str
    status: str
    weight: float
    value: float
    low: float
    high: float
    threshold: float
    detail: str
    n: int | None  # the labels of its slice (of the slices it weighs, for net_gain)


@dataclass(frozen=True)
class LatestDecision:
    """The gate's newest decision on the task (overrides measure nothing and are left out)."""

    version: int
    decided_at: str
    passed: bool
    rules: list[JudgedRule]


@dataclass(frozen=True)
class GateStatus:
    task: str
    champion: int | None
    provisional: bool
    last_promotion: str | None
    refused_in_a_row: int
    freeze_after: int
    notice: FreezeNotice | None
    latest: LatestDecision | None = None


def gate_status(session: Session, task_name: str, freeze_after: int) -> GateStatus:
    """The task's champion and how many candidates in a row the gate has refused since; with a
    notice once that reaches ``freeze_after``."""
    task = get_task(session, task_name)
    current = registry.champion(session, task.id)
    last_promotion = session.scalar(select(func.max(ModelVersion.promoted_at)).where(ModelVersion.task_id == task.id))
    refused = _refused_since(session, task.id, last_promotion)
    notice = None
    if len(refused) >= freeze_after:
        shown = refused[:freeze_after]
        served = f"champion v{current.version}" if current else "no champion"
        since = f" since {last_promotion.isoformat(timespec='seconds')}" if last_promotion else ""
        message = (
            f"the gate refused the last {len(refused)} candidates of task {task.name} in a row "
            f"({', '.join(f'v{r.version}' for r in reversed(refused))}): {served} has not changed{since}, "
            "the served model has stopped learning; the refused rounds' labels stay in the next candidate's data"
        )
        notice = FreezeNotice(message, shown)
    return GateStatus(
        task=task.name,
        champion=current.version if current else None,
        provisional=registry.is_provisional(current) if current else False,
        last_promotion=last_promotion.isoformat(timespec="seconds") if last_promotion else None,
        refused_in_a_row=len(refused),
        freeze_after=freeze_after,
        notice=notice,
        latest=latest_decision(session, task.id),
    )


def latest_decision(session: Session, task_id: int) -> LatestDecision | None:
    """Every term of the task's newest gate decision, as the gate table shows it."""
    decision = session.scalar(
        select(GateDecision)
        .where(GateDecision.task_id == task_id, GateDecision.override_reason.is_(None))
        .order_by(GateDecision.decided_at.desc(), GateDecision.id.desc())
        .limit(1)
    )
    if decision is None:
        return None
    version = session.get(ModelVersion, decision.candidate_id)
    slices = decision.slices or {}
    rules = [
        JudgedRule(
            rule=r["rule"],
            slice=r.get("slice", ""),
            status=r.get("status", "pass" if r.get("passed") else "fail"),
            weight=float(r.get("weight", 1.0)),
            value=float(r.get("value", 0.0)),
            low=float(r.get("low", r.get("value", 0.0))),
            high=float(r.get("high", r.get("value", 0.0))),
            threshold=float(r.get("threshold", 0.0)),
            detail=r.get("detail", ""),
            n=slice_size(r.get("slice", ""), slices),
        )
        for r in decision.rules
    ]
    return LatestDecision(version.version, decision.decided_at.isoformat(timespec="seconds"), decision.verdict == Verdict.passed, rules)


def slice_size(name: str, slices: dict) -> int | None:  # type: ignore[type-arg]
    """n of the slice a rule judged; net_gain's "current+past" weighs the current and past slices."""
    names = [n for n, s in slices.items() if s.get("kind") in ("recent", "past")] if name == "current+past" else [name]
    sizes = [(slices.get(n) or {}).get("candidate", {}).get("n") for n in names]
    return sum(sizes) if sizes and None not in sizes else None


def _refused_since(session: Session, task_id: int, last_promotion) -> list[RefusedRound]:  # type: ignore[no-untyped-def]
    query = select(ModelVersion).where(ModelVersion.task_id == task_id)
    if last_promotion is not None:
        query = query.where(ModelVersion.created_at > last_promotion)
    refused = []
    for version in session.scalars(query.order_by(ModelVersion.version.desc())):
        decision = session.scalar(
            select(GateDecision)
            .where(GateDecision.candidate_id == version.id, GateDecision.override_reason.is_(None))
            .order_by(GateDecision.decided_at.desc(), GateDecision.id.desc())
            .limit(1)
        )
        if decision is None or decision.verdict != Verdict.failed:
            break  # a candidate the gate did not refuse ends the streak
        failed = [
            FailedRule(r["rule"], r.get("slice", ""), float(r.get("value", 0.0)), float(r.get("threshold", 0.0)), r.get("detail", ""))
            for r in decision.rules
            if not r.get("passed", True)
        ]
        refused.append(RefusedRound(version.version, decision.decided_at.isoformat(timespec="seconds"), failed))
    return refused
