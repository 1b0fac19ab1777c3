"""Gene pairs' report and saved view: the caption names everything the figures depend on, and a saved view
reopens only on the page, the data (by content) and with a model it was saved with."""

from __future__ import annotations

import pytest

from hmviz.errors import DataError
from hmviz.views.report import SavedView
from hmviz_app.saved_views import read_view


def _view(**kw) -> bytes:
    base = dict(page="gene_pairs", data_name="Sample data", data_fingerprint="abc123", model="bundled:deepchrome",
                choices={"a": "SIM00012", "b": "SIM00200", "method": "saliency", "baseline": "train_mean"})
    return SavedView(**{**base, **kw}).to_json().encode()


def test_a_saved_view_reopens_on_the_same_page_data_and_model():
    view = read_view(_view(), "my_view.json", "gene_pairs", "Sample data", "abc123", ["bundled:deepchrome"])
    assert view.model == "bundled:deepchrome"
    assert view.choices == {"a": "SIM00012", "b": "SIM00200", "method": "saliency", "baseline": "train_mean"}


@pytest.mark.parametrize(
    ("raw", "fingerprint", "models", "words"),
    [
        (_view(page="heatmap"), "abc123", ["bundled:deepchrome"], "is a view of the heatmap page; open it there"),
        (_view(), "other", ["bundled:deepchrome"], "saved on the data 'Sample data', but the data in use is 'Mine'"),
        (_view(), "abc123", ["bundled:attentivechrome"], "names the model 'bundled:deepchrome', which this app does"),
        (b"{not json", "abc123", [], "is not a saved hmviz view"),
        (b'{"format": "hmviz-view", "version": 1, "page": "gene_pairs", "data_name": "x", "data_fingerprint": "y", '
         b'"choices": {"a": {"__class__": "os.system"}}}', "y", [], "'choices' must map names to plain values"),
    ],
)
def test_a_saved_view_is_refused_with_the_users_file_named(raw, fingerprint, models, words):
    with pytest.raises(DataError) as err:
        read_view(raw, "my_view.json", "gene_pairs", "Mine", fingerprint, models)
    assert str(err.value).startswith("my_view.json: ")
    assert words in str(err.value)


def test_gene_pairs_offers_a_report_and_a_saved_view_and_captions_what_it_shows(models_dir, monkeypatch):
    """The caption under the page names the model and its training data (no server path), the method and
    reference, both genes, the prediction and the measured expression, and hmviz's version."""
    pytest.importorskip("streamlit")
    from streamlit.testing.v1 import AppTest
    from test_app import APP, TIMEOUT, goto, ok, texts

    from hmviz import __version__

    monkeypatch.setenv("HMVIZ_MODELS_DIR", str(models_dir))
    monkeypatch.setenv("HMVIZ_TORCH_THREADS", "1")
    app = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    app.session_state["model"] = "bundled:ranker-deepchrome"
    app.query_params.update({"a": "SIMG12", "b": "SIM00200", "method": "saliency"})
    ok(goto(app, "gene_pairs"))
    buttons = [b.proto.label for b in app.get("download_button")]
    assert "Download a report of this pair (HTML)" in buttons and "Save this view (JSON)" in buttons
    caption = texts(app.caption)
    for words in ("Model: ranker-deepchrome", "(trained on ", "method: Saliency",
                  "genes: SIMG12, SIMG200", "prediction: P(SIMG12 ranked above SIMG200) =", f"hmviz {__version__}"):
        assert words in caption, words
    assert "/" not in caption.split("trained on ")[1].split(")")[0]  # no server path


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory):
    from st_e2e import make_small_models

    return make_small_models(tmp_path_factory.mktemp("models"))
