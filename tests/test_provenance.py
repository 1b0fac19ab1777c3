"""Provenance sentences, cell-matched published numbers, the bootstrap interval and the escaping of user
text: library and helper functions on constructed cases with known answers."""

from __future__ import annotations

import dataclasses
import re
import string

import numpy as np
import pytest

from hmviz import metrics as M
from hmviz.errors import HmvizError
from hmviz.provenance import (
    TrainingData,
    applied_elsewhere,
    published_matching,
    roadmap_ids,
    shown_source,
    trained_on,
)


# ------------------------------------------------------------------------------ bootstrap
def test_bootstrap_ci_of_a_mean_matches_the_normal_interval():
    """For the mean of n draws of N(0, 1) the 95% interval is mean +/- 1.96 / sqrt(n) (to bootstrap noise)."""
    y = np.random.default_rng(3).normal(size=4000)
    low, high = M.bootstrap_ci(np.mean, y, n=2000, seed=1)
    half = 1.96 / np.sqrt(y.size)
    assert low == pytest.approx(y.mean() - half, abs=0.1 * half)
    assert high == pytest.approx(y.mean() + half, abs=0.1 * half)
    assert M.bootstrap_ci(np.mean, y, n=200, seed=5) == M.bootstrap_ci(np.mean, y, n=200, seed=5)  # seeded


def test_bootstrap_ci_of_a_perfect_auroc_is_one_and_undefined_resamples_are_skipped():
    y = np.array([0, 1] * 30)
    low, high = M.bootstrap_ci(M.auroc, y, y.astype(float), n=300, seed=0)
    assert (low, high) == (1.0, 1.0)
    # one positive among 9 genes: about (8/9)^9 = 35% of resamples lack it and are skipped, not counted
    y, s = np.array([0] * 8 + [1]), np.linspace(0, 1, 9)
    assert M.bootstrap_ci(M.auroc, y, s, n=300, seed=0) == (1.0, 1.0)

    def distinct_only(v):  # undefined unless every gene is drawn once: nearly every resample
        if len(set(v.tolist())) < len(v):
            raise HmvizError("repeated gene")
        return 0.0

    with pytest.raises(HmvizError, match="undefined"):
        M.bootstrap_ci(distinct_only, np.arange(10), n=300, seed=0)


@pytest.mark.parametrize("chunk", [M._BOOTSTRAP_CHUNK, 250])  # 250 values: a few resamples per chunk
def test_bootstrap_ci_rowwise_metrics_equal_one_call_per_resample(monkeypatch, chunk):
    """AUROC and Pearson r are computed for many resamples at once: the same draws and the same interval as
    calling the metric once per resample (a wrapped metric takes that path), on tied scores, in any chunking."""
    monkeypatch.setattr(M, "_BOOTSTRAP_CHUNK", chunk)
    rng = np.random.default_rng(4)
    y = (rng.random(60) < 0.3).astype(int)
    s = np.round(y + rng.normal(size=60), 0)  # few distinct values: many tied positive/negative pairs
    e = s + rng.normal(size=60)
    for fn, truth in ((M.auroc, y), (M.pearson_r, e)):
        slow = M.bootstrap_ci(lambda a, b, fn=fn: fn(a, b), truth, s, n=400, seed=2)
        assert M.bootstrap_ci(fn, truth, s, n=400, seed=2) == pytest.approx(slow, abs=1e-12)
    rows = rng.integers(0, 60, (20, 60))
    assert M._auroc_rows(y[rows].astype(float), s[rows]) == pytest.approx([M.auroc(y[r], s[r]) for r in rows])
    with pytest.raises(HmvizError, match="0/1 labels"):  # the whole set's checks still apply
        M.bootstrap_ci(M.auroc, y * 2, s)


def test_bootstrap_ci_rowwise_pearson_skips_constant_resamples():
    """About a third ((3/4)^4) of the resamples of 4 genes miss the one gene that differs: those are
    constant, undefined and skipped (as the per-call path skips them); the others have r = 1."""
    x = np.array([0.0, 0.0, 0.0, 1.0])
    rows = np.array([[0, 1, 2, 0], [0, 3, 1, 3]])
    assert np.isnan(M._pearson_rows(x[rows], x[rows])[0]) and M._pearson_rows(x[rows], x[rows])[1] == pytest.approx(1)
    assert M.bootstrap_ci(M.pearson_r, x, x, n=200, seed=0) == pytest.approx((1.0, 1.0))


def test_bootstrap_ci_pairs_rows_across_arrays():
    """The same rows are drawn from every array: a metric of two identical arrays stays exact."""
    x = np.random.default_rng(0).normal(size=200)
    assert M.bootstrap_ci(M.pearson_r, x, x.copy(), n=100) == pytest.approx((1.0, 1.0))
    with pytest.raises(HmvizError, match="one length"):
        M.bootstrap_ci(M.pearson_r, x, x[:10])


