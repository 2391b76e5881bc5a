"""Majority vote over annotators' answers. Pure functions: the labeling side reuses them."""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Aggregate:
    label: str | None  # None when the vote is tied: the text needs another opinion
    agreement: float  # share of answers that chose the winning (or a tied) label
    n: int


def majority_vote(answers: Sequence[str]) -> Aggregate:
    if not answers:
        return Aggregate(None, 0.0, 0)
    ranked = Counter(answers).most_common()
    top_count = ranked[0][1]
    tied = len(ranked) > 1 and ranked[1][1] == top_count
    return Aggregate(None if tied else ranked[0][0], top_count / len(answers), len(answers))
