"""The Streamlit app under ``streamlit.testing.v1.AppTest``: every page runs, widgets work, uploads
(good and bad) and a built table do the right thing, training runs in the background and lists its model.

AppTest runs the app in this process without a browser (no JavaScript, plotly figures are not drawn:
only their JSON exists); ``tests/test_browser.py`` covers the real browser. Small models of every
family are trained once (about 10 s) into a temporary models folder (``HMVIZ_MODELS_DIR``), so these
tests do not depend on the bundled models in ``models/``.
"""

from __future__ import annotations

import json
import re
import string
import time
from pathlib import Path

import numpy as np
import pytest
from st_e2e import make_small_models, without_baselines

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
APP = str(ROOT / "app.py")
PAGES = ["data", "train", "evaluate", "gene_pairs", "attributions", "attention", "ablation"]
TIMEOUT = 60


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory) -> Path:
    return make_small_models(tmp_path_factory.mktemp("models"))


@pytest.fixture
def app(models_dir, monkeypatch) -> AppTest:
    monkeypatch.setenv("HMVIZ_MODELS_DIR", str(models_dir))
    monkeypatch.setenv("HMVIZ_TORCH_THREADS", "1")
    return without_baselines(AppTest.from_file(APP, default_timeout=TIMEOUT).run())


def ok(at: AppTest) -> AppTest:
    """No exception and no error message on the page."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def goto(at: AppTest, page: str) -> AppTest:
    return at.switch_page(f"pages/{page}.py").run()


def charts(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def texts(elements) -> str:
    """The elements' text as the reader sees it (user text is Markdown-escaped: escapes removed)."""
    return " ".join(re.sub("\\\\([" + re.escape(string.punctuation) + "])", r"\1", str(e.value)).replace("\u2060", "") for e in elements)


# ------------------------------------------------------------------------------ pages
def test_first_start_without_models(tmp_path, monkeypatch):
    """No bundled models and nothing trained: every page still runs and says what to do."""
    monkeypatch.setenv("HMVIZ_MODELS_DIR", str(tmp_path / "empty"))
    at = ok(AppTest.from_file(APP, default_timeout=TIMEOUT).run())
    assert at.title[0].value == "Data"
    assert "No model yet" in texts(at.sidebar.info)
    for page in PAGES[1:]:
        ok(goto(at, page))
    for page in ("evaluate", "gene_pairs", "attributions", "attention"):
        assert "No model yet" in texts(goto(at, page).info), page


def test_every_page_with_each_model(app):
    """Each page with a classifier, an attention model and a ranker on the sample data."""
    ok(app)
    assert app.session_state["model"] == "bundled:deepchrome"  # the first model that fits the sample
    assert len(charts(app)) == 1  # the mean mark profiles, high vs low
    for model in ("bundled:deepchrome", "bundled:attentivechrome", "bundled:ranker-deepchrome"):
        app.session_state["model"] = model
        for page in PAGES[1:]:
            ok(goto(app, page))
        assert "above" in texts(goto(app, "gene_pairs").info)  # the sentence
        assert len(charts(app)) == 3  # pair heatmaps, marks, regions
    goto(app, "attention")
    info = texts(app.info)
    assert "ranker-deepchrome has no attention weights" in info  # the ranker on deepchrome has none
    assert "Attributions page" in info and "integrated_gradients" not in info  # the app's words, not the API's
    assert not app.selectbox  # nothing to pick before an attention model is chosen
    app.session_state["model"] = "bundled:attentivechrome"
    goto(app, "attention")
    assert len(charts(app)) >= 5  # alpha, beta, attribution, per-class alpha x2, per-class beta
    title = next(c["layout"]["title"]["text"] for c in charts(app)
                 if "contributions to the output" in c["layout"]["title"]["text"])
    assert "reference: Training mean" in title.replace("<br>", " ")
    assert max(len(line) for line in title.split("<br>")) <= 34  # fits its 340-px column at 1024 px


