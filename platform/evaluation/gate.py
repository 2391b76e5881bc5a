"""The promotion gate: a candidate replaces the champion when it is at least as good on the
traffic served now, and what it forgets of the past stays within bounds.

**Evidence.** Every comparison is paired (both models on the same labels, neither trained on
them) and carries a bootstrap interval at ``GateRules.confidence``. The slices come from the
caller (no store access here):
- ``recent`` — the current traffic: labels the champion never saw (it is scored on them
  *prequentially*, test-then-train) and the candidate has not trained on (its predictions on
  the training labels are *cross-fitted* by the caller: fold models trained without them). Each
  label carries a recency weight (``EvalSlice.weights``): how much of today's traffic it stands
  for, halving every ``half_life_labels`` labels that arrived after it;
- ``past`` — older held-out labels (the task's eval split, if it keeps one), in arrival windows;
- ``gold`` — the gold set ops curated;
- ``all`` — every eval-split label; it decides the first model when the caller has no
  cross-validated evidence.

**Rules.** A rule tests the interval of a difference (candidate - champion) against a
tolerance: it *fails* when the whole interval lies beyond the tolerance (the data show a loss),
is *undecided* when its slice is under ``min_slice_size`` or the interval is too wide to tell a
loss from a gain, and *passes* otherwise. The interval's ends are one-sided bounds at
``confidence``, i.e. the two-sided interval at ``2 * confidence - 1`` (90% for 0.95).

- ``current_traffic`` (both policies): on the ``recent`` slice, weighted by recency; the
  primary criterion.
- ``no_forgetting``: under ``strict``, on every past and gold slice, a veto. Under ``current``
  a veto on ``gold`` only (ops' hard cap); on past slices it is a cost: reported with its weight
  (how much of today's traffic the slice stands for) and folded into
- ``net_gain`` (``current`` only): the recency-weighted mean of the differences on the current
  and past slices, draw by draw of their bootstraps: it may not show a net loss, and once a past
  slice shows a loss, the weighted gain on today's traffic must outweigh it (a positive estimate).
- ``class_lost``: on every slice, a class the champion recalled (>= ``class_champion_recall``)
  that the candidate never predicts any more, or whose recall drop the paired interval shows. A
  veto on ``recent`` and ``gold``, under ``strict``, and for a class still seen in recent
  traffic (``traffic_classes``); for a class gone from the traffic a ``notice``: the model
  serves today's classes.
- ``calibration``: ECE on the ``recent`` slice (``all`` when there is none) may not rise beyond
  ``ece_tolerance``.

**Evidence needed.** Only the quality rules (``current_traffic``, ``no_forgetting``,
``net_gain``) count as evidence; calibration and ``class_lost`` do not. A ``current_traffic``
that is undecided with its estimate beyond the tolerance refuses any pass. A gate where no rule
decided fails, unless the candidate was trained on a superset of the champion's data by the
same recipe (``superset``): under ``current`` it then passes *provisionally* unless the
current-traffic estimate is such a loss (the next round's evidence re-judges it). More labels by the same recipe are rarely worse, and a gate that waits
for certainty at 30 labels freezes the served model for good.

Classes are added over time, so the champion may know fewer labels than the candidate: its
matrix is then narrower and is padded with zero columns for the labels it never saw. That
scores the champion as never predicting a new class, which is exactly what it does.

With no champion (the first model of a task) the only rule is that it beats always predicting
the majority class of the ``all`` slice by a margin (the round adds cross-validated evidence,
see :mod:`driftloop.platform.evaluation.first_model`).
"""

from collections.abc import Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Literal, get_args

import numpy as np

from driftloop.platform.evaluation.metrics import (
    WEIGHTED_METRICS,
    Difference,
    Resampled,
    SliceMetrics,
    calibration_difference,
    slice_metrics,
    weighted_paired_bootstrap,
)

