"""In-silico editing on the sample data, whose rules are known (``sample_data/ground_truth.json``), with
the bundled DeepChrome and its ranker; and the ``perturb`` verb of the CLI.

Rules planted in the sample: broad H3K27me3 and H3K9me3 lower expression; H3K4me3 at the promoter
(-1..+1 kb) and H3K36me3 over the gene body (+1..+5 kb) raise it; H3K4me1 is a decoy.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hmviz.cli.main import main
from hmviz.perturb import Editor, scan, smallest_edit

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data"
MODELS = ROOT / "models"


@pytest.fixture(scope="module")
def sample():
    if not (MODELS / "deepchrome" / "model.safetensors").exists():
        pytest.skip("bundled models not installed")
    from hmviz.data import read_dataset
    from hmviz.data.synthetic import planted_terms

    ds = read_dataset(SAMPLE)
    terms = planted_terms(ds, json.loads((SAMPLE / "ground_truth.json").read_text()))
    return ds, terms


def _editor(name: str, ds) -> Editor:
    from hmviz.checkpoints import load_model
    from hmviz.explain.session import prepare

    model, card = load_model(MODELS / name)
    return Editor.from_session(prepare(model, card, ds))


@pytest.fixture(scope="module")
def deepchrome(sample):
    return _editor("deepchrome", sample[0])


def _silent(editor: Editor, terms, term: str, n: int = 3) -> list[int]:
    """Test genes with the most of the planted repressive ``term`` (most negative) that the model calls low."""
    rows = editor.session.evaluation_rows()
    rows = rows[np.argsort(terms[term][rows])]
    scores = editor.all_scores()
    return [int(r) for r in rows if scores[r] < 0][:n]


@pytest.mark.parametrize("mark", ["H3K27me3", "H3K9me3"])
def test_removing_the_planted_repressive_mark_raises_a_silent_gene(deepchrome, sample, mark, one_torch_thread):
    for row in _silent(deepchrome, sample[1], f"broad_{mark}"):
        res = deepchrome.perturb(row, [f"{mark}:window:remove"])
        assert res.score_after > res.score_before + 1.0, (res.gene, res.score_before, res.score_after)
        assert res.rank_after < res.rank_before
        assert np.all(res.raw_after[:, deepchrome.marks.index(mark)] == 0)


def test_activating_marks_at_the_promoter_raise_more_than_the_decoy(deepchrome, one_torch_thread):
    rows = deepchrome.session.evaluation_rows()
    low = rows[np.argsort(deepchrome.all_scores()[rows])[:5]]
    for row in low:
        decoy = deepchrome.perturb(int(row), ["H3K4me1:promoter:like=high"]).delta
        for edit in ("H3K4me3:promoter:like=high", "H3K4me3:promoter:set=20"):
            assert deepchrome.perturb(int(row), [edit]).delta > max(decoy, 0) + 0.2, (row, edit)
        assert deepchrome.perturb(int(row), ["H3K4me3:promoter:set=20"]).delta > \
            deepchrome.perturb(int(row), ["H3K4me1:promoter:set=20"]).delta + 0.2


def test_smallest_edit_with_the_activating_marks_lands_where_the_rules_say(deepchrome, one_torch_thread):
    """Allowed to add H3K4me3 and H3K36me3 anywhere in the window, the search puts most H3K4me3 per bin
    at the promoter and most H3K36me3 per bin over the gene body, and the gene is then called high."""
    rows = deepchrome.session.evaluation_rows()
    low = rows[np.argsort(deepchrome.all_scores()[rows])[:3]]
    for row in low:
        res = smallest_edit(deepchrome, int(row), ["H3K4me3,H3K36me3:window:add"])
        assert res.found and res.result.score_after > 0 > res.result.score_before
        main_region = {c.mark: c.main_region for c in res.changes}
        assert main_region == {"H3K4me3": "promoter", "H3K36me3": "gene_body"}, (row, main_region)
        assert np.all(res.delta[:, [0, 2, 4]] == 0) and np.all(res.delta >= -1e-6)
        assert 0 <= res.score_percentile <= 100 and res.target_class == "high"


def test_smallest_edit_for_a_pair_with_the_ranker(sample, one_torch_thread):
    editor = _editor("ranker-deepchrome", sample[0])
    scores = editor.all_scores()
    rows = editor.session.evaluation_rows()
    a, b = int(rows[np.argmin(scores[rows])]), int(rows[np.argmax(scores[rows])])
    res = smallest_edit(editor, a, ["H3K27me3,H3K9me3:window:remove", "H3K4me3,H3K36me3:window:add"], vs=b)
    assert res.found and res.result.p_before < 0.5 < res.result.p_after
    assert res.goal.startswith(f"rank {editor.session.display(a)} above")
    res = smallest_edit(editor, a, ["H3K4me1:promoter:add"], vs=b)  # the decoy cannot do it
    assert not res.found and "No allowed edit suffices" in res.message


def test_scan_finds_the_repressive_domain(deepchrome, sample, one_torch_thread):
    row = _silent(deepchrome, sample[1], "broad_H3K27me3", 1)[0]
    res = scan(deepchrome, row, 500)
    assert res.effect.shape == (5, 20)
    k27 = deepchrome.marks.index("H3K27me3")
    assert res.effect[k27].sum() > 0 and res.effect[k27].sum() > np.abs(res.effect[deepchrome.marks.index("H3K4me1")]).sum()


# -------------------------------------------------------------------------------- CLI
def _json_line(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def _cli(*extra: str) -> list[str]:
    return ["perturb", "--model", str(MODELS / "deepchrome"), "--data", str(SAMPLE), *extra]


def test_cli_edit_pair_scan_and_search(sample, tmp_path, capsys, one_torch_thread):
    out = tmp_path / "edit.csv"
    assert main(_cli("--gene", "SIMG2358", "--vs", "SIMG3", "--edit", "H3K27me3:window:remove",
                     "--out", str(out))) == 0
    summary = _json_line(capsys.readouterr().out)
    assert summary["unit"] == "logit of high expression" and summary["score_after"] > summary["score_before"]
    assert summary["p_after"] > summary["p_before"]
    table = pd.read_csv(out)
    assert list(table.columns) == ["gene_id", "symbol", "bin", "bin_start_bp", "mark", "reads_before",
                                   "reads_after", "delta_reads"]
    assert set(table["symbol"]) == {"SIMG2358"}  # the sample's genes carry symbols
    k27 = table[table["mark"] == "H3K27me3"]
    assert (k27["reads_after"] == 0).all() and np.allclose(k27["delta_reads"], -k27["reads_before"])

    assert main(_cli("--gene", "SIMG2358", "--scan", "500", "--out", str(tmp_path / "scan.csv"))) == 0
    summary = _json_line(capsys.readouterr().out)
    assert summary["n_windows"] == 20 and len(pd.read_csv(tmp_path / "scan.csv")) == 100

    assert main(_cli("--gene", "SIMG2358", "--search", "--allow", "H3K4me3,H3K36me3:window:add")) == 0
    summary = _json_line(capsys.readouterr().out)
    assert summary["found"] and summary["score_after"] > 0 > summary["score_before"]


@pytest.mark.parametrize("edit, words", [
    ("H3K27ac:promoter:remove", ["H3K27ac:promoter:remove", "unknown mark", "H3K27me3, H3K36me3"]),
    ("H3K4me3:-6000..0:remove", ["H3K4me3:-6000..0:remove", "outside the window", "-5000..5000"]),
    ("H3K4me3:promoter:set=-2", ["H3K4me3:promoter:set=-2", "negative level"]),
])
def test_cli_bad_edit_is_one_error_line_and_writes_nothing(tmp_path, capsys, edit, words):
    out = tmp_path / "t.csv"
    assert main(_cli("--gene", "SIMG1", "--edit", edit, "--out", str(out))) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: Edit"), err
    for w in words:
        assert w in err[0]
    assert not out.exists() and captured.out == ""


def test_two_cell_model_edits_one_cell(one_torch_thread):
    """DeepDiff predicts log2((B + 1) / (A + 1)): removing H3K27me3 from cell B raises it, from cell A it does not
    raise it as much; the search flips the sign of the predicted change."""
    if not (MODELS / "deepdiff" / "model.safetensors").exists():
        pytest.skip("bundled models not installed")
    from hmviz.checkpoints import load_model
    from hmviz.data import read_dataset
    from hmviz.explain.session import prepare

    model, card = load_model(MODELS / "deepdiff")
    session = prepare(model, card, read_dataset(SAMPLE / "two_cells"))
    edit_b, edit_a = Editor.from_session(session), Editor.from_session(session, session.cells[0])
    assert edit_b.cell == session.cells[1] and "log2 fold change" in edit_b.unit
    row = int(np.argmin(edit_b.all_scores()))
    in_b = edit_b.perturb(row, ["H3K27me3:window:remove"])
    in_a = edit_a.perturb(row, ["H3K27me3:window:remove"])
    assert in_b.score_before == pytest.approx(in_a.score_before)
    assert in_b.delta > 0 and in_b.delta > in_a.delta and in_b.summary()["cell_edited"] == session.cells[1]
    assert scan(edit_b, row, 1000).effect.shape == (5, 10)
    # The gene with the most negative predicted change: activating cell B (the numerator) flips its sign.
    assert in_b.score_before < 0
    res = smallest_edit(edit_b, row, ["H3K4me3,H3K36me3:window:add", "H3K27me3,H3K9me3:window:remove"])
    assert res.found and np.sign(res.result.score_after) != np.sign(res.result.score_before)
    assert "measured" in res.reference
