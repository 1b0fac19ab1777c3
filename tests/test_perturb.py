"""In-silico editing (issue 20) on a linear toy model whose answers are known in closed form.

The toy: ``score(x) = sum(W * x) + b`` on the raw reads (identity transform), so an edit moves the
score by ``sum(W * change)``, deleting mark m in window w moves it by ``-sum(W[w, m] * x[w, m])``, and
the smallest edit (L2 norm in reads) that lifts the score to 0 adding reads only is
``-score / |W+|^2 * W+`` (W+ the positive part of W over the allowed bins), of size ``-score / |W+|``.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from hmviz.data.dataset import HistoneDataset
from hmviz.data.transforms import SignalTransform
from hmviz.errors import HmvizError
from hmviz.explain.session import prepare
from hmviz.perturb import (
    Editor,
    Window,
    apply_edits,
    by_window,
    parse_allowance,
    parse_edit,
    reference_profiles,
    resolve,
    scan,
    smallest_edit,
    windows,
)
from hmviz.perturb.score import torch_transform

MARKS = ("K4", "K27", "decoy")
N_BINS, BIN, TSS = 20, 100, 10


class Linear(nn.Module):
    """``sum(W * x) + b`` per gene; counts forward calls."""

    def __init__(self, weight: np.ndarray, bias: float):
        super().__init__()
        self.weight = nn.Parameter(torch.as_tensor(weight, dtype=torch.float32))
        self.bias = nn.Parameter(torch.tensor(float(bias)))
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return (x * self.weight).sum(dim=(1, 2)) + self.bias


def _identity(marks=MARKS) -> dict:
    return SignalTransform(log1p=False, scaling="none", marks=marks, center=np.zeros(len(marks)),
                           scale=np.ones(len(marks))).to_dict()


@pytest.fixture
def toy():
    """30 genes, 20 bins of 100 bp (window -1000..+1000), marks K4 (raises), K27 (lowers), decoy (0)."""
    rng = np.random.default_rng(0)
    w = np.zeros((N_BINS, 3))
    w[:, 0] = rng.uniform(0.01, 0.05, N_BINS)
    w[:, 1] = -rng.uniform(0.01, 0.05, N_BINS)
    signal = rng.uniform(20, 60, (30, N_BINS, 3)).astype(np.float32)
    signal[1] *= 20  # a training gene with high signal: the cap on additions stays far away
    labels = (np.arange(30) % 2).astype(np.int8)
    ds = HistoneDataset(signal, [f"G{i}" for i in range(30)], MARKS, bin_size=BIN, tss_bin=TSS,
                        symbols=[f"S{i}" for i in range(30)], labels=labels, split=["train"] * 30)
    model = Linear(w, bias=-2.0).eval()
    card = {"model": "toy", "task": "binary", "marks": list(MARKS), "n_bins": N_BINS, "bin_size": BIN,
            "tss_bin": TSS, "transform": _identity()}
    editor = Editor.from_session(prepare(model, card, ds))
    return editor, model, w, signal


def _score(w, x, b=-2.0) -> float:
    return float((w * x).sum() + b)


# ----------------------------------------------------------------------------- edits
def test_edit_parsing_and_named_regions():
    window = Window(MARKS, N_BINS, BIN, TSS)
    assert window.named() == {"upstream": (-1000, -1000), "promoter": (-1000, 1000), "gene_body": (1000, 1000),
                              "window": (-1000, 1000)}
    big = Window(MARKS, 100, 100, 50)
    assert big.named()["upstream"] == (-5000, -1000) and big.named()["gene_body"] == (1000, 5000)
    e = parse_edit("K4:-300..200:set=5")
    assert (e.mark, e.region, e.op, e.value) == ("K4", "-300..200", "set", 5.0)
    assert parse_edit("K4:promoter:set:5").value == 5.0
    assert parse_edit("K4:gene body:like=high").region == "gene_body"
    (r,) = resolve(["K27:-300..200:remove"], window)
    assert r.mark == 1 and np.flatnonzero(r.bins).tolist() == [7, 8, 9, 10, 11]  # bins starting at -300..+100


@pytest.mark.parametrize("text, words", [
    ("H3K27ac:promoter:remove", ["'H3K27ac:promoter:remove'", "unknown mark 'H3K27ac'", "K4, K27, decoy"]),
    ("K4:-5000..0:remove", ["'K4:-5000..0:remove'", "outside the window", "-1000..1000"]),
    ("K4:promoter:set=-3", ["'K4:promoter:set=-3'", "negative level", ">= 0"]),
    ("K4:promoter:scale=-1", ["negative factor"]),
    ("K4:promoter:grow", ["unknown operation 'grow'", "remove, scale=F, set=V"]),
    ("K4:promoter", ["MARK:REGION:OP"]),
    ("K4:10..50:remove", ["holds no bin start"]),
    ("K4:200..-200:remove", ["START must be below END"]),
    ("K4:promoter:like=mid", ["like=high, like=low"]),
    ("K4:upstream:remove", ["has no upstream region"]),
])
def test_bad_edits_name_the_edit_and_what_is_allowed(text, words):
    with pytest.raises(HmvizError) as err:
        resolve([text], Window(MARKS, N_BINS, BIN, TSS))
    for w in words:
        assert w in str(err.value), (w, str(err.value))


def test_apply_every_operation():
    window = Window(MARKS, N_BINS, BIN, TSS)
    raw = np.arange(N_BINS * 3, dtype=np.float32).reshape(N_BINS, 3) + 1
    prof = {"high": np.full((N_BINS, 3), 7.0, dtype=np.float32)}
    edits = resolve(["K4:0..500:remove", "K27:-500..0:scale=2", "decoy:-200..200:set=3", "K4:-1000..-800:add=1.5",
                     "K27:500..1000:like=high"], window)
    out = apply_edits(raw, edits, prof)
    starts = window.bin_starts_bp()
    assert np.all(out[(starts >= 0) & (starts < 500), 0] == 0)
    assert np.array_equal(out[(starts >= -500) & (starts < 0), 1], 2 * raw[(starts >= -500) & (starts < 0), 1])
    assert np.all(out[(starts >= -200) & (starts < 200), 2] == 3)
    assert np.array_equal(out[:2, 0], raw[:2, 0] + 1.5)
    assert np.all(out[starts >= 500, 1] == 7)
    untouched = np.ones_like(raw, dtype=bool)
    for r in edits:
        untouched[r.bins, r.mark] = False
    assert np.array_equal(out[untouched], raw[untouched]) and not np.shares_memory(out, raw)


def test_reference_profiles_are_medians_of_the_training_genes_of_each_class():
    raw = np.stack([np.full((4, 2), v, dtype=np.float32) for v in (1, 2, 3, 10, 20, 100)])
    labels = np.array([0, 0, 0, 1, 1, 1])
    prof = reference_profiles(raw, np.array([0, 1, 3, 4]), labels)  # gene 2 and 5 are not training genes
    assert np.all(prof["low"] == 1.5) and np.all(prof["high"] == 15)


def test_torch_transform_matches_the_card_transform():
    rng = np.random.default_rng(1)
    x = rng.gamma(1.5, 4, (3, 10, 2)).astype(np.float32)
    t = SignalTransform(marks=("a", "b")).fit(x, np.arange(3), marks=("a", "b"))
    assert np.allclose(torch_transform(torch.from_numpy(x), t).numpy(), t.transform(x), atol=1e-5)


# ------------------------------------------------------------------ score, rank, pair
def test_perturb_moves_the_score_by_the_linear_closed_form(toy):
    editor, _, w, signal = toy
    res = editor.perturb("G3", ["K4:promoter:add=10", "K27:0..500:remove"], vs="S4")
    after = signal[3].copy()
    after[:, 0] += 10
    after[10:15, 1] = 0
    assert res.score_before == pytest.approx(_score(w, signal[3]), abs=1e-3)
    assert res.score_after == pytest.approx(_score(w, after), abs=1e-3)
    scores = np.array([_score(w, s) for s in signal])
    assert res.rank_before == 1 + np.sum(np.delete(scores, 3) > scores[3])
    assert res.rank_after == 1 + np.sum(np.delete(scores, 3) > res.score_after)
    assert res.p_after == pytest.approx(1 / (1 + np.exp(-(res.score_after - scores[4]))), abs=1e-6)
    assert res.probability_after == pytest.approx(1 / (1 + np.exp(-res.score_after)), abs=1e-6)
    table = res.to_frame()
    assert len(table) == N_BINS * 3 and table["delta_reads"].sum() == pytest.approx(
        float((after - signal[3]).sum()), rel=1e-5)
    summary = res.summary()
    assert {"score_before", "score_after", "unit", "p_before", "p_after"} <= set(summary)


def test_like_high_uses_the_high_training_genes(toy):
    editor, _, _, signal = toy
    res = editor.perturb("G0", ["K4:window:like=high"])
    high = np.median(signal[1::2, :, 0], axis=0)
    assert np.allclose(res.raw_after[:, 0], high)


# ------------------------------------------------------------------------------ scan
def test_scan_is_the_closed_form_in_one_forward_pass(toy):
    editor, model, w, signal = toy
    starts, membership = windows(editor.window, 500)
    assert starts.tolist() == [-1000, -500, 0, 500]
    model.calls = 0
    res = scan(editor, "G2", 500)
    assert model.calls == 1  # all marks x windows deletions in one batched forward pass
    expected = -by_window(w * signal[2], membership)
    assert np.allclose(res.effect, expected, atol=1e-3)
    assert np.allclose(res.reads_removed, by_window(signal[2], membership), rtol=1e-5)
    assert np.allclose(by_window(np.ones((N_BINS, 3)), membership), 5)
    m, k = res.strongest()
    assert abs(res.effect[m, k]) == pytest.approx(np.abs(expected).max(), abs=1e-3)
    with pytest.raises(HmvizError, match="multiple of the bin size"):
        scan(editor, "G2", 250)


# ----------------------------------------------------------------------------- search
def test_smallest_edit_adding_reads_matches_the_closed_form(toy):
    editor, _, w, signal = toy
    row = int(np.argmin([_score(w, s) for s in signal]))
    s0 = _score(w, signal[row])
    assert s0 < 0
    res = smallest_edit(editor, row, ["K4,K27,decoy:window:add"])
    plus = np.clip(w, 0, None)
    closed = -s0 / np.linalg.norm(plus)
    assert res.found and res.size_reads == pytest.approx(closed, rel=0.05)
    cos = (res.delta * plus).sum() / (np.linalg.norm(res.delta) * np.linalg.norm(plus))
    assert cos > 0.99 and np.all(res.delta >= -1e-6)
    assert res.result.score_after > 0 and res.result.score_before == pytest.approx(s0, abs=1e-3)


def test_smallest_edit_within_a_region_and_removing(toy):
    editor, _, w, signal = toy
    row = int(np.argmin([_score(w, s) for s in signal]))
    s0 = _score(w, signal[row])
    starts = editor.window.bin_starts_bp()
    region = (starts >= -500) & (starts < 500)
    minus = np.where(region, np.clip(w[:, 1], None, 0), 0)  # removing K27 in -500..500 raises the score
    res = smallest_edit(editor, row, ["K27:-500..500:remove"])
    closed = -s0 / np.linalg.norm(minus)
    assert (w[region, 1] * -signal[row, region, 1]).sum() > -s0  # removing all of it would be more than enough
    assert res.found and res.size_reads == pytest.approx(closed, rel=0.05)
    assert np.all(res.delta[~region] == 0) and np.all(res.delta[:, [0, 2]] == 0)


def test_no_allowed_edit_suffices(toy):
    editor, _, w, signal = toy
    row = int(np.argmin([_score(w, s) for s in signal]))
    res = smallest_edit(editor, row, ["decoy:window:both"])
    assert not res.found and "No allowed edit suffices" in res.message
    assert res.size_reads == 0 and res.result.score_after == res.result.score_before
    res = smallest_edit(editor, row, ["K4:window:remove"])  # removing an activating mark lowers the score
    assert not res.found


def test_allowance_errors():
    window = Window(MARKS, N_BINS, BIN, TSS)
    from hmviz.perturb import allowed_masks

    with pytest.raises(HmvizError, match="unknown direction 'grow'"):
        parse_allowance("K4:promoter:grow")
    with pytest.raises(HmvizError, match="unknown mark 'K9'"):
        allowed_masks(["K4,K9:promoter:add"], window)
    up, down = allowed_masks(["K4,K27:0..500:add", "K27:-1000..-500:remove"], window)
    assert up.sum() == 10 and down.sum() == 5 and not down[:, 0].any()


# ------------------------------------------------------------------------------ figures
def test_tracks_figure_draws_the_reads_before_and_after():
    from hmviz.perturb.plots import tracks_before_after

    before = np.arange(N_BINS * 3, dtype=float).reshape(N_BINS, 3)
    after = before.copy()
    after[:5, 1] = 0
    starts = Window(MARKS, N_BINS, BIN, TSS).bin_starts_bp()
    fig = tracks_before_after(before, after, MARKS, starts, BIN)
    assert len(fig.data) == 6 and [t.name for t in fig.data[:2]] == ["before", "after"]
    for k in range(3):
        assert np.array_equal(fig.data[2 * k].y[:-1], before[:, k]) and np.array_equal(fig.data[2 * k + 1].y[:-1], after[:, k])
        assert fig.data[2 * k].x[0] == -1000 and fig.data[2 * k].x[-1] == 1000  # bin edges in bp from the TSS
    with pytest.raises(HmvizError):
        tracks_before_after(before, after[:, :2], MARKS, starts, BIN)


def test_scan_heatmap_shows_what_each_mark_adds():
    from hmviz.perturb.plots import scan_heatmap

    effect = np.array([[-1.0, 0.5], [0.0, 2.0], [0.25, 0.0]])
    fig = scan_heatmap(effect, MARKS, np.array([-1000, 0]), 1000, "logit")
    assert np.array_equal(np.asarray(fig.data[0].z), -effect)  # red (positive) where deleting the mark lowers it
    assert list(fig.data[0].y) == list(MARKS) and list(fig.data[0].x) == [-500, 500]


def test_scan_and_attribution_share_one_colour_scale():
    from hmviz.perturb.plots import scan_vs_attribution

    effect = np.array([[-1.0, 0.5], [0.0, 2.0], [0.25, 0.0]])
    attribution = np.array([[0.5, -0.5], [0.0, -3.0], [0.0, 0.0]])
    fig = scan_vs_attribution(effect, attribution, MARKS, np.array([-1000, 0]), 1000, "logit")
    assert np.array_equal(np.asarray(fig.data[0].z), -effect) and np.array_equal(np.asarray(fig.data[1].z), attribution)
    axis = fig.layout.coloraxis
    assert axis.cmin == -3.0 and axis.cmax == 3.0 and axis.cmid == 0.0  # symmetric over both maps
    with pytest.raises(HmvizError):
        scan_vs_attribution(effect, attribution[:, :1], MARKS, np.array([-1000, 0]), 1000, "logit")


def test_ordinals_and_percentiles():
    from hmviz.perturb.search import ordinal, percentile

    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 100, 42.4)] == \
        ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "100th", "42nd"]
    assert percentile(np.array([1.0, 2.0, 3.0, 4.0]), 2.0) == 50.0 and np.isnan(percentile(np.array([]), 1.0))
