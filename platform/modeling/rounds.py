"""One round of continual learning: train a candidate from the champion on the labels that
arrived since the champion's data was cut off, plus a replay sample of older labels; gate it
against the champion on every eval slice; promote it if it passed.

Failure is clean: the training run and its job are marked failed with the error, no artifact
is left behind and no model version is registered. The version, the gate decision, the run's
and the job's success commit in one transaction, so they cannot disagree. A round that is
killed outright cannot clean up after itself: its job is reaped as lost by the next look (the
next round of the task starts with it) and its artifact swept, see
:mod:`driftloop.platform.recovery`.
"""

import math
import shutil
import traceback
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from driftloop.platform.config import Settings
from driftloop.platform.errors import Busy
from driftloop.platform.evaluation import first_model
from driftloop.platform.evaluation.decisions import record_decision
from driftloop.platform.evaluation.gate import (
    EvalSlice,
    GateOutcome,
    GateRules,
    RuleResult,
    evaluate_gate,
    has_evidence,
)
from driftloop.platform.evaluation.slices import (
    SliceSpec,
    arrival_order,
    eval_slices,
    recency_weights,
    traffic_classes,
    weighted,
)
from driftloop.platform.home import private_home
from driftloop.platform.jobs import (
    begin_job,
    complete_job,
    create_job,
    fail_job,
    follow_up_runner,
    is_live,
    lock_running,
    progress_reporter,
    running,
    submit,
)
from driftloop.platform.modeling import registry, replay
from driftloop.platform.modeling.artifacts import path_from_uri
from driftloop.platform.modeling.cross_validation import cross_fit, cross_validate_head
from driftloop.platform.modeling.embeddings import embed_texts
from driftloop.platform.modeling.encoder import Encoder, load_encoder
from driftloop.platform.modeling.model import TextClassifier
from driftloop.platform.modeling.round_requests import (  # noqa: F401 - the round's request, re-exported
    RoundRequest,
    TrainingConfig,
    check_learnable,
    check_request,
    no_new_labels,
    one_class,
    request_from_params,
    request_params,
    submit_train,
)
from driftloop.platform.modeling.training import Checkpointing, FitReport, Progress, TrainingData, fit
from driftloop.platform.recovery import recover
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.in_lists import in_list_chunks
from driftloop.platform.store.models import (
    Job,
    JobState,
    Label,
    ModelVersion,
    Split,
    TextRecord,
    TrainingRun,
)
from driftloop.platform.store.types import utcnow
from driftloop.platform.tasks import get_task, label_names


@dataclass(frozen=True)
class RoundResult:
    version: int
    promoted: bool
    gate: GateOutcome
    fit: FitReport
    n_new: int
    n_replay: int
    init: str  # "champion vN" or "scratch"
    job_id: int
    run_id: int
    provisional: bool = False  # passed on cross-validated evidence, or for lack of any against a superset candidate


@dataclass(frozen=True)
class _Example:
    text_id: int
    text: str
    label: str


def train_round(
    engine: Engine,
    settings: Settings,
    request: RoundRequest,
    encoder: Encoder | None = None,
    on_progress: Progress | None = None,
    job_id: int | None = None,
) -> RoundResult:
    """Run one round; progress goes to the job row (for ops and the API) and to ``on_progress``.

    The round runs as job ``job_id`` (a queued ``train`` job, see :func:`submit_train`), or as a
    new job it creates itself."""
    check_request(request)
    if job_id is None:  # refused as a submission is, before a job exists or the encoder loads
        with session_scope(engine, read_only=True) as session:
            check_learnable(session, get_task(session, request.task))
    recover(engine, settings, request.task)  # what an earlier round of the task left when it was killed
    encoder = encoder or load_encoder(settings)
    with session_scope(engine) as session:
        # the task's row lock makes "is another training running? then this one starts" one step,
        # so two trainings of a task never run at once, whichever processes or workers run them
        task = get_task(session, request.task, lock=True)
        _refuse_a_second_training(session, task.id, request.task, job_id)
        if job_id is None:
            job = create_job(session, "train", task.id, request_params(request), start=True)
        else:
            job = begin_job(session, job_id)
        run = TrainingRun(
            task_id=task.id, job_id=job.id, mode=request.mode, replay=request.replay, params={}, state=JobState.running
        )
        session.add(run)
        session.flush()
        job_id, run_id, task_id = job.id, run.id, task.id
    try:
        with running(engine, job_id, settings.job_heartbeat_seconds):
            result = _run(engine, settings, request, encoder, task_id, job_id, run_id, on_progress)
    except BaseException as error:  # an interrupted round (Ctrl-C) is a failed one too
        _mark_failed(engine, job_id, run_id, error)
        with session_scope(engine) as session:
            again = is_live(session, job_id)
        if not again:  # a failed job is not run again; one handed back is (a stopping worker's SIGTERM ends here too)
            shutil.rmtree(checkpoint_path(settings, job_id).parent, ignore_errors=True)
        raise
    shutil.rmtree(checkpoint_path(settings, job_id).parent, ignore_errors=True)
    return result


