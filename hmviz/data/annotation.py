"""Gene annotations: where each gene's TSS is, read from a GTF, a BED6 file or a table.

The TSS is stored as the **window centre**: the bp boundary at the gene's 5' end in 0-based,
half-open (BED) coordinates, i.e. the gene's start for a ``+`` strand gene and its end for a ``-``
strand gene. A window of ``flank`` bp either side is then ``[tss - flank, tss + flank)``, and the
TSS base itself is the first bp downstream of the centre in the direction of transcription.

Formats (by suffix; text may be gzipped):

* **GTF** (``.gtf``): the ``gene`` records (column 3); ``gene_id`` and, when present,
  ``gene_name`` (the symbol) from column 9. GTF is 1-based: TSS = start - 1 (``+``) or end (``-``).
* **BED6** (``.bed``): chrom, start, end, name (the gene id), score, strand; more columns (BED12)
  are ignored. TSS = start (``+``) or end (``-``).
* **table** (``.csv``, ``.tsv``, ``.txt``, ``.parquet``) with a header: ``gene_id``, ``chrom``
  and either ``tss`` (0-based; ``strand`` optional) or ``start``, ``end`` and ``strand`` (0-based,
  half-open like BED); optional ``symbol`` (or ``gene_name``) and ``expression`` columns.

A gene id listed twice keeps its first record (the report counts the others).
"""

from __future__ import annotations

import contextlib
import gzip
import io
import logging
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from hmviz import limits
from hmviz.data.formats._assemble import float_column, int_column
from hmviz.data.formats._files import (
    GZIP_MAGIC,
    PYARROW_THREADS,
    coerce_columns,
    first_line,
    missing_file_error,
    read_csv_table,
    read_parquet_table,
    read_source,
    sniff_delimiter,
    split_fields,
    strip_gz,
)
from hmviz.data.tracks import bed_fields, parse_bed, read_bed_text
from hmviz.data.validation import SourceFile, listing
from hmviz.errors import DataError

log = logging.getLogger(__name__)

SUPPORTED = (
    "a GTF (.gtf), a BED6 file (.bed) or a table (.csv, .tsv, .txt, .parquet) with gene_id, chrom "
    "and tss or start/end/strand; text files may be gzipped (.gz)"
)
_TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq")
_GTF_COLUMNS = ["seqname", "source", "feature", "start", "end", "score", "strand", "frame", "attribute"]
#: Column names people use for the columns a gene table needs, to suggest the right one.
_ALIASES = {
    "gene_id": ("gene", "geneid", "id", "ensembl_id", "name"),
    "chrom": ("chr", "chromosome", "seqname", "seqnames", "contig"),
    "tss": ("tss_bp", "position", "pos"),
    "symbol": ("gene_name", "gene_symbol", "name"),
}


@dataclass
class GeneAnnotation:
    """Genes and their TSS. Shapes: every array has one entry per gene.

    ``tss``: int64 window centre in bp (0-based boundary at the 5' end; see the module docs);
    ``strand``: ``+``, ``-`` or ``.`` (unknown: treated as ``+``).
    """

    gene_ids: np.ndarray
    chrom: np.ndarray
    tss: np.ndarray
    strand: np.ndarray
    symbols: np.ndarray | None = None
    expression: np.ndarray | None = None
    source: str = ""
    duplicates: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.gene_ids.size)


def read_genes(path: str | Path) -> GeneAnnotation:
    """Read a gene annotation (GTF, BED6 or table, by suffix). Raises :class:`DataError` naming the
    file and line for anything that cannot be used."""
    path = Path(path)
    name = strip_gz(path.name.lower())
    suffix = Path(name).suffix
    if not path.exists():
        raise missing_file_error(path)
    if suffix == ".gtf":
        return _dedupe(_read_gtf(path))
    if suffix == ".bed":
        return _dedupe(_read_bed6(path))
    if suffix in _TABLE_SUFFIXES:
        return _dedupe(_read_table(path))
    if suffix in (".gff", ".gff3"):
        raise DataError(
            f"{path}: GFF3 is not read; give the GTF of the same annotation (or convert: "
            "gffread -T in.gff3 -o out.gtf), a BED6 file or a table."
        )
    raise DataError(f"{path}: cannot tell the kind of gene annotation from its name; hmviz reads {SUPPORTED}.")


def _annotation(gene_ids, chrom, tss, strand, symbols=None, expression=None, source="") -> GeneAnnotation:
    return GeneAnnotation(
        np.asarray(gene_ids, dtype=object),
        np.asarray(chrom, dtype=object),
        np.asarray(tss, dtype=np.int64),
        np.asarray(strand, dtype=object),
        None if symbols is None else np.asarray(symbols, dtype=object),
        None if expression is None else np.asarray(expression, dtype=np.float64),
        source,
    )


