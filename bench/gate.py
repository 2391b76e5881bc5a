"""Does the gate refuse what is worse, and only that? False refusals and false acceptances.

    .venv/bin/python bench/gate.py [--seeds 20] [--sizes 30 60 120 250]

Per corpus (BBC News, 5 topics; health tweets, 16 outlets, a random 12,000 of them) and seed:
a champion is trained (``head`` mode on cached MiniLM embeddings, the product's
``TextClassifier`` and ``fit``) on a training draw, and five candidates against it:

- not worse: ``seed`` (same data, another seed), ``more-data`` (the same data plus half again);
- worse by a known amount: ``shuffled-30`` (30% of the training labels shuffled among
  themselves), ``class-dropped`` (one class's training labels removed), ``period-corrupted``
  (60% of one class's training labels moved to other classes; the past slice it is judged on
  is a "period" where that class is half the labels).

Each pair is gated on eval slices drawn from held-out labels: ``recent`` and ``past1`` of
``size`` labels each and ``all`` (both), for each size. The same outcome is judged by the old
rules (point estimates: hold 0.005, forget 0.02, ECE 0.02, min slice 20) and by the new ones
(non-inferiority on the paired bootstrap interval) at several tolerances. The true effect of
each worse candidate is its macro-F1 loss on the whole held-out pool (thousands of labels).

Reported: per scenario and size, the share of pairs refused (gate failed) and, for the new
rules, the share of the rule on the slice that matters (``past1``; ``recent`` for seed and
more-data) that was undecided. Embeddings are cached in bench/out/.
"""

import argparse
import json
import os
import platform
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from active_learning import Dataset, load  # bench/ is on sys.path when this runs as a script
from continual import load_corpus

from driftloop.platform.evaluation.gate import (
    EvalSlice,
    GateOutcome,
    RuleResult,
    evaluate_gate,
    has_evidence,
    non_inferiority,
)
from driftloop.platform.evaluation.metrics import Difference, macro_f1
from driftloop.platform.modeling.encoder import Encoder
from driftloop.platform.modeling.model import TextClassifier
from driftloop.platform.modeling.training import TrainingConfig, TrainingData, fit

SCENARIOS = ("seed", "more-data", "shuffled-30", "class-dropped", "period-corrupted")
NOT_WORSE = ("seed", "more-data")
TOLERANCES = (0.02, 0.03, 0.05)
TRAIN_SIZE = {"bbcnews": 600, "healthtweets": 2000}
TWEETS = 12_000
MIN_SLICE_SIZE = 30


@dataclass(frozen=True)
class Pair:
    corpus: str
    scenario: str
    seed: int
    candidate: TextClassifier
    champion: TextClassifier
    focus: int  # the class a worse candidate was made worse on (period-corrupted, class-dropped)
    true_loss: float  # champion - candidate macro-F1 on the whole eval pool


def tweet_sample(encoder: Encoder) -> Dataset:
    """A random 12,000 of the tweets, drawn and cached as the continual benchmark's ``--sample``
    draws them (its whole-corpus embeddings are used when cached: a minute instead of four)."""
    corpus = load_corpus(encoder, sample=TWEETS)
    names = sorted(set(corpus.labels))
    labels = np.array([names.index(label) for label in corpus.labels])
    return Dataset("healthtweets", corpus.texts, labels, names, np.asarray(corpus.features))


def train(data: Dataset, rows: np.ndarray, y: np.ndarray, seed: int, encoder: Encoder) -> TextClassifier:
    model = TextClassifier.fresh("head", data.label_names, encoder, seed)
    fit(model, TrainingData([data.texts[i] for i in rows], y, data.features[rows]), TrainingConfig(seed=seed))
    return model


def proba(model: TextClassifier, data: Dataset, rows: np.ndarray) -> np.ndarray:
    return model.predict_proba([data.texts[i] for i in rows], data.features[rows])