def checkpoint_path(settings: Settings, job_id: int) -> Path:
    """The job's training checkpoint: job-scoped, so the job's next attempt finds it, and no other job does."""
    return private_home(settings.storage) / "checkpoints" / f"job-{job_id}" / "fit.pt"


def _refuse_a_second_training(session: Session, task_id: int, task: str, job_id: int | None) -> None:
    other = session.scalar(
        select(Job.id).where(Job.task_id == task_id, Job.kind == "train", Job.state == JobState.running, Job.id != (job_id or -1))
    )
    if other is not None:
        raise Busy(f"another training of task {task} is running (job {other}); one at a time per task", task=task, job=other)


def run_train_job(engine: Engine, settings: Settings, job_id: int) -> dict[str, Any]:
    """The ``train`` job's operation: the round its params describe, as that job."""
    with session_scope(engine) as session:
        params = session.get(Job, job_id).params  # type: ignore[union-attr]
    result = train_round(engine, settings, request_from_params(params), job_id=job_id)
    if result.promoted and settings.refreshes_pool:  # the new champion scores the pool for the next selection
        submit(engine, settings, "score", params["task"], {"task": params["task"]}, runner=follow_up_runner(), coalesce=True)
    with session_scope(engine) as session:
        return session.get(Job, job_id).result or {}  # type: ignore[union-attr]


def _run(
    engine: Engine,
    settings: Settings,
    request: RoundRequest,
    encoder: Encoder,
    task_id: int,
    job_id: int,
    run_id: int,
    on_progress: Progress | None,
) -> RoundResult:
    def stage(low: float, high: float) -> Progress:
        to_job = progress_reporter(engine, job_id, low, high)

        def report(fraction: float, message: str) -> None:
            to_job(fraction, message)
            if on_progress is not None:
                on_progress(low + (high - low) * fraction, message)

        return report

    data = gather(engine, request, task_id)
    stage(0.0, 1.0)(0.02, f"{len(data.new)} new labels, {len(data.replayed)} replayed")
    # full and lora take hours on a GPU: a job run again after its process died resumes from here
    resumable = Checkpointing(checkpoint_path(settings, job_id), settings.checkpoint_steps) if request.mode != "head" else None
    trained = train_candidate(engine, settings, request, data, encoder, stage(0.02, 0.85), resumable)
    judged = gate_candidate(engine, settings, request, data, trained, encoder, stage(0.86, 0.99))
    return record_round(engine, settings, request, data, trained, judged, job_id, run_id)


@dataclass(frozen=True)
class _Champion:
    id: int
    version: int
    artifact_uri: str
    sha256: str
    mode: str


def _row(version: ModelVersion | None) -> _Champion | None:
    return _Champion(version.id, version.version, version.artifact_uri, version.sha256, version.mode) if version else None


@dataclass(frozen=True)
class RoundData:
    """What a round learns from and is judged on, read from the store in one transaction."""

    task_id: int
    labels: list[str]
    rules: GateRules
    eval_size: int
    cutoff: datetime | None  # the new labels are those after it
    new: list[_Example]
    replayed: list[_Example]
    data_until: datetime
    slices: list[SliceSpec]
    base: _Champion | None  # the model the candidate starts from
    judge: _Champion | None  # the current champion, which the candidate is gated against
    judges_provisional: bool  # the judge is a provisional model this round's evidence now judges
    cross_fitted: int  # the first rows of the ``current`` slice: train labels, predicted by cross-fitting
    traffic: set[str]  # the classes seen in recent traffic
    superset: bool  # the candidate learns the judge's data and more, by the judge's recipe

    @property
    def champion_id(self) -> int | None:
        return self.judge.id if self.judge else None


