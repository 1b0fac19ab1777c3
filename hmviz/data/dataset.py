"""The one dataset type of hmviz: histone-mark signal binned around each gene's TSS.

A :class:`HistoneDataset` holds, for one cell type,

* ``signal``: float32 array shaped ``(genes, bins, marks)`` (read counts or a derived signal),
* ``gene_ids`` and optional per-gene ``symbols``, ``chrom``, ``strand``,
* ``marks``: the mark names in the order of the last axis,
* ``bin_size`` (bp) and ``tss_bin`` (the index of the bin whose start is the TSS), so that bin
  ``b`` covers ``[(b - tss_bin) * bin_size, (b - tss_bin + 1) * bin_size)`` bp relative to the TSS,
* optional continuous ``expression``, binary ``labels`` and a ``split`` per gene
  (``"train"``, ``"valid"`` or ``"test"``).

Several cell types over the same genes (for differential models) are a :class:`MultiCellDataset`.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from hmviz.errors import DataError

SPLITS: tuple[str, ...] = ("train", "valid", "test")


def _as_str_array(values: Iterable, name: str, n: int) -> np.ndarray:
    arr = np.asarray([str(v) for v in values], dtype=object)
    if arr.shape != (n,):
        raise DataError(f"{name} has {arr.shape[0] if arr.ndim else 0} entries but there are {n} genes.")
    return arr


@dataclass
class HistoneDataset:
    """Histone-mark signal around the TSS of each gene, for one cell type.

    Shapes: ``signal`` (genes, bins, marks) float32; every per-gene array has length ``genes``.
    """

    signal: np.ndarray
    gene_ids: np.ndarray
    marks: tuple[str, ...]
    bin_size: int = 100
    tss_bin: int | None = None
    symbols: np.ndarray | None = None
    chrom: np.ndarray | None = None
    strand: np.ndarray | None = None
    expression: np.ndarray | None = None
    labels: np.ndarray | None = None
    split: np.ndarray | None = None
    cell: str | None = None
    source: str = ""
    strand_aware: bool | None = None
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        signal = np.asarray(self.signal)
        if signal.ndim != 3:
            raise DataError(f"signal must be shaped (genes, bins, marks); got {signal.shape}.")
        if signal.dtype != np.float32:
            signal = signal.astype(np.float32)
        self.signal = signal
        n, n_bins, n_marks = signal.shape
        self.gene_ids = _as_str_array(self.gene_ids, "gene_ids", n)
        self.marks = tuple(str(m) for m in self.marks)
        if len(self.marks) != n_marks:
            raise DataError(f"{len(self.marks)} mark names given for {n_marks} mark columns.")
        if len(set(self.marks)) != n_marks:
            dup = sorted({m for m in self.marks if self.marks.count(m) > 1})
            raise DataError(f"Mark names must be unique; repeated: {', '.join(dup)}.")
        if len(set(self.gene_ids.tolist())) != n:
            ids, counts = np.unique(self.gene_ids, return_counts=True)
            raise DataError(f"Gene ids must be unique; repeated: {', '.join(map(str, ids[counts > 1][:5]))}.")
        self.bin_size = int(self.bin_size)
        if self.bin_size <= 0:
            raise DataError(f"bin_size must be a positive number of bp; got {self.bin_size}.")
        if self.tss_bin is None:
            self.tss_bin = n_bins // 2
        self.tss_bin = int(self.tss_bin)
        for name in ("symbols", "chrom", "strand"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, _as_str_array(value, name, n))
        if self.strand is not None:
            bad = sorted(set(self.strand.tolist()) - {"+", "-", "."})
            if bad:
                raise DataError(f"strand must be '+', '-' or '.'; found {', '.join(bad[:5])}.")
        if self.expression is not None:
            self.expression = np.asarray(self.expression, dtype=np.float64)
            if self.expression.shape != (n,):
                raise DataError(f"expression has shape {self.expression.shape}; expected ({n},).")
        if self.labels is not None:
            labels = np.asarray(self.labels)
            if labels.shape != (n,):
                raise DataError(f"labels has shape {labels.shape}; expected ({n},).")
            if not np.isin(labels, (0, 1)).all():
                raise DataError("labels must be 0 (low) or 1 (high).")
            self.labels = labels.astype(np.int8)
        if self.split is not None:
            split = _as_str_array(self.split, "split", n)
            bad = sorted(set(split.tolist()) - set(SPLITS))
            if bad:
                raise DataError(f"split values must be one of {', '.join(SPLITS)}; found {', '.join(bad[:5])}.")
            self.split = split

    # ----------------------------------------------------------------- shape
    @property
    def n_genes(self) -> int:
        return int(self.signal.shape[0])

    @property
    def n_bins(self) -> int:
        return int(self.signal.shape[1])

    @property
    def n_marks(self) -> int:
        return int(self.signal.shape[2])

    @property
    def flank_bp(self) -> tuple[int, int]:
        """bp covered upstream and downstream of the TSS: ``(upstream, downstream)``."""
        tss = self.require_tss_bin()
        return tss * self.bin_size, (self.n_bins - tss) * self.bin_size

    def bin_starts_bp(self) -> np.ndarray:
        """Start of every bin in bp relative to the TSS, shape (bins,)."""
        return (np.arange(self.n_bins) - self.require_tss_bin()) * self.bin_size

    def require_tss_bin(self) -> int:
        """``tss_bin``, which ``__post_init__`` fills in (``bins // 2`` when not given)."""
        if self.tss_bin is None:
            raise DataError("tss_bin was set to None after the dataset was made; set it to the bin holding the TSS.")
        return self.tss_bin

    # -------------------------------------------------------------- selection
    def subset(self, index: np.ndarray | Sequence[int] | slice) -> HistoneDataset:
        """The dataset restricted to some genes (an index array, a boolean mask or a slice)."""
        idx = np.arange(self.n_genes)[index]

        def pick(value: np.ndarray | None) -> np.ndarray | None:
            return None if value is None else value[idx]

        return dataclasses.replace(
            self,
            signal=self.signal[idx],
            gene_ids=self.gene_ids[idx],
            symbols=pick(self.symbols),
            chrom=pick(self.chrom),
            strand=pick(self.strand),
            expression=pick(self.expression),
            labels=pick(self.labels),
            split=pick(self.split),
            meta=dict(self.meta),
        )

    def select_marks(self, marks: Sequence[str]) -> HistoneDataset:
        """The dataset with only the given marks, in the given order.

        Raises :class:`DataError` naming the marks that are not in the data.
        """
        marks = [str(m) for m in marks]
        missing = [m for m in marks if m not in self.marks]
        if missing:
            raise DataError(
                f"Mark(s) {', '.join(missing)} not in the data, which has {', '.join(self.marks)}. "
                "Check the spelling (names are case-sensitive) or choose marks from that list."
            )
        if not marks:
            raise DataError("Choose at least one mark.")
        cols = [self.marks.index(m) for m in marks]
        return dataclasses.replace(
            self, signal=np.ascontiguousarray(self.signal[:, :, cols]), marks=tuple(marks), meta=dict(self.meta)
        )

    def merge_bins(self, factor: int, how: str = "sum") -> HistoneDataset:
        """The dataset in bins ``factor`` times wider: every ``factor`` adjacent bins become one.

        Groups are aligned on the TSS (its bin's start stays a bin start, so ``tss_bin`` keeps its
        meaning); bins at either end of the window that do not fill a whole group are dropped, and
        ``meta["merged_bins"]`` records what was done. ``how``: ``sum`` for read counts (the counts of a
        wider bin add up), ``mean`` for signal already per bp or per bin (fold enrichment, RPKM).
        E.g. 100 bins of 100 bp around the TSS into 10 bins of 1 kb: ``merge_bins(10)``.
        """
        if how not in ("sum", "mean"):
            raise DataError(f"Bins can be merged by 'sum' (read counts) or 'mean' (normalised signal), not {how!r}.")
        if isinstance(factor, bool) or not isinstance(factor, (int, np.integer)) or factor < 1:
            raise DataError(
                f"The number of bins to merge into one must be a whole number of at least 1, got {factor!r}."
            )
        tss = self.require_tss_bin()
        up, down = tss // factor, (self.n_bins - tss) // factor
        if up + down < 1:
            raise DataError(
                f"{self.n_bins} bins of {self.bin_size} bp cannot be merged {factor} at a time: that leaves no whole "
                f"bin of {factor * self.bin_size} bp. Merge fewer bins at a time (at most {max(tss, self.n_bins - tss)}, "
                f"the bins on the longer side of the TSS)."
            )
        first, last = tss - up * factor, tss + down * factor
        window = self.signal[:, first:last].reshape(self.n_genes, up + down, factor, self.n_marks)
        signal = window.sum(axis=2) if how == "sum" else window.mean(axis=2)
        record = {
            "factor": int(factor),
            "how": how,
            "from": f"{self.n_bins} bins of {self.bin_size} bp",
            "dropped_bins": {"upstream": int(first), "downstream": int(self.n_bins - last)},
        }
        return dataclasses.replace(
            self,
            signal=np.ascontiguousarray(signal, dtype=self.signal.dtype),
            bin_size=self.bin_size * int(factor),
            tss_bin=up,
            meta={**self.meta, "merged_bins": record},
        )

    def split_indices(self, name: str) -> np.ndarray:
        """Indices of the genes in split ``name`` (``train``, ``valid`` or ``test``)."""
        return np.flatnonzero(self.require_split() == name)

    def require_split(self) -> np.ndarray:
        """``split``; raises :class:`DataError` when the dataset has none."""
        if self.split is None:
            raise DataError(
                "This dataset has no train/valid/test split. Assign one first "
                "(hmviz.data.splits.random_split or chromosome_split)."
            )
        return self.split

    def index_of(self, gene: str) -> int:
        """Row of a gene given its id or symbol (case-insensitive for symbols).

        An unknown gene raises :class:`DataError` with the closest matches.
        """
        gene = str(gene).strip()
        hits = np.flatnonzero(self.gene_ids == gene)
        if hits.size:
            return int(hits[0])
        if self.symbols is not None:
            hits = np.flatnonzero(np.char.upper(self.symbols.astype(str)) == gene.upper())
            if hits.size > 1:
                ids = [str(g) for g in self.gene_ids[hits]]
                raise DataError(
                    f"The symbol '{gene}' belongs to {hits.size} genes ({', '.join(ids[:5])}"
                    f"{' and more' if hits.size > 5 else ''}); name the gene by its id instead."
                )
            if hits.size:
                return int(hits[0])
        import difflib

        names = self.gene_ids.tolist() + ([] if self.symbols is None else self.symbols.tolist())
        close = difflib.get_close_matches(gene, names, n=5, cutoff=0.6)
        hint = f" Closest matches: {', '.join(close)}." if close else ""
        raise DataError(f"Gene '{gene}' is not in the dataset ({self.n_genes} genes).{hint}")

    # --------------------------------------------------------------- summary
    def gene_table(self) -> pd.DataFrame:
        """One row per gene with its id and whatever per-gene annotation the dataset has."""
        cols: dict[str, object] = {"gene_id": self.gene_ids}
        for name, col in (
            ("symbol", self.symbols),
            ("chrom", self.chrom),
            ("strand", self.strand),
            ("split", self.split),
            ("expression", self.expression),
            ("label", self.labels),
        ):
            if col is not None:
                cols[name] = col
        return pd.DataFrame(cols)

    def fingerprint(self) -> str:
        """A short hash of the signal, gene ids, marks, labels and expression (for model cards)."""
        h = hashlib.sha256()
        h.update(np.ascontiguousarray(self.signal).tobytes())
        h.update("\x1f".join(self.gene_ids.tolist()).encode())
        h.update("\x1f".join(self.marks).encode())
        h.update(f"{self.bin_size}:{self.tss_bin}".encode())
        for arr in (self.expression, self.labels):
            if arr is not None:
                h.update(np.ascontiguousarray(arr).tobytes())
        return h.hexdigest()[:16]

    def summary(self) -> dict:
        """A plain summary: genes, bins, marks in order, bin size, window, labels, splits."""
        up, down = self.flank_bp
        out: dict[str, object] = {
            "source": self.source,
            "cell": self.cell,
            "genes": self.n_genes,
            "bins": self.n_bins,
            "marks": list(self.marks),
            "bin_size_bp": self.bin_size,
            "tss_bin": self.tss_bin,
            "window_bp": [-up, down],
            "strand_aware": self.strand_aware,
        }
        if self.labels is not None:
            high = int(self.labels.sum())
            out["labels"] = {"high": high, "low": self.n_genes - high}
        if self.expression is not None:
            e = self.expression[np.isfinite(self.expression)]
            out["expression"] = {
                "genes_with_value": int(e.size),
                "median": float(np.median(e)) if e.size else None,
            }
        if self.split is not None:
            out["split"] = {s: int((self.split == s).sum()) for s in SPLITS}
        return out

    def describe(self) -> str:
        """The summary as a few human-readable lines (used by ``hmviz validate``)."""
        s = self.summary()
        lines = [
            f"source:   {s['source']}" + (f" (cell {s['cell']})" if s["cell"] else ""),
            f"genes:    {s['genes']}",
            f"bins:     {s['bins']} x {s['bin_size_bp']} bp, TSS at bin {s['tss_bin']} "
            f"(window {s['window_bp'][0]:+d} .. {s['window_bp'][1]:+d} bp)",
            f"marks:    {', '.join(s['marks'])} ({len(s['marks'])}, in this order)",
        ]
        if "labels" in s:
            lab = s["labels"]
            lines.append(
                f"labels:   {lab['high']} high / {lab['low']} low ({100 * lab['high'] / max(1, s['genes']):.1f}% high)"
            )
        else:
            lines.append("labels:   none")
        if "expression" in s:
            ex = s["expression"]
            lines.append(
                f"expression: {ex['genes_with_value']} genes, median {ex['median']:.4g}"
                if ex["median"] is not None
                else "expression: no finite values"
            )
        if "split" in s:
            lines.append("split:    " + ", ".join(f"{k} {v}" for k, v in s["split"].items()))
        else:
            lines.append("split:    none (a seeded random split by gene is made at training time)")
        return "\n".join(lines)


@dataclass
class MultiCellDataset:
    """Several cell types measured over the same genes, marks and bins (for differential models).

    ``cells`` maps a cell name to its :class:`HistoneDataset`; all share gene ids (same order),
    marks, bins, bin size and TSS bin.
    """

    cells: dict[str, HistoneDataset]
    source: str = ""

    def __post_init__(self) -> None:
        if len(self.cells) < 2:
            raise DataError("A multi-cell dataset needs at least two cell types.")
        names = list(self.cells)
        first = self.cells[names[0]]
        for name in names[1:]:
            other = self.cells[name]
            if other.marks != first.marks:
                raise DataError(
                    f"Cell {name} has marks {', '.join(other.marks)} but cell {names[0]} has "
                    f"{', '.join(first.marks)}; reorder or rename the columns so both cells match."
                )
            if other.n_bins != first.n_bins or other.bin_size != first.bin_size or other.tss_bin != first.tss_bin:
                raise DataError(
                    f"Cell {name} has {other.n_bins} bins of {other.bin_size} bp but cell {names[0]} has "
                    f"{first.n_bins} bins of {first.bin_size} bp; both cells must use the same window."
                )
            if not np.array_equal(other.gene_ids, first.gene_ids):
                only = sorted(set(first.gene_ids) ^ set(other.gene_ids))
                detail = f"genes in only one cell: {', '.join(only[:5])}" if only else "same genes in a different order"
                raise DataError(f"Cells {names[0]} and {name} must list the same genes in the same order ({detail}).")

    @property
    def cell_names(self) -> list[str]:
        return list(self.cells)

    @property
    def first(self) -> HistoneDataset:
        return next(iter(self.cells.values()))

    @property
    def marks(self) -> tuple[str, ...]:
        return self.first.marks

    @property
    def gene_ids(self) -> np.ndarray:
        return self.first.gene_ids

    @property
    def n_genes(self) -> int:
        return self.first.n_genes

    def pair(self, cell_a: str, cell_b: str) -> tuple[HistoneDataset, HistoneDataset]:
        for c in (cell_a, cell_b):
            if c not in self.cells:
                raise DataError(f"Cell '{c}' is not in the dataset; cells are {', '.join(self.cells)}.")
        return self.cells[cell_a], self.cells[cell_b]

    def subset(self, index) -> MultiCellDataset:
        return MultiCellDataset({k: v.subset(index) for k, v in self.cells.items()}, source=self.source)

    def select_marks(self, marks: Sequence[str]) -> MultiCellDataset:
        return MultiCellDataset({k: v.select_marks(marks) for k, v in self.cells.items()}, source=self.source)

    def merge_bins(self, factor: int, how: str = "sum") -> MultiCellDataset:
        """Every cell's bins merged ``factor`` at a time (:meth:`HistoneDataset.merge_bins`)."""
        return MultiCellDataset({k: v.merge_bins(factor, how) for k, v in self.cells.items()}, source=self.source)

    def describe(self) -> str:
        parts = [f"{len(self.cells)} cell types over the same genes: {', '.join(self.cells)}"]
        for name, ds in self.cells.items():
            parts.append(f"--- cell {name}")
            parts.append(ds.describe())
        return "\n".join(parts)