SliceKind = Literal["recent", "past", "gold", "all"]
# notice: reported, never blocks, decides nothing (a cost weighed elsewhere, a class gone from traffic)
Status = Literal["pass", "fail", "undecided", "notice"]
Policy = Literal["current", "strict"]
POLICIES: tuple[str, ...] = get_args(Policy)

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
        if self.metric not in WEIGHTED_METRICS:
            raise ValueError(f"gate metric {self.metric!r} is not one of {sorted(WEIGHTED_METRICS)}")
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
    # how much each label stands for today's traffic (its recency); None: every label counts once
    weights: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.kind not in get_args(SliceKind):
            raise ValueError(f"slice {self.name!r} has kind {self.kind!r}, expected one of {get_args(SliceKind)}")
        if self.weights is not None and np.shape(self.weights) != np.shape(self.y_true):
            raise ValueError(f"slice {self.name!r} has {np.size(self.weights)} weights for {np.size(self.y_true)} labels")

    def weight(self) -> float:
        """The slice's share of today's traffic: the sum of its labels' weights."""
        return float(len(self.y_true) if self.weights is None else np.sum(self.weights))


@dataclass(frozen=True)
class RuleResult:
    """One rule on one slice. ``value`` is the estimate the rule tests (a difference, or a
    recall for ``class_lost``), ``low``..``high`` its interval (equal to ``value`` when the rule
    has none). ``passed`` and ``skipped`` are kept for stored decisions and older readers:
    ``passed`` is "does not block" (pass, undecided or notice), ``skipped`` is "undecided".
    ``weight`` is the term's share of ``net_gain`` (1 for a rule that decides on its own)."""

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
    weight: float = 1.0


@dataclass(frozen=True)
class SliceReport:
    name: str
    kind: str
    candidate: SliceMetrics
    champion: SliceMetrics | None
    difference: Difference | None
    weight: float = 1.0  # the sum of the slice's recency weights (its labels when unweighted)


@dataclass(frozen=True)
class GateOutcome:
    passed: bool
    rules: list[RuleResult]
    slices: list[SliceReport]
    provisional: bool = False  # passed for lack of evidence against a superset candidate
    policy: str = "current"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class _Judged:
    """One slice as the rules see it: the report, both models' predicted classes (padded to
    every label) and the bootstrap, computed once for every rule that reads them."""

    eval_slice: EvalSlice
    report: SliceReport
    candidate_proba: np.ndarray
    champion_proba: np.ndarray | None  # None without a champion
    resampled: Resampled | None  # None without a champion


def evaluate_gate(
    slices: Sequence[EvalSlice],
    candidate: Mapping[str, np.ndarray],
    champion: Mapping[str, np.ndarray] | None,
    labels: Sequence[str],
    rules: GateRules = GateRules(),
    *,
    seed: int = 0,
    traffic_classes: Collection[str] | None = None,
    superset: bool = False,
) -> GateOutcome:
    """Apply ``rules`` to every slice that has examples; empty slices are left out of the report.

    ``traffic_classes``: the classes seen in recent traffic (None: every class counts as still
    served). ``superset``: the candidate was trained on the champion's data and more, by the
    champion's recipe; with no decided rule it may then pass provisionally (module docstring).
    The candidate passes when no rule fails and at least one decided (or it passed provisionally).
    """
    judged = [
        _judge(eval_slice, candidate, champion, labels, rules, seed + number)
        for number, eval_slice in enumerate(s for s in slices if len(np.asarray(s.y_true)) > 0)
    ]
    if champion is None:
        results = [_beats_majority(j.report, np.asarray(j.eval_slice.y_true), rules) for j in judged if j.report.kind == "all"]
    else:
        results = _champion_rules(judged, rules, seed, traffic_classes)
    provisional = False
    if not has_evidence(results):
        provisional = champion is not None and superset and rules.policy == "current" and not _points_to_a_loss(results)
        results.append(_provisional(results) if provisional else _no_evidence(results))
    elif champion is not None and all(r.passed for r in results) and _points_to_a_loss(results):
        results.append(_suggested_loss(results))
    return GateOutcome(
        passed=all(result.passed for result in results),
        rules=results,
        slices=[j.report for j in judged],
        provisional=provisional,
        policy=rules.policy,
    )