@dataclass
class TrainedCandidate:
    model: TextClassifier
    init: str  # "champion vN" or "scratch"
    fit: FitReport
    features: np.ndarray | None  # the training examples' embeddings, when a head needs them
    champion: TextClassifier | None  # the base it started from
    data: TrainingData  # what it was fitted on: cross-fitting refits on it without each fold


@dataclass(frozen=True)
class GateResult:
    outcome: GateOutcome
    cross_validated: RuleResult | None  # the first model's evidence when the eval split was too small


def gather(engine: Engine, request: RoundRequest, task_id: int) -> RoundData:
    """Step 1: the new labels since the champion's data cutoff, a replay sample of older ones, and
    the slices the gate will judge on. Raises when there is nothing to learn."""
    with session_scope(engine) as session:
        task = get_task(session, request.task)
        labels = label_names(task)
        current = registry.champion(session, task_id)
        rules = GateRules.from_dict(task.settings.get("gate"))
        eval_size = session.scalar(
            select(func.count()).select_from(Label).where(Label.task_id == task_id, Label.split == Split.eval)
        ) or 0
        judge_cutoff = cutoff = registry.data_cutoff(session, current)
        unseen = _train_examples(session, task_id, since=judge_cutoff)  # labels the champion never saw
        if not unseen:
            raise no_new_labels(task, current)
        # The candidate learns from ``base``. A provisional champion stood in on thin evidence;
        # until evidence confirms one, the next candidate is trained on every label from scratch
        # (the first model's recipe, on more data) rather than stepping from a model nothing judged.
        base, new = current, unseen
        if current is not None and registry.is_provisional(current):
            base, cutoff = None, None
            new = _train_examples(session, task_id, since=None)
        if base is None:
            _require_two_classes(task.name, new)
        order = arrival_order(session, task_id)
        slices = eval_slices(session, task_id, labels, judge_cutoff, request.past_windows, rules.min_slice_size)
        # Cross-fitting refits the candidate k times: cheap for a head on cached embeddings, k
        # fine-tunings in the other modes, which are judged on the eval split alone.
        cross_fitted = unseen if current is not None and request.mode == "head" else []
        slices = _with_current(slices, cross_fitted, labels)
        recency = recency_weights(order, rules.half_life_labels)
        return RoundData(
            task_id=task_id,
            labels=labels,
            rules=rules,
            eval_size=eval_size,
            cutoff=cutoff,
            new=new,
            replayed=_replay_sample(session, task_id, request, len(new)) if base else [],
            data_until=session.scalar(select(func.max(Label.created_at)).where(Label.task_id == task_id)),
            slices=[weighted(spec, recency) for spec in slices],
            base=_row(base),
            judge=_row(current),
            judges_provisional=current is not None and registry.is_provisional(current),
            cross_fitted=len(cross_fitted),
            traffic=traffic_classes(order, [e.label for e in unseen], rules.half_life_labels),
            superset=current is not None and current.mode == request.mode and (base is None or request.replay != "none"),
        )


def _with_current(slices: list[SliceSpec], cross_fitted: list["_Example"], labels: list[str]) -> list[SliceSpec]:
    """The eval split's ``recent`` slice becomes ``current``: the train labels the champion never
    saw (first, their candidate predictions cross-fitted) and the recent eval labels."""
    if not cross_fitted:
        return slices
    recent = next((s for s in slices if s.kind == "recent"), SliceSpec("recent", "recent", [], [], np.zeros(0, dtype=np.int64)))
    current = SliceSpec(
        "current",
        "recent",
        [e.text_id for e in cross_fitted] + recent.text_ids,
        [e.text for e in cross_fitted] + recent.texts,
        np.concatenate([np.array([labels.index(e.label) for e in cross_fitted], dtype=np.int64), recent.y_true]),
    )
    return [current] + [s for s in slices if s.kind != "recent"]


