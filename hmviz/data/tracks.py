"""Genome-wide signal tracks, binned into windows: bigWig, bedGraph and ENCODE peak files.

One interface, :class:`Track`, over three kinds of file (the kind comes from the suffix, see
:data:`SUPPORTED`):

* **bigWig** (``.bw``, ``.bigWig``), read with pyBigWig. Only the windows asked for are read, in
  pieces of at most 4 Mbp, as numpy arrays that are run-length encoded back into intervals.
* **bedGraph** (``chrom start end value``; ``.bedGraph``, ``.bdg``, ``.bg``, optionally ``.gz``),
  parsed by pyarrow in one pass. Intervals must not overlap.
* **peaks**: ENCODE narrowPeak (10 columns), broadPeak (9) and gappedPeak (15) BED, also as
  ENCODE's ``.bed.gz`` downloads (the kind is told by the number of columns).

All coordinates are 0-based, half-open (as in BED, bedGraph and bigWig). A window is given by its
left end ``left`` and ``n_bins`` bins of ``bin_size`` bp: bin ``b`` covers
``[left + b * bin_size, left + (b + 1) * bin_size)``.

Binning rules
-------------
bigWig and bedGraph are a signal that is constant over each interval; **bp that no interval
covers count as 0** (also before position 0 and past the chromosome end).

* ``sum``: the sum over the bin's bp, i.e. coverage-weighted: an interval of value ``v`` that
  overlaps the bin by ``k`` bp adds ``v * k``.
* ``mean``: ``sum / bin_size`` (uncovered bp count as 0, so it is the mean per bp of the bin).
* ``max``: the largest value over the bin's bp (0 where no interval overlaps the bin).

Peak files: the value of a bin is the **mean signalValue of the peaks overlapping it** (by at least
1 bp; the whole peak, chromStart..chromEnd, for gappedPeak too), 0 where none; ``stat`` does not
apply. Signal must be non-negative (read counts, fold enrichment, -log10 p); a negative value is an
error naming where it is.

Resolution: a bigWig or bedGraph whose intervals all start and end on a grid of ``r`` bp (the
greatest common divisor of the positions where its value changes) has a resolution of ``r`` bp.
Bins finer than that would only repeat its values, so :func:`check_resolution` refuses them.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa

from hmviz.data.formats._assemble import encode, float_column, int_column
from hmviz.data.formats._files import first_line, missing_file_error, read_csv_table, read_source, strip_gz
from hmviz.data.validation import SourceFile
from hmviz.errors import DataError
from hmviz.limits import check_regular_file

Stat = Literal["sum", "mean", "max"]
STATS: tuple[str, ...] = ("sum", "mean", "max")

#: Suffix (lower case, after an optional ``.gz``) -> kind of track. ``.bed``: ENCODE peaks.
SUFFIXES: dict[str, str] = {
    ".bw": "bigWig",
    ".bigwig": "bigWig",
    ".bedgraph": "bedGraph",
    ".bdg": "bedGraph",
    ".bg": "bedGraph",
    ".narrowpeak": "narrowPeak",
    ".broadpeak": "broadPeak",
    ".gappedpeak": "gappedPeak",
    ".bed": "peaks",
}
SUPPORTED = (
    "bigWig (.bw, .bigWig), bedGraph (.bedGraph, .bdg, .bg) and ENCODE peak files "
    "(.narrowPeak, .broadPeak, .gappedPeak, or an ENCODE peak .bed); text files may be gzipped (.gz)"
)

#: ENCODE peak formats: number of columns, the 0-based column of signalValue, the column names.
PEAK_FORMATS: dict[str, tuple[int, int, str]] = {
    "narrowPeak": (10, 6, "chrom, start, end, name, score, strand, signalValue, pValue, qValue, peak"),
    "broadPeak": (9, 6, "chrom, start, end, name, score, strand, signalValue, pValue, qValue"),
    "gappedPeak": (
        15,
        12,
        "chrom, start, end, name, score, strand, thickStart, thickEnd, itemRgb, "
        "blockCount, blockSizes, blockStarts, signalValue, pValue, qValue",
    ),
}

_BIGWIG_PIECE_BP = 1 << 22  # read a bigWig in pieces of at most 4 Mbp (16 MB of float32)
_BIGWIG_MERGE_GAP = 1 << 15  # windows closer than this are read in one call (a call costs ~30 kbp)
_BIGWIG_PROBE_BP = 1 << 18  # the stretch read once to learn the resolution (see BigWigTrack._probe)
_HEADER_PREFIXES = (b"track", b"browser", b"#")
_BIGWIG_MAGIC = (b"\x26\xfc\x8f\x88", b"\x88\x8f\xfc\x26")  # 0x888FFC26, either byte order
_BIGBED_MAGIC = (b"\xeb\xf2\x89\x87", b"\x87\x89\xf2\xeb")  # 0x8789F2EB


def track_kind(path: Path) -> str:
    """``bigWig``, ``bedGraph``, ``narrowPeak``, ``broadPeak``, ``gappedPeak`` or ``peaks`` (a .bed)."""
    name = path.name.lower()
    kind = SUFFIXES.get(Path(strip_gz(name)).suffix)
    if kind is None or (kind == "bigWig" and name.endswith(".gz")):
        shown = "".join(path.suffixes) or "no suffix"
        raise DataError(
            f"{path}: cannot tell the kind of track from its name ({shown}). hmviz reads {SUPPORTED}. "
            "Rename the file with the suffix of its format (wig files: convert with wigToBigWig)."
        )
    return kind


# --------------------------------------------------------------------------- coverage signal
@dataclass
class Intervals:
    """A signal on one chromosome: sorted, non-overlapping ``[starts, ends)`` with ``values``.

    Shapes: three arrays of the same length (int64, int64, float64); bp between intervals are 0.
    """

    starts: np.ndarray
    ends: np.ndarray
    values: np.ndarray
    _before: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # _before[k]: the integral of the signal up to the start of interval k.
        self._before = np.concatenate(([0.0], np.cumsum(self.values * (self.ends - self.starts))))[:-1]

    def integral(self, x: np.ndarray) -> np.ndarray:
        """The signal summed over ``[0, x)`` bp, for every position in ``x`` (any shape)."""
        k = np.searchsorted(self.starts, x, side="right") - 1  # last interval starting at or before x
        kk = np.maximum(k, 0)
        inside = np.clip(x - self.starts[kk], 0, self.ends[kk] - self.starts[kk])
        return np.where(k >= 0, self._before[kk] + self.values[kk] * inside, 0.0)


def _edges(left: np.ndarray, n_bins: int, bin_size: int) -> np.ndarray:
    """Bin edges, shape (genes, n_bins + 1)."""
    return np.asarray(left, dtype=np.int64)[:, None] + np.arange(n_bins + 1, dtype=np.int64) * bin_size


def bin_intervals(iv: Intervals, left: np.ndarray, n_bins: int, bin_size: int, stat: Stat) -> np.ndarray:
    """Bin a piecewise-constant signal: (genes, n_bins) float64 by ``stat`` (see the module docs)."""
    edges = _edges(left, n_bins, bin_size)
    if iv.starts.size == 0:
        return np.zeros((edges.shape[0], n_bins))
    if stat == "max":
        return _bin_max(iv, edges)
    sums = np.diff(iv.integral(edges), axis=1)
    return sums / bin_size if stat == "mean" else sums


def _bin_max(iv: Intervals, edges: np.ndarray) -> np.ndarray:
    a, b = edges[:, :-1].ravel(), edges[:, 1:].ravel()
    order = np.argsort(a, kind="stable")  # sorted bins keep reduceat's total work linear
    lo = np.searchsorted(iv.ends, a[order], side="right")  # first interval ending after the bin start
    hi = np.searchsorted(iv.starts, b[order], side="left")  # intervals starting before the bin end
    idx = np.empty(2 * lo.size, dtype=np.int64)
    idx[0::2], idx[1::2] = lo, hi
    # reduceat over [lo, hi) pairs; an empty pair (no interval in the bin) gives 0 below.
    top = np.maximum.reduceat(np.append(iv.values, 0.0), idx)[0::2]
    out = np.empty(a.size)
    out[order] = np.where(hi > lo, top, 0.0)
    return out.reshape(edges.shape[0], -1)


def _gcd(values: np.ndarray, start: int = 0) -> int:
    return math.gcd(start, int(np.gcd.reduce(values))) if values.size else start


# ---------------------------------------------------------------------------- peak signal
@dataclass
class Peaks:
    """Peaks on one chromosome (they may overlap): starts and ends each sorted, with the running
    sums of signalValue in each order. Shapes: (peaks,) and (peaks + 1,)."""

    starts: np.ndarray
    sum_by_start: np.ndarray
    ends: np.ndarray
    sum_by_end: np.ndarray

    @classmethod
    def from_arrays(cls, starts: np.ndarray, ends: np.ndarray, values: np.ndarray) -> Peaks:
        by_start, by_end = np.argsort(starts, kind="stable"), np.argsort(ends, kind="stable")
        return cls(
            starts[by_start],
            np.concatenate(([0.0], np.cumsum(values[by_start]))),
            ends[by_end],
            np.concatenate(([0.0], np.cumsum(values[by_end]))),
        )


def bin_peaks(peaks: Peaks, left: np.ndarray, n_bins: int, bin_size: int) -> np.ndarray:
    """Mean signalValue of the peaks overlapping each bin (0 where none): (genes, n_bins) float64."""
    edges = _edges(left, n_bins, bin_size)
    # Peaks overlapping [a, b) = peaks starting before b minus peaks ending at or before a (the
    # latter all start before b too).
    n_started = np.searchsorted(peaks.starts, edges[:, 1:], side="left")
    n_ended = np.searchsorted(peaks.ends, edges[:, :-1], side="right")
    count = n_started - n_ended
    total = peaks.sum_by_start[n_started] - peaks.sum_by_end[n_ended]
    return np.where(count > 0, total / np.maximum(count, 1), 0.0)


# ----------------------------------------------------------------------------------- tracks
class Track:
    """One mark's signal file. Subclasses: :class:`BigWigTrack`, :class:`BedGraphTrack`,
    :class:`PeakTrack`; :func:`open_track` picks one by suffix."""

    kind: str = ""
    #: True for peak files: a chromosome without any peak has no peak (zeros). For bigWig and
    #: bedGraph a chromosome missing from the file is not measured.
    absent_chromosome_is_zero: bool = False

    def __init__(self, mark: str, path: Path) -> None:
        self.mark, self.path = mark, path

    @property
    def chromosomes(self) -> list[str]:
        """Chromosome names as the file spells them."""
        raise NotImplementedError

    @property
    def chrom_sizes(self) -> dict[str, int] | None:
        """Chromosome lengths in bp when the format records them (bigWig), else ``None``."""
        return None

    @property
    def resolution_bp(self) -> int | None:
        """The grid in bp that every value change lies on (``None``: not known, or not binned data).
        For a bigWig it grows more certain as windows are read."""
        return None

    def bin_values(self, chrom: str, left: np.ndarray, n_bins: int, bin_size: int, stat: Stat) -> np.ndarray:
        """Values of ``n_bins`` bins of ``bin_size`` bp from each ``left`` on ``chrom``:
        (len(left), n_bins) float64."""
        raise NotImplementedError

    def describe(self) -> str:
        res = self.resolution_bp
        detail = (
            ""
            if self.absent_chromosome_is_zero
            else (f", resolution {res} bp" if res else ", resolution not determined")
        )
        n = len(self.chromosomes)
        return f"{self.kind}, {n} chromosome{'' if n == 1 else 's'}{detail}"

    def close(self) -> None:
        pass

    def __str__(self) -> str:
        return f"track {self.mark} ({self.path})"


@contextlib.contextmanager
def _quiet_stderr():
    """Silence C libraries' writes to file descriptor 2 (our own error line says what is wrong)."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (e.g. captured): nothing to silence
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class BigWigTrack(Track):
    kind = "bigWig"

    def __init__(self, mark: str, path: Path) -> None:
        super().__init__(mark, path)
        try:
            import pyBigWig
        except ImportError:
            raise DataError(
                f"{path}: reading bigWig tracks needs pyBigWig, which is not installed; install "
                "hmviz's [tracks] extra (pip install 'hmviz[tracks]'), or give bedGraph tracks."
            ) from None

        # Check the signature first: on a failed open libBigWig prints its own lines to stderr.
        with open(path, "rb") as fh:
            magic = fh.read(4)
        if magic in _BIGBED_MAGIC:
            raise DataError(
                f"{path}: is a bigBed file, not a bigWig. Give the signal bigWig of this mark, "
                "or its peaks as narrowPeak/broadPeak."
            )
        bw = None
        if magic in _BIGWIG_MAGIC:
            try:
                with _quiet_stderr():  # libBigWig prints its own lines on a damaged file
                    bw = pyBigWig.open(str(path))
            except RuntimeError:
                pass
        if bw is None:
            raise DataError(
                f"{path}: is not a bigWig file, or it is damaged (pyBigWig cannot open it). "
                "Download it again; a text bedGraph must be named .bedGraph."
            )
        self._bw = bw
        self._sizes = {str(k): int(v) for k, v in (bw.chroms() or {}).items()}
        self._grid = 0
        self._probed = False

    @property
    def chromosomes(self) -> list[str]:
        return list(self._sizes)

    @property
    def chrom_sizes(self) -> dict[str, int]:
        return self._sizes

    @property
    def resolution_bp(self) -> int | None:
        return self._grid or None

    def bin_values(self, chrom, left, n_bins, bin_size, stat):
        left = np.asarray(left, dtype=np.int64)
        return bin_intervals(self._read(chrom, left, left + n_bins * bin_size), left, n_bins, bin_size, stat)

    def _read(self, chrom: str, left: np.ndarray, right: np.ndarray) -> Intervals:
        """The bigWig's intervals over the windows ``[left, right)`` (clipped to the chromosome)."""
        size = self._sizes[chrom]
        lo, hi = np.clip(left, 0, size), np.clip(right, 0, size)
        keep = hi > lo
        lo, hi = lo[keep], hi[keep]
        if lo.size == 0:
            return Intervals(*(np.zeros(0, np.int64),) * 2, np.zeros(0))
        order = np.argsort(lo, kind="stable")
        lo, reach = lo[order], np.maximum.accumulate(hi[order])
        new = np.flatnonzero(lo[1:] > reach[:-1] + _BIGWIG_MERGE_GAP) + 1
        region_starts, region_ends = lo[np.r_[0, new]], reach[np.r_[new - 1, lo.size - 1]]
        if not self._probed:
            self._probe(chrom, int(region_starts[0]))
        parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for r0, r1 in zip(region_starts.tolist(), region_ends.tolist()):
            for p0 in range(r0, r1, _BIGWIG_PIECE_BP):
                parts.append(self._read_piece(chrom, p0, min(p0 + _BIGWIG_PIECE_BP, r1)))
        return Intervals(*(np.concatenate(x) for x in zip(*parts)))

    def _probe(self, chrom: str, start: int) -> None:
        """Add the interval edges of one longer stretch to the resolution estimate, so that a coarse
        track is recognised even when few windows hold a value change."""
        self._probed = True
        end = min(start + _BIGWIG_PROBE_BP, self._sizes[chrom])
        spans = np.asarray(self._bw.intervals(chrom, start, end) or [], dtype=np.float64).reshape(-1, 3)[:, :2]
        edges = spans.astype(np.int64).ravel()
        self._grid = _gcd(edges[(edges > start) & (edges < end)], self._grid)

    def _read_piece(self, chrom: str, start: int, end: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        try:
            v = self._bw.values(chrom, start, end, numpy=True)
        except RuntimeError as exc:
            raise DataError(
                f"{self.path}: cannot read {chrom}:{start + 1}-{end} ({exc}); the file may be "
                "truncated. Download it again."
            ) from None
        nan = np.isnan(v)
        change = np.flatnonzero((v[1:] != v[:-1]) & ~(nan[1:] & nan[:-1])) + 1  # run boundaries
        self._grid = _gcd(change + start, self._grid)  # piece edges are not data boundaries
        run_start = np.concatenate(([0], change))
        run_end = np.concatenate((change, [v.size]))
        run_value = v[run_start].astype(np.float64)
        keep = ~np.isnan(run_value) & (run_value != 0)  # no data (NaN) and 0 add nothing
        if (run_value[keep] < 0).any():
            k = int(np.flatnonzero(keep & (run_value < 0))[0])
            raise _negative_error(self.path, f"{chrom}:{start + int(run_start[k]) + 1}", float(run_value[k]))
        return run_start[keep] + start, run_end[keep] + start, run_value[keep]

    def close(self) -> None:
        self._bw.close()


class BedGraphTrack(Track):
    kind = "bedGraph"

    def __init__(self, mark: str, path: Path, *, signed: bool = False) -> None:
        """``signed=True`` reads a track of signed values (e.g. attributions exported by hmviz);
        histone-mark signal is never negative, so by default a negative value is an error."""
        super().__init__(mark, path)
        hint = "A bedGraph line is: chrom, start, end, value (start and end in bp, 0-based)."
        text, src = read_bed_text(path)
        table = parse_bed(
            src,
            text,
            ["chrom", "start", "end", "value"],
            {"chrom": pa.string(), "start": pa.int64(), "end": pa.int64(), "value": pa.float64()},
            layout="a bedGraph line has 4 fields: chrom, start, end, value",
            hints={"start": hint, "end": hint, "value": "The value must be a number."},
        )
        codes, names = encode(table.column("chrom"))
        starts, ends = _coordinates(src, table, hint)
        values = float_column(table, "value")
        bad = ~np.isfinite(values)
        if bad.any():
            raise DataError(
                f"{src.where(int(np.argmax(bad)))}: the value is empty or not a finite number. "
                "Every bedGraph line needs a value (0 where there is no signal)."
            )
        if not signed and (values < 0).any():
            i = int(np.argmax(values < 0))
            raise _negative_error(src.where(i), None, float(values[i]))
        _check_chrom_names(src, names, codes)
        order = np.lexsort((starts, codes))
        codes, starts, ends, values = codes[order], starts[order], ends[order], values[order]
        same = codes[1:] == codes[:-1]
        overlap = np.flatnonzero(same & (starts[1:] < ends[:-1]))
        if overlap.size:
            i, j = int(order[overlap[0]]), int(order[overlap[0] + 1])
            raise DataError(
                f"{src}: the intervals on {src.at(i)} and {src.at(j)} overlap "
                f"({names[codes[overlap[0]]]}:{starts[overlap[0]]}-{ends[overlap[0]]} and "
                f"{starts[overlap[0] + 1]}-{ends[overlap[0] + 1]}); {int(overlap.size)} overlap(s) in all. "
                "A bedGraph holds one value per bp. If these are peaks, name the file .narrowPeak or "
                ".broadPeak; otherwise merge the overlapping lines (bedtools unionbedg / merge)."
            )
        cut = np.flatnonzero(~same) + 1
        chrom_ends = np.r_[cut - 1, codes.size - 1]  # the last interval of each chromosome
        self._chroms = {
            str(names[codes[s]]): Intervals(starts[s:e], ends[s:e], values[s:e])
            for s, e in zip(np.r_[0, cut].tolist(), np.r_[cut, codes.size].tolist())
        }
        # A chromosome's last end may be its length, which is on no grid.
        inner_ends = np.delete(ends, chrom_ends)
        self._grid = _gcd(inner_ends, _gcd(starts))

    @property
    def chromosomes(self) -> list[str]:
        return list(self._chroms)

    @property
    def resolution_bp(self) -> int | None:
        return self._grid or None

    def bin_values(self, chrom, left, n_bins, bin_size, stat):
        return bin_intervals(self._chroms[chrom], left, n_bins, bin_size, stat)


class PeakTrack(Track):
    absent_chromosome_is_zero = True

    def __init__(self, mark: str, path: Path, kind: str) -> None:
        super().__init__(mark, path)
        text, src = read_bed_text(path)
        if kind == "peaks":  # a .bed: ENCODE names its narrowPeak/broadPeak downloads .bed.gz
            n = bed_fields(text)[1]
            kind = next((k for k, (cols, _, _) in PEAK_FORMATS.items() if cols == n), "")
            if not kind:
                raise DataError(
                    f"{path}: a .bed track must be an ENCODE peak file: narrowPeak (10 columns), broadPeak (9) "
                    f"or gappedPeak (15); its first line has {n}. A bedGraph (chrom, start, end, value) "
                    "must be named .bedGraph."
                )
        self.kind = kind
        n_cols, signal_col, layout = PEAK_FORMATS[kind]
        names = [f"column{i + 1}" for i in range(n_cols)]
        names[0:3], names[signal_col] = ["chrom", "start", "end"], "signalValue"
        types = {n: pa.string() for n in names}
        types.update(start=pa.int64(), end=pa.int64(), signalValue=pa.float64())
        hint = f"A {kind} line is: {layout}."
        table = parse_bed(
            src,
            text,
            names,
            types,
            layout=f"a {kind} line has {n_cols} fields ({layout})",
            hints={"start": hint, "end": hint, "signalValue": hint},
        )
        codes, chroms = encode(table.column("chrom"))
        starts, ends = _coordinates(src, table, hint)
        values = float_column(table, "signalValue")
        bad = ~np.isfinite(values) | (values < 0)
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(
                f"{src.where(i)}: signalValue (column {signal_col + 1}) is {values[i]:g}; it must "
                f"be a non-negative number. {hint}"
            )
        _check_chrom_names(src, chroms, codes)
        order = np.argsort(codes, kind="stable")
        cut = np.flatnonzero(np.diff(codes[order])) + 1
        self._chroms = {
            str(chroms[codes[idx[0]]]): Peaks.from_arrays(starts[idx], ends[idx], values[idx])
            for idx in np.split(order, cut)
            if idx.size
        }

    @property
    def chromosomes(self) -> list[str]:
        return list(self._chroms)

    def bin_values(self, chrom, left, n_bins, bin_size, stat):
        return bin_peaks(self._chroms[chrom], left, n_bins, bin_size)


def open_track(mark: str, path: str | Path) -> Track:
    """Open (bigWig) or read (bedGraph, peaks) one mark's track; the kind comes from the suffix.

    Raises :class:`DataError` for a missing file, an unknown suffix, a malformed line (naming it),
    overlapping bedGraph intervals or a negative value.
    """
    path = Path(path)
    kind = track_kind(path)
    if not path.exists():
        raise missing_file_error(path)
    if path.is_dir():
        raise DataError(f"{path}: is a folder; --track needs a file (MARK=PATH).")
    check_regular_file(path)
    if kind == "bigWig":
        return BigWigTrack(mark, path)
    if kind == "bedGraph":
        return BedGraphTrack(mark, path)
    return PeakTrack(mark, path, kind)


def check_resolution(track: Track, bin_size: int) -> None:
    """Refuse bins finer than the track's resolution (no interpolation is invented)."""
    res = track.resolution_bp
    if res is None or res <= bin_size:
        return
    examples = ", ".join(str(res * k) for k in (1, 2, 5))
    raise DataError(
        f"{track}: its values change only on a {res}-bp grid (its resolution is {res} bp), coarser than "
        f"--bin-size {bin_size}; bins that fine would only repeat its values, and hmviz does not "
        f"interpolate. This track supports bin sizes of {res} bp or more (e.g. {examples}; --flank must "
        f"be a multiple of the bin size). Use such a --bin-size, or a track made at {bin_size}-bp "
        "resolution or finer (e.g. bamCoverage --binSize)."
    )


# ------------------------------------------------------------------------------ text files
def read_bed_text(path: Path) -> tuple[bytes, SourceFile]:
    """The file's text with its leading ``track``/``browser``/``#`` lines blanked (line numbers kept)."""
    text, src = read_source(path)
    if src.parquet:
        raise src.error("is a Parquet file; tracks and BED files are tab-separated text.")
    pos = n = 0
    while pos < len(text):
        nl = text.find(b"\n", pos)
        end = len(text) if nl < 0 else nl
        line = text[pos:end].strip()
        if line and not line.startswith(_HEADER_PREFIXES):
            break
        n, pos = n + 1, end + 1
    if n:
        text = b"\n" * n + text[pos:]
    if not text.strip():
        raise src.error("has no data lines (only header or comment lines).")
    return text, SourceFile(path, text=text)


def bed_fields(text: bytes) -> tuple[str, int]:
    """The delimiter (tab, else space) and number of fields of the first data line."""
    line = first_line(text)
    delimiter = "\t" if "\t" in line else " "
    return delimiter, len(line.split(delimiter))


def parse_bed(
    src: SourceFile, text: bytes, names: list[str], types: dict[str, pa.DataType], *, layout: str, hints: dict[str, str]
) -> pa.Table:
    """Headerless BED-like text (from :func:`read_bed_text`) parsed with fixed column ``names`` and
    ``types``; a bad line is named in the error."""
    table = read_csv_table(
        src, text, delimiter=bed_fields(text)[0], names=names, types=types, layout=layout, hints=hints
    )
    if table.num_rows == 0:
        raise src.error("has no data lines.")
    return table


def _coordinates(src: SourceFile, table: pa.Table, hint: str) -> tuple[np.ndarray, np.ndarray]:
    starts = int_column(src, table, "start", hint)
    ends = int_column(src, table, "end", hint)
    bad = (starts < 0) | (ends <= starts)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(
            f"{src.where(i)}: start {starts[i]} and end {ends[i]} do not make an interval (start "
            f"must be 0 or more and end larger than start). {hint}"
        )
    return starts, ends


def _check_chrom_names(src: SourceFile, names: np.ndarray, codes: np.ndarray) -> None:
    empty = [k for k, name in enumerate(names) if not str(name).strip()]
    if empty:
        i = int(np.argmax(codes == empty[0]))
        raise DataError(f"{src.where(i)}: the chromosome (first field) is empty.")


def _negative_error(where: object, position: str | None, value: float) -> DataError:
    at = f" at {position}" if position else ""
    return DataError(
        f"{where}: the signal is negative ({value:g}{at}). hmviz needs a non-negative signal (read counts, "
        "fold enrichment, -log10 p-value); use the fold-change or p-value track instead of a log ratio "
        "or an input-subtracted one."
    )