def _dedupe(ann: GeneAnnotation) -> GeneAnnotation:
    _, first = np.unique(ann.gene_ids, return_index=True)
    if first.size == len(ann):
        return ann
    keep = np.sort(first)
    dropped = np.setdiff1d(np.arange(len(ann)), keep)
    out = _annotation(
        ann.gene_ids[keep],
        ann.chrom[keep],
        ann.tss[keep],
        ann.strand[keep],
        None if ann.symbols is None else ann.symbols[keep],
        None if ann.expression is None else ann.expression[keep],
        source=ann.source,
    )
    out.duplicates = ann.gene_ids[dropped].tolist()
    log.info(
        "%s: %d gene id(s) listed more than once (%s); the first record of each is used.",
        ann.source,
        dropped.size,
        listing(out.duplicates),
    )
    return out


def _tss_from_strand(
    src: SourceFile, ids: np.ndarray, start: np.ndarray, end: np.ndarray, strand: np.ndarray
) -> np.ndarray:
    """The 5' end of ``[start, end)`` (0-based, half-open) by strand; a strand other than +/- is named."""
    bad = ~np.isin(strand, ["+", "-"])
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(
            f"{src.where(i)}: gene {ids[i]} has strand {strand[i]!r}; its TSS (start for +, end "
            "for -) needs the strand to be + or -."
        )
    order = end < start
    if order.any():
        i = int(np.argmax(order))
        raise DataError(f"{src.where(i)}: gene {ids[i]} ends ({end[i]}) before it starts ({start[i]}).")
    return np.where(strand == "-", end, start)


def _strings(table: pa.Table, name: str) -> np.ndarray:
    return np.asarray([s.strip() for s in table.column(name).to_pylist()], dtype=object)


def _check_filled(src: SourceFile, values: np.ndarray, what: str) -> None:
    empty = values == ""
    if empty.any():
        raise DataError(f"{src.where(int(np.argmax(empty)))}: the {what} is empty.")


