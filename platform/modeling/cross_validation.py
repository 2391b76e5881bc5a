"""Cross-validation of the head-mode recipe on training labels: the evidence a first model is
judged on while the eval split is too small (see :mod:`driftloop.platform.evaluation.first_model`).

Only ``head`` mode is cross-validated: a fresh head on cached embeddings trains in seconds per
fold, where k fine-tunings of the encoder would cost k rounds. A ``full`` or ``lora`` candidate
starts from the same base encoder, so the head's result is the (stated) evidence for it too.
"""

from collections.abc import Sequence

import numpy as np

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