def _small_aux_deepdiff(dataset, tmp_path):
    from hmviz.checkpoints import save_model
    from hmviz.options import TrainOptions
    from hmviz.training import train
    from hmviz_app.state import ModelEntry

    options = TrainOptions(model="deepdiff", epochs=1, seed=1, model_overrides={
        "variant": "aux", "bin_hidden": 4, "mark_hidden": 2, "joint_hidden": 4})
    result = train(dataset, options)
    path = save_model(result.model, result.card, tmp_path / "aux")
    return ModelEntry("session:aux", "deepdiff aux", Path(path), result.model_card, False)


def test_two_cell_sample_and_deepdiff(app, tmp_path):
    app.radio(key="data_source").set_value("two_cell").run()
    ok(app.button(key="use_two_cell").click().run())
    assert app.session_state["data"].multi_cell
    assert app.session_state["model"] == "bundled:deepdiff"  # the model in use follows the data when it must
    for page in PAGES[1:]:
        ok(goto(app, page))
    assert "predicts" in texts(goto(app, "gene_pairs").info)
    # Evaluate: the interval is of DeepDiff's main metric (R², on its scale), beside it
    table = goto(app, "evaluate").dataframe[0].value
    columns = list(table.columns)
    assert columns[columns.index("test_r2") + 1] == "test_r2 95% CI"
    low, high = (float(v) for v in table["test_r2 95% CI"].iloc[0].split(" to "))
    assert low < table["test_r2"].iloc[0] < high
    # the scatter: measured log2 fold change (not "expression"), and the table's Spearman r, not a second one
    scatter = charts(app)[0]["layout"]
    rho = table["test_spearman_r"].iloc[0]
    assert scatter["title"]["text"].startswith(f"Predicted vs measured log2 fold change (Spearman r = {rho:.3f}, ")
    assert scatter["xaxis"]["title"]["text"] == "measured log2 fold change (synthetic-B over synthetic)"
    # ... over the genes of the metrics: this small model trained on 900 of the 1,000 genes, so they are its
    # test genes and the genes it never saw (not the data file's test split)
    evaluated = int(re.search(r"([\d,]+) genes evaluated", texts(app.caption)).group(1).replace(",", ""))
    assert evaluated == 227 and scatter["title"]["text"].endswith(f", {evaluated} genes)")
    assert "227 genes shown." in texts(app.caption)  # the per-gene table lists the same genes
    per_gene = app.dataframe[-1].value
    assert {"expression (synthetic)", "expression (synthetic-B)", "measured_log2fc"} <= set(per_gene.columns)
    row = per_gene.iloc[0]  # the measured change is that of these two columns
    assert row["measured_log2fc"] == pytest.approx(np.log2((row["expression (synthetic-B)"] + 1)
                                                           / (row["expression (synthetic)"] + 1)))
    assert app.selectbox(key="eval_scope").format_func("test") == "evaluated (227)"
    # the bundled DeepDiff (raw_d, the default) attends over the difference B - A: one alpha, one beta
    titles = [c["layout"]["title"]["text"] for c in charts(goto(app, "attention"))]
    assert len(titles) == 2 and all("minus" in t for t in titles), titles
    assert "difference of the two cells' marks" in texts(app.caption)
    app.session_state["models"] = {"session:aux": _small_aux_deepdiff(app.session_state["data"].dataset, tmp_path)}
    app.session_state["model"] = "session:aux"  # the paper's variant: each cell encoded on its own
    assert len(charts(goto(app, "attention"))) == 4  # alpha and beta per cell
    assert "shown per cell" in texts(app.caption)
    app.session_state["model"] = "bundled:deepchrome"  # a one-cell model on two cells: a clear message
    goto(app, "gene_pairs")
    assert "one cell type" in texts(app.error) and not app.exception


# ----------------------------------------------------------------------------- uploads
def _long_csv(path: Path, genes: int = 120) -> Path:
    from hmviz.bundled import SAMPLE_DIR
    from hmviz.data import read_dataset, write_long

    ds = read_dataset(SAMPLE_DIR).subset(np.arange(genes))
    return write_long(ds, path)