# ------------------------------------------------------------------------------------- GTF
def _read_gtf(path: Path) -> GeneAnnotation:
    limits.check_regular_file(path)
    with open(path, "rb") as fh:
        gz = fh.read(2) == GZIP_MAGIC
    opener = gzip.open if gz else open
    skip = 0
    try:
        for _, line in _gtf_lines(path, opener):
            if line.strip() and not line.startswith(b"#"):
                break
            skip += 1
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: cannot be read as {'gzip' if gz else 'text'} ({exc}). Download it again.") from None
    columns = ["seqname", "feature", "start", "end", "strand", "attribute"]
    read = pacsv.ReadOptions(column_names=_GTF_COLUMNS, skip_rows=skip, block_size=1 << 24, use_threads=PYARROW_THREADS)
    parse = pacsv.ParseOptions(delimiter="\t", quote_char=False)
    convert = pacsv.ConvertOptions(
        column_types={c: pa.string() for c in _GTF_COLUMNS}, include_columns=columns, strings_can_be_null=False
    )
    genes, rows = [], 0
    features: set[str] = set()  # the feature names seen, for the message when no row is a gene
    # streamed through a counter: a decompression bomb stops at the limit (time and memory)
    stream = limits.LimitedReader(
        opener(path, "rb"),
        limits.ANNOTATION_BYTES,
        f"{path} (decompressed)",
        "Is it a complete GTF, or a gzip bomb? Keep only its gene lines (awk '$3 == \"gene\"').",
    )
    kept = 0
    try:
        with (
            stream,
            pacsv.open_csv(
                io.BufferedReader(stream, 1 << 24), read_options=read, parse_options=parse, convert_options=convert
            ) as reader,
        ):
            for batch in reader:
                is_gene = pc.equal(batch.column("feature"), "gene")
                if len(features) < 10:
                    features.update(pc.unique(batch.column("feature")).to_pylist())
                # keep the file row of each gene line for messages
                batch = batch.append_column("row", pa.array(np.arange(rows, rows + batch.num_rows)))
                genes.append(batch.filter(is_gene))
                kept += genes[-1].num_rows
                limits.check(limits.GENE_RECORDS, kept, str(path))
                rows += batch.num_rows
    except (pa.ArrowInvalid, OSError, EOFError, zlib.error) as exc:
        raise _gtf_error(path, opener, skip, exc) from None
    if not rows:
        raise DataError(f"{path}: has no data lines.")
    table = pa.Table.from_batches(genes) if genes else None
    if table is None or table.num_rows == 0:
        raise DataError(
            f"{path}: has no gene records (column 3 is never 'gene'; it has {listing(sorted(features))}). hmviz "
            "takes each gene's TSS from its gene record: use a GENCODE or Ensembl GTF, or give a BED6 file "
            "or a table of genes (gene_id, chrom, tss)."
        )
    src = SourceFile(path, header_lines=skip)
    pos = table.column("row").to_numpy()

    def at(i: int) -> str:
        return src.where(int(pos[i]))

    attrs = table.column("attribute")
    gene_id = pc.extract_regex(attrs, r'(?:^|;)\s*gene_id\s+"?(?P<v>[^";]+)"?')
    ids = np.asarray([g["v"] if g else "" for g in gene_id.to_pylist()], dtype=object)
    if (ids == "").any():
        i = int(np.argmax(ids == ""))
        raise DataError(
            f"{at(i)}: this gene record has no gene_id attribute (column 9). A GTF gene line needs "
            'gene_id "..."; is this a GFF3 file?'
        )
    name = pc.extract_regex(attrs, r'(?:^|;)\s*gene_name\s+"?(?P<v>[^";]+)"?').to_pylist()
    symbols = np.asarray([n["v"] if n else g for n, g in zip(name, ids)], dtype=object)
    try:
        start = table.column("start").cast(pa.int64()).to_numpy()
        end = table.column("end").cast(pa.int64()).to_numpy()
    except pa.ArrowInvalid:
        for col in ("start", "end"):
            ok = [v.strip().isdigit() for v in table.column(col).to_pylist()]
            if not all(ok):
                i = ok.index(False)
                raise DataError(
                    f"{at(i)}: {col} (column {_GTF_COLUMNS.index(col) + 1}) is "
                    f"{table.column(col)[i].as_py()!r}, not a whole number of bp."
                ) from None
        raise
    strand = _strings(table, "strand")
    bad = ~np.isin(strand, ["+", "-"])
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(f"{at(i)}: gene {ids[i]} has strand {strand[i]!r}; its TSS needs the strand + or -.")
    if (start < 1).any() or (end < start).any():
        i = int(np.argmax((start < 1) | (end < start)))
        raise DataError(
            f"{at(i)}: gene {ids[i]} has start {start[i]} and end {end[i]}; GTF positions are "
            "1-based with start <= end."
        )
    chrom = _strings(table, "seqname")
    tss = np.where(strand == "-", end, start - 1)  # 1-based inclusive -> 0-based boundary at the 5' end
    return _annotation(ids, chrom, tss, strand, symbols, source=str(path))


_GTF_LINE_BYTES = 1 << 20


def _gtf_lines(path: Path, opener):
    """``(number, line)`` of the file (decompressed), within the size limit and with lines of at most
    :data:`_GTF_LINE_BYTES` (a longer one is an error): a file with no line ends cannot fill memory."""
    where = f"{path} (decompressed)"
    with limits.LimitedReader(opener(path, "rb"), limits.ANNOTATION_BYTES, where) as raw:
        fh = io.BufferedReader(raw)
        number = 0
        while line := fh.readline(_GTF_LINE_BYTES):
            number += 1
            if len(line) == _GTF_LINE_BYTES and not line.endswith(b"\n"):
                raise DataError(
                    f"{path} line {number}: is longer than {_GTF_LINE_BYTES:,} bytes; a GTF line is nine "
                    "tab-separated fields of a few hundred. Is this file a GTF?"
                )
            yield number, line


def _gtf_error(path: Path, opener, skip: int, exc: Exception) -> DataError:
    """Name the first line that is not 9 tab-separated fields (a slow scan, only after a failure)."""
    with contextlib.suppress(OSError, EOFError, zlib.error):
        for number, line in _gtf_lines(path, opener):
            fields = line.rstrip(b"\r\n").split(b"\t")
            if number > skip and line.strip() and len(fields) != 9:
                shown = line.decode("utf-8", "replace").strip()[:80]
                return DataError(
                    f"{path} line {number}: has {len(fields)} tab-separated fields, but a GTF line "
                    f"has 9 (line: {shown!r}). Remove comment lines other than at the top."
                )
    return DataError(
        f"{path}: is not a readable GTF ({str(exc).splitlines()[0]}). A GTF line has 9 tab-separated fields."
    )


