"""Attributions against closed-form answers, baselines, and the promise never to touch the model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from hmviz.errors import HmvizError, ModelError
from hmviz.explain import BASELINES, METHODS, Region, class_optimization_map, explain, make_baseline, tss_regions

N_BINS, N_MARKS = 20, 3


# Small LSTM calls on a shared 2-core machine: one torch thread (see conftest.one_torch_thread).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


class LinearMarks(nn.Module):
    """f(x) = sum_{bins, marks} w * x + bias: every attribution has a closed form."""

    def __init__(self, w: torch.Tensor, bias: float = 0.3) -> None:
        super().__init__()
        self.w = nn.Parameter(w.clone())
        self.bias = nn.Parameter(torch.tensor(bias))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.w).sum(dim=(1, 2)) + self.bias


class WithExtras(LinearMarks):
    """Returns (logits, something else), like a model with attention behind a flag."""

    def forward(self, x: torch.Tensor):
        return super().forward(x), x.mean()


class TwoClass(LinearMarks):
    """(B, 2) logits, DeepChrome-paper style: column 1 is "high"."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = super().forward(x)
        return torch.stack([-s, s], dim=1)


@pytest.fixture
def linear():
    g = torch.Generator().manual_seed(0)
    w = torch.randn(N_BINS, N_MARKS, generator=g)
    return LinearMarks(w).eval(), w, torch.randn(4, N_BINS, N_MARKS, generator=g)


def small_deepchrome():
    from hmviz.models import DeepChrome, DeepChromeConfig

    torch.manual_seed(0)
    return DeepChrome(DeepChromeConfig(n_marks=N_MARKS, n_bins=N_BINS, n_filters=8, kernel_size=4, pool_size=2,
                                       hidden1=16, hidden2=8)).eval()


def small_attentivechrome():
    from hmviz.models import AttentiveChrome, AttentiveChromeConfig

    torch.manual_seed(0)
    return AttentiveChrome(AttentiveChromeConfig(n_marks=N_MARKS, n_bins=N_BINS, bin_hidden=8, mark_hidden=4)).eval()


# ------------------------------------------------------------------- closed form on a linear model
def test_integrated_gradients_is_input_minus_baseline_times_weight(linear):
    model, w, x = linear
    base = torch.full((N_BINS, N_MARKS), 0.5)
    attr = explain(model, x, "integrated_gradients", baseline=base)
    assert attr.values.shape == (4, N_BINS, N_MARKS)
    np.testing.assert_allclose(attr.values, ((x - base) * w).numpy(), atol=1e-5)
    assert attr.convergence_delta.shape == (4,) and np.abs(attr.convergence_delta).max() < 1e-4
    np.testing.assert_allclose(attr.outputs, model(x).detach().numpy(), rtol=1e-5)


def test_saliency_is_the_weight_signed(linear):
    model, w, x = linear
    attr = explain(model, x, "saliency")
    np.testing.assert_allclose(attr.values, np.broadcast_to(w.numpy(), x.shape), atol=1e-6)
    assert (attr.values < 0).any()  # signed, not abs
    assert attr.baseline is None and attr.convergence_delta is None


def test_feature_ablation_of_a_mark_is_its_weighted_input(linear):
    model, w, x = linear
    attr = explain(model, x, "feature_ablation", baseline="zeros")
    np.testing.assert_allclose(attr.by_mark(), (w * x).sum(dim=1).numpy(), atol=1e-4)
    # the effect is spread evenly over the mark's bins
    np.testing.assert_allclose(attr.values[:, 0, :], attr.values[:, -1, :], atol=1e-6)


def test_occlusion_is_the_mean_of_the_windowed_sums(linear):
    model, w, x = linear
    window, stride = 4, 2
    attr = explain(model, x, "occlusion", baseline="zeros", window_bins=window, stride_bins=stride)
    contrib = (w * x).numpy()
    expected = np.zeros_like(contrib)
    counts = np.zeros(N_BINS)
    for start in range(0, N_BINS - window + 1, stride):
        expected[:, start:start + window, :] += contrib[:, start:start + window, :].sum(axis=1, keepdims=True)
        counts[start:start + window] += 1
    np.testing.assert_allclose(attr.values, expected / counts[None, :, None], atol=1e-4)