def test_upload_good_then_bad_keeps_the_good(app, tmp_path):
    app.radio(key="data_source").set_value("upload").run()
    good = _long_csv(tmp_path / "my_genes.csv")
    app.file_uploader(key="upload_tables").upload("my_genes.csv", good.read_bytes(), "text/csv").run()
    ok(app.button(key="load_upload").click().run())
    assert "Loaded" in texts(app.success)
    assert app.session_state["data"].name == "Upload: my_genes.csv"
    assert app.session_state["data"].first.n_genes == 120
    assert len(charts(app)) == 1

    bad = b"gene_id,bin,H3K4me3\nG1,0,abc\nG1,1,2\n"
    app.file_uploader(key="upload_tables").upload("broken.csv", bad, "text/csv").run()
    app.button(key="load_upload").click().run()
    assert not app.exception
    message = texts(app.error)
    assert "broken.csv line 2: H3K4me3 is 'abc', which is not a number" in message  # the library's message
    assert "/tmp" not in message and "hmviz-session" not in message  # generated paths never shown
    assert "Upload: my_genes.csv is still loaded" in message
    assert app.session_state["data"].name == "Upload: my_genes.csv"
    goto(app, "evaluate")  # the model is evaluated on the uploaded genes
    ok(app)


def test_upload_splits_and_expression_by_role(app, tmp_path):
    """train/valid/test files plus an expression table: roles from the names, changeable in the UI."""
    from hmviz.bundled import SAMPLE_DIR
    from hmviz.data import read_dataset, write_long

    ds = read_dataset(SAMPLE_DIR).subset(np.arange(90))
    ds.expression, ds.labels, ds.split = None, None, None
    app.radio(key="data_source").set_value("upload").run()
    uploads = app.file_uploader(key="upload_tables")
    for k, name in enumerate(("train", "valid", "test")):
        path = write_long(ds.subset(np.arange(30 * k, 30 * k + 30)), tmp_path / f"K562.{name}.csv.gz")
        uploads.upload(path.name, path.read_bytes(), "application/gzip")
    expr = "gene_id\texpression\n" + "".join(f"{g}\t{k}\n" for k, g in enumerate(ds.gene_ids))
    uploads.upload("expression.tsv", expr.encode(), "text/tab-separated-values")
    app.run()
    roles = {s.key.split("_", 1)[0]: s.value for s in app.selectbox if s.key and s.key.startswith("role_")}
    assert sorted(s.value for s in app.selectbox if s.key and s.key.startswith("role_")) == \
        ["expression", "test", "train", "valid"], roles
    ok(app.button(key="load_upload").click().run())
    data = app.session_state["data"].dataset
    assert data.n_genes == 90 and data.expression is not None
    assert sorted(set(data.split)) == ["test", "train", "valid"]


def test_upload_with_a_suffix_hmviz_does_not_read(app):
    """The browser only offers table suffixes; a gzipped file of another kind is refused by name."""
    app.radio(key="data_source").set_value("upload").run()
    app.file_uploader(key="upload_tables").upload("reads.bam.gz", b"\x1f\x8b\x08\x00", "application/gzip").run()
    app.button(key="load_upload").click().run()
    assert "reads.bam.gz: hmviz cannot read this kind of file as a histone table;" in texts(app.error)
    assert not app.exception and "data" not in app.session_state  # still the sample data


def _tracks(tmp_path: Path) -> tuple[bytes, bytes, bytes]:
    bedgraph = "".join(f"chr1\t{s}\t{s + 100}\t{v}\n" for s, v in ((800, 1), (900, 2), (1000, 3), (1100, 4)))
    genes = "chr1\t1000\t3000\tGENE1\t0\t+\nchr1\t2000\t2600\tGENE2\t0\t-\n"
    coarse = "".join(f"chr1\t{s}\t{s + 10_000}\t{k}\n" for k, s in enumerate(range(0, 30_000, 10_000)))
    return bedgraph.encode(), genes.encode(), coarse.encode()


