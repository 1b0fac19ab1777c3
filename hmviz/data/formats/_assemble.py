"""Rows of (gene, bin, marks...) -> a validated :class:`HistoneDataset`, vectorised.

Every reader parses its files into :class:`Rows` (one row per gene and bin, in file order) and
calls :func:`assemble`; files of one dataset (the train/valid/test split files) are joined with
:func:`combine_files`, cells with :func:`combine_cells`. Genes keep their order of first
appearance; rows are sorted by (gene, bin) and reshaped, never looped over in Python.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, TypedDict

import numpy as np
import pyarrow as pa

from hmviz.data import validation as v
from hmviz.data.dataset import HistoneDataset, MultiCellDataset
from hmviz.data.validation import SourceFile
from hmviz.errors import DataError

log = logging.getLogger(__name__)

STRING_PER_GENE = ("symbol", "chrom", "strand", "split")
FLOAT_PER_GENE = ("expression", "label")
PER_GENE = STRING_PER_GENE + FLOAT_PER_GENE
#: HistoneDataset attribute of each per-gene column.
ATTRIBUTE = {
    "symbol": "symbols",
    "chrom": "chrom",
    "strand": "strand",
    "split": "split",
    "expression": "expression",
    "label": "labels",
}


@dataclass
class Rows:
    """One cell's rows from one file: one row per (gene, bin), in file order.

    ``gene``: gene ids (arrow strings); ``bins``: int64 bin index; ``values``: one float64 array
    per mark; ``per_gene``: optional columns constant within a gene (arrow strings for symbol,
    chrom, strand, split; float64 numpy for expression and label); ``pos``: the file row of each
    row (``None``: row i), for messages.
    """

    src: SourceFile
    gene: pa.ChunkedArray | pa.Array
    bins: np.ndarray
    marks: tuple[str, ...]
    values: list[np.ndarray]
    per_gene: dict[str, pa.ChunkedArray | pa.Array | np.ndarray] = field(default_factory=dict)
    bin_start_bp: np.ndarray | None = None
    pos: np.ndarray | None = None
    cell: str | None = None
    strand_aware: bool | None = None
    split_from_name: str | None = None
    default_bin_size: int = 100


class _PerGeneFields(TypedDict):
    symbols: np.ndarray | None
    chrom: np.ndarray | None
    strand: np.ndarray | None
    split: np.ndarray | None
    expression: np.ndarray | None
    labels: np.ndarray | None


def _per_gene_fields(values: dict[str, np.ndarray]) -> _PerGeneFields:
    """The per-gene arguments of :class:`HistoneDataset` from ``{attribute: values}`` (None where absent)."""
    return _PerGeneFields(
        symbols=values.get("symbols"),
        chrom=values.get("chrom"),
        strand=values.get("strand"),
        split=values.get("split"),
        expression=values.get("expression"),
        labels=values.get("labels"),
    )


class Part(NamedTuple):
    """A dataset read from one file, with where each gene starts in it (for messages)."""

    dataset: HistoneDataset
    src: SourceFile
    gene_pos: np.ndarray  # file row of each gene's first (sorted) row

    def where_gene(self, g: int) -> str:
        return self.src.where(int(self.gene_pos[g]))


def encode(values: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Codes (int64, order of first appearance) and the distinct strings (object array)."""
    enc = values.dictionary_encode()
    chunks = enc.chunks if isinstance(enc, pa.ChunkedArray) else [enc]
    if not chunks:
        return np.zeros(0, np.int64), np.zeros(0, object)
    codes = np.concatenate([c.indices.to_numpy(zero_copy_only=False) for c in chunks]).astype(np.int64)
    return codes, np.asarray(chunks[0].dictionary.to_pylist(), dtype=object)


