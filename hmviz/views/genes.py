"""Genes by name: symbols and loci attached to any dataset, and search by symbol or id.

A dataset's genes are matched to an annotation by id. Ensembl ids are matched without their
version (``ENSG00000141510.17`` = ``ENSG00000141510``), and the numeric ids of the DeepChrome
release (``141510``) match the Ensembl gene id with the same number (:func:`ensembl_key`).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hmviz import limits
from hmviz.data.annotation import GeneAnnotation, read_genes
from hmviz.data.formats._files import read_source
from hmviz.errors import DataError

_ENSEMBL = re.compile(r"^(ENS[A-Z]*)G0*(\d+)(?:\.\d+)?$", re.IGNORECASE)
_NUMERIC = re.compile(r"^0*(\d+)$")
_SYMBOL_COLUMNS = ("symbol", "gene_name", "gene_symbol", "name")


def ensembl_key(gene_id: str) -> str:
    """The key two spellings of one gene id share: the number of a human Ensembl gene id (no version,
    no zero padding) for ``ENSG...`` and purely numeric ids (DeepChrome's); another species' Ensembl id
    keeps its prefix (``ENSMUSG...`` is not ``ENSG...``); any other id is itself."""
    text = str(gene_id).strip()
    m = _ENSEMBL.match(text)
    if m:
        prefix = m.group(1).upper()
        return m.group(2) if prefix == "ENS" else f"{prefix}{m.group(2)}"
    m = _NUMERIC.match(text)
    return m.group(1) if m else text


@dataclass(frozen=True)
class GeneNames:
    """Symbols (and, from a GTF/BED/coordinate table, loci) per gene id. Arrays of equal length;
    ``chrom``/``tss``/``strand`` are None for a two-column id -> symbol table."""

    gene_ids: np.ndarray
    symbols: np.ndarray | None
    chrom: np.ndarray | None = None
    tss: np.ndarray | None = None
    strand: np.ndarray | None = None
    source: str = ""


def read_gene_names(path: str | Path) -> GeneNames:
    """Read a gene annotation for names and loci: a GTF, a BED6 file, a table with coordinates
    (see :mod:`hmviz.data.annotation`), or a table ``gene_id,symbol`` (header required; comma or tab)."""
    path = Path(path)
    try:
        ann = read_genes(path)
    except DataError as first:
        table = _read_two_columns(path)
        if table is None:
            raise first
        return table
    return GeneNames(ann.gene_ids, ann.symbols, ann.chrom, ann.tss, ann.strand, source=str(path))


def _read_two_columns(path: Path) -> GeneNames | None:
    name = path.name.lower().removesuffix(".gz")
    if not name.endswith((".csv", ".tsv", ".txt")):
        return None
    sep = "\t" if name.endswith((".tsv", ".txt")) else ","
    raw, _ = read_source(path)  # a regular file, decompressed within hmviz.limits.INPUT_BYTES
    limits.check(limits.GENE_RECORDS, raw.count(b"\n") - 1, str(path))  # before parsing: rows cost memory
    try:
        frame = pd.read_csv(io.BytesIO(raw), sep=sep, dtype=str, keep_default_na=False)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{path.name}: could not be read as a table ({exc}).") from exc
    lower = {c.lower().strip(): c for c in frame.columns}
    id_col = lower.get("gene_id")
    sym_col = next((lower[c] for c in _SYMBOL_COLUMNS if c in lower), None)
    if id_col is None or sym_col is None:
        raise DataError(
            f"{path.name}: a gene-name table needs a header with gene_id and symbol (e.g. "
            f"'gene_id,symbol'); its header has: {', '.join(map(str, frame.columns[:8]))}."
        )
    ids = frame[id_col].str.strip().to_numpy(dtype=object)
    symbols = frame[sym_col].str.strip().to_numpy(dtype=object)
    if (ids == "").any():
        row = int(np.argmax(ids == "")) + 2
        raise DataError(f"{path.name}, line {row}: the gene_id is empty.")
    return GeneNames(ids, symbols, source=str(path))


class GeneIndex:
    """Every gene of a dataset with its symbol and locus when known; search by symbol or id.

    Built once per dataset (and annotation); :meth:`search` answers from precomputed lower-case
    arrays, so a query over 20,000 genes takes milliseconds.
    """

    def __init__(self, gene_ids, symbols=None, chrom=None, tss=None, strand=None):
        self.gene_ids = np.asarray(gene_ids, dtype=object)
        n = self.gene_ids.size
        self.symbols = np.asarray(symbols, dtype=object) if symbols is not None else np.full(n, "", dtype=object)
        self.chrom = np.asarray(chrom, dtype=object) if chrom is not None else np.full(n, "", dtype=object)
        self.tss = np.asarray(tss, dtype=np.int64) if tss is not None else np.full(n, -1, dtype=np.int64)
        self.strand = np.asarray(strand, dtype=object) if strand is not None else np.full(n, ".", dtype=object)
        self._ids_lower = np.char.lower(self.gene_ids.astype(str))
        self._symbols_lower = np.char.lower(self.symbols.astype(str))

    @classmethod
    def from_dataset(cls, dataset, names: GeneNames | GeneAnnotation | None = None) -> GeneIndex:
        """The dataset's own symbols/chromosomes/strands, completed (not overridden where the dataset
        has a value) by ``names`` matched on :func:`ensembl_key`."""
        first = getattr(dataset, "first", dataset)
        ids = first.gene_ids
        n = ids.size
        symbols, chrom, strand = _named_columns(first, names)
        tss = np.full(n, -1, dtype=np.int64)
        if names is not None and names.tss is not None:
            hit = match_names(ids, names)
            found = hit >= 0
            tss[found] = np.asarray(names.tss, dtype=np.int64)[hit[found]]
        return cls(ids, symbols, chrom, tss, strand)

    def __len__(self) -> int:
        return int(self.gene_ids.size)

    @property
    def n_matched_symbols(self) -> int:
        return int((self.symbols != "").sum())

    def label(self, i: int) -> str:
        """``SYMBOL (id)`` when the symbol is known, else the id."""
        sym = self.symbols[i]
        return f"{sym} ({self.gene_ids[i]})" if sym and sym != self.gene_ids[i] else str(self.gene_ids[i])

    def labels(self) -> list[str]:
        return [self.label(i) for i in range(len(self))]

    def search(self, query: str, limit: int = 20) -> np.ndarray:
        """Rows of the genes matching ``query`` (case-insensitive) in the order: exact symbol or id,
        then symbols/ids starting with it, then containing it. At most ``limit`` rows."""
        q = str(query).strip().lower()
        if not q:
            return np.zeros(0, dtype=np.int64)
        out: list[np.ndarray] = []
        seen = np.zeros(len(self), dtype=bool)
        for hits in (
            (self._symbols_lower == q) | (self._ids_lower == q),
            np.char.startswith(self._symbols_lower, q) | np.char.startswith(self._ids_lower, q),
            (np.char.find(self._symbols_lower, q) >= 0) | (np.char.find(self._ids_lower, q) >= 0),
        ):
            new = np.flatnonzero(hits & ~seen)
            seen[new] = True
            out.append(new)
            if sum(a.size for a in out) >= limit:
                break
        return np.concatenate(out)[:limit]

    def find(self, query: str) -> int:
        """The one gene ``query`` names (symbol or id, case-insensitive); an error naming the
        candidates when it names none or several."""
        q = str(query).strip().lower()
        exact = np.flatnonzero(self._ids_lower == q)
        if exact.size == 0:
            exact = np.flatnonzero(self._symbols_lower == q)
        if exact.size == 1:
            return int(exact[0])
        if exact.size > 1:
            raise DataError(
                f"'{query}' is the symbol of {exact.size} genes "
                f"({', '.join(self.gene_ids[exact[:5]])}); give the gene id instead."
            )
        near = self.search(query, limit=5)
        hint = f" Close matches: {', '.join(self.label(i) for i in near)}." if near.size else ""
        raise DataError(f"No gene '{query}' in the data (by symbol or id).{hint}")


def match_names(gene_ids, names: GeneNames | GeneAnnotation) -> np.ndarray:
    """For each of ``gene_ids`` the row of ``names`` with the same gene (:func:`ensembl_key`), -1 where
    the annotation lacks it. Raises :class:`DataError` (naming the annotation's file) when no id matches."""
    keys = {ensembl_key(g): k for k, g in enumerate(names.gene_ids)}
    hit = np.asarray([keys.get(ensembl_key(g), -1) for g in gene_ids], dtype=np.int64)
    if hit.size and not (hit >= 0).any():
        ids = np.asarray(gene_ids)
        raise DataError(
            f"{Path(str(names.source)).name or 'the annotation'}: none of its gene ids match the data's "
            f"(the data's look like {', '.join(map(str, ids[:3]))}; the annotation's like "
            f"{', '.join(map(str, names.gene_ids[:3]))}). Give an annotation of the same genes."
        )
    return hit


def _named_columns(ds, names: GeneNames | GeneAnnotation | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(symbols, chrom, strand)`` of one cell's genes: the dataset's own values, completed by ``names``
    (a symbol the data has is kept; chromosome and a known strand come from the annotation)."""
    n = ds.gene_ids.size
    symbols, chrom, strand = _filled(ds.symbols, n, ""), _filled(ds.chrom, n, ""), _filled(ds.strand, n, ".")
    if names is None:
        return symbols, chrom, strand
    hit = match_names(ds.gene_ids, names)
    found = hit >= 0
    if names.symbols is not None:
        empty = found & ((symbols == "") | (symbols == ds.gene_ids))
        symbols[empty] = np.asarray(names.symbols, dtype=object)[hit[empty]]
    if names.chrom is not None:
        chrom[found] = np.asarray(names.chrom, dtype=object)[hit[found]]
        known = np.asarray(names.strand, dtype=object)[hit[found]]
        strand[found] = np.where(known == ".", strand[found], known)
    return symbols, chrom, strand


def with_gene_names(dataset, names: GeneNames | GeneAnnotation):
    """``dataset`` (one cell or several) with symbols, chromosomes and strands from ``names`` filled in
    where the data has none (matched by :func:`ensembl_key`). The signal, ids and order are unchanged,
    so a model trained on the data reads the named data too. Raises :class:`DataError` when no id matches."""
    import dataclasses

    def named(ds):
        symbols, chrom, strand = _named_columns(ds, names)
        meta = {**ds.meta, "annotation": Path(str(names.source)).name}
        return dataclasses.replace(
            ds,
            symbols=symbols,
            chrom=chrom if (chrom != "").any() else ds.chrom,
            strand=strand if (strand != ".").any() else ds.strand,
            meta=meta,
        )

    if hasattr(dataset, "cells"):
        return type(dataset)({k: named(v) for k, v in dataset.cells.items()}, source=dataset.source)
    return named(dataset)


def symbol_column(table: pd.DataFrame, dataset) -> pd.DataFrame:
    """``table`` with a ``symbol`` column after its ``gene_id`` (or ``gene``) column: each gene's symbol
    from ``dataset`` ('' where unknown; ``GENE@CELL`` ids are looked up by ``GENE``). Unchanged when the
    data has no symbols or the table no gene column."""
    first = getattr(dataset, "first", dataset)
    col = next((c for c in ("gene_id", "gene") if c in table.columns), None)
    if col is None or first.symbols is None or "symbol" in table.columns:
        return table
    lookup = dict(zip(map(str, first.gene_ids), (str(s) if s == s and s is not None else "" for s in first.symbols)))
    ids = table[col].astype(str).str.rsplit("@", n=1).str[0]
    out = table.copy()
    out.insert(out.columns.get_loc(col) + 1, "symbol", ids.map(lookup).fillna("").to_numpy())
    return out


def _filled(values, n: int, empty: str) -> np.ndarray:
    if values is None:
        return np.full(n, empty, dtype=object)
    out = np.asarray(values, dtype=object).copy()
    out[pd.isna(out)] = empty
    return out
