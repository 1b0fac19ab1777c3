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


# ------------------------------------------------------------- captions inside every figure, traceable names
def test_export_name_names_page_model_and_genes_in_safe_characters():
    from hmviz.views.report import export_name

    name = export_name("gene-pairs", "ranker-deepchrome #2 (trained here)", "LINC01234-AS1 (ENSG00000141510.5)", "vs",
                       "TP53/../x", "integrated_gradients")
    assert name == ("hmviz_gene-pairs_ranker-deepchrome-2-trained-here_LINC01234-AS1-ENSG00000141510.5_vs_TP53-x_"
                    "integrated-gradients")
    assert len(export_name("heatmap", "x" * 300)) == 120 and export_name("a", "").endswith("_a")


def test_caption_puts_the_data_first_and_leaves_out_what_a_figure_does_not_depend_on():
    from hmviz import __version__
    from hmviz.views.report import figure_caption

    only_data = figure_caption(data="Real example (600 REMC genes, K562)", model=None, trained_on=None,
                               genes=["3 genes (listed)"], measured="H3K4me3 signal per bin, as in the data file")
    assert only_data == ("Data: Real example (600 REMC genes, K562) · genes: 3 genes (listed) · measured: H3K4me3 "
                         f"signal per bin, as in the data file · hmviz {__version__}")
    with_model = figure_caption(data="d", model="m", trained_on="t", method="Saliency", genes=["A"])
    assert with_model.startswith("Data: d · Model: m (trained on t) · method: Saliency · genes: A · hmviz ")


def test_measured_expression_gives_the_value_and_the_label_or_says_not_measured():
    import types

    import numpy as np

    from hmviz_app.captions import measured_expression

    ds = types.SimpleNamespace(expression=np.array([12.3456, np.nan, 0.0, 1020.4]))
    labels = np.array([1, -1, 0, 1])
    assert [measured_expression(ds, labels, r) for r in range(4)] == ["12.3, high", "not measured", "0, low",
                                                                       "1,020, high"]
    assert measured_expression(types.SimpleNamespace(expression=None), None, 0) == "not measured"


def _captioned(at) -> list[tuple[str, str, str]]:
    """(figure title, its caption inside the figure, the camera button's file name) of every chart."""
    import json

    out = []
    for chart in at.get("plotly_chart"):
        spec, config = json.loads(chart.proto.spec), json.loads(chart.proto.config)
        notes = [a["text"] for a in spec["layout"].get("annotations", []) if a.get("name") == "hmviz-caption"]
        title = spec["layout"].get("title", {})
        out.append(((title.get("text", "") if isinstance(title, dict) else str(title)),
                    " ".join(notes).replace("<br>", " "), config["toImageButtonOptions"]["filename"]))
    return out


@pytest.mark.parametrize(("page_name", "setup", "words"), [
    ("gene_pairs", {"a": "SIMG12", "b": "SIM00200", "method": "saliency"},
     ["Model: ranker-deepchrome", "method: Saliency", "SIMG12, SIMG200", "prediction: P(SIMG12 ranked above SIMG200)",
      "measured: SIMG12 "]),
    ("evaluate", {}, ["Model: ranker-deepchrome", "prediction: ranking score, test_pairwise_accuracy = 0.",
                      "measured: "]),
    ("attributions", {}, ["Model: ranker-deepchrome", "method: Integrated Gradients", "reference: ",
                          "prediction: ranking score ", "measured: "]),
    ("heatmap", {}, ["Data: Sample data", "genes: 3,000 genes (all)", "measured expression",
                     "H3K27me3 signal per bin, as in the data file"]),
])
def test_every_figure_of_the_page_carries_its_caption_and_a_traceable_file_name(models_dir, monkeypatch, page_name,
                                                                                setup, words):
    from streamlit.testing.v1 import AppTest
    from test_app import APP, TIMEOUT, goto, ok

    from hmviz import __version__

    monkeypatch.setenv("HMVIZ_MODELS_DIR", str(models_dir))
    monkeypatch.setenv("HMVIZ_TORCH_THREADS", "1")
    app = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    app.session_state["model"] = "bundled:ranker-deepchrome"
    app.session_state["eval_baselines"] = False  # the baselines' table is not a figure; they take seconds to train
    app.session_state["hm_mark"] = "H3K27me3"
    app.query_params.update(setup)
    figures = _captioned(ok(goto(app, page_name)))
    assert len(figures) >= (3 if page_name != "heatmap" else 1)
    for title, caption, file_name in figures:
        assert f"hmviz {__version__}" in caption, title
        for part in words:
            assert part.replace(" ", "") in caption.replace(" ", ""), (title, part, caption)  # wrapped at spaces
        assert file_name.startswith(f"hmviz_{page_name.replace('_', '-')}_"), file_name
        assert page_name == "heatmap" or "ranker-deepchrome" in file_name, file_name


