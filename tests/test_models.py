"""Behaviour the rest of hmviz relies on: shapes, attention, exact per-mark LSTMs, ranker symmetry,
DeepDiff's sign convention, config round trips, the registry, and that every family can learn."""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import pytest
import torch
from torch import nn

from hmviz.errors import ModelError
from hmviz.models import (
    MODEL_REGISTRY,
    AttentionOutput,
    DeepDiffOutput,
    PairwiseRanker,
    baseline_scores,
    build_from_config,
    build_model,
    fit_baseline,
    get_spec,
    list_models,
    log2_fold_change,
    parse_settings,
    ranknet_loss,
)
from hmviz.models import _native
from hmviz.models._recurrent import PerMarkBiLSTM

SHAPES = [(3, 40), (5, 100), (7, 200)]
SINGLE = ["deepchrome", "attentivechrome", "simplechrome"]


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def need_native() -> None:
    """Skip where the compiled LSTM kernel cannot be built here; CI (HMVIZ_REQUIRE_NATIVE=1) fails instead."""
    if _native.load() is None:
        reason = f"compiled LSTM kernel unavailable: {_native.unavailable_reason()}"
        if os.environ.get("HMVIZ_REQUIRE_NATIVE") == "1":
            pytest.fail(reason)
        pytest.skip(reason)