def train_candidate(
    engine: Engine,
    settings: Settings,
    request: RoundRequest,
    data: RoundData,
    encoder: Encoder,
    progress: Progress,
    checkpointing: Checkpointing | None = None,
) -> TrainedCandidate:
    """Step 2: a candidate from the base model (or from scratch), fitted on the new and replayed
    examples, with distillation from the base when asked."""
    champion_model = _load(data.base, encoder)
    model, init = _start_from(champion_model, data.base, request, data.labels, encoder)
    examples = data.new + data.replayed
    features = _features(engine, settings, data.task_id, examples, encoder, request.mode, champion_model, _within(progress, 0.0, 0.33))
    training_data = TrainingData(
        texts=[e.text for e in examples],
        y=np.array([data.labels.index(e.label) for e in examples], dtype=np.int64),
        features=features if request.mode == "head" else None,
        teacher=_teacher(champion_model, data.new, data.replayed, features, request.training),
        replayed=np.arange(len(examples)) >= len(data.new),
    )
    fit_report = fit(model, training_data, request.training, _within(progress, 0.33, 1.0), checkpointing)
    return TrainedCandidate(model, init, fit_report, features, champion_model, training_data)


def gate_candidate(
    engine: Engine,
    settings: Settings,
    request: RoundRequest,
    data: RoundData,
    trained: TrainedCandidate,
    encoder: Encoder,
    progress: Progress,
) -> GateResult:
    """Step 3: the candidate against the champion on the current traffic (its predictions on the
    train labels cross-fitted), the eval split's past windows and the gold set; a first model is
    judged on cross-validation of its recipe while the eval split is too small."""
    progress(0.0, "gating the candidate")
    model = trained.model
    judge = trained.champion if data.judge == data.base else _load(data.judge, encoder)
    uses_embeddings = model.mode == "head" or (judge is not None and judge.mode == "head")
    slice_features = _slice_features(engine, settings, data.task_id, data.slices, encoder) if uses_embeddings else {}
    cross_fitted = None
    if data.cross_fitted:
        progress(0.1, f"cross-fitting the candidate on {data.cross_fitted} labels the champion never saw")
        cross_fitted = _cross_fitted(request, data, trained, encoder)
    outcome = _gate(data, slice_features, model, judge, cross_fitted)
    cross_validated: RuleResult | None = None
    if data.judge is None and not first_model.eval_can_decide(data.eval_size, data.rules):
        progress(0.5, "cross-validating the recipe on the training labels (the eval split is too small)")
        cross_validated = _cross_validated(
            engine, settings, data.task_id, data.new, trained.features, data.labels, encoder, request, data.eval_size, data.rules
        )
        outcome = first_model.with_cross_validation(outcome, cross_validated)
    return GateResult(outcome, cross_validated)


def _cross_fitted(request: RoundRequest, data: RoundData, trained: TrainedCandidate, encoder: Encoder) -> np.ndarray:
    """The candidate's probabilities on the current slice's train labels, each from a model
    started and trained as the candidate was, without that label's fold."""
    position = {e.text_id: i for i, e in enumerate(data.new)}
    current = next(s for s in data.slices if s.name == "current")
    held = np.array([position[t] for t in current.text_ids[: data.cross_fitted]])

    def start() -> TextClassifier:
        return _start_from(trained.champion, data.base, request, data.labels, encoder)[0]

    return cross_fit(start, trained.data, held, request.training)


