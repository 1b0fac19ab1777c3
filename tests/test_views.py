"""hmviz.views: genes by name, genome-browser tracks, bedGraph export, deepTools-style heatmaps."""

from __future__ import annotations

import numpy as np
import pytest

import pandas as pd

from hmviz.data.dataset import HistoneDataset, MultiCellDataset
from hmviz.data.synthetic import make_sample_dataset
from hmviz.data.tracks import BedGraphTrack
from hmviz.errors import DataError
from hmviz.views import (
    GeneIndex, GeneLocus, attribution_bedgraph, browser_links, ensembl_key, gene_tracks, profile_heatmap,
    read_gene_names, window_coordinates,
)
from hmviz.views.figures import LOWERS, RAISES, gene_tracks_figure, heatmap_figure
from hmviz.views.heatmap import display_rows, pool_rows


def _dataset(n=6, bins=10, marks=("H3K4me3", "H3K27me3"), strand_aware=True, **kw):
    rng = np.random.default_rng(0)
    return HistoneDataset(signal=rng.poisson(3, size=(n, bins, len(marks))).astype(np.float32),
                          gene_ids=[f"ENSG{i:011d}" for i in range(1, n + 1)], marks=marks, bin_size=100,
                          strand_aware=strand_aware, **kw)


def test_ensembl_key_matches_deepchrome_numeric_ids_and_versions():
    assert ensembl_key("ENSG00000141510.17") == ensembl_key("141510") == ensembl_key("ENSG00000141510") == "141510"
    assert ensembl_key("SIM00001") == "SIM00001"
    # another species' gene is not the human gene with the same number
    assert ensembl_key("ENSMUSG00000059552.3") == ensembl_key("ENSMUSG59552") != ensembl_key("ENSG00000059552")


def test_search_orders_exact_then_prefix_then_substring_case_insensitive():
    idx = GeneIndex(["G1", "G2", "G3", "G4"], ["TP53BP1", "TP53", "ATP5", "XTP53Y"])
    rows = idx.search("tp53")
    assert rows.tolist()[0] == 1                # exact symbol first
    assert rows.tolist()[1] == 0                # then prefix
    assert set(rows.tolist()[2:]) == {3}        # then substring; ATP5 does not contain tp53
    assert idx.search("g3").tolist() == [2]     # ids too
    assert idx.search("").size == 0
    assert idx.label(1) == "TP53 (G2)"


def test_find_refuses_an_ambiguous_symbol_naming_the_genes():
    idx = GeneIndex(["A1", "A2", "A3"], ["PCDHA1", "PCDHA1", "TP53"])
    assert idx.find("tp53") == 2
    assert idx.find("A2") == 1
    with pytest.raises(DataError, match="symbol of 2 genes.*A1, A2"):
        idx.find("PCDHA1")
    with pytest.raises(DataError, match="No gene 'TP5'.*TP53"):
        idx.find("TP5")


def test_two_column_table_attaches_symbols_by_ensembl_number(tmp_path):
    ds = HistoneDataset(signal=np.zeros((3, 4, 1), np.float32), gene_ids=["7157", "672", "999"], marks=("H3K4me3",))
    path = tmp_path / "names.csv"
    path.write_text("gene_id,symbol\nENSG00000141510.3,TP53\nENSG00000012048,BRCA1\n")
    names = read_gene_names(path)
    # 7157 is not ENSG00000141510: only the matching number attaches
    path.write_text("gene_id,symbol\nENSG00000007157,AAA\nENSG00000000672.1,BBB\n")
    idx = GeneIndex.from_dataset(ds, read_gene_names(path))
    assert idx.symbols.tolist() == ["AAA", "BBB", ""]
    assert idx.find("bbb") == 1
    with pytest.raises(DataError, match="none of its gene ids match"):
        GeneIndex.from_dataset(ds, names)


def test_a_table_without_symbol_column_names_what_it_needs(tmp_path):
    path = tmp_path / "names.csv"
    path.write_text("id,name2\nA,B\n")
    with pytest.raises(DataError, match="names.csv.*gene_id and symbol"):
        read_gene_names(path)


def test_window_coordinates_follow_the_strand():
    plus = GeneLocus("chr1", 10_000, "+")
    s, e = window_coordinates(plus, 10, 100, 5, strand_aware=True)
    assert s[5] == 10_000 and e[5] == 10_100 and s[0] == 9_500    # bin at the TSS starts at the TSS
    minus = GeneLocus("chr1", 10_000, "-")
    s, e = window_coordinates(minus, 10, 100, 5, strand_aware=True)
    assert (s[5], e[5]) == (9_900, 10_000)                          # first downstream bin lies left of the TSS
    assert s[0] == 10_400 and np.all(np.diff(s) == -100)            # upstream bins on the right
    s2, _ = window_coordinates(minus, 10, 100, 5, strand_aware=False)  # genome order when not strand-aware
    assert s2[0] == 9_500 and np.all(np.diff(s2) == 100)


