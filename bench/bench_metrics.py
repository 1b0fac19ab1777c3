"""Benchmark of the pair metrics: concordance index over all pairs in O(n log n) vs sampled pairs.

Usage::

    python bench/bench_metrics.py [--genes 20000,100000] [--rounds 5]

Prints a table (best of ``rounds`` seconds per call) and writes JSON to bench/results/metrics.json.
"""

from __future__ import annotations

import argparse
import sys
import timeit
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np

from _results import write_results
from hmviz.metrics import concordance_index, pairwise_accuracy


def best_of(rounds: int, fn) -> float:
    return min(timeit.repeat(fn, number=1, repeat=rounds))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--genes", default="20000,100000", help="comma-separated gene counts")
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    rows = []
    rng = np.random.default_rng(0)
    for n in (int(g) for g in args.genes.split(",")):
        y = rng.normal(size=n)
        s = y + rng.normal(size=n)
        pairs = rng.integers(0, n, size=(10 * n, 2))
        rows.append({
            "genes": n,
            "all_pairs": n * (n - 1) // 2,
            "concordance_index_s": round(best_of(args.rounds, lambda y=y, s=s: concordance_index(y, s)), 4),
            "pairwise_accuracy_10n_sampled_s": round(best_of(args.rounds, lambda y=y, s=s, p=pairs: pairwise_accuracy(y, s, p)), 4),
        })
    print(f"{'genes':>8s} {'pairs':>14s} {'concordance s':>14s} {'10n sampled pairs s':>20s}")
    for r in rows:
        print(f"{r['genes']:8d} {r['all_pairs']:14,d} {r['concordance_index_s']:14.4f} "
              f"{r['pairwise_accuracy_10n_sampled_s']:20.4f}")
    write_results("metrics.json", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
