"""Malformed inputs: each gives one DataError naming the file, the line or gene, and the problem,
and through the CLI exactly one ``error:`` line on stderr with exit status 2 (never a traceback)."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hmviz.cli.main import main
from hmviz.data import check_marks, read_dataset, read_expression
from hmviz.errors import DataError


# ------------------------------------------------------------------------------ file builders
def deepchrome(genes=(("g1", 1), ("g2", 0), ("g3", 1)), bins=4, edit=None) -> bytes:
    """DeepChrome CSV rows: gene, bin 1..bins, 5 marks, label; ``edit(rows)`` may change the rows."""
    rows = [[g, str(b), str(b), "1", "2", "3", "0", str(label)] for g, label in genes for b in range(1, bins + 1)]
    if edit:
        edit(rows)
    return "".join(",".join(r) + "\n" for r in rows).encode()


def setting(rows, line, col, value):
    """Set field ``col`` of file line ``line`` (1-based) and return the rows (for ``edit=``)."""
    rows[line - 1][col] = value


def long_csv(header="gene_id,bin,H3K4me3,H3K27me3", rows=None, sep=",") -> bytes:
    rows = rows if rows is not None else [f"g{g},{b},{b},1" for g in (1, 2) for b in range(3)]
    return (sep.join(header.split(",")) + "\n" + "".join(r.replace(",", sep) + "\n" for r in rows)).encode()


def long_rows(per_gene: dict[str, list[str]], header_extra: str, bins=3) -> bytes:
    """Long CSV with per-gene columns: ``per_gene[gene] = values for header_extra per bin``."""
    lines = []
    for gene, values in per_gene.items():
        for b in range(bins):
            lines.append(f"{gene},{b},{b},1,{values[b] if isinstance(values, list) else values}")
    return long_csv(f"gene_id,bin,H3K4me3,H3K27me3,{header_extra}", lines)


def deepdiff_rows(genes=("ENSG1_A", "ENSG2_B"), bins=3, bad=None) -> bytes:
    lines = [f"{g}_{b},1,2,3,4,5" for g in genes for b in range(1, bins + 1)]
    if bad:
        lines[bad[0] - 1] = bad[1]
    return ("\n".join(lines) + "\n").encode()


def parquet_bytes() -> bytes:
    buf = io.BytesIO()
    pq.write_table(pa.table({"gene_id": ["g1"] * 3, "bin": [0, 1, 2], "H3K4me3": [1.0, 2.0, 3.0]}), buf)
    return buf.getvalue()


def _dup_bin(rows):
    rows[2][1] = "2"


def _gap(rows):
    rows[6][1] = "5"
    rows[7][1] = "6"


def _short(rows):
    del rows[7]


def _late(rows):
    for b, r in enumerate(rows[4:8]):
        r[1] = str(b + 2)


def _label_flip(rows):
    rows[5][7] = "1"


# (case, {file name: bytes}, read_dataset kwargs, fragments the message must contain).
# The path read is the single file, or the folder holding several.
CASES = [
    ("deepchrome_nine_columns", {"genes.csv": deepchrome(edit=lambda rows: [r.append("7") for r in rows])}, {},
     ["genes.csv line 1", "9 comma-separated fields", "have 8 columns", "Remove the extra"]),
    ("deepchrome_ragged_row", {"genes.csv": deepchrome(edit=lambda rows: rows[4].pop())}, {},
     ["genes.csv line 5", "7 comma-separated fields", "have 8 columns"]),
    ("non_numeric_mark", {"genes.csv": deepchrome(edit=lambda r: setting(r, 6, 3, "abc"))}, {},
     ["genes.csv line 6", "H3K36me3 is 'abc'", "not a number"]),
    ("nan_mark", {"genes.csv": deepchrome(edit=lambda r: setting(r, 7, 4, "NaN"))}, {},
     ["genes.csv line 7", "H3K4me1", "empty or NaN"]),
    ("empty_mark_field", {"genes.csv": deepchrome(edit=lambda r: setting(r, 8, 4, ""))}, {},
     ["genes.csv line 8", "H3K4me1", "empty or NaN", "fill in"]),
    ("inf_mark", {"genes.csv": deepchrome(edit=lambda r: setting(r, 3, 5, "inf"))}, {},
     ["genes.csv line 3", "H3K4me3", "inf", "finite"]),
    ("negative_count", {"genes.csv": deepchrome(edit=lambda r: setting(r, 10, 6, "-3"))}, {},
     ["genes.csv line 10", "H3K9me3", "-3", "negative count"]),
    ("duplicated_bin", {"genes.csv": deepchrome(edit=_dup_bin)}, {},
     ["genes.csv", "gene g1 has bin 2 twice", "line 2", "line 3"]),
    ("bins_not_consecutive", {"genes.csv": deepchrome(edit=_gap)}, {},
     ["genes.csv", "gene g2", "not consecutive", "from bin 2 (line 6) to bin 5 (line 7)", "bins 3..4 are missing"]),
    ("different_bin_counts", {"genes.csv": deepchrome(edit=_short)}, {},
     ["genes.csv", "different numbers of bins", "gene g2 has 3 bins", "bin 4 is missing"]),
    ("missing_first_bin", {"genes.csv": deepchrome(edit=_late)}, {},
     ["genes.csv", "gene g2 is missing bin 1", "line 5"]),
    ("bin_not_integer", {"genes.csv": deepchrome(edit=lambda r: setting(r, 4, 1, "1.5"))}, {},
     ["genes.csv line 4", "bin is '1.5'", "whole number"]),
    ("label_not_binary", {"genes.csv": deepchrome(genes=(("g1", 1), ("g2", 2), ("g3", 0)))}, {},
     ["genes.csv", "gene g2 has label 2", "line 5", "0 (low expression) or 1"]),
    ("label_one_class", {"genes.csv": deepchrome(genes=(("g1", 1), ("g2", 1)))}, {},
     ["genes.csv", "all 2 genes have label 1", "both 0 = low and 1 = high"]),
    ("label_changes_within_gene", {"genes.csv": deepchrome(edit=_label_flip)}, {},
     ["genes.csv", "gene g2 has two different label values", "line 5", "line 6"]),
    ("empty_file", {"genes.csv": b""}, {}, ["genes.csv", "the file is empty"]),
    ("blank_lines_only", {"genes.csv": b"\n\n  \n"}, {}, ["genes.csv", "the file is empty"]),
    ("utf16_file", {"genes.csv": "gene_id,bin,H3K4me3\ng1,0,1\n".encode("utf-16")}, {},
     ["genes.csv", "UTF-16", "not UTF-8", "Save it again as UTF-8"]),
    ("binary_file", {"genes.csv": bytes(range(256)) * 4}, {}, ["genes.csv", "not UTF-8 text", "binary"]),
    ("latin1_symbol", {"genes.csv": b"gene_id,bin,symbol,H3K4me3\ng1,0,ok,1\ng1,1,caf\xe9,1\n"}, {},
     ["genes.csv", "not UTF-8 text", "0xe9 on line 3"]),
    ("truncated_gzip", {"genes.csv.gz": gzip.compress(deepchrome(), mtime=0)[:-12]}, {},
     ["genes.csv.gz", "corrupt or truncated gzip"]),
    ("gz_name_not_gzip", {"genes.csv.gz": deepchrome()}, {}, ["genes.csv.gz", "not gzip-compressed"]),
    ("truncated_parquet", {"genes.parquet": parquet_bytes()[:-30]}, {},
     ["genes.parquet", "not a valid Parquet file", "truncated"]),
    ("garbled_parquet", {"genes.parquet": parquet_bytes()[:40] + b"\0" * 60 + parquet_bytes()[100:]}, {},
     ["genes.parquet", "Parquet", "corrupt"]),
    ("unknown_format", {"genes.csv": b"hello world\nfoo bar\n"}, {},
     ["genes.csv", "cannot tell the format", "DeepChrome", "DeepDiff", "long format", "--format"]),
    ("long_missing_required", {"genes.csv": long_csv("gene,bin,H3K4me3,H3K27me3")}, {},
     ["genes.csv", "needs the column(s) gene_id", "Rename gene -> gene_id"]),
    ("long_named_but_other_header", {"genes.csv": long_csv("GeneName,position,H3K4me3,H3K27me3")},
     {"format": "long"}, ["genes.csv", "gene_id, bin", "the header (line 1) has: GeneName, position"]),
    ("long_header_only", {"genes.csv": b"gene_id,bin,H3K4me3\n"}, {}, ["genes.csv", "header but no data rows"]),
    ("long_no_marks", {"genes.csv": b"gene_id,bin,symbol\ng1,0,A\n"}, {}, ["genes.csv", "has no mark columns"]),
    ("long_duplicate_column", {"genes.csv": b"gene_id,bin,H3K4me3,H3K4me3\ng1,0,1,2\n"}, {},
     ["genes.csv", "H3K4me3 appear more than once"]),
    ("long_tsv_extra_field", {"genes.tsv": long_csv(rows=["g1,0,1,1", "g1,1,2,2,9"], sep="\t")}, {},
     ["genes.tsv line 3", "5 tab-separated fields", "header (the first line) has 4"]),
    ("long_two_expression_values", {"genes.csv": long_rows({"g1": "5", "g2": ["7", "7", "8"]}, "expression")}, {},
     ["genes.csv", "gene g2 has two different expression values", "7 (line 6)", "8 (line 7)"]),
    ("long_two_chromosomes", {"genes.csv": long_rows({"g1": ["chr1", "chr2", "chr1"]}, "chrom")}, {},
     ["genes.csv", "gene g1 has two different chrom values", "'chr1'", "'chr2'"]),
    ("long_expression_not_numeric", {"genes.csv": long_rows({"g1": "5", "g2": "high"}, "expression")}, {},
     ["genes.csv line 5", "expression is 'high'", "not a number"]),
    ("long_bad_split", {"genes.csv": long_rows({"g1": "train", "g2": "validation"}, "split")}, {},
     ["genes.csv", "gene g2 has split 'validation'", "line 5", "train, valid or test", "spelled 'valid'"]),
    ("long_missing_label", {"genes.csv": long_rows({"g1": "1", "g2": "", "g3": "0"}, "label")}, {},
     ["genes.csv", "gene g2 has no label", "line 5"]),
    ("long_bad_strand", {"genes.csv": long_rows({"g1": "+", "g2": "forward"}, "strand")}, {},
     ["genes.csv", "gene g2 has strand 'forward'", "'+', '-' or '.'"]),
    ("long_bin_start_disagrees", {"genes.csv": long_rows({"g1": ["-100", "0", "100"], "g2": ["-200", "-100", "0"]},
                                                         "bin_start_bp")}, {},
     ["genes.csv", "bin_start_bp disagrees across genes", "gene g2", "-200 bp", "line 5"]),
    ("long_strand_aware_mixed", {"genes.csv": long_rows({"g1": "true", "g2": "false"}, "strand_aware")}, {},
     ["genes.csv line 5", "strand_aware is 'false'", "same on every row"]),
    ("long_cells_differ", {"genes.csv": long_csv("cell,gene_id,bin,H3K4me3,H3K27me3",
                                                 [f"{c},{g},{b},1,1" for c, gs in (("A", "g1 g2"), ("B", "g1 g3"))
                                                  for g in gs.split() for b in range(2)])}, {},
     ["cells A and B must cover the same genes", "g2", "g3", "genes.csv"]),
    ("deepdiff_bad_key", {"Cell1.train.csv": deepdiff_rows(bad=(3, "ENSG1-A-3,1,2,3,4,5"))}, {},
     ["Cell1.train.csv line 3", "'ENSG1-A-3'", "ENSGID_SYMBOL_bin"]),
    ("deepdiff_seven_columns", {"Cell1.train.csv": deepdiff_rows(bad=(2, "ENSG1_A_2,1,2,3,4,5,6"))}, {},
     ["Cell1.train.csv line 2", "7 comma-separated fields", "DeepDiff CSV files have 6 columns"]),
    ("deepdiff_cells_differ",
     {"Cell1.train.csv": deepdiff_rows(), "Cell2.train.csv": deepdiff_rows(("ENSG1_A", "ENSG9_Z"))}, {},
     ["cells Cell1 and Cell2 must cover the same genes", "ENSG2", "ENSG9", "Cell2.train.csv"]),
    ("gene_in_two_split_files", {"train.csv": deepchrome(), "test.csv": deepchrome(genes=(("g3", 0), ("g4", 1)))}, {},
     ["gene g3 appears in more than one file", "train.csv line 9", "test.csv line 1"]),
    ("mixed_formats", {"a.csv": deepchrome(), "b.csv": long_csv()}, {},
     ["different formats", "a.csv: deepchrome", "b.csv: long"]),
    ("expression_table_no_column", {"genes.csv": deepchrome(), "expr.tsv": b"gene_id\tvalue\ng1\t3\n"},
     {"expression": "expr.tsv"}, ["expr.tsv", "needs the column(s) expression", "gene_id, value"]),
    ("expression_table_not_numeric", {"genes.csv": deepchrome(), "expr.csv": b"gene_id,expression\ng1,3\ng2,n/d\n"},
     {"expression": "expr.csv"}, ["expr.csv line 3", "expression is 'n/d'", "not a number"]),
]


def _write(tmp_path: Path, files: dict[str, bytes], kwargs: dict) -> tuple[Path, dict]:
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    data_files = [n for n in files if n != kwargs.get("expression")]
    target = tmp_path / data_files[0] if len(data_files) == 1 else tmp_path
    kw = dict(kwargs)
    if "expression" in kw:
        kw["expression"] = tmp_path / kw["expression"]
        target = tmp_path / data_files[0]
    return target, kw


@pytest.mark.parametrize("case, files, kwargs, fragments", CASES, ids=[c[0] for c in CASES])
def test_malformed_input_message(tmp_path, case, files, kwargs, fragments):
    target, kw = _write(tmp_path, files, kwargs)
    with pytest.raises(DataError) as info:
        read_dataset(target, **kw)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in: {message}"


@pytest.mark.parametrize("case, files, kwargs, fragments", CASES, ids=[c[0] for c in CASES])
def test_malformed_input_cli(tmp_path, capsys, case, files, kwargs, fragments):
    target, kw = _write(tmp_path, files, kwargs)
    argv = ["validate", str(target)] + [a for k, val in kw.items() for a in (f"--{k}", str(val))]
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err and "internal error" not in err
    assert fragments[0] in lines[0]


def test_enough_distinct_malformed_inputs():
    assert len({c[0] for c in CASES}) == len(CASES) >= 20


def test_missing_file_and_folder(tmp_path, capsys):
    with pytest.raises(DataError, match="no such file or folder"):
        read_dataset(tmp_path / "nope.csv")
    assert main(["validate", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    with pytest.raises(DataError, match="has no data files"):
        read_dataset(tmp_path)


def test_unknown_format_name(tmp_path):
    (tmp_path / "g.csv").write_bytes(deepchrome())
    with pytest.raises(DataError, match="Unknown format 'bed'.*deepchrome, deepdiff, long"):
        read_dataset(tmp_path / "g.csv", format="bed")


def test_explicit_format_overrides_detection(tmp_path):
    (tmp_path / "g.csv").write_bytes(deepchrome())
    with pytest.raises(DataError, match=r"g.csv line 1: has 8 comma-separated fields but DeepDiff"):
        read_dataset(tmp_path / "g.csv", format="deepdiff")


def test_blank_lines_keep_true_line_numbers(tmp_path):
    data = deepchrome(edit=lambda r: setting(r, 6, 3, "x")).replace(b"\n", b"\n\n", 2)
    (tmp_path / "g.csv").write_bytes(data)
    with pytest.raises(DataError, match="g.csv line 8: H3K36me3 is 'x'"):
        read_dataset(tmp_path / "g.csv")
    data = deepchrome(edit=lambda r: setting(r, 6, 4, "-1")).replace(b"\n", b"\r\n\r\n", 1)
    (tmp_path / "g.csv").write_bytes(data)
    with pytest.raises(DataError, match="g.csv line 7: the H3K4me1 value is -1"):
        read_dataset(tmp_path / "g.csv")


def test_parquet_rows_are_named(tmp_path):
    table = pa.table({"gene_id": ["g1"] * 3, "bin": [0, 1, 2], "H3K4me3": [1.0, -2.0, 3.0]})
    pq.write_table(table, tmp_path / "g.parquet")
    with pytest.raises(DataError, match="g.parquet row 2: the H3K4me3 value is -2"):
        read_dataset(tmp_path / "g.parquet")
    table = pa.table({"gene_id": ["g1"] * 2, "bin": [0, 1], "H3K4me3": ["1", "lots"]})
    pq.write_table(table, tmp_path / "g.parquet")
    with pytest.raises(DataError, match="g.parquet row 2: H3K4me3 is 'lots'"):
        read_dataset(tmp_path / "g.parquet")


def test_read_expression_conflicting_duplicates(tmp_path):
    (tmp_path / "e.csv").write_text("gene_id,expression\ng1,1\ng2,2\ng1,3\n")
    with pytest.raises(DataError, match="gene g1 is listed with different expression values .line 2 and line 4"):
        read_expression(tmp_path / "e.csv")


# ------------------------------------------------------------------------------ check_marks
MARKS = ["H3K27me3", "H3K36me3", "H3K4me1", "H3K4me3", "H3K9me3"]


def test_check_marks_accepts_exact_match():
    check_marks(MARKS, list(MARKS))


def test_check_marks_missing_mark():
    with pytest.raises(DataError) as info:
        check_marks(MARKS[:4], MARKS, what="the DeepChrome model")
    msg = str(info.value)
    assert "missing from the data: H3K9me3" in msg and "the DeepChrome model expects" in msg
    assert "model trained on the data's marks" in msg


def test_check_marks_extra_mark_and_case():
    with pytest.raises(DataError) as info:
        check_marks([*MARKS[:3], "h3k4me3", "H3K9me3", "H3K27ac"], MARKS)
    msg = str(info.value)
    assert "missing from the data: H3K4me3" in msg and "case-sensitive" in msg and "h3k4me3" in msg
    assert "not used by the model: h3k4me3, H3K27ac" in msg


def test_check_marks_order():
    deepdiff_order = ["H3K4me1", "H3K4me3", "H3K9me3", "H3K27me3", "H3K36me3"]
    with pytest.raises(DataError) as info:
        check_marks(deepdiff_order, MARKS)
    msg = str(info.value)
    assert "the same marks in a different order" in msg and "select_marks" in msg
    assert "trained on these marks" in msg


def test_nothing_is_written_when_reading_fails(tmp_path):
    (tmp_path / "bad.csv").write_bytes(deepchrome(edit=_dup_bin))
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["convert", str(tmp_path / "bad.csv"), str(tmp_path / "out.parquet")]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == before
