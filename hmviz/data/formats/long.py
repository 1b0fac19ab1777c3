"""hmviz's long format: one row per (gene, bin) with a header; every unreserved column is a mark.

Reserved columns (names case-insensitive):

* required: ``gene_id``, ``bin`` (integer, 0- or 1-based, consecutive within a gene);
* ``bin_start_bp``: start of the bin relative to the TSS in bp; defines ``bin_size`` and
  ``tss_bin`` and must agree across genes (without it: 100-bp bins, TSS at bin ``bins // 2``);
* per gene (the same on every row of a gene): ``symbol``, ``chrom``, ``strand``, ``split``,
  ``expression``, ``label``;
* ``cell``: the cell type; several cells over the same genes make a :class:`MultiCellDataset`;
* ``strand_aware``: dataset-wide ``true``/``false`` (the same on every row).

CSV or TSV (by suffix ``.tsv``/``.txt`` or by the header's delimiter), optionally gzipped, or
Parquet. :func:`write` writes this format with deterministic bytes.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from hmviz import limits
from hmviz.data.dataset import HistoneDataset, MultiCellDataset
from hmviz.data.formats._assemble import ATTRIBUTE, PER_GENE, STRING_PER_GENE, Rows, float_column, int_column
from hmviz.data.formats._files import (
    atomic_write,
    coerce_columns,
    first_line,
    read_csv_table,
    read_parquet_table,
    read_source,
    sniff_delimiter,
    split_fields,
)
from hmviz.data.validation import SourceFile, listing
from hmviz.errors import DataError

log = logging.getLogger(__name__)

NAME = "long"
REQUIRED = ("gene_id", "bin")
RESERVED = ("cell", "gene_id", *PER_GENE, "strand_aware", "bin", "bin_start_bp")
DEFAULT_BIN_SIZE = 100
#: Suffixes :func:`write` understands (after an optional ``.gz`` for text).
WRITE_SUFFIXES = (".csv", ".csv.gz", ".tsv", ".tsv.gz", ".parquet")
#: What people call the required columns, to suggest the right name.
_ALIASES = {
    "gene_id": ("gene", "geneid", "gene_name", "id", "ensembl_id", "ensg"),
    "bin": ("bin_id", "binid", "bin_index", "position", "pos"),
}
HINTS = {
    "bin": "bin is the bin index within the gene (0, 1, 2, ... or 1, 2, 3, ...).",
    "bin_start_bp": "bin_start_bp is the bin's start in bp relative to the TSS (e.g. -5000).",
    "label": "label must be 0 (low expression) or 1 (high expression).",
    "expression": "expression must be a number (leave it empty if unknown).",
}
_TRUE, _FALSE = ("true", "1", "yes", "t"), ("false", "0", "no", "f")


def looks_like(fields: list[str]) -> bool:
    """A header line naming gene_id or bin (or a common alias of them: the reader says what to rename)."""
    lower = {f.strip().lower() for f in fields}
    return bool(lower & {*REQUIRED, *(a for aliases in _ALIASES.values() for a in aliases)})


def column_roles(src: SourceFile, header: list[str]) -> tuple[dict[str, str], list[str]]:
    """Map reserved column names (lower case) to the header's spelling; the rest are marks."""
    stripped = [h.strip() for h in header]
    has = "the file's columns are" if src.parquet else "the header (line 1) has"
    empty = [i + 1 for i, h in enumerate(stripped) if not h]
    if empty:
        raise src.error(
            f"column {empty[0]} of the header has no name ({len(empty)} unnamed column(s)); "
            "every column needs a name (a mark's name, or gene_id, bin, ...). Name it or remove it."
        )
    counts = Counter(stripped)
    dup = sorted(h for h, k in counts.items() if k > 1)
    if dup:
        raise src.error(f"column name(s) {listing(dup)} appear more than once; every column needs its own name.")
    # Reserved names are case-insensitive: Gene_ID and gene_id would both claim the gene id.
    by_lower = Counter(h.lower() for h in stripped if h.lower() in RESERVED)
    clash = sorted(low for low, k in by_lower.items() if k > 1)
    if clash:
        spelled = [h for h in stripped if h.lower() in clash]
        raise src.error(
            f"the columns {', '.join(spelled)} all name the reserved column {clash[0]} (names of "
            "reserved columns ignore case); keep one of them and rename or remove the others."
        )
    reserved = {h.lower(): h for h in stripped if h.lower() in RESERVED}
    missing = [c for c in REQUIRED if c not in reserved]
    if missing == ["bin"]:
        wide = wide_layout(stripped)
        if wide:
            raise src.error(wide)
    limits.check(
        limits.COLUMNS,
        len(header),
        str(src),
        "A long-format table has gene_id, bin, a few per-gene columns and one column per mark.",
    )
    if missing:
        near = [f"{h} -> {c}" for c in missing for h in stripped if h.lower() in _ALIASES[c]]
        raise src.error(
            f"the long format needs the column(s) {', '.join(missing)}, but {has}: "
            f"{listing(stripped)}. "
            + (f"Rename {', '.join(near)}. " if near else "Add or rename the columns. ")
            + "If this file is DeepChrome or DeepDiff CSV, name the format explicitly (--format)."
        )
    marks = [h for h in stripped if h.lower() not in RESERVED]
    if not marks:
        raise src.error(
            f"has no mark columns: every column besides {', '.join(RESERVED)} is a histone "
            f"mark, and {has} only {', '.join(stripped)}. Add the mark columns."
        )
    return reserved, marks


