"""The promotion gate: a candidate replaces the champion only if it holds up on recent data,
forgets nothing it knew on past windows and the gold set, and is not worse calibrated.

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
    macro_f1,
    paired_bootstrap,
    slice_metrics,
)

SliceKind = Literal["recent", "past", "gold", "all"]

_BOOTSTRAP_METRICS: dict[str, Metric] = {"macro_f1": macro_f1, "accuracy": accuracy}
_CONFIDENCE = 0.95


@dataclass(frozen=True)
class GateRules:
    metric: str = "macro_f1"
    hold_tolerance: float = 0.005
    forget_tolerance: float = 0.02
    ece_tolerance: float = 0.02
    min_slice_size: int = 20
    first_model_margin: float = 0.05
    use_confidence_interval: bool = False

    def __post_init__(self) -> None:
        if self.metric not in _BOOTSTRAP_METRICS:
            raise ValueError(f"gate metric {self.metric!r} is not one of {sorted(_BOOTSTRAP_METRICS)}")
        for name in ("hold_tolerance", "forget_tolerance", "ece_tolerance", "first_model_margin"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
                raise ValueError(f"gate rule {name} must be a number >= 0, got {value!r}")
        size = self.min_slice_size
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"gate rule min_slice_size must be an integer >= 1, got {size!r}")
        if not isinstance(self.use_confidence_interval, bool):
            value = self.use_confidence_interval
            raise ValueError(f"gate rule use_confidence_interval must be true or false, got {value!r}")

    @classmethod
    def from_dict(cls, values: Mapping[str, object] | None) -> "GateRules":
        """Defaults overridden by a task's settings; a misspelt key would otherwise be silently
        ignored and the task gated by a rule its owner thinks they changed."""
        values = dict(values or {})
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
    rule: str
    slice: str
    passed: bool
    skipped: bool
    value: float
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

    The candidate passes when every rule passes. A gate where no rule could be evaluated (no
    slices, or every slice too small) fails: promoting on no evidence is what the gate prevents.
    """
    with_examples = [s for s in slices if len(np.asarray(s.y_true)) > 0]
    reports = [_report(s, candidate, champion, labels, rules, seed) for s in with_examples]
    results = [
        result
        for eval_slice, report in zip(with_examples, reports, strict=True)
        for result in _rules_for(eval_slice, report, rules, first_model=champion is None)
    ]
    if all(result.skipped for result in results):
        results.append(_no_evidence(results))
    return GateOutcome(passed=all(result.passed for result in results), rules=results, slices=reports)


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
    difference = paired_bootstrap(y_true, candidate_proba, champion_proba, metric, confidence=_CONFIDENCE, seed=seed)
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
    eval_slice: EvalSlice, report: SliceReport, rules: GateRules, *, first_model: bool
) -> list[RuleResult]:
    if first_model:
        return [_beats_majority(report, np.asarray(eval_slice.y_true), rules)] if report.kind == "all" else []
    if report.kind == "recent":
        return [_hold_recent(report, rules)]
    if report.kind in ("past", "gold"):
        return [_no_forgetting(report, rules)]
    return [_calibration(report, rules)]


def _hold_recent(report: SliceReport, rules: GateRules) -> RuleResult:
    threshold = -rules.hold_tolerance
    value = report.difference.estimate
    detail = f"{_comparison(report, rules.metric)}, may drop at most {rules.hold_tolerance:.3f}"
    return _result("hold_recent", report, rules, value >= threshold, value, threshold, detail)


def _no_forgetting(report: SliceReport, rules: GateRules) -> RuleResult:
    threshold = -rules.forget_tolerance
    if rules.use_confidence_interval:
        # Fails only when the whole interval lies beyond the tolerance: a drop the data is sure of.
        value = report.difference.high
        limit = f"CI upper bound may be at most {rules.forget_tolerance:.3f} below 0"
    else:
        value = report.difference.estimate
        limit = f"may drop at most {rules.forget_tolerance:.3f}"
    detail = f"{_comparison(report, rules.metric)}, {limit}"
    return _result("no_forgetting", report, rules, value >= threshold, value, threshold, detail)


def _calibration(report: SliceReport, rules: GateRules) -> RuleResult:
    value = report.candidate.ece
    threshold = report.champion.ece + rules.ece_tolerance
    detail = (
        f"ECE {value:.3f} vs {report.champion.ece:.3f} ({value - report.champion.ece:+.3f}), "
        f"may rise at most {rules.ece_tolerance:.3f}"
    )
    return _result("calibration", report, rules, value <= threshold, value, threshold, detail)


def _beats_majority(report: SliceReport, y_true: np.ndarray, rules: GateRules) -> RuleResult:
    majority = np.bincount(y_true).max() / len(y_true)
    value = report.candidate.accuracy
    threshold = majority + rules.first_model_margin
    detail = (
        f"accuracy {value:.3f} vs majority class {majority:.3f} ({value - majority:+.3f}), "
        f"must beat it by {rules.first_model_margin:.3f}"
    )
    return _result("beats_majority", report, rules, value >= threshold, value, threshold, detail)


def _result(
    rule: str, report: SliceReport, rules: GateRules, passed: bool, value: float, threshold: float, detail: str
) -> RuleResult:
    n = report.candidate.n
    if n < rules.min_slice_size:
        # Too few examples for a verdict: shown for the record, never blocks.
        detail = f"skipped, {n} examples < min_slice_size {rules.min_slice_size}: {detail}"
        return RuleResult(rule, report.name, True, True, float(value), float(threshold), detail)
    return RuleResult(rule, report.name, bool(passed), False, float(value), float(threshold), detail)


def _no_evidence(results: list[RuleResult]) -> RuleResult:
    reason = (
        "every rule was skipped: all slices are smaller than min_slice_size"
        if results
        else "no evaluation data: no slice with examples that a rule applies to"
    )
    return RuleResult("evaluation_data", "", False, False, 0.0, 1.0, reason)


def _comparison(report: SliceReport, metric: str) -> str:
    difference = report.difference
    return (
        f"{metric} {getattr(report.candidate, metric):.3f} vs {getattr(report.champion, metric):.3f} "
        f"({difference.estimate:+.3f}, {_CONFIDENCE:.0%} CI {difference.low:+.3f}..{difference.high:+.3f})"
    )
