"""CLI verb ``build-table``: genome-wide tracks + a gene annotation -> a dataset in the long format
(a thin wrapper over :func:`hmviz.data.build.build_table`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from hmviz.atomic import output_lock
from hmviz.cli.registry import verb
from hmviz.errors import DataError

_EXAMPLE = "e.g. --track H3K4me3=H3K4me3.bigWig"


def parse_track_specs(specs: list[str]) -> dict[str, Path]:
    """``["H3K4me3=a.bw", ...]`` -> ``{"H3K4me3": Path("a.bw"), ...}`` in the order given.

    Raises :class:`DataError` for a spec that is not MARK=PATH, a mark given twice, or a mark name
    the long format reserves for its own columns.
    """
    from hmviz.data.formats.long import RESERVED

    tracks: dict[str, Path] = {}
    for spec in specs:
        mark, sep, path = spec.partition("=")
        mark, path = mark.strip(), path.strip()
        if not sep or not mark or not path:
            raise DataError(f"--track {spec!r}: write it as MARK=PATH ({_EXAMPLE}).")
        if mark.lower() in RESERVED:
            raise DataError(
                f"--track {spec!r}: {mark} is a column name of the long format, not a mark name; "
                "name the mark after the histone modification (e.g. H3K27ac)."
            )
        if mark in tracks:
            raise DataError(
                f"mark {mark} is given twice (--track {mark}={tracks[mark]} and --track {spec}); give each mark once."
            )
        tracks[mark] = Path(path)
    return tracks


def _args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--track",
        action="append",
        required=True,
        metavar="MARK=PATH",
        help="one mark's signal: bigWig, bedGraph(.gz) or ENCODE narrowPeak/broadPeak/gappedPeak "
        f"(repeat for every mark; the marks keep this order; {_EXAMPLE})",
    )
    p.add_argument(
        "--genes",
        required=True,
        metavar="PATH",
        help="gene annotation: GTF (gene records), BED6, or a table with gene_id, chrom and tss "
        "(or start, end, strand); optional symbol and expression columns",
    )
    p.add_argument(
        "--out",
        required=True,
        metavar="PATH",
        help="output in the long format: .csv, .csv.gz, .tsv, .tsv.gz or .parquet",
    )
    p.add_argument("--bin-size", type=int, default=100, metavar="BP", help="bin size in bp (default 100)")
    p.add_argument(
        "--flank",
        type=int,
        default=5000,
        metavar="BP",
        help="bp either side of the TSS, a multiple of --bin-size (default 5000: 100 bins)",
    )
    p.add_argument(
        "--stat",
        default="sum",
        choices=["sum", "mean", "max"],
        help="bigWig/bedGraph value per bin: sum over its bp (coverage-weighted), mean per bp "
        "(uncovered bp count as 0) or max (default sum); peak files always give the mean "
        "signalValue of overlapping peaks",
    )
    p.add_argument(
        "--strand-aware",
        action="store_true",
        help="reverse the bins of - strand genes so that they run in the direction of transcription "
        "(default: genomic order for every gene)",
    )
    p.add_argument("--expression", metavar="PATH", help="expression table (gene_id, expression) to join by gene id")
    p.add_argument("--force", action="store_true", help="replace --out if it exists")


@verb("build-table", "bin bigWig/bedGraph/peak tracks around each gene's TSS into a dataset (long format)", _args)
def cmd_build_table(args: argparse.Namespace) -> int:
    from hmviz.data.build import build_table
    from hmviz.data.formats.long import output_kind
    from hmviz.data.io import write_long

    tracks = parse_track_specs(args.track)
    out = Path(args.out)
    output_kind(out)  # a bad suffix fails now, not after the build
    with output_lock(out, f"--out {out}"):  # a second build to the same --out is refused
        if out.is_dir():
            raise DataError(f"--out {out} is a folder; give a file name (e.g. {out / 'table.parquet'}).")
        if out.exists() and not args.force:
            raise DataError(f"{out}: already exists; add --force to replace it, or choose another --out.")
        dataset, report = build_table(
            tracks,
            args.genes,
            bin_size=args.bin_size,
            flank=args.flank,
            stat=args.stat,
            strand_aware=args.strand_aware,
            expression=args.expression,
        )
        write_long(dataset, out)
    print(report)
    print(f"wrote {out} ({dataset.n_genes:,} genes x {dataset.n_bins} bins x {dataset.n_marks} marks)")
    return 0
