"""CLI verb ``explain``: attributions for one gene, or for a gene pair (``--vs``), as a long table.

``python -m hmviz explain --model DIR --data PATH --gene ID [--vs ID] [--method NAME]
[--baseline NAME] [--steps N] --out FILE`` writes ``gene, bin, bin_start_bp, mark, attribution``
(CSV, TSV or Parquet by the suffix of FILE, written atomically) and prints a short summary.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from hmviz.atomic import atomic_output
from hmviz.cli import verb
from hmviz.cli_model import _add_data_args, _read
from hmviz.errors import HmvizError

_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq")


def _explain_args(p: argparse.ArgumentParser) -> None:
    # Names are checked in cmd_explain (an unknown one lists the valid ones): importing the
    # explain package here would load torch and Captum for every verb's --help.
    p.add_argument("--model", required=True, metavar="DIR", help="a model directory made by 'train'")
    _add_data_args(p)
    p.add_argument("--gene", required=True, metavar="ID", help="gene id or symbol (gene A of a pair)")
    p.add_argument("--vs", metavar="ID", help="second gene (B): explain why the model ranks A vs B")
    p.add_argument("--method", default="integrated_gradients", metavar="NAME",
                   help="attribution method, e.g. integrated_gradients (default), saliency, gradient_shap, "
                        "deeplift, occlusion, feature_ablation")
    p.add_argument("--baseline", default="zeros", metavar="NAME",
                   help="reference input: zeros (no reads, default), train_mean, low_expression_mean, "
                        "gene_sample (for gradient_shap)")
    p.add_argument("--steps", type=int, metavar="N", help="integration steps for integrated_gradients (default 50)")
    p.add_argument("--promoter", default="1000,1000", metavar="UP,DOWN",
                   help="bp upstream and downstream of the TSS bounding the promoter region (default 1000,1000)")
    p.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    p.add_argument("--out", required=True, metavar="FILE", help="output table (.csv, .tsv or .parquet)")


def write_table(table: pd.DataFrame, path: str | Path) -> Path:
    """Write ``table`` as CSV/TSV/Parquet (by suffix) atomically: a temporary file, then os.replace."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in _SUFFIXES:
        raise HmvizError(f"Cannot tell the format of '{path}'; end the file name with .csv, .tsv or .parquet.")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:  # readable as any new file (umask), not mkstemp's 0600
        if suffix in (".parquet", ".pq"):
            table.to_parquet(tmp, index=False)
        else:
            table.to_csv(tmp, index=False, sep="\t" if suffix == ".tsv" else ",")
    return path


def _promoter(text: str) -> tuple[float, float]:
    try:
        up, down = (float(v) for v in text.split(","))
    except ValueError:
        raise HmvizError(f"--promoter takes two distances in bp, e.g. 1000,1000; got '{text}'.") from None
    return up, down


@verb("explain", "attributions of a model's output for a gene or a gene pair, as a long table", _explain_args)
def cmd_explain(args: argparse.Namespace) -> int:
    from hmviz.checkpoints import load_model
    from hmviz.explain import BASELINES, METHODS
    from hmviz.explain._methods import check_method
    from hmviz.explain.session import prepare
    from hmviz.training import choose_device

    # Cheap checks first: names, output suffix, model/method compatibility; then the data.
    if args.method not in METHODS:
        raise HmvizError(f"Unknown method '{args.method}'. Valid methods: {', '.join(METHODS)}.")
    if args.baseline not in BASELINES:
        raise HmvizError(f"Unknown baseline '{args.baseline}'. Valid baselines: {', '.join(BASELINES)}.")
    if Path(args.out).suffix.lower() not in _SUFFIXES:
        raise HmvizError(f"Cannot tell the format of '{args.out}'; end the file name with .csv, .tsv or .parquet.")
    if args.steps is not None and args.method != "integrated_gradients":
        raise HmvizError("--steps applies to integrated_gradients only.")
    promoter = _promoter(args.promoter)
    model, card = load_model(args.model, device=choose_device(args.device))
    check_method(args.method, model)
    options = {"n_steps": args.steps} if args.steps is not None else {}
    if card.get("task") == "differential" and args.vs:
        raise HmvizError(f"{card['model']} explains one gene between two cell types; drop --vs.")
    session = prepare(model, card, _read(args))  # checks the data against the model (cells, marks, window)
    marks = session.marks

    out_lines: list[str] = []
    base = None
    if session.differential or args.vs:
        pair = session.explain_pair(args.gene, args.vs, args.method, args.baseline, promoter_bp=promoter, **options)
        pe, names, gene = pair.explanation, pair.names, pair.gene
        base = pe.baseline
        table = pair.to_frame()
        if pe.probability is not None:
            what = "score" if pe.kind == "ranking" else "logit (a classifier's logits compared)"
            out_lines.append(f"{names[0]} vs {names[1]}: P({names[0]} > {names[1]}) = {pe.probability:.3f} "
                             f"({what} difference {pe.difference:+.4g})")
        else:
            out_lines.append(f"{gene}: predicted log2 fold change {names[1]} over {names[0]} {pe.difference:+.4g}")
        out_lines.append(pe.sentence)
        if pe.convergence_delta is not None:
            total = float(pe.values_a.sum() + pe.values_b.sum())
            out_lines.append(f"completeness: attributions sum to {total:+.4g}; difference minus baseline difference "
                             f"{pe.difference - pe.baseline_difference:+.4g} (delta {pe.convergence_delta:.2g})")
        label = pe.label
    else:
        row = session.row(args.gene)
        attr = session.explain_genes([row], args.method, args.baseline, **options)
        base = attr.baseline
        table = attr.to_frame()
        by_mark = attr.by_mark()[0]
        order = np.argsort(-np.abs(by_mark))
        out_lines.append(f"{session.display(row)}: {attr.target} {attr.outputs[0]:+.4g}"
                         + (f" (at the baseline {attr.baseline_outputs[0]:+.4g})" if attr.baseline_outputs is not None
                            else ""))
        out_lines.append("top marks: " + ", ".join(f"{marks[k]} {by_mark[k]:+.3g}" for k in order[:3]))
        if attr.convergence_delta is not None:
            out_lines.append(f"convergence delta: {attr.convergence_delta[0]:.2g} "
                             "(sum of attributions minus (output - baseline output))")
        label = attr.label
    if base is not None:
        out_lines.append(f"method: {label}; baseline: {base.name} ({base.description}; from {session.reference_note})"
                         if base.name != "zeros" else f"method: {label}; baseline: {base.name} ({base.description})")
    else:
        out_lines.append(f"method: {label} (no baseline)")
    write_table(table, args.out)
    print("\n".join(out_lines))
    print(f"wrote {len(table)} rows to {args.out}", file=sys.stderr)
    return 0
