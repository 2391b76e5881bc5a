"""The promotion gate: a candidate replaces the champion only if it holds up on recent data,
forgets nothing it knew on past windows and the gold set, and is not worse calibrated.

Every comparison is a one-sided non-inferiority test on the paired bootstrap interval of the
difference (candidate - champion) at ``GateRules.confidence``: a rule fails only when the
whole interval lies beyond the tolerance, i.e. when the data show a loss bigger than the
tolerance. The interval's ends are one-sided bounds at that confidence, so it is the two-sided
interval at ``2 * confidence - 1`` (90% for 0.95), and it is shown as such. Eval
slices are small (tens of labels, where one example moves macro-F1 by 0.02-0.05), so a rule
that compared point estimates refused every candidate on noise. A rule is ``undecided`` when
its slice is smaller than ``min_slice_size``, or when its interval reaches past both -tolerance
and +tolerance: that slice cannot tell a loss beyond the tolerance from a gain beyond it.
Undecided rules never block; a gate where nothing was decided fails (no evidence is no reason
to promote). One rule ignores sample size: ``class_lost``, a class the champion recognised
that the candidate never predicts any more.

Slices come from the caller (no store access here); each model gives one probability matrix
per slice. Classes are added over time, so the champion may know fewer labels than the
candidate: its matrix is then narrower and is padded with zero columns for the labels it never
saw. That scores the champion as never predicting a new class, which is exactly what it does.

With no champion (the first model of a task) the only rule is that it beats always predicting
the majority class of the ``all`` slice by a margin.
"""

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Literal, get_args

import numpy as np

from driftloop.platform.evaluation.metrics import (
    Difference,
    Metric,
    SliceMetrics,
    accuracy,
    calibration_difference,
    macro_f1,
    paired_bootstrap,
    slice_metrics,
)

SliceKind = Literal["recent", "past", "gold", "all"]
Status = Literal["pass", "fail", "undecided"]
Policy = Literal["current", "strict"]
POLICIES: tuple[str, ...] = get_args(Policy)

_BOOTSTRAP_METRICS: dict[str, Metric] = {"macro_f1": macro_f1, "accuracy": accuracy}
# Keys older task settings may still carry; they are accepted and have no effect.
_RETIRED_KEYS = frozenset({"use_confidence_interval"})


