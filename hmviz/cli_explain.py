"""CLI verb ``explain``: attributions for one gene, or for a gene pair (``--vs``), as a long table.

``python -m hmviz explain --model DIR --data PATH --gene ID [--vs ID] [--method NAME]
[--baseline NAME] [--steps N] --out FILE`` writes ``gene, bin, bin_start_bp, mark, attribution``
(CSV, TSV or Parquet by the suffix of FILE, written atomically) and prints a short summary.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from hmviz.cli import verb
from hmviz.cli_model import _add_data_args, _read
from hmviz.errors import DataError, HmvizError

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
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        if suffix in (".parquet", ".pq"):
            table.to_parquet(tmp, index=False)
        else:
            table.to_csv(tmp, index=False, sep="\t" if suffix == ".tsv" else ",")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return path


def _promoter(text: str) -> tuple[float, float]:
    try:
        up, down = (float(v) for v in text.split(","))
    except ValueError:
        raise HmvizError(f"--promoter takes two distances in bp, e.g. 1000,1000; got '{text}'.") from None
    return up, down


def _training_genes(card: dict, ds) -> tuple[np.ndarray, str]:
    """Rows of the reference (training) genes for baselines, and how they were chosen."""
    from hmviz.training import training_split

    trained_on = training_split(card, ds)
    if trained_on is not None:
        return trained_on.split_indices("train"), "the model's training genes"
    if ds.split is not None and (ds.split == "train").any():
        return ds.split_indices("train"), "the training split of the data"
    return np.arange(ds.n_genes), f"all {ds.n_genes} genes of the data (it has no training split)"


def _display(ds, row: int) -> str:
    gene_id = str(ds.gene_ids[row])
    symbol = str(ds.symbols[row]) if ds.symbols is not None else ""
    return symbol if symbol and symbol not in ("nan", "None", gene_id) else gene_id


@verb("explain", "attributions of a model's output for a gene or a gene pair, as a long table", _explain_args)
def cmd_explain(args: argparse.Namespace) -> int:
    from hmviz.checkpoints import load_model
    from hmviz.data.dataset import MultiCellDataset
    from hmviz.explain import BASELINES, METHODS, explain, explain_pair, make_baseline
    from hmviz.explain._methods import check_method
    from hmviz.training import choose_device, prepare_inputs

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
    dataset = _read(args)
    differential = card.get("task") == "differential"

    if differential:
        if not isinstance(dataset, MultiCellDataset):
            raise DataError(f"{card['model']} compares two cell types; give data with both cells over the same genes.")
        if args.vs:
            raise HmvizError(f"{card['model']} explains one gene between two cell types; drop --vs.")
        cell_a, cell_b = (card.get("cells") or dataset.cell_names)[:2]
        ds_a, ds_b = dataset.pair(cell_a, cell_b)
        row = ds_a.index_of(args.gene)
        xa, xb = prepare_inputs(card, ds_a, f"cell {cell_a}"), prepare_inputs(card, ds_b, f"cell {cell_b}")
        ds, x = ds_a, xa
        rows = [row]
    else:
        if isinstance(dataset, MultiCellDataset):
            raise DataError(f"{card['model']} models one cell type; the data has {len(dataset.cells)} "
                            f"({', '.join(dataset.cell_names)}). Give the data of one cell.")
        ds = dataset
        rows = [ds.index_of(args.gene)] + ([ds.index_of(args.vs)] if args.vs else [])
        x = prepare_inputs(card, ds)
    marks = tuple(card["marks"])
    starts = ds.bin_starts_bp()

    ref_rows, ref_note = _training_genes(card, ds)
    base = None
    if METHODS[args.method].needs_baseline:
        reference = x[ref_rows] if not differential else torch.cat([xa[ref_rows], xb[ref_rows]])
        if differential and args.baseline == "low_expression_mean":
            raise HmvizError("low_expression_mean is defined for one cell type; for a two-cell model choose "
                             "zeros, train_mean or gene_sample (with gradient_shap).")
        labels = ds.labels[ref_rows] if ds.labels is not None else None
        expression = ds.expression[ref_rows] if ds.expression is not None and labels is None else None
        base = make_baseline(args.baseline, reference, labels=labels, expression=expression,
                             transform=card["transform"])

    out_lines: list[str] = []
    if differential or args.vs:
        gene = None
        if differential:
            names, gene = (str(cell_a), str(cell_b)), _display(ds, rows[0])
            ids = (f"{ds.gene_ids[rows[0]]}@{cell_a}", f"{ds.gene_ids[rows[0]]}@{cell_b}")
            pair_in = (xa[rows[0]], xb[rows[0]])
        else:
            names = (_display(ds, rows[0]), _display(ds, rows[1]))
            ids = (str(ds.gene_ids[rows[0]]), str(ds.gene_ids[rows[1]]))
            if names[0] == names[1]:
                names = ids
            pair_in = (x[rows[0]], x[rows[1]])
        pe = explain_pair(model, *pair_in, args.method, base, names=names, gene=gene, marks=marks,
                          bin_starts_bp=starts, promoter_bp=promoter, **options)
        table = pe.to_frame()
        table["gene"] = table["gene"].map({names[0]: ids[0], names[1]: ids[1]})
        if pe.probability is not None:
            what = "score" if pe.kind == "ranking" else "logit (a classifier's logits compared)"
            out_lines.append(f"{names[0]} vs {names[1]}: P({names[0]} > {names[1]}) = {pe.probability:.3f} "
                             f"({what} difference {pe.difference:+.4g})")
        else:
            out_lines.append(f"{gene}: predicted log2 fold change {cell_b} over {cell_a} {pe.difference:+.4g}")
        out_lines.append(pe.sentence)
        if pe.convergence_delta is not None:
            total = float(pe.values_a.sum() + pe.values_b.sum())
            out_lines.append(f"completeness: attributions sum to {total:+.4g}; difference minus baseline difference "
                             f"{pe.difference - pe.baseline_difference:+.4g} (delta {pe.convergence_delta:.2g})")
        label = pe.label
    else:
        attr = explain(model, x[rows], args.method, baseline=base, marks=marks,
                       gene_ids=[str(ds.gene_ids[rows[0]])], bin_starts_bp=starts, **options)
        table = attr.to_frame()
        by_mark = attr.by_mark()[0]
        order = np.argsort(-np.abs(by_mark))
        out_lines.append(f"{_display(ds, rows[0])}: {attr.target} {attr.outputs[0]:+.4g}"
                         + (f" (at the baseline {attr.baseline_outputs[0]:+.4g})" if attr.baseline_outputs is not None
                            else ""))
        out_lines.append("top marks: " + ", ".join(f"{marks[k]} {by_mark[k]:+.3g}" for k in order[:3]))
        if attr.convergence_delta is not None:
            out_lines.append(f"convergence delta: {attr.convergence_delta[0]:.2g} "
                             "(sum of attributions minus (output - baseline output))")
        label = attr.label
    if base is not None:
        out_lines.append(f"method: {label}; baseline: {base.name} ({base.description}; from {ref_note})"
                         if base.name != "zeros" else f"method: {label}; baseline: {base.name} ({base.description})")
    else:
        out_lines.append(f"method: {label} (no baseline)")
    write_table(table, args.out)
    print("\n".join(out_lines))
    print(f"wrote {len(table)} rows to {args.out}", file=sys.stderr)
    return 0
