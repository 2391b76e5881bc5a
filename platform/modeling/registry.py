"""Model versions: register candidates, promote, roll back.

Promotion is one transaction that holds the task's row lock, so promotions of one task run one
after another; the database's partial unique index allows one champion per task whatever
happens. A candidate may be promoted only on a passed gate decision taken against the champion
that is current at promotion time: if another candidate was promoted in between, the decision
is stale and the promotion is refused. Ops can override with a reason, which is recorded as a
gate decision of its own.

Every artifact under ``DRIFTLOOP_HOME/models/<task>/`` is a training run's (``run-<id>``) and
is either registered (a version points at it) or its run is still working on it. Anything
else was left by a training that died before it could register or clean up, and
:func:`sweep_orphan_artifacts` removes it.
"""

import re
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, exists, func, select
from sqlalchemy.orm import Session

from driftloop.platform.errors import NotFound, PromotionRefused
from driftloop.platform.evaluation.decisions import record_decision
from driftloop.platform.modeling import replay
from driftloop.platform.modeling.artifacts import Artifact, temporary_of
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.models import (
    GateDecision,
    JobState,
    Label,
    ModelStatus,
    ModelVersion,
    Split,
    Task,
    TrainingRun,
    Verdict,
)
from driftloop.platform.store.types import utcnow
from driftloop.platform.tasks import get_task

_RUN_ARTIFACT = re.compile(r"run-(?P<run>[0-9]+)")


@dataclass(frozen=True)
class SweptArtifact:
    """An artifact folder the sweep judged: ``removed``, ``left`` alone, or ``error``."""

    path: str
    task: str
    training_run: int
    action: str
    reason: str


@dataclass(frozen=True)
class ComparableMetrics:
    """A version's figures from the task's latest gate decision, which measured its candidate and
    champion on the same eval labels: those two versions' figures compare. A version's own
    ``metrics`` come from the eval split as it was in its own round, and the split grows with
    every round, so two versions' own metrics are measured on different sets and do not."""

    slice: str  # the gate's slice these figures come from
    n: int  # its eval labels
    macro_f1: float
    accuracy: float
    ece: float
    candidate: int  # the decision's candidate version
    champion: int | None  # and the champion it was gated against (None for a first model)
    decided_at: str


@dataclass(frozen=True)
class VersionInfo:
    version: int
    status: str
    mode: str
    parent: int | None
    created_at: str
    promoted_at: str | None
    labels: list[str]
    metrics: dict  # on the eval labels of its own round; see ComparableMetrics
    provisional: bool
    comparable: ComparableMetrics | None  # None for versions the latest gate decision did not measure


# The slice whose figures the registry compares versions on: every eval label the gate had.
# The slices a gate decision measured both models on, in order of preference: every eval label,
# else today's traffic (the cross-fitted ``current`` of a task without an eval split).
COMPARED_SLICES = ("all", "current")


def register_candidate(
    session: Session,
    task: Task,
    artifact: Artifact,
    *,
    mode: str,
    labels: list[str],
    parent: ModelVersion | None,
    training_run_id: int | None,
    metrics: dict,
) -> ModelVersion:
    session.execute(select(Task.id).where(Task.id == task.id).with_for_update())  # serialises version numbers
    number = (session.scalar(select(func.max(ModelVersion.version)).where(ModelVersion.task_id == task.id)) or 0) + 1
    version = ModelVersion(
        task_id=task.id,
        version=number,
        parent_id=parent.id if parent else None,
        training_run_id=training_run_id,
        mode=mode,
        artifact_uri=artifact.uri,
        sha256=artifact.sha256,
        label_set=labels,
        metrics=metrics,
        status=ModelStatus.candidate,
    )
    session.add(version)
    session.flush()
    return version


def champion(session: Session, task_id: int) -> ModelVersion | None:
    return session.scalar(
        select(ModelVersion).where(ModelVersion.task_id == task_id, ModelVersion.status == ModelStatus.champion)
    )