# ----------------------------------------------------------------------------- provenance
BUNDLED = TrainingData(model="deepchrome", marks=("H3K4me3", "H3K27me3"), bundled=True,
                       source="long format /srv/hmviz/sample_data", fingerprint="abc", genes=3000)
UPLOADED = TrainingData(model="ranker-deepchrome", marks=("H3K4me3",),
                        source="upload: E003.train.csv, E003.test.csv", fingerprint="f00", genes=600)


def test_trained_on_names_generated_data_for_bundled_models():
    text = trained_on(BUNDLED)
    assert "bundled with hmviz" in text and "generated sample data" in text and "3,000 genes" in text
    assert "/srv" not in text


def test_trained_on_names_the_source_genes_and_cells_of_other_models():
    text = trained_on(UPLOADED)
    assert text == "ranker-deepchrome was trained on upload: E003.train.csv, E003.test.csv (600 genes; marks H3K4me3)."
    two = dataclasses.replace(UPLOADED, model="deepdiff", cells=("E123", "E003"))
    assert "cells E123 and E003" in trained_on(two)


def test_applied_elsewhere_only_when_the_fingerprint_differs():
    assert applied_elsewhere(BUNDLED, "abc", "Sample data") is None
    notice = applied_elsewhere(BUNDLED, "other", "Upload: train.csv")
    assert notice.startswith("Applied to other data: Upload: train.csv") and "generated data" in notice
    assert "generated" not in applied_elsewhere(UPLOADED, "other", "Upload: x.csv")


def test_provenance_of_a_card_says_what_its_training_data_was():
    """From a real card, and from an old card without a data record (the sentence leaves out what it lacks)."""
    from hmviz.card import ModelCard
    from hmviz.provenance import shown_card, training_data
    from hmviz.resources import bundled_models
    from hmviz.card import load_card

    card = load_card(bundled_models() / "deepchrome")
    assert TrainingData.of(card) == TrainingData(model="deepchrome", marks=card.marks, source=card.data_source,
                                                 fingerprint=card.fingerprint, genes=3000, bundled=True)
    assert trained_on(card) == trained_on(TrainingData.of(card)) == (
        "deepchrome is bundled with hmviz: it was trained on hmviz's generated sample data, synthetic genes with "
        "planted rules rather than measurements (3,000 genes; marks H3K27me3, H3K36me3, H3K4me1, H3K4me3, H3K9me3).")
    assert applied_elsewhere(card, card.fingerprint, "Sample data") is None
    old = ModelCard.from_dict({k: v for k, v in card.to_dict().items() if k not in ("data", "bundled")})
    assert trained_on(old) == ("deepchrome was trained on data of unknown origin "
                               "(marks H3K27me3, H3K36me3, H3K4me1, H3K4me3, H3K9me3).")
    assert training_data(old) == "data of unknown origin"
    assert applied_elsewhere(old, card.fingerprint, "Sample data").startswith("Applied to other data")

    shown = shown_card(card)
    assert "history" not in shown and "/" not in shown["data"]["source"]
    assert {k: v for k, v in shown.items() if k != "data"} == {
        k: v for k, v in card.to_dict().items() if k not in ("data", "history")}
    assert "history" not in shown_card(old) and "data" not in shown_card(old)


def test_shown_source_keeps_no_server_path():
    assert shown_source("long format /work/main/sample_data") == "long format sample_data"
    assert shown_source("DeepChrome CSV ../shared/data/remc-E123-deepchrome") == "DeepChrome CSV remc-E123-deepchrome"
    assert shown_source("upload: a.csv, b.csv") == "upload: a.csv, b.csv"


def test_published_numbers_only_for_the_matching_cell_type():
    assert roadmap_ids("remc-E123-deepchrome", "E003.train.csv", "E1234", "xE066") == {"E123", "E003"}
    rows = published_matching("deepchrome", {"E123"})
    assert [r.result.value for r in rows] == [0.92]
    assert "19,802" in rows[0].gene_set and "test split" in rows[0].split
    assert published_matching("deepchrome", set()) == []  # the synthetic sample: no published number
    assert published_matching("attentivechrome", {"E123"}) == []  # only a mean over 56 cell types exists


# ------------------------------------------------------------------------------- escaping
HOSTILE = ["[Click to re-login](https://evil.example/login)", "![x](http://host/px.png)", "mail a@evil.example",
           "<img src=http://host/a.png>", ":red[big] $x^2$ www.evil.example *b* `c`", "a\nb"]


