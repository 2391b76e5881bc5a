"""Inter-annotator agreement of a task: Cohen's kappa when exactly two annotators overlap,
Krippendorff's alpha (nominal) beyond; both chance-corrected, 1 = perfect, 0 = chance.

Only texts answered by at least two annotators say anything about agreement; the rest are left
out. Kappa comes from scikit-learn, alpha from the ``krippendorff`` package.
"""

import math
from collections.abc import Iterable
from dataclasses import dataclass

import krippendorff
import numpy as np
from sklearn.metrics import cohen_kappa_score


@dataclass(frozen=True)
class Agreement:
    method: str  # "cohen_kappa" | "krippendorff_alpha"
    value: float | None  # None when undefined (e.g. every answer was the same single label)
    items: int  # texts with two or more answers
    annotators: int


def agreement(answers: Iterable[tuple[int, str, str]]) -> Agreement | None:
    """``answers`` are (text id, annotator, label) of submitted annotations; None when no text
    has two answers yet."""
    by_text: dict[int, dict[str, str]] = {}
    for text_id, annotator, label in answers:
        by_text.setdefault(text_id, {})[annotator] = label
    shared = {text_id: votes for text_id, votes in by_text.items() if len(votes) >= 2}
    if not shared:
        return None
    annotators = sorted({a for votes in shared.values() for a in votes})
    labels = sorted({label for votes in shared.values() for label in votes.values()})
    method = "cohen_kappa" if len(annotators) == 2 else "krippendorff_alpha"
    if len(labels) < 2:  # chance agreement is total: both measures are undefined
        return Agreement(method, None, len(shared), len(annotators))
    if len(annotators) == 2:
        first, second = annotators
        pairs = [(votes[first], votes[second]) for votes in shared.values()]
        value = float(cohen_kappa_score([a for a, _ in pairs], [b for _, b in pairs], replace_undefined_by=np.nan))
        return Agreement("cohen_kappa", _defined(value), len(shared), 2)
    code = {label: float(i) for i, label in enumerate(labels)}
    matrix = np.full((len(annotators), len(shared)), np.nan)
    for column, votes in enumerate(shared.values()):
        for row, annotator in enumerate(annotators):
            if annotator in votes:
                matrix[row, column] = code[votes[annotator]]
    value = float(krippendorff.alpha(reliability_data=matrix, level_of_measurement="nominal"))
    return Agreement("krippendorff_alpha", _defined(value), len(shared), len(annotators))


def _defined(value: float) -> float | None:
    return None if math.isnan(value) else value
