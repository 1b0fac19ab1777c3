"""Read any supported format into a dataset; write hmviz's long format.

* :func:`read_dataset`: DeepChrome/AttentiveChrome CSV, DeepDiff CSV or the long format, detected
  from the files' content (or named with ``format=``), one file, several files or a folder.
* :func:`write_long`: a :class:`HistoneDataset` or :class:`MultiCellDataset` to CSV/TSV(.gz) or
  Parquet, deterministic bytes, written atomically.
* :func:`read_expression`: an expression table (gene id -> value).

Every problem with the input is a :class:`hmviz.errors.DataError` naming the file, line or gene.
Assumptions the reader had to make (default bin size, genes without expression) are logged and
kept in ``dataset.meta["notes"]``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from hmviz.data.dataset import SPLITS, HistoneDataset, MultiCellDataset
from hmviz.data.formats import deepchrome, deepdiff, long
from hmviz.data.formats._assemble import (
    assemble,
    check_label_classes,
    combine_cells,
    combine_files,
    rename_cells,
)
from hmviz.data.formats._files import missing_file_error, peek, sniff_delimiter, split_fields, strip_gz
from hmviz.data.formats.expression import attach_expression, read_expression
from hmviz.data.validation import listing
from hmviz.errors import DataError
from hmviz.resources import shipped_or_given

log = logging.getLogger(__name__)

#: Format names accepted by ``format=`` (and ``--format``), besides ``auto``.
FORMATS: tuple[str, ...] = (deepchrome.NAME, deepdiff.NAME, long.NAME)
_ALIASES = {"attentivechrome": deepchrome.NAME}
_TITLES = {deepchrome.NAME: "DeepChrome CSV", deepdiff.NAME: "DeepDiff CSV", long.NAME: "long format"}
DATA_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq")
SUPPORTED = (
    "DeepChrome/AttentiveChrome CSV (no header; gene id, bin, H3K27me3, H3K36me3, H3K4me1, H3K4me3, "
    "H3K9me3, label), DeepDiff CSV (no header; ENSGID_SYMBOL_bin, H3K4me1, H3K4me3, H3K9me3, H3K27me3, "
    "H3K36me3) and the long format (a header with gene_id, bin and one column per mark; CSV, TSV or "
    "Parquet, optionally .gz)"
)

PathLike = str | Path
CellNames = Sequence[str] | Mapping[str, str] | None


def read_dataset(
    paths: PathLike | Sequence[PathLike],
    format: str = "auto",
    expression: PathLike | None = None,
    cell_names: CellNames = None,
) -> HistoneDataset | MultiCellDataset:
    """Read histone-mark data binned around each gene's TSS.

    ``paths``: a file, a folder (every data file in it) or several of either. ``format``:
    ``auto`` (detect from the content), ``deepchrome``, ``deepdiff`` or ``long``. ``expression``:
    an expression table (gene_id, expression) joined by gene id. ``cell_names``: new names for the
    cells, in the order found, or a mapping old -> new.

    Returns a :class:`HistoneDataset` (signal shaped genes x bins x marks) or, for several cells
    over the same genes, a :class:`MultiCellDataset`. File names ``train``/``valid``/``test`` give
    the split. Raises :class:`DataError` with the file, line or gene and a fix.
    """
    given = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    if not given:
        raise DataError("No input given: name a data file or folder.")
    files = expand(given)
    # A folder may carry its expression table beside the histone table (expression.tsv, as in sample_data/).
    tables = [f for f in files if _is_expression_table(f)]
    if tables and len(tables) < len(files):
        files = [f for f in files if f not in tables]
        if expression is None and len(tables) == 1:
            expression = tables[0]
        elif expression is None:
            raise DataError(
                f"Several expression tables found ({', '.join(map(str, tables))}); name one with "
                "--expression (expression= in Python)."
            )
    fmt = resolve_format(files, format)
    source = f"{_TITLES[fmt]} {', '.join(map(str, given))}"
    notes: list[tuple[int, str]] = []  # (logging level, text)
    data: HistoneDataset | MultiCellDataset
    if fmt == deepchrome.NAME:
        data = _read_deepchrome(files, expression, cell_names, source, notes)
    elif fmt == deepdiff.NAME:
        data = _read_deepdiff(files, expression, cell_names, source, notes)
    else:
        data = _read_long(files, expression, cell_names, source, notes)
    texts = list(dict.fromkeys(text for _, text in notes))
    for level, text in dict.fromkeys(notes):
        log.log(level, text)
    for ds in data.cells.values() if isinstance(data, MultiCellDataset) else [data]:
        ds.meta.update(format=fmt, files=[str(f) for f in files], notes=texts)
    return data


def write_long(dataset: HistoneDataset | MultiCellDataset, path: PathLike) -> Path:
    """Write ``dataset`` in the long format; the suffix of ``path`` picks the file type.

    ``.csv``, ``.csv.gz``, ``.tsv``, ``.tsv.gz`` or ``.parquet``. Columns: ``cell`` (if named),
    ``gene_id``, the per-gene columns the dataset has, ``strand_aware`` (if known), ``bin``
    (0-based), ``bin_start_bp``, then one column per mark. Reading the file back gives the same
    arrays. The same dataset always gives the same bytes; the file is replaced atomically, so a
    failure leaves any previous file untouched. Returns the path written.
    """
    if not isinstance(dataset, (HistoneDataset, MultiCellDataset)):
        raise DataError(f"write_long needs a HistoneDataset or MultiCellDataset, not {type(dataset).__name__}.")
    path = Path(path)
    long.write(dataset, path)
    return path


def detect_format(path: PathLike) -> str:
    """The format of one file from its first line: ``deepchrome``, ``deepdiff`` or ``long``."""
    path = Path(path)
    parquet, line = peek(path)
    if parquet:
        return long.NAME
    fields = [f.strip() for f in split_fields(line, sniff_delimiter(line, path))]
    for module in (deepdiff, long, deepchrome):
        if module.looks_like(fields):
            return module.NAME
    shown = line if len(line) <= 80 else line[:77] + "..."
    raise DataError(
        f"{path}: cannot tell the format of this file from its first line ({shown!r}). hmviz reads "
        f"{SUPPORTED}. Name the format explicitly (--format {'|'.join(FORMATS)} on the command line, "
        "format=... in Python), or give a long-format file a header with gene_id and bin."
    )


def expand(given: Sequence[PathLike]) -> list[Path]:
    """Files named, and the data files inside folders named (split files in train/valid/test order)."""
    files: list[Path] = []
    for item in given:
        path = shipped_or_given(item)  # `sample_data` names the shipped sample from any folder
        if not path.exists():
            raise missing_file_error(path)
        if not path.is_dir():
            files.append(path)
            continue
        found = [
            p
            for p in path.iterdir()
            if p.is_file()
            and not p.name.startswith(".")
            and Path(strip_gz(p.name)).suffix.lower() in DATA_SUFFIXES
            and not deepdiff.EXPR_RE.match(p.name)
        ]
        if not found:
            raise DataError(
                f"{path}: the folder has no data files ({', '.join(DATA_SUFFIXES)}, optionally .gz). Check the path."
            )
        files.extend(sorted(found, key=_folder_order))
    seen = set()
    for f in files:
        key = f.resolve()
        if key in seen:
            raise DataError(f"{f} is given more than once; name each file once.")
        seen.add(key)
    return files


def _is_expression_table(path: Path) -> bool:
    """A file named like an expression table (expression.tsv, expr.csv, ...), not histone data."""
    return Path(strip_gz(path.name)).stem.lower() in ("expression", "expr", "expression_table")


def _folder_order(path: Path) -> tuple[str, int, str]:
    stem = Path(strip_gz(path.name)).stem
    prefix, _, last = stem.rpartition(".")
    if last.lower() in SPLITS:
        return prefix, SPLITS.index(last.lower()), path.name
    if stem.lower() in SPLITS:
        return "", SPLITS.index(stem.lower()), path.name
    return stem, len(SPLITS), path.name


def resolve_format(files: Sequence[Path], format: str) -> str:
    """The format name to read ``files`` with: ``format`` itself, or detected when ``auto``."""
    name = _ALIASES.get(str(format).lower(), str(format).lower())
    if name in FORMATS:
        return name
    if name != "auto":
        raise DataError(f"Unknown format '{format}'. Choose one of auto, {', '.join(FORMATS)}.")
    found = {f: detect_format(f) for f in files}
    kinds = sorted(set(found.values()))
    if len(kinds) > 1:
        detail = "; ".join(f"{f}: {k}" for f, k in found.items())
        raise DataError(
            f"The input files are in different formats ({detail}). Read one format at a time, "
            "or name the format explicitly (--format)."
        )
    return kinds[0]


def _splits_from_names(files: Sequence[Path], split_of) -> list[str | None]:
    """The split of each file from its name: all files named by split, or none."""
    splits = [split_of(f) for f in files]
    named = [s is not None for s in splits]
    if any(named) and not all(named):
        odd = [str(f) for f, n in zip(files, named) if not n]
        raise DataError(
            f"Some input files are named after a split (train, valid, test) and some are not "
            f"({listing(odd)}). Name every file train/valid/test, or none (then the files are joined "
            "without a split)."
        )
    return splits


def _split_of_stem(path: Path) -> str | None:
    stem = Path(strip_gz(path.name)).stem.lower()
    return stem if stem in SPLITS else None


def _single_cell(ds: HistoneDataset, cell_names: CellNames) -> HistoneDataset:
    if cell_names is not None:
        ds.cell = rename_cells([ds.cell or "cell"], cell_names)[0]
    return ds


def _with_expression(ds: HistoneDataset, expression: PathLike | None, notes: list[tuple[int, str]]) -> HistoneDataset:
    if expression is None:
        return ds
    if ds.expression is not None:
        raise DataError(
            f"{ds.source} already has an expression column; drop it or do not give an expression table ({expression})."
        )
    return attach_expression(ds, read_expression(expression), str(expression), notes)


def _read_deepchrome(files, expression, cell_names, source, notes) -> HistoneDataset:
    splits = _splits_from_names(files, _split_of_stem)
    ds = combine_files([assemble(deepchrome.read_rows(f, s)) for f, s in zip(files, splits)], source)
    check_label_classes(ds)
    return _single_cell(_with_expression(ds, expression, notes), cell_names)


def _read_deepdiff(files, expression, cell_names, source, notes) -> HistoneDataset | MultiCellDataset:
    by_cell: dict[str, list[Path]] = {}
    for f in files:
        by_cell.setdefault(deepdiff.cell_and_split(f)[0], []).append(f)
    if expression is not None and len(by_cell) > 1:
        raise DataError(
            f"An expression table ({expression}) applies to one cell, but {len(by_cell)} cells were found "
            f"({', '.join(by_cell)}). DeepDiff folders carry one CellX.expr.csv per cell; put them beside "
            "the CellX.train.csv files."
        )
    names = rename_cells(list(by_cell), cell_names)
    cells: dict[str, HistoneDataset] = {}
    where: dict[str, str] = {}
    for (cell, cell_files), name in zip(by_cell.items(), names):
        splits = _splits_from_names(cell_files, lambda f: deepdiff.cell_and_split(f)[1])
        parts = [assemble(deepdiff.read_rows(f, s, name)) for f, s in zip(cell_files, splits)]
        ds = combine_files(parts, source)
        table = expression or deepdiff.expression_file(cell_files[0].parent, cell)
        if table is None:
            notes.append(
                (logging.WARNING, f"cell {name}: no {cell}.expr.csv beside {cell_files[0]}, so there is no expression.")
            )
        else:
            ds = _with_expression(ds, table, notes)
        cells[name] = ds
        where[name] = ", ".join(str(f) for f in cell_files)
    if len(cells) == 1:
        return next(iter(cells.values()))
    return combine_cells(cells, where, source)


def _read_long(files, expression, cell_names, source, notes) -> HistoneDataset | MultiCellDataset:
    splits = _splits_from_names(files, _split_of_stem)
    by_cell: dict[str | None, list] = {}
    for f, s in zip(files, splits):
        for rows in long.read_rows(f, s):
            if rows.bin_start_bp is None:
                notes.append(
                    (
                        logging.INFO,
                        f"{f}: no bin_start_bp column, so bins are taken to be "
                        f"{rows.default_bin_size} bp with the TSS at the start of bin bins // 2.",
                    )
                )
            by_cell.setdefault(rows.cell, []).append(assemble(rows))
    if None in by_cell and len(by_cell) > 1:
        raise DataError(
            f"Some rows have a cell and some do not ({', '.join(str(c) for c in by_cell if c)} and "
            "empty). Give every row its cell, or drop the cell column."
        )
    datasets = {cell: combine_files(parts, source) for cell, parts in by_cell.items()}
    for ds in datasets.values():
        check_label_classes(ds)
    if len(datasets) == 1:
        ds = next(iter(datasets.values()))
        return _single_cell(_with_expression(ds, expression, notes), cell_names)
    if expression is not None:
        raise DataError(
            f"An expression table ({expression}) applies to one cell, but the data has "
            f"{len(datasets)} cells ({', '.join(map(str, datasets))}); put expression in the "
            "data's expression column instead."
        )
    names = rename_cells([str(c) for c in datasets], cell_names)
    cells = {}
    for name, ds in zip(names, datasets.values()):
        ds.cell = name
        cells[name] = ds
    where = {name: ", ".join(str(f) for f in files) for name in names}
    return combine_cells(cells, where, source)
