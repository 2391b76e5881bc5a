"""The gate on real classifiers (BBC headlines, the real encoder, ``head`` models): a twin of the
champion that differs by its seed passes; a candidate trained on 30% shuffled labels is refused
on a large eval slice; one whose data lost a class is refused even on a small one."""

from collections.abc import Iterator

import numpy as np
import pytest
import torch

from driftloop.platform.evaluation.gate import EvalSlice, GateOutcome, evaluate_gate
from driftloop.platform.modeling.model import TextClassifier
from driftloop.platform.modeling.training import TrainingConfig, TrainingData, fit

TOPICS = ["business", "entertainment", "politics", "sports", "tech"]
N_TRAIN, N_EVAL = 500, 1000


class Corpus:
    def __init__(self, headlines, encoder) -> None:  # type: ignore[no-untyped-def]
        rows = headlines[: N_TRAIN + N_EVAL]
        self.texts = [text for _, text, _ in rows]
        self.y = np.array([TOPICS.index(topic) for _, _, topic in rows])
        self.features = encoder.embed(self.texts)
        self.encoder = encoder
        order = np.random.default_rng(0).permutation(len(rows))
        self.train_rows, self.eval_rows = order[:N_TRAIN], order[N_TRAIN:]

    def model(self, seed: int, labels: np.ndarray | None = None, rows: np.ndarray | None = None) -> TextClassifier:
        rows = self.train_rows if rows is None else rows
        labels = self.y[rows] if labels is None else labels
        model = TextClassifier.fresh("head", TOPICS, self.encoder, seed)
        fit(model, TrainingData([self.texts[i] for i in rows], labels, self.features[rows]), TrainingConfig(seed=seed))
        return model

    def gate(self, candidate: TextClassifier, champion: TextClassifier, size: int, draw: int = 0) -> GateOutcome:
        """``recent`` and ``past1`` of ``size`` eval labels each, and ``all`` of both."""
        picked = np.random.default_rng(draw).permutation(self.eval_rows)
        rows = {"recent": picked[:size], f"past1:labels 1-{size}": picked[size : 2 * size]}
        rows["all"] = np.concatenate(list(rows.values()))
        kinds = ["recent", "past", "all"]
        slices = [EvalSlice(name, kind, self.y[r]) for (name, r), kind in zip(rows.items(), kinds, strict=True)]  # type: ignore[arg-type]

        def proba(model: TextClassifier) -> dict[str, np.ndarray]:
            return {name: model.predict_proba([self.texts[i] for i in r], self.features[r]) for name, r in rows.items()}

        return evaluate_gate(slices, proba(candidate), proba(champion), TOPICS)


@pytest.fixture(scope="module")
def corpus(headlines, encoder) -> Iterator[Corpus]:  # type: ignore[no-untyped-def]
    # A linear head's steps are tiny: on a busy machine, torch's threads cost more than they save.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield Corpus(headlines, encoder)
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def champion(corpus: Corpus) -> TextClassifier:
    return corpus.model(seed=0)


def test_a_twin_that_differs_by_its_seed_passes(corpus: Corpus, champion: TextClassifier) -> None:
    twin = corpus.model(seed=1)
    for size in (30, 120, 500):
        outcome = corpus.gate(twin, champion, size)
        assert outcome.passed, (size, [r.detail for r in outcome.rules])
        assert all(r.status != "fail" for r in outcome.rules)


def test_a_candidate_trained_on_30_percent_shuffled_labels(corpus: Corpus, champion: TextClassifier) -> None:
    rng = np.random.default_rng(7)
    labels = corpus.y[corpus.train_rows].copy()
    picked = rng.permutation(len(labels))[: round(0.3 * len(labels))]
    labels[picked] = rng.permutation(labels[picked])
    noisy = corpus.model(seed=1, labels=labels)
    large = corpus.gate(noisy, champion, 500)
    assert not large.passed, [r.detail for r in large.rules]
    # on small slices it may slip through, but rarely
    passed = [corpus.gate(noisy, champion, 30, draw).passed for draw in range(10)]
    assert sum(passed) <= 2, passed


def test_a_candidate_whose_data_lost_a_class_is_refused(corpus: Corpus, champion: TextClassifier) -> None:
    without_tech = corpus.train_rows[corpus.y[corpus.train_rows] != TOPICS.index("tech")]
    narrow = corpus.model(seed=1, rows=without_tech)
    for size in (60, 120):  # at 30, a class may have fewer than the 5 labels class_lost judges from
        outcome = corpus.gate(narrow, champion, size)
        assert not outcome.passed
        lost = [r for r in outcome.rules if r.rule == "class_lost" and r.status == "fail"]
        assert lost and "tech" in lost[0].detail, [r.detail for r in outcome.rules]