def record_round(
    engine: Engine,
    settings: Settings,
    request: RoundRequest,
    data: RoundData,
    trained: TrainedCandidate,
    judged: GateResult,
    job_id: int,
    run_id: int,
) -> RoundResult:
    """Step 4: the artifact saved, then in one transaction the version registered, the gate
    decision recorded, the candidate promoted or rejected and the run and job completed. A job
    that was cancelled or lost meanwhile records nothing (its artifact is removed)."""
    outcome, cross_validated = judged.outcome, judged.cross_validated
    artifact = trained.model.save(
        registry.artifact_folder(private_home(settings.storage), request.task),
        registry.run_artifact_name(run_id),
        {"training_run": run_id, "init": trained.init, "fit": asdict(trained.fit) | {"history": trained.fit.history[-5:]}},
    )
    try:
        with session_scope(engine) as session:
            lock_running(session, job_id)  # first, as the reaper does: then the two cannot deadlock
            task = get_task(session, request.task)
            parent = session.get(ModelVersion, data.champion_id) if data.champion_id else None
            all_metrics = _headline(outcome, "candidate")
            if cross_validated is not None:
                metrics = registry.provisional_metrics(all_metrics, first_model.evidence(cross_validated))
            elif outcome.provisional:
                metrics = registry.provisional_metrics(all_metrics, first_model.evidence(outcome.rules[-1]))
            else:
                metrics = all_metrics
            version = registry.register_candidate(
                session, task, artifact, mode=request.mode, labels=data.labels, parent=parent, training_run_id=run_id, metrics=metrics
            )
            if data.judges_provisional and parent is not None and not outcome.provisional and has_evidence(outcome.rules):
                # evidence decided on it now: the provisional champion gets the metrics it was judged by
                champion_all = _headline(outcome, "champion")
                if champion_all:
                    registry.confirm(parent, champion_all)
            record_decision(session, version, parent, outcome=outcome)
            run = session.get(TrainingRun, run_id)
            run.params = {
                "data_from": data.cutoff.isoformat() if data.cutoff else None,
                "data_until": data.data_until.isoformat(),
                "n_new": len(data.new),
                "n_replay": len(data.replayed),
                "init": trained.init,
                "training": asdict(request.training),
            }
            run.metrics = {"fit": asdict(trained.fit), "candidate_all": all_metrics}
            run.state, run.finished_at = JobState.succeeded, utcnow()
            session.flush()
            promoted = False
            if not outcome.passed:
                registry.reject(session, version)
            elif request.promote:
                registry.promote(session, request.task, version.version, replay_capacity=request.replay_capacity)
                promoted = True
            number = version.version
            complete_job(
                session,
                job_id,
                {
                    "version": number,
                    "promoted": promoted,
                    "passed": outcome.passed,
                    "init": trained.init,
                    "n_new": len(data.new),
                    "n_replay": len(data.replayed),
                    "provisional": cross_validated is not None or outcome.provisional,
                },
            )
    except BaseException:
        shutil.rmtree(artifact.path, ignore_errors=True)
        raise
    return RoundResult(
        number,
        promoted,
        outcome,
        trained.fit,
        len(data.new),
        len(data.replayed),
        trained.init,
        job_id,
        run_id,
        cross_validated is not None or outcome.provisional,
    )


def _headline(outcome: GateOutcome, role: str) -> dict[str, object]:
    """A model's metrics as its version keeps them: on the eval split's ``all`` slice, else on the
    current traffic (a task without an eval split)."""
    for name in ("all", "current", "recent"):
        report = next((s for s in outcome.slices if s.name == name), None)
        metrics = getattr(report, role, None) if report else None
        if metrics is not None:
            return metrics.to_dict()
    return {}


def _within(progress: Progress, low: float, high: float) -> Progress:
    """A step's share of its caller's progress."""
    return lambda fraction, message: progress(low + (high - low) * fraction, message)


def load_version(version: ModelVersion, encoder: Encoder) -> TextClassifier:
    return TextClassifier.load(path_from_uri(version.artifact_uri), version.sha256, encoder)


def _load(champion: _Champion | None, encoder: Encoder) -> TextClassifier | None:
    if champion is None:
        return None
    return TextClassifier.load(path_from_uri(champion.artifact_uri), champion.sha256, encoder)


def _start_from(
    champion: TextClassifier | None, row: _Champion | None, request: RoundRequest, labels: list[str], encoder: Encoder
) -> tuple[TextClassifier, str]:
    seed = request.training.seed
    if champion is not None and row is not None and (champion.mode == "head" or champion.mode == request.mode):
        return champion.candidate(request.mode, labels, seed), f"champion v{row.version}"
    return TextClassifier.fresh(request.mode, labels, encoder, seed), "scratch"


def _require_two_classes(task: str, examples: list[_Example]) -> None:
    classes = sorted({e.label for e in examples})
    if len(classes) < 2:
        raise one_class(task, classes[0])


def _cross_validated(
    engine: Engine,
    settings: Settings,
    task_id: int,
    examples: list[_Example],
    features: np.ndarray | None,
    labels: list[str],
    encoder: Encoder,
    request: RoundRequest,
    eval_size: int,
    rules: GateRules,
) -> RuleResult:
    y = np.array([labels.index(e.label) for e in examples], dtype=np.int64)
    if not first_model.can_cross_validate(y):
        return first_model.too_few_to_cross_validate(y, eval_size, rules)
    if features is None:  # a full or lora candidate: its head-mode stand-in needs the embeddings
        features = embed_texts(engine, task_id, [e.text_id for e in examples], encoder, settings.storage)
    # the candidate's own epochs and steps are for its mode; a head takes the head's defaults
    config = request.training if request.mode == "head" else TrainingConfig(seed=request.training.seed)
    cv = cross_validate_head([e.text for e in examples], y, features[: len(examples)], labels, encoder, config, request.mode)
    return first_model.beats_majority_cv(cv, eval_size, rules, seed=request.training.seed)


