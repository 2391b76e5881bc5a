"""Cross-fitting (issue 22): the candidate's predictions on the labels that judge it come from
models that never trained on them. On labels with no signal a model fitted on everything
recites them; cross-fitted predictions cannot, so they sit at chance."""

import numpy as np
import pytest

from driftloop.platform.modeling.cross_validation import cross_fit
from driftloop.platform.modeling.model import TextClassifier
from driftloop.platform.modeling.training import TrainingConfig, TrainingData, fit


def test_cross_fitted_predictions_come_from_models_that_never_saw_the_label(encoder) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    n = 60
    features = rng.normal(size=(n, encoder.dim)).astype(np.float32)
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    y = rng.integers(0, 2, n)  # labels with no relation to the texts: nothing to learn, only to recite
    data = TrainingData([f"text {i}" for i in range(n)], y, features)
    config = TrainingConfig(seed=0, epochs=300, patience=300)

    def start() -> TextClassifier:
        return TextClassifier.fresh("head", ["a", "b"], encoder, 0)

    everything = start()
    fit(everything, data, config)
    held = np.arange(20, 60)
    recited = float(np.mean(everything.predict_proba([data.texts[i] for i in held], features[held]).argmax(axis=1) == y[held]))

    proba = cross_fit(start, data, held, config)

    assert proba.shape == (len(held), 2) and np.allclose(proba.sum(axis=1), 1, atol=1e-4)
    cross_fitted = float(np.mean(proba.argmax(axis=1) == y[held]))
    assert recited >= 0.9, recited  # trained on them, it knows them by heart
    assert cross_fitted <= 0.7, cross_fitted  # without them, it can only guess


def test_cross_fitting_needs_two_held_out_rows(encoder) -> None:  # type: ignore[no-untyped-def]
    data = TrainingData(["a", "b"], np.array([0, 1]), np.zeros((2, encoder.dim), dtype=np.float32))
    with pytest.raises(ValueError, match="2 or more held-out rows"):
        cross_fit(lambda: TextClassifier.fresh("head", ["a", "b"], encoder, 0), data, np.array([0]), TrainingConfig())