def pairs_for(
    data: Dataset, seed: int, pool: np.ndarray, train_rows: np.ndarray, extra: np.ndarray, encoder: Encoder
) -> list[Pair]:
    rng = np.random.default_rng([seed, 1])
    y = data.labels[train_rows]
    champion = train(data, train_rows, y, seed, encoder)
    focus = int(rng.integers(len(data.label_names)))
    other = seed + 1000

    shuffled = y.copy()
    picked = rng.permutation(len(y))[: round(0.3 * len(y))]
    shuffled[picked] = rng.permutation(shuffled[picked])
    kept = train_rows[y != focus]
    corrupted = y.copy()
    in_focus = np.flatnonzero(y == focus)
    moved = rng.permutation(in_focus)[: round(0.6 * len(in_focus))]
    corrupted[moved] = (focus + rng.integers(1, len(data.label_names), len(moved))) % len(data.label_names)
    with_extra = np.concatenate([train_rows, extra])
    candidates: dict[str, Callable[[], TextClassifier]] = {
        "seed": lambda: train(data, train_rows, y, other, encoder),
        "more-data": lambda: train(data, with_extra, data.labels[with_extra], other, encoder),
        "shuffled-30": lambda: train(data, train_rows, shuffled, other, encoder),
        "class-dropped": lambda: train(data, kept, data.labels[kept], other, encoder),
        "period-corrupted": lambda: train(data, train_rows, corrupted, other, encoder),
    }
    champion_f1 = macro_f1(data.labels[pool], proba(champion, data, pool))
    pairs = []
    for scenario, make in candidates.items():
        candidate = make()
        loss = champion_f1 - macro_f1(data.labels[pool], proba(candidate, data, pool))
        pairs.append(Pair(data.name, scenario, seed, candidate, champion, focus, float(loss)))
    return pairs


