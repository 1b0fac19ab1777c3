"""The attack corpus: hostile files, flags and model cards, each refused with one ``error:`` line and
exit 2 (never an internal error, never a wait or an unbounded allocation).

Bombs and giant inputs are generated small: the limits (hmviz/limits.py) are lowered through their
environment variables, and the memory of a child process is measured with ``ru_maxrss``.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from bombs import gzip_bomb

from hmviz.cli.main import main
from hmviz.data import read_dataset
from hmviz.errors import DataError, HmvizError, LimitError

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = str(ROOT / "sample_data" / "histone.csv.gz")


@pytest.fixture
def alarm():
    """Fail (instead of hanging forever) when a read blocks, e.g. on a FIFO."""
    def on_alarm(*_):
        raise TimeoutError("the call blocked")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert "internal error" not in err[0]
    return err[0]


def _long(rows: list[str], header: str = "gene_id,bin,H3K4me3") -> str:
    return header + "\n" + "\n".join(rows) + "\n"


GOOD = ["a,0,1", "a,1,2", "b,0,3", "b,1,4"]

# (name, file name, bytes, a phrase the message must contain)
BAD_FILES = [
    ("second gene id column", "d.csv", _long(["a,0,1,x"] * 1, "gene_id,bin,H3K4me3,Gene_ID"), "Gene_ID"),
    ("second bin column", "d.csv", _long(["a,0,1,0"], "gene_id,bin,H3K4me3,BIN"), "reserved column bin"),
    ("empty header name", "d.csv", _long(["a,0,1,2"], "gene_id,bin,H3K4me3,"), "column 4 of the header has no name"),
    ("value above float32", "d.csv", _long(["a,0,1e39", "a,1,1", "b,0,1", "b,1,1"]), "float32"),
    ("negative expression", "d.csv", _long(["a,0,1,-2", "a,1,1,-2", "b,0,1,3", "b,1,1,3"],
                                          "gene_id,bin,H3K4me3,expression"), "negative"),
    ("infinite expression", "d.csv", _long(["a,0,1,inf", "a,1,1,inf", "b,0,1,3", "b,1,1,3"],
                                          "gene_id,bin,H3K4me3,expression"), "infinite"),
    ("wide table", "d.csv", "gene_id,H3K4me3_0,H3K4me3_1,H3K27me3_0,H3K27me3_1\ng,1,2,3,4\n", "wide_to_long"),
    ("semicolons with a decimal point", "d.csv", "gene_id;bin;H3K4me3\na;0;1.5\na;1;2,5\n", "decimal commas"),
]


@pytest.mark.parametrize("name,fname,text,phrase", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_data_is_one_clear_error(tmp_path, capsys, name, fname, text, phrase):
    path = tmp_path / fname
    path.write_text(text)
    assert main(["validate", str(path)]) == 2
    line = _error_line(capsys)
    assert phrase in line and str(path) in line


def test_cr_only_lines_and_semicolon_decimal_commas_are_read(tmp_path):
    (tmp_path / "cr.csv").write_bytes(_long(GOOD).replace("\n", "\r").encode())
    ds = read_dataset(tmp_path / "cr.csv")
    assert ds.signal[:, :, 0].tolist() == [[1, 2], [3, 4]]
    (tmp_path / "semi.csv").write_text("gene_id;bin;H3K4me3;H3K27me3\na;0;1,5;0\na;1;0,25;1\nb;0;2;0\nb;1;3;0\n")
    ds = read_dataset(tmp_path / "semi.csv")
    assert ds.marks == ("H3K4me3", "H3K27me3")
    assert ds.signal[0, :, 0].tolist() == [1.5, 0.25]


def test_the_wide_table_message_reshapes_it(tmp_path):
    """The reshaping code in the message, run as shown, gives a table hmviz reads."""
    header = ["gene_id"] + [f"{m}_{b}" for m in ("H3K4me3", "H3K27me3") for b in range(3)]
    rows = [",".join([f"g{i}"] + [str(i + k) for k in range(6)]) for i in range(3)]
    (tmp_path / "wide.csv").write_text("\n".join([",".join(header), *rows]) + "\n")
    with pytest.raises(DataError, match="wide table") as err:
        read_dataset(tmp_path / "wide.csv")
    code = str(err.value).split("in Python: ", 1)[1].split(" (bins", 1)[0].replace("FILE", repr(str(tmp_path / "wide.csv")))
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(code, {})
    finally:
        os.chdir(cwd)
    ds = read_dataset(tmp_path / "long.csv")
    assert ds.n_bins == 3 and ds.marks == ("H3K4me3", "H3K27me3")
    assert ds.signal[1, :, 1].tolist() == [4, 5, 6]


def test_nested_parquet_column(tmp_path, capsys):
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"gene_id": ["a", "a"], "bin": [0, 1], "H3K4me3": pa.array([[1.0], [2.0]])}),
                   tmp_path / "n.parquet")
    assert main(["validate", str(tmp_path / "n.parquet")]) == 2
    assert "nested values" in _error_line(capsys)


def test_a_fifo_is_refused_not_waited_on(tmp_path, capsys, alarm):
    fifo = tmp_path / "f.csv"
    os.mkfifo(fifo)
    assert main(["validate", str(fifo)]) == 2
    assert "named pipe" in _error_line(capsys)
    link = tmp_path / "zero.csv"
    link.symlink_to("/dev/zero")
    assert main(["validate", str(link)]) == 2
    assert "device" in _error_line(capsys)


def test_build_table_refuses_fifo_genes_and_huge_windows(tmp_path, capsys, alarm):
    (tmp_path / "t.bedGraph").write_text("chr1\t0\t100000\t1\n")
    os.mkfifo(tmp_path / "genes.tsv")
    out = str(tmp_path / "o.csv")
    assert main(["build-table", "--track", f"K={tmp_path / 't.bedGraph'}", "--genes", str(tmp_path / "genes.tsv"),
                 "--out", out]) == 2
    assert "named pipe" in _error_line(capsys)
    (tmp_path / "g.tsv").write_text("gene_id\tchrom\ttss\tstrand\ng1\tchr1\t10000\t+\n")
    t0 = time.perf_counter()
    assert main(["build-table", "--track", f"K={tmp_path / 't.bedGraph'}", "--genes", str(tmp_path / "g.tsv"),
                 "--out", out, "--bin-size", "50", "--flank", "50000000"]) == 2
    assert "2,000,000 bins" in _error_line(capsys) and time.perf_counter() - t0 < 5


def test_a_wide_header_is_linear(monkeypatch):
    """30,000 column names: checked in well under a second (the old duplicate check was quadratic)."""
    from hmviz.data.formats.long import column_roles
    from hmviz.data.validation import SourceFile

    monkeypatch.setenv("HMVIZ_MAX_COLUMNS", "100000")
    header = ["gene_id", "bin", *(f"m{i}" for i in range(30_000))]
    t0 = time.perf_counter()
    reserved, marks = column_roles(SourceFile(Path("x.csv")), header)
    assert len(marks) == 30_000 and time.perf_counter() - t0 < 1.0
    monkeypatch.delenv("HMVIZ_MAX_COLUMNS")
    with pytest.raises(LimitError, match="HMVIZ_MAX_COLUMNS"):
        column_roles(SourceFile(Path("x.csv")), header)


def test_a_gzip_bomb_stops_at_the_limit_with_bounded_memory(tmp_path):
    """A 256 MB bomb under an 8 MB limit: exit 2 naming the limit, and the child's peak memory stays
    far below what reading the whole bomb takes."""
    bomb = tmp_path / "b.csv.gz"
    gzip_bomb(bomb, b"gene_id,bin,H3K4me3\n", b"a,0,1\n", 256)
    assert bomb.stat().st_size < 2_000_000
    env = {**os.environ, "HMVIZ_MAX_INPUT_MB": "8"}
    # The child's own peak: VmHWM of its address space. (ru_maxrss survives fork+exec on Linux, so in a
    # large test process it reports the parent's size, not the child's.)
    code = ("import re, sys; from hmviz.cli.main import main; rc = main(['validate', sys.argv[1]]); "
            "hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()); "
            "print(hwm.group(1) if hwm else 0, file=sys.stderr); sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code, str(bomb)], capture_output=True, text=True, env=env,
                          timeout=400, cwd=ROOT)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert lines[0].startswith("error: ") and "HMVIZ_MAX_INPUT_MB" in lines[0]
    peak_mb = int(lines[-1]) / 1024
    assert peak_mb < 200, f"peak {peak_mb:.0f} MB"


def test_gzip_reading_is_unchanged_below_the_limit(tmp_path):
    text = _long(GOOD).encode()
    (tmp_path / "d.csv.gz").write_bytes(gzip.compress(text[:20]) + gzip.compress(text[20:]))  # two members
    assert read_dataset(tmp_path / "d.csv.gz").signal[:, :, 0].tolist() == [[1, 2], [3, 4]]
    (tmp_path / "t.csv.gz").write_bytes(gzip.compress(text)[:-12])
    with pytest.raises(DataError, match="corrupt or truncated gzip"):
        read_dataset(tmp_path / "t.csv.gz")


# ---------------------------------------------------------------------------------- flags
TRAIN_FLAGS = [
    (["--batch-size", "-5"], "--batch-size"),
    (["--batch-size", "0"], "--batch-size"),
    (["--lr", "-1"], "--lr"),
    (["--lr", "nan"], "--lr"),
    (["--seed", "-1"], "--seed"),
    (["--seed", str(2 ** 64)], "--seed"),
    (["--epochs", "0"], "--epochs"),
    (["--patience", "-1"], "--patience"),
    (["--set", "n_filters=200000"], "HMVIZ_MAX_PARAMETERS"),
]


@pytest.mark.parametrize("extra,phrase", TRAIN_FLAGS, ids=[" ".join(f[0]) for f in TRAIN_FLAGS])
def test_train_flags_are_checked_before_any_work(tmp_path, capsys, extra, phrase):
    out = tmp_path / "m"
    assert main(["train", "--data", SAMPLE, "--model", "deepchrome", "--out", str(out), "--quiet", *extra]) == 2
    assert phrase in _error_line(capsys)
    assert not out.exists()


def test_train_out_naming_a_file(tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    assert main(["train", "--data", SAMPLE, "--model", "deepchrome", "--out", str(tmp_path / "f"), "--quiet"]) == 2
    assert "is a file" in _error_line(capsys)


def test_unwritable_output_folder_is_a_user_error(tmp_path, capsys):
    if os.geteuid() == 0:
        pytest.skip("root may write anywhere")
    (tmp_path / "ro").mkdir(mode=0o555)
    assert main(["convert", SAMPLE, str(tmp_path / "ro" / "x.csv")]) == 2
    _error_line(capsys)


# ------------------------------------------------------------------------------ model cards
@pytest.fixture
def bundled(tmp_path) -> Path:
    model = tmp_path / "model"
    shutil.copytree(ROOT / "models" / "deepchrome", model)
    return model


def _edit(card: dict, how: str) -> dict | str:
    if how == "no marks":
        card.pop("marks")
    elif how == "no transform":
        card.pop("transform")
    elif how == "no n_bins":
        card.pop("n_bins")
    elif how == "string card_format":
        card["card_format"] = "1"
    elif how == "task":
        card["task"] = "differential"
    elif how == "tss_bin":
        card["tss_bin"] = 500
    elif how == "n_filters":
        card["config"]["n_filters"] = 200000
    elif how == "nested":
        return "[" * 100_000 + "]" * 100_000
    return card


CARD_EDITS = ["no marks", "no transform", "no n_bins", "string card_format", "task", "tss_bin", "n_filters", "nested"]


@pytest.mark.parametrize("how", CARD_EDITS)
def test_tampered_cards_are_refused_before_allocating(bundled, capsys, how):
    card_path = bundled / "model_card.json"
    edited = _edit(json.loads(card_path.read_text()), how)
    card_path.write_text(edited if isinstance(edited, str) else json.dumps(edited))
    assert main(["evaluate", "--model", str(bundled), "--data", SAMPLE, "--device", "cpu"]) == 2
    line = _error_line(capsys)
    assert "model_card.json" in line or "model deepchrome" in line
    if how == "n_filters":
        assert "HMVIZ_MAX_PARAMETERS" in line and "cannot build" not in line


@pytest.mark.parametrize("target", ["fifo", "/dev/zero"])
def test_card_or_weights_linked_to_a_fifo_or_device(bundled, tmp_path, capsys, alarm, target):
    for name in ("model_card.json", "model.safetensors"):
        model = tmp_path / f"copy-{name}"
        shutil.copytree(bundled, model)
        (model / name).unlink()
        if target == "fifo":
            os.mkfifo(model / name)
        else:
            (model / name).symlink_to(target)
        assert main(["evaluate", "--model", str(model), "--data", SAMPLE, "--device", "cpu"]) == 2
        assert "not a regular file" in _error_line(capsys)


def test_explain_flags(bundled, tmp_path, capsys):
    base = ["explain", "--model", str(bundled), "--data", SAMPLE, "--gene", "g1"]
    assert main([*base, "--out", str(tmp_path / "a.csv"), "--promoter", "nan,nan"]) == 2
    assert "--promoter" in _error_line(capsys)
    assert main([*base, "--out", str(tmp_path / "a.csv"), "--steps", "100000000"]) == 2
    assert "--steps" in _error_line(capsys)
    assert main([*base, "--out", str(tmp_path)]) == 2
    assert "is a folder" in _error_line(capsys)


def test_a_symbol_shared_by_genes_is_ambiguous():
    from hmviz.data.dataset import HistoneDataset

    ds = HistoneDataset(signal=np.zeros((3, 2, 1), np.float32), gene_ids=np.array(["g1", "g2", "g3"], object),
                        marks=("K",), bin_size=100, tss_bin=1, symbols=np.array(["A", "B", "A"], object))
    assert ds.index_of("B") == 1
    with pytest.raises(HmvizError, match="belongs to 2 genes .*g1, g3"):
        ds.index_of("A")


def test_marks_message_names_the_model():
    from hmviz.inference import _select_marks
    from hmviz.data.dataset import HistoneDataset

    ds = HistoneDataset(signal=np.zeros((2, 2, 1), np.float32), gene_ids=np.array(["g1", "g2"], object),
                        marks=("K",), bin_size=100, tss_bin=1)
    with pytest.raises(DataError) as err:
        _select_marks(ds, ["H3K4me3"], "the data")
    assert "do not match the model" in str(err.value) and "the model expects" in str(err.value)


def test_library_warnings_do_not_join_the_error_line(tmp_path, capsys):
    """A RuntimeWarning raised on the way to a user error is logged (shown with --verbose), not printed."""
    import warnings

    from hmviz.cli import main as cli

    def noisy(args):
        warnings.warn("Mean of empty slice", RuntimeWarning)
        raise HmvizError("the input is wrong")

    cli._load_verbs()
    parser_verb = ("noisy", "test verb", lambda p: None, noisy)
    cli._VERBS.append(parser_verb)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            assert cli.main(["noisy"]) == 2
        assert capsys.readouterr().err.strip() == "error: the input is wrong"
    finally:
        cli._VERBS.remove(parser_verb)
        logging.captureWarnings(False)