@pytest.mark.parametrize("strand", ["+", "-"])
def test_bedgraph_of_attributions_round_trips_through_the_bedgraph_reader(tmp_path, strand):
    rng = np.random.default_rng(1)
    values = rng.normal(size=20) * 1e-3                  # signed, small: attributions
    locus = GeneLocus("chr7", 5_000, strand)
    text = attribution_bedgraph(values, locus, 200, 10, True, name="gene X H3K4me3", description="IG vs mean")
    path = tmp_path / "att.bedGraph"
    path.write_text(text)
    track = BedGraphTrack("att", path, signed=True)
    left = np.array([locus.tss - 10 * 200])
    read = track.bin_values("chr7", left, 20, 200, "mean")[0]   # genome order
    expected = values[::-1] if strand == "-" else values
    np.testing.assert_allclose(read, expected, rtol=1e-5, atol=1e-12)
    with pytest.raises(DataError, match="negative"):
        BedGraphTrack("att", path)                        # signal tracks still refuse negatives


def test_bedgraph_leaves_out_bins_before_position_zero():
    text = attribution_bedgraph(np.ones(10), GeneLocus("chr1", 300, "+"), 100, 5, True, name="n", description="d")
    starts = [int(line.split("\t")[1]) for line in text.splitlines()[1:]]
    assert min(starts) == 0 and len(starts) == 8


def test_gene_tracks_are_in_the_data_units_and_genomic_coordinates():
    ds = _dataset()
    att = np.arange(20, dtype=float).reshape(10, 2)
    frame = gene_tracks(ds, 2, GeneLocus("chr2", 1_000, "+"), attributions=att)
    k4 = frame[frame["mark"] == "H3K4me3"]
    np.testing.assert_array_equal(k4["signal"].to_numpy(), ds.signal[2, :, 0])
    np.testing.assert_array_equal(k4["attribution"].to_numpy(), att[:, 0])
    assert k4["start_bp"].iloc[5] == 0 and k4["genomic_start"].iloc[5] == 1_000
    with pytest.raises(DataError, match="shape"):
        gene_tracks(ds, 2, attributions=np.zeros((3, 3)))


def test_browser_links_only_with_a_known_assembly():
    locus = GeneLocus("17", 7_687_490, "-")
    assert browser_links(locus, 100, 100, 50, None) == {}
    links = browser_links(locus, 100, 100, 50, "hg38")
    assert "db=hg38&position=chr17:7682491-7692490" in links["UCSC"]
    assert "r=17:7682491-7692490" in links["Ensembl"]


def test_heatmap_sorts_by_expression_descending_and_clusters():
    rng = np.random.default_rng(0)
    high = rng.normal(10, 0.5, size=(30, 8))
    low = rng.normal(0, 0.5, size=(20, 8))
    values = np.vstack([low, high])
    expression = np.r_[rng.uniform(0, 1, 20), rng.uniform(5, 9, 30)]
    hm = profile_heatmap(values, np.arange(8) * 100 - 400, 100, sort_by="expression", expression=expression)
    assert np.all(np.diff(hm.sort_value) <= 0)
    hm2 = profile_heatmap(values, np.arange(8) * 100 - 400, 100, sort_by="expression", expression=expression, k=2)
    assert set(hm2.rows[hm2.cluster == 0].tolist()) == set(range(20, 50))   # cluster 1 = the highly expressed
    np.testing.assert_allclose(hm2.profiles[1], low.mean(axis=0))
    with pytest.raises(DataError, match="no expression"):
        profile_heatmap(values, np.arange(8), 100, sort_by="expression")


def test_pooled_rows_keep_every_gene_in_the_mean():
    m = np.arange(50, dtype=float).reshape(25, 2)
    edges = display_rows(25, 10)
    pooled = pool_rows(m, edges)
    assert pooled.shape == (10, 2)
    np.testing.assert_allclose((pooled * np.diff(edges)[:, None]).sum(axis=0), m.sum(axis=0))


def test_figures_keep_signal_and_attribution_apart():
    ds = _dataset()
    att = np.linspace(-1, 1, 20).reshape(10, 2)
    fig = gene_tracks_figure([gene_tracks(ds, 0, attributions=att)], ["G1"], units="reads",
                             attribution_unit="logit")
    titles = [a.text for a in fig.layout.annotations]
    assert "H3K4me3: signal (reads)" in titles and "H3K4me3: attribution (logit)" in titles
    bars = [t for t in fig.data if t.type == "bar"]
    assert set(bars[0].marker.color) == {RAISES, LOWERS}
    signal = [t for t in fig.data if t.type == "scatter"]
    assert all(t.line.color not in (RAISES, LOWERS) for t in signal)