def test_build_table_from_tracks(app, tmp_path):
    bedgraph, genes, coarse = _tracks(tmp_path)
    app.radio(key="data_source").set_value("build").run()
    app.file_uploader(key="build_tracks").upload("sample_H3K4me3.bedGraph", bedgraph, "text/plain").run()
    assert [t.value for t in app.text_input if t.key and t.key.startswith("mark_")] == ["H3K4me3"]
    app.file_uploader(key="build_genes").upload("genes.bed", genes, "text/plain")
    app.number_input(key="build_flank").set_value(200)
    ok(app.run())
    ok(app.button(key="build_table").click().run())
    entry = app.session_state["data"]
    assert entry.origin == "build" and entry.first.n_genes == 2 and entry.first.n_bins == 4
    np.testing.assert_allclose(entry.first.signal[0, :, 0], [100, 200, 300, 400])  # sum over each 100-bp bin
    assert "built 2 of 2 genes" in entry.report and "sample_H3K4me3.bedGraph" in entry.report

    # a 10-kb bedGraph cannot give 100-bp bins: the library's error, the built table stays
    tracks = app.file_uploader(key="build_tracks")
    tracks.upload("sample_H3K4me3.bedGraph", bedgraph, "text/plain")
    tracks.upload("coarse_H3K27me3.bedGraph", coarse, "text/plain")
    app.run()
    assert [t.value for t in app.text_input if t.key and t.key.startswith("mark_")] == ["H3K4me3", "H3K27me3"]
    app.button(key="build_table").click().run()
    message = texts(app.error)
    assert "coarse_H3K27me3.bedGraph): its values change only on a 10000-bp grid" in message and not app.exception
    assert "Bin size" in message  # the CLI's flag names are translated to the fields of the page
    assert app.session_state["data"].key == entry.key


# ------------------------------------------------------------------------------ training
def test_compare_models_on_the_same_test_genes(app):
    """Train page, Compare models: the first model against each other on the same test genes of the data in
    use; the difference is that of their test AUROCs (the bundled models share the sample's file split), and
    models trained for another target are not compared gene by gene."""
    goto(app, "train")
    app.multiselect(key="compare_models").set_value(
        ["bundled:deepchrome", "bundled:attentivechrome", "bundled:ranker-deepchrome"]).run()
    ok(app)
    table = next(d.value for d in app.dataframe if "model" in d.value.columns).set_index("model")
    words = texts(app.caption)
    sentence = next(p for p in words.split("On the ")[1:] if "that of attentivechrome (bundled)" in p)
    diff = table.loc["deepchrome (bundled)", "test_auroc"] - table.loc["attentivechrome (bundled)", "test_auroc"]
    assert sentence.startswith("450 test genes both were scored on, the test AUROC of deepchrome (bundled) is "
                               f"{abs(diff):.3f} {'above' if diff > 0 else 'below'} that of attentivechrome (bundled);")
    assert "deepchrome (bundled) and ranker-deepchrome (bundled) were trained for different targets" in words
    assert "deepchrome (bundled) against the others, on the same test genes of" in texts(app.markdown)


def test_train_in_background_then_rename_compare_delete(app):
    goto(app, "train")
    app.selectbox(key="train_family").set_value("deepchrome").run()
    app.number_input(key="train_epochs_deepchrome").set_value(1)
    next(m for m in app.multiselect if m.label == "Marks").set_value(["H3K4me3", "H3K36me3"])
    ok(app.button(key="train_start").click().run())
    deadline = time.monotonic() + 90
    while not app.session_state["models"] and time.monotonic() < deadline:
        time.sleep(0.5)
        app.run()
    ok(app.run())  # the job may have finished during the last run, after its panel was drawn
    (key, entry), = app.session_state["models"].items()
    assert app.session_state["model"] == key  # the new model is the one in use
    assert entry.card.marks == ("H3K4me3", "H3K36me3") and entry.path.is_dir()
    assert "Training finished" in texts(app.success)
    assert re.search(r"test AUROC = 0\.\d{3} on \d+ test genes", texts(app.success))  # the metric's name, not its key
    app.selectbox(key="manage_model").set_value(key).run()
    app.text_input(key=f"rename_{key}").set_value("two marks").run()
    ok(app.button(key="rename_model").click().run())
    assert app.session_state["models"][key].name == "two marks"
    app.multiselect(key="compare_models").set_value(["bundled:deepchrome", key]).run()
    ok(app)
    ok(goto(app, "gene_pairs"))  # explained by the new model (two marks)
    assert "two marks" in texts(app.caption)
    goto(app, "train")
    app.selectbox(key="manage_model").set_value(key).run()
    ok(app.button(key="delete_model").click().run())
    assert not app.session_state["models"] and not entry.path.exists()