def has_evidence(results: Sequence[RuleResult]) -> bool:
    """Whether a rule on the models' quality decided something. ``class_lost`` does not count
    (that every class is still recalled says nothing about whether the candidate is as good as
    the champion), nor ``calibration`` (a candidate can be as well calibrated and much worse),
    nor a notice (a cost reported, not judged on its own)."""
    return any(r.status in ("pass", "fail") for r in results if r.rule in _QUALITY_RULES or r.rule.startswith("beats_majority"))


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


def _judge(
    eval_slice: EvalSlice,
    candidate: Mapping[str, np.ndarray],
    champion: Mapping[str, np.ndarray] | None,
    labels: Sequence[str],
    rules: GateRules,
    seed: int,
) -> _Judged:
    y_true = np.asarray(eval_slice.y_true)
    candidate_proba = _proba_for(candidate, eval_slice.name, "candidate", labels)
    candidate_metrics = slice_metrics(y_true, candidate_proba, labels)
    weight = eval_slice.weight()
    if champion is None:
        return _Judged(eval_slice, SliceReport(eval_slice.name, eval_slice.kind, candidate_metrics, None, None, weight), candidate_proba, None, None)
    champion_proba = _proba_for(champion, eval_slice.name, "champion", labels)
    resampled = weighted_paired_bootstrap(
        y_true, candidate_proba, champion_proba, rules.metric, eval_slice.weights, confidence=_two_sided(rules), seed=seed
    )
    champion_metrics = slice_metrics(y_true, champion_proba, labels)
    report = SliceReport(eval_slice.name, eval_slice.kind, candidate_metrics, champion_metrics, resampled.difference, weight)
    return _Judged(eval_slice, report, candidate_proba, champion_proba, resampled)


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


def _champion_rules(judged: list[_Judged], rules: GateRules, seed: int, traffic_classes: Collection[str] | None) -> list[RuleResult]:
    strict = rules.policy == "strict"
    weighed = [j for j in judged if j.report.kind in ("recent", "past")]
    total = sum(j.report.weight for j in weighed) or 1.0
    results: list[RuleResult] = []
    for j in judged:
        share = j.report.weight / total if not strict else 1.0
        if j.report.kind == "recent":
            results.append(_metric_rule("current_traffic", j.report, rules, rules.hold_tolerance, share))
            # every class of today's traffic is served: losing one is a veto whatever the policy
            results.append(_class_lost(j, rules, None, seed=seed))
        elif j.report.kind in ("past", "gold"):
            veto = strict or j.report.kind == "gold"
            results.append(_no_forgetting(j.report, rules, veto=veto, weight=1.0 if veto else share))
            results.append(_class_lost(j, rules, None if veto else traffic_classes, seed=seed))
    if not strict and any(j.report.kind == "past" for j in weighed) and any(j.report.kind == "recent" for j in weighed):
        results.append(_net_gain(weighed, rules, total))
    calibrated = next((j for j in judged if j.report.kind == "recent"), None) or next((j for j in judged if j.report.kind == "all"), None)
    if calibrated is not None:
        ece = calibration_difference(
            np.asarray(calibrated.eval_slice.y_true),
            calibrated.candidate_proba,
            calibrated.champion_proba,  # type: ignore[arg-type]
            confidence=_two_sided(rules),
            seed=seed,
        )
        results.append(_calibration(calibrated.report, ece, rules))
    return results


def _no_forgetting(report: SliceReport, rules: GateRules, *, veto: bool, weight: float) -> RuleResult:
    result = _metric_rule("no_forgetting", report, rules, rules.forget_tolerance, weight)
    if veto or result.status != "fail":
        return result
    # Under ``current`` a past slice is a cost that net_gain weighs, not a veto.
    detail = result.detail.replace(" — fail", f" — a cost, weighed in net_gain at {weight:.2f}")
    return replace(result, status="notice", passed=True, detail=detail)


