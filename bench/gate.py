"""Does the gate refuse what is worse, and only that, on the evidence a round now has (issue 22)?

    .venv/bin/python bench/gate.py [--seeds 10-29] [--sizes 30 60 120 300] [--corpora bbcnews healthtweets]
    .venv/bin/python bench/gate.py --merge bench/out/gate-*.json [--rule hold_tolerance=0.02] [--no-provisional] [--floor 0.01 [--floor-all]]
    .venv/bin/python bench/gate.py --merge bench/out/gate-*-0-*.json --sweep 0.01 0.02 0.03 0.05

What a round judges (platform/modeling/rounds.py): the ``n`` train labels that arrived since the
champion's data cutoff, the champion's predictions on them direct (it never saw them), the
candidate's *cross-fitted* (``cross_validation.cross_fit``: k = min(5, n) folds, each predicted
by a model started as the candidate was and fitted on every training row but the fold's), each
label weighted by recency (``slices.recency_weights``, half-life 200 labels), the classes in
traffic those of the new labels and of the newest 200 (``slices.traffic_classes``), default
``GateRules()`` (policy ``current``). The task keeps no eval split here, so the ``current``
slice is the only one: no past slice, no gold, hence no ``no_forgetting``, ``net_gain`` or
``class_lost`` (they judge past and gold slices); ``current_traffic`` and ``calibration`` decide.

Per corpus (BBC News, 5 topics; health tweets, 16 outlets, a random 12,000 of them), seed and
size ``n`` (the labels since the cutoff): the corpus is shuffled by the seed, its first 600 rows
are the stream (i.i.d.), the rest the ground-truth pool (1,625 BBC articles, 5,000 tweets); the
champion is trained (``head`` mode on cached MiniLM embeddings, the product's ``TextClassifier``
and ``fit``, ``TrainingConfig(seed)``) on the stream's first ``max(n, 100)`` labels ("old"), and
the next ``n`` labels are new. Three candidates, each ``champion.candidate("head", ...)`` fitted
on old + new, all gated with ``superset=True`` (the worse two would claim it in the product too):

- ``more-data``: the labels as they are (meant to be not worse);
- ``flipped-30``: 30% of the training labels (old and new) flipped to another class;
- ``class-missing``: every training label of one class removed, a class among the new labels
  (so in traffic). Its new labels of that class are not training rows: the candidate never saw
  them, so its own predictions on them are out-of-sample; the other new labels are cross-fitted.

The evidence labels are always the annotators' (correct) ones: a corruption is in what the
candidate was taught. Ground truth: candidate macro-F1 minus champion macro-F1 on the pool;
"truly worse" below -0.01, "not worse" from -0.01. A case is judged only where its truth agrees
with its scenario (a more-data candidate that is truly worse, or a corrupted one that is not, is
counted, "of N", but is neither a refusal nor an acceptance error). Reported per corpus and
size: false refusal (truly-not-worse ``more-data`` candidates refused), false acceptance
(truly-worse ``flipped-30`` / ``class-missing`` candidates passed; and apart, those worse than
the gate's own hold tolerance, which it is built to refuse), the share of provisional passes,
and the mean true difference of each scenario. ``npr-reuters`` (the binary health-tweet pair of
bench/active_learning.py, 1,782 tweets) runs too; its pool of about 1,200 is a noisier truth.

Each case's evidence (labels, weights, both models' probabilities, traffic classes, true
difference) is saved (``--save``) so that ``--merge`` can re-judge it under other rules
(``--rule name=value``, ``--no-provisional``, ``--floor``; ``--sweep`` tries a grid) without
training anything again.
"""

import argparse
import json
import os
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from active_learning import Dataset, load  # bench/ is on sys.path when this runs as a script
from continual import load_corpus

from driftloop.platform.evaluation.gate import EvalSlice, GateOutcome, GateRules, evaluate_gate
from driftloop.platform.evaluation.metrics import macro_f1
from driftloop.platform.evaluation.slices import recency_weights, traffic_classes
from driftloop.platform.modeling.cross_validation import cross_fit
from driftloop.platform.modeling.encoder import Encoder
from driftloop.platform.modeling.model import TextClassifier
from driftloop.platform.modeling.training import TrainingConfig, TrainingData, fit