def data_cutoff(session: Session, champion: ModelVersion | None) -> datetime | None:
    """When the champion's training data was cut off: the train labels that arrived after it are
    new to it (None without a champion: every label is new)."""
    if champion is None:
        return None
    run = session.get(TrainingRun, champion.training_run_id) if champion.training_run_id else None
    if run is not None and run.params.get("data_until"):
        return parse_time(run.params["data_until"])
    return champion.created_at


def new_train_labels(session: Session, task_id: int, *, since: datetime | None = None) -> int:
    """Train labels that arrived after the champion's data cutoff (all of them before a first
    model), and after ``since`` when given: what the next round would learn from."""
    cutoff = data_cutoff(session, champion(session, task_id))
    after = max((t for t in (cutoff, since) if t is not None), default=None)
    query = select(func.count()).select_from(Label).where(Label.task_id == task_id, Label.split == Split.train)
    if after is not None:
        query = query.where(Label.created_at > after)
    return session.scalar(query) or 0


def get_version(session: Session, task: Task, number: int) -> ModelVersion:
    version = session.scalar(select(ModelVersion).where(ModelVersion.task_id == task.id, ModelVersion.version == number))
    if version is None:
        raise NotFound(f"task {task.name} has no model version {number} (see `driftloop models list {task.name}`)")
    return version


def promote(
    session: Session, task_name: str, number: int, *, replay_capacity: int, force_reason: str | None = None
) -> ModelVersion:
    task = get_task(session, task_name, lock=True)
    candidate = get_version(session, task, number)
    if candidate.status == ModelStatus.champion:
        raise PromotionRefused(f"version {number} is champion, not a candidate", version=number)
    if candidate.status != ModelStatus.candidate and not force_reason:
        raise PromotionRefused(
            f"version {number} {_past(candidate)}: it is {candidate.status.value}, not a candidate; promoting it again "
            "overrides the gate: --force with --reason (force_reason over HTTP)",
            version=number,
        )
    current = champion(session, task.id)
    if force_reason is not None:
        record_decision(session, candidate, current, override_reason=force_reason)
    else:
        _require_passed_gate(session, candidate, current)
    if current is not None:
        current.status = ModelStatus.retired
        session.flush()  # the old champion steps down before the new one takes the unique slot
    candidate.status = ModelStatus.champion
    candidate.promoted_at = utcnow()
    session.flush()
    remember_in_replay(session, candidate, replay_capacity)
    return candidate


def _past(version: ModelVersion) -> str:
    """How a version stopped being a candidate, as the refusal to promote it again says it."""
    if version.status == ModelStatus.retired:
        return "was champion until a newer one was promoted"
    if version.promoted_at is not None:  # a rejected version that had been champion
        return "was rolled back"
    return "was rejected by the gate"


def remember_in_replay(session: Session, version: ModelVersion, capacity: int, seed: int = 0) -> None:
    """Offer the labels a newly promoted model learned from to every replay buffer of its task,
    so later rounds can replay them, once per version. A model without a training run (none
    yet) offers nothing."""
    run = session.get(TrainingRun, version.training_run_id) if version.training_run_id else None
    if run is None or not run.params.get("data_until"):
        return
    query = select(Label.text_id, Label.label).where(
        Label.task_id == version.task_id,
        Label.split == Split.train,
        Label.created_at <= parse_time(run.params["data_until"]),
    )
    if run.params.get("data_from"):
        query = query.where(Label.created_at > parse_time(run.params["data_from"]))
    items = [replay.ReplayItem(text_id, label) for text_id, label in session.execute(query.order_by(Label.id))]
    for strategy in replay.STRATEGIES:
        # keyed by version: a version promoted again (after a rollback) has nothing new to teach
        replay.update_buffer(session, version.task_id, strategy, capacity, items, seed=seed, offer_key=f"version-{version.id}")


