"""Study throughput: runs per minute for one study with the local executor (1 and 2 workers) and with
Ray on a two-node cluster started on this machine, and the scheduling overhead per run.

    python bench/bench_study.py [--runs-per-dataset 11] [--genes 300] [--no-ray]

The study: two synthetic datasets x DeepChrome x {all marks, each mark alone, leave one out} x seed 1,
one epoch each. For each executor it prints the wall time of the whole study (reading data and
spawning workers included), runs per minute, the mean time a run spends training (``seconds`` in
results.csv, measured inside the run), and the overhead per run:
``wall x slots / runs - mean run time`` (slots = runs that can execute at once: workers, or Ray CPUs),
i.e. the time per run a slot spends not training (process start, imports, data shipping, scheduling).
Quote ``uptime`` beside the figures: on a shared machine they move with the load.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT))

from ray_cluster_check import env, start_cluster, worker_raylet_pids  # noqa: E402


def write_inputs(work: Path, genes: int) -> None:
    from hmviz.data.io import write_long
    from hmviz.data.synthetic import make_sample_dataset

    for i, name in enumerate(["cellA", "cellB"]):
        write_long(make_sample_dataset(n_genes=genes, seed=10 + i)[0], work / f"{name}.csv")
    (work / "spec.toml").write_text(
        'name = "bench"\nseeds = [1]\nmarks = ["all-marks", "singles", "leave-one-out"]\nepochs = 1\npatience = 0\n'
        '[[datasets]]\nname = "cellA"\npath = "cellA.csv"\n[[datasets]]\nname = "cellB"\npath = "cellB.csv"\n'
        '[[models]]\nname = "deepchrome"\n')


def timed_study(work: Path, name: str, extra: list[str]) -> tuple[float, pd.DataFrame]:
    out = work / f"out-{name}"
    cmd = [sys.executable, "-m", "hmviz", "study", "run", "spec.toml", "--out", str(out), "--quiet", *extra]
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=work, env=env(), text=True, capture_output=True, timeout=1800)
    wall = time.perf_counter() - t0
    if r.returncode:
        raise SystemExit(f"{name} failed:\n{r.stderr[-3000:]}")
    return wall, pd.read_csv(out / "results.csv")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--genes", type=int, default=300)
    ap.add_argument("--no-ray", action="store_true")
    ap.add_argument("--only-ray", action="store_true", help="skip the local executor")
    ap.add_argument("--port", type=int, default=6420)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="hmviz-bench-study-"))
    write_inputs(work, args.genes)
    print(f"load before: {os.getloadavg()}", flush=True)
    rows = []
    cases = [("local, 1 worker", ["--workers", "1"], 1), ("local, 2 workers", ["--workers", "2"], 2)]
    for name, extra, slots in ([] if args.only_ray else cases):
        wall, t = timed_study(work, name.replace(" ", "").replace(",", "-"), extra)
        rows.append((name, slots, len(t), wall, t["seconds"].mean()))
        print(rows[-1], flush=True)
    if not args.no_ray:
        address = f"127.0.0.1:{args.port}"
        try:
            start_cluster(args.port)
            assert len(worker_raylet_pids()) == 1, "expected a head and one worker node"
            wall, t = timed_study(work, "ray", ["--executor", "ray", "--address", address])
            rows.append(("Ray, 2 nodes x 1 CPU", 2, len(t), wall, t["seconds"].mean()))
            print(rows[-1], flush=True)
        finally:
            subprocess.run(["ray", "stop", "--force"], env=env(), capture_output=True, timeout=120)
    print(f"load after: {os.getloadavg()}\n")
    print("| executor | slots | runs | wall (s) | runs/min | mean run (s) | overhead per run (s) |")
    print("|---|---|---|---|---|---|---|")
    for name, slots, n, wall, mean in rows:
        print(f"| {name} | {slots} | {n} | {wall:.1f} | {60 * n / wall:.1f} | {mean:.2f} | {wall * slots / n - mean:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
