"""Uploaded files -> datasets: histone tables (any format the library reads) and tracks + a gene
annotation (``hmviz.data.build``).

Uploaded file names never decide where anything is written: every upload goes to a new folder with a
generated name under the session's folder, as a file named from its role (``train``, ``expression``,
``track1``...) and, for DeepDiff, a cell label cleaned to letters, digits, ``_`` and ``-``. Only the
suffix of the original name is kept, after checking it against the kinds of file hmviz reads (the
readers tell formats and gzip from the suffix and the content). The folder is deleted once the data
is read: the dataset lives in memory, cached by the hash of the uploaded bytes.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from hmviz.errors import HmvizError
from hmviz_app import state
from hmviz_app.text import in_page_words

TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq")
ANNOTATION_SUFFIXES = (".gtf", ".bed", ".csv", ".tsv", ".txt", ".parquet", ".pq")
EXPRESSION_SUFFIXES = (".csv", ".tsv", ".txt")
ROLES = {"data": "histone table", "train": "train split", "valid": "validation split", "test": "test split",
         "expression": "expression table"}
_AS = {"expression": "an expression table"}  # what an upload of each role is read as, in words


def _track_suffixes() -> tuple[str, ...]:
    from hmviz.data.tracks import SUFFIXES

    return tuple(SUFFIXES)


def checked_suffix(name: str, allowed: tuple[str, ...], what: str, gzip_ok: bool = True) -> str:
    """The file's suffix (``.csv``, ``.csv.gz``, ...) when it is one hmviz reads for ``what``, else a
    :class:`DataError`. Only this suffix of an uploaded file's name is ever used."""
    from hmviz.errors import DataError

    low = name.lower()
    gz = low.endswith(".gz")
    base = low[:-3] if gz else low
    for suffix in sorted(allowed, key=len, reverse=True):
        if base.endswith(suffix) and (not gz or (gzip_ok and suffix not in (".parquet", ".pq", ".bw", ".bigwig"))):
            return suffix + (".gz" if gz else "")
    kinds = ", ".join(allowed) + (" (text files may be gzipped, .gz)" if gzip_ok else "")
    raise DataError(f"{name}: hmviz cannot read this kind of file as {what}; it reads {kinds}. "
                    "Rename the file with the suffix of its format.")


def _stem(name: str) -> str:
    low = name[:-3] if name.lower().endswith(".gz") else name
    return low.rsplit(".", 1)[0] if "." in low else low



def guess_role(name: str) -> tuple[str, str]:
    """(role, cell) guessed from an uploaded file's name: ``Cell1.train.csv`` -> ``("train", "Cell1")``,
    ``expression.tsv`` -> ``("expression", "")``, ``valid.csv.gz`` -> ``("valid", "")``."""
    from hmviz.data.formats.deepdiff import EXPR_RE, FILE_RE

    if m := EXPR_RE.match(name):
        return "expression", state.clean_label(m.group("cell"))
    if m := FILE_RE.match(name):
        return m.group("split").lower(), state.clean_label(m.group("cell"))
    stem = _stem(name).lower()
    if stem in ("expression", "expr", "expression_table"):
        return "expression", ""
    for split in ("train", "valid", "test"):
        if stem == split or stem.endswith(("." + split, "_" + split, "-" + split)):
            return split, ""
    return "data", ""


@dataclass
class Upload:
    """An uploaded file: its original name (shown, never used as a path), bytes, role and cell."""

    name: str
    data: bytes
    role: str = "data"
    cell: str = ""


def _content_key(*parts) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part if isinstance(part, bytes) else repr(part).encode())
        h.update(b"\x1f")
    return h.hexdigest()[:20]


def in_user_words(message: str, names: dict[str, str]) -> str:
    """``message`` as the Data page's user should read it: hmviz's generated paths (and their bare
    file names) replaced by the names of the user's files, command-line flags by the page's controls,
    Python expressions by words."""
    for path, shown in sorted(names.items(), key=lambda kv: -len(kv[0])):
        message = message.replace(path, shown)
    for path, shown in sorted(names.items(), key=lambda kv: -len(Path(kv[0]).name)):
        base = Path(path).name
        if base and base != shown:
            message = re.sub(rf"(?<![\w./-]){re.escape(base)}(?![\w])", lambda _m, s=shown: s, message)
    return in_page_words(message)


