"""One training loop for every mode: class-weighted cross-entropy, optional distillation from
the champion (Learning without Forgetting), early stopping on a validation split carved from
the training labels, seeded, with progress reported as it goes, and checkpoints that let a
training whose process died resume where it was instead of starting over.

Our own loop rather than Hugging Face's ``Trainer``: the same loop trains a linear head on cached
embeddings (no tokenizer, no transformer in the step), tunes the whole encoder, or tunes LoRA
adapters; its loss masks the distillation term per row (replayed rows have no teacher); and it is
~150 lines to read. What the Trainer would add is multi-GPU through accelerate; a training here
runs on one GPU (one worker per GPU), and checkpoint/resume and bf16 autocast are below.

Early stopping watches the validation loss rather than accuracy or F1: on small validation
sets those saturate within a few epochs and stop training while the probabilities are still
far from calibrated; the loss keeps improving until the model is confident *and* right.
"""

import hashlib
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import f1_score
from sklearn.model_selection import train_test_split
from sklearn.utils.class_weight import compute_class_weight
from torch.nn import functional as F

from driftloop.platform.modeling.class_incremental import (
    KeptRows,
    align_weights,
    apply_bias_correction,
    class_roles,
    fit_bias_correction,
)
from driftloop.platform.modeling.model import TextClassifier
from driftloop.platform.modeling.round_requests import TrainingConfig  # noqa: F401 - re-exported: the fit's config

Progress = Callable[[float, str], None]

_HEAD_LEARNING_RATE = 1e-3  # the head's step when the encoder is tuned alongside it


@dataclass
class TrainingData:
    """Examples to learn from. ``features`` are the base encoder's embeddings (``head`` mode);
    ``teacher`` holds the champion's log-probabilities over its own labels, NaN rows where
    there is nothing to distil (replayed examples, or no champion). ``replayed`` marks the rows
    replayed from memory (True) apart from the round's new labels: the class-bias corrections
    need to know which classes only replay taught."""

    texts: list[str]
    y: np.ndarray
    features: np.ndarray | None = None
    teacher: np.ndarray | None = None
    replayed: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, index: np.ndarray) -> "TrainingData":
        return TrainingData(
            [self.texts[i] for i in index],
            self.y[index],
            None if self.features is None else self.features[index],
            None if self.teacher is None else self.teacher[index],
            None if self.replayed is None else self.replayed[index],
        )


@dataclass
class FitReport:
    epochs: int
    best_epoch: int
    val_macro_f1: float | None
    n_train: int
    n_val: int
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)
    steps: int = 0  # optimizer steps, those before a resume included
    resumed_from_step: int | None = None  # the checkpoint's step when this fit continued one
    class_bias: dict[str, float] = field(default_factory=dict)  # the corrections applied to the head, if any


@dataclass(frozen=True)
class Checkpointing:
    """Where a fit keeps its checkpoint (one file, replaced atomically) and how often, in
    optimizer steps. A fit given a checkpoint of the same data and settings resumes from it."""

    path: Path
    every_steps: int


