"""Genome-wide tracks + a gene annotation -> a :class:`HistoneDataset` binned around each TSS.

:func:`build_table` cuts a window of ``2 * flank`` bp centred on each gene's TSS (see
:mod:`hmviz.data.annotation` for where the centre lies) into ``2 * flank / bin_size`` bins, and
bins every mark's track by the rules of :mod:`hmviz.data.tracks` (sum, mean or max over the bin's
bp; mean signalValue of overlapping peaks). Bin ``b`` covers
``[tss - flank + b * bin_size, tss - flank + (b + 1) * bin_size)``, so ``tss_bin = flank / bin_size``.

Rules, each counted in the :class:`BuildReport`:

* **Orientation.** By default bins run in genomic order for every gene (``strand_aware=False`` in
  the dataset). With ``strand_aware=True`` the bins of ``-`` strand genes are reversed so that they
  run in the direction of transcription (upstream bins first, the TSS at ``tss_bin``).
* **Chromosome names** are matched across files after harmonising them (``chr1`` = ``1``,
  ``chrM`` = ``MT``, ``chrX`` = ``X``); the dataset keeps the annotation's spelling.
* **A chromosome missing from a bigWig or bedGraph**: its genes are dropped (the signal there was
  not measured, which is not the same as 0). **Missing from a peak file**: no peaks there, so
  its bins are 0 and the genes are kept.
* **A TSS beyond the end of its chromosome** (by a bigWig's chromosome lengths; usually a sign that
  the annotation and the track use different genome assemblies): the gene is dropped.
* **A window running off a chromosome end** (before bp 0, or past the end recorded in a bigWig):
  the gene is kept and the bins outside the chromosome are 0 (no signal exists there).
* **Duplicate gene ids** in the annotation: the first record is used.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hmviz import limits
from hmviz.data.annotation import GeneAnnotation, read_genes
from hmviz.data.dataset import HistoneDataset
from hmviz.data.formats._files import missing_file_error
from hmviz.data.formats.expression import attach_expression
from hmviz.data.io import read_expression
from hmviz.data.splits import normalize_chrom
from hmviz.data.tracks import STATS, Stat, Track, check_resolution, open_track, track_kind
from hmviz.data.validation import FLOAT32_MAX, listing
from hmviz.errors import DataError

log = logging.getLogger(__name__)


@dataclass
class BuildReport:
    """What :func:`build_table` did, with every gene it dropped or changed counted; ``str()`` of it
    is a short report."""

    genes_in_annotation: int
    genes_built: int
    marks: tuple[str, ...]
    bin_size: int
    flank: int
    stat: str
    strand_aware: bool
    #: one line per mark: its file, kind, chromosomes and resolution
    tracks: dict[str, str] = field(default_factory=dict)
    #: chromosome (annotation's name) -> genes dropped because a bigWig/bedGraph lacks it
    missing_chromosome_genes: dict[str, int] = field(default_factory=dict)
    #: chromosome -> marks whose bigWig/bedGraph lacks it
    missing_chromosome_marks: dict[str, list[str]] = field(default_factory=dict)
    #: mark -> {chromosome: genes} kept with zeros because the peak file has no peak there
    peakless_chromosome_genes: dict[str, dict[str, int]] = field(default_factory=dict)
    #: genes dropped because their TSS lies past the chromosome end of a track
    tss_outside_chromosome: int = 0
    #: genes kept whose window runs off a chromosome end (those bins are 0)
    clipped_windows: int = 0
    duplicate_gene_ids: list[str] = field(default_factory=list)
    genes_with_expression: int | None = None
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def n_bins(self) -> int:
        return 2 * self.flank // self.bin_size

    def __str__(self) -> str:
        order = (
            "bins of - strand genes reversed (strand-aware)"
            if self.strand_aware
            else "bins in genomic order for every gene (not strand-aware)"
        )
        lines = [
            f"built {self.genes_built:,} of {self.genes_in_annotation:,} genes x {self.n_bins} bins of "
            f"{self.bin_size} bp (TSS at bin {self.flank // self.bin_size}, window -{self.flank}..+{self.flank} bp) "
            f"x {len(self.marks)} marks; stat {self.stat}; {order}",
        ]
        lines += [f"  {mark}: {text}" for mark, text in self.tracks.items()]
        if self.missing_chromosome_genes:
            n = sum(self.missing_chromosome_genes.values())
            per = ", ".join(
                f"{c} {k} (not in {', '.join(self.missing_chromosome_marks[c])})"
                for c, k in sorted(self.missing_chromosome_genes.items(), key=lambda x: -x[1])
            )
            lines.append(f"dropped {n:,} genes on chromosomes missing from a bigWig/bedGraph: {per}")
        if self.tss_outside_chromosome:
            lines.append(
                f"dropped {self.tss_outside_chromosome:,} genes whose TSS lies past the end of its "
                "chromosome in a track (do the annotation and tracks use the same genome assembly?)"
            )
        for mark, per_chrom in self.peakless_chromosome_genes.items():
            per = ", ".join(f"{c} {k}" for c, k in sorted(per_chrom.items(), key=lambda x: -x[1]))
            lines.append(f"zeros for {sum(per_chrom.values()):,} genes in {mark}: no peak on their chromosome ({per})")
        if self.clipped_windows:
            lines.append(
                f"{self.clipped_windows:,} genes have a window running off a chromosome end; "
                "the bins outside the chromosome are 0"
            )
        if self.duplicate_gene_ids:
            lines.append(
                f"{len(self.duplicate_gene_ids):,} gene ids listed twice; the first record is used "
                f"({listing(self.duplicate_gene_ids)})"
            )
        if self.genes_with_expression is not None:
            lines.append(f"expression: {self.genes_with_expression:,} of {self.genes_built:,} genes have a value")
        lines += self.notes
        lines.append(f"time: {self.seconds:.1f} s")
        return "\n".join(lines)


def check_window(bin_size: int, flank: int) -> None:
    """``bin_size`` and ``flank`` positive, and ``flank`` a whole number of bins."""
    if bin_size <= 0 or flank <= 0:
        raise DataError(f"--bin-size and --flank must be positive numbers of bp; got {bin_size} and {flank}.")
    if flank % bin_size:
        near = sorted({max(flank // bin_size, 1) * bin_size, (flank // bin_size + 1) * bin_size})
        raise DataError(
            f"--flank {flank} is not a multiple of --bin-size {bin_size}, so the TSS would not fall on a bin "
            f"edge. Use --flank {' or '.join(map(str, near))}, or a bin size that divides {flank}."
        )
    limits.check(
        limits.BINS_PER_GENE,
        2 * flank // bin_size,
        f"--flank {flank} with --bin-size {bin_size}",
        "Use a smaller --flank or a larger --bin-size (e.g. --flank 5000 --bin-size 100 gives 100 bins).",
    )


def build_table(
    tracks: Mapping[str, str | Path],
    genes: str | Path | GeneAnnotation,
    bin_size: int = 100,
    flank: int = 5000,
    stat: Stat = "sum",
    strand_aware: bool = False,
    expression: str | Path | None = None,
) -> tuple[HistoneDataset, BuildReport]:
    """Bin each mark's track around every gene's TSS.

    ``tracks``: mark name -> bigWig, bedGraph or peak file (the marks keep this order).
    ``genes``: a GTF, BED6 or gene table (see :mod:`hmviz.data.annotation`), or an annotation read
    already. ``bin_size`` and ``flank`` in bp (``flank`` a multiple of ``bin_size``). ``stat``: how
    a bigWig/bedGraph is summarised over a bin's bp (``sum``, ``mean`` or ``max``; peak files always
    give the mean signalValue of overlapping peaks). ``expression``: a table (gene_id, expression)
    joined by gene id, replacing an expression column of the annotation.

    Returns the dataset (signal shaped (genes, 2 * flank / bin_size, marks), float32, genes in the
    annotation's order) and the :class:`BuildReport`. Raises :class:`DataError` for unusable input,
    a track coarser than ``bin_size``, or when no gene is left after the rules in the module docs.
    """
    t0 = time.perf_counter()
    check_window(int(bin_size), int(flank))
    bin_size, flank = int(bin_size), int(flank)
    if stat not in STATS:
        raise DataError(f"--stat must be one of {', '.join(STATS)}; got {stat!r}.")
    if not tracks:
        raise DataError("Give at least one track (--track MARK=PATH).")
    given = [*tracks.values(), *([expression] if expression is not None else [])]
    for path in [*given, *([genes] if not isinstance(genes, GeneAnnotation) else [])]:
        limits.check_regular_file(path)  # a FIFO would wait forever, /dev/zero never end
    for path in given:
        if not Path(path).is_file():  # fail before the slow steps, not after them
            raise (
                missing_file_error(Path(path))
                if not Path(path).exists()
                else DataError(f"{path}: is a folder where a file was expected.")
            )
    for path in tracks.values():
        track_kind(Path(path))
    ann = genes if isinstance(genes, GeneAnnotation) else read_genes(genes)
    n_bins = 2 * flank // bin_size
    marks = tuple(str(m) for m in tracks)
    report = BuildReport(
        len(ann), 0, marks, bin_size, flank, stat, bool(strand_aware), duplicate_gene_ids=list(ann.duplicates)
    )

    keys = np.asarray([normalize_chrom(c) for c in ann.chrom], dtype=object)
    chrom_keys, gene_chrom = np.unique(keys, return_inverse=True)
    by_chrom = [np.flatnonzero(gene_chrom == k) for k in range(chrom_keys.size)]
    left = ann.tss - flank
    limits.check(
        limits.SIGNAL_VALUES,
        len(ann) * n_bins * len(marks),
        f"{len(ann):,} genes x {n_bins:,} bins x {len(marks)} marks",
        "Use fewer bins per gene (a smaller --flank or a larger --bin-size) or fewer genes.",
    )
    signal = np.zeros((len(ann), n_bins, len(marks)), dtype=np.float32)
    missing = np.zeros(len(ann), dtype=bool)  # on a chromosome a bigWig/bedGraph lacks
    outside = np.zeros(len(ann), dtype=bool)  # TSS past the chromosome end
    clipped = left < 0  # window runs off a chromosome end
    for j, (mark, path) in enumerate(tracks.items()):
        track = open_track(mark, path)
        try:
            check_resolution(track, bin_size)
            names = _chromosome_names(track, chrom_keys, ann)
            for k, key in enumerate(chrom_keys):
                idx = by_chrom[k]
                chrom = names.get(key)
                if chrom is None:
                    _missing(report, track, ann.chrom[idx[0]], idx, missing)
                    continue
                size = (track.chrom_sizes or {}).get(chrom)
                if size is not None:
                    outside[idx] |= ann.tss[idx] > size
                    clipped[idx] |= left[idx] + 2 * flank > size
                values = track.bin_values(chrom, left[idx], n_bins, bin_size, stat)
                if (np.abs(values) > FLOAT32_MAX).any():
                    raise DataError(
                        f"{track}: the {stat} of its values over a {bin_size}-bp bin on {chrom} is "
                        f"{np.abs(values).max():g}, beyond the largest number hmviz stores (float32, "
                        f"{FLOAT32_MAX:.4g}). Check the track's values (are they damaged?), or use --stat mean."
                    )
                signal[idx, :, j] = values
            check_resolution(track, bin_size)  # a bigWig's resolution is known once it is read
            report.tracks[mark] = f"{track.describe()} ({path})"
            log.info("binned %s: %s", mark, report.tracks[mark])
        finally:
            track.close()
    report.tss_outside_chromosome = int((outside & ~missing).sum())
    keep = ~(missing | outside)
    if not keep.any():
        raise DataError(_nothing_left(report, ann))
    if strand_aware:
        minus = keep & (ann.strand == "-")
        signal[minus] = signal[minus, ::-1, :]
    report.clipped_windows = int((clipped & keep).sum())
    report.genes_built = int(keep.sum())
    ds = HistoneDataset(
        signal=signal[keep],
        gene_ids=ann.gene_ids[keep],
        marks=marks,
        bin_size=bin_size,
        tss_bin=flank // bin_size,
        symbols=None if ann.symbols is None else ann.symbols[keep],
        chrom=ann.chrom[keep],
        strand=ann.strand[keep],
        expression=None if ann.expression is None else ann.expression[keep],
        source=f"build-table: {len(marks)} tracks around the TSS of {ann.source}",
        strand_aware=bool(strand_aware),
        meta={
            "build": {
                "genes": ann.source,
                "tracks": {m: str(p) for m, p in tracks.items()},
                "stat": stat,
                "bin_size_bp": bin_size,
                "flank_bp": flank,
                "strand_aware": bool(strand_aware),
            }
        },
    )
    if expression is not None:
        notes: list[tuple[int, str]] = []  # (logging level, text)
        ds = attach_expression(ds, read_expression(expression), str(expression), notes)
        report.notes += [text for _, text in notes]
    if ds.expression is not None:
        report.genes_with_expression = int(np.isfinite(ds.expression).sum())
    report.seconds = time.perf_counter() - t0
    return ds, report


def _chromosome_names(track: Track, chrom_keys: np.ndarray, ann: GeneAnnotation) -> dict[str, str]:
    """Harmonised chromosome name -> the track's spelling; an error if the track shares none with
    the annotation, or spells one chromosome two ways."""
    names: dict[str, str] = {}
    for name in track.chromosomes:
        key = normalize_chrom(name)
        if key in names:
            raise DataError(
                f"{track}: chromosomes {names[key]} and {name} are the same chromosome spelled two "
                "ways; keep one spelling in the file."
            )
        names[key] = name
    if not set(names) & set(chrom_keys.tolist()):
        raise DataError(
            f"{track}: shares no chromosome with the gene annotation {ann.source} (track: "
            f"{listing(track.chromosomes)}; annotation: {listing(sorted(set(ann.chrom.tolist())))}). Check that "
            "both describe the same organism and genome assembly."
        )
    return names


def _nothing_left(report: BuildReport, ann: GeneAnnotation) -> str:
    why = []
    if report.missing_chromosome_genes:
        why.append(
            f"{sum(report.missing_chromosome_genes.values()):,} are on chromosomes missing from a bigWig or "
            f"bedGraph ({listing(sorted(report.missing_chromosome_genes))})"
        )
    if report.tss_outside_chromosome:
        why.append(
            f"{report.tss_outside_chromosome:,} have their TSS past the end of its chromosome in a track "
            "(a different genome assembly?)"
        )
    return (
        f"No gene is left of the {len(ann):,} in {ann.source}: {'; '.join(why)}. Use tracks and an annotation "
        "of the same genome assembly that cover the same chromosomes."
    )


def _missing(report: BuildReport, track: Track, chrom: str, idx: np.ndarray, dropped: np.ndarray) -> None:
    """Apply the rule for genes on a chromosome the track does not have."""
    if track.absent_chromosome_is_zero:
        report.peakless_chromosome_genes.setdefault(track.mark, {})[chrom] = idx.size
        return
    report.missing_chromosome_marks.setdefault(chrom, []).append(track.mark)
    report.missing_chromosome_genes[chrom] = idx.size
    dropped[idx] = True
