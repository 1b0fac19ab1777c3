"""Benchmark ``build_table``: 20,000 genes x 5 marks x 100 bins from bigWig files.

Generates, in a temporary folder, one bigWig per mark over a few chromosomes and a gene table, then
times :func:`hmviz.data.build.build_table` for each ``--stat`` and the write of the long format.
The bigWigs look like ChIP-seq signal tracks: variable-length runs (mean 50 bp, as bamCoverage or
MACS2 write them) of gamma-distributed background with some gaps, enriched around TSSs for the
promoter marks, over gene bodies for H3K36me3 and in broad domains for H3K27me3/H3K9me3.

    python bench/bench_build_table.py [--genes 20000] [--chroms 4] [--chrom-mb 50] [--repeat 1]

Prints a table and writes ``bench/results/build_table.json``. Target: build <= 60 s.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _results import write_results  # noqa: E402
from hmviz.data.build import build_table  # noqa: E402
from hmviz.data.io import write_long  # noqa: E402

MARKS = ("H3K4me3", "H3K27ac", "H3K36me3", "H3K27me3", "H3K9me3")
TARGET_S = 60.0


def _profile(mark: str, pos: np.ndarray, tss: np.ndarray, strand: np.ndarray, domains: np.ndarray) -> np.ndarray:
    """Enrichment (>= 1) at positions ``pos`` given the sorted TSSs of one chromosome."""
    k = np.clip(np.searchsorted(tss, pos), 1, tss.size - 1)
    near = np.where(pos - tss[k - 1] < tss[k] - pos, k - 1, k)
    d = (pos - tss[near]) * np.where(strand[near] == "-", -1, 1)  # signed distance, transcription direction
    if mark == "H3K4me3":
        return 1 + 20 * np.exp(-np.abs(d - 200) / 800)
    if mark == "H3K27ac":
        return 1 + 10 * np.exp(-np.abs(d) / 1500)
    if mark == "H3K36me3":
        return 1 + 4 * ((d > 1000) & (d < 30000))
    return 1 + 6 * domains[pos // 200_000]


def make_inputs(folder: Path, n_genes: int, n_chroms: int, chrom_bp: int, seed: int = 0) -> tuple[dict, Path, int]:
    """Write the bigWigs and the gene table; return ({mark: path}, genes path, intervals written)."""
    import pyBigWig

    rng = np.random.default_rng(seed)
    chroms = [(f"chr{i + 1}", chrom_bp) for i in range(n_chroms)]
    gene_chrom = rng.integers(0, n_chroms, n_genes)
    genes = pd.DataFrame({
        "gene_id": [f"ENSG{i:011d}" for i in range(n_genes)],
        "chrom": [chroms[c][0] for c in gene_chrom],
        "tss": rng.integers(1000, chrom_bp - 1000, n_genes),
        "strand": rng.choice(["+", "-"], n_genes),
        "symbol": [f"GENE{i}" for i in range(n_genes)],
        "expression": rng.lognormal(1, 2, n_genes).round(3),
    })
    genes_path = folder / "genes.tsv"
    genes.to_csv(genes_path, sep="\t", index=False)
    tracks, written = {}, 0
    for m, mark in enumerate(MARKS):
        path = folder / f"{mark}.bigWig"
        bw = pyBigWig.open(str(path), "w")
        bw.addHeader(chroms, maxZooms=10)
        for c, (name, size) in enumerate(chroms):
            on = genes[genes.chrom == name].sort_values("tss")
            ends = np.cumsum(rng.geometric(1 / 50, size=size // 40))
            ends = np.append(ends[ends < size], size)
            starts = np.r_[0, ends[:-1]]
            domains = rng.random(size // 200_000 + 1) < 0.2
            mid = (starts + ends) // 2
            value = rng.gamma(2.0, 0.5, starts.size) * _profile(mark, mid, on.tss.to_numpy(), on.strand.to_numpy(),
                                                                domains)
            keep = rng.random(starts.size) > 0.1  # gaps without data
            bw.addEntries([name] * int(keep.sum()), starts[keep].tolist(), ends=ends[keep].tolist(),
                          values=np.round(value[keep], 3).tolist())
            written += int(keep.sum())
        bw.close()
        tracks[mark] = path
    return tracks, genes_path, written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--genes", type=int, default=20_000)
    p.add_argument("--chroms", type=int, default=4)
    p.add_argument("--chrom-mb", type=int, default=50, help="length of each chromosome in Mbp")
    p.add_argument("--repeat", type=int, default=1, help="time each stat this many times (best is kept)")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "build_table.json")
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="hmviz-bench-") as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        tracks, genes_path, intervals = make_inputs(folder, args.genes, args.chroms, args.chrom_mb * 1_000_000)
        setup_s = time.perf_counter() - t0
        size_mb = sum(p.stat().st_size for p in tracks.values()) / 1e6
        rows = []
        for stat in ("sum", "mean", "max"):
            best, ds = float("inf"), None
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                ds, report = build_table(tracks, genes_path, bin_size=100, flank=5000, stat=stat)
                best = min(best, time.perf_counter() - t0)
            rows.append({"step": f"build_table stat={stat}", "seconds": round(best, 2)})
        out_csv = folder / "table.csv.gz"
        t0 = time.perf_counter()
        write_long(ds, out_csv)
        rows.append({"step": "write_long table.csv.gz", "seconds": round(time.perf_counter() - t0, 2)})

    shape = f"{ds.n_genes} genes x {ds.n_marks} marks x {ds.n_bins} bins"
    print(f"build_table from bigWig: {shape}; {args.chroms} chromosomes x {args.chrom_mb} Mbp, "
          f"{intervals:,} intervals in {size_mb:.0f} MB of bigWig (generated in {setup_s:.0f} s)")
    print(f"{'step':<28} {'seconds':>8}")
    for row in rows:
        print(f"{row['step']:<28} {row['seconds']:>8.2f}")
    worst = max(r["seconds"] for r in rows if r["step"].startswith("build"))
    print(f"target: build <= {TARGET_S:.0f} s -> {'met' if worst <= TARGET_S else 'MISSED'} (slowest {worst:.2f} s)")
    result = {
        "benchmark": "build_table from bigWig", "shape": shape, "genes": ds.n_genes, "marks": ds.n_marks,
        "bins": ds.n_bins, "chromosomes": args.chroms, "chrom_mbp": args.chrom_mb, "bigwig_intervals": intervals,
        "bigwig_mb": round(size_mb, 1), "rows": rows, "target_s": TARGET_S, "met": worst <= TARGET_S,
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "platform": platform.platform()},
        "command": "python bench/bench_build_table.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    write_results(args.out, result)
    return 0 if result["met"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