_WIDE_COLUMN = re.compile(
    r"^(?P<mark>.*?[^_.\-\s:])(?P<sep>(?=\D)[_.\-\s:]*(?:bin)?[_.\-\s:]*)(?P<bin>\d+)$", re.IGNORECASE
)


def wide_layout(header: list[str]) -> str:
    """A message for a wide table (one row per gene, one column per mark and bin), or ``""``.

    Columns such as ``H3K4me3_0 .. H3K4me3_99`` (or ``H3K4me3.bin1``) are grouped by mark; at least two
    bins of some mark make the table wide. The message shows how to reshape it to the long format.
    """
    groups: dict[tuple[str, str], list[int]] = {}
    for name in header:
        m = _WIDE_COLUMN.match(name)
        if m and m["mark"].lower() not in RESERVED:
            groups.setdefault((m["mark"], m["sep"]), []).append(int(m["bin"]))
    groups = {k: v for k, v in groups.items() if len(v) >= 2}
    if not groups:
        return ""
    marks = [mark for mark, _ in groups]
    seps = {sep for _, sep in groups}
    sep = seps.pop() if len(seps) == 1 else "_"
    bins = next(iter(groups.values()))
    gene = next((h for h in header if h.lower() == "gene_id"), "gene_id")
    return (
        f"this looks like a wide table (one row per gene, one column per mark and bin: "
        f"{listing([f'{m}{sep}{min(b)}..{m}{sep}{max(b)}' for (m, sep), b in groups.items()])}), but hmviz "
        f"reads the long format: one row per gene and bin, with columns {gene}, bin and one column per mark. "
        f"Reshape it first, e.g. in Python: import pandas as pd; pd.wide_to_long(pd.read_csv(FILE), "
        f"stubnames={marks!r}, i={gene!r}, j='bin', sep={sep!r}).reset_index().to_csv('long.csv', index=False) "
        f"(bins {min(bins)}..{max(bins)} become the bin column)."
    )