def fit(
    model: TextClassifier,
    data: TrainingData,
    config: TrainingConfig,
    progress: Progress | None = None,
    checkpointing: Checkpointing | None = None,
) -> FitReport:
    """Train ``model`` in place on ``data``; the weights of the best validation epoch are kept."""
    if len(data) == 0:
        raise ValueError("no training examples")
    settings = config.resolved(model.mode)
    _seed(config.seed)
    started = time.perf_counter()
    train, val = _split(data, config)
    loss_weights = _class_weights(train.y, len(model.labels)) if config.class_weights else None
    optimizer = _optimizer(model, settings["learning_rate"], config.weight_decay)
    rng = np.random.default_rng(config.seed)
    kept = _kept_rows(model, data, config)
    device = model.head.weight.device
    epochs, patience = int(settings["epochs"]), int(settings["patience"])
    batch_size = int(settings["batch_size"])

    state = _State(epoch=1, history=[])
    fingerprint = _fingerprint(model, data, config) if checkpointing else ""
    resumed = _resume(checkpointing, fingerprint, model, optimizer, rng) if checkpointing else None
    if resumed is not None:
        state = resumed
    resumed_from = state.step if resumed is not None else None
    while state.epoch <= epochs:
        model.train(True)
        if state.order is None:  # a new epoch (a resumed one keeps the order it had)
            state.order, state.batch, state.losses = rng.permutation(len(train)), 0, []
        starts = range(0, len(state.order), batch_size)
        for start in starts[state.batch :]:
            batch = train.subset(state.order[start : start + batch_size])
            loss = _loss(model, batch, loss_weights, config, device)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if kept is not None:
                kept.restore(model.head)
            state.losses.append(loss.item())
            state.batch += 1
            state.step += 1
            if checkpointing and state.step % checkpointing.every_steps == 0:
                _save(checkpointing.path, fingerprint, state, model, optimizer, rng)
        epoch, losses = state.epoch, state.losses
        scores = _validate(model, val) if len(val) else None
        state.history.append({"epoch": epoch, "loss": float(np.mean(losses)), **(scores or {})})
        if progress is not None:
            shown = f", val loss {scores['val_loss']:.4f}, macro-F1 {scores['val_macro_f1']:.3f}" if scores else ""
            progress(epoch / epochs, f"epoch {epoch}/{epochs}: loss {np.mean(losses):.4f}{shown}")
        state.epoch, state.order = epoch + 1, None
        if scores is None:
            continue
        if state.best is None or scores["val_loss"] < state.best[0]:
            state.best = (scores["val_loss"], epoch, _snapshot(model), scores["val_macro_f1"])
        elif epoch - state.best[1] >= patience:
            break
    best, history = state.best, state.history
    if best is not None:
        _restore(model, best[2])
    model.train(False)
    class_bias = _correct_class_bias(model, data, val, config)
    return FitReport(
        epochs=len(history),
        best_epoch=best[1] if best else len(history),
        val_macro_f1=best[3] if best else None,
        n_train=len(train),
        n_val=len(val),
        seconds=time.perf_counter() - started,
        history=history,
        steps=state.step,
        resumed_from_step=resumed_from,
        class_bias=class_bias,
    )


@dataclass
class _State:
    """Where a fit is: what a checkpoint holds besides the weights, the optimizer and the RNG."""

    epoch: int
    history: list[dict[str, float]]
    step: int = 0
    batch: int = 0  # batches of this epoch done
    order: np.ndarray | None = None  # this epoch's order of the examples
    losses: list[float] = field(default_factory=list)
    best: tuple[float, int, dict, float] | None = None  # val loss, epoch, weights, val macro-F1


def _fingerprint(model: TextClassifier, data: TrainingData, config: TrainingConfig) -> str:
    """What a checkpoint is for: the same mode, labels, examples and settings, or it is not used."""
    digest = hashlib.sha256(repr((model.mode, model.labels, asdict(config))).encode())
    digest.update(data.y.tobytes())
    for text in data.texts:
        digest.update(text.encode("utf-8", "surrogatepass") + b"\0")
    return digest.hexdigest()


def _save(path: Path, fingerprint: str, state: _State, model: TextClassifier, optimizer: torch.optim.Optimizer, rng: np.random.Generator) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save(
        {
            "fingerprint": fingerprint,
            "state": {**{k: v for k, v in state.__dict__.items() if k != "order"}, "order": None if state.order is None else state.order.tolist()},
            "weights": _snapshot(model),
            "optimizer": optimizer.state_dict(),
            "numpy_rng": rng.bit_generator.state,
            "torch_rng": torch.get_rng_state(),
        },
        partial,
    )
    os.replace(partial, path)  # a process killed while saving leaves the previous checkpoint whole


def _resume(
    checkpointing: Checkpointing, fingerprint: str, model: TextClassifier, optimizer: torch.optim.Optimizer, rng: np.random.Generator
) -> _State | None:
    if not checkpointing.path.exists():
        return None
    saved = torch.load(checkpointing.path, map_location=model.head.weight.device, weights_only=False)
    if saved["fingerprint"] != fingerprint:
        return None  # the labels changed since (new ones arrived): start over on the new data
    _restore(model, saved["weights"])
    optimizer.load_state_dict(saved["optimizer"])
    rng.bit_generator.state = saved["numpy_rng"]
    torch.set_rng_state(saved["torch_rng"])
    fields = saved["state"]
    order = fields.pop("order")
    return _State(**fields, order=None if order is None else np.asarray(order))


def _loss(model: TextClassifier, batch: TrainingData, weights: torch.Tensor | None, config: TrainingConfig, device: torch.device) -> torch.Tensor:
    features = None if batch.features is None else torch.from_numpy(batch.features).to(device)
    with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
        logits = model.logits(batch.texts, features).float()
    target = torch.from_numpy(batch.y).long().to(device)
    loss = F.cross_entropy(logits, target, weight=None if weights is None else weights.to(device))
    if config.distill_weight > 0 and batch.teacher is not None:
        loss = loss + config.distill_weight * _distillation(logits, batch.teacher, config.temperature, device)
    return loss


