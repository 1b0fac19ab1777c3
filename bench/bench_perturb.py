"""Benchmark of in-silico editing on CPU (issue 20): one edit re-scored, a full deletion scan, the
smallest-edit search.

Usage::

    python bench/bench_perturb.py [--models-dir models] [--genes 600] [--repeats 5] [--threads 1]

Uses the bundled DeepChrome and AttentiveChrome on the first ``--genes`` genes of ``sample_data/``
(ranks are counted among those genes; the cost of an edit does not depend on their number, and
scoring every gene once for the ranks is set-up, not timed). For each model, on the lowest-scoring
gene: ``H3K4me3:promoter:set=20`` re-scored (parse, apply, transform, forward, rank; target < 100 ms),
a scan of 5 marks x 20 windows of 500 bp (one batched forward; targets < 1 s DeepChrome, < 3 s
AttentiveChrome), the smallest edit adding H3K4me3 or H3K36me3 anywhere (target < 5 s). Reports the
median and best of ``--repeats`` runs after a warm-up and the machine's load. Prints a table and
writes ``bench/results/perturb.json``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _results import write_results

import hmviz  # noqa: F401  (sets the OpenMP wait policy before torch loads)

TARGETS = {("deepchrome", "edit"): 0.1, ("deepchrome", "scan"): 1.0, ("deepchrome", "search"): 5.0,
           ("attentivechrome", "edit"): 0.1, ("attentivechrome", "scan"): 3.0, ("attentivechrome", "search"): 5.0}


def _time(fn, repeats: int) -> tuple[float, float, object]:
    out = fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), min(times), out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", default=str(ROOT / "models"))
    parser.add_argument("--genes", type=int, default=600)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import numpy as np
    import torch

    from hmviz.checkpoints import load_model
    from hmviz.data import read_dataset
    from hmviz.explain.session import prepare
    from hmviz.perturb import Editor, scan, smallest_edit

    torch.set_num_threads(args.threads)
    ds = read_dataset(ROOT / "sample_data").subset(np.arange(args.genes))
    rows, results = [], {}
    for name in ("deepchrome", "attentivechrome"):
        model, card = load_model(Path(args.models_dir) / name)
        editor = Editor.from_session(prepare(model, card, ds))
        scores = editor.all_scores()
        gene = int(np.argmin(scores))
        cases = {
            "edit": lambda e=editor, g=gene: e.perturb(g, ["H3K4me3:promoter:set=20"]),
            "scan": lambda e=editor, g=gene: scan(e, g, 500),
            "search": lambda e=editor, g=gene: smallest_edit(e, g, ["H3K4me3,H3K36me3:window:add"]),
        }
        for case, fn in cases.items():
            median, best, out = _time(fn, args.repeats if case != "search" else max(1, args.repeats // 2))
            note = ""
            if case == "scan":
                note = f"{out.effect.shape[0]} marks x {out.effect.shape[1]} windows"
            elif case == "search":
                note = f"found={out.found}, {out.size_reads:.1f} reads (L2), {out.evaluations} evaluations"
            else:
                note = f"score {out.score_before:+.3f} -> {out.score_after:+.3f}"
            target = TARGETS[(name, case)]
            rows.append((name, case, median, best, target, median < target, note))
            results[f"{name}/{case}"] = {"median_s": median, "best_s": best, "target_s": target, "note": note}
    load = os.getloadavg()
    print(f"\nload average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; torch threads {args.threads}; "
          f"{args.genes} genes; {args.repeats} repeats\n")
    print("| model | case | median (s) | best (s) | target (s) | met | note |")
    print("|---|---|---|---|---|---|---|")
    for name, case, median, best, target, ok, note in rows:
        print(f"| {name} | {case} | {median:.3f} | {best:.3f} | < {target:g} | {'yes' if ok else 'NO'} | {note} |")
    write_results("perturb.json", {"load_average": load, "threads": args.threads, "genes": args.genes,
                                   "results": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