# Tiny tensors gain nothing from intra-op threads (see conftest.one_torch_thread).
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def toy_binary(n_genes: int, n_bins: int, n_marks: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Genes labelled 1 carry a strong peak of mark 0 at the TSS; label 0 genes do not."""
    g = torch.Generator().manual_seed(seed)
    x = 0.1 * torch.rand(n_genes, n_bins, n_marks, generator=g)
    y = (torch.arange(n_genes) % 2).float()
    centre = slice(n_bins // 2 - 3, n_bins // 2 + 3)
    x[y == 1, centre, 0] += 1.0
    return x, y


# -- shapes ------------------------------------------------------------------------------------


@pytest.mark.parametrize("n_marks,n_bins", SHAPES)
@pytest.mark.parametrize("name", list_models())
def test_output_shape_follows_data(name: str, n_marks: int, n_bins: int) -> None:
    model, config = build_model(name, n_marks=n_marks, n_bins=n_bins)
    assert (config.n_marks, config.n_bins) == (n_marks, n_bins)
    model.eval()
    x = torch.rand(3, n_bins, n_marks)
    with torch.no_grad():
        out = model(x, torch.rand(3, n_bins, n_marks)) if get_spec(name).inputs != "single" else model(x)
    assert out.shape == (3,)
    assert out.dtype == torch.float32


def test_deepchrome_flattened_size_follows_bins() -> None:
    model, _ = build_model("deepchrome", n_marks=5, n_bins=100)
    assert model.fc1.in_features == 50 * ((100 - 10 + 1) // 5) == 900
    model, _ = build_model("deepchrome", n_marks=7, n_bins=200)
    assert model.fc1.in_features == 50 * ((200 - 10 + 1) // 5)


def test_wrong_input_shape_is_a_model_error() -> None:
    model, _ = build_model("attentivechrome", n_marks=5, n_bins=100)
    with pytest.raises(ModelError, match="100 bins, 5 marks"):
        model(torch.rand(2, 100, 4))
    with pytest.raises(ModelError, match="unsqueeze"):
        model(torch.rand(100, 5))
    with pytest.raises(ModelError, match="at least"):
        build_model("deepchrome", n_marks=5, n_bins=12)


# -- attention ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_attentivechrome() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    x, y = toy_binary(12, 16, 3)
    model, _ = build_model("attentivechrome", n_marks=3, n_bins=16)
    _fit(
        model,
        lambda: nn.functional.binary_cross_entropy_with_logits(model(x), y),
        lr=3e-3,
        until=_separates(model, x, y),
    )
    return model.eval(), x, y


def test_attention_is_real(trained_attentivechrome) -> None:
    model, x, _ = trained_attentivechrome
    with torch.no_grad():
        out = model(x, return_attention=True)
        logits = model(x)
    assert isinstance(out, AttentionOutput)
    assert out.bin_attention.shape == (12, 3, 16) and out.mark_attention.shape == (12, 3)
    torch.testing.assert_close(out.logits, logits)
    torch.testing.assert_close(out.bin_attention.sum(-1), torch.ones(12, 3))
    torch.testing.assert_close(out.mark_attention.sum(-1), torch.ones(12))
    assert (out.bin_attention >= 0).all() and (out.mark_attention >= 0).all()
    # computed from each gene's signal, not a constant (v2 wrote all-zero maps)
    assert out.bin_attention.std(dim=0).max() > 1e-6
    assert out.mark_attention.std(dim=0).max() > 1e-6


def test_attention_varies_strongly_with_sharp_context() -> None:
    """With larger context vectors the softmax sharpens: weights then differ a lot between genes."""
    model, _ = build_model("attentivechrome", n_marks=3, n_bins=20)
    model.eval()
    with torch.no_grad():
        model.bin_encoder.attention.context.mul_(50)
        model.mark_encoder.attention.context.mul_(50)
        x = torch.rand(8, 20, 3) * torch.linspace(0.1, 5.0, 8).view(8, 1, 1)
        out = model(x, return_attention=True)
    torch.testing.assert_close(out.bin_attention.sum(-1), torch.ones(8, 3))
    torch.testing.assert_close(out.mark_attention.sum(-1), torch.ones(8))
    assert out.bin_attention.std(dim=0).max() > 1e-2
    assert out.mark_attention.std(dim=0).max() > 1e-3  # mark embeddings vary less at init


# -- per-mark LSTMs ----------------------------------------------------------------------------


@pytest.mark.parametrize("impl", ["native", "grouped", "block", "per_mark"])
def test_per_mark_lstm_equals_separate_lstms(impl: str) -> None:
    if impl == "native":
        need_native()
    n_marks, hidden, bins = 4, 8, 12
    separate = [nn.LSTM(1, hidden, bidirectional=True, batch_first=True) for _ in range(n_marks)]
    block = PerMarkBiLSTM(n_marks, hidden, impl=impl)
    for m, lstm in enumerate(separate):
        block.load_mark_lstm(m, lstm)
    x = torch.randn(5, bins, n_marks)
    with torch.no_grad():
        expected = torch.stack([lstm(x[:, :, m : m + 1])[0] for m, lstm in enumerate(separate)], dim=1)
        got = block(x)
    assert got.shape == (5, n_marks, bins, 2 * hidden)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


def test_block_lstm_stays_block_diagonal_under_training() -> None:
    """Mark m's states never depend on another mark's input, even after optimiser steps."""
    n_marks, hidden = 3, 4
    lstm = PerMarkBiLSTM(n_marks, hidden, impl="block")
    opt = torch.optim.Adam(lstm.parameters(), lr=0.1, weight_decay=0.1)
    for _ in range(3):
        opt.zero_grad()
        lstm(torch.randn(4, 10, n_marks)).pow(2).sum().backward()
        opt.step()
    w_hh = lstm.block_parameters()["weight_hh_l0"].view(4, n_marks, hidden, n_marks, hidden)
    off_block = ~torch.eye(n_marks, dtype=torch.bool).view(1, n_marks, 1, n_marks, 1).expand_as(w_hh)
    assert (w_hh[off_block] == 0).all()
    x = torch.randn(2, 10, n_marks)
    x2 = x.clone()
    x2[:, :, 0] += 5.0  # perturb mark 0 only
    with torch.no_grad():
        a, b = lstm(x), lstm(x2)
    assert torch.equal(a[:, 1:], b[:, 1:])
    assert not torch.equal(a[:, 0], b[:, 0])


@pytest.mark.parametrize("other", ["native", "per_mark", "block"])
def test_lstm_implementations_share_state_dict(other: str) -> None:
    """Same weights, same outputs and gradients (model weights, and the input for attributions)."""
    if other == "native":
        need_native()
    grouped, _ = build_model("attentivechrome", n_marks=5, n_bins=30, bin_lstm_impl="grouped")
    alt, _ = build_model("attentivechrome", n_marks=5, n_bins=30, bin_lstm_impl=other)
    alt.load_state_dict(grouped.state_dict())
    x_g = torch.rand(4, 30, 5, requires_grad=True)
    x_a = x_g.detach().clone().requires_grad_(True)
    out_g, out_a = grouped(x_g), alt(x_a)
    torch.testing.assert_close(out_a, out_g, rtol=1e-5, atol=1e-6)
    out_g.sum().backward()
    out_a.sum().backward()
    torch.testing.assert_close(x_a.grad, x_g.grad, rtol=1e-4, atol=1e-6)
    for (name, p_g), p_a in zip(grouped.named_parameters(), alt.parameters()):
        torch.testing.assert_close(p_a.grad, p_g.grad, rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize("hidden", [16, 32, 64, 7])
def test_native_lstm_matches_torch_lstm_kernels(hidden: int) -> None:
    """float32, every hidden size the compiled kernel specialises (16, 32, 64) and the generic one:
    states, and the gradients of the input and every weight, against PyTorch's own LSTM kernels."""
    need_native()
    ref = PerMarkBiLSTM(3, hidden, impl="per_mark")
    native = PerMarkBiLSTM(3, hidden, impl="native")
    native.load_state_dict(ref.state_dict())
    x_r = torch.randn(21, 23, 3, requires_grad=True)  # 21: the blocked rows and the rows left over
    x_n = x_r.detach().clone().requires_grad_(True)
    out_r, out_n = ref(x_r), native(x_n)
    torch.testing.assert_close(out_n, out_r, rtol=1e-5, atol=2e-6)
    upstream = torch.randn_like(out_r)
    (out_r * upstream).sum().backward()
    (out_n * upstream).sum().backward()
    torch.testing.assert_close(x_n.grad, x_r.grad, rtol=1e-4, atol=2e-5)
    for (name, p_r), p_n in zip(ref.named_parameters(), native.parameters()):
        torch.testing.assert_close(p_n.grad, p_r.grad, rtol=1e-4, atol=2e-5, msg=name)


def test_default_lstm_impl_on_cpu() -> None:
    """"auto" (the default) runs the compiled kernel on CPU where it is built and preferred (an
    AVX-512 CPU, or HMVIZ_NATIVE=1), else the grouped recurrence: identical numbers to naming that
    implementation."""
    auto, config = build_model("attentivechrome", n_marks=5, n_bins=30)
    expected = "native" if _native.preferred() else "grouped"
    named, _ = build_model("attentivechrome", n_marks=5, n_bins=30, bin_lstm_impl=expected)
    named.load_state_dict(auto.state_dict())
    assert config.bin_lstm_impl == "auto"
    assert auto.bin_encoder.lstm.resolved_impl(torch.device("cpu")) == expected
    x = torch.rand(4, 30, 5)
    torch.testing.assert_close(auto(x), named(x), rtol=0, atol=0)


def test_without_the_compiled_kernel_auto_falls_back_and_native_says_why(monkeypatch) -> None:
    """No compiler (or a failed build): "auto" uses the grouped recurrence, same numbers up to
    rounding; naming "native" gives a ModelError with the reason and the way out."""
    monkeypatch.setattr(_native, "_state", {})
    monkeypatch.setattr(_native, "_missing_tool", lambda: None)

    def failing_build(niceness: int = 0) -> None:
        raise RuntimeError("Error building extension 'hmviz_bilstm': c++: fatal error")

    monkeypatch.setattr(_native, "_build", failing_build)
    assert _native.load() is None
    assert "building _bilstm_native.cpp failed" in _native.unavailable_reason()
    assert "fatal error" in _native.unavailable_reason()
    lstm = PerMarkBiLSTM(2, 4)
    assert lstm.resolved_impl(torch.device("cpu")) == "grouped"
    ref = PerMarkBiLSTM(2, 4, impl="per_mark")
    ref.load_state_dict(lstm.state_dict())
    x = torch.randn(3, 9, 2)
    torch.testing.assert_close(lstm(x), ref(x), rtol=1e-5, atol=1e-6)
    with pytest.raises(ModelError, match="bin_lstm_impl='native' is not available here: building .* use 'auto' or 'grouped'"):
        PerMarkBiLSTM(2, 4, impl="native")(x)
    monkeypatch.undo()  # restore _missing_tool and _build, then check the switch on its own
    monkeypatch.setattr(_native, "_state", {})
    monkeypatch.setenv("HMVIZ_NATIVE", "0")
    assert _native.load() is None and _native.unavailable_reason() == "HMVIZ_NATIVE=0 is set"


def test_compiled_attention_pooling_matches_eager(monkeypatch) -> None:
    """Grouped context attention in the compiled kernel: pooled vectors, weights, and the gradients
    of the states and the context vectors (through both outputs) equal eager PyTorch's."""
    need_native()
    from hmviz.models import _attention
    from hmviz.models._attention import ContextAttention

    att = ContextAttention(16, n_groups=3)
    states = torch.randn(11, 3, 37, 16, requires_grad=True)
    weight_probe = torch.randn(11, 3, 37)

    def run():
        att.zero_grad()
        states.grad = None
        pooled, weights = att(states, return_weights=True)
        ((pooled ** 2).sum() + (weights * weight_probe).sum()).backward()
        return pooled.detach(), weights.detach(), states.grad.clone(), att.context.grad.clone()

    fused = run()
    monkeypatch.setattr(_attention, "_fused_ok", lambda *a: False)
    eager = run()
    for name, got, want in zip(("pooled", "weights", "d_states", "d_context"), fused, eager):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6, msg=name)