def _train_examples(session: Session, task_id: int, since: datetime | None) -> list[_Example]:
    query = (
        select(Label.text_id, TextRecord.text, Label.label)
        .join(TextRecord, TextRecord.id == Label.text_id)
        .where(Label.task_id == task_id, Label.split == Split.train)
    )
    if since is not None:
        query = query.where(Label.created_at > since)
    return [_Example(*row) for row in session.execute(query.order_by(Label.id))]


def _replay_sample(session: Session, task_id: int, request: RoundRequest, n_new: int) -> list[_Example]:
    if request.replay == "none":
        return []
    items = replay.sample_replay(session, task_id, request.replay, math.ceil(n_new * request.replay_ratio), seed=request.training.seed)
    texts: dict[int, str] = {}
    for chunk in in_list_chunks(i.text_id for i in items):
        texts.update(session.execute(select(TextRecord.id, TextRecord.text).where(TextRecord.id.in_(chunk))).all())
    return [_Example(i.text_id, texts[i.text_id], i.label) for i in items if i.text_id in texts]


def _features(engine: Engine, settings: Settings, task_id: int, examples: list[_Example], encoder: Encoder, mode: str, champion: TextClassifier | None, progress) -> np.ndarray | None:  # type: ignore[no-untyped-def]
    needs = mode == "head" or (champion is not None and champion.mode == "head")
    if not needs:
        return None
    return embed_texts(engine, task_id, [e.text_id for e in examples], encoder, settings.storage, progress=lambda done, total: progress(done / max(total, 1), f"embedded {done}/{total}"))


def _teacher(champion: TextClassifier | None, new: list[_Example], replayed: list[_Example], features: np.ndarray | None, config: TrainingConfig) -> np.ndarray | None:
    """The champion's log-probabilities on the new examples (LwF); replayed rows are NaN, they
    are learned from their own labels."""
    if champion is None or config.distill_weight <= 0:
        return None
    new_features = None if features is None or champion.mode != "head" else features[: len(new)]
    proba = champion.predict_proba([e.text for e in new], new_features)
    teacher = np.full((len(new) + len(replayed), len(champion.labels)), np.nan, dtype=np.float32)
    teacher[: len(new)] = np.log(np.clip(proba, 1e-8, 1.0))
    return teacher


def _slice_features(engine: Engine, settings: Settings, task_id: int, slices: list[SliceSpec], encoder: Encoder) -> dict[str, np.ndarray]:
    return {s.name: embed_texts(engine, task_id, s.text_ids, encoder, settings.storage) for s in slices}


def _gate(data: RoundData, features: dict[str, np.ndarray], candidate: TextClassifier, champion: TextClassifier | None, cross_fitted: np.ndarray | None) -> GateOutcome:
    def proba(model: TextClassifier, spec: SliceSpec) -> np.ndarray:
        return model.predict_proba(spec.texts, features[spec.name] if model.mode == "head" else None)

    candidate_proba = {s.name: proba(candidate, s) for s in data.slices}
    if cross_fitted is not None:  # the candidate trained on these rows: its own predictions would flatter it
        candidate_proba["current"][: data.cross_fitted] = cross_fitted
    champion_proba = {s.name: proba(champion, s) for s in data.slices} if champion else None
    specs = [EvalSlice(s.name, s.kind, s.y_true, s.weights) for s in data.slices]  # type: ignore[arg-type]
    return evaluate_gate(
        specs, candidate_proba, champion_proba, data.labels, data.rules, traffic_classes=data.traffic, superset=data.superset
    )


def _mark_failed(engine: Engine, job_id: int, run_id: int, error: BaseException) -> None:
    message = f"{type(error).__name__}: {error}"
    with session_scope(engine) as session:
        # the job first, as the reaper does; a job it reaped meanwhile keeps its run as the reaper left it
        if fail_job(session, job_id, message):
            run = session.get(TrainingRun, run_id)
            run.state, run.error, run.finished_at = JobState.failed, message + "\n" + traceback.format_exc(limit=5), utcnow()


