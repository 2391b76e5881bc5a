"""Train → save → load for every mode on the real base encoder, checksums, head growth, LwF."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from driftloop.platform.errors import CorruptArtifact
from driftloop.platform.modeling.classifier import grow_head
from driftloop.platform.modeling.model import TextClassifier
from driftloop.platform.modeling.training import TrainingConfig, TrainingData, fit

LABELS = ["business", "entertainment", "politics", "sports", "tech"]


def data_from(headlines: list[tuple[str, str, str]], n: int, encoder, labels: list[str] = LABELS) -> TrainingData:  # type: ignore[no-untyped-def]
    rows = [r for r in headlines if r[2] in labels][:n]
    texts = [r[1] for r in rows]
    return TrainingData(texts, np.array([labels.index(r[2]) for r in rows]), encoder.embed(texts))


@pytest.mark.parametrize(("mode", "n", "epochs"), [("head", 200, None), ("full", 24, 1), ("lora", 24, 1)])
def test_each_mode_trains_saves_and_loads_the_same_model(mode: str, n: int, epochs: int | None, headlines, encoder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data = data_from(headlines, n, encoder)
    model = TextClassifier.fresh(mode, LABELS, encoder, seed=0)
    before = [p.detach().clone() for p in model.parameters()]
    report = fit(model, data, TrainingConfig(epochs=epochs, batch_size=8 if mode != "head" else None))
    assert report.epochs >= 1
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True)), "training changed nothing"

    probe = [h[1] for h in headlines[300:310]]
    expected = model.predict_proba(probe)
    artifact = model.save(tmp_path, "m1")
    assert not list(tmp_path.glob(".tmp-*")), "temporary folder left behind"
    loaded = TextClassifier.load(artifact.path, artifact.sha256, encoder)
    assert loaded.mode == mode and loaded.labels == LABELS
    np.testing.assert_allclose(loaded.predict_proba(probe), expected, atol=1e-5)


def test_head_mode_learns_as_well_as_logistic_regression(headlines, encoder) -> None:  # type: ignore[no-untyped-def]
    train = data_from(headlines, 400, encoder)
    model = TextClassifier.fresh("head", LABELS, encoder, seed=0)
    fit(model, train, TrainingConfig())
    held_out = headlines[1000:1200]
    features = encoder.embed([h[1] for h in held_out])
    truth = np.array([LABELS.index(h[2]) for h in held_out])
    ours = np.mean(model.predict_proba([h[1] for h in held_out], features).argmax(axis=1) == truth)
    reference = np.mean(LogisticRegression(max_iter=2000).fit(train.features, train.y).predict(features) == truth)
    assert ours > 0.5  # chance is 0.2
    assert ours >= reference - 0.03, (ours, reference)


def test_a_changed_artifact_is_refused(headlines, encoder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    model = TextClassifier.fresh("head", LABELS, encoder, seed=0)
    fit(model, data_from(headlines, 50, encoder), TrainingConfig(epochs=2))
    artifact = model.save(tmp_path, "m1")
    weights = artifact.path / "head.safetensors"
    raw = bytearray(weights.read_bytes())
    raw[-1] ^= 0xFF
    weights.write_bytes(bytes(raw))
    with pytest.raises(CorruptArtifact, match="does not match its recorded checksum"):
        TextClassifier.load(artifact.path, artifact.sha256, encoder)
    shutil.rmtree(artifact.path)
    with pytest.raises(CorruptArtifact, match="missing"):
        TextClassifier.load(artifact.path, artifact.sha256, encoder)


def test_head_grows_for_new_labels_keeping_what_it_knew() -> None:
    head = torch.nn.Linear(4, 2)
    grown = grow_head(head, 3, seed=0)
    assert grown.out_features == 3
    assert torch.equal(grown.weight[:2], head.weight) and torch.equal(grown.bias[:2], head.bias)
    assert torch.isclose(grown.bias[2], head.bias.mean())
    with pytest.raises(ValueError, match="cannot shrink"):
        grow_head(head, 1, seed=0)


def test_a_candidate_from_the_champion_predicts_old_classes_as_before(headlines, encoder) -> None:  # type: ignore[no-untyped-def]
    champion = TextClassifier.fresh("head", LABELS[:3], encoder, seed=0)
    fit(champion, data_from(headlines, 150, encoder, LABELS[:3]), TrainingConfig())
    candidate = champion.candidate("head", LABELS, seed=0)
    probe = [h[1] for h in headlines[500:540] if h[2] in LABELS[:3]]
    before = champion.predict_proba(probe).argmax(axis=1)
    after = candidate.predict_proba(probe)
    assert after.shape[1] == 5
    assert np.array_equal(after.argmax(axis=1), before)
    with pytest.raises(ValueError, match="must extend"):
        champion.candidate("head", ["x", *LABELS], seed=0)


def test_distillation_keeps_the_champion_s_old_knowledge(headlines, encoder) -> None:  # type: ignore[no-untyped-def]
    """New labels cover only two classes; LwF keeps the champion's view of the other three."""
    champion = TextClassifier.fresh("head", LABELS, encoder, seed=0)
    fit(champion, data_from(headlines, 300, encoder), TrainingConfig())
    narrow = data_from(headlines[600:], 120, encoder, ["business", "sports"])
    narrow.y = np.array([LABELS.index("business") if y == 0 else LABELS.index("sports") for y in narrow.y])
    teacher = np.log(np.clip(champion.predict_proba(narrow.texts, narrow.features), 1e-8, 1))

    probe = [h for h in headlines[1200:1500] if h[2] in ("entertainment", "politics", "tech")]
    truth = np.array([LABELS.index(h[2]) for h in probe])
    accuracy = {}
    for weight in (0.0, 5.0):
        student = champion.candidate("head", LABELS, seed=0)
        fit(student, TrainingData(narrow.texts, narrow.y, narrow.features, teacher), TrainingConfig(distill_weight=weight))
        accuracy[weight] = np.mean(student.predict_proba([h[1] for h in probe]).argmax(axis=1) == truth)
    assert accuracy[5.0] > accuracy[0.0] + 0.2, accuracy
