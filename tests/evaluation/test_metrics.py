"""Slice metrics against hand-computed values, and the paired bootstrap's interval."""

import numpy as np
import pytest
from sklearn.metrics import f1_score

from driftloop.platform.evaluation.metrics import (
    Difference,
    accuracy,
    calibration_difference,
    calibration_error,
    expected_calibration_error,
    macro_f1,
    paired_bootstrap,
    slice_metrics,
)

# A warning from sklearn or scipy (zero division, degenerate bootstrap) must not reach callers.
pytestmark = pytest.mark.filterwarnings("error")

LABELS = ["a", "b", "c"]


def one_hot(predicted: list[int], n_labels: int = 3, confidence: float = 0.9) -> np.ndarray:
    """Probabilities whose arg-max is ``predicted``, with ``confidence`` on it."""
    proba = np.full((len(predicted), n_labels), (1 - confidence) / (n_labels - 1))
    proba[np.arange(len(predicted)), predicted] = confidence
    return proba


def test_accuracy_macro_f1_and_recall_match_hand_computed_values() -> None:
    y_true = np.array([0, 0, 1, 1, 2, 2])
    proba = one_hot([0, 0, 1, 0, 1, 1])  # class c is never predicted
    metrics = slice_metrics(y_true, proba, LABELS)
    # F1 = 2·TP / (true + predicted): a 2·2/(2+3), b 2·1/(2+3), c 0.
    assert metrics.n == 6
    assert metrics.accuracy == pytest.approx(3 / 6)
    assert metrics.macro_f1 == pytest.approx((0.8 + 0.4 + 0.0) / 3)
    assert metrics.per_class_recall == pytest.approx({"a": 1.0, "b": 0.5, "c": 0.0})


def test_classes_absent_from_the_slice_are_left_out_of_recall_and_macro_f1() -> None:
    y_true = np.array([0, 0, 1, 1])
    proba = one_hot([0, 1, 1, 1], n_labels=4)
    metrics = slice_metrics(y_true, proba, ["a", "b", "c", "d"])
    assert set(metrics.per_class_recall) == {"a", "b"}
    assert metrics.per_class_recall == pytest.approx({"a": 0.5, "b": 1.0})
    # a: 2·1/(2+1), b: 2·2/(2+3); c and d (in no truth, no prediction) do not count as zeros.
    assert metrics.macro_f1 == pytest.approx((2 / 3 + 4 / 5) / 2)


def test_ece_of_overconfident_predictions_is_the_gap() -> None:
    y_true = np.zeros(10, dtype=int)
    proba = one_hot([0] * 7 + [1] * 3, confidence=0.9)  # 90% confident, 70% right
    assert expected_calibration_error(y_true, proba) == pytest.approx(0.2)


def test_ece_weights_each_bin_by_its_size_and_gaps_of_both_signs_add_up() -> None:
    # 10 rows at 0.9 confidence with 7 right (over-confident by 0.2), 30 rows at 0.6 with 21
    # right (under-confident by 0.1): (10·0.2 + 30·0.1) / 40.
    y_true = np.zeros(40, dtype=int)
    proba = np.vstack([one_hot([0] * 7 + [1] * 3, confidence=0.9), one_hot([0] * 21 + [1] * 9, confidence=0.6)])
    assert expected_calibration_error(y_true, proba) == pytest.approx(5 / 40)


def test_ece_of_perfectly_calibrated_bins_is_zero() -> None:
    y_true = np.zeros(30, dtype=int)
    proba = np.vstack([one_hot([0] * 8 + [1] * 2, confidence=0.8), one_hot([0] * 12 + [1] * 8, confidence=0.6)])
    assert expected_calibration_error(y_true, proba) == pytest.approx(0.0, abs=1e-12)


def test_ece_counts_confidence_of_exactly_one() -> None:
    y_true = np.array([0, 0])
    proba = np.array([[1.0, 0.0], [0.0, 1.0]])  # certain both times, right once
    assert expected_calibration_error(y_true, proba) == pytest.approx(0.5)


def test_bootstrap_metrics_equal_the_sklearn_ones() -> None:
    rng = np.random.default_rng(3)
    for n in (5, 40, 300):
        y_true = rng.integers(0, 3, n)  # with n=5 some class is often missing
        proba = rng.dirichlet(np.ones(4), n)  # a fourth label nobody has
        metrics = slice_metrics(y_true, proba, ["a", "b", "c", "d"])
        assert accuracy(y_true, proba) == pytest.approx(metrics.accuracy)
        assert macro_f1(y_true, proba) == pytest.approx(metrics.macro_f1)
        present = np.unique(y_true)
        expected = f1_score(y_true, proba.argmax(axis=1), labels=present, average="macro", zero_division=0)
        assert macro_f1(y_true, proba) == pytest.approx(expected)


def test_no_examples_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="no examples"):
        slice_metrics(np.array([], dtype=int), np.empty((0, 3)), LABELS)
    with pytest.raises(ValueError, match="no examples"):
        paired_bootstrap(np.array([], dtype=int), np.empty((0, 3)), np.empty((0, 3)), accuracy)


def test_probabilities_must_match_the_labels() -> None:
    with pytest.raises(ValueError, match="shape"):
        slice_metrics(np.array([0, 1]), one_hot([0, 1], n_labels=2), LABELS)
    with pytest.raises(ValueError, match="outside"):
        slice_metrics(np.array([0, 3]), one_hot([0, 1]), LABELS)