def test_gradient_shap_expectation_is_input_minus_mean_baseline(linear):
    model, w, x = linear
    reference = torch.randn(40, N_BINS, N_MARKS, generator=torch.Generator().manual_seed(1))
    sample = make_baseline("gene_sample", reference, n_genes=8, seed=3)
    assert sample.is_distribution and sample.values.shape == (8, N_BINS, N_MARKS)
    attr = explain(model, x, "gradient_shap", baseline=sample, n_samples=3000, seed=0)
    expected = (x - torch.as_tensor(sample.values).mean(0)) * w
    np.testing.assert_allclose(attr.values, expected.numpy(), atol=0.15)
    # the same seed gives the same answer
    again = explain(model, x, "gradient_shap", baseline=sample, n_samples=3000, seed=0)
    np.testing.assert_array_equal(attr.values, again.values)


def test_deeplift_and_smoothgrad_on_linear(linear):
    model, w, x = linear
    dl = explain(model, x, "deeplift", baseline="zeros")
    np.testing.assert_allclose(dl.values, (x * w).numpy(), atol=1e-5)
    sg = explain(model, x, "saliency", smoothgrad=True, noise_stdev=0.5, nt_samples=5)
    np.testing.assert_allclose(sg.values, np.broadcast_to(w.numpy(), x.shape), atol=1e-5)
    assert sg.label == "Saliency + SmoothGrad" and sg.options["noise_stdev"] == 0.5


def test_smoothgrad_applies_to_every_gradient_method(linear):
    model, w, x = linear
    sample = make_baseline("gene_sample", torch.randn(10, N_BINS, N_MARKS), n_genes=5)
    for method in ("integrated_gradients", "saliency", "gradient_shap", "deeplift"):
        base = sample if method == "gradient_shap" else "zeros"
        attr = explain(model, x, method, baseline=base, smoothgrad=True, nt_samples=3, n_samples=3) \
            if method == "gradient_shap" else explain(model, x, method, baseline=base, smoothgrad=True, nt_samples=3)
        assert attr.values.shape == x.shape and attr.convergence_delta is None  # noise breaks completeness
        assert attr.label.endswith("+ SmoothGrad")


def test_wrapped_outputs_and_targets(linear):
    _, w, x = linear
    tup = explain(WithExtras(w).eval(), x, "integrated_gradients")
    np.testing.assert_allclose(tup.values, (x * w).numpy(), atol=1e-5)
    two = explain(TwoClass(w).eval(), x, "integrated_gradients")  # defaults to column 1 ("high")
    np.testing.assert_allclose(two.values, (x * w).numpy(), atol=1e-5)
    low = explain(TwoClass(w).eval(), x, "integrated_gradients", target=0)
    np.testing.assert_allclose(low.values, -(x * w).numpy(), atol=1e-5)
    with pytest.raises(ModelError, match="one output per gene"):
        explain(LinearMarks(w).eval(), x, "saliency", target=1)