# ------------------------------------------------------------- saved views of the Gene view and the Heatmap
def _sample_view(page: str, model=None, **choices) -> bytes:
    from hmviz_app.state import sample_data

    data = sample_data()
    return SavedView(page=page, data_name=data.name, data_fingerprint=data.fingerprint, model=model,
                     choices=choices).to_json().encode()


def _app(models_dir, monkeypatch):
    from streamlit.testing.v1 import AppTest
    from test_app import APP, TIMEOUT

    monkeypatch.setenv("HMVIZ_MODELS_DIR", str(models_dir))
    monkeypatch.setenv("HMVIZ_TORCH_THREADS", "1")
    return AppTest.from_file(APP, default_timeout=TIMEOUT).run()


def test_a_saved_gene_view_reopens_the_two_genes_and_the_model(models_dir, monkeypatch):
    from test_app import goto, ok, texts

    at = ok(goto(_app(models_dir, monkeypatch), "gene_view"))
    assert "Save this view (JSON)" in [b.proto.label for b in at.get("download_button")]
    raw = _sample_view("gene_view", "bundled:deepchrome", gene="SIM00012", gene_b="SIM00200", attribution=False)
    at.file_uploader(key="gv_view_upload").upload("my_view.json", raw, "application/json").run()
    ok(at)
    assert at.session_state["model"] == "bundled:deepchrome"
    assert next(s for s in at.selectbox if s.label == "Gene").value == 11  # SIM00012, dataset row 11
    assert next(s for s in at.selectbox if s.label == "Second gene").value == 199
    assert at.text_input(key="gv_query_b").value == "SIM00200"
    assert not at.toggle(key="gv_att").value
    assert "genes:SIMG12(SIM00012),SIMG200(SIM00200)" in _captioned(at)[0][1].replace(" ", "")
    at.file_uploader(key="gv_view_upload").upload("pairs.json", _sample_view("gene_pairs", a="SIM00012"),
                                                  "application/json").run()
    assert "pairs.json: is a view of the gene pairs page; open it there." in texts(at.error)


def test_a_saved_heatmap_view_reopens_mark_order_clusters_and_genes_and_refuses_other_data(models_dir, monkeypatch):
    from test_app import charts, goto, ok, texts

    at = ok(goto(_app(models_dir, monkeypatch), "heatmap"))
    assert "Save this view (JSON)" in [b.proto.label for b in at.get("download_button")]
    raw = _sample_view("heatmap", mark="H3K36me3", show="signal", sort="signal", clusters=2, scope="all",
                       genes="SIMG5 SIMG9 SIMG1000")
    at.file_uploader(key="hm_view_upload").upload("hm.json", raw, "application/json").run()
    ok(at)
    assert at.selectbox(key="hm_mark").value == "H3K36me3" and at.selectbox(key="hm_sort").value == "signal"
    assert at.number_input(key="hm_k").value == 2
    assert charts(at)[0]["layout"]["title"]["text"] == "H3K36me3 signal of 3 genes"
    other = SavedView(page="heatmap", data_name="My H1 table", data_fingerprint="0123abcd").to_json().encode()
    at.file_uploader(key="hm_view_upload").upload("theirs.json", other, "application/json").run()
    assert "theirs.json: This view was saved on the data 'My H1 table'" in texts(at.error)
    assert at.selectbox(key="hm_mark").value == "H3K36me3"  # nothing changed


def test_a_caption_starts_below_the_axis_labels_and_keeps_the_plot_area():
    import plotly.graph_objects as go

    from hmviz.views.report import axis_room, with_caption

    regions = ["upstream (-5 kb to -1 kb)", "downstream (+1 kb to +5 kb)"]  # 27 characters, may turn by 90 degrees
    bars = go.Figure(go.Bar(x=regions, y=[1, 2]), layout={"height": 300, "margin": {"t": 40, "b": 60},
                                                          "xaxis": {"title": {"text": "Region<br>relative to the TSS"}}})
    assert axis_room(bars) == 50 + 6 * 27 + 2 * 18
    with_caption(bars, "Model: m · " + "word " * 30, width_chars=42)
    note = next(a for a in bars.layout.annotations if a.name == "hmviz-caption")
    lines = note.text.count("<br>") + 1
    assert note.yshift == -axis_room(bars) and bars.layout.margin.b == axis_room(bars) + 14 * lines + 10
    assert bars.layout.height - bars.layout.margin.t - bars.layout.margin.b == 300 - 40 - 60  # plot area kept
    tall = go.Figure(go.Scatter(x=[0.0, 1.0], y=[1, 2]), layout={"margin": {"b": 150}})
    assert axis_room(tall) == 40 and with_caption(tall, "c").layout.annotations[0].yshift == -150  # its own margin
    plain = with_caption(go.Figure(go.Scatter(x=[0.0, 1.0], y=[1, 2])), "c")  # plotly's defaults: 450 px, 80 below
    assert plain.layout.height - plain.layout.margin.b == 450 - 80