# ------------------------------------------------------------------------------------ BED6
def _read_bed6(path: Path) -> GeneAnnotation:
    text, src = read_bed_text(path)
    n = bed_fields(text)[1]
    if n < 6:
        raise DataError(
            f"{path}: a gene BED file needs 6 columns (chrom, start, end, name, score, strand) so that "
            f"each gene has an id and a strand; its first line has {n}."
        )
    names = ["chrom", "start", "end", "name", "score", "strand"] + [f"column{i + 1}" for i in range(6, n)]
    hint = "A BED6 line is: chrom, start, end, name, score, strand (0-based start)."
    types = {c: pa.string() for c in names}
    types.update(start=pa.int64(), end=pa.int64())
    table = parse_bed(src, text, names, types, layout=f"its first line has {n}", hints={"start": hint, "end": hint})
    ids, chrom, strand = _strings(table, "name"), _strings(table, "chrom"), _strings(table, "strand")
    _check_filled(src, ids, "name (the gene id, column 4)")
    _check_filled(src, chrom, "chromosome")
    start, end = int_column(src, table, "start", hint), int_column(src, table, "end", hint)
    if (start < 0).any():
        raise DataError(f"{src.where(int(np.argmax(start < 0)))}: start is negative.")
    tss = _tss_from_strand(src, ids, start, end, strand)
    return _annotation(ids, chrom, tss, strand, source=str(path))


# ----------------------------------------------------------------------------------- table
def _read_table(path: Path) -> GeneAnnotation:
    text, src = read_source(path)
    if src.parquet:
        table = read_parquet_table(src, text)
        header = table.column_names
    else:
        line = first_line(text)
        header = [f.strip() for f in split_fields(line, sniff_delimiter(line, path))]
    lower = {h.lower(): h for h in header}
    col = {c: lower.get(c) for c in ("gene_id", "chrom", "tss", "start", "end", "strand", "symbol", "expression")}
    col["symbol"] = col["symbol"] or lower.get("gene_name")
    need = [c for c in ("gene_id", "chrom") if col[c] is None]
    if col["tss"] is None:
        need += [c for c in ("start", "end", "strand") if col[c] is None]
    if need:
        found = {c: next((lower[a] for a in _ALIASES.get(c, ()) if a in lower), None) for c in need}
        alias = "; ".join(f"rename {v} to {c}" for c, v in found.items() if v)
        raise DataError(
            f"{path}: a gene table needs the column(s) {', '.join(need)}, but its header has: "
            f"{listing(header, len(header))}. It needs gene_id, chrom and either tss or start, end and strand"
            f"{f' ({alias})' if alias else ''}."
        )
    have: dict[str, str] = {c: name for c, name in col.items() if name}  # the columns present
    types = {have[c]: pa.string() for c in ("gene_id", "chrom", "strand", "symbol") if c in have}
    types.update({have[c]: pa.int64() for c in ("tss", "start", "end") if c in have})
    if "expression" in have:
        types[have["expression"]] = pa.float64()
    hints = {have[c]: f"{c} is a position in bp (0-based)." for c in ("tss", "start", "end") if c in have}
    if src.parquet:
        table = coerce_columns(src, table, types, hints)
    else:
        table = read_csv_table(
            src,
            text,
            delimiter=sniff_delimiter(first_line(text), path),
            names=None,
            types=types,
            layout="the header",
            hints=hints,
        )
    if table.num_rows == 0:
        raise src.error("has a header but no genes.")
    ids, chrom = _strings(table, have["gene_id"]), _strings(table, have["chrom"])
    _check_filled(src, ids, "gene_id")
    _check_filled(src, chrom, "chrom")
    strand = _strings(table, have["strand"]) if "strand" in have else np.full(ids.size, ".", dtype=object)
    if "tss" in have:
        tss = int_column(src, table, have["tss"], hints[have["tss"]])
        bad = ~np.isin(strand, ["+", "-", "."]) | (tss < 0)
        if bad.any():
            i = int(np.argmax(bad))
            raise DataError(
                f"{src.where(i)}: gene {ids[i]} has tss {tss[i]} and strand {strand[i]!r}; tss must "
                "be 0 or more and strand +, - or . (unknown)."
            )
    else:
        start = int_column(src, table, have["start"], hints[have["start"]])
        end = int_column(src, table, have["end"], hints[have["end"]])
        if (start < 0).any():
            raise DataError(f"{src.where(int(np.argmax(start < 0)))}: start is negative.")
        tss = _tss_from_strand(src, ids, start, end, strand)
    symbols = _strings(table, have["symbol"]) if "symbol" in have else None
    expression = float_column(table, have["expression"]) if "expression" in have else None
    return _annotation(ids, chrom, tss, strand, symbols, expression, source=str(path))