def slices_for(pair: Pair, data: Dataset, pool: np.ndarray, size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Rows of ``recent`` and ``past1``; a corrupted period's past slice is half its class."""
    rows = rng.permutation(pool)
    recent, rest = rows[:size], rows[size:]
    if pair.scenario == "period-corrupted":
        focus = rest[data.labels[rest] == pair.focus][: size // 2]
        others = rest[data.labels[rest] != pair.focus][: size - len(focus)]
        past = np.concatenate([focus, others])
    else:
        past = rest[:size]
    return {"recent": recent, "past1": past}


def gate(pair: Pair, data: Dataset, rows: dict[str, np.ndarray], seed: int) -> GateOutcome:
    rows = rows | {"all": np.concatenate([rows["recent"], rows["past1"]])}
    kinds = {"recent": "recent", "past1": "past", "all": "all"}
    slices = [EvalSlice(name, kinds[name], data.labels[r]) for name, r in rows.items()]  # type: ignore[arg-type]
    candidate = {name: proba(pair.candidate, data, r) for name, r in rows.items()}
    champion = {name: proba(pair.champion, data, r) for name, r in rows.items()}
    return evaluate_gate(slices, candidate, champion, data.label_names, seed=seed)


def old_rules_pass(outcome: GateOutcome) -> bool:
    """The gate before issue 12: point estimates, hold 0.005, forget 0.02, ECE 0.02, min slice 20."""
    verdicts = []
    for report in outcome.slices:
        if report.candidate.n < 20:
            continue
        if report.kind == "recent":
            verdicts.append(report.difference.estimate >= -0.005)
        elif report.kind in ("past", "gold"):
            verdicts.append(report.difference.estimate >= -0.02)
        else:
            verdicts.append(report.candidate.ece <= report.champion.ece + 0.02)
    return bool(verdicts) and all(verdicts)


def rejudged(outcome: GateOutcome, tolerance: float) -> list[RuleResult]:
    """Every rule again under another tolerance, from the intervals the gate computed."""
    return [replace(rule, status=_status(rule, outcome, tolerance)) for rule in outcome.rules if rule.rule != "evaluation_data"]


def _status(rule: RuleResult, outcome: GateOutcome, tolerance: float) -> str:
    if rule.rule == "class_lost":
        return rule.status
    n = next(s.candidate.n for s in outcome.slices if s.name == rule.slice)
    interval = Difference(rule.value, rule.low, rule.high)
    return non_inferiority(interval, tolerance, n, MIN_SLICE_SIZE, higher_is_better=rule.rule != "calibration")


def gate_passes(results: list[RuleResult]) -> bool:
    """As ``evaluate_gate`` decides: nothing failed, and something decided."""
    return all(r.status != "fail" for r in results) and has_evidence(results)


def report(
    refused: dict[tuple[str, str, int], list[bool]],
    undecided: dict[tuple[str, str, int], list[bool]],
    losses: dict[str, list[float]],
    n_pairs: int,
    sizes: list[int],
    started: float,
) -> None:
    print(f"\n{n_pairs} candidate/champion pairs, sizes {sizes}, confidence 0.95 (one-sided); "
          f"{platform.node()}, {os.cpu_count()} cores, {time.perf_counter() - started:.0f}s\n")
    print("True macro-F1 loss of each candidate against its champion on the whole held-out pool:")
    for scenario in SCENARIOS:
        values = losses[scenario]
        print(f"- {scenario}: {np.mean(values):+.3f} (min {np.min(values):+.3f}, max {np.max(values):+.3f})")
    print()
    configs = sorted({key[0] for key in refused}, key=lambda k: (k != "old", k))
    print("Error rate: refused share for the not-worse scenarios (false refusal), accepted share for")
    print("the worse ones (false acceptance); (u) the share undecided of the rule on the slice that matters.\n")
    print("| scenario | slice size | " + " | ".join(configs) + " |")
    print("|---|---:|" + "---:|" * len(configs))
    for scenario in SCENARIOS:
        for size in sizes:
            cells = []
            for key in configs:
                share = float(np.mean(refused[(key, scenario, size)]))
                error = share if scenario in NOT_WORSE else 1 - share
                note = f" ({np.mean(undecided[(key, scenario, size)]):.0%} u)" if key != "old" else ""
                cells.append(f"{error:.0%}{note}")
            print(f"| {scenario} | {size} | " + " | ".join(cells) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--seed-from", type=int, default=0, help="first seed: to split a run over processes")
    parser.add_argument("--save", type=Path, help="write the raw verdicts here (JSON), for --merge")
    parser.add_argument("--merge", type=Path, nargs="+", help="only print the table of these saved runs")
    parser.add_argument("--sizes", type=int, nargs="+", default=[30, 60, 120, 250])
    parser.add_argument("--corpora", nargs="+", default=["bbcnews", "healthtweets"])
    args = parser.parse_args()

    # A linear head's steps are tiny: threads cost more in handing over than they save.
    torch.set_num_threads(1)
    started = time.perf_counter()
    if args.merge:
        saved = [json.loads(path.read_text()) for path in args.merge]
        refused, undecided, losses = (_merge([run[part] for run in saved]) for part in ("refused", "undecided", "losses"))
        report(refused, undecided, losses, sum(run["pairs"] for run in saved), args.sizes, started)
        return
    encoder = Encoder.load()
    refused: dict[tuple[str, str, int], list[bool]] = defaultdict(list)
    undecided: dict[tuple[str, str, int], list[bool]] = defaultdict(list)
    losses: dict[str, list[float]] = defaultdict(list)
    n_pairs = 0
    for name in args.corpora:
        data = load(name, encoder) if name == "bbcnews" else tweet_sample(encoder)
        for seed in range(args.seed_from, args.seed_from + args.seeds):
            rows = np.random.default_rng(seed).permutation(len(data.texts))
            size = TRAIN_SIZE[name]
            train_rows, extra, pool = rows[:size], rows[size : size + size // 2], rows[size + size // 2 :]
            for pair in pairs_for(data, seed, pool, train_rows, extra, encoder):
                n_pairs += 1
                losses[pair.scenario].append(pair.true_loss)
                for size_ in args.sizes:
                    drawn = slices_for(pair, data, pool, size_, np.random.default_rng([seed, size_]))
                    outcome = gate(pair, data, drawn, seed)
                    focus = "recent" if pair.scenario in NOT_WORSE else "past1"
                    refused[("old", pair.scenario, size_)].append(not old_rules_pass(outcome))
                    rule = "no_forgetting" if focus == "past1" else "hold_recent"
                    for tolerance in TOLERANCES:
                        key = f"new, tolerance {tolerance:.2f}"
                        results = rejudged(outcome, tolerance)
                        refused[(key, pair.scenario, size_)].append(not gate_passes(results))
                        focused = next(r for r in results if (r.rule, r.slice) == (rule, focus))
                        undecided[(key, pair.scenario, size_)].append(focused.status == "undecided")
            print(f"{name} seed {seed} done, {time.perf_counter() - started:.0f}s", flush=True)
            if seed % 5 == 4:  # a table so far, in case a long run is cut short
                report(refused, undecided, losses, n_pairs, args.sizes, started)
    report(refused, undecided, losses, n_pairs, args.sizes, started)
    if args.save:
        raw = {"refused": refused, "undecided": undecided}
        flat = {part: {"|".join(map(str, key)): value for key, value in table.items()} for part, table in raw.items()}
        args.save.write_text(json.dumps(flat | {"losses": losses, "pairs": n_pairs}))


def _merge(tables: list[dict[str, list]]) -> dict:  # type: ignore[type-arg]
    """Saved runs' lists joined, keys back to (rules, scenario, size) where they were tuples."""
    merged: dict = defaultdict(list)  # type: ignore[type-arg]
    for table in tables:
        for key, values in table.items():
            parts = key.split("|")
            merged[(parts[0], parts[1], int(parts[2])) if len(parts) == 3 else key] += values
    return merged


if __name__ == "__main__":
    main()
