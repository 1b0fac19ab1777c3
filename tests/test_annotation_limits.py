"""Gene annotations (GTF, gene-name tables) are read within hmviz.limits like every other input: a
decompression bomb stops at the limit, a file without line ends cannot fill memory, the number of
gene records is bounded, and a FIFO is refused instead of waited on. Bombs are generated small: the
limits are lowered through their environment variables."""

from __future__ import annotations

import gzip
import os
import threading
import time

import pytest
from bombs import gzip_bomb

from hmviz.errors import DataError, LimitError
from hmviz.views import read_gene_names

GENE = b'chr1\tHAVANA\tgene\t11869\t14409\t.\t+\t.\tgene_id "ENSG00000223972.5"; gene_name "DDX11L1";\n'
EXON = b'chr1\tHAVANA\texon\t11869\t12227\t.\t+\t.\tgene_id "ENSG00000223972.5"; gene_name "DDX11L1";\n'


def _within(seconds: float, fn, *args):
    """``fn(*args)``'s exception (or result), failing the test when it has not returned after ``seconds``."""
    out: dict = {}

    def run():
        try:
            out["value"] = fn(*args)
        except Exception as exc:
            out["value"] = exc

    thread = threading.Thread(target=run, daemon=True)
    t0 = time.monotonic()
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"still reading after {seconds} s"
    return out["value"], time.monotonic() - t0


def test_a_gtf_bomb_stops_at_the_annotation_limit(tmp_path, monkeypatch):
    bomb = gzip_bomb(tmp_path / "genes.gtf.gz", b"#!genome-build GRCh38\n" + GENE, EXON, 256)
    assert bomb.stat().st_size < 3_000_000
    monkeypatch.setenv("HMVIZ_MAX_ANNOTATION_MB", "8")
    error, seconds = _within(60, read_gene_names, bomb)
    assert isinstance(error, LimitError), error
    message = str(error)
    assert "genes.gtf.gz (decompressed)" in message and "decompressed size of one gene annotation" in message
    assert "limit of 8 MB" in message and "HMVIZ_MAX_ANNOTATION_MB" in message
    assert seconds < 10  # stopped at 8 MB, not after 256


def test_a_gtf_without_line_ends_is_refused_not_read_into_memory(tmp_path, monkeypatch):
    bomb = gzip_bomb(tmp_path / "one_line.gtf.gz", b"", b"x" * 64, 64)
    error, _ = _within(60, read_gene_names, bomb)
    assert isinstance(error, DataError) and "line 1: is longer than 1,048,576 bytes" in str(error), error


def test_gene_records_are_bounded(tmp_path, monkeypatch):
    gtf = tmp_path / "many.gtf"
    gtf.write_bytes(b"".join(GENE.replace(b"223972", str(k).encode()) for k in range(30)))
    assert len(read_gene_names(gtf).gene_ids) == 30
    monkeypatch.setenv("HMVIZ_MAX_GENES", "20")
    with pytest.raises(LimitError, match=r"many.gtf: gene records in one annotation: 30 gene records, more than "
                                         r"hmviz's limit of 20 gene records.*HMVIZ_MAX_GENES"):
        read_gene_names(gtf)
    table = tmp_path / "names.csv"
    table.write_text("gene_id,symbol\n" + "".join(f"ENSG{k},S{k}\n" for k in range(30)))
    with pytest.raises(LimitError, match="HMVIZ_MAX_GENES"):
        read_gene_names(table)
    monkeypatch.delenv("HMVIZ_MAX_GENES")
    assert list(read_gene_names(table).symbols[:2]) == ["S0", "S1"]


def test_a_gene_name_table_bomb_stops_at_the_input_limit(tmp_path, monkeypatch):
    bomb = gzip_bomb(tmp_path / "names.csv.gz", b"gene_id,symbol\n", b"ENSG1,TP53\n", 256)
    monkeypatch.setenv("HMVIZ_MAX_INPUT_MB", "8")
    error, seconds = _within(60, read_gene_names, bomb)
    assert isinstance(error, LimitError) and "HMVIZ_MAX_INPUT_MB" in str(error), error
    assert seconds < 10


@pytest.mark.parametrize("name", ["genes.gtf", "names.csv"])
def test_a_fifo_annotation_is_refused_not_waited_on(tmp_path, name):
    fifo = tmp_path / name
    os.mkfifo(fifo)
    error, _ = _within(10, read_gene_names, fifo)
    assert isinstance(error, LimitError) and "named pipe (FIFO)" in str(error), error


def test_a_normal_gzip_gtf_still_reads(tmp_path):
    gtf = tmp_path / "g.gtf.gz"
    gtf.write_bytes(gzip.compress(b"#comment\n" + GENE + EXON))
    names = read_gene_names(gtf)
    assert list(names.gene_ids) == ["ENSG00000223972.5"] and list(names.symbols) == ["DDX11L1"]
    assert list(names.tss) == [11868]