@pytest.mark.parametrize("text", HOSTILE)
def test_escape_md_escapes_every_punctuation_mark_and_renders_no_link_or_image(text):
    from hmviz_app.text import escape_md

    out = escape_md(text)
    i = 0
    while i < len(out):  # every ASCII punctuation mark is preceded by a backslash
        if out[i] == "\\":
            assert out[i + 1] in string.punctuation
            i += 2
            continue
        assert out[i] not in string.punctuation, (out, i)
        i += 1
    assert "\n" not in out
    # GFM finds bare links in the text once escapes are resolved (mdast-util-gfm-autolink-literal's patterns)
    resolved = re.sub(r"\\(.)", r"\1", out)
    assert resolved.replace("\u2060", "") == " ".join(text.split())  # the same characters on screen
    assert not re.search(r"https?://|www(?=\.)", resolved, re.IGNORECASE)
    assert not re.search(r"[-.\w+]+@[-\w]+(?:\.[-\w]+)+", resolved)
    markdown = pytest.importorskip("markdown")
    html = markdown.markdown(out)
    assert "<a " not in html and "<img" not in html and "<em>" not in html


def test_report_html_shows_every_character_as_itself_with_its_lines():
    """The Data page's reports: hostile names stay text (no tag, entity or link from them), lines and the
    spaces that align them are kept, in one <pre> block."""
    from html.parser import HTMLParser

    from hmviz_app.text import report_html

    report = "source:   <img src=x onerror=alert(1)> & [x](http://e.org)\ngenes:    3,000\n  marks:  H3K4me3"
    out = report_html(report)
    tags, text = [], []

    class Reader(HTMLParser):
        def handle_starttag(self, tag, attrs):
            tags.append(tag)

        def handle_data(self, data):
            text.append(data)

    Reader(convert_charrefs=True).feed(out)
    assert tags == ["pre"] and "".join(text) == report


@pytest.mark.parametrize("message, words", [
    ("read it as the long format (--format long).", "read it as the long format (choose 'long' in the Format list)."),
    ("Name the format explicitly (--format deepchrome|deepdiff|long on the command line, format=... in Python).",
     "Name the format explicitly (with the Format list)."),
    ("TSS at the start of bin bins // 2.", "TSS at the start of the middle bin."),
    ("--flank 5000 is not a multiple of --bin-size 300", "Window 5000 is not a multiple of Bin size 300"),
    ("(--lr) or check", "(Learning rate) or check"),
    ("Set a smaller convolution and pool that fit, e.g. --set kernel_size=3 --set pool_size=2, use data",
     "Set a smaller convolution and pool that fit, e.g. kernel_size=3 and pool_size=2 on two lines of Model settings, "
     "use data"),
    ("the model settings (--set) ask for", "the model settings (Model settings) ask for"),
])
def test_in_page_words_names_page_controls_not_flags_or_python(message, words):
    from hmviz_app.text import in_page_words

    assert in_page_words(message) == words
    assert "--" not in in_page_words(message) and "//" not in in_page_words(message)


def test_captions_name_the_training_data_without_a_server_path():
    """A figure's caption names the model's data by its file or folder name only, also inside brackets
    (the Gene view caption once read "trained on long format (/work/main/sample_data)")."""
    from hmviz.provenance import shown_source, training_data

    assert shown_source("deepchrome format (/home/me/E123/)") == "deepchrome format (E123)"
    assert shown_source("long format (/srv/hmviz/data/table.csv.gz)") == "long format (table.csv.gz)"
    assert shown_source("upload: C:/Users/me/x.csv, cells A") == "upload: x.csv, cells A"
    assert training_data(TrainingData(source="long format (/srv/x/sample_data)", bundled=True)) == (
        "hmviz's generated sample data")
    assert training_data(TrainingData(source="deepdiff format (../shared/data/deepdiff-E123-E003)")) == (
        "deepdiff format (deepdiff-E123-E003)")
    assert training_data(TrainingData()) == "data of unknown origin"


def test_a_two_cell_model_on_one_cell_says_where_to_get_two_cells():
    """DeepDiff on one cell's data: the library says what kind of data it needs; the app says which choice
    of the Data page gives it."""
    import hmviz
    from hmviz.data import read_dataset
    from hmviz.errors import DataError
    from hmviz.explain.session import prepare
    from hmviz.resources import sample_data
    from hmviz_app.text import in_page_words

    model = hmviz.load("models/deepdiff")
    with pytest.raises(DataError) as err:
        prepare(model.module, model.card, read_dataset(sample_data()))
    message = str(err.value)
    assert message.startswith("deepdiff compares two cell types, but this dataset has one cell.")
    assert "a long table with a cell column" in message
    page = in_page_words(message)
    assert page.endswith("Choose the two-cell sample, or upload two cells over the same genes, on the Data page.")
