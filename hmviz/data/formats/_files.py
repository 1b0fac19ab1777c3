"""Bytes in, tables out: opening, decompressing, decoding and parsing data files; atomic writes.

Every failure becomes a :class:`DataError` naming the file. Parsing is done by ``pyarrow.csv``
with explicit column types (fast path); when that fails, a slower diagnostic pass finds the first
offending line and value so the message can name them.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from hmviz import limits
from hmviz.data.validation import SourceFile
from hmviz.errors import DataError
from hmviz.limits import read_limited

# Threads in pyarrow readers crash torch processes at exit (see read_csv_table); keep them off.
PYARROW_THREADS = False

PARQUET_MAGIC = b"PAR1"
GZIP_MAGIC = b"\x1f\x8b"

# pyarrow's default spellings of a missing value (used to tell "missing" from "not a number").
NULL_TOKENS = frozenset(pacsv.ConvertOptions().null_values)
_INT_PATTERN = r"^[+-]?\d+$"
_FLOAT_PATTERN = r"^[+-]?((\d+\.?\d*|\.\d+)(e[+-]?\d+)?|inf|infinity|nan)$"


def is_parquet_name(path: Path) -> bool:
    return path.suffix.lower() in (".parquet", ".pq")


def strip_gz(name: str) -> str:
    return name[:-3] if name.lower().endswith(".gz") else name


def missing_file_error(path: Path) -> DataError:
    hint = "" if path.is_absolute() else f" (relative paths are resolved from {Path.cwd()})"
    return DataError(f"{path}: no such file or folder{hint}. Check the path and its spelling.")


def read_source(path: Path) -> tuple[bytes, SourceFile]:
    """The file's bytes (gunzipped when gzip; checked to be UTF-8 text unless Parquet).

    Returns ``(data, source)``; ``source.parquet`` tells which. Raises DataError for a missing,
    empty, corrupt, compressed-but-truncated, binary or non-UTF-8 file, and LimitError for a file
    that is not a regular file or that decompresses to more than :data:`hmviz.limits.INPUT_BYTES`
    (decompression stops at the limit: a gzip bomb costs at most the limit in memory).
    """
    _check_exists(path)
    try:
        raw = read_limited(path)
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror}). Check its permissions.") from None
    if _is_parquet(path, raw):
        if not (raw.startswith(PARQUET_MAGIC) and raw.endswith(PARQUET_MAGIC) and len(raw) > 8):
            raise DataError(
                f"{path}: is not a valid Parquet file (the Parquet signature is missing at its "
                f"{'start' if not raw.startswith(PARQUET_MAGIC) else 'end'}; the file is corrupt or "
                "truncated, or is not Parquet). Write it again, or give a CSV/TSV file instead."
            )
        return raw, SourceFile(path, parquet=True)
    if _is_gzip(path, raw):
        raw = gunzip_limited(path, raw)
    check_text(path, raw)
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]  # a UTF-8 byte-order mark (Excel's "CSV UTF-8") carries no data
    raw = cr_to_lf(raw)
    return raw, SourceFile(path, text=raw)


def cr_to_lf(raw: bytes) -> bytes:
    """Lines ended by CR alone (classic Mac OS, some exports) become LF lines; other text is unchanged."""
    if b"\r" in raw[: 1 << 16] and b"\n" not in raw[: 1 << 16] and b"\n" not in raw:
        return raw.replace(b"\r", b"\n")
    return raw


def gunzip_limited(path: Path, raw: bytes) -> bytes:
    """Decompress gzip ``raw`` (several members allowed) in pieces, stopping at the input limit."""
    limit = limits.INPUT_BYTES.value()
    out = io.BytesIO()  # getvalue() hands over its buffer without a copy
    data = raw
    try:
        while data:
            d = zlib.decompressobj(wbits=31)
            while True:
                piece = d.decompress(data, 1 << 22)
                out.write(piece)
                if out.tell() > limit:
                    limits.check(
                        limits.INPUT_BYTES,
                        out.tell(),
                        f"{path} (decompressed)",
                        "The file decompresses to more than that (is it a complete dataset, or a "
                        "gzip bomb?); split it into smaller files.",
                    )
                data = d.unconsumed_tail
                if d.eof or not data:
                    break
            if not d.eof:
                raise EOFError("compressed file ended before the end-of-stream marker was reached")
            data = d.unused_data.lstrip(b"\x00")  # trailing padding after the last member
    except zlib.error as exc:
        raise _gzip_error(path, exc) from None
    except EOFError as exc:
        raise _gzip_error(path, exc) from None
    return out.getvalue()


def peek(path: Path) -> tuple[bool, str]:
    """``(is_parquet, first non-blank line)`` from the start of the file, for format detection."""
    _check_exists(path)
    limits.check_regular_file(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(1 << 16)
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror}). Check its permissions.") from None
    if _is_parquet(path, head):
        return True, ""
    if _is_gzip(path, head):
        try:
            head = zlib.decompressobj(wbits=31).decompress(head, 1 << 16)
        except zlib.error as exc:
            raise _gzip_error(path, exc) from None
    check_text(path, head, partial=True)
    return False, first_line(cr_to_lf(head.removeprefix(b"\xef\xbb\xbf")))


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise missing_file_error(path)
    if path.is_dir():
        raise DataError(f"{path}: is a folder where a file was expected.")


def _is_parquet(path: Path, raw: bytes) -> bool:
    return raw.startswith(PARQUET_MAGIC) or is_parquet_name(path)


def _is_gzip(path: Path, raw: bytes) -> bool:
    if raw.startswith(GZIP_MAGIC):
        return True
    if path.name.lower().endswith(".gz"):
        raise DataError(
            f"{path}: is named .gz but is not gzip-compressed. Compress it with gzip, or remove the .gz from its name."
        )
    return False


def _gzip_error(path: Path, exc: Exception) -> DataError:
    return DataError(
        f"{path}: is a corrupt or truncated gzip file ({exc}). Download or compress it again "
        "(gzip -t FILE checks a gzip file)."
    )


def check_text(path: Path, raw: bytes, partial: bool = False) -> None:
    """The bytes must be non-empty UTF-8 text (``partial``: only the start of the file)."""
    if not raw or raw.isspace():
        raise DataError(f"{path}: the file is empty. Check that it was written completely.")
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise DataError(
            f"{path}: is UTF-16 text, not UTF-8 text. Save it again as UTF-8 (in Excel: 'CSV UTF-8'; "
            f"or: iconv -f UTF-16 -t UTF-8 {path.name} > new.csv)."
        )
    if raw.startswith(b"PK\x03\x04"):
        raise DataError(
            f"{path}: is a zip archive or an Excel workbook, not UTF-8 text. Export the sheet as CSV "
            "(or unzip the archive) and give that file."
        )
    nul = raw.find(b"\x00", 0, 1 << 16)
    if nul >= 0:
        line = raw.count(b"\n", 0, nul) + 1
        raise DataError(
            f"{path}: is not UTF-8 text (it contains NUL bytes, line {line}); it "
            "looks like a binary file. Give a CSV/TSV text file (optionally .gz) or a Parquet file."
        )
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        if partial and exc.start >= len(raw) - 3:
            return  # a character cut in two at the end of the sample
        line = raw.count(b"\n", 0, exc.start) + 1
        raise DataError(
            f"{path}: is not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line} cannot be decoded). "
            "Save the file as UTF-8 (in Excel: 'CSV UTF-8'); if it is a binary file, check the path."
        ) from None


def first_line(text: bytes) -> str:
    """The first non-blank line, decoded, without its line ending."""
    start = 0
    while start < len(text):
        end = text.find(b"\n", start)
        end = len(text) if end < 0 else end
        line = text[start:end].rstrip(b"\r")
        if line.strip():
            return line.decode("utf-8", errors="replace")
        start = end + 1
    return ""


def sniff_delimiter(line: str, path: Path) -> str:
    """Tab, comma or semicolon: whichever the first line has most of; the suffix (.tsv/.txt) breaks ties.

    Semicolons are what Excel writes as "CSV" in locales whose decimal mark is a comma; such files
    are read with decimal commas (see :func:`read_csv_table`).
    """
    tabs, commas, semicolons = line.count("\t"), line.count(","), line.count(";")
    if semicolons > max(tabs, commas):
        return ";"
    if tabs != commas:
        return "\t" if tabs > commas else ","
    return "\t" if Path(strip_gz(path.name)).suffix.lower() in (".tsv", ".txt", ".tab") else ","


def decimal_mark(text: bytes, delimiter: str) -> str:
    """``,`` for a semicolon-separated file that has commas (Excel in comma-decimal locales), else ``.``."""
    return "," if delimiter == ";" and b"," in text else "."


def delimiter_name(delimiter: str) -> str:
    return {"\t": "tab", ",": "comma", ";": "semicolon"}.get(delimiter, repr(delimiter))


def is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def split_fields(line: str, delimiter: str) -> list[str]:
    return next(csv.reader([line], delimiter=delimiter), [])


# ---------------------------------------------------------------------------------- CSV/TSV
def read_headerless_csv(
    path: Path,
    format_name: str,
    *,
    names: Sequence[str],
    types: Mapping[str, pa.DataType],
    layout: str,
    hints: Mapping[str, str] = {},
) -> tuple[pa.Table, SourceFile]:
    """A headerless CSV/TSV of a fixed layout (the DeepChrome and DeepDiff files): the parsed table and its
    source. A Parquet file is refused with the format named and the long format offered instead."""
    text, src = read_source(path)
    if src.parquet:
        raise src.error(f"is a Parquet file, not a {format_name} CSV file; read it as the long format (--format long).")
    table = read_csv_table(
        src,
        text,
        delimiter=sniff_delimiter(first_line(text), path),
        names=names,
        types=types,
        layout=layout,
        hints=hints,
    )
    return table, src


def read_csv_table(
    src: SourceFile,
    text: bytes,
    *,
    delimiter: str,
    names: Sequence[str] | None,
    types: Mapping[str, pa.DataType],
    layout: str,
    hints: Mapping[str, str] = {},
) -> pa.Table:
    """Parse delimited text with fixed column types.

    ``names``: the column names of a headerless file, or ``None`` to take them from the first
    line. ``layout`` describes the expected columns for a wrong-field-count message; ``hints``
    says, per column, what the values should be. Numeric columns are parsed as given in
    ``types``; a value that does not parse is reported with its line and text.
    """
    src.header_lines = 0 if names else 1
    numeric = sum(pa.types.is_floating(t) or pa.types.is_integer(t) for t in types.values())
    limits.check(
        limits.SIGNAL_VALUES,
        (text.count(b"\n") + 1) * max(numeric, 1),
        str(src),
        "Read fewer genes (split the file by chromosome) or fewer marks.",
    )
    # use_threads=False: pyarrow's CSV thread pool makes a process that also loaded torch abort at exit
    # ("terminate called without an active exception", exit 134), whatever the exit path.
    read = pacsv.ReadOptions(
        column_names=list(names) if names else None, block_size=1 << 24, use_threads=PYARROW_THREADS
    )
    parse = pacsv.ParseOptions(delimiter=delimiter)
    decimal = decimal_mark(text, delimiter)
    convert = pacsv.ConvertOptions(column_types=dict(types), strings_can_be_null=False, decimal_point=decimal)
    try:
        return pacsv.read_csv(io.BytesIO(text), read_options=read, parse_options=parse, convert_options=convert)
    except pa.ArrowInvalid as exc:
        message = str(exc)
    # Slow path: find the line and value to blame.
    if "Expected" in message and "columns" in message:
        _raise_field_count(src, text, delimiter, names=names, layout=layout)
    if "conversion error" in message and decimal == ".":
        as_text = pacsv.ConvertOptions(column_types={n: pa.string() for n in types}, strings_can_be_null=False)
        try:
            table = pacsv.read_csv(io.BytesIO(text), read_options=read, parse_options=parse, convert_options=as_text)
        except pa.ArrowInvalid:
            table = None
        if table is not None:
            raise_first_non_numeric(src, table, types, hints)
    hint = (
        " The file is semicolon-separated and has commas, so its numbers are read with decimal commas "
        "(1,5); write every number that way, or save the file comma-separated with decimal points."
        if decimal == ","
        else ""
    )
    raise src.error(f"cannot be parsed ({message}). {layout.rstrip('.')}.{hint}")


def _raise_field_count(
    src: SourceFile, text: bytes, delimiter: str, *, names: Sequence[str] | None, layout: str
) -> None:
    """Raise for the first line whose number of fields differs from the header's (or ``names``)."""
    reader = csv.reader(io.StringIO(text.decode("utf-8"), newline=""), delimiter=delimiter)
    expected = None if names is None else len(names)
    for fields in reader:
        if not fields:
            continue
        if expected is None:
            expected = len(fields)  # the header
            continue
        if len(fields) != expected:
            shown = delimiter.join(fields)
            shown = shown if len(shown) <= 80 else shown[:77] + "..."
            sep = delimiter_name(delimiter)
            against = f"the header (the first line) has {expected}" if names is None else layout
            raise DataError(
                f"{src} line {reader.line_num}: has {len(fields)} {sep}-separated fields but {against} "
                f"(line: {shown!r}). {'Remove the extra' if len(fields) > expected else 'Add the missing'} "
                "field(s); if the file is in another format, name the format explicitly (--format)."
            )


