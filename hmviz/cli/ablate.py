"""CLI verb ``ablate``: which marks does a model need (a thin wrapper over :mod:`hmviz.studies.ablation`
and :mod:`hmviz.explain.ablation`).

``python -m hmviz ablate --data PATH --model NAME --out DIR [--mode retrain|mask] [--seeds N]
[--epochs N] [--set KEY=VALUE] [--executor local|ray] [--address A] [--workers N]`` writes
``DIR/ablation.csv`` (atomically) and prints the table, calling out the smallest subset within
``--margin`` of all marks, chosen on the validation metric (the test metric is shown beside it).

* ``--mode retrain`` (default): ``--model`` is a model name; every non-empty subset of marks is
  trained with seeds 1..N, as a study (``DIR`` is a study folder: rerunning the same command
  resumes, and other settings in the same DIR are refused).
* ``--mode mask``: ``--model`` is a trained model directory; marks are replaced by a baseline.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hmviz.cli.model import _add_data_args, _read
from hmviz.cli.registry import verb
from hmviz.cli.study import add_executor_args, executor_from_args, progress_printer
from hmviz.errors import HmvizError

ABLATION_CSV = "ablation.csv"


def _ablate_args(p: argparse.ArgumentParser) -> None:
    _add_data_args(p)
    p.add_argument(
        "--model",
        required=True,
        help="retrain: a model name (e.g. deepchrome, ranker-deepchrome); mask: a trained model directory",
    )
    p.add_argument("--out", required=True, metavar="DIR", help="directory for ablation.csv (and, retrain, the runs)")
    p.add_argument(
        "--mode",
        default="retrain",
        choices=["retrain", "mask"],
        help="retrain on every subset of marks (default), or mask marks of a trained model",
    )
    p.add_argument("--marks", help="retrain: comma-separated marks to ablate over (default: all in the data)")
    p.add_argument("--seeds", type=int, metavar="N", help="retrain: repeats with seeds 1..N (default 1)")
    p.add_argument("--epochs", type=int, metavar="N", help="retrain: maximum epochs per run (default 10)")
    p.add_argument("--patience", type=int, metavar="N", help="retrain: early-stopping patience (default 2)")
    p.add_argument(
        "--set",
        action="append",
        default=None,
        metavar="KEY=VALUE",
        dest="settings",
        help="retrain: a model setting (repeatable), as in 'train --set', e.g. --set kernel_size=3 "
        "--set pool_size=2 for DeepChrome on a 10-bin table",
    )
    add_executor_args(p)
    p.add_argument("--jobs", type=int, metavar="N", dest="workers", help=argparse.SUPPRESS)  # old name of --workers
    p.add_argument(
        "--subsets",
        choices=["single", "leave-one-out", "all"],
        help="mask: keep one mark at a time (single, default), mask one at a time "
        "(leave-one-out), or every subset (all)",
    )
    p.add_argument(
        "--baseline",
        choices=["train_mean", "zeros"],
        help="mask: replace masked marks by the training mean (default) or by no reads (zeros)",
    )
    p.add_argument(
        "--metric", help="test metric to report, e.g. test_auroc, test_pairwise_accuracy (default: the model's)"
    )
    p.add_argument(
        "--margin",
        type=float,
        default=0.01,
        help="call out the smallest subset within this much of all marks (default 0.01), chosen on "
        "the validation metric when the runs have one",
    )
    p.add_argument("--quiet", action="store_true", help="no progress lines")


def _check_args(args: argparse.Namespace) -> None:
    retrain_only = {
        "--marks": args.marks,
        "--seeds": args.seeds,
        "--epochs": args.epochs,
        "--patience": args.patience,
        "--workers": args.workers,
        "--set": args.settings,
        "--address": args.address,
        "--executor ray": "ray" if args.executor == "ray" else None,
    }
    mask_only = {"--subsets": args.subsets, "--baseline": args.baseline}
    wrong = [k for k, v in (retrain_only if args.mode == "mask" else mask_only).items() if v is not None]
    if wrong:
        raise HmvizError(
            f"{', '.join(wrong)} {'applies' if len(wrong) == 1 else 'apply'} to --mode "
            f"{'retrain' if args.mode == 'mask' else 'mask'} only."
        )
    for flag, value, least in (
        ("--seeds", args.seeds, 1),
        ("--epochs", args.epochs, 1),
        ("--patience", args.patience, 0),
        ("--workers", args.workers, 1),
    ):
        if value is not None and value < least:
            raise HmvizError(f"{flag} must be at least {least}; got {value}.")
    if not args.margin >= 0:
        raise HmvizError(f"--margin must be a number >= 0 in the metric's units (e.g. 0.01); got {args.margin}.")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise HmvizError(f"{out} exists and is not a directory; choose another --out.")


def format_table(table, margin: float) -> str:
    """The table as text, best first, and a line naming the smallest subset within ``margin`` of all marks
    (chosen on validation where the table has it, its test value beside it)."""
    from hmviz.studies.marks import reference_row, smallest_within_margin, value_column

    col = value_column(table)
    show = [
        c
        for c in ("rank", "marks", "masked_marks", "n_marks", col, "std", "drop", "n_runs", "valid_mean")
        if c in table.columns and not table[c].isna().all()
    ]
    text = table.sort_values(col, ascending=False, kind="stable")[show].to_string(
        index=False, float_format=lambda v: f"{v:.4f}"
    )
    metric = table["metric"].iloc[0]
    ref, best = reference_row(table), smallest_within_margin(table, margin)
    plural = "s" if best["n_marks"] != 1 else ""
    if best["chosen_on"] == "valid_mean":
        vname = table["valid_metric"].iloc[0]
        note = (
            f"smallest subset within {margin:g} of all marks on {vname} (all marks: {ref['valid_mean']:.4f}), "
            f"chosen on validation: {best['marks']} ({int(best['n_marks'])} mark{plural}, {vname} "
            f"{best['valid_mean']:.4f}; {metric} {best[col]:.4f} vs {ref[col]:.4f} with all marks)"
        )
    else:
        note = (
            f"smallest subset within {margin:g} of all marks ({metric} {ref[col]:.4f}): {best['marks']} "
            f"({int(best['n_marks'])} mark{plural}, {best[col]:.4f}; no validation metric: chosen on "
            f"{metric})"
        )
    return (
        f"{metric} per subset of marks ({col} over {'seeds' if col == 'mean' else 'the evaluated genes'}):\n"
        f"{text}\n{note}"
    )


@verb(
    "ablate",
    "mark ablation: the test metric per subset of marks (retrain on each, or mask a trained model)",
    _ablate_args,
)
def cmd_ablate(args: argparse.Namespace) -> int:
    from hmviz.cli.explain import write_table

    _check_args(args)
    if args.mode == "retrain":
        from hmviz.models import get_spec, parse_settings
        from hmviz.studies.ablation import (
            DEFAULT_EPOCHS,
            DEFAULT_PATIENCE,
            ablate_retrain,
        )

        get_spec(args.model)  # an unknown model name fails before the data is read
        settings = parse_settings(args.model, args.settings or [])
        executor = executor_from_args(args)
        dataset = _read(args)
        marks = [m.strip() for m in args.marks.split(",") if m.strip()] if args.marks else None
        table = ablate_retrain(
            dataset,
            args.model,
            seeds=range(1, (args.seeds or 1) + 1),
            epochs=args.epochs or DEFAULT_EPOCHS,
            out_dir=args.out,
            executor=executor,
            progress=progress_printer(args.quiet),
            marks=marks,
            metric=args.metric,
            patience=DEFAULT_PATIENCE if args.patience is None else args.patience,
            settings=settings,
        )
        if not args.quiet:
            print(
                f"{table.attrs['computed']} runs trained ({table.attrs['failed']} failed), {table.attrs['reused']} "
                f"reused from {args.out} ({table.attrs['seconds']:.1f} s)",
                file=sys.stderr,
            )
    else:
        from hmviz.explain.ablation import ablate_mask
        from hmviz.trained import load

        model = load(args.model, device="cpu")  # a bad model directory fails before the data is read
        table = ablate_mask(
            model.module,
            model.card,
            _read(args),
            subsets=args.subsets or "single",
            baseline=args.baseline or "train_mean",
            metric=args.metric,
        )
        if not args.quiet:
            print(
                f"evaluated on {table.attrs['evaluated_on']} ({table.attrs['genes_evaluated']} genes); "
                f"masked marks replaced by {table.attrs['baseline']}",
                file=sys.stderr,
            )
    path = write_table(table, Path(args.out) / ABLATION_CSV)
    print(format_table(table, args.margin))
    print(f"wrote {path}", file=sys.stderr)
    return 0
