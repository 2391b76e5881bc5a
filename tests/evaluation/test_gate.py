"""The promotion gate on synthetic models whose accuracy and confidence per slice are set exactly.

``predictions`` picks the wrong rows with a seeded permutation, so two models with the same seed
and different accuracies are nested: the worse one makes the better one's mistakes and more.
"""

import json
import re

import numpy as np
import pytest

from driftloop.platform.evaluation.gate import EvalSlice, GateOutcome, GateRules, RuleResult, evaluate_gate

pytestmark = pytest.mark.filterwarnings("error")

LABELS = ["sport", "tech", "politics"]
STRICT = GateRules(policy="strict")  # every past slice a veto: the rules these tests pin down one by one


def eval_slice(name: str, kind: str, n: int, n_labels: int = 3) -> EvalSlice:
    return EvalSlice(name, kind, np.arange(n) % n_labels)  # type: ignore[arg-type]


def predictions(
    y_true: np.ndarray, accuracy: float, *, confidence: float | None = None, seed: int = 0, n_labels: int = 3
) -> np.ndarray:
    """Probabilities right on exactly ``accuracy`` of the rows (chosen at random), each with
    ``confidence`` on its arg-max; by default the confidence equals the accuracy (calibrated)."""
    n = len(y_true)
    wrong = np.random.default_rng(seed).permutation(n)[: round((1 - accuracy) * n)]
    predicted = y_true.copy()
    predicted[wrong] = (y_true[wrong] + 1) % n_labels
    top = accuracy if confidence is None else confidence
    proba = np.full((n, n_labels), (1 - top) / (n_labels - 1))
    proba[np.arange(n), predicted] = top
    return proba


def model(slices: list[EvalSlice], accuracy: float, **options: object) -> dict[str, np.ndarray]:
    """One probability matrix per slice, all with the same accuracy."""
    return {s.name: predictions(s.y_true, accuracy, **options) for s in slices}  # type: ignore[arg-type]


SLICES = [
    eval_slice("recent", "recent", 140),
    eval_slice("past:2024-01", "past", 120),
    eval_slice("past:2024-02", "past", 120),
    eval_slice("gold", "gold", 60),
    eval_slice("all", "all", 400),
]


def failed(outcome: GateOutcome) -> list[tuple[str, str]]:
    return [(r.rule, r.slice) for r in outcome.rules if r.status == "fail"]


def rule_on(outcome: GateOutcome, rule: str, slice_name: str) -> RuleResult:
    return next(r for r in outcome.rules if (r.rule, r.slice) == (rule, slice_name))


@pytest.fixture(scope="module")
def better() -> GateOutcome:
    """A candidate right 95% of the time against a champion right 80% of the time, everywhere."""
    return evaluate_gate(SLICES, model(SLICES, 0.95), model(SLICES, 0.80, seed=1), LABELS)


def test_better_candidate_passes_every_rule(better: GateOutcome) -> None:
    outcome = better
    assert outcome.passed, outcome.rules
    assert [(r.rule, r.slice) for r in outcome.rules] == [
        ("current_traffic", "recent"),
        ("class_lost", "recent"),
        ("no_forgetting", "past:2024-01"),
        ("class_lost", "past:2024-01"),
        ("no_forgetting", "past:2024-02"),
        ("class_lost", "past:2024-02"),
        ("no_forgetting", "gold"),
        ("class_lost", "gold"),
        ("net_gain", "current+past"),
        ("calibration", "recent"),
    ]
    assert all(r.status == "pass" and r.passed and not r.skipped for r in outcome.rules)
    assert [s.name for s in outcome.slices] == [s.name for s in SLICES]
    assert all(s.difference.low > 0 for s in outcome.slices)


def test_forgetting_one_past_window_fails_naming_it() -> None:
    champion = model(SLICES, 0.85)
    candidate = dict(champion)  # equal everywhere...
    candidate["past:2024-01"] = predictions(SLICES[1].y_true, 0.60)  # ...except one old window
    outcome = evaluate_gate(SLICES, candidate, champion, LABELS, STRICT)
    assert not outcome.passed
    # 30 more mistakes in 120: shown on the window, and on its classes one by one
    assert failed(outcome) == [("no_forgetting", "past:2024-01"), ("class_lost", "past:2024-01")]
    rule = next(r for r in outcome.rules if not r.passed)
    assert rule.status == "fail" and not rule.skipped
    assert rule.low <= rule.value <= rule.high < rule.threshold == pytest.approx(-0.03)
    assert rule.detail.endswith("the data show a drop beyond 0.030 — fail")


