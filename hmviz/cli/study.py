"""CLI verb ``study``: run a study (a TOML spec) into a results folder, and summarize one.

``hmviz study run SPEC --out DIR [--executor local|ray] [--address auto|HOST:PORT] [--workers N]``
trains every run of the spec that DIR does not hold yet and writes ``DIR/results.parquet`` and
``.csv`` (one row per run) and each run's model card; rerunning resumes.
``hmviz study summarize DIR [--margin M]`` prints the mark-subset summary (smallest subset chosen
on validation) and, for cross-cell studies, the cross-cell matrix; writes them as CSV beside the results.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hmviz.cli.registry import verb
from hmviz.errors import HmvizError


def add_executor_args(p: argparse.ArgumentParser) -> None:
    """``--executor``, ``--address`` and ``--workers`` (shared by ``study run`` and ``ablate``)."""
    p.add_argument(
        "--executor",
        default="local",
        choices=["local", "ray"],
        help="where runs execute: local processes (default) or a Ray cluster (pip install 'hmviz[ray]')",
    )
    p.add_argument(
        "--address",
        metavar="auto|HOST:PORT",
        help="--executor ray: the cluster to join ('auto': the one started here with 'ray start'); "
        "default: a Ray instance started for this command",
    )
    p.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="--executor local: parallel worker processes (default: the CPU cores; 1 = this process)",
    )


def executor_from_args(args: argparse.Namespace, resources=None):
    from hmviz.studies.executors import make_executor
    from hmviz.studies.spec import Resources

    if args.executor == "local" and args.address is not None:
        raise HmvizError("--address applies to --executor ray only.")
    if args.workers is not None and args.workers < 1:
        raise HmvizError(f"--workers must be at least 1; got {args.workers}.")
    return make_executor(args.executor, workers=args.workers, address=args.address, resources=resources or Resources())


def progress_printer(quiet: bool):
    """One stderr line per finished run (``None`` when quiet)."""
    if quiet:
        return None

    def on_progress(ev) -> None:
        if ev.status == "ok":
            what = f"{ev.metric} {ev.value:.4f}" if ev.value is not None else "no value"
        else:
            what = f"FAILED: {ev.error}"
        how = "already done" if ev.from_cache else f"{ev.seconds:.1f} s"
        print(
            f"[{ev.done}/{ev.total}] {ev.run.dataset} {ev.run.model} {ev.run.marks_name} seed {ev.run.seed}"
            f"{' ' + ev.run.settings_json if ev.run.settings else ''}: {what} ({how})",
            file=sys.stderr,
        )

    return on_progress


def _study_args(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="study_command", metavar="COMMAND", parser_class=type(p))
    run = sub.add_parser("run", help="train every run of a study spec (TOML) into a results folder")
    run.add_argument("spec", metavar="SPEC", help="the study spec, a TOML file (see docs/studies.md)")
    run.add_argument("--out", required=True, metavar="DIR", help="results folder (rerunning resumes)")
    add_executor_args(run)
    run.add_argument("--quiet", action="store_true", help="no progress lines")
    summ = sub.add_parser("summarize", help="the mark-subset summary and cross-cell matrix of a results folder")
    summ.add_argument("dir", metavar="DIR", help="a results folder written by 'study run'")
    summ.add_argument(
        "--margin",
        type=float,
        default=0.01,
        help="smallest subset within this much of all marks, on validation (default 0.01)",
    )


@verb(
    "study",
    "studies: train runs over datasets x models x mark subsets x settings x seeds, and summarize them",
    _study_args,
)
def cmd_study(args: argparse.Namespace) -> int:
    if args.study_command == "run":
        return _run(args)
    if args.study_command == "summarize":
        return _summarize(args)
    raise HmvizError("study needs a command: 'study run SPEC --out DIR' or 'study summarize DIR'.")


def _run(args: argparse.Namespace) -> int:
    from hmviz.studies import load_spec, run_study

    spec = load_spec(args.spec)
    executor = executor_from_args(args, spec.resources)
    result = run_study(spec, args.out, executor=executor, progress=progress_printer(args.quiet))
    print(
        f"{result.computed} runs trained ({result.failed} failed), {result.reused} reused from {args.out} "
        f"({result.seconds:.1f} s); results in {Path(args.out) / 'results.csv'}",
        file=sys.stderr,
    )
    if not result.table.empty:
        ok = result.table[result.table["status"] == "ok"]
        if not ok.empty:
            print(
                ok.groupby(["dataset", "model", "marks"], sort=False)[["valid_value", "test_value"]]
                .agg(["mean", "std", "count"])
                .to_string(float_format=lambda v: f"{v:.4f}")
            )
    return 0 if result.failed == 0 else 1


def _summarize(args: argparse.Namespace) -> int:
    import pandas as pd

    from hmviz.errors import DataError
    from hmviz.studies import cross_cell_matrix, load_results, subset_summary

    out = Path(args.dir)
    results = load_results(out)
    summary = subset_summary(results, args.margin)
    if not summary.empty:
        summary.to_csv(out / "subset_summary.csv", index=False)
        print(f"smallest subset within {args.margin:g} of all marks, chosen on validation (test beside it):")
        print(summary.drop(columns=["margin"]).to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    cross_path = out / "cross_cell.parquet"
    if cross_path.exists():
        cross = pd.read_parquet(cross_path)
        for (model, marks, settings), _ in cross.groupby(["model", "marks", "settings"], sort=False):
            try:
                matrix = cross_cell_matrix(cross, model, marks, settings)
            except DataError:
                continue
            print(
                f"\ncross-cell {matrix.attrs['metric']} ({model}, {marks}, mean over {matrix.attrs['n_seeds']} "
                "seeds; rows: trained on, columns: scored on):"
            )
            print(matrix.to_string(float_format=lambda v: f"{v:.4f}"))
    return 0