def raise_first_non_numeric(
    src: SourceFile, table: pa.Table, types: Mapping[str, pa.DataType], hints: Mapping[str, str]
) -> None:
    """Raise for the earliest row holding a value that is not a number (or not a whole number).

    ``table`` holds the columns as text; ``types`` says which should be numbers.
    """
    worst: tuple[int, str, str, bool] | None = None
    for name, typ in types.items():
        integer = pa.types.is_integer(typ)
        if not (integer or pa.types.is_floating(typ)) or name not in table.column_names:
            continue
        col = table.column(name)
        if not (pa.types.is_string(col.type) or pa.types.is_large_string(col.type)):
            continue
        i = _first_not_numeric(col, integer=integer)
        if i is not None and (worst is None or i < worst[0]):
            worst = (i, name, col[i].as_py(), integer)
    if worst is not None:
        i, name, value, integer = worst
        hint = hints.get(name, "")
        raise DataError(
            f"{src.where(i)}: {name} is {value!r}, which is not {'a whole number' if integer else 'a number'}."
            + (f" {hint}" if hint else "")
        )


def _first_not_numeric(col: pa.ChunkedArray, *, integer: bool) -> int | None:
    """Row of the first value that is neither missing nor a (whole) number; vectorised pre-filter."""
    text = pc.utf8_trim_whitespace(col)
    ok = pc.or_(
        pc.is_in(col, value_set=pa.array(sorted(NULL_TOKENS))),
        pc.match_substring_regex(text, _INT_PATTERN if integer else _FLOAT_PATTERN, ignore_case=True),
    )
    candidates = np.flatnonzero(~pc.fill_null(ok, True).to_numpy(zero_copy_only=False))
    for i in candidates:
        value = col[int(i)].as_py()
        if integer or not is_number(value):
            return int(i)
    return None