def test_a_drop_the_data_do_not_show_beyond_the_tolerance_passes() -> None:
    slices = [eval_slice("recent", "recent", 60), eval_slice("past:2024-02", "past", 120)]
    champion = model(slices, 0.85)
    one_more = {**champion, "past:2024-02": predictions(slices[1].y_true, 0.85 - 1 / 120)}
    outcome = evaluate_gate(slices, one_more, champion, LABELS)
    assert outcome.passed, outcome.rules
    assert -0.03 < rule_on(outcome, "no_forgetting", "past:2024-02").value < 0  # really worse, by one example

    # 3 more mistakes in 120: surely worse, but within the tolerance as far as the data show
    three_more = {**champion, "past:2024-02": predictions(slices[1].y_true, 0.85 - 3 / 120)}
    forgetting = rule_on(evaluate_gate(slices, three_more, champion, LABELS), "no_forgetting", "past:2024-02")
    assert forgetting.low < -0.03 < forgetting.value < forgetting.high <= 0
    assert forgetting.status == "pass"
    assert forgetting.detail.endswith("no evidence of a drop beyond 0.030 — pass")

    # 6 more: the estimate is a drop beyond the tolerance, the interval reaches back above it
    six_more = {**champion, "past:2024-02": predictions(slices[1].y_true, 0.85 - 6 / 120)}
    outcome = evaluate_gate(slices, six_more, champion, LABELS, STRICT)
    forgetting = rule_on(outcome, "no_forgetting", "past:2024-02")
    assert forgetting.low < forgetting.value < -0.03 < forgetting.high < 0
    assert forgetting.status == "undecided"
    assert "a drop beyond 0.030 that the data cannot confirm — undecided" in forgetting.detail
    assert outcome.passed  # undecided does not block: the recent slice decided
    strict = evaluate_gate(slices, six_more, champion, LABELS, GateRules(policy="strict", forget_tolerance=0.01))
    assert failed(strict) == [("no_forgetting", "past:2024-02")]


def test_dropping_on_recent_beyond_hold_tolerance_fails() -> None:
    champion = model(SLICES, 0.85)
    candidate = dict(champion)
    candidate["recent"] = predictions(SLICES[0].y_true, 0.75)  # 14 more mistakes in 140
    assert failed(evaluate_gate(SLICES, candidate, champion, LABELS))[0] == ("current_traffic", "recent")


def test_overconfident_candidate_fails_calibration() -> None:
    champion = model(SLICES, 0.85)  # confidence 0.85 at 85% right: ECE ~0
    candidate = model(SLICES, 0.85, confidence=0.99)  # same predictions, ECE ~0.14
    outcome = evaluate_gate(SLICES, candidate, champion, LABELS)
    assert failed(outcome) == [("calibration", "recent")]
    calibration = outcome.rules[-1]
    assert calibration.value == pytest.approx(0.14)
    assert calibration.low > calibration.threshold == pytest.approx(0.03, abs=1e-9)
    slightly = model(SLICES, 0.85, confidence=0.87)  # ECE +0.02: within the tolerance
    assert evaluate_gate(SLICES, slightly, champion, LABELS).passed


def test_first_model_must_beat_the_majority_class() -> None:
    y_true = np.array([0] * 60 + [1] * 25 + [2] * 15)  # majority class: 60%
    slices = [EvalSlice("all", "all", y_true), eval_slice("recent", "recent", 50)]
    good = {"all": predictions(y_true, 0.90), "recent": predictions(slices[1].y_true, 0.2)}
    outcome = evaluate_gate(slices, good, None, LABELS)
    assert outcome.passed
    assert [(r.rule, r.slice) for r in outcome.rules] == [("beats_majority", "all")]
    assert outcome.rules[0].threshold == pytest.approx(0.65)
    assert outcome.slices[0].champion is None and outcome.slices[0].difference is None

    majority_only = np.tile([0.7, 0.2, 0.1], (len(y_true), 1))
    outcome = evaluate_gate(slices, {**good, "all": majority_only}, None, LABELS)
    assert failed(outcome) == [("beats_majority", "all")]
    assert outcome.rules[0].value == pytest.approx(0.60)


def test_a_tiny_slice_is_undecided_and_does_not_block() -> None:
    slices = [eval_slice("recent", "recent", 60), eval_slice("past:2023-12", "past", 12)]
    champion = model(slices, 0.85)
    candidate = {**champion, "past:2023-12": predictions(slices[-1].y_true, 0.25)}  # far worse, on 12 examples
    outcome = evaluate_gate(slices, candidate, champion, LABELS, STRICT)
    assert outcome.passed, outcome.rules
    small = next(r for r in outcome.rules if r.slice == "past:2023-12")
    assert small.status == "undecided" and small.skipped and small.passed and small.value < small.threshold
    assert "undecided, 12 labels < min_slice_size 30" in small.detail
    assert outcome.slices[-1].candidate.n == 12
    assert not evaluate_gate(slices, candidate, champion, LABELS, GateRules(policy="strict", min_slice_size=10)).passed


