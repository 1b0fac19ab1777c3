"""Is a deep model ahead of the baselines on the real data, or level with them? A paired bootstrap per seed.

    python bench/bench_compare.py --models attentivechrome,simplechrome --datasets e123,e003 --seeds 5
    python bench/bench_compare.py --models deepdiff --datasets e123-e003 --seeds 3 --tag _deepdiff

For each dataset (as ``bench_models.py --datasets``; ``e123-e003`` is the two-cell pair), family and seed:
the family is trained with its defaults on the file's split, and both baselines on the same split, labels,
marks and input transform; the model's test metric minus each baseline's on the same test genes (AUROC,
a ranker's concordance index, DeepDiff's R²: :data:`hmviz.comparison.INTERVAL_METRIC`), with the 95%
interval of the difference from a paired bootstrap over those genes (:func:`hmviz.comparison.compare`,
1,000 resamples, seed 0). The verdict is ``ahead`` / ``behind`` when the whole interval is above / below
0. A family whose metric the data cannot give (a ranker on labels only) is reported and skipped. Prints
a table and writes ``bench/results/compare.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import write_results  # noqa: E402
from bench_models import accuracy_datasets  # noqa: E402  (sets hmviz's OpenMP policy before torch loads)


def compare_one(ds, how: dict, name: str, seed: int) -> list[dict]:
    """One family and seed against both baselines on ``ds``: one row per baseline."""
    from hmviz.comparison import against_baselines
    from hmviz.models import parse_settings
    from hmviz.options import TrainOptions
    from hmviz.training import train

    t0 = time.perf_counter()
    result = train(ds, TrainOptions(model=name, seed=seed, device="cpu",
                                    model_overrides=parse_settings(name, how.get("settings", {}).get(name, ()))))
    seconds = time.perf_counter() - t0
    out = []
    for b, c in against_baselines(result.model, result.card, ds):  # as `evaluate --baselines` and the Evaluate page
        if c is None:
            print(f"{name}, seed {seed}: no {b['model']} comparison (the data has no truth for its metric)",
                  file=sys.stderr, flush=True)
            continue
        out.append({"model": name, "seed": seed, "baseline": b["model"], "metric": c.metric, "n_genes": c.n_genes,
                    "model_value": result.metrics[c.metric], "baseline_value": b[c.metric],
                    "difference": c.difference, "low": c.low, "high": c.high, "verdict": c.verdict,
                    "train_seconds": round(seconds, 1)})
    return out


def summary_table(rows: list[dict]) -> str:
    """Per dataset, family and baseline: the difference over seeds and how many seeds gave each verdict."""
    lines = ["| data | model | baseline | metric | model minus baseline: mean over seeds (range) | "
             "seeds ahead / not told apart / behind |", "|---|---|---|---|---|---|"]
    keys = list(dict.fromkeys((r["data"], r["model"], r["baseline"]) for r in rows))
    for key in keys:
        got = [r for r in rows if (r["data"], r["model"], r["baseline"]) == key]
        diffs = [r["difference"] for r in got]
        verdicts = [r["verdict"] for r in got]
        lines.append(f"| {key[0]} | {key[1]} | {key[2]} | {got[0]['metric']} | {sum(diffs) / len(diffs):+.3f} "
                     f"({min(diffs):+.3f} to "
                     f"{max(diffs):+.3f}) | {verdicts.count('ahead')} / {verdicts.count('not told apart')} / "
                     f"{verdicts.count('behind')} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="attentivechrome,simplechrome")
    parser.add_argument("--datasets", default="e123,e003")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--tag", default="")
    args = parser.parse_args()
    rows = []
    print("| data | model | seed | baseline | metric | genes | model | baseline | difference (95% CI) | verdict |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for dname, (ds, how) in accuracy_datasets(args.datasets.split(",")).items():
        for name in args.models.split(","):
            for seed in range(1, args.seeds + 1):
                for r in compare_one(ds, how, name, seed):
                    rows.append({"data": dname, **r})
                    print(f"| {dname} | {name} | {seed} | {r['baseline']} | {r['metric']} | {r['n_genes']} | "
                          f"{r['model_value']:.3f} | {r['baseline_value']:.3f} | "
                          f"{r['difference']:+.3f} ({r['low']:+.3f} to {r['high']:+.3f}) | "
                          f"{r['verdict']} |", flush=True)
    print()
    print(summary_table(rows))
    write_results(f"compare{args.tag}.json", rows)
    print(json.dumps({"rows": len(rows)}), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
