"""The Gene view and Heatmap pages under AppTest: search by symbol, tracks in the data's units with
a separate attribution track, heatmaps sorted by expression with clusters."""

from __future__ import annotations

import numpy as np
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
    # The reference by its name for people, as on the other pages (not the key train_mean).
    assert "against the Training mean reference" in texts(at.caption)
    assert "reference: Training mean" in spec["layout"]["annotations"][-1]["text"].replace("<br>", " ")
    assert "train_mean" not in texts(at.caption) + str(spec["layout"]["annotations"])


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


def _unnamed_sample():
    """The sample's first 300 genes with Ensembl-style ids and no symbols (as many real tables come)."""
    import dataclasses

    from hmviz.bundled import SAMPLE_DIR
    from hmviz.data import read_dataset
    from hmviz_app.state import DataEntry

    ds = read_dataset(SAMPLE_DIR).subset(slice(0, 300))
    ids = np.asarray([f"ENSG{i:011d}" for i in range(1, 301)], dtype=object)
    ds = dataclasses.replace(ds, gene_ids=ids, symbols=None)
    return DataEntry(f"upload:{ds.fingerprint()}", "my_table.csv", ds, "upload")


def test_data_page_attaches_an_annotation_and_pickers_show_and_find_symbols(app):
    data = _unnamed_sample()
    app.session_state["data"] = data
    at = ok(goto(app, "data"))
    at.toggle(key="names_open").set_value(True).run()
    table = "gene_id,symbol\n" + "\n".join(f"ENSG{i:011d}.4,VERYLONGSYMBOLNAME{i}" for i in range(1, 301))
    at.file_uploader(key=f"names_upload_{data.key}").upload("my_names.csv", table.encode(), "text/csv").run()
    ok(at)
    assert "Attached my_names.csv: 300 of 300 genes have a symbol" in texts(at.success)
    named = at.session_state["data"]
    assert named.fingerprint == data.fingerprint and named.key != data.key  # models still fit; caches see names
    at = ok(goto(at, "gene_pairs"))
    box = next(s for s in at.selectbox if s.label == "Gene A")
    assert all("VERYLONGSYMBOLNAME" in o for o in box.options[:5])
    at = ok(goto(at, "gene_view"))
    at.text_input(key="gv_query").set_value("verylongsymbolname12").run()
    assert next(s for s in at.selectbox if s.label == "Gene").options[0] == "VERYLONGSYMBOLNAME12 (ENSG00000000012)"


def test_data_page_names_the_users_file_when_no_id_matches(app):
    data = _unnamed_sample()
    app.session_state["data"] = data
    at = ok(goto(app, "data"))
    at.toggle(key="names_open").set_value(True).run()
    at.file_uploader(key=f"names_upload_{data.key}").upload("mouse_names.csv", b"gene_id,symbol\nENSMUSG1,Trp53\n",
                                                            "text/csv").run()
    message = texts(at.error)
    assert "mouse_names.csv: none of its gene ids match" in message and "/tmp" not in message
    assert at.session_state["data"].key == data.key


def test_data_page_offers_the_real_example_only_where_its_data_is(app, deepdiff_dir, monkeypatch):
    monkeypatch.setenv("HMVIZ_EXAMPLE_DATA", str(deepdiff_dir))
    at = ok(goto(app, "data"))
    radio = at.radio(key="data_source")
    assert "Real example: 600 REMC genes in K562 and H1" in radio.options
    radio.set_value("real").run()
    assert "600 genes is a small training set" in texts(at.info)
    at.radio(key="real_cells").set_value("K562").run()
    at.button(key="use_real").click().run()
    ok(at)
    data = at.session_state["data"]
    assert data.origin == "real example" and data.dataset.cell == "K562" and data.dataset.symbols[0] == "ZC3H4"
    monkeypatch.setattr("hmviz_app.examples.find_remc_example", lambda: None)
    at = ok(goto(at, "data"))
    assert "Real example: 600 REMC genes in K562 and H1" not in at.radio(key="data_source").options


def test_a_saved_gene_set_is_offered_by_the_heatmap_and_attributions(app):
    from hmviz_app.state import sample_data

    app.session_state["_gene_sets"] = {sample_data().key: {"lasso: 3 genes (SIMG5, ...)": np.asarray([4, 9, 1000])}}
    at = ok(goto(app, "heatmap"))
    scope = at.radio(key="hm_scope")
    assert "Gene set lasso: 3 genes (SIMG5, ...)" in scope.options
    scope.set_value("set:lasso: 3 genes (SIMG5, ...)").run()
    ok(at)
    assert charts(at)[0]["layout"]["title"]["text"].endswith("of 3 genes")
    at = ok(goto(at, "attributions"))
    at.radio(key="attr_scope").set_value("set").run()
    ok(at)
    assert "3 genes of the set lasso: 3 genes (SIMG5, ...)" in texts(at.subheader) + texts(at.markdown)