def test_one_gene_input_and_summaries(linear):
    model, w, x = linear
    starts = (np.arange(N_BINS) - N_BINS // 2) * 100
    attr = explain(model, x[0], "integrated_gradients", marks=("a", "b", "c"), gene_ids=["G1"], bin_starts_bp=starts)
    assert attr.values.shape == (1, N_BINS, N_MARKS)
    regions = tss_regions(500, 500)
    by_region = attr.by_region(regions=regions)
    assert by_region.shape == (1, 3, N_MARKS)
    np.testing.assert_allclose(by_region.sum(axis=1), attr.by_mark(), atol=1e-5)
    promoter = (starts >= -500) & (starts < 500)
    np.testing.assert_allclose(by_region[0, 1], attr.values[0, promoter].sum(0), atol=1e-5)
    assert [r.bounds for r in regions] == ["< -500 bp", "-500 bp to +500 bp", ">= +500 bp"]
    assert Region("x", -1000, 2500).bounds == "-1 kb to +2.5 kb"
    table = attr.to_frame()
    assert list(table.columns) == ["gene", "bin", "bin_start_bp", "mark", "attribution"]
    assert len(table) == N_BINS * N_MARKS
    row = table[(table.bin == 3) & (table.mark == "b")].iloc[0]
    assert row.bin_start_bp == starts[3] and row.attribution == pytest.approx(float(attr.values[0, 3, 1]))
    unplaced = explain(model, x[:2], "saliency").to_frame()  # positions unknown: missing, not invented
    assert len(unplaced) == 2 * N_BINS * N_MARKS and unplaced.bin_start_bp.isna().all()
    with pytest.raises(HmvizError, match="bin_starts_bp"):
        explain(model, x[:2], "saliency").by_region()


# ------------------------------------------------------------------------------- baselines
def test_zeros_baseline_means_zero_reads_in_the_transformed_space():
    from hmviz.data.transforms import SignalTransform

    counts = np.random.default_rng(0).poisson(3.0, size=(30, N_BINS, N_MARKS)).astype(np.float32)
    transform = SignalTransform(log1p=True, scaling="standard").fit(counts, np.arange(30), marks=("a", "b", "c"))
    base = make_baseline("zeros", transform=transform.to_dict(), shape=(N_BINS, N_MARKS))
    expected = transform.transform(np.zeros((1, N_BINS, N_MARKS), np.float32))[0]
    np.testing.assert_allclose(base.values, expected)
    assert (base.values < 0).all()  # zero reads are below the mean: not 0 in the standardised space
    assert make_baseline("zeros", zero_reads=expected).values.shape == (N_BINS, N_MARKS)
    plain = make_baseline("zeros", shape=(N_BINS, N_MARKS))
    assert (plain.values == 0).all() and "no transform" in plain.description


def test_reference_baselines():
    rng = np.random.default_rng(1)
    ref = rng.normal(size=(40, N_BINS, N_MARKS)).astype(np.float32)
    labels = np.array([0, 1] * 20)
    expression = np.arange(40, dtype=float)
    np.testing.assert_allclose(make_baseline("train_mean", ref).values, ref.mean(0), atol=1e-6)
    np.testing.assert_allclose(make_baseline("low_expression_mean", ref, labels=labels).values,
                               ref[labels == 0].mean(0), atol=1e-6)
    low = make_baseline("low_expression_mean", ref, expression=expression)
    np.testing.assert_allclose(low.values, ref[:10].mean(0), atol=1e-6)  # bottom quartile: 0..9.75
    assert "bottom quartile" in low.description
    with pytest.raises(HmvizError, match="labels or expression"):
        make_baseline("low_expression_mean", ref)
    with pytest.raises(HmvizError, match="Valid baselines: zeros"):
        make_baseline("median", ref)
    assert set(BASELINES) == {"zeros", "train_mean", "low_expression_mean", "gene_sample"}


def test_baseline_is_stored_and_distributions_need_gradient_shap(linear):
    model, w, x = linear
    ref = torch.randn(30, N_BINS, N_MARKS)
    attr = explain(model, x, "integrated_gradients", baseline="train_mean", reference_inputs=ref)
    assert attr.baseline.name == "train_mean"
    np.testing.assert_allclose(attr.baseline.values, ref.mean(0).numpy(), atol=1e-6)
    np.testing.assert_allclose(attr.values, ((x - ref.mean(0)) * w).numpy(), atol=1e-4)
    with pytest.raises(HmvizError, match="gradient_shap"):
        explain(model, x, "integrated_gradients", baseline="gene_sample", reference_inputs=ref)


def test_unknown_names_and_options(linear):
    model, _, x = linear
    with pytest.raises(HmvizError, match="Valid methods: integrated_gradients, saliency"):
        explain(model, x, "lime")
    with pytest.raises(HmvizError, match="n_steps"):
        explain(model, x, "integrated_gradients", steps=10)
    with pytest.raises(HmvizError, match="SmoothGrad"):
        explain(model, x, "occlusion", smoothgrad=True)
    with pytest.raises(ModelError, match="not a PyTorch model"):
        explain(object(), x)
    assert {"integrated_gradients", "saliency", "gradient_shap", "deeplift", "occlusion",
            "feature_ablation"} == set(METHODS)


# ---------------------------------------------------------------------- real model families
def test_ig_convergence_delta_is_small_for_deepchrome_and_attentivechrome():
    x = torch.randn(6, N_BINS, N_MARKS, generator=torch.Generator().manual_seed(2))
    for model in (small_deepchrome(), small_attentivechrome()):
        attr = explain(model, x, "integrated_gradients", baseline="zeros")
        assert attr.convergence_delta.shape == (6,)
        assert attr.max_abs_delta < 1e-3, (type(model).__name__, attr.convergence_delta)


def test_deeplift_exact_for_deepchrome_refused_for_lstm():
    x = torch.randn(4, N_BINS, N_MARKS, generator=torch.Generator().manual_seed(3))
    attr = explain(small_deepchrome(), x, "deeplift", baseline="zeros")
    assert attr.max_abs_delta < 1e-4
    with pytest.raises(ModelError, match="LSTM"):
        explain(small_attentivechrome(), x, "deeplift")
    assert not METHODS["deeplift"].supports(small_attentivechrome())
    assert METHODS["deeplift"].supports(small_deepchrome())


def _snapshot(model: nn.Module):
    return ({k: v.clone() for k, v in model.state_dict().items()},
            [m.training for m in model.modules()], [p.requires_grad for p in model.parameters()])


def _assert_untouched(model: nn.Module, snap) -> None:
    state, training, requires = snap
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k]), k
    assert [m.training for m in model.modules()] == training
    assert [p.requires_grad for p in model.parameters()] == requires
    assert all(p.grad is None for p in model.parameters())
    for m in model.modules():
        assert not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks
        assert not hasattr(m, "input") and not hasattr(m, "output")


