"""A first model before the eval split can decide: cross-validation on the training labels,
provisional until the eval split can judge it; and a one-class stream that has nothing to learn.
Real BBC headlines, the real encoder, head mode."""


import pytest
from sqlalchemy import func, select

from driftloop.platform.errors import InvalidInput
from driftloop.platform.modeling import registry
from driftloop.platform.store.engine import session_scope
from driftloop.platform.store.models import Job, Label, ModelVersion, Split
from driftloop.platform.tasks import get_task
from tests.learning_loop import Loop


def eval_labels(loop: Loop) -> int:
    with session_scope(loop.engine) as session:
        task_id = get_task(session, loop.task).id
        return session.scalar(select(func.count()).select_from(Label).where(Label.task_id == task_id, Label.split == Split.eval))


def versions(loop: Loop) -> list[registry.VersionInfo]:
    with session_scope(loop.engine) as session:
        return registry.list_versions(session, loop.task)


def test_thirty_labels_over_five_classes_give_a_provisional_first_champion(loop: Loop) -> None:
    loop.label(loop.headlines[:30])
    assert eval_labels(loop) < 20  # the eval split alone could not decide: every rule would be skipped

    result = loop.train()

    assert result.promoted and result.provisional and result.init == "scratch", result.gate.rules
    decisive = [r for r in result.gate.rules if not r.skipped]
    assert [r.rule for r in decisive] == ["beats_majority_cv"]
    assert decisive[0].passed and decisive[0].low > 0  # the lower bound of accuracy - majority rate
    assert "fold CV" in decisive[0].detail and "majority class" in decisive[0].detail
    assert loop.champion_version() == 1
    [v1] = versions(loop)
    assert v1.provisional and v1.metrics["cross_validation"]["lower_bound"] > 0


def test_a_provisional_champion_is_re_judged_on_the_labels_it_never_saw(loop: Loop) -> None:
    loop.label(loop.headlines[:30])
    assert loop.train().provisional

    # The next candidate learns every label by the first model's recipe (a superset of the
    # provisional champion's data), and is gated against it on the labels the champion never
    # saw: the new train labels, its own predictions on them cross-fitted, and the new eval labels.
    loop.label(loop.headlines[30:60])
    second = loop.train()
    assert second.init == "scratch" and second.n_new > 40
    current = next(s for s in second.gate.slices if s.name == "current")
    assert current.champion is not None and current.candidate.n == 30  # 24 train labels + 6 eval labels since v1
    assert "beats_majority_cv" not in [r.rule for r in second.gate.rules]
    rule = next(r for r in second.gate.rules if r.rule == "current_traffic")
    assert rule.status == "pass", second.gate.rules  # decided on 30 labels: v2 is judged, not provisional
    assert second.promoted and not second.provisional
    v1, v2 = versions(loop)
    assert not v2.provisional and v2.metrics["n"] == eval_labels(loop)  # its figures: the whole eval split

    # v2 was judged: the next round steps from it
    loop.label(loop.headlines[60:120])
    third = loop.train()
    assert third.init == "champion v2"


def test_a_single_class_stream_has_nothing_to_learn(loop: Loop) -> None:
    loop.label([h for h in loop.headlines if h[2] == "sports"][:30])

    with pytest.raises(InvalidInput, match="one class so far: nothing to learn yet") as raised:
        loop.train()

    assert type(raised.value).__name__ == "NothingToLearn"
    with session_scope(loop.engine) as session:
        assert session.scalar(select(func.count()).select_from(ModelVersion)) == 0
        # refused before a job exists, as a submission is (a queued round's job fails with the same error)
        assert session.scalar(select(func.count()).select_from(Job)) == 0