def test_heatmap_figure_says_when_rows_are_pooled():
    values = np.random.default_rng(0).random((5000, 10))
    hm = profile_heatmap(values, np.arange(10) * 100, 100, sort_by="signal")
    fig = heatmap_figure(hm, what="H3K4me3 signal", units="reads", max_rows=1000)
    assert fig.data[-1].z.shape == (1000, 10)
    assert "5,000 genes" in fig.layout.yaxis2.title.text and "means of ~5 genes" in fig.layout.yaxis2.title.text
    small = heatmap_figure(profile_heatmap(values[:50], np.arange(10) * 100, 100, sort_by="signal"),
                           what="x", units="reads")
    assert "one row per gene" in small.layout.yaxis2.title.text


# ------------------------------------------------------------------ figures that describe themselves
from hmviz.views.report import SavedView, figure_caption, pair_report_html, with_caption  # noqa: E402


def test_caption_names_model_data_method_genes_prediction_and_version():
    import hmviz

    text = figure_caption(model="ranker-deepchrome", trained_on="sample data (3,000 generated genes)",
                          method="Integrated Gradients", baseline="training mean", genes=["TP53 (ENSG1)", "GAPDH"],
                          prediction="P(TP53 > GAPDH) = 0.91", measured="log1p expression 2.1 vs 7.3")
    for part in ("ranker-deepchrome", "trained on sample data", "Integrated Gradients", "training mean",
                 "TP53 (ENSG1), GAPDH", "P(TP53 > GAPDH) = 0.91", "log1p expression", f"hmviz {hmviz.__version__}"):
        assert part in text


def test_exported_figure_carries_its_caption_in_svg_json():
    fig = with_caption(go_figure(), "Model: m (trained on <data>) · genes: A, B")
    ann = [a for a in fig.layout.annotations if a.name == "hmviz-caption"]
    assert ann and "&lt;data&gt;" in ann[0].text and fig.layout.margin.b > 50


def go_figure():
    import plotly.graph_objects as go

    return go.Figure(go.Scatter(x=[0, 1], y=[1, 2]), layout={"height": 300})


def test_pair_report_is_self_contained_and_escaped():
    import pandas as pd

    page = pair_report_html(title="A vs B", sentence="<script>alert(1)</script> ranks higher", caption="cap",
                            figures=[go_figure()], tables={"marks": pd.DataFrame({"mark": ["<b>"], "v": [1.0]})})
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;" in page
    assert "plotly" in page.lower() and '<script src="http' not in page and len(page) > 1_000_000  # JS inline
    assert "&lt;b&gt;" in page


def test_saved_view_round_trips_and_refuses_other_data_and_tampering():
    view = SavedView("gene_pairs", "My H1 table", "abc123", "ranker-deepchrome", {"a": "TP53", "steps": 32})
    back = SavedView.from_json(view.to_json())
    assert back == view
    back.check_data("abc123", "My H1 table")
    with pytest.raises(DataError, match="saved on the data 'My H1 table'"):
        back.check_data("zzz", "other")
    with pytest.raises(DataError, match="not a saved hmviz view"):
        SavedView.from_json('{"a": 1}', "v.json")
    with pytest.raises(DataError, match="plain values"):
        SavedView.from_json(view.to_json().replace('"steps": 32', '"steps": {"x": 1}'))
    with pytest.raises(DataError, match="at most 64 KB"):
        SavedView.from_json("x" * 70_000)