def test_gate_without_any_evidence_fails() -> None:
    empty = [EvalSlice("recent", "recent", np.array([], dtype=int))]
    outcome = evaluate_gate(empty, {"recent": np.empty((0, 3))}, None, LABELS)
    assert not outcome.passed
    assert outcome.slices == []
    assert [r.rule for r in outcome.rules] == ["evaluation_data"]
    assert outcome.rules[0].status == "fail"
    assert outcome.rules[0].detail.startswith("undecided: not enough eval labels")
    assert not evaluate_gate([], {}, {}, LABELS).passed

    tiny = [eval_slice("all", "all", 5)]
    outcome = evaluate_gate(tiny, model(tiny, 1.0), None, LABELS)
    assert not outcome.passed
    assert [r.rule for r in outcome.rules] == ["beats_majority", "evaluation_data"]


def test_empty_slices_are_left_out_of_the_report() -> None:
    slices = [eval_slice("recent", "recent", 60), EvalSlice("past:2023-11", "past", np.array([], dtype=int))]
    probabilities = {**model(slices[:1], 0.9), "past:2023-11": np.empty((0, 3))}
    outcome = evaluate_gate(slices, probabilities, probabilities, LABELS)
    assert outcome.passed
    assert "past:2023-11" not in {s.name for s in outcome.slices} | {r.slice for r in outcome.rules}


def test_champion_that_knows_fewer_labels_is_padded() -> None:
    slices = [eval_slice("recent", "recent", 90), eval_slice("all", "all", 90)]
    # The champion predates "politics": two columns, and every politics example is a mistake.
    champion = {s.name: predictions(s.y_true, 1.0)[:, :2] for s in slices}
    for proba, y_true in zip(champion.values(), (s.y_true for s in slices), strict=True):
        proba[y_true == 2] = [0.5, 0.5]
    outcome = evaluate_gate(slices, model(slices, 1.0), champion, LABELS)
    assert outcome.passed, outcome.rules
    report = outcome.slices[0]
    assert report.champion.per_class_recall["politics"] == 0.0
    assert report.candidate.per_class_recall["politics"] == 1.0
    assert report.champion.accuracy == pytest.approx(2 / 3)


def test_only_a_sure_drop_fails() -> None:
    slices = [eval_slice("recent", "recent", 60), eval_slice("past:2024-01", "past", 40)]
    champion = model(slices, 0.9)
    slightly = {**champion, "past:2024-01": predictions(slices[1].y_true, 0.85)}  # 2 more mistakes in 40
    outcome = evaluate_gate(slices, slightly, champion, LABELS, STRICT)
    assert outcome.passed and rule_on(outcome, "no_forgetting", "past:2024-01").status == "undecided"
    much = {**champion, "past:2024-01": predictions(slices[1].y_true, 0.4)}
    outcome = evaluate_gate(slices, much, champion, LABELS, STRICT)
    assert failed(outcome)[0] == ("no_forgetting", "past:2024-01")
    rule, difference = rule_on(outcome, "no_forgetting", "past:2024-01"), outcome.slices[1].difference
    assert (rule.value, rule.low, rule.high) == (difference.estimate, difference.low, difference.high)


def test_an_interval_wider_than_both_tolerances_is_undecided() -> None:
    slices = [eval_slice("recent", "recent", 40), eval_slice("past:2024-01", "past", 40)]
    champion = model(slices, 0.7)
    # different mistakes on the same share of rows: no difference, but a wide interval
    candidate = {s.name: predictions(s.y_true, 0.7, seed=5) for s in slices}
    outcome = evaluate_gate(slices, candidate, champion, LABELS, GateRules(hold_tolerance=0.01, forget_tolerance=0.01))
    hold = outcome.rules[0]
    assert hold.low < -0.01 and hold.high > 0.01
    assert hold.status == "undecided" and hold.skipped and hold.passed
    assert "interval too wide" in hold.detail
    assert not outcome.passed  # nothing decided: no evidence either way
    assert outcome.rules[-1].rule == "evaluation_data"
    assert evaluate_gate(slices, candidate, champion, LABELS, GateRules(hold_tolerance=0.3, forget_tolerance=0.3)).passed


