"""Benchmark of the metrics: concordance index over all pairs in O(n log n) vs sampled pairs, and the
bootstrap interval (1,000 resamples) with the metric computed for all resamples at once vs once per resample.

Usage::

    python bench/bench_metrics.py [--genes 20000,100000] [--bootstrap-genes 450,2500] [--rounds 5]

Prints two tables (best of ``rounds`` seconds per call; the per-resample bootstrap once) and writes JSON to
bench/results/metrics.json and bench/results/metrics_bootstrap.json.
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
from hmviz.metrics import auroc, bootstrap_ci, concordance_index, pairwise_accuracy, pearson_r


def best_of(rounds: int, fn) -> float:
    return min(timeit.repeat(fn, number=1, repeat=rounds))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--genes", default="20000,100000", help="comma-separated gene counts")
    p.add_argument("--bootstrap-genes", default="450,2500", help="comma-separated test-set sizes for the bootstrap")
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
    print()
    boot = bootstrap_rows([int(g) for g in args.bootstrap_genes.split(",")], args.rounds)
    print(f"{'metric':>10s} {'genes':>8s} {'all resamples at once s':>24s} {'once per resample s':>20s} {'same interval':>14s}")
    for r in boot:
        print(f"{r['metric']:>10s} {r['genes']:8d} {r['rowwise_s']:24.3f} {r['per_resample_s']:20.3f} {str(r['same_interval']):>14s}")
    write_results("metrics_bootstrap.json", boot)
    return 0


def bootstrap_rows(sizes: list[int], rounds: int) -> list[dict]:
    """The 1,000-resample interval of AUROC and Pearson r, row-wise (the library's path) and by one call
    per resample (the metric wrapped, so the library cannot recognise it), on scores with ties."""
    rng = np.random.default_rng(1)
    rows = []
    for n in sizes:
        y = (rng.random(n) < 0.5).astype(float)
        s = np.round(y + rng.normal(size=n), 1)  # rounded: tied scores
        for name, fn, truth in (("auroc", auroc, y), ("pearson_r", pearson_r, s + rng.normal(size=n))):
            fast = bootstrap_ci(fn, truth, s)
            slow_fn = lambda a, b, fn=fn: fn(a, b)  # noqa: E731
            start = timeit.default_timer()
            slow = bootstrap_ci(slow_fn, truth, s)
            rows.append({"metric": name, "genes": n,
                         "rowwise_s": round(best_of(rounds, lambda fn=fn, y=truth, s=s: bootstrap_ci(fn, y, s)), 4),
                         "per_resample_s": round(timeit.default_timer() - start, 3),
                         "same_interval": bool(np.allclose(fast, slow, rtol=0, atol=1e-12))})
    return rows


if __name__ == "__main__":
    sys.exit(main())