def _ten_bins():
    """240 generated genes with their 100 bins summed into 10 (as a genome-wide set in 10-kb bins), as the app's data."""
    from hmviz.data.synthetic import make_sample_dataset
    from hmviz_app.state import DataEntry

    ds, _ = make_sample_dataset(n_genes=240, seed=5)
    return DataEntry("ten-bins", "ten.csv", ds.merge_bins(10), "upload")


def test_train_a_ten_bin_table_with_model_settings(app):
    """A table of 10 bins per gene (a genome-wide set in 10-kb bins): the Train page opens, says DeepChrome's
    default kernel and pool do not fit and what to write in Model settings; with them it trains, and the card
    records them. A setting with its own control, or an unknown one, is refused before training."""
    app.session_state["data"] = _ten_bins()
    goto(app, "train")
    assert not app.exception
    app.selectbox(key="train_family").set_value("deepchrome").run()
    warning = texts(app.warning)
    assert "needs at least 14 bins per gene; this data has 10" in warning
    assert "kernel_size=3 and pool_size=2 on two lines of Model settings" in warning
    assert app.button(key="train_start").disabled
    settings = app.text_area(key="train_settings_deepchrome")
    settings.set_value("lr=0.01").run()
    assert "lr has its own control on this page: set it with Learning rate" in texts(app.warning)
    settings.set_value("kernal_size=3").run()
    assert "deepchrome has no setting 'kernal_size'. Did you mean 'kernel_size'?" in texts(app.warning)
    settings.set_value("kernel_size=3\npool_size=2\nn_filters=2000000").run()  # refused on the page, before any job
    assert "Model settings: the deepchrome model has 5,032,079,001 parameters, more than hmviz's limit of 50,000,000" \
        in texts(app.warning) and app.button(key="train_start").disabled
    settings.set_value("kernel_size=3\npool_size=2\n").run()
    assert not app.warning and not app.button(key="train_start").disabled
    app.number_input(key="train_epochs_deepchrome").set_value(1)
    ok(app.button(key="train_start").click().run())
    deadline = time.monotonic() + 90
    while not app.session_state["models"] and time.monotonic() < deadline:
        time.sleep(0.5)
        app.run()
    (key, entry), = app.session_state["models"].items()
    assert (entry.card.n_bins, entry.card.config["kernel_size"], entry.card.config["pool_size"]) == (10, 3, 2)


def test_cancel_training(app):
    goto(app, "train")
    app.selectbox(key="train_family").set_value("ranker-deepchrome").run()
    app.number_input(key="train_epochs_ranker-deepchrome").set_value(50).run()
    app.button(key="train_start").click().run()
    job = app.session_state["jobs"]["train"]
    app.button(key="train_cancel").click().run()
    job_deadline = time.monotonic() + 60
    while job.running and time.monotonic() < job_deadline:
        time.sleep(0.2)
    app.run()
    assert job.status == "cancelled" and "cancelled" in texts(app.warning)
    assert not app.session_state["models"]


# ---------------------------------------------------------------------------- explanations
def test_gene_pairs_from_the_url_suggestions_and_swap(app):
    app.session_state["model"] = "bundled:ranker-deepchrome"
    app.query_params.update({"a": "SIMG12", "b": "SIM00200", "method": "saliency"})
    ok(goto(app, "gene_pairs"))
    assert (app.selectbox(key="pair_a").value, app.selectbox(key="pair_b").value) == (11, 199)
    assert app.selectbox(key="pair_method").value == "saliency"
    assert app.query_params["a"] == "SIM00012" and app.query_params["b"] == "SIM00200"
    assert app.metric[0].label.replace("\\", "") == "P(SIMG12 ranked above SIMG200)"  # shown as text

    app.toggle(key="pair_show_inputs").set_value(True).run()
    assert len(charts(app)) == 5  # and the two genes' inputs
    ok(app.button(key="pair_swap").click().run())
    assert (app.selectbox(key="pair_a").value, app.selectbox(key="pair_b").value) == (199, 11)
    assert app.query_params["a"] == "SIM00200"

    suggestions = app.selectbox(key="pair_suggestion")
    assert any(o.startswith("Surprisingly ranked") for o in suggestions.options)
    surprising = next(i for i, o in enumerate(suggestions.options) if o.startswith("Surprisingly ranked"))
    suggestions.set_value(surprising).run()
    ok(app.button(key="pair_take").click().run())
    assert "model disagrees" in [m.proto.delta for m in app.metric][-1]

    app.query_params.update({"a": "SIMG12X", "b": "SIMG13"})
    app.run()
    assert "Gene 'SIMG12X' is not in the dataset" in texts(app.error) and "Closest matches" in texts(app.error)
    assert not app.exception


