"""The Gene view and Heatmap pages under AppTest: search by symbol, tracks in the data's units with
a separate attribution track, heatmaps sorted by expression with clusters."""

from __future__ import annotations

import pytest

pytest.importorskip("streamlit")
from test_app import app, charts, goto, models_dir, ok, texts  # noqa: F401  (fixtures)


def test_gene_view_finds_a_gene_by_symbol_and_draws_signal_and_attribution_tracks(app):
    at = ok(goto(app, "gene_view"))
    at.text_input(key="gv_query").set_value("simg12").run()
    ok(at)
    box = next(s for s in at.selectbox if s.label == "Gene")
    assert box.options[0].startswith("SIMG12 (")
    spec = charts(at)[0]
    titles = [a["text"] for a in spec["layout"]["annotations"]]
    assert any(t.endswith("signal (signal per bin, as in the data file)") for t in titles)
    assert any(": attribution (" in t for t in titles)
    assert "SIMG12" in spec["layout"]["title"]["text"]
    assert "Integrated Gradients" in texts(at.caption)


def test_gene_view_says_when_nothing_matches(app):
    at = ok(goto(app, "gene_view"))
    at.text_input(key="gv_query").set_value("NO_SUCH_GENE_XYZ").run()
    assert "No gene matches 'NO_SUCH_GENE_XYZ'" in texts(at.warning)


def test_heatmap_sorts_by_expression_and_clusters(app):
    at = ok(goto(app, "heatmap"))
    spec = charts(at)[0]
    assert "3,000 genes by measured expression, highest at top" in spec["layout"]["yaxis2"]["title"]["text"]
    at.number_input[0].set_value(3).run()
    ok(at)
    names = [t.get("name", "") for t in charts(at)[0]["data"] if t["type"] == "scatter"]
    assert len([n for n in names if n.startswith("cluster")]) == 3
