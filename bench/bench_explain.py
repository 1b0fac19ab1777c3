"""Benchmark of explanations on CPU: Integrated Gradients for gene pairs and for 1,000 genes.

Usage::

    python bench/bench_explain.py [--models-dir models] [--steps 50] [--repeats 7]

Uses the bundled models for the sample data when they exist (``models/ranker-deepchrome`` and
``models/ranker-attentivechrome``; otherwise freshly initialised models of the same shape, which cost
the same), inputs from ``sample_data/`` passed through each card's transform. Targets from the
issue: IG with 50 steps for one gene pair <= 150 ms (DeepChrome) and <= 1 s (AttentiveChrome);
IG for 1,000 genes <= 30 s (DeepChrome). Reports the median and best of ``--repeats`` timed runs
after a warm-up, and the IG convergence delta. The steps are fixed (``max_steps`` = ``--steps``):
hmviz's own doubling of the steps until the gap is within 1% is not part of these timings. Prints a table and writes
``bench/results/explain.json``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import hmviz  # noqa: E402,F401  (sets the OpenMP wait policy before torch loads)
from _results import write_results  # noqa: E402


def _model(name: str, models_dir: Path, n_marks: int, n_bins: int):
    from hmviz.models import build_model

    path = models_dir / name
    if (path / "model_card.json").exists():
        trained = hmviz.load(path)
        return trained.module, trained.card, f"bundled {path}"
    model, _ = build_model(name, n_marks=n_marks, n_bins=n_bins)
    return model.eval(), None, "untrained (no bundled model found)"


def _timed(fn, repeats: int) -> tuple[float, float, object]:
    out = fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times), out


def main() -> int:
    import numpy as np
    import torch

    from hmviz.data import read_dataset
    from hmviz.explain import explain, explain_pair

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models-dir", default=str(ROOT / "models"))
    p.add_argument("--data", default=str(ROOT / "sample_data"))
    p.add_argument("--steps", type=int, default=50)
    p.add_argument("--repeats", type=int, default=7)
    args = p.parse_args()

    ds = read_dataset(args.data)
    rows = []
    for name, limit_pair in (("ranker-deepchrome", 0.150), ("ranker-attentivechrome", 1.0)):
        model, card, origin = _model(name, Path(args.models_dir), ds.n_marks, ds.n_bins)
        if card is not None:
            x = torch.from_numpy(card.input_transform.transform(ds.signal))
        else:
            x = torch.from_numpy(np.log1p(ds.signal))
        starts = ds.bin_starts_bp()
        med, best, pair = _timed(lambda: explain_pair(model, x[0], x[1], n_steps=args.steps, max_steps=args.steps,
                                                      bin_starts_bp=starts, names=("A", "B")), args.repeats)
        delta = float(np.max(np.abs(np.atleast_1d(pair.convergence_delta)))) if pair.convergence_delta is not None else None
        rows.append({"what": f"IG pair, {args.steps} steps", "model": name, "origin": origin, "median_s": med,
                     "best_s": best, "target_s": limit_pair, "max_abs_delta": delta})
        if name == "ranker-deepchrome":
            genes = x[:1000]
            med, best, attr = _timed(lambda: explain(model, genes, n_steps=args.steps, max_steps=args.steps),
                                     max(1, args.repeats // 3))
            rows.append({"what": f"IG 1,000 genes, {args.steps} steps", "model": name, "origin": origin,
                         "median_s": med, "best_s": best, "target_s": 30.0,
                         "max_abs_delta": attr.max_abs_delta})
    print(f"\nExplanations on CPU ({torch.get_num_threads()} torch threads), median and best of repeated runs")
    print(f"{'what':28s} {'model':24s} {'median s':>9s} {'best s':>8s} {'target s':>9s} {'max |delta|':>12s}")
    for r in rows:
        d = f"{r['max_abs_delta']:.2e}" if r["max_abs_delta"] is not None else "-"
        print(f"{r['what']:28s} {r['model']:24s} {r['median_s']:9.3f} {r['best_s']:8.3f} {r['target_s']:9.2f} {d:>12s}")
    print("models:", "; ".join(sorted({f"{r['model']}: {r['origin']}" for r in rows})))
    write_results("explain.json", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