@dataclass(frozen=True)
class GateRules:
    # current: the best model for today's traffic, forgetting a bounded cost; strict: no loss on any past slice
    policy: str = "current"
    metric: str = "macro_f1"
    confidence: float = 0.95
    hold_tolerance: float = 0.03
    forget_tolerance: float = 0.03
    ece_tolerance: float = 0.03
    min_slice_size: int = 30
    first_model_margin: float = 0.05
    # class_lost: a class with this many examples in a past or gold slice...
    class_min_examples: int = 5
    # ...that the champion recalled at least this well and the candidate not at all.
    class_champion_recall: float = 0.5
    # how much a label stands for today's traffic halves with every this many labels that arrived after it
    half_life_labels: int = 200

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ValueError(f"gate policy {self.policy!r} is not one of {', '.join(POLICIES)}")
        if self.metric not in _BOOTSTRAP_METRICS:
            raise ValueError(f"gate metric {self.metric!r} is not one of {sorted(_BOOTSTRAP_METRICS)}")
        for name in ("hold_tolerance", "forget_tolerance", "ece_tolerance", "first_model_margin"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"gate rule {name} must be a number >= 0, got {value!r}")
        for name in ("confidence", "class_champion_recall"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
                raise ValueError(f"gate rule {name} must be a number between 0 and 1 (exclusive), got {value!r}")
        if self.confidence <= 0.5:
            raise ValueError(f"gate rule confidence must be above 0.5, got {self.confidence!r}")
        for name in ("min_slice_size", "class_min_examples", "half_life_labels"):
            size = getattr(self, name)
            if isinstance(size, bool) or not isinstance(size, int) or size < 1:
                raise ValueError(f"gate rule {name} must be an integer >= 1, got {size!r}")

    @classmethod
    def from_dict(cls, values: Mapping[str, object] | None) -> "GateRules":
        """Defaults overridden by a task's settings; a misspelt key would otherwise be silently
        ignored and the task gated by a rule its owner thinks they changed."""
        values = {k: v for k, v in dict(values or {}).items() if k not in _RETIRED_KEYS}
        unknown = sorted(set(values) - {field.name for field in fields(cls)})
        if unknown:
            raise ValueError(f"unknown gate rule(s): {', '.join(unknown)}")
        return cls(**values)  # type: ignore[arg-type]


@dataclass(frozen=True)
class EvalSlice:
    name: str
    kind: SliceKind
    y_true: np.ndarray

    def __post_init__(self) -> None:
        if self.kind not in get_args(SliceKind):
            raise ValueError(f"slice {self.name!r} has kind {self.kind!r}, expected one of {get_args(SliceKind)}")


@dataclass(frozen=True)
class RuleResult:
    """One rule on one slice. ``value`` is the estimate the rule tests (a difference, or a
    recall for ``class_lost``), ``low``..``high`` its interval (equal to ``value`` when the rule
    has none). ``passed`` and ``skipped`` are kept for stored decisions and older readers:
    ``passed`` is "does not block" (pass or undecided), ``skipped`` is "undecided"."""

    rule: str
    slice: str
    status: Status
    passed: bool
    skipped: bool
    value: float
    low: float
    high: float
    threshold: float
    detail: str


@dataclass(frozen=True)
class SliceReport:
    name: str
    kind: str
    candidate: SliceMetrics
    champion: SliceMetrics | None
    difference: Difference | None


@dataclass(frozen=True)
class GateOutcome:
    passed: bool
    rules: list[RuleResult]
    slices: list[SliceReport]

    def to_dict(self) -> dict:
        return asdict(self)


def evaluate_gate(
    slices: Sequence[EvalSlice],
    candidate: Mapping[str, np.ndarray],
    champion: Mapping[str, np.ndarray] | None,
    labels: Sequence[str],
    rules: GateRules = GateRules(),
    *,
    seed: int = 0,
) -> GateOutcome:
    """Apply ``rules`` to every slice that has examples; empty slices are left out of the report.

    The candidate passes when no rule fails and at least one rule decided. A gate where no rule
    could decide (no slices, or every slice too small) fails: promoting on no evidence is what
    the gate prevents.
    """
    with_examples = [s for s in slices if len(np.asarray(s.y_true)) > 0]
    reports = [_report(s, candidate, champion, labels, rules, seed) for s in with_examples]
    results = [
        result
        for eval_slice, report in zip(with_examples, reports, strict=True)
        for result in _rules_for(eval_slice, report, candidate, champion, labels, rules, seed, first_model=champion is None)
    ]
    if not has_evidence(results):
        results.append(_no_evidence(results))
    return GateOutcome(passed=all(result.passed for result in results), rules=results, slices=reports)


def has_evidence(results: Sequence[RuleResult]) -> bool:
    """Whether some rule decided something. ``class_lost`` does not count: that every class is
    still recalled says nothing about whether the candidate is as good as the champion."""
    return any(r.status != "undecided" for r in results if r.rule != "class_lost")


def non_inferiority(
    difference: Difference, tolerance: float, n: int, min_slice_size: int, *, higher_is_better: bool = True
) -> Status:
    """The verdict on one difference (candidate - champion) and its interval.

    fail: the whole interval lies beyond -tolerance (for ECE, lower is better: beyond +tolerance);
    undecided: too few examples, or an interval that reaches beyond -tolerance while the
    estimate is itself beyond it (a loss the data suggest but cannot show) or the interval also
    reaches beyond +tolerance (the slice cannot tell a loss from a gain);
    pass otherwise: no evidence of a loss beyond the tolerance.
    """
    sign = 1.0 if higher_is_better else -1.0
    low, high = sorted((sign * difference.low, sign * difference.high))
    estimate = sign * difference.estimate
    if n < min_slice_size:
        return "undecided"
    if high < -tolerance:
        return "fail"
    if low < -tolerance and (estimate < -tolerance or high > tolerance):
        return "undecided"
    return "pass"


def _report(
    eval_slice: EvalSlice,
    candidate: Mapping[str, np.ndarray],
    champion: Mapping[str, np.ndarray] | None,
    labels: Sequence[str],
    rules: GateRules,
    seed: int,
) -> SliceReport:
    y_true = np.asarray(eval_slice.y_true)
    candidate_proba = _proba_for(candidate, eval_slice.name, "candidate", labels)
    candidate_metrics = slice_metrics(y_true, candidate_proba, labels)
    if champion is None:
        return SliceReport(eval_slice.name, eval_slice.kind, candidate_metrics, None, None)
    champion_proba = _proba_for(champion, eval_slice.name, "champion", labels)
    metric = _BOOTSTRAP_METRICS[rules.metric]
    difference = paired_bootstrap(
        y_true, candidate_proba, champion_proba, metric, confidence=_two_sided(rules), seed=seed
    )
    champion_metrics = slice_metrics(y_true, champion_proba, labels)
    return SliceReport(eval_slice.name, eval_slice.kind, candidate_metrics, champion_metrics, difference)


def _proba_for(model: Mapping[str, np.ndarray], name: str, role: str, labels: Sequence[str]) -> np.ndarray:
    if name not in model:
        raise ValueError(f"the {role} has no probabilities for slice {name!r}")
    proba = np.asarray(model[name], dtype=float)
    if proba.ndim != 2 or proba.shape[1] > len(labels):
        raise ValueError(
            f"the {role}'s probabilities for slice {name!r} have shape {proba.shape}, "
            f"expected (n, {len(labels)}) or fewer columns"
        )
    # A model trained before labels were appended has no column for them (see module docstring).
    return np.pad(proba, ((0, 0), (0, len(labels) - proba.shape[1])))


def _rules_for(
    eval_slice: EvalSlice,
    report: SliceReport,
    candidate: Mapping[str, np.ndarray],
    champion: Mapping[str, np.ndarray] | None,
    labels: Sequence[str],
    rules: GateRules,
    seed: int,
    *,
    first_model: bool,
) -> list[RuleResult]:
    if first_model:
        return [_beats_majority(report, np.asarray(eval_slice.y_true), rules)] if report.kind == "all" else []
    if report.kind == "recent":
        return [_hold_recent(report, rules)]
    if report.kind in ("past", "gold"):
        return [_no_forgetting(report, rules), _class_lost(report, np.asarray(eval_slice.y_true), rules)]
    y_true = np.asarray(eval_slice.y_true)
    ece = calibration_difference(
        y_true,
        _proba_for(candidate, eval_slice.name, "candidate", labels),
        _proba_for(champion, eval_slice.name, "champion", labels),  # type: ignore[arg-type]
        confidence=_two_sided(rules),
        seed=seed,
    )
    return [_calibration(report, ece, rules)]


def _hold_recent(report: SliceReport, rules: GateRules) -> RuleResult:
    return _metric_rule("hold_recent", report, rules, rules.hold_tolerance)


def _no_forgetting(report: SliceReport, rules: GateRules) -> RuleResult:
    return _metric_rule("no_forgetting", report, rules, rules.forget_tolerance)


def _metric_rule(rule: str, report: SliceReport, rules: GateRules, tolerance: float) -> RuleResult:
    difference = report.difference
    status = non_inferiority(difference, tolerance, report.candidate.n, rules.min_slice_size)
    detail = f"{_comparison(report, rules)}: {_reason(status, difference, tolerance, 'drop', report.candidate.n, rules)}"
    return _result(rule, report, status, difference, -tolerance, detail)


def _calibration(report: SliceReport, ece: Difference, rules: GateRules) -> RuleResult:
    tolerance = rules.ece_tolerance
    status = non_inferiority(ece, tolerance, report.candidate.n, rules.min_slice_size, higher_is_better=False)
    detail = (
        f"ECE {report.candidate.ece:.3f} vs {report.champion.ece:.3f} "
        f"({ece.estimate:+.3f}, {_two_sided(rules):.0%} CI {ece.low:+.3f}..{ece.high:+.3f}): "
        f"{_reason(status, ece, tolerance, 'rise', report.candidate.n, rules)}"
    )
    return _result("calibration", report, status, ece, tolerance, detail)


def _reason(status: Status, difference: Difference, tolerance: float, loss: str, n: int, rules: GateRules) -> str:
    if n < rules.min_slice_size:
        return f"undecided, {n} labels < min_slice_size {rules.min_slice_size}"
    if status == "fail":
        return f"the data show a {loss} beyond {tolerance:.3f} — fail"
    suggested = difference.estimate < -tolerance if loss == "drop" else difference.estimate > tolerance
    if status == "undecided" and suggested:
        return f"a {loss} beyond {tolerance:.3f} that the data cannot confirm — undecided"
    if status == "undecided":
        return f"interval too wide to tell a {loss} beyond {tolerance:.3f} from a gain beyond it — undecided"
    sure_gain = difference.low > 0 if loss == "drop" else difference.high < 0
    sure_loss = difference.high < 0 if loss == "drop" else difference.low > 0
    sure = "better (whole interval on the good side of 0), " if sure_gain else ""
    sure = "worse (whole interval on the bad side of 0) but " if sure_loss else sure
    return f"{sure}no evidence of a {loss} beyond {tolerance:.3f} — pass"


def _class_lost(report: SliceReport, y_true: np.ndarray, rules: GateRules) -> RuleResult:
    """A class the candidate no longer predicts at all: a loss no sample size excuses, because
    a recall of 0 on several examples the champion mostly got right is no accident of sampling."""
    counts = np.bincount(y_true)
    present = [name for name in report.candidate.per_class_recall]
    judged = [
        name
        for index, name in zip(np.unique(y_true), present, strict=True)
        if counts[index] >= rules.class_min_examples
    ]
    lost = [
        name
        for name in judged
        if report.candidate.per_class_recall[name] == 0
        and report.champion.per_class_recall[name] >= rules.class_champion_recall
    ]
    worst = min((report.candidate.per_class_recall[name] for name in judged), default=1.0)
    point = Difference(worst, worst, worst)
    if lost:
        recalls = ", ".join(f"{name} {report.champion.per_class_recall[name]:.2f} -> 0.00" for name in lost)
        return _result("class_lost", report, "fail", point, 0.0, f"recall {recalls}: class lost — fail")
    if not judged or report.candidate.n < rules.min_slice_size:
        detail = f"undecided, no class lost but too few labels (classes judged from {rules.class_min_examples} examples, slices from {rules.min_slice_size})"
        return _result("class_lost", report, "undecided", point, 0.0, detail)
    detail = f"every class with {rules.class_min_examples}+ examples still recalled (lowest {worst:.2f}) — pass"
    return _result("class_lost", report, "pass", point, 0.0, detail)


def _beats_majority(report: SliceReport, y_true: np.ndarray, rules: GateRules) -> RuleResult:
    majority = np.bincount(y_true).max() / len(y_true)
    value = report.candidate.accuracy
    threshold = majority + rules.first_model_margin
    detail = (
        f"accuracy {value:.3f} vs majority class {majority:.3f} ({value - majority:+.3f}), "
        f"must beat it by {rules.first_model_margin:.3f}"
    )
    n = report.candidate.n
    if n < rules.min_slice_size:
        status: Status = "undecided"
        detail = f"undecided, {n} labels < min_slice_size {rules.min_slice_size}: {detail}"
    else:
        status = "pass" if value >= threshold else "fail"
    return _result("beats_majority", report, status, Difference(value, value, value), threshold, detail)


def _result(
    rule: str, report: SliceReport, status: Status, difference: Difference, threshold: float, detail: str
) -> RuleResult:
    return RuleResult(
        rule,
        report.name,
        status,
        passed=status != "fail",
        skipped=status == "undecided",
        value=float(difference.estimate),
        low=float(difference.low),
        high=float(difference.high),
        threshold=float(threshold),
        detail=detail,
    )


def _no_evidence(results: list[RuleResult]) -> RuleResult:
    reason = (
        "undecided: not enough eval labels — every rule was undecided, so nothing shows the candidate is not worse"
        if results
        else "undecided: not enough eval labels — no slice with examples that a rule applies to"
    )
    return RuleResult("evaluation_data", "", "fail", False, False, 0.0, 0.0, 0.0, 1.0, reason)


def _comparison(report: SliceReport, rules: GateRules) -> str:
    difference = report.difference
    metric = rules.metric
    return (
        f"{metric} {getattr(report.candidate, metric):.3f} vs {getattr(report.champion, metric):.3f} "
        f"({difference.estimate:+.3f}, {_two_sided(rules):.0%} CI {difference.low:+.3f}..{difference.high:+.3f})"
    )


def _two_sided(rules: GateRules) -> float:
    """The two-sided level whose ends are one-sided bounds at ``rules.confidence``: each rule
    tests one direction, so a 95% two-sided interval would be a 97.5% test."""
    return 2 * rules.confidence - 1
