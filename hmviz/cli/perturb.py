"""CLI verb ``perturb``: edit a gene's marks in silico and see the model's prediction move.

Three modes (exactly one):

* ``--edit MARK:REGION:OP[:VALUE] ...``: the prediction before and after the edits; ``--out`` gets
  ``gene_id, bin, bin_start_bp, mark, reads_before, reads_after, delta_reads``.
* ``--scan WINDOW_BP``: the effect of deleting each mark in each window; ``--out`` gets one row per
  mark and window (``reads_removed, score_after, effect``).
* ``--search``: the smallest edit, within ``--allow MARKS:REGION:add|remove|both`` (repeatable; default
  adding any mark anywhere in the window), that flips the answer; ``--out`` gets the edited signal.

The last line on stdout is one JSON object with at least ``score_before``, ``score_after``, ``unit`` and,
for a pair (``--vs``), ``p_before``, ``p_after``. Edits and allowances are checked against the model card
before the data is read; a bad one is one ``error:`` line (exit 2) and nothing is written.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from hmviz.cli.explain import _SUFFIXES, write_table
from hmviz.cli.model import _add_data_args, _read
from hmviz.cli.registry import verb
from hmviz.errors import HmvizError
from hmviz.views.genes import symbol_column


def _perturb_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", required=True, metavar="DIR", help="a model directory made by 'train'")
    _add_data_args(p)
    p.add_argument(
        "--gene", required=True, metavar="ID", help="gene id or symbol (gene A of a pair); its marks are edited"
    )
    p.add_argument("--vs", metavar="ID", help="second gene (B, not edited): report P(A above B) before and after")
    p.add_argument(
        "--cell",
        metavar="NAME",
        help="two-cell models (DeepDiff): the cell whose marks are edited (default: the second cell, B)",
    )
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument(
        "--edit",
        nargs="+",
        metavar="MARK:REGION:OP[:VALUE]",
        help="edits, applied in order: REGION is START..END (bp from the TSS) or upstream | promoter | "
        "gene_body | window; OP is remove | scale=F | set=V | add=V (reads per bin) | like=high | "
        "like=low (per-bin median of the high/low expression training genes)",
    )
    mode.add_argument(
        "--scan",
        type=int,
        metavar="WINDOW_BP",
        help="delete each mark in each window of this size (bp, a multiple of the bin size)",
    )
    mode.add_argument(
        "--search",
        action="store_true",
        help="find the smallest edit (L2 norm in reads) that flips the answer: gene called high/low, "
        "A above/below B (--vs), or the sign of a two-cell model's fold change",
    )
    p.add_argument(
        "--allow",
        nargs="+",
        metavar="MARKS:REGION:DIR",
        help="with --search: what may change, e.g. H3K4me3,H3K36me3:-1000..5000:add (DIR add | remove | "
        "both; default: add any mark anywhere)",
    )
    p.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    p.add_argument("--out", metavar="FILE", help="table to write (.csv, .tsv or .parquet)")


@verb("perturb", "edit a gene's marks in silico: prediction before/after, deletion scan, smallest edit", _perturb_args)
def cmd_perturb(args: argparse.Namespace) -> int:
    from hmviz.card import load_card
    from hmviz.perturb import Editor, Window, allowed_masks, parse_edits, resolve, scan, smallest_edit
    from hmviz.perturb.scan import windows
    from hmviz.trained import load

    # Cheap checks first (flags, edits against the card's marks and window), then the model and data.
    if args.out and Path(args.out).suffix.lower() not in _SUFFIXES:
        raise HmvizError(f"Cannot tell the format of '{args.out}'; end the file name with .csv, .tsv or .parquet.")
    if args.allow and not args.search:
        raise HmvizError("--allow goes with --search; drop it or add --search.")
    window = Window.from_card(load_card(args.model))
    if args.edit:
        edits = parse_edits(args.edit)
        resolve(edits, window)
    elif args.scan is not None:
        windows(window, args.scan)
    else:
        allow = args.allow or [f"{','.join(window.marks)}:window:add"]
        allowed_masks(allow, window)

    editor = Editor.from_session(load(args.model, device=args.device).session(_read(args)), args.cell)
    if args.edit:
        result = editor.perturb(args.gene, edits, args.vs)
        lines, table, summary = result.lines(), result.to_frame(), {"mode": "edit", **result.summary()}
    elif args.scan is not None:
        res = scan(editor, args.gene, args.scan, args.vs)
        m, w = res.strongest()
        lines = [
            (
                f"{res.gene}: {res.unit} {res.score_before:+.4g}; deleting each mark in {len(res.starts_bp)} "
                f"windows of {res.window_bp} bp"
            ),
            (
                f"strongest: {res.marks[m]} over {res.starts_bp[w]:+d}..{res.ends_bp[w]:+d} bp changes it by "
                f"{res.effect[m, w]:+.4g}"
            ),
        ]
        lines += [
            f"  {mark}: largest effect {res.effect[k].max():+.3g}, smallest {res.effect[k].min():+.3g}"
            for k, mark in enumerate(res.marks)
        ]
        table, summary = res.to_frame(), {"mode": "scan", **res.summary()}
    else:
        found = smallest_edit(editor, args.gene, allow, args.vs)
        lines, table, summary = found.lines(), found.to_frame(), found.summary()
    if args.out:
        write_table(symbol_column(table, editor.session.dataset), args.out)
    print("\n".join(lines))
    if args.out:
        print(f"wrote {len(table)} rows to {args.out}", file=sys.stderr)
    print(json.dumps(summary))
    return 0