def test_compiled_attention_pooling_passes_gradcheck() -> None:
    need_native()
    from hmviz.models._attention import _FusedGroupedAttention

    states = torch.randn(3, 2, 5, 4, dtype=torch.float64, requires_grad=True)
    context = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(_FusedGroupedAttention.apply, (states, context))


@pytest.mark.parametrize("impl", ["grouped", "native"])
def test_hand_written_lstm_gradients_pass_gradcheck(impl: str) -> None:
    """The hand-written backward through time against finite differences (float64), for the
    input and every weight of both directions, with an odd number of bins and marks."""
    if impl == "native":
        need_native()
    lstm = PerMarkBiLSTM(3, 4, impl=impl).double()
    names = [n for n, _ in lstm.named_parameters()]
    x = torch.randn(2, 7, 3, dtype=torch.float64, requires_grad=True)

    def run(x, *params):
        return torch.func.functional_call(lstm, dict(zip(names, params)), (x,))

    assert torch.autograd.gradcheck(run, (x, *lstm.parameters()))


@pytest.mark.parametrize("impl", ["grouped", "native"])
def test_lstm_inference_path_matches_training_path(impl: str) -> None:
    """No grad (evaluation, the app) takes a path that keeps no activations; same numbers."""
    if impl == "native":
        need_native()
    lstm = PerMarkBiLSTM(4, 8, impl=impl)
    x = torch.randn(6, 25, 4)
    with torch.no_grad():
        no_grad = lstm(x)
    with torch.inference_mode():
        inference = lstm(x)
    training = lstm(x)
    assert training.requires_grad and not no_grad.requires_grad
    torch.testing.assert_close(no_grad, training.detach(), rtol=0, atol=0)
    torch.testing.assert_close(inference, no_grad, rtol=0, atol=0)


