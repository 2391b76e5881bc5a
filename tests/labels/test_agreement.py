import math

import krippendorff
import numpy as np
import pytest

from driftloop.platform.labels.agreement import agreement


def test_two_annotators_get_cohens_kappa_over_the_texts_both_answered() -> None:
    answers = [(1, "ann", "x"), (1, "bob", "x"), (2, "ann", "y"), (2, "bob", "y"), (3, "ann", "x"), (3, "bob", "y")]
    answers.append((4, "ann", "x"))  # answered once: says nothing about agreement
    result = agreement(answers)
    assert result is not None and (result.method, result.items, result.annotators) == ("cohen_kappa", 3, 2)
    # observed 2/3, chance (2/3·1/3 + 1/3·2/3) = 4/9 → kappa = (2/3 − 4/9) / (1 − 4/9) = 0.4
    assert result.value == pytest.approx(0.4)


def test_perfect_agreement_is_one_and_disagreement_lowers_it() -> None:
    same = [(t, a, "xy"[t % 2]) for t in range(6) for a in ("ann", "bob")]
    assert agreement(same).value == pytest.approx(1.0)  # type: ignore[union-attr]
    flipped = [*same[:-1], (5, "bob", "x")]
    assert agreement(flipped).value < 1.0  # type: ignore[operator, union-attr]


def test_three_annotators_get_krippendorffs_alpha_with_missing_answers() -> None:
    answers = [(1, "a", "x"), (1, "b", "x"), (1, "c", "x"), (2, "a", "y"), (2, "b", "y"), (3, "a", "x"), (3, "c", "y")]
    result = agreement(answers)
    assert result is not None and (result.method, result.items, result.annotators) == ("krippendorff_alpha", 3, 3)
    reference = krippendorff.alpha(
        reliability_data=np.array([[0, 1, 0], [0, 1, np.nan], [0, np.nan, 1]], dtype=float), level_of_measurement="nominal"
    )
    assert result.value == pytest.approx(reference) and not math.isnan(result.value)


def test_no_overlap_or_a_single_label_has_no_defined_agreement() -> None:
    assert agreement([(1, "a", "x"), (2, "b", "y")]) is None
    single = agreement([(1, "a", "x"), (1, "b", "x")])
    assert single is not None and single.value is None and single.items == 1
