from driftloop.platform.labels.aggregation import majority_vote


def test_majority_wins_with_its_share() -> None:
    vote = majority_vote(["a", "b", "a"])
    assert (vote.label, round(vote.agreement, 3), vote.n) == ("a", 0.667, 3)


def test_tie_is_unresolved() -> None:
    assert majority_vote(["a", "b"]).label is None
    assert majority_vote([]).label is None