def assemble(rows: Rows) -> Part:
    """Validate ``rows`` and reshape them to a dataset (genes in order of first appearance).

    Without ``bin_start_bp`` the bins are ``default_bin_size`` bp and the TSS is bin ``bins // 2``.
    """
    src, pos = rows.src, rows.pos
    n = rows.bins.size
    if n == 0:
        raise src.error("has no data rows.")
    codes, names = encode(rows.gene)
    blank = np.char.str_len(np.char.strip(names.astype(str))) == 0
    if blank.any():
        v.check_gene_ids(src, pos, blank[codes])
    for name, values in zip(rows.marks, rows.values):
        v.check_mark_values(src, pos, name, values)

    d_codes, d_bins = np.diff(codes), np.diff(rows.bins)
    in_order = bool(((d_codes > 0) | ((d_codes == 0) & (d_bins > 0))).all())
    order = np.arange(n) if in_order else np.lexsort((rows.bins, codes))
    s_codes = codes if in_order else codes[order]
    s_bins = rows.bins if in_order else rows.bins[order]
    counts = np.bincount(codes, minlength=names.size)
    v.check_bin_layout(src, pos, names, s_codes, s_bins, order, counts)
    n_genes, n_bins, n_marks = names.size, n // names.size, len(rows.marks)

    signal = np.empty((n, n_marks), dtype=np.float32)
    for j, values in enumerate(rows.values):
        signal[:, j] = values if in_order else values[order]
    starts = np.arange(n_genes) * n_bins
    gene_pos = order[starts] if pos is None else pos[order[starts]]

    def first_line(g: int) -> str:
        return src.at(int(gene_pos[g]))

    if rows.bin_start_bp is not None:
        bsb = rows.bin_start_bp if in_order else rows.bin_start_bp[order]
        bin_size, tss_bin = v.bin_geometry(src, pos, names, bsb.reshape(n_genes, n_bins), order)
    else:
        bin_size, tss_bin = rows.default_bin_size, n_bins // 2

    kw: dict[str, np.ndarray] = {}  # HistoneDataset attribute: one value per gene
    for column, values in rows.per_gene.items():
        if column in STRING_PER_GENE:
            col_codes, col_names = encode(values)
            keys = col_codes if in_order else col_codes[order]
            shown = col_names[keys]
        else:
            shown = values if in_order else values[order]
            keys = np.where(np.isnan(shown), np.nan, shown).view(np.int64)
        v.check_constant_per_gene(src, pos, names, column, s_codes, keys, shown, order)
        per_gene = shown[starts]
        if column == "label":
            if np.isnan(per_gene).all():
                continue  # an empty label column: no labels
            per_gene = v.check_labels(src, names, per_gene, first_line)
        elif column == "split":
            per_gene = v.normalize_split(src, names, per_gene, first_line)
            if (per_gene == "").all():
                continue
        elif column == "expression":
            v.check_expression(lambda g: src.where(int(gene_pos[g])), names, per_gene)
        elif column == "strand":
            per_gene = np.asarray([s.strip() for s in per_gene], dtype=object)
            v.check_strand(src, names, per_gene, first_line)
        kw[ATTRIBUTE[column]] = per_gene
    if rows.split_from_name and "split" not in kw:
        kw["split"] = np.full(n_genes, rows.split_from_name, dtype=object)

    try:
        ds = HistoneDataset(
            signal=signal.reshape(n_genes, n_bins, n_marks),
            gene_ids=names,
            marks=rows.marks,
            bin_size=bin_size,
            tss_bin=tss_bin,
            cell=rows.cell,
            source=str(src),
            strand_aware=rows.strand_aware,
            **_per_gene_fields(kw),
        )
    except DataError as exc:
        raise src.error(str(exc)) from None
    return Part(ds, src, gene_pos)


def int_column(src: SourceFile, table: pa.Table, name: str, hint: str = "") -> np.ndarray:
    """A whole-number column as int64; an empty value is an error naming its line."""
    col = table.column(name)
    if col.null_count:
        i = int(np.argmax(col.is_null().to_numpy(zero_copy_only=False)))
        raise DataError(f"{src.where(i)}: {name} is empty. {hint}".rstrip())
    return col.to_numpy().astype(np.int64, copy=False)


def float_column(table: pa.Table, name: str) -> np.ndarray:
    """A numeric column as float64, empty values as NaN."""
    return table.column(name).to_numpy().astype(np.float64, copy=False)