def read_rows(path: Path, split: str | None) -> list[Rows]:
    """One :class:`Rows` per cell in the file (one, unless it has a ``cell`` column)."""
    data, src = read_source(path)
    if src.parquet:
        table = read_parquet_table(src, data)
        reserved, marks = column_roles(src, table.column_names)
        table = table.rename_columns([c.strip() for c in table.column_names])
        table = coerce_columns(src, table, _types(reserved, marks), _hints(marks))
        for low in ("cell", "strand_aware", *STRING_PER_GENE, "gene_id"):
            if low in reserved and table.column(reserved[low]).null_count:
                i = table.column_names.index(reserved[low])
                table = table.set_column(i, reserved[low], pc.fill_null(table.column(i), ""))
    else:
        line = first_line(data)
        delimiter = sniff_delimiter(line, path)
        reserved, marks = column_roles(src, split_fields(line, delimiter))
        table = read_csv_table(
            src,
            data,
            delimiter=delimiter,
            names=None,
            types=_types(reserved, marks),
            layout="the long format has one header line and one row per gene and bin",
            hints=_hints(marks),
        )
        table = table.rename_columns([c.strip() for c in table.column_names])
    if table.num_rows == 0:
        raise src.error("has a header but no data rows. Add one row per gene and bin below the header.")
    groups: list[tuple[str | None, np.ndarray | None]]
    if "cell" in reserved:
        codes, cells = _codes(table.column(reserved["cell"]))
        groups = [(str(c).strip() or None, np.flatnonzero(codes == k)) for k, c in enumerate(cells)]
    else:
        groups = [(None, None)]
    out = []
    for cell, idx in groups:
        sub = table if idx is None else table.take(pa.array(idx))
        scol = {low: sub.column(name) for low, name in reserved.items()}
        per_gene = {
            low: (scol[low] if low in STRING_PER_GENE else float_column(sub, reserved[low]))
            for low in PER_GENE
            if low in scol
        }
        strand_aware = _strand_aware(src, sub, reserved.get("strand_aware"), idx)
        out.append(
            Rows(
                src=src,
                gene=pc.utf8_trim_whitespace(scol["gene_id"]),
                bins=_ints(src, sub, reserved["bin"], idx),
                marks=tuple(marks),
                values=[float_column(sub, m) for m in marks],
                per_gene=per_gene,
                bin_start_bp=(_ints(src, sub, reserved["bin_start_bp"], idx) if "bin_start_bp" in scol else None),
                pos=idx,
                cell=cell,
                strand_aware=strand_aware,
                split_from_name=split,
                default_bin_size=DEFAULT_BIN_SIZE,
            )
        )
    return out


def _hints(marks: list[str]) -> dict[str, str]:
    mark = (
        f"Every column other than {', '.join(RESERVED)} is read as a histone mark and must hold "
        "numbers; if {} is not a mark, remove the column."
    )
    return {**{m: mark.format(m) for m in marks}, **HINTS}


def _types(reserved: dict[str, str], marks: list[str]) -> dict[str, pa.DataType]:
    types: dict[str, pa.DataType] = {m: pa.float64() for m in marks}
    for low, name in reserved.items():
        types[name] = {
            "bin": pa.int64(),
            "bin_start_bp": pa.int64(),
            "expression": pa.float64(),
            "label": pa.float64(),
        }.get(low, pa.string())
    return types


def _codes(values: pa.ChunkedArray) -> tuple[np.ndarray, list[str]]:
    enc = values.dictionary_encode().combine_chunks()
    return enc.indices.to_numpy(zero_copy_only=False), enc.dictionary.to_pylist()


def _ints(src: SourceFile, table: pa.Table, name: str, idx: np.ndarray | None) -> np.ndarray:
    col = table.column(name)
    if col.null_count and idx is not None:  # name the line in the file, not in the cell's subset
        i = int(np.argmax(col.is_null().to_numpy(zero_copy_only=False)))
        raise DataError(f"{src.where(int(idx[i]))}: {name} is empty. {HINTS.get(name.lower(), '')}".rstrip())
    return int_column(src, table, name, HINTS.get(name.lower(), ""))


def _strand_aware(src: SourceFile, table: pa.Table, name: str | None, idx: np.ndarray | None) -> bool | None:
    """The one strand_aware value of a cell's rows (``idx``: their rows in the file)."""
    if name is None:
        return None
    codes, values = _codes(pc.utf8_lower(pc.utf8_trim_whitespace(table.column(name))))
    if len(values) > 1:
        i = int(np.argmax(codes != codes[0]))
        raise DataError(
            f"{src.where(i if idx is None else int(idx[i]))}: strand_aware is {values[codes[i]]!r} but "
            f"{values[codes[0]]!r} on the first row. strand_aware describes the whole dataset (each cell), so "
            "it must be the same on every row."
        )
    value = values[0]
    if value in _TRUE or value in _FALSE:
        return value in _TRUE
    if value == "":
        return None
    raise src.error(f"strand_aware is {value!r}; it must be true or false (or empty if unknown).")