# ---------------------------------------------------------------------------------- Parquet
def read_parquet_table(src: SourceFile, data: bytes) -> pa.Table:
    try:
        meta = pq.ParquetFile(io.BytesIO(data)).metadata
        limits.check(limits.COLUMNS, meta.num_columns, str(src))
        limits.check(
            limits.SIGNAL_VALUES,
            meta.num_rows * max(meta.num_columns, 1),
            str(src),
            "Read fewer genes (split the file by chromosome) or fewer marks.",
        )
        return pq.read_table(io.BytesIO(data), use_threads=PYARROW_THREADS)
    except (pa.ArrowException, OSError) as exc:
        raise src.error(
            f"is not a readable Parquet file ({str(exc).splitlines()[0]}); it is corrupt or truncated. "
            "Write it again, or give a CSV/TSV file instead."
        ) from None


def coerce_columns(
    src: SourceFile, table: pa.Table, types: Mapping[str, pa.DataType], hints: Mapping[str, str] = {}
) -> pa.Table:
    """Cast Parquet columns to the wanted types; a column of text numbers is checked value by value."""
    for name, typ in types.items():
        if name not in table.column_names:
            continue
        col = table.column(name)
        if col.type == typ:
            continue
        if pa.types.is_nested(col.type) or pa.types.is_dictionary(col.type) and pa.types.is_nested(col.type.value_type):
            raise src.error(
                f"column {name} holds nested values ({col.type}: lists or records in each cell), but every "
                "column must hold one plain value per row (a number, or text for ids). Flatten the column "
                "(one row per gene and bin, one column per mark) and write the file again."
            )
        if pa.types.is_string(typ):
            if pa.types.is_floating(col.type):
                raise src.error(f"column {name} holds numbers with decimals; it must hold text (ids, names).")
            new = col.cast(pa.string())
        else:
            if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
                raise_first_non_numeric(src, table, {name: typ}, hints)
            try:
                new = col.cast(typ)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                hint = hints.get(name, "")
                raise src.error(f"column {name} cannot be read as {typ} ({exc}). {hint}".rstrip()) from None
        table = table.set_column(table.column_names.index(name), name, new)
    return table


# ------------------------------------------------------------------------------------ write
def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file in the same folder and ``os.replace``.

    On any failure the previous file (if any) is untouched and the temporary file is removed.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise DataError(f"{path}: the folder {folder} does not exist; create it first.")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
