"""CLI verb ``explain``: attributions for one gene, or for a gene pair (``--vs``), as a long table.

``python -m hmviz explain --model DIR --data PATH --gene ID [--vs ID] [--method NAME]
[--baseline NAME] [--steps N] --out FILE`` writes ``gene, bin, bin_start_bp, mark, attribution``
(CSV, TSV or Parquet by the suffix of FILE, written atomically), prints a short summary and ends
with one JSON line: ``method``, ``kind`` (additive, sensitivity, removal), ``additive``, ``unit``,
``baseline``, ``output_difference`` (what additive attributions add up to: the output minus its
value at the reference; ``output`` too for one gene), ``attribution_sum``, ``gap``
(``|attribution_sum - output_difference|``, additive methods only), ``tolerance_met`` (gap within 1%
of ``|output_difference|``), ``steps``/``samples`` and ``cap_reached`` for Integrated Gradients /
GradientShap, and ``sentence``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from hmviz import limits
from hmviz.atomic import atomic_output
from hmviz.cli.model import _add_data_args, _read
from hmviz.cli.registry import verb
from hmviz.errors import HmvizError
from hmviz.views.genes import symbol_column

_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq")


def _explain_args(p: argparse.ArgumentParser) -> None:
    # Names are checked in cmd_explain (an unknown one lists the valid ones): importing the
    # explain package here would load torch and Captum for every verb's --help.
    p.add_argument("--model", required=True, metavar="DIR", help="a model directory made by 'train'")
    _add_data_args(p)
    p.add_argument("--gene", required=True, metavar="ID", help="gene id or symbol (gene A of a pair)")
    p.add_argument("--vs", metavar="ID", help="second gene (B): explain why the model ranks A vs B")
    p.add_argument(
        "--method",
        default="integrated_gradients",
        metavar="NAME",
        help="attribution method, e.g. integrated_gradients (default), saliency, gradient_shap, "
        "deeplift, occlusion, feature_ablation",
    )
    p.add_argument(
        "--baseline",
        default=None,
        metavar="NAME",
        help="reference input: train_mean (the training genes' mean, default), zeros (no reads), "
        "low_expression_mean, gene_sample (for gradient_shap)",
    )
    p.add_argument(
        "--steps",
        type=int,
        metavar="N",
        help="first number of integration steps for integrated_gradients (default 50; doubled until the "
        "gap is within 1%% of the output difference, up to 512)",
    )
    p.add_argument(
        "--promoter",
        default="1000,1000",
        metavar="UP,DOWN",
        help="bp upstream and downstream of the TSS bounding the promoter region (default 1000,1000)",
    )
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
    if not all(np.isfinite(v) and 0 <= v <= 1e9 for v in (up, down)):
        raise HmvizError(
            f"--promoter takes two finite, non-negative distances in bp (upstream,downstream), "
            f"e.g. 1000,1000; got '{text}'."
        )
    return up, down


def _number(v) -> float | None:
    return None if v is None or not math.isfinite(float(v)) else float(v)


def _summary(
    method: str,
    kind: str,
    unit: str,
    baseline: str | None,
    explained: float | None,
    total: float,
    gap: float | None,
    work: int | None,
    cap_reached: bool | None,
    sentence: str,
    **extra,
) -> dict:
    """The JSON line: what the numbers are, what they add up to, and the sentence."""
    from hmviz.explain._methods import METHODS

    spec = METHODS[method]
    out = {
        "method": method,
        "kind": kind,
        "additive": gap is not None,
        "unit": unit,
        "baseline": baseline,
        **{k: _number(v) if isinstance(v, float) else v for k, v in extra.items()},
        "output_difference": _number(explained),
        "attribution_sum": total,
        "gap": None if gap is None else abs(gap),
    }
    if gap is not None and explained is not None:  # the tolerance is relative to the explained difference
        out["tolerance_met"] = bool(abs(gap) <= 0.01 * abs(explained))
    if spec.refinement is not None and work is not None:
        out["steps" if spec.refinement[0] == "n_steps" else "samples"] = int(work)
        out["cap_reached"] = bool(cap_reached)
    out["sentence"] = sentence
    return out


@verb("explain", "attributions of a model's output for a gene or a gene pair, as a long table", _explain_args)
def cmd_explain(args: argparse.Namespace) -> int:
    from hmviz.explain import BASELINES, DEFAULT_BASELINE, METHODS
    from hmviz.explain._methods import check_method
    from hmviz.trained import load

    # Cheap checks first: names, output suffix, model/method compatibility; then the data.
    if args.method not in METHODS:
        raise HmvizError(f"Unknown method '{args.method}'. Valid methods: {', '.join(METHODS)}.")
    baseline = args.baseline or DEFAULT_BASELINE
    if baseline not in BASELINES:
        raise HmvizError(f"Unknown baseline '{baseline}' (--baseline). Valid baselines: {', '.join(BASELINES)}.")
    if Path(args.out).is_dir():
        raise HmvizError(
            f"--out {args.out} is a folder; --out names the output table, e.g. {Path(args.out) / 'attributions.csv'}."
        )
    if Path(args.out).suffix.lower() not in _SUFFIXES:
        raise HmvizError(f"Cannot tell the format of '{args.out}'; end the file name with .csv, .tsv or .parquet.")
    if args.steps is not None and args.method != "integrated_gradients":
        raise HmvizError("--steps applies to integrated_gradients only.")
    if args.steps is not None and not 1 <= args.steps <= limits.STEPS.value():
        raise HmvizError(
            f"--steps must be a whole number from 1 to {limits.STEPS.value():,} (set "
            f"{limits.STEPS.env} to allow more); got {args.steps}."
        )

    promoter = _promoter(args.promoter)
    model = load(args.model, device=args.device)
    check_method(args.method, model.module)
    options = {"n_steps": args.steps} if args.steps is not None else {}
    if model.card.task == "differential" and args.vs:
        raise HmvizError(f"{model.card.model} explains one gene between two cell types; drop --vs.")
    session = model.session(_read(args))  # checks the data against the model (cells, marks, window)

    out_lines: list[str] = []
    base = None
    if session.differential or args.vs:
        pair = session.explain_pair(args.gene, args.vs, args.method, baseline, promoter_bp=promoter, **options)
        pe, names, gene = pair.explanation, pair.names, pair.gene
        base = pe.baseline
        table = pair.to_frame()
        if pe.probability is not None:
            what = "score" if pe.kind == "ranking" else "logit (a classifier's logits compared)"
            out_lines.append(
                f"{names[0]} vs {names[1]}: P({names[0]} > {names[1]}) = {pe.probability:.3f} "
                f"({what} difference {pe.difference:+.4g})"
            )
        else:
            out_lines.append(f"{gene}: predicted log2 fold change {names[1]} over {names[0]} {pe.difference:+.4g}")
        out_lines.append(pe.sentence)
        explained = None if pe.baseline_difference is None else pe.difference - pe.baseline_difference
        if pe.convergence_delta is not None:
            out_lines.append(
                f"completeness: attributions sum to {pe.attribution_sum:+.4g}; the {pe.explained} minus "
                f"its value at the reference is {explained:+.4g} (gap {abs(pe.convergence_delta):.2g})"
            )
        label = pe.label
        summary = _summary(
            args.method,
            METHODS[args.method].kind,
            pe.unit,
            base.name if base else None,
            explained,
            pe.attribution_sum,
            pe.convergence_delta,
            pe.work,
            pe.cap_reached,
            pe.sentence,
            explained_quantity=pe.explained,
            difference=pe.difference,
            baseline_difference=pe.baseline_difference,
            probability=pe.probability,
        )
    else:
        row = session.row(args.gene)
        attr = session.explain_genes([row], args.method, baseline, **options)
        base = attr.baseline
        table = attr.to_frame()
        out_lines.append(
            f"{session.display(row)}: {attr.target} {attr.outputs[0]:+.4g}"
            + (f" (at the baseline {attr.baseline_outputs[0]:+.4g})" if attr.baseline_outputs is not None else "")
        )
        if attr.convergence_delta is not None:
            out_lines.append(
                f"gap: {abs(attr.convergence_delta[0]):.2g} "
                "(sum of attributions minus (output - output at the reference))"
            )
        label = attr.label
        sentence = attr.sentence(0, bin_size=session.dataset.bin_size, strand_aware=session.strand_aware)
        out_lines.append(sentence)
        base_out = None if attr.baseline_outputs is None else float(attr.baseline_outputs[0])
        summary = _summary(
            args.method,
            attr.kind,
            attr.unit,
            base.name if base else None,
            None if base_out is None else float(attr.outputs[0]) - base_out,
            float(attr.values[0].astype(np.float64).sum()),
            None if attr.convergence_delta is None else float(attr.convergence_delta[0]),
            None if attr.work is None else int(attr.work[0]),
            None if attr.cap_reached is None else bool(attr.cap_reached[0]),
            sentence,
            gene=str(session.dataset.gene_ids[row]),
            output=float(attr.outputs[0]),
            baseline_output=base_out,
        )
    if base is not None:
        out_lines.append(
            f"method: {label} ({METHODS[args.method].kind}); baseline: {base.name} ({base.description}"
            + (f"; from {session.reference_note})" if base.name != "zeros" else ")")
        )
    else:
        out_lines.append(f"method: {label} ({METHODS[args.method].kind}; no baseline)")
    write_table(symbol_column(table, session.dataset), args.out)
    print("\n".join(out_lines))
    print(f"wrote {len(table)} rows to {args.out}", file=sys.stderr)
    print(json.dumps(summary))
    return 0
