"""Data verbs: ``validate`` (read and describe a dataset) and ``convert`` (to the long format).

Both are thin wrappers over :func:`hmviz.data.io.read_dataset` and
:func:`hmviz.data.io.write_long`; bad input raises DataError, which :mod:`hmviz.cli` prints as one
``error: ...`` line (exit 2).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from hmviz.atomic import output_lock
from hmviz.cli.annotation import add_annotation_argument, apply_annotation
from hmviz.cli.registry import verb
from hmviz.data.dataset import MultiCellDataset
from hmviz.data.formats.long import output_kind
from hmviz.data.io import FORMATS, read_dataset, write_long
from hmviz.errors import DataError


def _input_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--format", default="auto", choices=("auto", *FORMATS), help="input format (default: detect from the content)"
    )
    p.add_argument(
        "--expression", metavar="PATH", help="expression table (gene_id, expression; CSV/TSV) joined by gene id"
    )
    add_annotation_argument(p)


def _validate_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH", help="data file(s) or folder(s)")
    _input_arguments(p)


@verb("validate", "read a dataset, check it and describe it (genes, bins, marks, labels, splits)", _validate_arguments)
def validate(args: argparse.Namespace) -> int:
    data = apply_annotation(args, read_dataset(args.paths, format=args.format, expression=args.expression))
    print(data.describe())
    cells = data.cells.values() if isinstance(data, MultiCellDataset) else [data]
    notes = list(dict.fromkeys(n for ds in cells for n in ds.meta.get("notes", [])))
    for note in notes:
        print(f"note:     {note}")
    return 0


def _convert_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "paths",
        nargs="+",
        metavar="IN... OUT",
        help="input file(s) or folder(s), then the output file (.csv, .csv.gz, .tsv, .tsv.gz, .parquet)",
    )
    _input_arguments(p)
    p.add_argument(
        "--merge-bins",
        type=int,
        default=1,
        metavar="K",
        help="write bins K times wider: every K adjacent bins become one, aligned on the TSS (e.g. 100 bins "
        "of 100 bp with --merge-bins 10: 10 bins of 1 kb); bins at the window's ends that fill no whole "
        "group are dropped",
    )
    p.add_argument(
        "--merge-how",
        choices=["sum", "mean"],
        default="sum",
        help="how merged bins combine: sum (read counts, the default) or mean (fold enrichment, RPKM)",
    )
    p.add_argument("--force", action="store_true", help="overwrite OUT if it exists")


@verb("convert", "convert a dataset in any supported format to hmviz's long format", _convert_arguments)
def convert(args: argparse.Namespace) -> int:
    if len(args.paths) < 2:
        raise DataError(
            "convert needs at least one input and an output: convert IN... OUT (e.g. convert data/ data.parquet)."
        )
    *inputs, out = args.paths
    out = Path(out)
    output_kind(out)  # an unknown suffix fails before anything is read
    with output_lock(out, f"the output {out}"):  # a second convert to the same OUT is refused
        if out.is_dir():
            raise DataError(f"{out} is a folder; give a file name for the output (e.g. {out / 'data.parquet'}).")
        if out.exists() and not args.force:
            raise DataError(f"{out} already exists; choose another name, or add --force to overwrite it.")
        data = apply_annotation(args, read_dataset(inputs, format=args.format, expression=args.expression))
        if args.merge_bins != 1:
            data = _merged(data, args.merge_bins, args.merge_how)
        write_long(data, out)
    cells = list(data.cells.values()) if isinstance(data, MultiCellDataset) else [data]
    first = cells[0]
    rows = sum(ds.n_genes * ds.n_bins for ds in cells)
    where = f" in {len(cells)} cells ({', '.join(c.cell or '' for c in cells)})" if len(cells) > 1 else ""
    merged = first.meta.get("merged_bins")
    how = ""
    if merged:
        dropped = merged["dropped_bins"]
        how = (
            f" (from {merged['from']}, {merged['factor']} at a time by {merged['how']}; "
            f"{dropped['upstream']} bin(s) upstream and {dropped['downstream']} downstream dropped)"
        )
    print(
        f"wrote {out}: {rows} rows, {first.n_genes} genes x {first.n_bins} bins x {first.n_marks} marks "
        f"({', '.join(first.marks)}){where}, {first.bin_size}-bp bins{how}, TSS at bin {first.tss_bin}"
    )
    return 0


def _merged(data, factor: int, how: str):
    """``data`` with its bins merged ``factor`` at a time, the errors in the flags' words."""
    if factor < 1:
        raise DataError(f"--merge-bins must be 1 or more (bins merged into one), got {factor}.")
    try:
        return data.merge_bins(factor, how)
    except DataError as exc:
        raise DataError(str(exc).replace("Merge fewer bins at a time", "Give a smaller --merge-bins")) from None
