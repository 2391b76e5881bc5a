"""Metrics of one model on one evaluation slice, and the paired bootstrap that says how sure a
difference between two models is.

Inputs are true label indices (positions in the task's ordered label list) and a probability
matrix of shape (n, n_labels) whose columns follow that same list.

Macro-F1 averages over the classes present in ``y_true`` only. Averaging over every task label
would score each class a slice cannot contain (a past window from before the class was added)
as 0, which caps macro-F1 below 1 on old slices and shrinks the differences the gate compares
with its tolerances by the same factor.
"""

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import binned_statistic, bootstrap
from sklearn.metrics import accuracy_score, f1_score, recall_score

Metric = Callable[[np.ndarray, np.ndarray], float]


@dataclass(frozen=True)
class SliceMetrics:
    n: int
    accuracy: float
    macro_f1: float
    per_class_recall: dict[str, float]
    ece: float

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Difference:
    """``metric(a) - metric(b)`` and its bootstrap confidence interval."""

    estimate: float
    low: float
    high: float


def slice_metrics(y_true: np.ndarray, proba: np.ndarray, labels: Sequence[str]) -> SliceMetrics:
    y_true, proba = _checked(y_true, proba, len(labels))
    predicted = proba.argmax(axis=1)
    present = np.unique(y_true)
    recall = recall_score(y_true, predicted, labels=present, average=None, zero_division=0)
    return SliceMetrics(
        n=len(y_true),
        accuracy=float(accuracy_score(y_true, predicted)),
        macro_f1=float(f1_score(y_true, predicted, labels=present, average="macro", zero_division=0)),
        per_class_recall={labels[c]: float(r) for c, r in zip(present, recall, strict=True)},
        ece=expected_calibration_error(y_true, proba),
    )


def expected_calibration_error(y_true: np.ndarray, proba: np.ndarray, n_bins: int = 15) -> float:
    """Top-label ECE over equal-width confidence bins, each bin weighted by its share of examples.

    ``sum_b n_b/n * |accuracy_b - confidence_b|`` equals ``sum_b |sum_{i in b}(correct_i -
    confidence_i)| / n``, so one binned sum gives it.
    """
    y_true, proba = _checked(y_true, proba)
    # Rows summing to a hair over 1 would otherwise fall outside the last bin and go uncounted.
    confidence = np.clip(proba.max(axis=1), 0.0, 1.0)
    correct = (proba.argmax(axis=1) == y_true).astype(float)
    gap = binned_statistic(confidence, correct - confidence, statistic="sum", bins=n_bins, range=(0.0, 1.0))
    return float(np.abs(gap.statistic).sum() / len(y_true))


def calibration_error(y_true: np.ndarray, proba: np.ndarray, n_bins: int = 15) -> float:
    """Same value as :func:`expected_calibration_error`, as a bootstrap ``Metric``: one
    ``bincount`` instead of scipy's binning, which costs too much a thousand times over."""
    confidence = np.clip(proba.max(axis=1), 0.0, 1.0)
    correct = proba.argmax(axis=1) == y_true
    # binned_statistic's bins: [k/n, (k+1)/n), the last one closed at 1.0.
    bins = np.minimum((confidence * n_bins).astype(np.int64), n_bins - 1)
    gap = np.bincount(bins, weights=correct - confidence, minlength=n_bins)
    return float(np.abs(gap).sum() / len(y_true))


def calibration_difference(
    y_true: np.ndarray, proba_a: np.ndarray, proba_b: np.ndarray, *, confidence: float = 0.95, seed: int = 0
) -> Difference:
    """``ECE(a) - ECE(b)`` with its paired bootstrap interval: positive means ``a`` is worse calibrated."""
    return paired_bootstrap(y_true, proba_a, proba_b, calibration_error, confidence=confidence, seed=seed)


