"""One gene as a genome browser shows it: each mark's signal over the window, in the data's own
units, in bp relative to the TSS and (where the locus is known) in genomic coordinates.

Orientation. In a strand-aware dataset the bins of a ``-`` strand gene run in the direction of
transcription (see :mod:`hmviz.data.build`): bin ``b`` then covers genomic
``[tss + (tss_bin - b - 1) * bin_size, tss + (tss_bin - b) * bin_size)``. Otherwise (and for ``+``
genes) bins run in genome order: ``[tss + (b - tss_bin) * bin_size, tss + (b - tss_bin + 1) * bin_size)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from hmviz.errors import DataError

#: Genome browsers hmviz links to, by assembly name (no network call is made to draw a view).
_UCSC = "https://genome.ucsc.edu/cgi-bin/hgTracks?db={db}&position={chrom}:{start}-{end}"
_ENSEMBL = {
    "hg38": "https://www.ensembl.org/Homo_sapiens/Location/View?r={chrom}:{start}-{end}",
    "hg19": "https://grch37.ensembl.org/Homo_sapiens/Location/View?r={chrom}:{start}-{end}",
    "mm10": "https://nov2020.archive.ensembl.org/Mus_musculus/Location/View?r={chrom}:{start}-{end}",
    "mm39": "https://www.ensembl.org/Mus_musculus/Location/View?r={chrom}:{start}-{end}",
}


@dataclass(frozen=True)
class GeneLocus:
    """Where a gene's window lies: chromosome, TSS (0-based window centre) and strand."""

    chrom: str
    tss: int
    strand: str  # "+", "-" or "." (unknown)

    def window(self, n_bins: int, bin_size: int, tss_bin: int) -> tuple[int, int]:
        """The window's genomic span ``[start, end)`` (0-based, half-open)."""
        left = self.tss - tss_bin * bin_size
        return left, left + n_bins * bin_size

    def ucsc_position(self, n_bins: int, bin_size: int, tss_bin: int) -> str:
        """``chr:start-end`` as the UCSC browser writes a position (1-based, inclusive)."""
        start, end = self.window(n_bins, bin_size, tss_bin)
        return f"{self.chrom}:{max(start, 0) + 1:,}-{end:,}"


def window_coordinates(
    locus: GeneLocus, n_bins: int, bin_size: int, tss_bin: int, strand_aware: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Genomic ``(starts, ends)`` of every bin in the dataset's bin order, shape (bins,) each."""
    b = np.arange(n_bins, dtype=np.int64)
    if strand_aware and locus.strand == "-":
        starts = locus.tss + (tss_bin - b - 1) * bin_size
    else:
        starts = locus.tss + (b - tss_bin) * bin_size
    return starts, starts + bin_size


def gene_tracks(
    dataset, gene: int, locus: GeneLocus | None = None, attributions: np.ndarray | None = None
) -> pd.DataFrame:
    """One row per (mark, bin) of gene row ``gene``: ``mark``, ``bin``, ``start_bp``/``end_bp``
    relative to the TSS (in the direction of transcription when the data is strand-aware),
    ``signal`` in the data's units, and ``chrom``/``genomic_start``/``genomic_end`` when ``locus``
    is given; ``attribution`` when ``attributions`` (bins, marks) is given."""
    first = getattr(dataset, "first", dataset)
    signal = first.signal[gene]  # (bins, marks)
    n_bins, n_marks = signal.shape
    rel = first.bin_starts_bp()
    frame = pd.DataFrame(
        {
            "mark": np.repeat(np.asarray(first.marks, dtype=object), n_bins),
            "bin": np.tile(np.arange(n_bins), n_marks),
            "start_bp": np.tile(rel, n_marks),
            "end_bp": np.tile(rel + first.bin_size, n_marks),
            "signal": signal.T.reshape(-1).astype(np.float64),
        }
    )
    if locus is not None:
        starts, ends = window_coordinates(locus, n_bins, first.bin_size, first.tss_bin, bool(first.strand_aware))
        frame["chrom"] = locus.chrom
        frame["genomic_start"] = np.tile(starts, n_marks)
        frame["genomic_end"] = np.tile(ends, n_marks)
    if attributions is not None:
        att = np.asarray(attributions, dtype=np.float64)
        if att.shape != signal.shape:
            raise DataError(f"attributions have shape {att.shape}; the gene's signal has {signal.shape} (bins, marks).")
        frame["attribution"] = att.T.reshape(-1)
    return frame


def attribution_bedgraph(
    values: np.ndarray,
    locus: GeneLocus,
    bin_size: int,
    tss_bin: int,
    strand_aware: bool,
    *,
    name: str,
    description: str,
) -> str:
    """A bedGraph (UCSC) of one mark's per-bin ``values`` (bins,) of one gene, at the bins' genomic
    coordinates, sorted by position; a ``track`` line carries ``name`` and ``description``.
    Bins before position 0 are left out (a browser refuses negative coordinates)."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1:
        raise DataError(f"one mark's values are a vector (bins,); got shape {values.shape}.")
    starts, ends = window_coordinates(locus, values.size, bin_size, tss_bin, strand_aware)
    order = np.argsort(starts)
    keep = order[starts[order] >= 0]
    safe = lambda s: str(s).replace('"', "'").replace("\n", " ")  # noqa: E731
    lines = [
        f'track type=bedGraph name="{safe(name)}" description="{safe(description)}" '
        "visibility=full autoScale=on alwaysZero=on"
    ]
    lines += [f"{locus.chrom}\t{starts[k]}\t{ends[k]}\t{values[k]:.6g}" for k in keep]
    return "\n".join(lines) + "\n"


def browser_links(locus: GeneLocus, n_bins: int, bin_size: int, tss_bin: int, assembly: str | None) -> dict[str, str]:
    """Links to the gene's window in the UCSC browser and Ensembl for a known ``assembly``
    (``hg38``, ``hg19``, ``mm10``, ``mm39``); empty when the assembly is not known."""
    if not assembly:
        return {}
    start, end = locus.window(n_bins, bin_size, tss_bin)
    chrom = locus.chrom if locus.chrom.startswith("chr") else f"chr{locus.chrom}"
    where = dict(db=assembly, chrom=chrom, start=max(start, 0) + 1, end=end)
    links = {"UCSC": _UCSC.format(**where)}
    if assembly in _ENSEMBL:
        links["Ensembl"] = _ENSEMBL[assembly].format(**{**where, "chrom": chrom.removeprefix("chr")})
    return links
