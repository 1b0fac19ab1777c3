"""How fast does ``read_dataset`` load a genome-scale long-format file?

Generates 20,000 genes x 100 bins x 5 marks (2 million rows) of seeded random counts in a temporary
folder as .csv, .csv.gz and .parquet (written by ``write_long``), reads each with
``read_dataset`` (best of 3), checks the arrays, prints a table and writes
``bench/results/load.json``.

    python bench/bench_load.py [--genes 20000] [--bins 100] [--repeats 3]
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from _results import write_results
from hmviz.data import HistoneDataset, read_dataset, write_long

MARKS = ("H3K4me1", "H3K4me3", "H3K9me3", "H3K27me3", "H3K36me3")


def make_dataset(n_genes: int, n_bins: int, seed: int = 0) -> HistoneDataset:
    rng = np.random.default_rng(seed)
    signal = rng.poisson(3.0, size=(n_genes, n_bins, len(MARKS))).astype(np.float32)
    ids = np.array([f"ENSG{i:011d}" for i in range(n_genes)], dtype=object)
    expression = rng.lognormal(2.0, 1.5, n_genes)
    return HistoneDataset(signal=signal, gene_ids=ids, marks=MARKS, bin_size=100,
                          symbols=np.array([f"GENE{i}" for i in range(n_genes)], dtype=object),
                          chrom=np.array([f"chr{1 + i % 22}" for i in range(n_genes)], dtype=object),
                          split=np.array(["train", "valid", "test"], dtype=object)[rng.integers(0, 3, n_genes)],
                          expression=expression,
                          labels=(expression > np.median(expression)).astype(np.int8))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--genes", type=int, default=20_000)
    ap.add_argument("--bins", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    ds = make_dataset(args.genes, args.bins)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for suffix in ("csv", "csv.gz", "parquet"):
            path = Path(tmp) / f"bench.{suffix}"
            t0 = time.perf_counter()
            write_long(ds, path)
            write_s = time.perf_counter() - t0
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                back = read_dataset(path)
                times.append(time.perf_counter() - t0)
            assert np.array_equal(back.signal, ds.signal) and np.array_equal(back.gene_ids, ds.gene_ids)
            rows.append({"file": path.name, "rows": ds.n_genes * ds.n_bins, "size_mb": path.stat().st_size / 1e6,
                         "write_s": write_s, "read_best_s": min(times), "read_all_s": times})
    print(f"read_dataset: {args.genes} genes x {args.bins} bins x {len(MARKS)} marks "
          f"({args.genes * args.bins:,} rows), best of {args.repeats}")
    print(f"{'file':<16}{'MB':>8}{'write s':>10}{'read s':>10}{'rows/s':>14}")
    for r in rows:
        print(f"{r['file']:<16}{r['size_mb']:>8.1f}{r['write_s']:>10.2f}{r['read_best_s']:>10.2f}"
              f"{r['rows'] / r['read_best_s']:>14,.0f}")
    write_results("load.json", {"genes": args.genes, "bins": args.bins, "marks": len(MARKS),
                                   "repeats": args.repeats, "python": platform.python_version(),
                                   "machine": platform.machine(), "results": rows})


if __name__ == "__main__":
    main()
