"""Cross-validation of the head-mode recipe on training labels: the evidence a first model is
judged on while the eval split is too small (see :mod:`driftloop.platform.evaluation.first_model`).

The same folds give a round's candidate its *cross-fitted* predictions on the labels that judge
it (:func:`cross_fit`): each held-out fold is predicted by a model trained exactly as the
candidate, from the same start, on everything else, so every label both trains the candidate
and judges it without the candidate having seen it.

Only ``head`` mode is cross-validated: a fresh head on cached embeddings trains in seconds per
fold, where k fine-tunings of the encoder would cost k rounds. A ``full`` or ``lora`` candidate
starts from the same base encoder, so the head's result is the (stated) evidence for it too.
"""

from collections.abc import Callable, Sequence

import numpy as np
from sklearn.model_selection import KFold, StratifiedKFold

from driftloop.platform.evaluation.first_model import CrossValidation, folds
from driftloop.platform.modeling.encoder import Encoder
from driftloop.platform.modeling.model import TextClassifier
from driftloop.platform.modeling.training import TrainingConfig, TrainingData, fit


def cross_validate_head(
    texts: Sequence[str],
    y: np.ndarray,
    features: np.ndarray,
    labels: Sequence[str],
    encoder: Encoder,
    config: TrainingConfig,
    candidate_mode: str,
) -> CrossValidation:
    """Out-of-fold predictions of fresh head-mode models trained with ``config``."""
    y = np.asarray(y)
    predicted = np.empty(len(y), dtype=np.int64)
    splits = folds(y, config.seed)
    data = TrainingData(texts=list(texts), y=y, features=features)
    for train_index, held_out in splits:
        model = TextClassifier.fresh("head", labels, encoder, config.seed)
        fit(model, data.subset(train_index), config)
        predicted[held_out] = model.predict_proba([texts[i] for i in held_out], features[held_out]).argmax(axis=1)
    return CrossValidation(
        y_true=y,
        y_pred=predicted,
        folds=len(splits),
        mode="head",
        stands_in_for=None if candidate_mode == "head" else candidate_mode,
    )


MAX_CROSS_FIT_FOLDS = 5


def cross_fit(
    start: Callable[[], TextClassifier],
    data: TrainingData,
    held: np.ndarray,
    config: TrainingConfig,
) -> np.ndarray:
    """Probabilities for ``data``'s rows ``held`` (positions), each from a model made by
    ``start()`` and fitted on every row but its fold's: k = min(5, len(held)) folds, stratified
    when every class of the held rows fills them. Returns an array (len(held), n_labels)."""
    held = np.asarray(held)
    if len(held) < 2:
        raise ValueError(f"cross-fitting needs 2 or more held-out rows, got {len(held)}")
    y_held = data.y[held]
    k = min(MAX_CROSS_FIT_FOLDS, len(held))
    stratify = int(np.bincount(y_held)[np.unique(y_held)].min()) >= k
    splitter = StratifiedKFold(k, shuffle=True, random_state=config.seed) if stratify else KFold(k, shuffle=True, random_state=config.seed)
    proba: np.ndarray | None = None
    for _, fold in splitter.split(np.zeros(len(held)), y_held if stratify else None):
        out = np.ones(len(data), dtype=bool)
        out[held[fold]] = False
        model = start()
        fit(model, data.subset(np.flatnonzero(out)), config)
        rows = held[fold]
        features = None if data.features is None else data.features[rows]
        predicted = model.predict_proba([data.texts[i] for i in rows], features)
        if proba is None:
            proba = np.zeros((len(held), predicted.shape[1]), dtype=np.float32)
        proba[fold] = predicted
    return proba  # type: ignore[return-value]
