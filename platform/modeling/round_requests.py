"""A training round's request: what it holds, how it is checked, and how it is queued.

Apart from :mod:`driftloop.platform.modeling.rounds` so that submitting a round imports nothing
heavy (no torch, transformers or scikit-learn): ``train --no-wait`` and ``POST …/train`` answer as
fast as ``--help``, and refuse what the round would refuse — an unknown task, bad parameters, no
new labels to learn from — with the same error, before a job exists.
"""

from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import Engine, distinct, select
from sqlalchemy.orm import Session

from driftloop.platform.config import Settings
from driftloop.platform.errors import InvalidInput, NothingToLearn
from driftloop.platform.jobs import submit
from driftloop.platform.modeling import registry
from driftloop.platform.modeling.choices import MODES, REPLAY_STRATEGIES
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.models import Label, ModelVersion, Split, Task
from driftloop.platform.tasks import get_task

# Per mode, the fit's defaults where the request leaves them open: a linear head on frozen
# embeddings wants many cheap epochs and a large step; tuning a transformer few and a small one.
TRAINING_DEFAULTS = {
    "head": {"epochs": 200, "batch_size": 32, "learning_rate": 1e-2, "patience": 10},
    "full": {"epochs": 4, "batch_size": 16, "learning_rate": 3e-5, "patience": 2},
    "lora": {"epochs": 4, "batch_size": 16, "learning_rate": 5e-4, "patience": 2},
}


@dataclass(frozen=True)
class TrainingConfig:
    epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float | None = None
    patience: int | None = None
    weight_decay: float = 1e-4
    val_fraction: float = 0.1
    class_weights: bool = True
    distill_weight: float = 0.0  # LwF: weight of the distillation term
    temperature: float = 2.0
    seed: int = 0
    # Class-incremental options of a ``head`` model's linear head, for rounds whose new labels
    # leave out classes that only replay teaches (class_incremental.py; bench/RESULTS.md, issue 22):
    # keeping those classes' rows as the champion has them measured best and is the default;
    # weight aligning and BiC measured worse and stay off.
    keep_old_classes: bool = True
    weight_aligning: bool = False
    bias_correction: bool = False

    def resolved(self, mode: str) -> dict[str, float]:
        defaults = TRAINING_DEFAULTS[mode]
        return {key: getattr(self, key) if getattr(self, key) is not None else value for key, value in defaults.items()}


@dataclass(frozen=True)
class RoundRequest:
    task: str
    mode: str = "head"
    replay: str = "reservoir"
    replay_ratio: float = 1.0  # replayed examples per new example
    replay_capacity: int = 2000
    training: TrainingConfig = field(default_factory=TrainingConfig)
    promote: bool = True
    past_windows: int = 3


def check_request(request: RoundRequest) -> None:
    """Refuse a request no round can run, before any job is made for it."""
    if request.replay not in REPLAY_STRATEGIES:
        raise InvalidInput(f"unknown replay strategy {request.replay!r}: use one of {', '.join(REPLAY_STRATEGIES)}", field="replay")
    if request.mode not in MODES:
        raise InvalidInput(f"unknown training mode {request.mode!r}: use one of {', '.join(MODES)}", field="mode")


def check_learnable(session: Session, task: Task) -> None:
    """Refuse a round of ``task`` that has nothing to learn: no train label since the champion's
    data cutoff, or, for a first model, a single class. The round itself says the same."""
    current = registry.champion(session, task.id)
    if registry.new_train_labels(session, task.id, since=registry.data_cutoff(session, current)) == 0:
        # A provisional champion is retrained on every label while no eval slice can judge it:
        # whether one can is the gate's to say, so such a round is left to decide for itself.
        if current is None or not registry.is_provisional(current):
            raise no_new_labels(task, current)
        return
    if current is None:
        classes = session.scalars(
            select(distinct(Label.label)).where(Label.task_id == task.id, Label.split == Split.train).limit(2)
        ).all()
        if len(classes) == 1:
            raise one_class(task.name, classes[0])


def no_new_labels(task: Task, champion: ModelVersion | None) -> InvalidInput:
    return InvalidInput(
        f"no new training labels since the champion (version {champion.version}) was trained"
        if champion
        else f"task {task.name} has no training labels yet: import some with `driftloop label import`",
        task=task.name,
    )


def one_class(task: str, label: str) -> NothingToLearn:
    # No gate can pass this (the majority class is every label), so say so before training.
    return NothingToLearn(
        f"one class so far: nothing to learn yet (every training label of task {task} is {label!r}); "
        "label texts of another class, then train",
        task=task,
    )


def request_params(request: RoundRequest) -> dict[str, Any]:
    """A round request as a job's JSON params (:func:`request_from_params` reads it back)."""
    return {**asdict(request), "training": asdict(request.training)}


def request_from_params(params: dict[str, Any]) -> RoundRequest:
    return RoundRequest(**{**params, "training": TrainingConfig(**params["training"])})


def submit_train(engine: Engine, settings: Settings, request: RoundRequest, *, runner: str = "thread") -> int:
    """Queue a training round as a job and have it run (:func:`driftloop.platform.jobs.submit`); its
    id. Raises what the round would raise at its start, and queues nothing then."""
    check_request(request)
    with session_scope(engine, read_only=True) as session:
        check_learnable(session, get_task(session, request.task))
    return submit(engine, settings, "train", request.task, request_params(request), runner=runner)