def combine_files(parts: Sequence[Part], source: str) -> HistoneDataset:
    """Concatenate the genes of several files (e.g. train/valid/test) into one dataset."""
    first = parts[0]
    ds0 = first.dataset
    if len(parts) == 1:
        ds0.source = source
        return ds0
    for part in parts[1:]:
        ds = part.dataset
        if ds.marks != ds0.marks:
            raise DataError(
                f"{part.src} has marks {', '.join(ds.marks)} but {first.src} has {', '.join(ds0.marks)}. "
                "All files of a dataset need the same mark columns in the same order."
            )
        if (ds.n_bins, ds.bin_size, ds.tss_bin) != (ds0.n_bins, ds0.bin_size, ds0.tss_bin):
            raise DataError(
                f"{part.src} has {ds.n_bins} bins of {ds.bin_size} bp (TSS at bin {ds.tss_bin}) per gene "
                f"but {first.src} has {ds0.n_bins} bins of {ds0.bin_size} bp (TSS at bin {ds0.tss_bin}). "
                "All files of a dataset need the same window around the TSS."
            )
        if ds.strand_aware != ds0.strand_aware:
            raise DataError(
                f"{part.src} has strand_aware={ds.strand_aware} but {first.src} has "
                f"strand_aware={ds0.strand_aware}; make them agree."
            )
        for attr in ATTRIBUTE.values():
            if (getattr(ds, attr) is None) != (getattr(ds0, attr) is None):
                has, lacks = (part, first) if getattr(ds, attr) is not None else (first, part)
                column = next(k for k, a in ATTRIBUTE.items() if a == attr)
                raise DataError(
                    f"{has.src} has a {column} column but {lacks.src} has none. Give every "
                    f"file of a dataset the same columns (or drop {column})."
                )
    ids = np.concatenate([p.dataset.gene_ids for p in parts])
    uniq, first_idx, counts = np.unique(ids, return_index=True, return_counts=True)
    if (counts > 1).any():
        gene = uniq[counts > 1][0]
        found = [
            f"{p.where_gene(int(np.flatnonzero(p.dataset.gene_ids == gene)[0]))}"
            for p in parts
            if gene in set(p.dataset.gene_ids.tolist())
        ]
        raise DataError(
            f"gene {gene} appears in more than one file ({'; '.join(found)}); "
            f"{int((counts > 1).sum())} gene(s) are repeated. A gene belongs to one split: remove the "
            "duplicates, or give different genes different ids."
        )
    kw: dict[str, np.ndarray] = {}  # HistoneDataset attribute: one value per gene
    for attr in ATTRIBUTE.values():
        if getattr(ds0, attr) is not None:
            kw[attr] = np.concatenate([getattr(p.dataset, attr) for p in parts])
    return HistoneDataset(
        signal=np.concatenate([p.dataset.signal for p in parts]),
        gene_ids=ids,
        marks=ds0.marks,
        bin_size=ds0.bin_size,
        tss_bin=ds0.tss_bin,
        cell=ds0.cell,
        source=source,
        strand_aware=ds0.strand_aware,
        **_per_gene_fields(kw),
    )


def check_label_classes(ds: HistoneDataset) -> None:
    if ds.labels is not None:
        v.check_label_classes(ds.source + (f" (cell {ds.cell})" if ds.cell else ""), ds.labels)


def combine_cells(cells: Mapping[str, HistoneDataset], where: Mapping[str, str], source: str) -> MultiCellDataset:
    """Cells over the same genes -> MultiCellDataset, genes in the first cell's order.

    ``where`` names the file(s) each cell came from, for messages.
    """
    names = list(cells)
    first = cells[names[0]]
    index = {g: i for i, g in enumerate(first.gene_ids.tolist())}
    out = {names[0]: first}
    for name in names[1:]:
        ds = cells[name]
        only_first = sorted(set(index) - set(ds.gene_ids.tolist()))
        only_this = sorted(set(ds.gene_ids.tolist()) - set(index))
        if only_first or only_this:
            parts = []
            if only_first:
                parts.append(
                    f"{len(only_first)} gene(s) only in cell {names[0]} ({where[names[0]]}): {v.listing(only_first)}"
                )
            if only_this:
                parts.append(f"{len(only_this)} gene(s) only in cell {name} ({where[name]}): {v.listing(only_this)}")
            raise DataError(
                f"cells {names[0]} and {name} must cover the same genes, but {'; '.join(parts)}. Keep only "
                "the genes present in every cell."
            )
        ds = ds.subset(np.argsort([index[g] for g in ds.gene_ids.tolist()], kind="stable"))
        if first.split is not None and ds.split is not None and not np.array_equal(first.split, ds.split):
            g = int(np.argmax(first.split != ds.split))
            raise DataError(
                f"gene {first.gene_ids[g]} is in the {first.split[g]} split in cell {names[0]} "
                f"({where[names[0]]}) but in the {ds.split[g]} split in cell {name} ({where[name]}). A gene "
                "must be in the same split in every cell, or the test genes leak into training."
            )
        out[name] = ds
    try:
        return MultiCellDataset(out, source=source)
    except DataError as exc:
        raise DataError(f"{source}: {exc}") from None


def rename_cells(names: list[str], cell_names: Sequence[str] | Mapping[str, str] | None) -> list[str]:
    """Apply ``cell_names`` (new names in order, or a mapping old -> new) to the cells found."""
    if cell_names is None:
        return names
    if isinstance(cell_names, Mapping):
        unknown = sorted(set(cell_names) - set(names))
        if unknown:
            raise DataError(
                f"cell_names renames {', '.join(unknown)}, which are not among the cells found ({', '.join(names)})."
            )
        new = [str(cell_names.get(n, n)) for n in names]
    else:
        if isinstance(cell_names, str):
            cell_names = [cell_names]
        if len(cell_names) != len(names):
            raise DataError(
                f"{len(cell_names)} cell name(s) given ({', '.join(map(str, cell_names))}) for "
                f"{len(names)} cell(s) found ({', '.join(names)}); give one name per cell."
            )
        new = [str(c) for c in cell_names]
    if len(set(new)) != len(new):
        raise DataError(f"cell names must be distinct; got {', '.join(new)}.")
    return new
