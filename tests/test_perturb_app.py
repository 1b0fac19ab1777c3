"""The "Edit marks" page under ``streamlit.testing.v1.AppTest`` with the bundled DeepChrome (and its
ranker) on the sample data: the edit moves the prediction shown, the tracks, the scan and the
attribution are drawn, a bad edit is one message and no result, the search reports its edit.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest
from test_app import texts  # noqa: E402  (page text as the reader sees it)

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
MODELS = ROOT / "models"


@pytest.fixture
def page(monkeypatch):
    if not (MODELS / "deepchrome" / "model.safetensors").exists():
        pytest.skip("bundled models not installed")
    monkeypatch.setenv("HMVIZ_MODELS_DIR", str(MODELS))
    monkeypatch.setenv("HMVIZ_TORCH_THREADS", "1")
    at = AppTest.from_file(APP, default_timeout=120).run()
    return at.switch_page("pages/edit_marks.py").run()


def _charts(at) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def _titles(at) -> list[str]:
    return [c["layout"]["title"]["text"] for c in _charts(at)]


def _ok(at):
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def test_edit_scan_and_search(page):
    at = _ok(page)
    assert at.title[0].value == "Edit marks"
    # Default: the lowest-scoring test gene, H3K27me3 removed over the whole window.
    score = at.metric[0]
    assert score.label == "Logit of high expression" and score.delta.startswith("+")
    titles = _titles(at)
    assert any("before and after the edit" in t for t in titles)
    assert any("what each mark adds, by deletion and by attribution" in t for t in titles)
    tracks = next(c for c in _charts(at) if "before and after" in c["layout"]["title"]["text"])
    assert len(tracks["data"]) == 10  # before and after for each of 5 marks
    assert {b.label for b in at.get("download_button")} >= {"Download the edited signal and deltas (CSV)",
                                                            "Download the scan (CSV)"}

    at.selectbox(key="edit_op").set_value("set").run()
    at.selectbox(key="edit_mark").set_value("H3K4me1").run()
    _ok(at)
    assert "H3K4me1:window:set=20" in " ".join(c.value for c in at.caption)

    at.text_area(key="edit_more").set_value("H3K27ac:promoter:remove").run()
    assert not at.exception
    message = texts(at.error)
    assert "Edit 'H3K27ac:promoter:remove': unknown mark 'H3K27ac'" in message and "nothing was changed" in message
    assert not at.metric  # no result shown for a bad edit

    at.text_area(key="edit_more").set_value("").run()
    at.button(key="search_run").click().run()
    _ok(at)
    assert "Found an edit that would make the model call" in at.success[0].value
    assert any("the smallest edit found" in t for t in _titles(at))


def test_ranker_needs_a_second_gene_for_the_search(page):
    at = page
    at.session_state["model"] = "bundled:ranker-deepchrome"
    at.run()
    _ok(at)
    assert at.metric[0].label == "Ranking score"
    assert any("compare with a second gene" in i.value for i in at.info)  # no search without a second gene
    at.toggle(key="edit_compare").set_value(True).run()
    _ok(at)
    assert at.metric[-1].label.startswith("P(") and " above " in at.metric[-1].label
    at.button(key="search_run").click().run()
    _ok(at)
    assert "Found an edit that would rank" in at.success[0].value


def test_two_cell_model_edits_the_chosen_cell(page):
    at = page.switch_page("pages/data.py").run()
    at.radio(key="data_source").set_value("two_cell").run()
    at.button(key="use_two_cell").click().run()
    at = _ok(at.switch_page("pages/edit_marks.py").run())
    assert at.session_state["model"] == "bundled:deepdiff"
    assert at.metric[0].label.startswith("Predicted log2 fold change")
    assert at.radio(key="edit_cell").value == at.radio(key="edit_cell").options[1]  # cell B by default
    assert any("what each mark adds (deletion)" in t for t in _titles(at))
    at.button(key="search_run").click().run()
    _ok(at)
    assert at.success or at.warning  # an edit found, or the message that none suffices