@pytest.mark.parametrize("method", list(METHODS))
def test_models_are_not_mutated(method):
    model = small_deepchrome()
    x = torch.randn(3, N_BINS, N_MARKS, generator=torch.Generator().manual_seed(4))
    ref = torch.randn(10, N_BINS, N_MARKS)
    snap = _snapshot(model)
    baseline = "gene_sample" if method == "gradient_shap" else "train_mean"
    explain(model, x, method, baseline=baseline, reference_inputs=ref, n_samples=4) if method == "gradient_shap" \
        else explain(model, x, method, baseline=baseline, reference_inputs=ref)
    _assert_untouched(model, snap)


def test_model_in_training_mode_stays_so_and_dropout_is_off():
    model = small_deepchrome().train()
    x = torch.randn(3, N_BINS, N_MARKS, generator=torch.Generator().manual_seed(5))
    snap = _snapshot(model)
    a = explain(model, x, "integrated_gradients")
    b = explain(model, x, "integrated_gradients")
    np.testing.assert_array_equal(a.values, b.values)  # dropout inactive: deterministic
    _assert_untouched(model, snap)
    assert model.training
    lstm = small_attentivechrome()
    snap = _snapshot(lstm)
    explain(lstm, x, "integrated_gradients", n_steps=8)
    _assert_untouched(lstm, snap)


# ------------------------------------------------------------------------ class optimisation
def test_class_optimization_map_follows_the_weights():
    w = torch.zeros(N_BINS, N_MARKS)
    w[5:8, 1] = 1.0
    w[:, 2] = -0.5
    model = LinearMarks(w, bias=0.0).eval()
    snap = _snapshot(model)
    high = class_optimization_map(model, N_BINS, N_MARKS, "high", steps=300, seed=0)
    assert high.map.shape == (N_MARKS, N_BINS) and high.map.max() == pytest.approx(1.0)
    assert high.map.min() >= 0.0
    assert set(np.flatnonzero(high.map[1] > 0.9)) == {5, 6, 7}
    assert (high.input[:, 2] < 0).all() and (high.map[2] == 0).all()
    low = class_optimization_map(model, N_BINS, N_MARKS, "low", steps=300, seed=0)
    assert low.logit < 0 < high.logit
    assert (low.input[5:8, 1] < 0).all()
    assert high.losses[-1] < high.losses[0]
    _assert_untouched(model, snap)


