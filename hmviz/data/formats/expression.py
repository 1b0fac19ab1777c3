"""Expression tables: one value per gene, joined to a dataset by gene id.

A CSV/TSV (optionally .gz) with a header naming a gene id column (``gene_id``, or DeepDiff's
``geneID``) and an expression column (``expression``, or DeepDiff's ``count``). A two-column file
without a header (as DeepDiff's ``CellX.expr.csv`` files are shipped) is read as
``gene_id, expression``. Empty or ``NA`` values mean "not measured" (NaN).
"""

from __future__ import annotations

import dataclasses
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from hmviz.data.dataset import HistoneDataset
from hmviz.data.formats._files import first_line, is_number, read_csv_table, read_source, sniff_delimiter, split_fields
from hmviz.data.validation import check_expression, listing
from hmviz.errors import DataError

GENE_COLUMNS = ("gene_id", "geneid")
VALUE_COLUMNS = ("expression", "count")
HINT = "Expression values must be numbers (e.g. RPKM or read counts); leave the field empty if unknown."


def read_expression(path: str | Path) -> pd.Series:
    """Read an expression table. Returns float64 values indexed by gene id (str), named ``expression``.

    Raises :class:`DataError` for a missing gene id or expression column, a non-numeric value
    (naming the line), or a gene listed twice with different values.
    """
    path = Path(path)
    text, src = read_source(path)
    if src.parquet:
        raise src.error("expression tables are read from CSV/TSV text; export it as CSV.")
    line = first_line(text)
    delimiter = sniff_delimiter(line, path)
    fields = [f.strip() for f in split_fields(line, delimiter)]
    headerless = len(fields) == 2 and is_number(fields[1])
    gene_col: str | None
    value_col: str | None
    if headerless:
        names, gene_col, value_col = ["gene_id", "expression"], "gene_id", "expression"
    else:
        lower = [f.lower() for f in fields]
        gene_col = next((fields[lower.index(c)] for c in GENE_COLUMNS if c in lower), None)
        value_col = next((fields[lower.index(c)] for c in VALUE_COLUMNS if c in lower), None)
        if gene_col is None or value_col is None:
            need = [n for n, c in (("gene_id", gene_col), ("expression", value_col)) if c is None]
            raise src.error(
                f"an expression table needs the column(s) {' and '.join(need)}, but the header (line 1) "
                f"has: {', '.join(fields)}. Rename the columns to gene_id and expression (a two-column "
                "file without a header is read as gene_id, expression)."
            )
        names = None
    types = {gene_col: pa.string(), value_col: pa.float64()}
    table = read_csv_table(
        src,
        text,
        delimiter=delimiter,
        names=names,
        types=types,
        layout="an expression table has a gene id and an expression column",
        hints={value_col: HINT},
    )
    if table.num_rows == 0:
        raise src.error("has a header but no data rows.")
    ids = np.asarray([s.strip() for s in table.column(gene_col).to_pylist()], dtype=object)
    values = table.column(value_col).to_numpy().astype(np.float64, copy=False)
    check_expression(src.where, ids, values)
    series = pd.Series(values, index=pd.Index(ids, dtype=object, name="gene_id"), name="expression")
    dup = series.index.duplicated(keep=False)
    if dup.any():
        grouped = series[dup].groupby(level=0).nunique(dropna=False)
        conflict = grouped[grouped > 1]
        if len(conflict):
            gene = conflict.index[0]
            lines = [src.at(i) for i in np.flatnonzero(ids == gene)[:2]]
            raise src.error(
                f"gene {gene} is listed with different expression values ({' and '.join(lines)}); "
                f"{len(conflict)} gene(s) conflict: {listing(conflict.index.tolist())}. Keep one value per gene."
            )
        series = series[~series.index.duplicated()]
    return series


def _ensembl_number(ids: np.ndarray) -> pd.Index:
    """``ENSG00000130749.5`` and ``130749`` -> ``130749`` (DeepChrome files drop the prefix)."""
    return pd.Index([re.sub(r"^ENSG0*|\.\d+$", "", str(g)).lstrip("0") for g in ids], dtype=object)


def attach_expression(ds: HistoneDataset, table: pd.Series, what: str, notes: list[tuple[int, str]]) -> HistoneDataset:
    """The dataset with ``expression`` from ``table`` (joined by gene id; absent genes get NaN).

    What the join had to assume goes to ``notes`` as ``(logging level, text)``.
    """
    values = table.reindex(pd.Index(ds.gene_ids, dtype=object)).to_numpy()
    found = table.index.isin(ds.gene_ids).sum()
    if found == 0:
        by_number = table.copy()
        by_number.index = _ensembl_number(table.index.to_numpy())
        by_number = by_number[~by_number.index.duplicated()]
        values = by_number.reindex(_ensembl_number(ds.gene_ids)).to_numpy()
        if np.isfinite(values).any():
            notes.append(
                (
                    logging.INFO,
                    f"{what}: gene ids matched by their Ensembl number (as in DeepChrome "
                    "files, where 130749 stands for ENSG00000130749).",
                )
            )
        else:
            raise DataError(
                f"{what}: none of the {ds.n_genes} genes of the dataset is in this expression table (dataset "
                f"ids look like {', '.join(ds.gene_ids[:2])}; the table's like "
                f"{', '.join(map(str, table.index[:2]))}). Use a table with the same kind of gene ids."
            )
    missing = int((~np.isfinite(values)).sum())
    if missing:
        notes.append(
            (
                logging.WARNING,
                f"{what}: {missing} of {ds.n_genes} genes have no expression value "
                f"(set to NaN): {listing(ds.gene_ids[~np.isfinite(values)].tolist(), missing)}.",
            )
        )
    return dataclasses.replace(ds, expression=values.astype(np.float64), meta=dict(ds.meta))