def _net_gain(weighed: list[_Judged], rules: GateRules, total: float) -> RuleResult:
    """The recency-weighted mean of the current and past differences, combined draw by draw
    (the slices hold different labels, so their bootstraps are independent). It fails when the
    data show a net loss beyond ``hold_tolerance``, and, once some past slice shows a loss
    beyond ``forget_tolerance``, unless its estimate is a gain: a loss shown on the past is paid
    for only by a larger weighted gain on today's traffic, not by an interval that cannot tell."""
    shares = [j.report.weight / total for j in weighed]
    estimate = sum(share * j.resampled.difference.estimate for share, j in zip(shares, weighed, strict=True))  # type: ignore[union-attr]
    draws = sum(share * j.resampled.draws for share, j in zip(shares, weighed, strict=True))  # type: ignore[union-attr]
    tail = (1 - _two_sided(rules)) / 2
    low, high = (float(q) for q in np.nanquantile(draws, [tail, 1 - tail]))
    difference = Difference(float(estimate), low, high)
    n = sum(j.report.candidate.n for j in weighed)
    status = non_inferiority(difference, rules.hold_tolerance, n, rules.min_slice_size)
    reason = _reason(status, difference, rules.hold_tolerance, "drop", n, rules)
    forgot = [j.report.name for j in weighed if j.report.kind == "past" and j.resampled.difference.high < -rules.forget_tolerance]  # type: ignore[union-attr]
    if forgot and estimate <= 0:
        status, reason = "fail", f"a loss shown on {', '.join(forgot)} that the gain on current traffic does not outweigh — fail"
    terms = ", ".join(f"{j.report.name} {j.resampled.difference.estimate:+.3f}×{share:.2f}" for share, j in zip(shares, weighed, strict=True))  # type: ignore[union-attr]
    detail = (
        f"{rules.metric} weighted by recency (half-life {rules.half_life_labels} labels): {terms} = {estimate:+.3f} "
        f"({_two_sided(rules):.0%} CI {low:+.3f}..{high:+.3f}): {reason}"
    )
    return RuleResult("net_gain", "current+past", status, status != "fail", status == "undecided", float(estimate), low, high, -rules.hold_tolerance, detail)


def _metric_rule(rule: str, report: SliceReport, rules: GateRules, tolerance: float, weight: float = 1.0) -> RuleResult:
    difference = report.difference
    status = non_inferiority(difference, tolerance, report.candidate.n, rules.min_slice_size)
    detail = f"{_comparison(report, rules)}: {_reason(status, difference, tolerance, 'drop', report.candidate.n, rules)}"
    return _result(rule, report, status, difference, -tolerance, detail, weight)


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


def _class_lost(judged: _Judged, rules: GateRules, traffic_classes: Collection[str] | None, *, seed: int = 0) -> RuleResult:
    """A class forgotten on this slice: one the candidate no longer predicts at all (a loss no
    sample size excuses: a recall of 0 on several examples the champion mostly got right is no
    accident of sampling), or, for a class still served, a recall drop beyond
    ``forget_tolerance`` that the paired interval shows (Bonferroni over the classes judged, so
    that judging five classes does not multiply false refusals by five). A veto while the class
    is still in recent traffic (``traffic_classes`` None: every class is); a notice once it is gone."""
    report, y_true = judged.report, np.asarray(judged.eval_slice.y_true)
    candidate_predicted = judged.candidate_proba.argmax(axis=1)
    champion_predicted = judged.champion_proba.argmax(axis=1)  # type: ignore[union-attr]
    names = list(report.candidate.per_class_recall)
    judged = [(int(index), name) for index, name in zip(np.unique(y_true), names, strict=True) if np.sum(y_true == index) >= rules.class_min_examples]
    served = {name for _, name in judged if traffic_classes is None or name in traffic_classes}
    zeroed = {
        name
        for _, name in judged
        if report.candidate.per_class_recall[name] == 0 and report.champion.per_class_recall[name] >= rules.class_champion_recall
    }
    tail = (1 - rules.confidence) / max(len(judged), 1)
    dropped = {
        name: interval
        for index, name in judged
        if (interval := _recall_drop(y_true == index, candidate_predicted == index, champion_predicted == index, tail, seed)).high < -rules.forget_tolerance
    }
    worst = min((report.candidate.per_class_recall[name] for _, name in judged), default=1.0)
    point = Difference(worst, worst, worst)
    lost = [name for _, name in judged if name in zeroed or name in dropped]

    def recalls(names: list[str]) -> str:
        return ", ".join(
            f"{name} {report.champion.per_class_recall[name]:.2f} -> {report.candidate.per_class_recall[name]:.2f}"
            + (f" (drop CI {dropped[name].low:+.2f}..{dropped[name].high:+.2f})" if name in dropped else "")
            for name in names
        )

    if still := [name for name in lost if name in served]:
        return _result("class_lost", report, "fail", point, 0.0, f"recall {recalls(still)}: class forgotten, still in recent traffic — fail")
    if gone := [name for name in lost if name not in served]:
        detail = f"recall {recalls(gone)}: no longer recognised, but absent from recent traffic — notice, not a veto"
        return _result("class_lost", report, "notice", point, 0.0, detail)
    if not judged or report.candidate.n < rules.min_slice_size:
        detail = f"undecided, no class lost but too few labels (classes judged from {rules.class_min_examples} examples, slices from {rules.min_slice_size})"
        return _result("class_lost", report, "undecided", point, 0.0, detail)
    detail = f"every class with {rules.class_min_examples}+ examples still recalled (lowest {worst:.2f}) — pass"
    return _result("class_lost", report, "pass", point, 0.0, detail)