def test_attributions_one_gene_sets_and_list(app, tmp_path):
    ok(goto(app, "attributions"))
    assert len(charts(app)) == 3
    app.radio(key="attr_scope").set_value("low").run()
    app.slider(key="attr_limit_False").set_value(30).run()
    ok(app.button(key="attr_run").click().run())
    assert "30 low genes" in texts(app.subheader)
    app.radio(key="attr_scope").set_value("list").run()
    app.file_uploader(key="attr_list").upload("genes.txt", b"gene_id\nSIMG1\nSIM00002\nNOPE1\n", "text/plain")
    ok(app.run())
    assert "1 of 3 genes are not in the dataset" in texts(app.warning)
    assert "2 listed genes" in texts(app.subheader)
    app.selectbox(key="attr_method").set_value("occlusion").run()
    ok(app)


def test_evaluate_search_and_ablation(app):
    app.session_state["eval_baselines"] = True
    ok(goto(app, "evaluate"))
    # in a job shared by every session (an earlier test of this process may have started it): the page does not wait
    deadline = time.monotonic() + TIMEOUT
    while "boosted-trees" not in set(app.dataframe[0].value["model"]) and time.monotonic() < deadline:
        assert "The baselines are being trained" in texts(app.caption)
        time.sleep(0.5)
        ok(app.run())
    metrics = app.dataframe[0].value
    assert {"logistic", "boosted-trees"} <= set(metrics["model"])
    assert not metrics["model"].str.contains("published").any()  # REMC numbers are not for the synthetic sample
    assert " to " in metrics["test_auroc 95% CI"].iloc[0]
    # each baseline beside this model on the same test genes: the difference is that of the two rows' test AUROCs
    versus = metrics.set_index("model")["this model minus baseline, test_auroc (95% CI)"]
    auroc = metrics.set_index("model")["test_auroc"]
    model = metrics["model"].iloc[0]
    assert versus[model] == ""
    for baseline, words in (("logistic", "logistic regression"), ("boosted-trees", "boosted trees")):
        diff, low, high = (float(v) for v in re.fullmatch(r"(\S+) \((\S+) to (\S+)\)", versus[baseline]).groups())
        assert low <= diff <= high and diff == pytest.approx(auroc[model] - auroc[baseline], abs=1e-3)
        evaluated = re.search(r"([\d,]+) genes evaluated", texts(app.caption)).group(1)
        sentence = next(part for part in texts(app.caption).split("On the ")[1:] if f"{words};" in part)
        assert sentence.startswith(f"{evaluated} test genes both were scored on, ")
        assert (f"the test AUROC of {model} is {abs(diff):.3f} {'above' if diff > 0 else 'below'} that of {words};"
                in sentence if diff != 0 else f"{model} and {words} have the same test AUROC" in sentence)
        assert f"runs from {low:+.3f} to {high:+.3f}" in sentence
    app.text_input(key="eval_search").set_value("simg12").run()
    assert set(app.dataframe[1].value["symbol"]).issubset({"SIMG12", "SIMG120", "SIMG121", "SIMG122", "SIMG123",
                                                           "SIMG124", "SIMG125", "SIMG126", "SIMG127", "SIMG128",
                                                           "SIMG129", *{f"SIMG12{k:02d}" for k in range(100)}})

    ok(goto(app, "ablation"))
    ok(app.button(key="abl_mask_run").click().run())
    assert "Smallest subset within 0.01" in texts(app.success)
    table = app.dataframe[0].value
    assert len(table) == 6 and "(none)" in set(table["masked_marks"])
    app.slider(key="abl_margin_ablation_mask_deepchrome").set_value(0.1).run()
    ok(app)

    published = b"histone_marker,test_accuracy,val_accuracy_avg\nA-B,70.0,70\nA,69.5,69\nB,60,60\n"
    app.radio(key="abl_mode").set_value("load").run()
    app.file_uploader(key="abl_upload").upload("pairwise.csv", published, "text/csv").run()
    ok(app)
    assert "**A** (1 mark" in texts(app.success)


