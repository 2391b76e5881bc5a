"""The two gate policies on constructed cases (issue 22): ``current`` decides for today's traffic
and weighs forgetting as a bounded cost; ``strict`` refuses any shown loss on the past.

The models are synthetic probability matrices whose accuracy per slice is set exactly (see
test_gate.py's ``predictions``); recency weights are given per label as the round computes them.
"""

import numpy as np
import pytest

from driftloop.platform.evaluation.gate import EvalSlice, GateRules, evaluate_gate
from tests.evaluation.test_gate import LABELS, eval_slice, failed, model, predictions, rule_on

pytestmark = pytest.mark.filterwarnings("error")

CURRENT, STRICT = GateRules(policy="current"), GateRules(policy="strict")


def weighted(name: str, kind: str, n: int, weight: float) -> EvalSlice:
    plain = eval_slice(name, kind, n)
    return EvalSlice(name, kind, plain.y_true, np.full(n, weight))  # type: ignore[arg-type]


def drifted() -> tuple[list[EvalSlice], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """A candidate much better on today's traffic and somewhat worse on an old window (12 more
    mistakes in 120: shown on the window, not on any one class of 40 examples)."""
    slices = [weighted("current", "recent", 150, 1.0), weighted("past1", "past", 120, 0.25)]
    champion = {"current": predictions(slices[0].y_true, 0.70), "past1": predictions(slices[1].y_true, 0.85)}
    candidate = {"current": predictions(slices[0].y_true, 0.92), "past1": predictions(slices[1].y_true, 0.75)}
    return slices, candidate, champion


def test_better_now_and_worse_on_an_old_slice_passes_under_current_and_fails_under_strict() -> None:
    slices, candidate, champion = drifted()
    current = evaluate_gate(slices, candidate, champion, LABELS, CURRENT)
    assert current.passed, current.rules
    forgetting = next(r for r in current.rules if r.rule == "no_forgetting")
    assert forgetting.status == "notice" and forgetting.high < -0.03  # the loss is shown, and reported
    assert "a cost, weighed in net_gain at 0.17" in forgetting.detail  # 120 × 0.25 of 150 + 30
    net = next(r for r in current.rules if r.rule == "net_gain")
    assert net.status == "pass" and net.low > 0
    assert net.value == pytest.approx(150 / 180 * current.slices[0].difference.estimate + 30 / 180 * current.slices[1].difference.estimate)

    strict = evaluate_gate(slices, candidate, champion, LABELS, STRICT)
    assert failed(strict) == [("no_forgetting", "past1")]
    assert "net_gain" not in {r.rule for r in strict.rules}


def test_a_loss_on_the_past_that_outweighs_the_gain_now_fails_net_gain() -> None:
    slices, candidate, champion = drifted()
    recent_past = [slices[0], weighted("past1", "past", 120, 1.0)]  # the window is as recent as today's labels
    candidate = {**candidate, "current": predictions(slices[0].y_true, 0.74), "past1": predictions(slices[1].y_true, 0.55)}
    outcome = evaluate_gate(recent_past, candidate, champion, LABELS, CURRENT)
    assert ("net_gain", "current+past") in failed(outcome)


def test_worse_on_current_traffic_fails_under_both_policies() -> None:
    slices, _, champion = drifted()
    worse = {"current": predictions(slices[0].y_true, 0.55), "past1": champion["past1"]}
    for rules in (CURRENT, STRICT):
        assert ("current_traffic", "current") in failed(evaluate_gate(slices, worse, champion, LABELS, rules))


def test_a_candidate_trained_on_flipped_labels_fails() -> None:
    # cross-fitted predictions of a candidate whose training labels were 30% flipped: it errs
    # where the champion is right, on about a third of today's labels
    slices, _, champion = drifted()
    flipped = {"current": predictions(slices[0].y_true, 0.50, seed=3), "past1": predictions(slices[1].y_true, 0.60, seed=3)}
    outcome = evaluate_gate(slices, flipped, champion, LABELS, CURRENT, superset=True)
    assert not outcome.passed and not outcome.provisional
    assert ("current_traffic", "current") in failed(outcome)


def lost_politics(slices: list[EvalSlice], champion: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    lost = champion["past1"].copy()
    lost[:, 0] += lost[:, 2]  # never predicts "politics" any more
    lost[:, 2] = 0.0
    return {**champion, "current": predictions(slices[0].y_true, 0.95), "past1": lost}


def test_losing_a_class_still_in_traffic_fails() -> None:
    slices, _, champion = drifted()
    candidate = lost_politics(slices, champion)
    outcome = evaluate_gate(slices, candidate, champion, LABELS, CURRENT, traffic_classes={"sport", "politics"})
    assert ("class_lost", "past1") in failed(outcome)
    assert "politics" in rule_on(outcome, "class_lost", "past1").detail


def test_losing_a_class_gone_from_traffic_passes_with_a_notice() -> None:
    slices, _, champion = drifted()
    candidate = lost_politics(slices, champion)
    outcome = evaluate_gate(slices, candidate, champion, LABELS, CURRENT, traffic_classes={"sport", "tech"})
    assert outcome.passed, outcome.rules
    notice = rule_on(outcome, "class_lost", "past1")
    assert notice.status == "notice" and notice.passed
    assert notice.detail.startswith("recall politics") and "absent from recent traffic — notice, not a veto" in notice.detail
    # under strict the same loss is a veto
    assert ("class_lost", "past1") in failed(evaluate_gate(slices, candidate, champion, LABELS, STRICT, traffic_classes={"sport", "tech"}))


def test_a_lost_class_on_the_gold_set_is_a_veto_whatever_the_traffic() -> None:
    slices = [weighted("current", "recent", 150, 1.0), eval_slice("gold", "gold", 60)]
    champion = model(slices, 0.85)
    lost = champion["gold"].copy()
    lost[:, 0] += lost[:, 2]
    lost[:, 2] = 0.0
    outcome = evaluate_gate(slices, {**champion, "gold": lost}, champion, LABELS, CURRENT, traffic_classes={"sport"})
    assert ("class_lost", "gold") in failed(outcome) and ("no_forgetting", "gold") in failed(outcome)


def test_nothing_decidable_and_a_superset_candidate_passes_provisionally() -> None:
    slices = [weighted("current", "recent", 24, 1.0)]  # under min_slice_size: nothing can decide
    champion = {"current": predictions(slices[0].y_true, 0.75)}
    candidate = {"current": predictions(slices[0].y_true, 0.79)}
    outcome = evaluate_gate(slices, candidate, champion, LABELS, CURRENT, superset=True)
    assert outcome.passed and outcome.provisional
    assert outcome.rules[-1].rule == "evaluation_data" and outcome.rules[-1].detail.startswith("provisional")
    # not a superset (another recipe, other data): no evidence is no reason to promote
    refused = evaluate_gate(slices, candidate, champion, LABELS, CURRENT, superset=False)
    assert not refused.passed and not refused.provisional
    # strict never promotes on no evidence
    assert not evaluate_gate(slices, candidate, champion, LABELS, STRICT, superset=True).passed


def test_no_provisional_pass_when_the_estimate_points_to_harm() -> None:
    slices = [weighted("current", "recent", 24, 1.0)]
    champion = {"current": predictions(slices[0].y_true, 0.80)}
    harmful = {"current": predictions(slices[0].y_true, 0.62)}  # a drop of ~0.2 that 24 labels cannot confirm
    outcome = evaluate_gate(slices, harmful, champion, LABELS, CURRENT, superset=True)
    assert not outcome.passed and not outcome.provisional
    assert outcome.rules[0].status == "undecided" and outcome.rules[0].value < -0.03


def test_recency_weights_decide_which_labels_count() -> None:
    # today's traffic: the newest 100 labels, where the candidate is better; 100 older ones in the
    # same slice where it is worse. Weighted by recency, the newest decide.
    y = np.arange(200) % 3
    old_part, new_part = slice(0, 100), slice(100, 200)
    champion_proba = np.vstack([predictions(y[old_part], 0.90), predictions(y[new_part], 0.60)])
    candidate_proba = np.vstack([predictions(y[old_part], 0.70), predictions(y[new_part], 0.90)])
    unweighted = [EvalSlice("current", "recent", y)]
    recency = [EvalSlice("current", "recent", y, np.r_[np.full(100, 0.05), np.ones(100)])]
    plain = evaluate_gate(unweighted, {"current": candidate_proba}, {"current": champion_proba}, LABELS)
    weighed = evaluate_gate(recency, {"current": candidate_proba}, {"current": champion_proba}, LABELS)
    assert weighed.rules[0].value > plain.rules[0].value + 0.05
    assert weighed.rules[0].status == "pass" and weighed.rules[0].low > 0


def test_a_shown_recall_drop_on_a_served_class_fails_and_on_a_gone_class_is_a_notice() -> None:
    slices = [weighted("current", "recent", 150, 1.0), weighted("past1", "past", 150, 0.1)]
    champion = {s.name: predictions(s.y_true, 0.9) for s in slices}
    y = slices[1].y_true
    worse = champion["past1"].copy()
    politics = np.flatnonzero((y == 2) & (worse.argmax(axis=1) == 2))[:25]  # recall 0.9 -> ~0.4, never 0
    worse[politics] = worse[politics][:, [2, 1, 0]]
    candidate = {"current": predictions(slices[0].y_true, 0.95), "past1": worse}
    served = evaluate_gate(slices, candidate, champion, LABELS, CURRENT, traffic_classes=set(LABELS))
    rule = rule_on(served, "class_lost", "past1")
    assert rule.status == "fail" and "politics" in rule.detail and "drop CI" in rule.detail
    gone = evaluate_gate(slices, candidate, champion, LABELS, CURRENT, traffic_classes={"sport", "tech"})
    assert gone.passed and rule_on(gone, "class_lost", "past1").status == "notice"


def test_a_shown_loss_on_the_past_needs_a_positive_net_gain() -> None:
    # today's gain and the past loss weigh about the same: the net estimate is about 0, its
    # interval cannot tell, but the loss on the past is shown: nothing pays for it
    slices = [weighted("current", "recent", 60, 1.0), weighted("past1", "past", 120, 0.5)]
    champion = {"current": predictions(slices[0].y_true, 0.80), "past1": predictions(slices[1].y_true, 0.85)}
    candidate = {"current": predictions(slices[0].y_true, 0.88), "past1": predictions(slices[1].y_true, 0.75)}
    outcome = evaluate_gate(slices, candidate, champion, LABELS, CURRENT)
    net = next(r for r in outcome.rules if r.rule == "net_gain")
    assert net.value <= 0 and net.status == "fail" and "does not outweigh" in net.detail


def test_a_calibration_estimate_on_a_tiny_slice_does_not_block_a_provisional_pass() -> None:
    slices = [weighted("current", "recent", 12, 1.0)]
    champion = {"current": predictions(slices[0].y_true, 0.75)}
    confident = {"current": predictions(slices[0].y_true, 0.75, confidence=0.99)}  # ECE up by ~0.24, on 12 labels
    outcome = evaluate_gate(slices, confident, champion, LABELS, CURRENT, superset=True)
    calibration = next(r for r in outcome.rules if r.rule == "calibration")
    assert calibration.status == "undecided" and calibration.value > 0.03
    assert outcome.passed and outcome.provisional
