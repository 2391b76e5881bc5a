"""The class-incremental corrections of a linear head (class_incremental.py) and their wiring in
``fit``: what each does to the head, that leaving them off changes nothing, and the replay size
that grows with a class shift."""

import numpy as np
import pytest
import torch

from driftloop.platform.modeling.class_incremental import (
    align_weights,
    apply_bias_correction,
    class_roles,
    fit_bias_correction,
    shift_aware_replay_size,
)
from driftloop.platform.modeling.model import TextClassifier
from driftloop.platform.modeling.training import TrainingConfig, TrainingData, fit

LABELS = ["business", "entertainment", "politics", "sports", "tech"]


def test_roles_are_the_classes_of_the_new_rows_and_those_only_replay_holds() -> None:
    y = np.array([0, 0, 3, 1, 2, 3])
    replayed = np.array([False, False, False, True, True, True])
    roles = class_roles(y, replayed)
    assert roles.new.tolist() == [0, 3]
    assert roles.old.tolist() == [1, 2]  # 3 is replayed too, but it has new rows: it is new
    assert roles.shifted
    assert not class_roles(y, np.zeros(6, dtype=bool)).shifted  # nothing replayed: nothing to correct
    with pytest.raises(ValueError, match="replayed marks 2 rows but there are 6 labels"):
        class_roles(y, np.array([True, False]))


def test_weight_aligning_gives_the_new_classes_the_old_classes_mean_norm() -> None:
    head = torch.nn.Linear(8, 4)
    with torch.no_grad():
        head.weight.copy_(torch.randn(4, 8, generator=torch.Generator().manual_seed(0)))
        head.weight[2:] *= 5  # the new classes' rows grew long, as they do on a shifted mix
    before = head.weight.detach().clone()
    bias = head.bias.detach().clone()
    roles = class_roles(np.array([2, 3, 0, 1]), np.array([False, False, True, True]))

    gamma = align_weights(head, roles)

    norms = head.weight.norm(dim=1)
    assert norms[2:].mean().item() == pytest.approx(norms[:2].mean().item(), rel=1e-5)
    assert gamma == pytest.approx((before[:2].norm(dim=1).mean() / before[2:].norm(dim=1).mean()).item(), rel=1e-5)
    assert torch.equal(head.weight[:2], before[:2]), "old rows must not move"
    assert torch.equal(head.bias, bias)
    # their directions are kept: only the scale of the new rows changes
    torch.testing.assert_close(head.weight[2:], before[2:] * gamma)