def test_evaluate_a_ranker_against_its_baselines_on_its_own_metric(app):
    """A ranker is compared on the concordance index (its pairwise accuracy over every comparable pair),
    and the column says so. This small ranker was trained on 900 of the sample's genes: on all 3,000 it is
    evaluated on the genes it never trained or validated on, and the baselines on a split of the 3,000 (the
    rows say so); they are compared on the test genes both were scored on only, fewer than the model's row."""
    app.session_state["eval_baselines"] = True
    app.session_state["model"] = "bundled:ranker-deepchrome"
    ok(goto(app, "evaluate"))
    deadline = time.monotonic() + TIMEOUT
    while "boosted-trees" not in set(app.dataframe[0].value["model"]) and time.monotonic() < deadline:
        time.sleep(0.5)
        ok(app.run())
    table = app.dataframe[0].value.set_index("model")
    model = table.index[0]
    column = "this model minus baseline, test_concordance_index (95% CI)"
    assert set(table.index[1:3]) == {"ridge", "boosted-trees"} and table.loc[model, column] == ""
    assert table.loc["ridge", "source"].endswith("(not the model's data)")
    # the main metric, then the metric its interval and differences are of, beside them
    assert list(table.columns[:4]) == ["test_pairwise_accuracy", "test_concordance_index",
                                       "test_concordance_index 95% CI", column]
    words = texts(app.caption)
    evaluated = int(re.search(r"([\d,]+) genes evaluated", words).group(1).replace(",", ""))
    for baseline, name in (("ridge", "ridge regression"), ("boosted-trees", "boosted trees")):
        diff, low, high = (float(v) for v in re.fullmatch(r"(\S+) \((\S+) to (\S+)\)", table.loc[baseline, column]).groups())
        assert low <= diff <= high
        sentence = next(p for p in words.split("On the ")[1:] if f"that of {name};" in p)
        shared = int(sentence.split(" ")[0].replace(",", ""))
        assert 0 < shared <= 450 < evaluated  # at most the baselines' 450 test genes: fewer than the model's row
        assert f"the test concordance index of {model} is {abs(diff):.3f}" in sentence


def test_evaluate_a_ranker_on_labels_only_names_the_auroc(app):
    """Data with labels but no expression: a ranker's pairwise accuracy is then the AUROC, and every interval,
    difference and sentence says AUROC (not a concordance index over 0/1 labels); its linear baseline is
    logistic regression, and the toggle says so."""
    import dataclasses

    from hmviz.bundled import SAMPLE_DIR
    from hmviz.data import read_dataset
    from hmviz_app.state import DataEntry

    ds = read_dataset(SAMPLE_DIR)
    app.session_state["data"] = DataEntry("upload:labels-only", "labels.csv", dataclasses.replace(ds, expression=None), "upload")
    app.session_state["eval_baselines"] = True
    app.session_state["model"] = "bundled:ranker-deepchrome"
    ok(goto(app, "evaluate"))
    assert app.toggle[0].label.startswith("Compare with baselines (logistic regression, boosted trees)")
    deadline = time.monotonic() + TIMEOUT
    while "boosted-trees" not in set(app.dataframe[0].value["model"]) and time.monotonic() < deadline:
        time.sleep(0.5)
        ok(app.run())
    columns = list(app.dataframe[0].value.columns)
    assert "test_auroc 95% CI" in columns and "this model minus baseline, test_auroc (95% CI)" in columns
    assert not [c for c in columns if "concordance" in c and "CI" in c]
    words = texts(app.caption)
    assert "the test AUROC of ranker-deepchrome (bundled) is" in words and "concordance index of" not in words