SCENARIOS = ("more-data", "flipped-30", "class-missing")
WORSE = ("flipped-30", "class-missing")
TRULY_WORSE = -0.01  # a candidate whose pool macro-F1 is this far below the champion's is worse
OLD_MIN = 100  # the champion learned max(n, OLD_MIN) labels
FLIPPED = 0.3
TWEETS = 12_000
STREAM = 600  # the old and new labels of the largest default size, 300 + 300
POOL = 5_000  # the ground-truth pool: the rest of the corpus, at most this many


@dataclass(frozen=True)
class Case:
    """One candidate against its champion: the evidence the gate sees and the truth it does not."""

    corpus: str
    seed: int
    size: int
    scenario: str
    label_names: list[str]
    y: np.ndarray  # the new labels (annotators')
    weights: np.ndarray
    candidate: np.ndarray  # cross-fitted probabilities on the new labels
    champion: np.ndarray
    traffic: list[str]
    true_difference: float  # candidate - champion macro-F1 on the pool

    def to_json(self) -> dict:  # type: ignore[type-arg]
        return {
            "corpus": self.corpus, "seed": self.seed, "size": self.size, "scenario": self.scenario,
            "label_names": self.label_names, "y": self.y.tolist(), "weights": self.weights.round(6).tolist(),
            "candidate": self.candidate.round(5).tolist(), "champion": self.champion.round(5).tolist(),
            "traffic": self.traffic, "true_difference": self.true_difference,
        }

    @classmethod
    def from_json(cls, raw: dict) -> "Case":  # type: ignore[type-arg]
        arrays = {key: np.asarray(raw[key], dtype=np.int64 if key == "y" else float) for key in ("y", "weights", "candidate", "champion")}
        return cls(**(raw | arrays))


def tweet_sample(encoder: Encoder) -> Dataset:
    """A random 12,000 of the tweets, as the continual benchmark's ``--sample`` draws them."""
    corpus = load_corpus(encoder, sample=TWEETS)
    names = sorted(set(corpus.labels))
    labels = np.array([names.index(label) for label in corpus.labels])
    return Dataset("healthtweets", corpus.texts, labels, names, np.asarray(corpus.features))


def training_data(data: Dataset, rows: np.ndarray, y: np.ndarray) -> TrainingData:
    return TrainingData([data.texts[i] for i in rows], y, data.features[rows])


def proba(model: TextClassifier, data: Dataset, rows: np.ndarray) -> np.ndarray:
    return model.predict_proba([data.texts[i] for i in rows], data.features[rows])


def cases_for(data: Dataset, seed: int, sizes: list[int], encoder: Encoder) -> Iterator[Case]:
    rows = np.random.default_rng(seed).permutation(len(data.texts))
    # The stream's length does not depend on --sizes (up to 300), so a size's cases do not either.
    stream_length = max(STREAM, *(max(size, OLD_MIN) + size for size in sizes))
    stream, pool = rows[:stream_length], rows[stream_length:][:POOL]
    config = TrainingConfig(seed=seed)
    champions: dict[int, tuple[TextClassifier, float]] = {}
    for size in sizes:
        n_old = max(size, OLD_MIN)
        old, new = stream[:n_old], stream[n_old : n_old + size]
        if n_old not in champions:  # sizes under OLD_MIN share one champion
            model = TextClassifier.fresh("head", data.label_names, encoder, seed)
            fit(model, training_data(data, old, data.labels[old]), config)
            champions[n_old] = (model, macro_f1(data.labels[pool], proba(model, data, pool)))
        champion, champion_f1 = champions[n_old]
        # Arrival order: the champion's labels, then the new ones; weights and traffic as the round computes them.
        order = [(int(r), data.label_names[data.labels[r]]) for r in np.concatenate([old, new])]
        half_life = GateRules().half_life_labels
        recency = recency_weights(order, half_life)
        weights = np.array([recency[int(r)] for r in new])
        traffic = sorted(traffic_classes(order, [data.label_names[data.labels[r]] for r in new], half_life))
        champion_proba = proba(champion, data, new)
        for scenario in SCENARIOS:
            train_rows, y = _taught(scenario, data, old, new, np.random.default_rng([seed, size, 7]))
            candidate = champion.candidate("head", data.label_names, seed)
            fit(candidate, training_data(data, train_rows, y), config)
            evidence = _cross_fitted(champion, candidate, data, train_rows, y, new, config)
            true_difference = macro_f1(data.labels[pool], proba(candidate, data, pool)) - champion_f1
            yield Case(
                data.name, seed, size, scenario, data.label_names, data.labels[new], weights,
                evidence, champion_proba, traffic, float(true_difference),
            )