def is_provisional(version: ModelVersion) -> bool:
    """Whether the version passed on cross-validated evidence only and no eval slice has judged
    it yet (see :mod:`driftloop.platform.evaluation.first_model`)."""
    return bool((version.metrics or {}).get("provisional"))


def provisional_metrics(eval_metrics: dict, evidence: dict) -> dict:  # type: ignore[type-arg]
    """A provisional version's metrics: those of its (too small) eval slice, its flag and the
    cross-validated evidence it passed on. Kept in ``metrics`` rather than a column: it is what
    the version was judged on, like the metrics."""
    return {**eval_metrics, "provisional": True, "cross_validation": evidence}


def confirm(version: ModelVersion, eval_metrics: dict) -> None:  # type: ignore[type-arg]
    """A provisional version judged on eval slices that can decide: it keeps those metrics, and
    the evidence it was promoted on for the record, and is provisional no more."""
    evidence = (version.metrics or {}).get("cross_validation")
    version.metrics = {**eval_metrics, **({"cross_validation": evidence} if evidence else {})}


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def reject(session: Session, version: ModelVersion) -> None:
    version.status = ModelStatus.rejected
    session.flush()


def rollback(session: Session, task_name: str) -> ModelVersion:
    """Put the previous champion back; the current one is marked rejected."""
    task = get_task(session, task_name, lock=True)
    current = champion(session, task.id)
    if current is None:
        raise PromotionRefused(f"task {task_name} has no champion to roll back")
    previous = session.scalar(
        select(ModelVersion)
        .where(
            ModelVersion.task_id == task.id,
            ModelVersion.status == ModelStatus.retired,
            ModelVersion.promoted_at.is_not(None),
        )
        .order_by(ModelVersion.promoted_at.desc())
        .limit(1)
    )
    if previous is None:
        raise PromotionRefused(f"task {task_name} has no earlier champion to roll back to")
    current.status = ModelStatus.rejected
    session.flush()
    previous.status = ModelStatus.champion
    previous.promoted_at = utcnow()
    session.flush()
    return previous


def list_versions(session: Session, task_name: str) -> list[VersionInfo]:
    task = get_task(session, task_name)
    rows = session.scalars(select(ModelVersion).where(ModelVersion.task_id == task.id).order_by(ModelVersion.version)).all()
    by_id = {row.id: row.version for row in rows}
    comparable = _latest_comparison(session, task.id, by_id)
    out = []
    for row in rows:
        out.append(
            VersionInfo(
                version=row.version,
                status=row.status.value,
                mode=row.mode,
                parent=by_id.get(row.parent_id) if row.parent_id else None,
                created_at=row.created_at.isoformat(timespec="seconds"),
                promoted_at=row.promoted_at.isoformat(timespec="seconds") if row.promoted_at else None,
                labels=row.label_set,
                metrics=row.metrics,
                provisional=is_provisional(row),
                comparable=comparable.get(row.version),
            )
        )
    return out


def _latest_comparison(session: Session, task_id: int, version_of: dict[int, int]) -> dict[int, ComparableMetrics]:
    """The figures of the newest gate decision that measured models (an override measures
    none), by version: its candidate's, and its champion's on the same slice."""
    decisions = session.scalars(
        select(GateDecision)
        .where(GateDecision.task_id == task_id)
        .order_by(GateDecision.decided_at.desc(), GateDecision.id.desc())
    )
    found = next(((d, name) for d in decisions for name in COMPARED_SLICES if (d.slices or {}).get(name)), None)
    if found is None:
        return {}
    decision, compared = found
    report = decision.slices[compared]
    candidate = version_of[decision.candidate_id]
    champion = version_of.get(decision.champion_id) if decision.champion_id else None
    measured = {candidate: report["candidate"], champion: report.get("champion")}
    return {
        version: ComparableMetrics(
            slice=compared,
            n=figures["n"],
            macro_f1=figures["macro_f1"],
            accuracy=figures["accuracy"],
            ece=figures["ece"],
            candidate=candidate,
            champion=champion,
            decided_at=decision.decided_at.isoformat(timespec="seconds"),
        )
        for version, figures in measured.items()
        if version is not None and figures
    }