def test_concurrent_forwards_do_not_interfere() -> None:
    """A model cached once and shared by app sessions (threads) gives each caller its own answer."""
    from concurrent.futures import ThreadPoolExecutor

    model, _ = build_model("attentivechrome", n_marks=4, n_bins=30)
    model.eval()
    inputs = [torch.rand(3, 30, 4) for _ in range(32)]
    with torch.no_grad():
        expected = [model(x) for x in inputs]
        with ThreadPoolExecutor(max_workers=4) as pool:
            got = list(pool.map(lambda x: model(x), inputs))
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b)


def test_attentivechrome_init_is_uniform_0_1() -> None:
    model, _ = build_model("attentivechrome", n_marks=5, n_bins=20)
    values = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert values.abs().max() <= 0.1
    assert values.abs().max() > 0.09


# -- ranker ------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ranker-deepchrome", "ranker-attentivechrome"])
def test_ranker_swap_is_exact(name: str) -> None:
    model, _ = build_model(name, n_marks=5, n_bins=40)
    model.eval()
    x_a, x_b = torch.rand(8, 40, 5), torch.rand(8, 40, 5)
    with torch.no_grad():
        ab, ba = model(x_a, x_b), model(x_b, x_a)
        assert torch.equal(ab, -ba)
        torch.testing.assert_close(model.prob_a_above_b(x_b, x_a), 1 - model.prob_a_above_b(x_a, x_b))
        scores = model(x_a)  # one gene at a time: scores
        assert scores.shape == (8,)
        torch.testing.assert_close(scores, model.score(x_a))
        torch.testing.assert_close(ab, scores - model.score(x_b))


def test_ranknet_loss_targets() -> None:
    logits = torch.tensor([0.0, 0.0, 0.0])
    y_a, y_b = torch.tensor([2.0, 1.0, 1.0]), torch.tensor([1.0, 2.0, 1.0])
    # at logit 0 every target (1, 0, 1/2) costs log 2
    torch.testing.assert_close(ranknet_loss(logits, y_a, y_b), torch.tensor(np.log(2.0), dtype=torch.float32))
    big = torch.tensor([20.0, -20.0, 0.0])
    assert ranknet_loss(big, y_a, y_b) < 0.25


# -- DeepDiff ----------------------------------------------------------------------------------


def test_log2_fold_change_is_b_over_a() -> None:
    count_a, count_b = torch.tensor([1.0, 7.0]), torch.tensor([7.0, 1.0])
    torch.testing.assert_close(log2_fold_change(count_a, count_b), torch.tensor([2.0, -2.0]))


@pytest.mark.parametrize("variant,siamese", [("aux", False), ("aux", True), ("raw_d", False)])
def test_deepdiff_outputs_and_loss_terms(variant: str, siamese: bool) -> None:
    model, config = build_model("deepdiff", n_marks=3, n_bins=20, variant=variant, siamese=siamese)
    x_a, x_b = torch.rand(4, 20, 3), torch.rand(4, 20, 3)
    out = model(x_a, x_b, return_all=True)
    assert isinstance(out, DeepDiffOutput)
    torch.testing.assert_close(out.pred, model(x_a, x_b))
    for att in out.attention.values():
        torch.testing.assert_close(att.bin.sum(-1), torch.ones(4, 3))
        torch.testing.assert_close(att.mark.sum(-1), torch.ones(4))
    diff = torch.tensor([0.0, 3.0, -3.0, 1.0])
    terms = model.loss_terms(out, diff, torch.zeros(4), torch.zeros(4))
    expected_keys = {"mse"} | ({"aux"} if variant == "aux" else set()) | ({"contrastive"} if siamese else set())
    assert set(terms) == expected_keys
    torch.testing.assert_close(terms["mse"], ((out.pred - diff) ** 2).mean())
    if variant == "aux":
        assert out.embeddings[0].shape == (4, 3 * 2 * config.bin_hidden)
    with pytest.raises(ModelError):
        model(x_a, x_b[:2])


