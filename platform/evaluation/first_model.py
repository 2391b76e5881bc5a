"""The first model of a task, decided before its eval split can.

With a 20% eval split, the ``all`` slice reaches the gate's ``min_slice_size`` only after about
a hundred labels; until then every rule is skipped and the gate refuses for lack of evidence,
so selection runs without a model for longer than the labels justify. The training labels can
already show that a recipe learns something: train it on k-1 folds, predict the held-out fold,
and compare the out-of-fold accuracy with always predicting the majority class. The first model
passes when the lower end of the bootstrap interval (at the gate's 95%) of that difference is
above 0. Such a model is *provisional*: the first round whose eval split can decide judges it on
eval slices like any champion.

Only the statistics live here; the folds are trained in :mod:`driftloop.platform.modeling.cross_validation`.
"""

import warnings
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import StratifiedKFold

from driftloop.platform.evaluation.gate import GateOutcome, GateRules, RuleResult

MAX_FOLDS = 5
RULE = "beats_majority_cv"
SLICE = "train (cross-validated)"


@dataclass(frozen=True)
class CrossValidation:
    """Out-of-fold predictions of a recipe on the training labels."""

    y_true: np.ndarray
    y_pred: np.ndarray
    folds: int
    mode: str  # the mode whose recipe was cross-validated
    stands_in_for: str | None = None  # the candidate's mode when another mode's CV is the evidence


def eval_can_decide(eval_size: int, rules: GateRules) -> bool:
    """Whether the ``all`` eval slice is large enough for the gate's own first-model rule."""
    return eval_size >= rules.min_slice_size


def n_folds(y: np.ndarray) -> int:
    """k = min(5, smallest class count), at least 2: every fold then holds each class once or
    more where the labels allow it."""
    counts = np.bincount(np.asarray(y))
    return max(2, min(MAX_FOLDS, int(counts[counts > 0].min())))


def folds(y: np.ndarray, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified (train, held-out) index pairs over ``y``."""
    y = np.asarray(y)
    if not can_cross_validate(y):
        raise ValueError(f"{len(y)} labels cannot be cut into {n_folds(y)} folds")
    splitter = StratifiedKFold(n_splits=n_folds(y), shuffle=True, random_state=seed)
    # A class with a single label cannot be in every fold; sklearn warns and does its best.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return list(splitter.split(np.zeros(len(y)), y))


def can_cross_validate(y: np.ndarray) -> bool:
    """Some class must fill every fold, or there is nothing to hold out and train on."""
    y = np.asarray(y)
    return len(y) > 0 and int(np.bincount(y).max()) >= n_folds(y)


def too_few_to_cross_validate(y: np.ndarray, eval_size: int, rules: GateRules) -> RuleResult:
    detail = (
        f"{len(y)} training labels, no class with {n_folds(y)} or more: too few to cross-validate, and the eval "
        f"split has {eval_size} < min_slice_size {rules.min_slice_size} labels"
    )
    return RuleResult(RULE, SLICE, "fail", False, False, 0.0, 0.0, 0.0, 0.0, detail)


def beats_majority_cv(cv: CrossValidation, eval_size: int, rules: GateRules, *, seed: int = 0, n_resamples: int = 1000) -> RuleResult:
    """The first-model rule on cross-validated evidence."""
    y_true, y_pred = np.asarray(cv.y_true), np.asarray(cv.y_pred)
    correct = (y_true == y_pred).astype(float)
    n_labels = max(int(y_true.max()) + 1, 1)

    def difference(rows: np.ndarray) -> float:
        # The majority rate is estimated from the same labels, so it is resampled with them.
        return float(correct[rows].mean() - np.bincount(y_true[rows], minlength=n_labels).max() / len(rows))

    estimate = difference(np.arange(len(y_true)))
    rng = np.random.default_rng(seed)
    draws = np.array([difference(rng.integers(0, len(y_true), len(y_true))) for _ in range(n_resamples)])
    # One-sided at the gate's confidence, like its other rules: the shown interval's ends are
    # the bounds tested.
    tail = 1 - rules.confidence
    low, high = (float(q) for q in np.quantile(draws, [tail, 1 - tail]))
    accuracy = float(correct.mean())
    majority = accuracy - estimate
    passed = low > 0
    recipe = f"{cv.mode}-mode recipe"
    if cv.stands_in_for:
        recipe += f" (its cross-validation is the evidence for the {cv.stands_in_for} candidate)"
    detail = (
        f"{cv.folds}-fold CV of the {recipe} on {len(y_true)} training labels: accuracy {accuracy:.3f} vs majority "
        f"class {majority:.3f} ({estimate:+.3f}, {2 * rules.confidence - 1:.0%} CI {low:+.3f}..{high:+.3f}), the lower bound must be "
        f"above 0; used while the eval split has {eval_size} < min_slice_size {rules.min_slice_size} labels"
    )
    status = "pass" if passed else "fail"
    return RuleResult(RULE, SLICE, status, passed, False, estimate, low, high, 0.0, detail + f" — {status}")


def with_cross_validation(outcome: GateOutcome, rule: RuleResult) -> GateOutcome:
    """The gate's first-model outcome with the cross-validated rule deciding: the eval slices'
    skipped rules stay for the record, the gate's 'no evidence' refusal gives way to it."""
    rules = [r for r in outcome.rules if not (r.rule == "evaluation_data" and not r.passed)] + [rule]
    return GateOutcome(passed=all(r.passed for r in rules), rules=rules, slices=outcome.slices)


def evidence(rule: RuleResult) -> dict[str, object]:
    """What a provisional version keeps of its evidence, with its metrics."""
    return {"rule": rule.rule, "passed": rule.passed, "lower_bound": rule.low, "detail": rule.detail}