def accuracy(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Same value as ``SliceMetrics.accuracy``, cheap enough to call once per bootstrap resample."""
    return float(np.mean(proba.argmax(axis=1) == y_true))


def macro_f1(y_true: np.ndarray, proba: np.ndarray) -> float:
    """Same value as ``SliceMetrics.macro_f1``, from class counts: the bootstrap calls it thousands
    of times, and sklearn's input checks cost about a millisecond a call.

    Per class, F1 = 2·TP / (2·TP + FP + FN) = 2·TP / (true count + predicted count).
    """
    predicted = proba.argmax(axis=1)
    n_labels = proba.shape[1]
    true_count = np.bincount(y_true, minlength=n_labels)
    predicted_count = np.bincount(predicted, minlength=n_labels)
    hits = np.bincount(y_true[predicted == y_true], minlength=n_labels)
    present = true_count > 0
    return float(np.mean(2 * hits[present] / (true_count[present] + predicted_count[present])))


def paired_bootstrap(
    y_true: np.ndarray,
    proba_a: np.ndarray,
    proba_b: np.ndarray,
    metric: Metric,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Difference:
    """``metric(a) - metric(b)`` with a percentile bootstrap CI that resamples examples jointly for
    both models, so that what the two models share (hard examples) cancels out of the spread."""
    y_true, proba_a = _checked(y_true, proba_a)
    _, proba_b = _checked(y_true, proba_b)

    def difference(labels: np.ndarray, rows: np.ndarray) -> float:
        return metric(labels, proba_a[rows]) - metric(labels, proba_b[rows])

    rows = np.arange(len(y_true))
    estimate = difference(y_true, rows)
    if len(y_true) < 2:
        # One example has one resample: itself. scipy refuses it; the interval is the point.
        return Difference(estimate, estimate, estimate)
    # paired=True draws the same example indices for the labels and for both models' rows.
    result = bootstrap(
        (y_true, rows),
        difference,
        paired=True,
        vectorized=False,
        method="percentile",
        n_resamples=n_resamples,
        confidence_level=confidence,
        rng=np.random.default_rng(seed),
    )
    interval = result.confidence_interval
    return Difference(estimate, float(interval.low), float(interval.high))


@dataclass(frozen=True)
class Resampled:
    """A paired difference with its bootstrap draws, so that differences on disjoint slices can
    be combined draw by draw into one weighted sum with its own interval."""

    difference: Difference
    draws: np.ndarray


def weighted_paired_bootstrap(
    y_true: np.ndarray,
    proba_a: np.ndarray,
    proba_b: np.ndarray,
    metric: str,
    weights: np.ndarray | None = None,
    *,
    n_resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Resampled:
    """``metric(a) - metric(b)`` (``accuracy`` or ``macro_f1``) where example i counts
    ``weights[i]`` times, with a paired percentile bootstrap: each resample draws examples with
    replacement (the same for both models) and keeps their weights. Unweighted, the estimate is
    :func:`accuracy` / :func:`macro_f1`'s. Vectorised over resamples: the gate runs it on every
    slice of every round, and thousands of sklearn calls would cost seconds."""
    y_true, proba_a = _checked(y_true, proba_a)
    _, proba_b = _checked(y_true, proba_b)
    n = len(y_true)
    weights = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    if weights.shape != (n,) or (weights < 0).any() or (n and weights.sum() <= 0):
        raise ValueError(f"weights must be {n} non-negative numbers with a positive sum")
    rng = np.random.default_rng(seed)
    # Row r of ``counts`` says how often each example is drawn in resample r (row 0: the sample itself).
    counts = np.vstack([np.ones((1, n)), rng.multinomial(n, np.full(n, 1 / n), size=n_resamples)]) if n else np.ones((1, 0))
    scale = counts * weights
    score = _WEIGHTED[metric]
    values = score(y_true, proba_a.argmax(axis=1), scale, proba_a.shape[1]) - score(y_true, proba_b.argmax(axis=1), scale, proba_b.shape[1])
    estimate, draws = float(values[0]), values[1:]
    if n < 2:
        return Resampled(Difference(estimate, estimate, estimate), np.full(n_resamples, estimate))
    tail = (1 - confidence) / 2
    low, high = np.nanquantile(draws, [tail, 1 - tail])
    return Resampled(Difference(estimate, float(low), float(high)), draws)


def _weighted_accuracy(y_true: np.ndarray, predicted: np.ndarray, scale: np.ndarray, n_labels: int) -> np.ndarray:
    return scale @ (predicted == y_true) / scale.sum(axis=1)


def _weighted_macro_f1(y_true: np.ndarray, predicted: np.ndarray, scale: np.ndarray, n_labels: int) -> np.ndarray:
    """Per class F1 = 2·TP / (true + predicted), from weighted counts; classes absent from a
    resample's labels are left out of its mean, as :func:`macro_f1` leaves out those absent from the slice."""
    n_labels = max(n_labels, int(y_true.max(initial=0)) + 1)
    true_hot = np.eye(n_labels)[y_true]
    predicted_hot = np.eye(n_labels)[predicted]
    true_count = scale @ true_hot
    predicted_count = scale @ predicted_hot
    hits = scale @ (true_hot * predicted_hot)
    present = true_count > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(present, 2 * hits / (true_count + predicted_count), np.nan)
    return np.nanmean(f1, axis=1)


_WEIGHTED = {"accuracy": _weighted_accuracy, "macro_f1": _weighted_macro_f1}
WEIGHTED_METRICS = frozenset(_WEIGHTED)  # the metrics a gate rule can compare


def _checked(y_true: np.ndarray, proba: np.ndarray, n_labels: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    y_true = np.asarray(y_true)
    proba = np.asarray(proba, dtype=float)
    if y_true.ndim != 1:
        raise ValueError(f"y_true must be a 1-D array of label indices, got shape {y_true.shape}")
    if len(y_true) == 0:
        raise ValueError("no examples: metrics need at least one labelled example")
    if proba.ndim != 2:
        raise ValueError(f"probabilities must be a 2-D (examples x labels) array, got shape {proba.shape}")
    n_labels = proba.shape[1] if n_labels is None else n_labels
    if not np.issubdtype(y_true.dtype, np.integer):
        raise ValueError(f"y_true must hold integer label indices, got dtype {y_true.dtype}")
    if proba.shape != (len(y_true), n_labels):
        raise ValueError(f"probabilities have shape {proba.shape}, expected ({len(y_true)}, {n_labels})")
    if y_true.min() < 0 or y_true.max() >= n_labels:
        raise ValueError(f"y_true holds label indices outside 0..{n_labels - 1}")
    return y_true, proba