def test_deepdiff_contrastive_term_by_hand() -> None:
    from hmviz.models import contrastive_loss

    emb_a = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    emb_b = torch.tensor([[3.0, 4.0], [0.5, 0.0]])  # distances 5 and 0.5
    # pair 0 "same" (pulled): 25; pair 1 "different" (pushed, margin 2): (2 - 0.5)^2 = 2.25
    got = contrastive_loss(emb_a, emb_b, torch.tensor([0.0, 1.0]), margin=2.0)
    torch.testing.assert_close(got, torch.tensor((25.0 + 2.25) / 2))


def test_deepdiff_refuses_settings_its_variant_ignores() -> None:
    with pytest.raises(ModelError, match="aux_weight acts only with variant='aux'; this DeepDiff has variant='raw_d'"):
        build_model("deepdiff", n_marks=3, n_bins=20, aux_weight=0.0)  # raw_d, the default, has no auxiliary terms
    with pytest.raises(ModelError, match="contrastive_margin acts only with variant='aux' and siamese=True"):
        build_model("deepdiff", n_marks=3, n_bins=20, variant="aux", contrastive_margin=1.0)
    _, config = build_model("deepdiff", n_marks=3, n_bins=20, variant="aux", siamese=True, aux_weight=0.5,
                            contrastive_margin=1.0)
    assert (config.aux_weight, config.contrastive_margin) == (0.5, 1.0)


def test_deepdiff_siamese_needs_aux() -> None:
    with pytest.raises(ModelError, match="siamese"):
        build_model("deepdiff", n_marks=3, n_bins=20, variant="raw_d", siamese=True)


# -- configs and registry ----------------------------------------------------------------------


@pytest.mark.parametrize("name", list_models())
def test_config_round_trip_through_json(name: str) -> None:
    model, config = build_model(name, n_marks=4, n_bins=30)
    payload = json.loads(json.dumps(dataclasses.asdict(config)))
    assert type(config).from_dict(payload) == config
    rebuilt = build_from_config(name, payload)
    rebuilt.load_state_dict(model.state_dict())
    model.eval()
    rebuilt.eval()
    x = torch.rand(2, 30, 4)
    with torch.no_grad():
        args = (x, x.flip(1)) if get_spec(name).inputs != "single" else (x,)
        torch.testing.assert_close(rebuilt(*args), model(*args))
    for field in ("lr", "batch_size", "epochs", "optimizer", "grad_clip", "weight_decay", "n_marks", "n_bins"):
        assert field in payload


def test_paper_training_defaults() -> None:
    _, deepchrome = build_model("deepchrome", 5, 100)
    assert (deepchrome.n_filters, deepchrome.kernel_size, deepchrome.pool_size) == (50, 10, 5)
    paper = type(deepchrome).paper_defaults(5, 100)
    assert (paper.optimizer, paper.lr, paper.batch_size) == ("sgd", 1e-3, 1)
    _, attentive = build_model("attentivechrome", 5, 100)
    assert (attentive.lr, attentive.grad_clip, attentive.bin_hidden, attentive.mark_hidden) == (1e-3, 1.0, 32, 16)
    attentive_paper = type(attentive).paper_defaults(5, 100)
    assert (attentive_paper.lr, attentive_paper.batch_size) == (2e-4, 16)
    _, deepdiff = build_model("deepdiff", 5, 200)
    assert (deepdiff.lr, deepdiff.batch_size, deepdiff.contrastive_weight, deepdiff.contrastive_margin) == (
        1e-3,
        64,
        4.0,
        2.0,
    )
    deepdiff_paper = type(deepdiff).paper_defaults(5, 200)
    assert deepdiff.variant == "raw_d" and deepdiff_paper.variant == "aux"
    assert (deepdiff_paper.lr, deepdiff_paper.batch_size, deepdiff_paper.target_scaling) == (1e-4, 10, "none")
    _, simple = build_model("simplechrome", 5, 100)
    simple_paper = type(simple).paper_defaults(5, 100)
    assert (simple.latent_dim, simple.epochs, simple.kl_weight) == (32, 100, 5e-5)  # deviations: docs/training.md
    assert (simple_paper.latent_dim, simple_paper.epochs, simple_paper.kl_weight) == (10, 5, 5e-5)


def test_registry_lists_every_model_with_spec() -> None:
    assert list_models() == [
        "deepchrome",
        "attentivechrome",
        "simplechrome",
        "deepdiff",
        "ranker-deepchrome",
        "ranker-attentivechrome",
    ]
    for name, spec in MODEL_REGISTRY.items():
        assert spec.name == name
        assert spec.task in ("binary", "ranking", "differential")
        assert spec.inputs in ("single", "pair-of-genes", "two-cells")
        assert spec.description and "\n" not in spec.description
    assert get_spec("ranker-deepchrome").module_cls is PairwiseRanker


