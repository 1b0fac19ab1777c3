"""Gene pairs and Attributions under AppTest, per method: only words true for that method appear.

Additive methods (Integrated Gradients, DeepLift, GradientShap) say what their values add up to and
show the measured gap; Saliency (local slopes) and Occlusion / mark ablation (effects of removal)
never say "adds up to" or "contribution", on the page text, the sentence, the captions or the charts'
titles and axis titles. The default reference is the training mean, and a second reference can be
shown side by side.
"""

from __future__ import annotations

import json
import re

import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest

from test_app import app, goto, models_dir, ok, texts  # noqa: F401  (fixtures shared with the app tests)

ADDS_UP = re.compile(r"(?<!not )\badds? up to", re.IGNORECASE)


def _chart_words(at: AppTest) -> str:
    words = []

    def walk(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "text" and isinstance(v, str):
                    words.append(v)
                else:
                    walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    for chart in at.get("plotly_chart"):
        walk(json.loads(chart.proto.spec)["layout"])
    return " ".join(words)


def page_words(at: AppTest) -> str:
    """Every sentence, caption, note, heading and chart title or axis title on the page."""
    parts = [texts(group) for group in (at.info, at.caption, at.markdown, at.warning, at.subheader)]
    return " ".join(parts) + " " + _chart_words(at)


@pytest.mark.parametrize("method", ["integrated_gradients", "deeplift", "gradient_shap", "saliency", "occlusion",
                                    "feature_ablation"])
def test_gene_pairs_wording_follows_the_method(app, method):
    app.session_state["model"] = "bundled:ranker-deepchrome"
    ok(goto(app, "gene_pairs"))
    app.selectbox(key="pair_method").set_value(method).run()
    ok(app)
    words = page_words(app)
    additive = method in ("integrated_gradients", "deeplift", "gradient_shap")
    if additive:
        assert ADDS_UP.search(words) and "gap" in words
        assert "contribution (logit)" in words  # the heatmap's colour bar
    else:
        assert not ADDS_UP.search(words), ADDS_UP.findall(words)
        assert "contribution" not in words.lower(), words
        assert "not shares" in words  # the sentence and the bottom panel's caption say what they are
        assert "gap" not in texts(app.info[:1])


def test_gene_pairs_default_reference_and_side_by_side(app):
    app.session_state["model"] = "bundled:ranker-deepchrome"
    ok(goto(app, "gene_pairs"))
    assert app.selectbox(key="pair_baseline").value == "train_mean"
    assert "The default reference is the training genes' mean" in texts(app.caption)
    app.toggle(key="pair_compare").set_value(True).run()
    ok(app)
    assert app.selectbox(key="pair_baseline_2").value == "zeros"
    assert "Reference: Training mean" in texts(app.markdown)
    assert "Reference: No reads" in texts(app.markdown)
    assert len(app.info) >= 2  # one sentence per reference


def test_deepdiff_gene_view_is_in_log2_fold_change(app):
    app.radio(key="data_source").set_value("two_cell").run()
    ok(app.button(key="use_two_cell").click().run())
    ok(goto(app, "gene_pairs"))
    words = _chart_words(app)
    assert "log2 fold change" in words and "(logit)" not in words
    assert "measured expression" not in page_words(app)


@pytest.mark.parametrize("method", ["integrated_gradients", "occlusion", "saliency"])
def test_attributions_wording_follows_the_method(app, method):
    ok(goto(app, "attributions"))
    assert app.selectbox(key="attr_baseline").value == "train_mean"
    app.selectbox(key="attr_method").set_value(method).run()
    ok(app)
    words = page_words(app)
    assert app.info and "The model's output for" in texts(app.info[:1])  # the gene's sentence
    if method == "integrated_gradients":
        assert ADDS_UP.search(words) and "gap" in words and "contribution (logit)" in words
    else:
        assert not ADDS_UP.search(words), ADDS_UP.findall(words)
        assert "contribution" not in words.lower(), words