# ------------------------------------------------------------------------------------ write
def write(dataset: HistoneDataset | MultiCellDataset, path: Path) -> int:
    """Write ``dataset`` in the long format; the suffix chooses CSV, TSV, .gz or Parquet.

    The bytes depend only on the dataset (gzip without a time stamp or file name), and the file
    is replaced atomically. Returns the number of data rows written.
    """
    kind = output_kind(path)
    table = to_table(dataset)
    if kind == "parquet":
        buf = pa.BufferOutputStream()
        pq.write_table(table, buf, compression="zstd")
        data = buf.getvalue().to_pybytes()
    else:
        delimiter = "\t" if kind.startswith("tsv") else ","
        buf = io.StringIO()
        csv.writer(buf, delimiter=delimiter, lineterminator="\n").writerow(table.column_names)
        out = io.BytesIO()
        out.write(buf.getvalue().encode("utf-8"))
        # Plain fields unless some text needs quoting (then pyarrow quotes every text value).
        quoting = "needed" if _needs_quotes(table, delimiter) else "none"
        pacsv.write_csv(
            table,
            out,
            write_options=pacsv.WriteOptions(include_header=False, delimiter=delimiter, quoting_style=quoting),
        )
        data = out.getvalue()
        if kind.endswith(".gz"):
            data = gzip.compress(data, compresslevel=6, mtime=0)
    atomic_write(path, data)
    return table.num_rows


def output_kind(path: Path) -> str:
    """``csv``, ``csv.gz``, ``tsv``, ``tsv.gz`` or ``parquet`` from the file name."""
    name = Path(path).name.lower()
    for suffix in sorted(WRITE_SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return suffix[1:]
    if name.endswith(".txt") or name.endswith(".txt.gz"):
        return "tsv.gz" if name.endswith(".gz") else "tsv"
    raise DataError(f"{path}: cannot tell the output format from the name; end it with {', '.join(WRITE_SUFFIXES)}.")


def to_table(dataset: HistoneDataset | MultiCellDataset) -> pa.Table:
    """The long-format table: per-gene columns, ``bin`` (0-based), ``bin_start_bp``, then marks."""
    cells = list(dataset.cells.items()) if isinstance(dataset, MultiCellDataset) else [(dataset.cell, dataset)]
    first = cells[0][1]
    clash = sorted({m for m in first.marks if m.lower() in RESERVED})
    if clash:
        raise DataError(
            f"mark name(s) {', '.join(clash)} are reserved column names of the long format; "
            "rename the marks before writing."
        )
    n_bins = first.n_bins
    # Several cells: a per-gene column is written only when every cell has it (the reader needs a
    # value for every gene); the others are dropped with a warning.
    partial = [c for c in PER_GENE if len({getattr(ds, ATTRIBUTE[c]) is None for _, ds in cells}) > 1]
    if partial:
        log.warning("Column(s) %s are known for some cells only and are not written.", ", ".join(partial))
    columns: dict[str, list[pa.Array]] = {}
    for cell, ds in cells:
        row_gene = pa.array(np.repeat(np.arange(ds.n_genes), n_bins))  # per gene -> per row
        per_gene: dict[str, pa.Array] = {}
        if cell is not None:
            per_gene["cell"] = pa.array([cell] * ds.n_genes, type=pa.string())
        per_gene["gene_id"] = pa.array(ds.gene_ids.tolist(), type=pa.string())
        for column in PER_GENE:
            value = getattr(ds, ATTRIBUTE[column])
            if value is None or column in partial:
                continue
            if column in STRING_PER_GENE:
                per_gene[column] = pa.array(value.tolist(), type=pa.string())
            elif column == "label":
                per_gene[column] = pa.array(value.astype(np.int8))
            else:
                per_gene[column] = pa.array(value, type=pa.float64(), from_pandas=True)  # NaN -> empty
        if ds.strand_aware is not None:
            per_gene["strand_aware"] = pa.array(["true" if ds.strand_aware else "false"] * ds.n_genes)
        parts = {name: arr.take(row_gene) for name, arr in per_gene.items()}
        parts["bin"] = pa.array(np.tile(np.arange(n_bins, dtype=np.int32), ds.n_genes))
        parts["bin_start_bp"] = pa.array(np.tile(ds.bin_starts_bp().astype(np.int64), ds.n_genes))
        flat = ds.signal.reshape(-1, ds.n_marks)
        for j, mark in enumerate(ds.marks):
            parts[mark] = pa.array(np.ascontiguousarray(flat[:, j]))
        for name, arr in parts.items():
            columns.setdefault(name, []).append(arr)
    return pa.table({name: pa.chunked_array(arrs) for name, arrs in columns.items()})


def _needs_quotes(table: pa.Table, delimiter: str) -> bool:
    """True when some text value holds the delimiter, a quote or a line break."""
    pattern = "[" + delimiter + '"\r\n]'
    return any(
        pc.any(pc.match_substring_regex(table.column(name), pattern)).as_py()
        for name in table.column_names
        if pa.types.is_string(table.column(name).type)
    )