def test_unknown_model_name_lists_valid_names_and_closest() -> None:
    with pytest.raises(ModelError) as info:
        get_spec("attentive-chrome")
    message = str(info.value)
    assert "deepchrome" in message and "ranker-attentivechrome" in message
    assert "Did you mean 'attentivechrome'?" in message


def test_unknown_config_keys_are_named() -> None:
    with pytest.raises(ModelError, match="n_filter"):
        build_model("deepchrome", n_marks=5, n_bins=100, n_filter=20)
    _, config = build_model("deepchrome", n_marks=5, n_bins=100)
    payload = dataclasses.asdict(config) | {"colour": "red"}
    with pytest.raises(ModelError, match="colour"):
        build_from_config("deepchrome", payload)


def test_settings_are_typed_from_the_config() -> None:
    """``--set`` values become the config field's type, so the model card stores numbers, not strings."""
    settings = parse_settings("deepdiff", ["aux_weight=0", "siamese=TRUE", "grad_clip=none", "batch_size=32",
                                           "variant=aux", " lr = 1e-4 "])
    assert settings == {"aux_weight": 0.0, "siamese": True, "grad_clip": None, "batch_size": 32, "variant": "aux",
                        "lr": 1e-4}
    assert isinstance(settings["aux_weight"], float)
    _, config = build_model("deepdiff", n_marks=5, n_bins=100, **settings)
    assert config.siamese is True and config.grad_clip is None
    for bad, message in [("siamese=1", "true/false"), ("dropout=none", "a number; got 'none'"),
                         ("batch_size=2.0", "a whole number")]:
        with pytest.raises(ModelError, match=message):
            parse_settings("deepdiff", [bad])


@pytest.mark.parametrize("name", list_models())
def test_out_of_range_settings_are_model_errors(name: str) -> None:
    """Every size 0 or negative, every real-valued setting negative or NaN and every word outside its
    choices is refused with a ModelError naming the setting (what the CLI turns into one error line), never a crash in a layer."""
    fields = [f for f in dataclasses.fields(get_spec(name).config_cls) if f.name not in ("n_marks", "n_bins")]
    checked = 0
    for f in fields:
        if isinstance(f.default, str):  # a word from a fixed set (optimizer, variant, bin_lstm_impl)
            with pytest.raises(ModelError, match=f"{f.name} must be one of .*; got 'nonsense'"):
                build_model(name, n_marks=5, n_bins=100, **{f.name: "nonsense"})
            continue
        if isinstance(f.default, bool) or not isinstance(f.default, (int, float)):
            continue
        bad_values = [0, -3] if isinstance(f.default, int) else [-0.5, float("nan")]
        for bad in bad_values:
            with pytest.raises(ModelError, match=f.name):
                build_model(name, n_marks=5, n_bins=100, **{f.name: bad})
            checked += 1
    assert checked >= 8


@pytest.mark.parametrize("name", ["attentivechrome", "deepdiff"])
def test_unknown_lstm_impl_names_the_choices(name: str) -> None:
    with pytest.raises(ModelError, match="auto, native, grouped, per_mark, block; got 'fast'"):
        build_model(name, n_marks=5, n_bins=100, bin_lstm_impl="fast")


# -- every family learns -----------------------------------------------------------------------


def _fit(model: nn.Module, loss_fn, lr: float, steps: int = 200, params=None, until=None) -> list[float]:
    """Adam with clip-norm 1 (the LSTM papers' recipe); stops early once ``until()`` holds.

    ``until`` is checked every 5 steps in eval mode; the test then asserts it on the final model.
    """
    opt = torch.optim.Adam(model.parameters() if params is None else params, lr=lr)
    losses = []
    for step in range(steps):
        model.train()
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
        if until is not None and step % 5 == 4:
            model.eval()
            with torch.no_grad():
                if until():
                    break
    model.eval()
    return losses


def _separates(model: nn.Module, x: torch.Tensor, y: torch.Tensor):
    return lambda: bool(((model(x) > 0).float() == y).all())


def test_deepchrome_overfits_toy_batch() -> None:
    x, y = toy_binary(16, 20, 3)
    model, _ = build_model("deepchrome", n_marks=3, n_bins=20)
    _fit(
        model,
        lambda: nn.functional.binary_cross_entropy_with_logits(model(x), y),
        lr=1e-3,
        until=_separates(model, x, y),
    )
    with torch.no_grad():
        assert _separates(model, x, y)()


def test_attentivechrome_overfits_toy_batch(trained_attentivechrome) -> None:
    model, x, y = trained_attentivechrome
    with torch.no_grad():
        assert _separates(model, x, y)()


