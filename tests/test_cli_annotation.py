"""``--annotation PATH`` on the verbs that read data (issue 19, item 3): symbols from a gene_id,symbol
table reach the data, ``--gene`` takes a symbol, an ambiguous symbol is one exit-2 line listing its ids,
and the written tables carry a symbol column."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest

from hmviz.cli.main import main
from hmviz.data.io import write_long
from hmviz.data.synthetic import make_sample_dataset

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "deepchrome"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """40 generated genes without symbols (versioned Ensembl-like ids) and a gene_id,symbol table whose
    ids carry no version; genes 3 and 4 share the symbol TWIN."""
    ds, _ = make_sample_dataset(n_genes=40, seed=5)
    ids = [f"ENSG{100000 + i:011d}.{i % 3 + 1}" for i in range(ds.n_genes)]
    ds = dataclasses.replace(ds, gene_ids=pd.Series(ids).to_numpy(dtype=object), symbols=None)
    folder = tmp_path_factory.mktemp("ann")
    data = write_long(ds, folder / "genes.csv.gz")
    symbols = [f"LONGSYMBOL{i}" for i in range(ds.n_genes)]
    symbols[3] = symbols[4] = "TWIN"
    table = pd.DataFrame({"gene_id": [g.split(".")[0] for g in ids], "symbol": symbols})
    ann = folder / "names.csv"
    table.to_csv(ann, index=False)
    other = folder / "other.csv"
    pd.DataFrame({"gene_id": ["ENSG99999999999"], "symbol": ["X"]}).to_csv(other, index=False)
    return str(data), str(ann), str(other), ids


def _error_line(capsys) -> str:
    err = [line for line in capsys.readouterr().err.strip().splitlines() if not line.startswith("annotation ")]
    assert len(err) == 1 and err[0].startswith("error:"), err
    return err[0]


def test_validate_reports_how_many_genes_got_a_symbol(files, capsys):
    data, ann, _, _ = files
    assert main(["validate", data, "--annotation", ann]) == 0
    assert f"annotation {ann}: symbols for 40 of 40 genes" in capsys.readouterr().err


def test_explain_takes_a_symbol_and_writes_the_symbol_column(files, tmp_path, capsys):
    data, ann, _, ids = files
    out = tmp_path / "att.csv"
    assert main(["explain", "--model", str(MODEL), "--data", data, "--annotation", ann, "--gene", "longsymbol7",
                 "--method", "saliency", "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert list(table.columns[:2]) == ["gene", "symbol"]
    assert set(table["gene"]) == {ids[7]} and set(table["symbol"]) == {"LONGSYMBOL7"}


def test_an_ambiguous_symbol_is_one_error_line_naming_its_ids(files, tmp_path, capsys):
    data, ann, _, ids = files
    code = main(["explain", "--model", str(MODEL), "--data", data, "--annotation", ann, "--gene", "TWIN",
                 "--out", str(tmp_path / "a.csv")])
    line = _error_line(capsys)
    assert code == 2 and ids[3] in line and ids[4] in line and "TWIN" in line


def test_perturb_table_carries_the_symbol(files, tmp_path, capsys):
    data, ann, _, ids = files
    out = tmp_path / "p.csv"
    assert main(["perturb", "--model", str(MODEL), "--data", data, "--annotation", ann, "--gene", "LONGSYMBOL2",
                 "--edit", "H3K4me3:promoter:remove", "--out", str(out)]) == 0
    table = pd.read_csv(out)
    assert set(table["symbol"]) == {"LONGSYMBOL2"} and set(table["gene_id"]) == {ids[2]}


@pytest.mark.parametrize("verb", [["train", "--model", "deepchrome", "--out", "unused"], ["evaluate", "--model", str(MODEL)],
                                  ["baselines"], ["ablate", "--model", str(MODEL), "--out", "unused", "--mode", "mask"]])
def test_an_annotation_of_other_genes_is_one_error_line_naming_the_flag(files, verb, tmp_path, capsys, monkeypatch):
    data, _, other, _ = files
    monkeypatch.chdir(tmp_path)
    assert main([*verb, "--data", data, "--annotation", other]) == 2
    line = _error_line(capsys)
    assert line.startswith(f"error: --annotation {other}: ") and "none of its gene ids match" in line