def test_evaluate_baselines_that_failed_can_be_trained_again(app):
    """A failed baselines job stays failed for every session (it would most likely fail again), with its
    message and a button that starts it again (the cause may have passed: a process killed for memory)."""
    from hmviz_app import jobs

    app.session_state["eval_baselines"] = True
    ok(goto(app, "evaluate"))
    key, job = next((k, j) for k, j in jobs._shared.items() if k[0] == "baselines")
    deadline = time.monotonic() + TIMEOUT
    while job.running and time.monotonic() < deadline:
        time.sleep(0.5)
    job.status, job.error = "failed", "its process ended unexpectedly (killed by signal 9)"
    app.run()
    assert not app.exception
    assert "The baselines could not be trained: its process ended unexpectedly (killed by signal 9)" in texts(app.error)
    assert jobs._shared[key] is job  # kept: another visit does not start it again
    app.button(key="eval_baselines_retry").click().run()
    again = jobs._shared[key]
    assert again is not job and again.status in ("queued", "running", "done")
    assert not [e for e in app.error if "could not be trained" in e.value]
    deadline = time.monotonic() + TIMEOUT
    while "boosted-trees" not in set(app.dataframe[0].value["model"]) and time.monotonic() < deadline:
        time.sleep(0.5)
        ok(app.run())
    assert {"logistic", "boosted-trees"} <= set(app.dataframe[0].value["model"])


def test_bad_model_folder_is_skipped(tmp_path, monkeypatch, models_dir):
    """A bundled folder with a broken card is left out, not a crash."""
    import shutil

    bad = tmp_path / "models"
    shutil.copytree(models_dir / "deepchrome", bad / "deepchrome")
    (bad / "broken").mkdir()
    (bad / "broken" / "model_card.json").write_text("{not json")
    monkeypatch.setenv("HMVIZ_MODELS_DIR", str(bad))
    at = ok(AppTest.from_file(APP, default_timeout=TIMEOUT).run())
    assert at.selectbox(key="model_select").options == ["deepchrome (bundled)"]


def test_model_download_is_the_model_folder_zipped(models_dir):
    import io
    import zipfile

    from hmviz_app.state import _zip

    data = _zip(str(models_dir / "deepchrome"), 0.0)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert sorted(zf.namelist()) == ["model.safetensors", "model_card.json"]
        assert json.loads(zf.read("model_card.json"))["model"] == "deepchrome"


def _retrain_two_marks(app) -> None:
    """The Ablation page, retraining on every subset of two marks (3 runs of 1 epoch)."""
    goto(app, "ablation")
    app.radio(key="abl_mode").set_value("retrain").run()
    app.number_input(key="abl_epochs").set_value(1)
    next(m for m in app.multiselect if m.label == "Marks to ablate over").set_value(["H3K4me3", "H3K36me3"])
    app.run()


def _finished_ablation(app):
    ok(app.button(key="abl_start").click().run())
    job = app.session_state["jobs"]["ablation"]
    deadline = time.monotonic() + 90
    while job.running and time.monotonic() < deadline:
        time.sleep(0.5)
    ok(app.run())
    assert job.status == "done", job.error
    return job


def test_ablation_retrain_in_background(app):
    """Retraining on every subset of two marks (3 runs of 1 epoch), with progress, then the chart."""
    _retrain_two_marks(app)
    ok(app)
    assert "3 subsets x 1 seed(s) = 3 training runs" in texts(app.caption)
    job = _finished_ablation(app)
    assert "Ablation finished" in texts(app.success) and "Smallest subset within" in texts(app.success)
    assert set(job.result["marks"]) == {"H3K4me3+H3K36me3", "H3K4me3", "H3K36me3"}
    assert len(charts(app)) == 1


def test_ablation_retrain_of_a_ten_bin_table_takes_model_settings(app):
    """As ``ablate --set``: DeepChrome's defaults do not fit 10 bins, the page says what to set and waits; with the
    settings every run trains."""
    app.session_state["data"] = _ten_bins()
    _retrain_two_marks(app)
    assert "kernel_size=3 and pool_size=2 on two lines of Model settings" in texts(app.warning)
    assert app.button(key="abl_start").disabled
    app.text_area(key="abl_settings_deepchrome").set_value("epochs=3").run()
    assert "epochs has its own control on this page: set it with Epochs (at most)" in texts(app.warning)
    app.text_area(key="abl_settings_deepchrome").set_value("kernel_size=3\npool_size=2").run()
    assert not app.warning and not app.button(key="abl_start").disabled
    job = _finished_ablation(app)
    assert job.result.attrs.get("failed") == 0 and len(job.result) == 3 and job.result["mean"].notna().all()
