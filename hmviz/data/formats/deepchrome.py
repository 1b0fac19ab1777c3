"""DeepChrome / AttentiveChrome CSV: no header, one row per (gene, bin).

Columns: ``gene id, bin id (1..N), H3K27me3, H3K36me3, H3K4me1, H3K4me3, H3K9me3, label (0/1)``.
Bins are 100 bp and the TSS is at the start of bin ``N // 2`` (0-based), i.e. +/-5 kb for 100
bins. A dataset is one file, or the ``train.csv``/``valid.csv``/``test.csv`` files of a folder
(the file names give the split).
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from hmviz.data.formats._assemble import Rows, float_column, int_column
from hmviz.data.formats._files import is_number, read_headerless_csv

NAME = "deepchrome"
MARKS: tuple[str, ...] = ("H3K27me3", "H3K36me3", "H3K4me1", "H3K4me3", "H3K9me3")
COLUMNS: tuple[str, ...] = ("gene_id", "bin", *MARKS, "label")
BIN_SIZE = 100
LAYOUT = (
    f"DeepChrome/AttentiveChrome CSV files have {len(COLUMNS)} columns and no header: gene id, "
    f"bin (1..N), {', '.join(MARKS)}, label (0/1)"
)
TYPES = {"gene_id": pa.string(), "bin": pa.int64(), **{m: pa.float64() for m in MARKS}, "label": pa.float64()}
HINTS = {
    "bin": "The second column is the bin index (1, 2, ..., N within each gene).",
    "label": "The last column is the label: 1 = high expression, 0 = low.",
    **{m: f"Column {i + 3} is the {m} read count; fix the value or remove the gene." for i, m in enumerate(MARKS)},
}


def looks_like(fields: list[str]) -> bool:
    """A headerless line whose first field is a gene id and whose other fields are numbers."""
    return len(fields) >= 3 and "_" not in fields[0] and all(is_number(f) for f in fields[1:])


def read_rows(path: Path, split: str | None) -> Rows:
    table, src = read_headerless_csv(path, "DeepChrome", names=COLUMNS, types=TYPES, layout=LAYOUT, hints=HINTS)
    return Rows(
        src=src,
        gene=table.column("gene_id"),
        bins=int_column(src, table, "bin", HINTS["bin"]),
        marks=MARKS,
        values=[float_column(table, m) for m in MARKS],
        per_gene={"label": float_column(table, "label")},
        split_from_name=split,
        default_bin_size=BIN_SIZE,
    )