def test_a_lost_class_fails_whatever_the_slice_size() -> None:
    slices = [eval_slice("recent", "recent", 90), eval_slice("past1:labels 1-15", "past", 15)]
    champion = model(slices, 0.9)
    lost = predictions(slices[1].y_true, 0.9)
    lost[:, 0] += lost[:, 2]  # never predicts "politics" any more: its probability goes to "sport"
    lost[:, 2] = 0.0
    outcome = evaluate_gate(slices, {**champion, "past1:labels 1-15": lost}, champion, LABELS, STRICT)
    assert failed(outcome) == [("class_lost", "past1:labels 1-15")]
    assert not outcome.passed
    rule = rule_on(outcome, "class_lost", "past1:labels 1-15")
    assert rule.detail.startswith("recall politics 0.80 -> 0.00") and rule.detail.endswith("class forgotten, still in recent traffic — fail")
    # the same slice without the loss: too small to vouch for anything, so undecided
    kept = rule_on(evaluate_gate(slices, champion, champion, LABELS, STRICT), "class_lost", "past1:labels 1-15")
    assert kept.status == "undecided"


def test_accuracy_can_be_the_gate_metric() -> None:
    champion = model(SLICES, 0.85)
    candidate = {**champion, "recent": predictions(SLICES[0].y_true, 0.80)}
    outcome = evaluate_gate(SLICES, candidate, champion, LABELS, GateRules(metric="accuracy"))
    hold = outcome.rules[0]
    assert hold.status == "undecided"  # a drop of 0.05 the 140 labels cannot confirm beyond 0.03
    assert hold.value == pytest.approx(-0.05)
    assert hold.detail.startswith("accuracy 0.800 vs 0.850 (-0.050, 90% CI ")


def test_detail_reads_as_a_table_cell(better: GateOutcome) -> None:
    outcome = better
    number = r"\d\.\d{3}"
    signed = r"[+-]\d\.\d{3}"
    interval = rf"\({signed}, 90% CI {signed}\.\.{signed}\)"
    pattern = (
        rf"macro_f1 {number} vs {number} {interval}: better \(whole interval on the good side of 0\), "
        r"no evidence of a drop beyond 0\.030 — pass"
    )
    assert re.fullmatch(pattern, outcome.rules[0].detail), outcome.rules[0].detail
    assert re.fullmatch(
        rf"ECE {number} vs {number} {interval}: no evidence of a rise beyond 0\.030 — pass", outcome.rules[-1].detail
    ), outcome.rules[-1].detail


def test_missing_probabilities_for_a_slice_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="champion has no probabilities for slice 'gold'"):
        evaluate_gate(SLICES, model(SLICES, 0.9), model(SLICES[:3], 0.9), LABELS)


def test_rules_from_task_settings() -> None:
    assert GateRules.from_dict(None) == GateRules()
    rules = GateRules.from_dict({"metric": "accuracy", "min_slice_size": 50})
    assert (rules.metric, rules.min_slice_size, rules.hold_tolerance) == ("accuracy", 50, 0.03)
    # stored before the interval was always used: accepted, no effect
    assert GateRules.from_dict({"use_confidence_interval": True, "confidence": 0.9}) == GateRules(confidence=0.9)
    with pytest.raises(ValueError, match="unknown gate rule.*forget_tolerence.*min_size"):
        GateRules.from_dict({"forget_tolerence": 0.1, "min_size": 5, "metric": "accuracy"})
    with pytest.raises(ValueError, match="metric"):
        GateRules.from_dict({"metric": "f1"})
    with pytest.raises(ValueError, match="hold_tolerance"):
        GateRules.from_dict({"hold_tolerance": -0.1})
    with pytest.raises(ValueError, match="confidence"):
        GateRules.from_dict({"confidence": 95})


def test_outcome_is_json_serialisable(better: GateOutcome) -> None:
    stored = json.loads(json.dumps(better.to_dict()))
    assert stored["passed"] is True
    assert stored["rules"][0] == {
        "rule": "current_traffic",
        "slice": "recent",
        "status": "pass",
        "passed": True,
        "skipped": False,
        "value": pytest.approx(better.slices[0].difference.estimate),
        "low": pytest.approx(better.slices[0].difference.low),
        "high": pytest.approx(better.slices[0].difference.high),
        "threshold": -0.03,
        "detail": better.rules[0].detail,
        "weight": pytest.approx(140 / 380),
    }
    assert set(stored["slices"][0]["candidate"]["per_class_recall"]) == set(LABELS)
    assert stored["slices"][0]["candidate"]["accuracy"] == pytest.approx(0.95)
    assert set(stored["slices"][0]["difference"]) == {"estimate", "low", "high"}
    first = evaluate_gate(SLICES, model(SLICES, 0.9), None, LABELS)
    assert json.loads(json.dumps(first.to_dict()))["slices"][0]["champion"] is None