def test_simplechrome_two_stage_training() -> None:
    x, y = toy_binary(16, 20, 3)
    model, _ = build_model("simplechrome", n_marks=3, n_bins=20)
    vae_losses = _fit(model, lambda: model.vae_loss(x), lr=1e-2, steps=30, params=model.vae_parameters())
    assert vae_losses[-1] < 0.5 * vae_losses[0]
    model.freeze_vae()
    before = [p.detach().clone() for p in model.vae_parameters()]
    _fit(
        model,
        lambda: nn.functional.binary_cross_entropy_with_logits(model(x), y),
        lr=1e-2,
        params=model.head_parameters(),
        until=_separates(model, x, y),
    )
    assert all(torch.equal(a, b) for a, b in zip(before, model.vae_parameters()))
    with torch.no_grad():
        assert _separates(model, x, y)()
        assert model.reconstruct(x).shape == x.shape
        mu, logvar = model.encode(x)
        assert mu.shape == logvar.shape == (16, model.config.latent_dim)
        torch.testing.assert_close(model(x), model(x))  # mu, not a sample: deterministic


@pytest.mark.parametrize("name", ["ranker-deepchrome", "ranker-attentivechrome"])
def test_ranker_learns_order(name: str) -> None:
    from hmviz.metrics import concordance_index

    n, bins, marks = 8, 16, 2
    x = 0.05 * torch.rand(n, bins, marks)
    expression = torch.arange(n, dtype=torch.float32)
    x[:, bins // 2 - 2 : bins // 2 + 2, 0] += expression.view(n, 1) / n  # more mark 0 -> higher
    i, j = torch.triu_indices(n, n, offset=1)
    model, _ = build_model(name, n_marks=marks, n_bins=bins)

    def ordered() -> bool:
        return concordance_index(expression.numpy(), model(x).numpy()) > 0.9

    _fit(model, lambda: ranknet_loss(model(x[i], x[j]), expression[i], expression[j]), lr=3e-3, until=ordered)
    with torch.no_grad():
        assert ordered()


@pytest.mark.parametrize("variant", ["aux", "raw_d"])
def test_deepdiff_learns_sign_of_fold_change(variant: str) -> None:
    """Genes where cell B has more mark 0 than cell A are higher in B: positive predictions."""
    n, bins, marks = 8, 10, 2
    x_a = 0.05 * torch.rand(n, bins, marks)
    x_b = 0.05 * torch.rand(n, bins, marks)
    up = torch.arange(n) % 2 == 0
    x_b[up, :, 0] += 1.0
    x_a[~up, :, 0] += 1.0
    count_a = torch.where(up, 1.0, 15.0)
    count_b = torch.where(up, 15.0, 1.0)
    diff = log2_fold_change(count_a, count_b)  # +4 for "up" genes, -4 for the others
    abs_a, abs_b = torch.log2(count_a + 1), torch.log2(count_b + 1)
    model, _ = build_model("deepdiff", n_marks=marks, n_bins=bins, variant=variant)

    def signs_right() -> bool:
        pred = model(x_a, x_b)
        return bool((pred[up] > 1).all() and (pred[~up] < -1).all())

    _fit(model, lambda: model.loss(model(x_a, x_b, return_all=True), diff, abs_a, abs_b), lr=3e-3, until=signs_right)
    with torch.no_grad():
        assert signs_right()
        assert (model(x_b, x_a)[up] < 0).all()  # the same genes read B -> A go down


# -- baselines ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["logistic", "boosted-trees"])
def test_baselines_fit_and_score(name: str) -> None:
    x, y = toy_binary(40, 20, 3)
    est = fit_baseline(name, x.numpy(), y.numpy(), task="binary", seed=0)
    scores = baseline_scores(est, x.numpy())
    assert scores.shape == (40,) and scores.dtype == np.float64
    assert scores[y.numpy() == 1].min() > scores[y.numpy() == 0].max()
    target = x[:, 8:12, 0].mean(1).numpy()
    reg = fit_baseline(name, x.numpy(), target, task="regression", seed=0)
    assert np.corrcoef(baseline_scores(reg, x.numpy()), target)[0, 1] > 0.9


def test_baseline_errors() -> None:
    x, y = toy_binary(10, 20, 3)
    with pytest.raises(ModelError, match="logistic"):
        fit_baseline("logistc", x.numpy(), y.numpy())
    with pytest.raises(ModelError, match="both classes"):
        fit_baseline("logistic", x.numpy(), np.zeros(10))
    with pytest.raises(ModelError, match="genes, bins, marks"):
        fit_baseline("logistic", x.numpy()[:, :, 0], y.numpy())


# -- randomness of one run (hmviz.models._common) ---------------------------------------------------
def test_dropout_with_a_generator_gives_exactly_nn_dropout_from_the_same_state() -> None:
    from hmviz.models._common import Dropout

    x = torch.randn(64, 30, 5, requires_grad=True)
    generator = torch.Generator().manual_seed(7)
    ours = Dropout(0.3)
    ours.generator = generator
    torch.manual_seed(7)
    expected = nn.Dropout(0.3)(x)
    got = ours(x)
    assert torch.equal(got, expected)
    assert 0.2 < float((got == 0).float().mean()) < 0.4  # really drops about p of the values
    g_exp, = torch.autograd.grad(expected.sum(), x)
    g_got, = torch.autograd.grad(got.sum(), x)
    assert torch.equal(g_got, g_exp)
    assert torch.equal(ours.eval()(x), x)  # evaluation: identity


def _train_weights(name: str, seed: int, dataset, barrier=None) -> dict[str, torch.Tensor]:
    import threading

    from hmviz.options import TrainOptions
    from hmviz.training import train

    def in_step(_event) -> None:  # both runs take their steps in lockstep, so their draws interleave
        if barrier is not None:
            try:
                barrier.wait(timeout=5)
            except threading.BrokenBarrierError:
                pass

    options = TrainOptions(model=name, epochs=2, seed=seed, device="cpu", batch_size=16, patience=0,
                           model_overrides={"dropout": 0.5})
    return train(dataset, options, progress=in_step).model.state_dict()


def test_two_runs_in_threads_are_independent_and_each_equals_its_run_alone(one_torch_thread) -> None:
    """Two models trained at once in one process (as two users of the app) give bit for bit what
    each gives alone: the seed of one run does not move the other's weights, dropout or batches."""
    import threading

    from hmviz.data.synthetic import make_sample_dataset

    dataset, _ = make_sample_dataset(n_genes=80, seed=0)
    alone = {seed: _train_weights("deepchrome", seed, dataset) for seed in (1, 2)}
    barrier = threading.Barrier(2)
    together: dict[int, dict] = {}
    errors: list[BaseException] = []

    def run(seed: int) -> None:
        try:
            together[seed] = _train_weights("deepchrome", seed, dataset, barrier)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(seed,)) for seed in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for seed in (1, 2):
        assert together[seed].keys() == alone[seed].keys()
        for key in alone[seed]:
            assert torch.equal(together[seed][key], alone[seed][key]), (seed, key)
    assert not torch.equal(alone[1]["fc1.weight"], alone[2]["fc1.weight"])