def _translate_notes(ds, names: dict[str, str]) -> None:
    """The reader's notes (kept with the dataset, shown on the Data page) in the user's words."""
    for part in [ds, *getattr(ds, "cells", {}).values()]:
        meta = getattr(part, "meta", None)
        if meta and meta.get("notes"):
            meta["notes"] = [in_user_words(n, names) for n in meta["notes"]]


def _place_uploads(folder: Path, uploads: list[Upload], fmt: str, names: dict[str, str]) -> None:
    """Write ``uploads`` into ``folder`` under names made from their role and cell only (the
    readers take the split and the cell from file names); fills ``names``: generated path -> the
    user's file name (as it goes, so that an error on any file names the user's file)."""
    from hmviz.data.io import resolve_format
    from hmviz.errors import DataError

    names[str(folder)] = "the upload"
    staged = []
    raw = folder / ".staged"
    raw.mkdir()
    for i, up in enumerate(uploads):
        allowed = EXPRESSION_SUFFIXES if up.role == "expression" else TABLE_SUFFIXES
        suffix = checked_suffix(up.name, allowed, _AS.get(up.role, "a histone table"))
        path = raw / f"part{i + 1}{suffix}"
        path.write_bytes(up.data)
        names[str(path)] = up.name
        staged.append((up, path, suffix))
    data_files = [p for up, p, _ in staged if up.role != "expression"]
    if not data_files:
        raise DataError("Only expression tables were uploaded; add the histone table(s) they belong to.")
    detected = resolve_format(data_files, fmt)
    deepdiff = detected == "deepdiff"
    taken: dict[str, str] = {}
    for i, (up, path, suffix) in enumerate(staged):
        cell = state.clean_label(up.cell) if deepdiff else ""
        if up.role == "expression":
            target = f"{cell}.expr{suffix}" if deepdiff and cell else f"expression{suffix}"
        elif up.role in ("train", "valid", "test"):
            target = f"{cell}.{up.role}{suffix}" if cell else f"{up.role}{suffix}"
        else:
            target = f"{cell}{suffix}" if cell else f"table{i + 1}{suffix}"
        key = target.lower().removesuffix(".gz")
        if key in taken:
            raise DataError(f"{taken[key]} and {up.name} are both the {ROLES[up.role]}"
                            f"{' of cell ' + cell if cell else ''}; give each file its own role (and cell).")
        taken[key] = up.name
        final = folder / target
        os.replace(path, final)
        names[str(final)] = up.name
    raw.rmdir()


@st.cache_data(max_entries=8, show_spinner=False)
def _read_uploads(key: str, fmt: str, _uploads: list[Upload], _folder: str):
    from hmviz.data import read_dataset

    names: dict[str, str] = {}
    try:
        _place_uploads(Path(_folder), _uploads, fmt, names)
        ds = read_dataset(Path(_folder), format=fmt)
    except HmvizError as exc:
        raise type(exc)(in_user_words(str(exc), names)) from None
    _translate_notes(ds, names)
    return ds


def load_uploads(uploads: list[Upload], fmt: str = "auto") -> state.DataEntry:
    """Read uploaded histone tables (and expression tables) into a dataset; cached by content."""
    from hmviz.errors import DataError

    if not uploads:
        raise DataError("Upload at least one histone table first.")
    key = _content_key(fmt, *[(u.role, u.cell, u.name.lower().rsplit(".", 2)[-2:], u.data) for u in uploads])
    folder = state.new_folder("uploads")
    try:
        ds = _read_uploads(key, fmt, uploads, str(folder))
    except HmvizError as exc:
        raise type(exc)(in_user_words(str(exc), {str(folder): "the upload"})) from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # the dataset is in memory now; the files are not needed
    shown = ", ".join(u.name for u in uploads)
    for cell in getattr(ds, "cells", {None: ds}).values():
        cell.source = f"upload: {shown}"
        cell.meta["files"] = [u.name for u in uploads]
    if hasattr(ds, "cells"):
        ds.source = f"upload: {shown}"
    name = uploads[0].name if len(uploads) == 1 else f"{uploads[0].name} and {len(uploads) - 1} more"
    return state.DataEntry(f"upload:{state.fingerprint(ds)}", f"Upload: {name}", ds, "upload")