def _distillation(logits: torch.Tensor, teacher: np.ndarray, temperature: float, device: torch.device) -> torch.Tensor:
    """KL(teacher ‖ student) on the champion's labels, softened by ``temperature`` (Hinton et
    al.), over the rows that have a teacher; scaled by T² so its gradient keeps its size."""
    rows = ~np.isnan(teacher).any(axis=1)
    if not rows.any():
        return logits.new_zeros(())
    old = teacher.shape[1]
    student = F.log_softmax(logits[torch.from_numpy(rows).to(device), :old] / temperature, dim=-1)
    target = F.log_softmax(torch.from_numpy(teacher[rows]).float().to(device) / temperature, dim=-1)
    return F.kl_div(student, target, log_target=True, reduction="batchmean") * temperature**2


def _kept_rows(model: TextClassifier, data: TrainingData, config: TrainingConfig) -> KeptRows | None:
    """The old classes' rows of the starting head, when ``config`` keeps them (head mode, a shifted mix)."""
    if not config.keep_old_classes or model.mode != "head" or data.replayed is None:
        return None
    roles = class_roles(data.y, data.replayed)
    return KeptRows.of(model.head, roles) if roles.shifted else None


def _correct_class_bias(model: TextClassifier, data: TrainingData, val: TrainingData, config: TrainingConfig) -> dict[str, float]:
    """The class-incremental corrections ``config`` asks for, on a ``head`` model trained on new
    and replayed rows (see :mod:`driftloop.platform.modeling.class_incremental`); what was applied."""
    if model.mode != "head" or data.replayed is None or not (config.weight_aligning or config.bias_correction):
        return {}
    roles = class_roles(data.y, data.replayed)
    if not roles.shifted:
        return {}
    applied = {}
    if config.weight_aligning:
        applied["gamma"] = align_weights(model.head, roles)
    if config.bias_correction and val.features is not None:
        with torch.no_grad():
            logits = model.head(torch.from_numpy(val.features).to(model.head.weight.device)).float().cpu()
        alpha, beta = fit_bias_correction(logits, val.y, roles)
        apply_bias_correction(model.head, roles, alpha, beta)
        applied |= {"alpha": alpha, "beta": beta}
    return applied


def _split(data: TrainingData, config: TrainingConfig) -> tuple[TrainingData, TrainingData]:
    """Carve a validation split from the training labels, stratified when every class allows it."""
    n_val = int(round(len(data) * config.val_fraction))
    if n_val < 2 or len(data) - n_val < 2:
        return data, data.subset(np.array([], dtype=int))
    counts = np.bincount(data.y)
    stratify = data.y if counts[counts > 0].min() >= 2 and n_val >= len(counts[counts > 0]) else None
    train_index, val_index = train_test_split(
        np.arange(len(data)), test_size=n_val, random_state=config.seed, stratify=stratify
    )
    return data.subset(np.sort(train_index)), data.subset(np.sort(val_index))


def _class_weights(y: np.ndarray, n_labels: int) -> torch.Tensor:
    """'Balanced' weights for the classes present; 1 for classes with no example yet."""
    weights = np.ones(n_labels, dtype=np.float32)
    present = np.unique(y)
    weights[present] = compute_class_weight("balanced", classes=present, y=y)
    return torch.from_numpy(weights)


def _optimizer(model: TextClassifier, learning_rate: float, weight_decay: float) -> torch.optim.Optimizer:
    if model.network is None:
        return torch.optim.AdamW(model.head.parameters(), lr=learning_rate, weight_decay=weight_decay)
    head = list(model.head.parameters())
    head_ids = {id(p) for p in head}
    encoder = [p for p in model.parameters() if id(p) not in head_ids]
    return torch.optim.AdamW(
        [{"params": encoder, "lr": learning_rate}, {"params": head, "lr": _HEAD_LEARNING_RATE}],
        weight_decay=weight_decay,
    )


def _validate(model: TextClassifier, val: TrainingData) -> dict[str, float]:
    proba = model.predict_proba(val.texts, val.features)
    picked = proba[np.arange(len(val.y)), val.y]
    return {
        "val_loss": float(-np.log(np.clip(picked, 1e-12, 1.0)).mean()),
        "val_macro_f1": float(f1_score(val.y, proba.argmax(axis=1), average="macro", zero_division=0)),
    }


def _snapshot(model: TextClassifier) -> dict:
    module = model.network or model.head
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _restore(model: TextClassifier, state: dict) -> None:
    (model.network or model.head).load_state_dict(state)


def _seed(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