def test_to_dict_is_plain_data() -> None:
    metrics = slice_metrics(np.array([0, 1, 2]), one_hot([0, 1, 1]), LABELS)
    assert metrics.to_dict() == {
        "n": 3,
        "accuracy": pytest.approx(2 / 3),
        "macro_f1": pytest.approx((1 + 2 / 3 + 0) / 3),
        "per_class_recall": {"a": 1.0, "b": 1.0, "c": 0.0},
        "ece": pytest.approx(abs(2 / 3 - 0.9)),
    }


def noisy_models(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Labels and two models, right about 80% and 70% of the time."""
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 3, n)
    right_a, right_b = rng.random(n) < 0.8, rng.random(n) < 0.7
    proba_a = one_hot(list(np.where(right_a, y_true, (y_true + 1) % 3)))
    proba_b = one_hot(list(np.where(right_b, y_true, (y_true + 2) % 3)))
    return y_true, proba_a, proba_b


def test_bootstrap_interval_contains_the_estimate() -> None:
    y_true, proba_a, proba_b = noisy_models(200, seed=1)
    difference = paired_bootstrap(y_true, proba_a, proba_b, accuracy, n_resamples=500)
    assert difference.estimate == pytest.approx(accuracy(y_true, proba_a) - accuracy(y_true, proba_b))
    assert difference.low < difference.estimate < difference.high


def test_bootstrap_interval_narrows_with_more_data() -> None:
    small = paired_bootstrap(*noisy_models(100, seed=2), macro_f1, n_resamples=500)
    large = paired_bootstrap(*noisy_models(3000, seed=2), macro_f1, n_resamples=500)
    assert large.high - large.low < (small.high - small.low) / 3


def test_bootstrap_interval_follows_the_confidence_level() -> None:
    data = noisy_models(200, seed=4)
    narrow = paired_bootstrap(*data, accuracy, n_resamples=500, confidence=0.5)
    wide = paired_bootstrap(*data, accuracy, n_resamples=500, confidence=0.99)
    assert wide.low < narrow.low < narrow.high < wide.high


def test_bootstrap_is_reproducible_from_its_seed() -> None:
    data = noisy_models(100, seed=5)
    first = paired_bootstrap(*data, accuracy, n_resamples=200, seed=7)
    assert paired_bootstrap(*data, accuracy, n_resamples=200, seed=7) == first
    assert paired_bootstrap(*data, accuracy, n_resamples=200, seed=8) != first


def test_identical_models_differ_by_exactly_zero() -> None:
    y_true, proba, _ = noisy_models(150, seed=6)
    assert paired_bootstrap(y_true, proba, proba.copy(), macro_f1, n_resamples=200) == Difference(0.0, 0.0, 0.0)


def test_degenerate_bootstrap_gives_a_point_interval_without_nan() -> None:
    # Always right against always wrong: every resample differs by exactly 1.
    y_true = np.array([0, 1, 2, 0])
    difference = paired_bootstrap(y_true, one_hot([0, 1, 2, 0]), one_hot([1, 2, 0, 1]), macro_f1, n_resamples=100)
    assert difference == Difference(1.0, 1.0, 1.0)
    # A single example has no resample but itself (scipy refuses it outright).
    assert paired_bootstrap(np.array([1]), one_hot([1]), one_hot([0]), accuracy) == Difference(1.0, 1.0, 1.0)


def test_calibration_error_for_the_bootstrap_matches_the_binned_ece() -> None:
    rng = np.random.default_rng(3)
    for n in (1, 30, 500):
        proba = rng.dirichlet(np.ones(4) * 0.5, size=n)
        y_true = rng.integers(0, 4, n)
        assert calibration_error(y_true, proba) == pytest.approx(expected_calibration_error(y_true, proba))
    y_true = np.arange(300) % 3
    calibrated = np.full((300, 3), 0.1)
    calibrated[np.arange(300), y_true] = 0.8
    calibrated[:60] = calibrated[:60, [1, 2, 0]]  # 80% right at confidence 0.8: ECE 0
    overconfident = np.where(calibrated == 0.8, 0.99, 0.005)
    worse = calibration_difference(y_true, overconfident, calibrated)
    assert worse.low > 0.05 and worse.estimate == pytest.approx(0.19)


def test_the_weighted_bootstrap_matches_the_plain_metrics_unweighted_and_follows_the_weights() -> None:
    from driftloop.platform.evaluation.metrics import weighted_paired_bootstrap

    y_true, proba_a, proba_b = noisy_models(400, seed=3)
    for name, metric in (("accuracy", accuracy), ("macro_f1", macro_f1)):
        plain = weighted_paired_bootstrap(y_true, proba_a, proba_b, name).difference
        assert plain.estimate == pytest.approx(metric(y_true, proba_a) - metric(y_true, proba_b))
        assert plain.low <= plain.estimate <= plain.high
    # all the weight on the rows where a is right and b wrong: a's lead is all there is
    better = (proba_a.argmax(axis=1) == y_true) & (proba_b.argmax(axis=1) != y_true)
    leaning = weighted_paired_bootstrap(y_true, proba_a, proba_b, "accuracy", np.where(better, 1.0, 1e-9)).difference
    assert leaning.estimate == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match="non-negative"):
        weighted_paired_bootstrap(y_true, proba_a, proba_b, "accuracy", -np.ones(len(y_true)))