@st.cache_data(max_entries=4, show_spinner=False)
def _build(key: str, marks: tuple[str, ...], bin_size: int, flank: int, stat: str, strand_aware: bool,
           _tracks: list[Upload], _genes: Upload, _expression: Upload | None, _folder: str):
    from hmviz.data.build import build_table

    folder = Path(_folder)
    names = {str(folder): "the upload"}
    paths = {}
    for i, (mark, up) in enumerate(zip(marks, _tracks)):
        path = folder / f"track{i + 1}{checked_suffix(up.name, _track_suffixes(), 'a signal track')}"
        path.write_bytes(up.data)
        names[str(path)] = up.name
        paths[mark] = path
    genes = folder / f"genes{checked_suffix(_genes.name, ANNOTATION_SUFFIXES, 'a gene annotation')}"
    genes.write_bytes(_genes.data)
    names[str(genes)] = _genes.name
    expression = None
    if _expression is not None:
        expression = folder / f"expression{checked_suffix(_expression.name, EXPRESSION_SUFFIXES, 'an expression table')}"
        expression.write_bytes(_expression.data)
        names[str(expression)] = _expression.name
    try:
        ds, report = build_table(paths, genes, bin_size=bin_size, flank=flank, stat=stat, strand_aware=strand_aware,
                                 expression=expression)
    except HmvizError as exc:
        raise type(exc)(in_user_words(str(exc), names)) from None
    _translate_notes(ds, names)
    ds.meta["build"]["tracks"] = {m: up.name for m, up in zip(marks, _tracks)}
    ds.meta["build"]["genes"] = _genes.name
    ds.source = f"built from {len(marks)} tracks around the TSS of {_genes.name}"
    return ds, in_user_words(str(report), names)


def build_from_tracks(tracks: list[tuple[str, Upload]], genes: Upload | None, expression: Upload | None,
                      bin_size: int, flank: int, stat: str, strand_aware: bool) -> state.DataEntry:
    """Bin uploaded tracks around each TSS of an uploaded annotation (``hmviz.data.build``)."""
    from hmviz.errors import DataError

    if not tracks:
        raise DataError("Upload at least one signal track (bigWig, bedGraph or peak file).")
    if genes is None:
        raise DataError("Upload a gene annotation (GTF, BED6 or a table with gene_id, chrom and tss).")
    marks = tuple(str(m).strip() for m, _ in tracks)
    empty = [up.name for m, up in tracks if not str(m).strip()]
    if empty:
        raise DataError(f"Name the mark of {', '.join(empty)} (e.g. H3K4me3).")
    repeated = sorted({m for m in marks if marks.count(m) > 1})
    if repeated:
        raise DataError(f"Each track needs its own mark name; {', '.join(repeated)} is given twice.")
    ups = [up for _, up in tracks]
    key = _content_key(marks, bin_size, flank, stat, strand_aware, *[(u.name.lower(), u.data) for u in ups],
                       genes.name.lower(), genes.data, *([expression.name.lower(), expression.data] if expression else []))
    folder = state.new_folder("build")
    try:
        ds, report = _build(key, marks, int(bin_size), int(flank), stat, bool(strand_aware), ups, genes, expression,
                            str(folder))
    finally:
        shutil.rmtree(folder, ignore_errors=True)  # the table is in memory now; the uploaded files are not needed
    return state.DataEntry(f"build:{ds.fingerprint()}", f"Built: {len(marks)} tracks around {genes.name}", ds, "build",
                     report=report)


@st.cache_data(max_entries=4, show_spinner="Writing the table...")
def long_table_bytes(key: str, _dataset) -> bytes:
    """The dataset in hmviz's long format, gzipped CSV (what the CLI and the app read back)."""
    from hmviz.data import write_long

    with tempfile.TemporaryDirectory(prefix="hmviz-export-") as tmp:
        path = Path(tmp) / "table.csv.gz"
        write_long(_dataset, path)
        return path.read_bytes()