def _recall_drop(members: np.ndarray, candidate_hit: np.ndarray, champion_hit: np.ndarray, tail: float, seed: int) -> Difference:
    """The candidate's recall minus the champion's on one class, paired over its examples, with
    a percentile bootstrap interval whose ends are one-sided bounds at ``1 - tail``."""
    difference = candidate_hit[members].astype(float) - champion_hit[members].astype(float)
    draws = difference[np.random.default_rng(seed).integers(0, len(difference), (1000, len(difference)))].mean(axis=1)
    low, high = np.quantile(draws, [tail, 1 - tail])
    return Difference(float(difference.mean()), float(low), float(high))


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
    rule: str, report: SliceReport, status: Status, difference: Difference, threshold: float, detail: str, weight: float = 1.0
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
        weight=float(weight),
    )


_QUALITY_RULES = ("current_traffic", "no_forgetting", "net_gain")
_TODAY = ("current_traffic",)  # the rule on today's traffic alone


def _points_to_a_loss(results: Sequence[RuleResult]) -> bool:
    """Whether the difference on today's traffic is undecided with its estimate beyond the
    tolerance: harm the data suggest without showing it, which neither a provisional pass nor
    another rule's pass may override (past slices keep their own rules: a suggested loss there
    is not shown, and under ``current`` it is a weighed cost) (bench/gate.py: a candidate that lost a class passed on BBC News while its
    current-traffic estimate was already a loss, because another slice decided). Calibration is
    left out: on the few labels where nothing decides, ECE moves by tenths with a couple of
    confident answers (bench/active_learning.py --served: 4 of 5 such refusals on BBC News were
    a candidate better on the test set whose ECE estimate rose)."""
    return any(r.status == "undecided" and r.value < r.threshold for r in results if r.rule in _TODAY)


def _suggested_loss(results: Sequence[RuleResult]) -> RuleResult:
    suggested = ", ".join(f"{r.rule} on {r.slice} ({r.value:+.3f})" for r in results if r.rule in _TODAY and r.status == "undecided" and r.value < r.threshold)
    reason = f"refused: the estimate of {suggested} is a loss beyond the tolerance that no rule outweighs; more labels will decide"
    return RuleResult("evaluation_data", "", "fail", False, False, 0.0, 0.0, 0.0, 0.0, reason)


def _provisional(results: list[RuleResult]) -> RuleResult:
    reason = (
        "provisional: nothing decided either way and no estimate points to a loss; the candidate was trained on the "
        "champion's data and more by the same recipe, so it is served and re-judged on the next round's labels"
    )
    return RuleResult("evaluation_data", "", "pass", True, False, 0.0, 0.0, 0.0, 0.0, reason)


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