def test_training_leaves_the_process_random_state_alone() -> None:
    from hmviz.data.synthetic import make_sample_dataset
    from hmviz.options import TrainOptions
    from hmviz.training import train

    dataset, _ = make_sample_dataset(n_genes=40, seed=0)
    torch.manual_seed(123)
    np.random.seed(123)
    expected_torch, expected_np = torch.rand(3), np.random.rand(3)
    torch.manual_seed(123)
    np.random.seed(123)
    train(dataset, TrainOptions(model="simplechrome", epochs=1, seed=5, device="cpu"))
    assert torch.equal(torch.rand(3), expected_torch)
    assert np.array_equal(np.random.rand(3), expected_np)


def test_auto_prefers_the_kernel_only_where_it_was_measured_faster(monkeypatch) -> None:
    """The kernel is written for AVX-512: "auto" takes it there (or when HMVIZ_NATIVE=1 asks), and
    the eager recurrence on other CPUs, where the kernel measured about 3x slower."""
    monkeypatch.setattr(_native, "load", lambda: object())
    monkeypatch.setattr(_native, "ready", lambda: object())  # built already
    monkeypatch.delenv("HMVIZ_NATIVE", raising=False)
    monkeypatch.setattr(_native, "cpu_has_avx512", lambda: False)
    assert not _native.preferred()
    assert PerMarkBiLSTM(2, 4).resolved_impl(torch.device("cpu")) == "grouped"
    monkeypatch.setenv("HMVIZ_NATIVE", "1")
    assert _native.preferred()
    monkeypatch.delenv("HMVIZ_NATIVE")
    monkeypatch.setattr(_native, "cpu_has_avx512", lambda: True)
    assert PerMarkBiLSTM(2, 4).resolved_impl(torch.device("cpu")) == "native"
    monkeypatch.setenv("HMVIZ_NATIVE", "0")
    assert not _native.preferred()


def test_a_model_keeps_the_implementation_it_started_with(monkeypatch) -> None:
    """A build finishing in the background (the app's) must not switch a running model to the kernel:
    "auto" is resolved once per model, the attention's use of the kernel too."""
    from hmviz.models._attention import ContextAttention

    monkeypatch.delenv("HMVIZ_NATIVE", raising=False)
    monkeypatch.setattr(_native, "cpu_has_avx512", lambda: True)
    monkeypatch.setattr(_native, "ready", lambda: None)  # not built yet
    lstm, attention = PerMarkBiLSTM(2, 4), ContextAttention(8, n_groups=2)
    assert lstm.resolved_impl(torch.device("cpu")) == "grouped"
    attention(torch.randn(3, 2, 5, 8))
    assert attention._kernel is False
    monkeypatch.setattr(_native, "ready", lambda: object())  # the build has finished
    assert lstm.resolved_impl(torch.device("cpu")) == "grouped"
    assert PerMarkBiLSTM(2, 4).resolved_impl(torch.device("cpu")) == "native"
    assert attention._kernel is False