def test_bias_correction_undoes_an_offset_on_the_new_classes_logits() -> None:
    """Held-out logits where the new classes (2, 3) are favoured by +4: a balanced set's old
    examples go to them. The fitted α, β move them back, and folding them into the head gives the
    same logits as correcting them."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(4), 50)
    clean = rng.normal(0, 1, (200, 4)) + 4 * np.eye(4)[y]
    biased = clean.copy()
    biased[:, 2:] += 4.0
    roles = class_roles(np.array([2, 3, 0, 1]), np.array([False, False, True, True]))
    logits = torch.from_numpy(biased).float()
    assert np.mean(biased.argmax(axis=1) == y) < 0.8

    alpha, beta = fit_bias_correction(logits, y, roles)

    corrected = biased.copy()
    corrected[:, 2:] = alpha * biased[:, 2:] + beta
    assert beta < -1.0
    assert np.mean(corrected.argmax(axis=1) == y) > 0.95
    head = torch.nn.Linear(3, 4)
    features = torch.randn(5, 3)
    with torch.no_grad():
        expected = head(features)
        expected[:, 2:] = alpha * expected[:, 2:] + beta
        apply_bias_correction(head, roles, alpha, beta)
        torch.testing.assert_close(head(features), expected)


def test_bias_correction_without_an_old_held_out_row_corrects_nothing() -> None:
    roles = class_roles(np.array([2, 3, 0, 1]), np.array([False, False, True, True]))
    assert fit_bias_correction(torch.randn(6, 4), np.array([2, 3, 2, 3, 2, 3]), roles) == (1.0, 0.0)


def test_the_replay_size_grows_only_when_the_new_labels_leave_known_classes_out() -> None:
    known = {"a", "b", "c", "d"}
    assert shift_aware_replay_size({"a": 50, "b": 50, "c": 50, "d": 50}, known, 1.0) == 200
    # two classes arrive, two only replay can teach: as many rows for each as a present one has
    assert shift_aware_replay_size({"a": 100, "b": 60}, known, 0.5) == 160
    assert shift_aware_replay_size({"a": 100, "b": 60}, known, 1.5) == 240  # the ratio already gives more
    assert shift_aware_replay_size({"a": 90}, known, 1.0) == 270


def _shifted_data(headlines, encoder) -> TrainingData:  # type: ignore[no-untyped-def]
    """New labels of two topics, replayed ones of the other three."""
    new = [h for h in headlines if h[2] in ("sports", "tech")][:80]
    old = [h for h in headlines if h[2] not in ("sports", "tech")][:60]
    rows = new + old
    texts = [r[1] for r in rows]
    return TrainingData(
        texts, np.array([LABELS.index(r[2]) for r in rows]), encoder.embed(texts), replayed=np.arange(len(rows)) >= len(new)
    )


def test_corrections_off_leave_the_fit_as_it_was(headlines, encoder) -> None:  # type: ignore[no-untyped-def]
    data = _shifted_data(headlines, encoder)
    unmarked = TrainingData(data.texts, data.y, data.features)
    models = [TextClassifier.fresh("head", LABELS, encoder, seed=0) for _ in range(2)]
    off = TrainingConfig(epochs=20, keep_old_classes=False)
    reports = [fit(models[0], data, off), fit(models[1], unmarked, off)]
    assert reports[0].class_bias == {} and reports[1].class_bias == {}
    assert torch.equal(models[0].head.weight, models[1].head.weight)
    assert torch.equal(models[0].head.bias, models[1].head.bias)


def test_weight_aligning_in_fit_rescales_the_new_topics(headlines, encoder) -> None:  # type: ignore[no-untyped-def]
    data = _shifted_data(headlines, encoder)
    plain = TextClassifier.fresh("head", LABELS, encoder, seed=0)
    aligned = TextClassifier.fresh("head", LABELS, encoder, seed=0)
    fit(plain, data, TrainingConfig(epochs=20, keep_old_classes=False))
    report = fit(aligned, data, TrainingConfig(epochs=20, keep_old_classes=False, weight_aligning=True))
    gamma = report.class_bias["gamma"]
    new, old = [LABELS.index("sports"), LABELS.index("tech")], [0, 1, 2]
    norms = aligned.head.weight.norm(dim=1)
    assert norms[new].mean().item() == pytest.approx(norms[old].mean().item(), rel=1e-5)
    torch.testing.assert_close(aligned.head.weight[new], plain.head.weight[new] * gamma)
    assert torch.equal(aligned.head.weight[old], plain.head.weight[old])


def _round_after_a_shift(headlines, encoder, config: TrainingConfig) -> tuple[TextClassifier, TextClassifier, float]:  # type: ignore[no-untyped-def]
    """A champion trained on three topics' headlines; a candidate from it on the two other topics
    with a small replayed sample of the first three (4 headlines each), as a round after a class
    shift has. Returns the champion, the candidate, and the candidate's accuracy on held-out
    headlines of the three old topics."""
    old_topics = ("business", "entertainment", "politics")
    old = [h for h in headlines[:1500] if h[2] in old_topics]
    champion = TextClassifier.fresh("head", LABELS, encoder, seed=0)
    first = old[:240]
    fit(champion, TrainingData([h[1] for h in first], np.array([LABELS.index(h[2]) for h in first]), encoder.embed([h[1] for h in first])), TrainingConfig())
    new = [h for h in headlines[:1500] if h[2] not in old_topics][:200]
    replayed = [h for topic in old_topics for h in [r for r in first if r[2] == topic][:4]]
    rows = new + replayed
    candidate = champion.candidate("head", LABELS, seed=0)
    data = TrainingData(
        [h[1] for h in rows], np.array([LABELS.index(h[2]) for h in rows]), encoder.embed([h[1] for h in rows]),
        replayed=np.arange(len(rows)) >= len(new),
    )
    fit(candidate, data, config)
    held_out = old[240:540]
    predicted = candidate.predict_proba([h[1] for h in held_out], encoder.embed([h[1] for h in held_out])).argmax(axis=1)
    return champion, candidate, float(np.mean(predicted == np.array([LABELS.index(h[2]) for h in held_out])))


def test_keeping_the_old_classes_rows_forgets_less_after_a_class_shift(headlines, encoder) -> None:  # type: ignore[no-untyped-def]
    _, _, plain = _round_after_a_shift(headlines, encoder, TrainingConfig(keep_old_classes=False))
    champion, candidate, kept = _round_after_a_shift(headlines, encoder, TrainingConfig())  # the default keeps them
    old = [0, 1, 2]
    assert torch.equal(candidate.head.weight[old], champion.head.weight[old]), "the old topics' rows must be the champion's"
    assert torch.equal(candidate.head.bias[old], champion.head.bias[old])
    assert not torch.equal(candidate.head.weight[3:], champion.head.weight[3:]), "the new topics must still learn"
    assert kept > plain + 0.03, (kept, plain)