def test_class_optimization_map_on_deepchrome_keeps_the_model():
    model = small_deepchrome().train()  # dropout must be inactive during the optimisation
    snap = _snapshot(model)
    a = class_optimization_map(model, N_BINS, N_MARKS, steps=30, seed=1)
    b = class_optimization_map(model, N_BINS, N_MARKS, steps=30, seed=1)
    np.testing.assert_array_equal(a.map, b.map)
    assert a.map.shape == (N_MARKS, N_BINS) and 0.0 <= a.map.min() and a.map.max() <= 1.0
    _assert_untouched(model, snap)
    with pytest.raises(HmvizError, match="'high' or 'low'"):
        class_optimization_map(model, N_BINS, N_MARKS, target="up")


# ------------------------------------------------------------------------------------------ CLI
@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 40-gene dataset in the long format and two tiny models trained on it for one epoch."""
    from hmviz.checkpoints import save_model
    from hmviz.data import HistoneDataset, write_long
    from hmviz.options import TrainOptions
    from hmviz.training import train

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("explain_cli")
    rng = np.random.default_rng(0)
    n = 40
    signal = rng.poisson(4.0, size=(n, N_BINS, N_MARKS)).astype(np.float32)
    ds = HistoneDataset(signal=signal, gene_ids=[f"ENSG{k:05d}" for k in range(n)], marks=("H3K4me3", "H3K36me3",
                        "H3K27me3"), bin_size=100, tss_bin=10, symbols=[f"GENE{k}" for k in range(n)],
                        expression=signal[:, 8:12, 0].sum(1) + rng.normal(size=n), labels=np.arange(n) % 2,
                        split=np.array(["train"] * 28 + ["valid"] * 6 + ["test"] * 6))
    data = write_long(ds, root / "data.csv")
    models = {}
    for name, overrides in (("deepchrome", {"n_filters": 4, "kernel_size": 4, "pool_size": 2, "hidden1": 8,
                                            "hidden2": 4}),
                            ("attentivechrome", {"bin_hidden": 4, "mark_hidden": 2})):
        result = train(ds, TrainOptions(model=name, epochs=1, device="cpu", split="file", model_overrides=overrides))
        models[name] = save_model(result.model, result.card, root / name)
    return data, models, root


def run_cli(*argv: str) -> int:
    from hmviz.cli.main import main

    return main([str(a) for a in argv])


def test_cli_one_gene_writes_the_long_table(trained, capsys):
    import pandas as pd

    data, models, root = trained
    out = root / "one.csv"
    assert run_cli("explain", "--model", models["deepchrome"], "--data", data, "--gene", "GENE3",
                   "--baseline", "train_mean", "--steps", "20", "--out", out) == 0
    table = pd.read_csv(out)
    assert list(table.columns) == ["gene", "symbol", "bin", "bin_start_bp", "mark", "attribution"]
    assert len(table) == N_BINS * N_MARKS and set(table.gene) == {"ENSG00003"} and set(table.symbol) == {"GENE3"}
    assert table.bin_start_bp.min() == -1000 and table.bin_start_bp.max() == 900
    printed = capsys.readouterr().out
    assert "gap:" in printed and "train_mean" in printed
    summary = json.loads(printed.strip().splitlines()[-1])
    assert summary["additive"] and summary["kind"] == "additive" and summary["unit"] == "logit"
    assert summary["output_difference"] == pytest.approx(summary["output"] - summary["baseline_output"])
    assert abs(summary["attribution_sum"] - summary["output_difference"]) <= summary["gap"] + 1e-9
    assert summary["tolerance_met"] or summary["cap_reached"]
    # by gene id, to Parquet
    pq = root / "one.parquet"
    assert run_cli("explain", "--model", models["deepchrome"], "--data", data, "--gene", "ENSG00003",
                   "--method", "saliency", "--out", pq) == 0
    assert len(pd.read_parquet(pq)) == N_BINS * N_MARKS


def test_cli_gene_pair(trained, capsys):
    import pandas as pd

    data, models, root = trained
    out = root / "pair.csv"
    assert run_cli("explain", "--model", models["attentivechrome"], "--data", data, "--gene", "GENE1",
                   "--vs", "gene2", "--steps", "16", "--out", out) == 0
    table = pd.read_csv(out)
    assert len(table) == 2 * N_BINS * N_MARKS and set(table.gene) == {"ENSG00001", "ENSG00002"}
    printed = capsys.readouterr().out
    assert "P(GENE1 > GENE2) = " in printed and "The model ranks" in printed and "completeness" in printed


def test_cli_errors_are_one_line_with_exit_2(trained, capsys):
    data, models, root = trained
    out = root / "never.csv"
    assert run_cli("explain", "--model", models["deepchrome"], "--data", data, "--gene", "GENE4O",
                   "--out", out) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Gene 'GENE4O' is not in the dataset") and "Closest matches: GENE4" in err
    assert len(err.strip().splitlines()) == 1
    assert run_cli("explain", "--model", models["deepchrome"], "--data", data, "--gene", "GENE1",
                   "--method", "lime", "--out", out) == 2
    assert "Valid methods: integrated_gradients, saliency" in capsys.readouterr().err
    assert run_cli("explain", "--model", models["deepchrome"], "--data", data, "--gene", "GENE1",
                   "--baseline", "median", "--out", out) == 2
    assert "Valid baselines: zeros, train_mean" in capsys.readouterr().err
    assert run_cli("explain", "--model", models["attentivechrome"], "--data", data, "--gene", "GENE1",
                   "--method", "deeplift", "--out", out) == 2
    assert "DeepLift is not available for AttentiveChrome" in capsys.readouterr().err
    assert not out.exists()


def test_cli_deepdiff_explains_one_gene_between_two_cells(tmp_path, capsys):
    import pandas as pd

    from hmviz.checkpoints import save_model
    from hmviz.data import HistoneDataset, MultiCellDataset, write_long
    from hmviz.options import TrainOptions
    from hmviz.training import train

    def cell(name: str, seed: int) -> HistoneDataset:
        signal = np.random.default_rng(seed).poisson(4.0, size=(30, N_BINS, N_MARKS)).astype(np.float32)
        return HistoneDataset(signal=signal, gene_ids=[f"ENSG{k:05d}" for k in range(30)], marks=("a", "b", "c"),
                              bin_size=100, tss_bin=10, symbols=[f"GENE{k}" for k in range(30)], cell=name,
                              expression=signal[:, 8:12, 0].sum(1), split=np.array(["train"] * 20 + ["valid"] * 5
                                                                                     + ["test"] * 5))

    data = write_long(MultiCellDataset({"K562": cell("K562", 1), "H1": cell("H1", 2)}), tmp_path / "two.csv")
    result = train(MultiCellDataset({"K562": cell("K562", 1), "H1": cell("H1", 2)}),
                   TrainOptions(model="deepdiff", epochs=1, device="cpu", split="file",
                                model_overrides={"bin_hidden": 4, "mark_hidden": 2, "joint_hidden": 4}))
    model = save_model(result.model, result.card, tmp_path / "deepdiff")
    out = tmp_path / "dd.csv"
    assert run_cli("explain", "--model", model, "--data", data, "--gene", "GENE3", "--steps", "16", "--out", out) == 0
    printed = capsys.readouterr().out
    assert "GENE3: predicted log2 fold change H1 over K562" in printed
    assert "The model predicts GENE3 higher in " in printed and "completeness" in printed
    table = pd.read_csv(out)
    assert set(table.gene) == {"ENSG00003@K562", "ENSG00003@H1"} and len(table) == 2 * N_BINS * N_MARKS
    assert run_cli("explain", "--model", model, "--data", data, "--gene", "GENE3", "--vs", "GENE4", "--out", out) == 2
    assert "drop --vs" in capsys.readouterr().err


# ------------------------------------------------------------ planted ground truth (sample data)
def test_attributions_find_the_planted_marks_and_regions():
    """A DeepChrome trained on sample_data/ attributes to the marks and regions the generator planted
    (ground_truth.json): the decoy mark least, each planted mark with its planted sign, H3K4me3 at the
    promoter and H3K36me3 over the gene body."""
    import json
    from pathlib import Path

    from hmviz.data import read_dataset
    from hmviz.inference import prepare_inputs
    from hmviz.options import TrainOptions
    from hmviz.training import train

    root = Path(__file__).resolve().parents[1] / "sample_data"
    if not (root / "ground_truth.json").exists():
        pytest.skip("sample_data/ has not been generated")
    truth = json.loads((root / "ground_truth.json").read_text())
    ds = read_dataset(root / "histone.csv.gz", expression=root / "expression.tsv")
    result = train(ds, TrainOptions(model="deepchrome", epochs=6, device="cpu", split="file", seed=1))
    x = prepare_inputs(result.card, ds)
    genes = ds.split_indices("test")[:200]
    base = make_baseline("train_mean", x[ds.split_indices("train")])
    attr = explain(result.model, x[genes], baseline=base, marks=ds.marks, bin_starts_bp=ds.bin_starts_bp())
    assert np.median(np.abs(attr.convergence_delta)) < 0.01

    magnitude = dict(zip(ds.marks, np.abs(attr.values).sum(axis=1).mean(axis=0)))
    (decoy,) = truth["decoy_marks"]
    assert min(magnitude, key=magnitude.get) == decoy, magnitude
    shift = (x[genes].numpy() - base.values).sum(axis=1)  # (genes, marks): signal above the baseline
    for k, mark in enumerate(ds.marks):
        sign = truth["expected_sign"][mark]
        if sign:
            r = np.corrcoef(shift[:, k], attr.by_mark()[:, k])[0, 1]
            assert np.sign(r) == sign and abs(r) > 0.7, (mark, r)

    starts = ds.bin_starts_bp()
    profile = np.abs(attr.values).mean(axis=0)  # (bins, marks)
    for term in truth["terms"][:2]:  # promoter H3K4me3, gene-body H3K36me3
        k = ds.marks.index(term["mark"])
        inside = (starts >= term["region_bp"][0]) & (starts < term["region_bp"][1])
        share = profile[inside, k].sum() / profile[:, k].sum()
        assert share > inside.mean() + 0.15, (term["name"], share, inside.mean())


@pytest.mark.parametrize("method", ["integrated_gradients", "deeplift", "occlusion", "saliency"])
def test_cli_ends_with_a_json_line_true_to_the_method(trained, capsys, method):
    """The last line says what the numbers are; additive sums are within the gap (1% unless capped) and the
    sentence names the mark with the largest total contribution in the table written."""
    import pandas as pd

    data, models, root = trained
    out = root / f"pair_{method}.csv"
    assert run_cli("explain", "--model", models["deepchrome"], "--data", data, "--gene", "GENE1", "--vs", "GENE2",
                   "--method", method, "--out", out) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("method", "additive", "output_difference", "attribution_sum", "gap", "unit", "baseline", "sentence"):
        assert key in summary, key
    assert summary["method"] == method and summary["unit"] == "logit"
    assert summary["baseline"] == (None if method == "saliency" else "train_mean")  # the default reference
    table = pd.read_csv(out)
    assert table.attribution.sum() == pytest.approx(summary["attribution_sum"], abs=1e-5)
    winner_sign = np.sign(summary["difference"])
    totals = table.groupby("mark", sort=False).attribution.sum() * winner_sign
    body = summary["sentence"].split("). ", 1)[1]
    if summary["additive"]:
        assert abs(summary["attribution_sum"] - summary["output_difference"]) <= summary["gap"] + 1e-9
        assert summary["gap"] <= 0.01 * abs(summary["output_difference"]) or summary.get("cap_reached")
        assert body.startswith(f"{totals.idxmax()} favours"), (totals, body)
        assert "in total" in body and "adds up" not in body
    else:
        assert summary["gap"] is None and "not shares" in body and "in total" not in body
        if method == "occlusion":
            assert f", {totals.idxmax()} favours" in body
