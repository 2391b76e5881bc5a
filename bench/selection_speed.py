"""Time to pick 100 texts from pools of 100,000 and 1,000,000 vectors.

    .venv/bin/python bench/selection_speed.py [--sizes 100000 1000000] [--budget 100] [--repeats 1]
        [--cases hybrid "hybrid (representative)" ...]   # the baselines always run

Pool: synthetic clustered vectors (1,000 Gaussian clusters on the unit sphere, 384-d, float32,
seeded, cached in bench/out/) with Dirichlet probabilities over 16 classes for the
uncertainty part. Each case runs in its own process through the product's ``select`` (strategy
plus the template: near-duplicate guard, ranks), and reports wall seconds and the process's
peak resident memory (VmHWM; the pool itself included: 1.5 GB at 1M). Baselines, in the same run, at
the same budget: the textbook numpy greedy k-center (full Euclidean distance from every point
to each new center, then the running minimum), and the same algorithm written well in numpy
(one BLAS mat-vec per step), which is the fair one for ``kcenter``; the run also checks that
``kcenter``'s traversal picks the same rows as that baseline.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

OUT = Path(__file__).parent / "out"
DIM, CLUSTERS, CLASSES = 384, 1_000, 16


def pool(n: int) -> tuple[np.ndarray, np.ndarray]:
    vectors_path, proba_path = OUT / f"pool-{n}.npy", OUT / f"pool-{n}-proba.npy"
    if not vectors_path.exists():
        OUT.mkdir(exist_ok=True)
        rng = np.random.default_rng(0)
        centers = rng.normal(size=(CLUSTERS, DIM)).astype(np.float32)
        centers /= np.linalg.norm(centers, axis=1, keepdims=True)
        vectors = np.empty((n, DIM), dtype=np.float32)
        for start in range(0, n, 100_000):  # in chunks: float64 noise for 1M rows would need 3 GB
            rows = min(100_000, n - start)
            chunk = centers[rng.integers(CLUSTERS, size=rows)] + 0.3 * rng.normal(size=(rows, DIM)).astype(np.float32) / np.sqrt(DIM)
            vectors[start : start + rows] = chunk / np.linalg.norm(chunk, axis=1, keepdims=True)
        np.save(vectors_path, vectors)
        np.save(proba_path, rng.dirichlet(np.full(CLASSES, 0.3), size=n).astype(np.float32))
    return np.load(vectors_path), np.load(proba_path)


def numpy_k_center(vectors: np.ndarray, budget: int, seed: int = 0) -> list[int]:
    picks = [int(np.random.default_rng(seed).integers(len(vectors)))]
    nearest = np.linalg.norm(vectors - vectors[picks[0]], axis=1)
    for _ in range(budget - 1):
        picks.append(int(np.argmax(nearest)))
        nearest = np.minimum(nearest, np.linalg.norm(vectors - vectors[picks[-1]], axis=1))
    return picks


def numpy_k_center_matvec(vectors: np.ndarray, budget: int, seed: int = 0) -> list[int]:
    """The same greedy k-center written well in plain numpy: one BLAS mat-vec per step
    (cosine distance on normalised vectors), no (n, d) temporary."""
    picks = [int(np.random.default_rng(seed).integers(len(vectors)))]
    nearest = 1.0 - vectors @ vectors[picks[0]]
    for _ in range(budget - 1):
        picks.append(int(np.argmax(nearest)))
        np.minimum(nearest, 1.0 - vectors @ vectors[picks[-1]], out=nearest)
    return picks


BASELINES = ["numpy k-center", "numpy k-center (mat-vec)"]
STRATEGIES = {  # case name: the product's strategy and its options
    "hybrid": ("hybrid", {}),
    "kmeans": ("kmeans", {}),
    "kcenter": ("kcenter", {}),
    "hybrid (representative)": ("hybrid", {"within_cluster": "representative"}),  # opt-in: not run by default
}
CASES = ["hybrid", "kmeans", "kcenter", *BASELINES]


def run_case(name: str, n: int, budget: int) -> dict[str, float]:
    """One measurement, in this (child) process. The product's modules are imported before the
    clock starts (importing FAISS and the package takes about 0.3 s, which no baseline pays).
    The mat-vec case then checks, untimed, that the product's traversal (``greedy_k_center``,
    without the template) picks the same rows."""
    from driftloop.platform.selection.base import SelectionContext
    from driftloop.platform.selection.coreset import greedy_k_center
    from driftloop.platform.selection.picking import get_strategy, select

    vectors, proba = pool(n)
    started = time.perf_counter()
    if name == "numpy k-center":
        picked = len(numpy_k_center(vectors, budget))
    elif name == "numpy k-center (mat-vec)":
        baseline_picks = numpy_k_center_matvec(vectors, budget)
        picked = len(baseline_picks)
    else:
        context = SelectionContext(np.arange(n, dtype=np.int64), vectors, proba, np.zeros((0, DIM), dtype=np.float32))
        strategy, options = STRATEGIES[name]
        picked = len(select(get_strategy(strategy, **options), context, budget))
    seconds = time.perf_counter() - started
    assert picked == budget, (name, picked)
    result = {"seconds": seconds, "peak_mb": _peak_mb()}
    if name == "numpy k-center (mat-vec)":
        result["same_picks"] = float(greedy_k_center(vectors, budget)[0].tolist() == baseline_picks)
    return result


def _peak_mb() -> float:
    """This process image's peak resident memory. Not ru_maxrss: on Linux it survives exec and
    so reports the parent's peak in a child."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--budget", type=int, default=100)
    parser.add_argument(
        "--repeats", type=int, default=1, help="rounds over all cases; each case reports its median round (for a shared machine)"
    )
    parser.add_argument("--cases", nargs="+", default=CASES, choices=[*STRATEGIES, *BASELINES], help="(default: all but the opt-in variant)")
    parser.add_argument("--case", nargs=2, metavar=("STRATEGY", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(run_case(args.case[0], int(args.case[1]), args.budget)))
        return

    cases = list(dict.fromkeys([*args.cases, *BASELINES]))  # the ratios need both baselines
    runs: dict[tuple[str, int], list[dict[str, float]]] = {}
    for n in args.sizes:
        pool(n)  # build the cache once, outside the timed children
        for _ in range(args.repeats):  # whole rounds, so that a burst of load hits every case alike
            for name in cases:
                child = subprocess.run(
                    [sys.executable, __file__, "--budget", str(args.budget), "--case", name, str(n)],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                runs.setdefault((name, n), []).append(json.loads(child.stdout.strip().splitlines()[-1]))
                print(name, n, runs[(name, n)][-1], flush=True)
    results = {key: sorted(rounds, key=lambda r: r["seconds"])[len(rounds) // 2] for key, rounds in runs.items()}

    print(f"\nbudget {args.budget}; {os.cpu_count()} cores; pool data {DIM}-d float32; median of {args.repeats} round(s)\n")
    print("| strategy | pool | seconds | vs textbook numpy k-center | vs mat-vec numpy k-center | peak memory (MB, pool included) |")
    print("|---|---:|---:|---:|---:|---:|")
    for n in args.sizes:
        textbook = results[("numpy k-center", n)]["seconds"]
        matvec = results[("numpy k-center (mat-vec)", n)]["seconds"]
        for name in cases:
            r = results[(name, n)]
            print(
                f"| {name} | {n:,} | {r['seconds']:.2f} | {textbook / r['seconds']:.1f}x "
                f"| {matvec / r['seconds']:.1f}x | {r['peak_mb']:,.0f} |"
            )
    for n in args.sizes:
        same = all(r["same_picks"] for r in runs[("numpy k-center (mat-vec)", n)])
        verdict = "the same rows as" if same else "OTHER ROWS THAN"
        print(f"\n{n:,}: greedy_k_center picks {verdict} the mat-vec baseline")


if __name__ == "__main__":
    main()