def _taught(scenario: str, data: Dataset, old: np.ndarray, new: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The candidate's training rows and the labels it is taught on them."""
    rows = np.concatenate([old, new])
    y = data.labels[rows].copy()
    if scenario == "flipped-30":
        flipped = rng.permutation(len(y))[: round(FLIPPED * len(y))]
        y[flipped] = (y[flipped] + rng.integers(1, len(data.label_names), len(flipped))) % len(data.label_names)
    elif scenario == "class-missing":
        missing = rng.choice(np.unique(data.labels[new]))
        keep = y != missing
        rows, y = rows[keep], y[keep]
    return rows, y


def _cross_fitted(
    champion: TextClassifier, candidate: TextClassifier, data: Dataset, train_rows: np.ndarray, y: np.ndarray, new: np.ndarray, config: TrainingConfig
) -> np.ndarray:
    """The candidate's probabilities on the new labels as ``rounds._cross_fitted`` makes them:
    the product's ``cross_fit``, each fold's model started from the champion's weights as the
    candidate was and fitted on every training row but the fold's. A new label the candidate
    did not train on (class-missing) needs no fold: its own prediction is out-of-sample."""
    position = {int(r): i for i, r in enumerate(train_rows)}
    trained = np.array([int(r) in position for r in new])
    out = proba(candidate, data, new)
    held = np.array([position[int(r)] for r in new[trained]])

    def start() -> TextClassifier:
        return champion.candidate("head", data.label_names, config.seed)

    out[trained] = cross_fit(start, training_data(data, train_rows, y), held, config)
    return out


def judge(case: Case, rules: GateRules) -> GateOutcome:
    """The gate's verdict on the case's evidence, as ``rounds._gate`` asks for it."""
    current = EvalSlice("current", "recent", case.y, case.weights)
    return evaluate_gate(
        [current], {"current": case.candidate}, {"current": case.champion}, case.label_names, rules,
        traffic_classes=set(case.traffic), superset=True,
    )


@dataclass(frozen=True)
class Variant:
    """A gate setting to try on saved cases, beyond ``GateRules``: ``provisional`` False judges
    with ``superset=False``; ``floor`` refuses a pass (``floor_all``: any pass; else only a
    provisional one) whose recency-weighted estimate on current traffic is below -floor.
    ``estimate``: no evidence needed: a candidate passes when no rule fails and its current
    estimate is -floor or above (a superset candidate's rule with the calibration estimate left
    out of the provisional pass, the macro-F1 estimate in)."""

    provisional: bool = True
    floor: float | None = None
    floor_all: bool = False
    estimate: bool = False

    def __str__(self) -> str:
        if self.estimate:
            return f"no rule fails and current estimate >= -{self.floor or 0.0:.2f}"
        floor = "" if self.floor is None else f", floor -{self.floor:.2f} on {'every' if self.floor_all else 'a provisional'} pass"
        return ("provisional" if self.provisional else "no provisional") + floor


def verdict(outcome: GateOutcome, variant: Variant) -> tuple[bool, bool]:
    """(passed, provisionally) under ``variant``, from the outcome judged with ``superset=True``."""
    current = next(r for r in outcome.rules if r.rule == "current_traffic")
    if variant.estimate:
        failed = any(r.status == "fail" for r in outcome.rules if r.rule != "evaluation_data")
        decided = any(r.status in ("pass", "fail") for r in outcome.rules if r.rule != "evaluation_data")
        return not failed and current.value >= -(variant.floor or 0.0), not decided
    if outcome.provisional and not variant.provisional:
        return False, False
    floored = variant.floor is not None and current.value < -variant.floor and (variant.floor_all or outcome.provisional)
    if outcome.passed and floored:
        return False, False
    return outcome.passed, outcome.provisional


def table(cases: list[Case], rules: GateRules, variant: Variant = Variant()) -> str:
    """Per corpus and size: false refusal of not-worse more-data, false acceptance of the truly
    worse flipped-30 / class-missing (and how many of those worse beyond the hold tolerance
    passed), each with its provisional passes; counts in brackets."""
    cells: dict[tuple[str, int, str], list[tuple[bool, bool, float]]] = defaultdict(list)
    truths: dict[tuple[str, int, str], list[float]] = defaultdict(list)
    for case in cases:
        key = (case.corpus, case.size, case.scenario)
        truths[key].append(case.true_difference)
        worse = case.true_difference < TRULY_WORSE
        if worse != (case.scenario in WORSE):  # judged only where the truth matches the scenario's claim
            continue
        cells[key].append((*verdict(judge(case, rules), variant), case.true_difference))
    lines = [
        "| corpus | n | more-data: false refusal | provisional | flipped-30: false acceptance | provisional | "
        "class-missing: false acceptance | provisional | true Δ macro-F1 (more-data / flipped / missing) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for corpus, size in sorted({(c.corpus, c.size) for c in cases}):
        row = [corpus, str(size)]
        for scenario in SCENARIOS:
            verdicts = cells[(corpus, size, scenario)]
            total = len(truths[(corpus, size, scenario)])
            errors = sum(passed != (scenario == "more-data") for passed, _, _ in verdicts)
            provisionals = sum(p for _, p, _ in verdicts)
            cell = f"{_share(errors, len(verdicts))} ({errors}/{len(verdicts)} of {total})"
            if scenario in WORSE:  # the gate is built to accept a loss under its tolerance: those beyond it apart
                beyond = [passed for passed, _, truth in verdicts if truth < -rules.hold_tolerance]
                cell += f"; loss > {rules.hold_tolerance:.2f}: {sum(beyond)}/{len(beyond)}"
            row.append(cell)
            row.append(f"{_share(provisionals, len(verdicts))}")
        row.append(" / ".join(f"{np.mean(truths[(corpus, size, s)]):+.3f}" for s in SCENARIOS))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def sweep(cases: list[Case], tolerances: list[float]) -> str:
    """For each hold tolerance and variant, the worst error over the sizes, per corpus: false
    refusal (more-data), false acceptance (flipped-30, class-missing), each with its errors over
    all sizes pooled (errors/judged); a star where all three are at or under 5% at every size."""
    judged = [c for c in cases if (c.true_difference < TRULY_WORSE) == (c.scenario in WORSE)]
    variants = [Variant()] + [Variant(True, floor, every) for every in (False, True) for floor in (0.03, 0.02, 0.01, 0.0)]
    variants += [Variant(False)] + [Variant(False, floor, True) for floor in (0.02, 0.01, 0.0)]
    variants += [Variant(floor=floor, estimate=True) for floor in (0.03, 0.02, 0.01, 0.0)]
    corpora = sorted({c.corpus for c in judged})
    lines = [
        "| hold tolerance | variant | " + " | ".join(f"{corpus}: FR / FA flipped / FA missing" for corpus in corpora) + " |",
        "|---:|---|" + "---|" * len(corpora),
    ]
    for tolerance in tolerances:
        rules = GateRules(hold_tolerance=tolerance)
        outcomes = [judge(case, rules) for case in judged]
        for variant in variants:
            errors: dict[tuple[str, int, str], list[bool]] = defaultdict(list)
            for case, outcome in zip(judged, outcomes, strict=True):
                passed, _ = verdict(outcome, variant)
                errors[(case.corpus, case.size, case.scenario)].append(passed != (case.scenario == "more-data"))
            row = [f"{tolerance:.2f}", str(variant)]
            for corpus in corpora:
                cells = [[v for (c, _, s), v in errors.items() if c == corpus and s == scenario] for scenario in SCENARIOS]
                worst = [max((float(np.mean(v)) for v in cell), default=0.0) for cell in cells]
                pooled = [f"{sum(map(sum, cell))}/{sum(map(len, cell))}" for cell in cells]
                row.append(" / ".join(f"{w:.0%} ({p})" for w, p in zip(worst, pooled, strict=True)) + (" ★" if max(worst) <= 0.05 else ""))
            lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def _share(count: int, total: int) -> str:
    return f"{count / total:.0%}" if total else "—"


def seeds_argument(values: list[str]) -> list[int]:
    """``0-9`` and ``12`` alike: a range is inclusive."""
    seeds: list[int] = []
    for value in values:
        first, _, last = value.partition("-")
        seeds += list(range(int(first), int(last or first) + 1))
    return seeds


def rules_argument(values: list[str]) -> GateRules:
    settings: dict[str, object] = {}
    for value in values:
        name, _, raw = value.partition("=")
        settings[name] = raw if name == "policy" else (float(raw) if "." in raw else int(raw))
    return GateRules.from_dict(settings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", nargs="+", default=["10-29"], help="seeds or inclusive ranges (tune on 0-9, report on 10-29)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[30, 60, 120, 300], help="labels since the champion's cutoff")
    parser.add_argument("--corpora", nargs="+", default=["bbcnews", "healthtweets"], choices=["bbcnews", "healthtweets", "npr-reuters"])
    parser.add_argument("--save", type=Path, help="write every case's evidence here (JSON, after each seed), for --merge")
    parser.add_argument("--merge", type=Path, nargs="+", help="only judge the cases saved in these files")
    parser.add_argument("--rule", nargs="+", default=[], help="gate rule overrides, name=value (default GateRules())")
    parser.add_argument("--no-provisional", action="store_true", help="judge without the provisional pass (superset=False)")
    parser.add_argument("--floor", type=float, help="refuse a provisional pass whose current estimate is below -this")
    parser.add_argument("--floor-all", action="store_true", help="--floor refuses any pass, not only a provisional one")
    parser.add_argument("--sweep", type=float, nargs="+", help="with --merge: worst errors for these hold tolerances x variants")
    args = parser.parse_args()
    rules = rules_argument(args.rule)
    variant = Variant(not args.no_provisional, args.floor, args.floor_all)

    # A linear head's steps are tiny: threads cost more in handing over than they save.
    torch.set_num_threads(1)
    started = time.perf_counter()
    if args.merge:
        cases = [Case.from_json(raw) for path in args.merge for raw in json.loads(path.read_text())]
        print(f"{len(cases)} cases from {len(args.merge)} files; {rules}; {variant}\n")
        print(sweep(cases, args.sweep) if args.sweep else table(cases, rules, variant))
        return
    encoder = Encoder.load()
    cases = []
    for name in args.corpora:
        # the binary pair comes from the same cached 12,000 tweets as the served benchmark's
        data = tweet_sample(encoder) if name == "healthtweets" else load(name, encoder, 12_000 if name == "npr-reuters" else None)
        for seed in seeds_argument(args.seeds):
            cases += cases_for(data, seed, args.sizes, encoder)
            print(f"{name} seed {seed} done, {time.perf_counter() - started:.0f}s", flush=True)
            if args.save:
                args.save.write_text(json.dumps([case.to_json() for case in cases]))
    print(f"\n{len(cases)} cases, {os.cpu_count()} cores, {time.perf_counter() - started:.0f}s; {rules}; {variant}\n")
    print(table(cases, rules, variant))


if __name__ == "__main__":
    main()
