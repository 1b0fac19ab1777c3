"""Checks on histone data with messages a biologist can act on.

Every check raises :class:`hmviz.errors.DataError` whose message names the file, the line (1-based,
counting the header) or the gene, says what is wrong and how to fix it. Readers in
:mod:`hmviz.data.formats` call these checks; :func:`check_marks` is also for models (a dataset's
mark list against the marks a checkpoint was trained on).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from hmviz.data.dataset import SPLITS
from hmviz.errors import DataError

#: The largest finite float32: signal is stored as float32, so larger values would become inf.
FLOAT32_MAX = float(np.finfo(np.float32).max)

#: How many offending genes or values a message lists before saying "and N more".
_MAX_LISTED = 5


def listing(items: Iterable[object], total: int | None = None) -> str:
    """``a, b, c`` or ``a, b, c, d, e and 7 more`` for a message."""
    texts = [str(i) for i in items]
    total = len(texts) if total is None else total
    shown = ", ".join(texts[:_MAX_LISTED])
    return shown + (f" and {total - _MAX_LISTED} more" if total > _MAX_LISTED else "")


class SourceFile:
    """A data file being read; names a data row as ``train.csv line 57`` in messages.

    ``pos`` is a 0-based data-row position as the table was parsed (header and blank lines
    skipped). For text files the line number counts every physical line, the header included, so
    it is the number an editor shows. Parquet files have no lines: rows are counted from 1.
    """

    def __init__(
        self, path: str | Path, *, text: bytes | None = None, header_lines: int = 0, parquet: bool = False
    ) -> None:
        self.path = Path(path)
        self.label = str(path)
        self.text = text
        self.header_lines = header_lines
        self.parquet = parquet
        self._nonblank: np.ndarray | None = None

    def __str__(self) -> str:
        return self.label

    def line(self, pos: int) -> int:
        """1-based line number of data row ``pos`` (parquet: 1-based row number)."""
        pos = int(pos)
        if self.parquet or self.text is None:
            return pos + 1 + self.header_lines
        if self._nonblank is None:
            buf = np.frombuffer(self.text, dtype=np.uint8)
            ends = np.flatnonzero(buf == 10)
            if ends.size == 0 or ends[-1] != buf.size - 1:
                ends = np.append(ends, buf.size)
            starts = np.concatenate(([0], ends[:-1] + 1))
            length = ends - starts
            # pyarrow skips empty lines ("" or a lone "\r" from CRLF files); count them anyway.
            cr_only = (length == 1) & (buf[np.minimum(starts, max(buf.size - 1, 0))] == 13)
            self._nonblank = np.flatnonzero((length > 0) & ~cr_only)
        k = pos + self.header_lines
        if k < self._nonblank.size:
            return int(self._nonblank[k]) + 1
        return pos + 1 + self.header_lines

    def at(self, pos: int) -> str:
        """``line 57`` (text) or ``row 56`` (parquet), for a message that already names the file."""
        return f"{'row' if self.parquet else 'line'} {self.line(pos)}"

    def where(self, pos: int) -> str:
        """``train.csv line 57`` (text) or ``data.parquet row 56`` (parquet)."""
        return f"{self.label} {self.at(pos)}"

    def error(self, message: str) -> DataError:
        """A DataError about the whole file: ``<file>: <message>``."""
        return DataError(f"{self.label}: {message}")


# ---------------------------------------------------------------------------- per-row values
def check_mark_values(src: SourceFile, pos: np.ndarray | None, name: str, values: np.ndarray) -> None:
    """Mark signal must be finite and non-negative (read counts or another non-negative signal).

    ``values`` is one mark column in file row order (``pos[i]`` is the file row of ``values[i]``;
    ``None`` means row i).
    """
    bad = ~np.isfinite(values)
    if bad.any():
        i = int(np.argmax(bad))
        v = values[i]
        what = "empty or NaN" if np.isnan(v) else f"{'-' if v < 0 else ''}inf"
        raise DataError(
            f"{src.where(_pos(pos, i))}: the {name} value is {what} "
            f"({int(bad.sum())} such value(s) in this column). Mark signal must be a finite number; "
            "fill in the missing count (0 if there were no reads) or remove the gene."
        )
    big = values > FLOAT32_MAX
    if big.any():
        i = int(np.argmax(big))
        raise DataError(
            f"{src.where(_pos(pos, i))}: the {name} value is {values[i]:g}, larger than the largest number "
            f"hmviz stores (float32, {FLOAT32_MAX:.4g}; {int(big.sum())} such value(s) in this column). Check "
            "the value; counts that large are a sign of a corrupt file or a wrong column."
        )
    neg = values < 0
    if neg.any():
        i = int(np.argmax(neg))
        raise DataError(
            f"{src.where(_pos(pos, i))}: the {name} value is {values[i]:g}, a negative count "
            f"({int(neg.sum())} negative value(s) in this column). Mark signal must be read counts or "
            "another non-negative signal (RPKM, fold enrichment); if this is a log ratio, convert it "
            "back to a non-negative scale first."
        )


def check_expression(where: Callable[[int], str], gene_names: np.ndarray, values: np.ndarray) -> None:
    """Expression per gene must be empty (unknown) or a finite, non-negative level (RPKM, TPM, counts).

    ``where(i)`` names the line of value ``i`` for the message.
    """
    bad = np.isinf(values) | (values < 0) | (np.abs(values) > FLOAT32_MAX)
    if bad.any():
        i = int(np.argmax(bad))
        what = "infinite" if np.isinf(values[i]) else "negative" if values[i] < 0 else "too large to store"
        raise DataError(
            f"{where(i)}: the expression of gene {gene_names[i]} is {values[i]:g}, which is {what} "
            f"({int(bad.sum())} such value(s)). Expression must be a non-negative level (RPKM, TPM or counts; "
            "leave it empty if unknown); if these are log values, give the levels before the log."
        )


def check_gene_ids(src: SourceFile, pos: np.ndarray | None, empty: np.ndarray) -> None:
    """Gene ids must not be empty; ``empty`` marks the rows whose id is blank."""
    if empty.any():
        i = int(np.argmax(empty))
        raise DataError(f"{src.where(_pos(pos, i))}: the gene id is empty. Every row needs the id of its gene.")


# ------------------------------------------------------------------------------ bin layout
def check_bin_layout(
    src: SourceFile,
    pos: np.ndarray | None,
    gene_names: np.ndarray,
    sorted_codes: np.ndarray,
    sorted_bins: np.ndarray,
    order: np.ndarray,
    counts: np.ndarray,
) -> tuple[int, int]:
    """Every gene must have one row per bin, the same consecutive bins as every other gene.

    Inputs are rows sorted by (gene, bin): ``sorted_codes`` (gene index), ``sorted_bins``, and
    ``order`` (the row in file order of each sorted row); ``counts`` is rows per gene.
    Returns ``(first_bin, n_bins)`` where ``first_bin`` is 0 or 1.
    """
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    same_gene = sorted_codes[1:] == sorted_codes[:-1]
    step = np.diff(sorted_bins)

    def line(k: int) -> str:
        return src.at(_pos(pos, int(order[k])))

    dup = np.flatnonzero(same_gene & (step == 0))
    if dup.size:
        k = int(dup[0])
        gene = gene_names[sorted_codes[k]]
        n_genes = np.unique(sorted_codes[dup]).size
        raise DataError(
            f"{src}: gene {gene} has bin {sorted_bins[k]} twice ({line(k)} and {line(k + 1)}; "
            f"{n_genes} gene(s) with duplicated bins). Each gene needs exactly one row per bin: remove "
            "the duplicate rows, or give genes that share an id distinct ids."
        )
    gap = np.flatnonzero(same_gene & (step > 1))
    if gap.size:
        k = int(gap[0])
        gene = gene_names[sorted_codes[k]]
        lo, hi = int(sorted_bins[k]), int(sorted_bins[k + 1])
        missing = _bin_range(lo + 1, hi - 1)
        raise DataError(
            f"{src}: the bins of gene {gene} are not consecutive: they jump from bin {lo} ({line(k)}) to "
            f"bin {hi} ({line(k + 1)}), so {missing} missing. Each gene needs one row for every bin, "
            "numbered consecutively; add the missing rows (0 counts) or renumber the bins."
        )
    first = sorted_bins[starts]
    base = int(first.min())
    if base not in (0, 1):
        g = int(np.argmin(first))
        raise DataError(
            f"{src}: bins must be numbered from 0 or from 1, but the first bin of gene "
            f"{gene_names[g]} is {first[g]} ({line(int(starts[g]))}). Renumber the bins of every gene "
            "as 0, 1, 2, ... (or 1, 2, 3, ...)."
        )
    late = np.flatnonzero(first != base)
    if late.size:
        g = int(late[0])
        raise DataError(
            f"{src}: gene {gene_names[g]} is missing bin {base}: its first bin is {first[g]} "
            f"({line(int(starts[g]))}) while other genes start at bin {base} ({late.size} gene(s) "
            "affected). Every gene needs the same bins; add the missing rows or drop the gene."
        )
    values, freq = np.unique(counts, return_counts=True)
    n_bins = int(values[np.argmax(freq)])
    odd = np.flatnonzero(counts != n_bins)
    if odd.size:
        g = int(odd[0])
        have = int(counts[g])
        last = base + have - 1
        detail = (
            f"{_bin_range(last + 1, base + n_bins - 1)} missing"
            if have < n_bins
            else f"{_bin_range(base + n_bins, last)} extra"
        )
        raise DataError(
            f"{src}: genes have different numbers of bins: gene {gene_names[g]} has {have} bins "
            f"({base}..{last}, ending {line(int(starts[g]) + have - 1)}) but {int(freq.max())} gene(s) "
            f"have {n_bins} ({base}..{base + n_bins - 1}), so {detail} ({odd.size} gene(s) affected: "
            f"{listing(gene_names[odd], odd.size)}). Every gene needs the same window of bins; add the "
            "missing rows or remove the genes."
        )
    return base, n_bins


def bin_geometry(
    src: SourceFile, pos: np.ndarray | None, gene_names: np.ndarray, starts_bp: np.ndarray, order: np.ndarray
) -> tuple[int, int]:
    """``bin_size`` and ``tss_bin`` from ``bin_start_bp`` shaped (genes, bins) in bin order.

    The starts must rise by one bin size from bin to bin, put the TSS at the start of a bin, and be
    the same for every gene. ``order`` maps the flattened (gene, bin) cell to its file row.
    """
    n_genes, n_bins = starts_bp.shape

    def line(g: int, b: int) -> str:
        return src.at(_pos(pos, int(order[g * n_bins + b])))

    row = starts_bp[0]
    if n_bins > 1:
        step = np.diff(row)
        if (step <= 0).any() or (step != step[0]).any():
            b = int(np.argmax((step <= 0) | (step != step[0])))
            raise DataError(
                f"{src}: bin_start_bp of gene {gene_names[0]} does not rise by one bin size per bin: "
                f"bin {b} starts at {row[b]} bp and bin {b + 1} at {row[b + 1]} bp ({line(0, b + 1)}). "
                "bin_start_bp is the start of each bin relative to the TSS, e.g. -5000, -4900, ... ."
            )
        bin_size = int(step[0])
    else:
        bin_size = int(abs(row[0])) or 100
    if row[0] % bin_size:
        raise DataError(
            f"{src}: bin_start_bp of gene {gene_names[0]} starts at {row[0]} bp, which is not a whole "
            f"number of {bin_size}-bp bins from the TSS ({line(0, 0)}). The TSS must fall on the start "
            "of a bin; shift bin_start_bp so that one bin starts at 0."
        )
    differ = np.flatnonzero((starts_bp != row).any(axis=1))
    if differ.size:
        g = int(differ[0])
        b = int(np.argmax(starts_bp[g] != row))
        raise DataError(
            f"{src}: bin_start_bp disagrees across genes: bin {b} of gene {gene_names[g]} starts at "
            f"{starts_bp[g, b]} bp ({line(g, b)}) but at {row[b]} bp for gene {gene_names[0]} "
            f"({differ.size} gene(s) differ). All genes must use the same window around the TSS; "
            "recompute bin_start_bp or drop the column to use the defaults."
        )
    return bin_size, int(-row[0] // bin_size)


# --------------------------------------------------------------------------- per-gene values
def check_constant_per_gene(
    src: SourceFile,
    pos: np.ndarray | None,
    gene_names: np.ndarray,
    column: str,
    sorted_codes: np.ndarray,
    sorted_keys: np.ndarray,
    sorted_values: np.ndarray,
    order: np.ndarray,
) -> None:
    """A per-gene column (symbol, chrom, expression, ...) must hold one value per gene.

    ``sorted_keys`` are comparable codes of the values (equal values, NaN included, equal codes);
    ``sorted_values`` are the values to show, both in (gene, bin) order.
    """
    change = np.flatnonzero((sorted_codes[1:] == sorted_codes[:-1]) & (sorted_keys[1:] != sorted_keys[:-1]))
    if change.size:
        k = int(change[0])
        n_genes = np.unique(sorted_codes[change]).size
        a, b = (_show(sorted_values[k]), _show(sorted_values[k + 1]))
        raise DataError(
            f"{src}: gene {gene_names[sorted_codes[k]]} has two different {column} values: {a} "
            f"({src.at(_pos(pos, int(order[k])))}) and {b} ({src.at(_pos(pos, int(order[k + 1])))}); "
            f"{n_genes} gene(s) affected. {column} describes the whole gene, so it must be the same on "
            "every row of a gene; correct the rows, or give different genes different ids."
        )


def check_labels(
    src: SourceFile, gene_names: np.ndarray, labels: np.ndarray, first_line: Callable[[int], str]
) -> np.ndarray:
    """Labels per gene must be 0 (low) or 1 (high), none missing. Returns them as int8.

    ``first_line(g)`` says where gene ``g`` starts (``train.csv line 57``), for the message.
    """
    missing = np.isnan(labels)
    if missing.any() and not missing.all():
        g = int(np.argmax(missing))
        raise DataError(
            f"{src}: gene {gene_names[g]} has no label ({first_line(g)}) while other genes do "
            f"({int(missing.sum())} gene(s) without one). Give every gene a label 0 or 1, or drop the "
            "label column."
        )
    bad = ~np.isin(labels, (0.0, 1.0))
    if bad.any():
        g = int(np.argmax(bad))
        found = listing(sorted({_show(v) for v in labels[bad]}))
        raise DataError(
            f"{src}: labels must be 0 (low expression) or 1 (high expression), but gene "
            f"{gene_names[g]} has label {_show(labels[g])} ({first_line(g)}); values found: {found}. "
            "If this column holds expression values, name it 'expression' instead of 'label'."
        )
    return labels.astype(np.int8)


def check_label_classes(where: str, labels: np.ndarray) -> None:
    """A binary label column needs both classes somewhere in the dataset."""
    classes = np.unique(labels)
    if classes.size == 1:
        raise DataError(
            f"{where}: {'the only gene has' if labels.size == 1 else f'all {labels.size} genes have'} label "
            f"{int(classes[0])}, so the labels "
            "carry no information (a classifier needs both 0 = low and 1 = high). Check that the label "
            "column is right (labels are usually 1 when expression is above the cell's median), or "
            "drop it and derive labels from expression."
        )


def normalize_split(
    src: SourceFile, gene_names: np.ndarray, split: np.ndarray, first_line: Callable[[int], str]
) -> np.ndarray:
    """Split values ``train``/``valid``/``test`` (case and spaces ignored), none missing."""
    clean = np.char.lower(np.char.strip(split.astype(str)))
    blank = clean == ""
    if blank.any() and not blank.all():
        g = int(np.argmax(blank))
        raise DataError(
            f"{src}: gene {gene_names[g]} has no split ({first_line(g)}) while other genes do. Give "
            f"every gene one of {', '.join(SPLITS)}, or drop the split column."
        )
    bad = ~np.isin(clean, SPLITS)
    if bad.any() and not blank.all():
        g = int(np.argmax(bad))
        found = listing(sorted(set(split[bad].tolist())))
        hint = (
            " ('validation' and 'val' are spelled 'valid' in hmviz)"
            if {"val", "validation"} & set(clean[bad].tolist())
            else ""
        )
        raise DataError(
            f"{src}: gene {gene_names[g]} has split '{split[g]}' ({first_line(g)}); split must be "
            f"train, valid or test{hint}. Values found: {found}."
        )
    return clean


def check_strand(src: SourceFile, gene_names: np.ndarray, strand: np.ndarray, first_line: Callable[[int], str]) -> None:
    bad = ~np.isin(strand, ("+", "-", "."))
    if bad.any():
        g = int(np.argmax(bad))
        raise DataError(
            f"{src}: gene {gene_names[g]} has strand '{strand[g]}' ({first_line(g)}); strand must be "
            "'+', '-' or '.' (unknown)."
        )


# --------------------------------------------------------------------------------- marks
def check_marks(dataset_marks: Sequence[str], expected_marks: Sequence[str], what: str = "the model") -> None:
    """The dataset's marks must be exactly ``expected_marks``, in that order.

    Raises :class:`DataError` naming the missing, extra or reordered marks and how to fix it
    (select/reorder the marks, or use a model trained on these marks). Never reorders silently.
    """
    have, want = [str(m) for m in dataset_marks], [str(m) for m in expected_marks]
    if have == want:
        return
    missing = [m for m in want if m not in have]
    extra = [m for m in have if m not in want]
    parts = []
    if missing:
        lower = {m.lower(): m for m in have}
        near = [f"{m} (the data has {lower[m.lower()]})" for m in missing if m.lower() in lower]
        parts.append(
            f"missing from the data: {', '.join(missing)}"
            + (f"; check the spelling, names are case-sensitive: {', '.join(near)}" if near else "")
        )
    if extra:
        parts.append(f"not used by {what}: {', '.join(extra)}")
    if not missing and not extra:
        parts.append("the same marks in a different order")
    if missing:
        fix = f"Use data that has these marks, or use a model trained on the data's marks ({', '.join(have)})."
    else:
        fix = (
            f"Select and reorder the data's marks to match (dataset.select_marks([{', '.join(map(repr, want))}])"
            f", or the mark selector in the app), or use a model trained on these marks."
        )
    raise DataError(
        f"The data's marks do not match {what}: the data has {', '.join(have)} but {what} expects "
        f"{', '.join(want)} ({'; '.join(parts)}). {fix}"
    )


# ------------------------------------------------------------------------------- helpers
def _bin_range(lo: int, hi: int) -> str:
    """``bin 4 is`` or ``bins 4..6 are``."""
    return f"bin {lo} is" if lo == hi else f"bins {lo}..{hi} are"


def _pos(pos: np.ndarray | None, i: int) -> int:
    return i if pos is None else int(pos[i])


def _show(value: object) -> str:
    if isinstance(value, (float, np.floating)):
        return "empty" if np.isnan(value) else f"{float(value):g}"
    return f"'{value}'"