def _require_passed_gate(session: Session, candidate: ModelVersion, current: ModelVersion | None) -> None:
    decision = session.scalar(
        select(GateDecision)
        .where(GateDecision.candidate_id == candidate.id)
        .order_by(GateDecision.decided_at.desc(), GateDecision.id.desc())
        .limit(1)
    )
    if decision is None or decision.verdict != Verdict.passed:
        raise PromotionRefused(
            f"version {candidate.version} has not passed the gate; promote with --force and a reason to override",
            version=candidate.version,
        )
    if decision.champion_id != (current.id if current else None):
        raise PromotionRefused(
            f"version {candidate.version} was gated against another champion than the current one "
            "(a promotion happened since): run the gate again",
            version=candidate.version,
        )


def artifact_folder(home: Path, task: str) -> Path:
    """Where the artifacts of a task's trainings are written."""
    return home / "models" / task


def run_artifact_name(run_id: int) -> str:
    return f"run-{run_id}"


def sweep_orphan_artifacts(engine: Engine, home: Path, task: str | None = None) -> list[SweptArtifact]:
    """Remove what dead trainings left under ``home/models`` (of one task, or all): a run's
    artifact that no version points at, and a half-written one (``.tmp-*``), once the run is no
    longer running. The artifact of a live training is never touched, nor a folder this store
    knows no training run of that task for (a home shared with another store): those are left
    and reported. Call it after the lost jobs are reaped, or their runs still count as running.
    """
    if task is not None:
        folders = [artifact_folder(home, task)]
    else:
        root = home / "models"
        folders = sorted(root.iterdir()) if root.is_dir() else []
    found: list[tuple[Path, str, int, bool]] = []  # path, task, run, half-written
    for folder in folders:
        if not folder.is_dir() or folder.is_symlink():
            continue
        for entry in sorted(folder.iterdir()):
            name = temporary_of(entry.name)
            match = _RUN_ARTIFACT.fullmatch(name or entry.name)
            if match and entry.is_dir() and not entry.is_symlink():
                found.append((entry, folder.name, int(match["run"]), name is not None))
    if not found:
        return []
    with session_scope(engine) as session:
        # One statement, one snapshot: a run seen finished has its version (registered in the
        # same transaction) seen with it. The artifact URIs are read after it, as a second guard.
        registered = exists().where(ModelVersion.training_run_id == TrainingRun.id)
        runs = {
            run_id: (state, task_name, has_version)
            for run_id, state, task_name, has_version in session.execute(
                select(TrainingRun.id, TrainingRun.state, Task.name, registered)
                .join(Task, Task.id == TrainingRun.task_id)
                .where(TrainingRun.id.in_({run for _, _, run, _ in found}))
            )
        }
        uris = {path.resolve().as_uri() for path, _, _, _ in found}
        pointed = set(session.scalars(select(ModelVersion.artifact_uri).where(ModelVersion.artifact_uri.in_(uris))))
    swept = []
    for path, task_name, run_id, half_written in found:
        state, run_task, has_version = runs.get(run_id, (None, None, False))
        if run_task != task_name:
            reason = f"this store has no training run {run_id} of task {task_name}: not ours to judge"
            swept.append(SweptArtifact(str(path), task_name, run_id, "left", reason))
            continue
        if state == JobState.running or path.resolve().as_uri() in pointed or (has_version and not half_written):
            continue
        what = "half-written artifact" if half_written else "artifact that no model version points at"
        reason = f"{what}, of training run {run_id} ({state.value})"
        try:
            shutil.rmtree(path)
        except FileNotFoundError:
            continue  # a training renamed its finished artifact into place since it was listed
        except OSError as error:
            swept.append(SweptArtifact(str(path), task_name, run_id, "error", f"{reason}: could not remove it: {error}"))
            continue
        swept.append(SweptArtifact(str(path), task_name, run_id, "removed", reason))
    return swept