def test_with_gene_names_fills_symbols_keeps_the_datas_own_and_never_moves_the_signal():
    from hmviz.views import symbol_column, with_gene_names
    from hmviz.views.genes import GeneNames

    ds = make_sample_dataset(n_genes=60, seed=1)[0].subset(slice(0, 6))
    ds.gene_ids = np.asarray([f"ENSG{i:011d}.2" for i in range(6)], dtype=object)
    ds.symbols = np.asarray(["OWN0", "", "", "", "", ""], dtype=object)
    names = GeneNames(np.asarray(["ENSG00000000000", "ENSG00000000001", "ENSG00000000003", "ENSMUSG00000000004"],
                                 dtype=object), np.asarray(["NEW0", "NEW1", "NEW3", "Mouse4"], dtype=object), source="n.csv")
    named = with_gene_names(ds, names)
    assert named.symbols.tolist() == ["OWN0", "NEW1", "", "NEW3", "", ""]
    assert np.array_equal(named.signal, ds.signal) and named.gene_ids.tolist() == ds.gene_ids.tolist()
    assert named.fingerprint() == ds.fingerprint()
    two = with_gene_names(MultiCellDataset({"a": ds, "b": ds}), names)
    assert [c.symbols[1] for c in two.cells.values()] == ["NEW1", "NEW1"]
    table = pd.DataFrame({"gene": ["ENSG00000000003.2@b", "ENSG00000000002.2"], "x": [1, 2]})
    assert symbol_column(table, named).columns.tolist() == ["gene", "symbol", "x"]
    assert symbol_column(table, named)["symbol"].tolist() == ["NEW3", ""]
    with pytest.raises(DataError, match="n.csv: none of its gene ids match"):
        with_gene_names(ds, GeneNames(np.asarray(["ENSMUSG00000000001"], dtype=object), np.asarray(["X"]), source="n.csv"))


def test_a_selection_in_the_scatter_names_the_genes_of_the_points_chosen():
    from hmviz import plots
    from hmviz.views.selection import gene_set_name, is_group_selection, selected_rows, table_rows

    rows = np.asarray([10, 11, 12, 13, 14, 15])  # dataset rows of the plotted points
    labels_ = np.asarray([0, 1, 0, 1, 1, 0])
    fig = plots.predicted_vs_actual(np.arange(6.0), np.arange(6.0) + 1, labels=labels_, gene_names=list("abcdef"))
    # what plotly reports for a lasso over the 'high' trace's 2nd point and the 'low' trace's 3rd point
    high, low = fig.data[1], fig.data[0]
    points = [{"curve_number": 1, "point_index": 1, "customdata": int(high.customdata[1])},
              {"curve_number": 0, "point_index": 2, "customdata": [int(low.customdata[2])]},
              {"curve_number": 1, "point_index": 1, "customdata": int(high.customdata[1])}]
    assert selected_rows(points, rows).tolist() == [13, 15]  # inputs 3 (2nd high) and 5 (3rd low), each once
    assert list(high.text) == ["b", "d", "e"] and list(low.text) == ["a", "c", "f"]
    assert table_rows([2, 0, 2], [7, 8, 9]).tolist() == [9, 7]
    assert is_group_selection({"points": points, "lasso": [{"x": [0, 1], "y": [0, 1]}]})
    assert not is_group_selection({"points": points[:1], "box": [], "lasso": []})
    names = [f"G{i}" for i in range(20)]
    assert gene_set_name(np.asarray([14, 15]), names, "lasso") == "lasso: 2 genes (G14, G15)"
    assert gene_set_name(np.asarray([1, 2, 3, 4]), names, "box") == "box: 4 genes (G1, G2, G3, ...)"
    with pytest.raises(DataError, match="no customdata"):
        selected_rows([{"point_index": 0}], rows)


def test_a_caption_wraps_to_fit_a_figure_drawn_at_1024_px_and_cuts_a_long_path():
    path = "/very/long/server/path/" + "x" * 150 + "/sample_data"
    fig = with_caption(go_figure(), "Data: my table · Model: m (trained on " + path + ") · genes: A, B")
    lines = [a for a in fig.layout.annotations if a.name == "hmviz-caption"][0].text.split("<br>")
    assert len(lines) >= 3 and max(len(x) for x in lines) <= 90
    assert "".join(lines).replace(" ", "") == ("Data: my table · Model: m (trained on " + path + ") · genes: A, B").replace(" ", "")


def test_titles_wrap_to_fit_a_half_width_figure():
    import plotly.graph_objects as go

    from hmviz.views.figures import wrap_text, wrap_titles

    assert wrap_text("By region (above 0 favours LINC1010-AS1-READTHROUGH)", 34) == \
        "By region (above 0 favours<br>LINC1010-AS1-READTHROUGH)"
    assert wrap_text("short<br>kept as it is", 34) == "short<br>kept as it is"
    fig = go.Figure(layout={"title": {"text": "Precision-recall curve: finding the highly expressed genes"},
                            "xaxis": {"title": {"text": "false positive rate (low genes called high)"}},
                            "margin": {"t": 60}})
    wrap_titles(fig)
    assert all(len(line) <= 34 for line in fig.layout.title.text.split("<br>"))
    assert fig.layout.margin.t == 80 and "<br>" in fig.layout.xaxis.title.text
    from hmviz.views.figures import legend_inside

    assert legend_inside(fig, "bottom right").layout.legend.xanchor == "right"
    assert (fig.layout.legend.x, fig.layout.legend.y) == (0.98, 0.02)
