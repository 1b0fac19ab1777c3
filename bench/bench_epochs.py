"""Epoch curves and early-stopping rules: which rule neither keeps an untrained epoch nor stops a learner.

Each (family, seed) is trained once to a long cap with early stopping off. After every epoch the
validation metric, the validation loss and the test metric are recorded (the test metric is only
*recorded*, never used to choose). Every rule is then replayed on those curves: a rule is an epoch
cap, a patience, and what early stopping watches (``either``: a new best validation loss or metric
resets the count, the engine's rule up to this measurement; ``metric``: only a new best of the
validation metric the epoch is kept on; ``either:F``: as ``either``, but the loss counts only when it
falls more than the fraction F below its best, as Keras' ``min_delta`` does in absolute terms). The epoch kept is the engine's: the best validation metric
among the epochs run, ties to the lower validation loss. Replaying is exact because a run with
early stopping is the same run, cut short (same seed, same batches).

    python bench/bench_epochs.py --models attentivechrome --seeds 5 --cap 60
    python bench/bench_epochs.py --replay bench/results/epochs_attentivechrome.json

Writes ``bench/results/epochs_<family>.json`` (the curves) and prints one table per family.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from hmviz.runtime import configure_openmp  # noqa: E402

configure_openmp()

from _results import write_results  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
HEADLINE = {"valid_auroc": "test_auroc", "valid_pairwise_accuracy": "test_pairwise_accuracy", "valid_r2": "test_r2"}
RULES = [
    (30, 10, "either"),
    (30, 10, "metric"),
    (60, 10, "either"),
    (60, 10, "metric"),
    (60, 15, "metric"),
    (60, 20, "metric"),
    (100, 10, "either"),
    (100, 10, "metric"),
    (60, 10, "either:0.005"),
    (60, 10, "either:0.01"),
    (60, 10, "either:0.02"),
]


def curves(family: str, data: Path, seed: int, cap: int) -> dict:
    """Train ``family`` on ``data`` for ``cap`` epochs (no early stopping); one row per epoch."""
    from hmviz import tasks
    from hmviz.data import read_dataset
    from hmviz.options import TrainOptions
    from hmviz.training import train

    rows: list[dict] = []
    originals = {}
    for cls in (tasks._BinaryTask, tasks._RankingTask, tasks._DifferentialTask):
        originals[cls] = cls.validate

        def validate(self, model, _orig=cls.validate):
            metric, loss = _orig(self, model)
            test = self.test_metrics(model)[HEADLINE[self.metric_name]]
            rows.append({"valid_metric": float(metric), "valid_loss": loss, "test_metric": float(test)})
            return metric, loss

        cls.validate = validate
    try:
        t0 = time.perf_counter()
        result = train(read_dataset(data), TrainOptions(model=family, seed=seed, device="cpu", epochs=cap, patience=0))
        seconds = time.perf_counter() - t0
    finally:
        for cls, fn in originals.items():
            cls.validate = fn
    trained = [h for h in result.history if h["stage"] == "train"]
    assert len(rows) == len(trained), "one validation per training epoch (SimpleChrome's VAE stage has its own)"
    for epoch, row in enumerate(rows, 1):
        row["epoch"] = epoch
    return {"family": family, "seed": seed, "cap": cap, "data": data.name, "seconds": round(seconds, 1), "rows": rows}


def replay(rows: list[dict], cap: int, patience: int, watch: str) -> dict:
    """The epoch the engine keeps under one rule, and how many epochs it runs (see hmviz/engine.py)."""
    best_key, best_row, bad = None, None, 0
    watched = {"loss": math.inf, "metric": -math.inf}
    kind, _, fraction = watch.partition(":")
    min_drop = float(fraction or 0.0)
    run = 0
    for row in rows[:cap]:
        run = row["epoch"]
        loss = row["valid_loss"] if row["valid_loss"] is not None else math.inf
        key = (row["valid_metric"], -loss)
        if best_key is None or key > best_key:
            best_key, best_row = key, row
        improved = False
        if kind == "either" and loss < watched["loss"] * (1 - min_drop):
            watched["loss"], improved = loss, True
        if row["valid_metric"] > watched["metric"]:
            watched["metric"], improved = row["valid_metric"], True
        bad = 0 if improved or best_row is row else bad + 1
        if patience and bad >= patience:
            break
    return {"best_epoch": best_row["epoch"], "epochs_run": run, "test_metric": best_row["test_metric"],
            "at_cap": run == cap}


def table(runs: list[dict]) -> list[dict]:
    """One line per rule: test metric mean ± sd over seeds, epochs run, seeds that hit the cap."""
    out = []
    longest = min(len(r["rows"]) for r in runs)
    for cap, patience, watch in RULES:
        if cap > longest:
            continue
        picks = [replay(r["rows"], cap, patience, watch) for r in runs]
        tests = [p["test_metric"] for p in picks]
        out.append({
            "cap": cap, "patience": patience, "watch": watch,
            "test_mean": statistics.mean(tests), "test_sd": statistics.stdev(tests) if len(tests) > 1 else 0.0,
            "best_epochs": [p["best_epoch"] for p in picks], "epochs_run": [p["epochs_run"] for p in picks],
            "at_cap": sum(p["at_cap"] for p in picks),
        })
    return out


def print_table(family: str, runs: list[dict]) -> None:
    print(f"\n{family} on {runs[0]['data']}, seeds {[r['seed'] for r in runs]}, curves to epoch "
          f"{min(len(r['rows']) for r in runs)}")
    print(f"{'cap':>4s} {'patience':>8s} {'watch':>12s} {'test (mean ± sd)':>18s} {'at cap':>7s}  best epochs / epochs run")
    for t in table(runs):
        pairs = ", ".join(f"{b}/{e}" for b, e in zip(t["best_epochs"], t["epochs_run"]))
        print(f"{t['cap']:4d} {t['patience']:8d} {t['watch']:>12s} {t['test_mean']:8.4f} ± {t['test_sd']:.4f}"
              f" {t['at_cap']:>4d}/{len(runs)}  {pairs}")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default="attentivechrome", help="comma-separated families")
    p.add_argument("--data", default=str(SHARED / "remc-E123-deepchrome"))
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--first-seed", type=int, default=1)
    p.add_argument("--cap", type=int, default=60, help="epochs every curve runs (early stopping off)")
    p.add_argument("--replay", nargs="*", default=None, metavar="JSON", help="print the tables of saved curves")
    args = p.parse_args()
    if args.replay is not None:
        by_family: dict[str, list[dict]] = {}
        for path in args.replay:  # several files of one family (seeds run in parallel) are one table
            saved = json.loads(Path(path).read_text())
            by_family.setdefault(saved["family"], []).extend(saved["runs"])
        for family, runs in by_family.items():
            print_table(family, sorted(runs, key=lambda r: r["seed"]))
        return 0
    data = Path(args.data)
    if not data.exists():
        print(f"{data} not found: nothing to measure", file=sys.stderr)
        return 0
    for family in args.models.split(","):
        runs = []
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            runs.append(curves(family, data, seed, args.cap))
            print(f"{family} seed {seed}: {runs[-1]['seconds']} s", file=sys.stderr, flush=True)
        write_results(f"epochs_{family}{'' if args.first_seed == 1 else f'_from{args.first_seed}'}.json",
                      {"family": family, "runs": runs})
        print_table(family, runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
