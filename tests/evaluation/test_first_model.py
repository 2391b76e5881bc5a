"""The cross-validated first-model rule's statistics, on made-up predictions."""

import numpy as np

from driftloop.platform.evaluation.first_model import CrossValidation, beats_majority_cv, folds, n_folds
from driftloop.platform.evaluation.gate import GateRules


def test_folds_follow_the_smallest_class_between_two_and_five() -> None:
    assert n_folds(np.array([0] * 9 + [1] * 3)) == 3
    assert n_folds(np.array([0] * 20 + [1] * 20)) == 5
    assert n_folds(np.array([0] * 5 + [1])) == 2
    y = np.array([0] * 6 + [1] * 4 + [2] * 4)
    for train, held_out in folds(y, seed=0):
        assert set(y[held_out]) == {0, 1, 2} and not set(train) & set(held_out)


def test_a_model_that_learned_passes_and_the_majority_guess_does_not() -> None:
    y = np.array([0] * 12 + [1] * 8 + [2] * 6)
    learned = y.copy()
    learned[:3] = 1  # a few mistakes
    passed = beats_majority_cv(CrossValidation(y, learned, 5, "head"), 5, GateRules())
    assert passed.passed and passed.low > 0 and passed.threshold == 0.0 and passed.status == "pass"

    majority = beats_majority_cv(CrossValidation(y, np.zeros_like(y), 5, "head"), 5, GateRules())
    assert not majority.passed and majority.low <= 0 and majority.status == "fail"


def test_a_head_stand_in_for_a_full_candidate_says_so() -> None:
    y = np.array([0, 1] * 10)
    rule = beats_majority_cv(CrossValidation(y, y, 5, "head", stands_in_for="full"), 4, GateRules())
    assert "evidence for the full candidate" in rule.detail and "4 < min_slice_size 30" in rule.detail
