"""DeepDiff CSV: ``CellX.{train,valid,test}.csv`` plus ``CellX.expr.csv`` per cell.

Rows have no header: ``ENSGID_SYMBOL_bin, H3K4me1, H3K4me3, H3K9me3, H3K27me3, H3K36me3`` (note
the mark order differs from DeepChrome), 200 bins of 100 bp per gene (+/-10 kb; the DeepDiff README's
"+/-20,000 bp" is a typo). The gene id is the part before the first ``_``, the bin the part after
the last ``_``, the symbol what lies between. ``CellX.expr.csv`` holds ``geneID,count`` (a header
line is optional) and is joined by gene id.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hmviz.data.formats._assemble import Rows, float_column
from hmviz.data.formats._files import raise_first_non_numeric, read_headerless_csv
from hmviz.errors import DataError

NAME = "deepdiff"
MARKS: tuple[str, ...] = ("H3K4me1", "H3K4me3", "H3K9me3", "H3K27me3", "H3K36me3")
COLUMNS: tuple[str, ...] = ("key", *MARKS)
BIN_SIZE = 100
LAYOUT = f"DeepDiff CSV files have {len(COLUMNS)} columns and no header: ENSGID_SYMBOL_bin, {', '.join(MARKS)}"
TYPES = {"key": pa.string(), **{m: pa.float64() for m in MARKS}}
HINTS = {m: f"Column {i + 2} is the {m} read count; fix the value or remove the gene." for i, m in enumerate(MARKS)}
KEY_RE = r"^(?P<gene>[^_]+)_(?:(?P<symbol>.*)_)?(?P<bin>[^_]+)$"
#: ``Cell1.train.csv`` -> cell ``Cell1``, split ``train``; ``Cell1.expr.csv`` is the expression.
FILE_RE = re.compile(r"^(?P<cell>.+?)\.(?P<split>train|valid|test)\.(csv|tsv|txt)(\.gz)?$", re.IGNORECASE)
EXPR_RE = re.compile(r"^(?P<cell>.+?)\.expr\.(csv|tsv|txt)(\.gz)?$", re.IGNORECASE)


def looks_like(fields: list[str]) -> bool:
    """A headerless line starting ``ENSG..._SYMBOL_bin`` followed by numbers."""
    return len(fields) >= 2 and re.match(KEY_RE, fields[0]) is not None and fields[0].rsplit("_", 1)[1].isdigit()


def cell_and_split(path: Path) -> tuple[str, str | None]:
    """``Cell1.train.csv`` -> ``("Cell1", "train")``; any other name -> ``(stem, None)``."""
    m = FILE_RE.match(path.name)
    if m:
        return m.group("cell"), m.group("split").lower()
    name = path.name[:-3] if path.name.lower().endswith(".gz") else path.name
    return Path(name).stem, None


def expression_file(folder: Path, cell: str) -> Path | None:
    for path in sorted(folder.iterdir()):
        m = EXPR_RE.match(path.name)
        if m and m.group("cell") == cell:
            return path
    return None


def read_rows(path: Path, split: str | None, cell: str) -> Rows:
    table, src = read_headerless_csv(path, "DeepDiff", names=COLUMNS, types=TYPES, layout=LAYOUT, hints=HINTS)
    parts = pc.extract_regex(table.column("key"), KEY_RE)
    bad = parts.is_null().to_numpy(zero_copy_only=False) if parts.null_count else None
    if bad is not None:
        i = int(np.argmax(bad))
        raise DataError(
            f"{src.where(i)}: the first field is {table.column('key')[i].as_py()!r}, but DeepDiff rows start "
            "with ENSGID_SYMBOL_bin (e.g. ENSG00000130749_ZC3H4_1). Fix the row, or if the file is in "
            "another format, name the format explicitly (--format)."
        )
    parts = parts.combine_chunks() if isinstance(parts, pa.ChunkedArray) else parts
    bins_text = parts.field("bin")
    try:
        bins = pc.cast(bins_text, pa.int64()).to_numpy()
    except pa.ArrowInvalid:
        raise_first_non_numeric(
            src,
            pa.table({"bin": bins_text}),
            {"bin": pa.int64()},
            {"bin": "The number after the last '_' of the first field is the bin (1..N)."},
        )
        raise
    return Rows(
        src=src,
        gene=parts.field("gene"),
        bins=bins,
        marks=MARKS,
        values=[float_column(table, m) for m in MARKS],
        per_gene={"symbol": parts.field("symbol")},
        split_from_name=split,
        cell=cell,
        default_bin_size=BIN_SIZE,
    )
