"""The attribution methods hmviz offers, one registry, one Captum call per method.

Every method meets one contract: inputs ``(genes, bins, marks)`` (or a tuple of such tensors for
gene pairs) in the model's input space -> attributions shaped like the inputs, to the model's
**logit** (or ranking score), never to a probability.

==========================  ============================================================================
method                      what a value means
==========================  ============================================================================
``integrated_gradients``    share of ``f(x) - f(baseline)`` due to each bin and mark; they sum to it
                            (completeness), up to the reported convergence delta
``saliency``                signed gradient ``df/dx`` at the input (local slope; no baseline)
``gradient_shap``           expected Integrated Gradients over a distribution of baselines (sampled
                            genes); sums to ``f(x) - E[f(baseline)]`` in expectation
``deeplift``                DeepLift rescale rule; exact completeness for CNN / MLP models only
``occlusion``               mean drop in output when a window of bins of one mark covering this bin is
                            replaced by the baseline (windows overlap: values are not additive)
``feature_ablation``        drop in output when the whole mark is replaced by the baseline, spread evenly
                            over the mark's bins (so the sum over bins is the mark's ablation effect)
==========================  ============================================================================

SmoothGrad (``smoothgrad=True``) averages a gradient method over ``nt_samples`` copies of the input
with Gaussian noise of standard deviation ``noise_stdev`` **in input units**: in hmviz's default
standardised input space one unit is about one per-mark standard deviation of log1p(reads), so the
default 0.15 is 15% of that. (GradientShap has this noise built in: with ``smoothgrad=True`` its
own samples get the noise, and ``nt_samples`` is not used.)
"""

from __future__ import annotations

import contextlib
import copy
import logging
import warnings
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from hmviz.errors import HmvizError, ModelError
from hmviz.explain._model_view import has_recurrent, require_module

log = logging.getLogger(__name__)

# Rows (genes x steps x perturbations) per forward pass: bounds memory, and batching is what makes
# LSTMs fast on CPU. Measured on the 2-core CPU here: about 2k rows is fastest for the CNNs; LSTMs keep
# states for every bin and fall out of cache above about 256 rows.
ROWS_PER_PASS = 2048
ROWS_PER_PASS_RECURRENT = 256

COMMON_OPTIONS: dict[str, object] = {
    "smoothgrad": False,   # wrap the method in NoiseTunnel (SmoothGrad); gradient methods only
    "noise_stdev": 0.15,   # SmoothGrad noise, absolute, in input units
    "nt_samples": 20,      # SmoothGrad: noisy copies per gene
    "seed": 0,             # for the stochastic parts (GradientShap, SmoothGrad)
    "rows_per_pass": None,  # None: ROWS_PER_PASS (ROWS_PER_PASS_RECURRENT for LSTM models)
}


def _always(model: nn.Module) -> bool:
    return isinstance(model, nn.Module)


def _deeplift_exact(model: nn.Module) -> bool:
    # DeepLift cannot see inside nn.LSTM/GRU (it falls back to plain gradients there), and
    # attention softmax over learned scores is not covered by its rules either.
    return isinstance(model, nn.Module) and not has_recurrent(model) and not any(
        isinstance(m, (nn.MultiheadAttention, nn.TransformerEncoderLayer)) for m in model.modules())


@dataclass(frozen=True)
class MethodSpec:
    """One attribution method, as the app lists it.

    Attributes:
        label: the name shown to users.
        needs_baseline: whether the method compares with a baseline.
        supports: ``supports(model) -> bool``: whether the method is valid (exact) for the model.
        exactness: what the numbers satisfy, in one line (shown under the result).
        options: the method's own options and their defaults (plus :data:`COMMON_OPTIONS`).
        additive: values sum to ``f(x) - f(baseline)`` (so a convergence delta is reported).
        gradient: a gradient method (SmoothGrad applies).
        refusal: why the method is refused for a model ``supports`` rejects.
    """

    label: str
    needs_baseline: bool
    supports: Callable[[nn.Module], bool]
    exactness: str
    options: dict = field(default_factory=dict)
    additive: bool = False
    gradient: bool = True
    refusal: str = ""


METHODS: dict[str, MethodSpec] = {
    "integrated_gradients": MethodSpec(
        "Integrated Gradients", True, _always,
        "sums to f(x) - f(baseline) up to the reported convergence delta (Gauss-Legendre quadrature)",
        {"n_steps": 50, "integration": "gausslegendre"}, additive=True),
    "saliency": MethodSpec(
        "Saliency", False, _always, "signed gradient at the input: a local slope, not a share of the output"),
    "gradient_shap": MethodSpec(
        "GradientShap", True, _always,
        "expected IG over sampled baseline genes: sums to f(x) - mean f(baseline) in expectation",
        {"n_samples": 20}, additive=True),
    "deeplift": MethodSpec(
        "DeepLift", True, _deeplift_exact, "sums to f(x) - f(baseline) exactly for CNN and MLP models",
        additive=True,
        refusal="DeepLift cannot see inside LSTMs (it silently falls back to plain gradients there), so it is "
                "not exact for this model. Use integrated_gradients, which is exact for every model."),
    "occlusion": MethodSpec(
        "Occlusion (bin windows)", True, _always,
        "mean output drop when a window of bins of one mark is set to the baseline; not additive",
        {"window_bins": 10, "stride_bins": 5}, gradient=False),
    "feature_ablation": MethodSpec(
        "Mark ablation", True, _always,
        "output drop when a whole mark is set to the baseline, spread evenly over its bins", gradient=False),
}


def check_method(name: str, model: nn.Module) -> MethodSpec:
    """The :class:`MethodSpec` for ``name``; a clear error for unknown names or unsupported models."""
    require_module(model)
    if name not in METHODS:
        raise HmvizError(f"Unknown attribution method '{name}'. Valid methods: {', '.join(METHODS)}.")
    spec = METHODS[name]
    if not spec.supports(model):
        raise ModelError(f"{spec.label} is not available for {type(model).__name__}: {spec.refusal}")
    return spec


def resolve_options(name: str, options: dict) -> dict:
    """The method's defaults updated with ``options``; unknown option names are an error."""
    spec = METHODS[name]
    allowed = {**COMMON_OPTIONS, **spec.options}
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise HmvizError(f"{spec.label} has no option(s) {', '.join(unknown)}; "
                         f"its options are {', '.join(sorted(allowed))}.")
    out = {**allowed, **{k: v for k, v in options.items() if v is not None}}
    if out["smoothgrad"] and not spec.gradient:
        raise HmvizError(f"SmoothGrad averages gradients; it does not apply to {spec.label}. "
                         "Choose saliency, integrated_gradients, gradient_shap or deeplift.")
    if name == "integrated_gradients" and out["integration"] not in (
            "gausslegendre", "riemann_trapezoid", "riemann_left", "riemann_right", "riemann_middle"):
        raise HmvizError(f"Unknown integration '{out['integration']}'; use gausslegendre or riemann_trapezoid.")
    for key in ("n_steps", "n_samples", "window_bins", "stride_bins", "nt_samples"):
        if key in out and int(out[key]) < 1:
            raise HmvizError(f"{key} must be at least 1; got {out[key]}.")
    return out


@contextlib.contextmanager
def seeded(seed: int):
    """Seed torch and NumPy's global generators (Captum draws from them), then restore their state.

    Like Captum's own draws this touches process-wide state: two stochastic attributions running at
    the same moment in two threads may interleave their draws (results stay valid, not reproducible).
    """
    state = np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        np.random.seed(seed % (2**32))
        try:
            yield
        finally:
            np.random.set_state(state)


def rows_budget(opts: dict, recurrent: bool) -> int:
    """Rows per forward pass: the ``rows_per_pass`` option, else the default for the model kind."""
    return int(opts["rows_per_pass"] or (ROWS_PER_PASS_RECURRENT if recurrent else ROWS_PER_PASS))


def _rows_per_gene(name: str, opts: dict, n_perturbations: int) -> int:
    rows = {"integrated_gradients": opts.get("n_steps", 1), "gradient_shap": opts.get("n_samples", 1),
            "deeplift": 2, "saliency": 1}.get(name, n_perturbations)
    return rows * (opts["nt_samples"] if opts["smoothgrad"] and name != "gradient_shap" else 1)


def _mark_mask(inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """One ablation group per mark and input: ids 0..M-1 for the first input, M..2M-1 for the second."""
    out = []
    for k, x in enumerate(inputs):
        m = x.shape[2]
        out.append((torch.arange(m, device=x.device) + k * m).view(1, 1, m).expand(1, x.shape[1], m))
    return tuple(out)


def attribute(
    forward: nn.Module,
    inputs: tuple[torch.Tensor, ...],
    baselines: tuple[torch.Tensor, ...] | None,
    name: str,
    opts: dict,
    recurrent: bool,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[torch.Tensor, ...]:
    """Run method ``name`` on ``inputs`` in chunks of genes; attributions shaped like the inputs.

    ``forward`` maps the inputs to one output per gene (see ``_model_view``). ``baselines``: one
    tensor per input, ``(1, bins, marks)`` (GradientShap: ``(K, bins, marks)``).
    """
    from captum.attr import (DeepLift, FeatureAblation, GradientShap, IntegratedGradients, NoiseTunnel, Occlusion,
                             Saliency)  # Captum takes seconds to import: only when attributing

    spec = METHODS[name]
    n_genes, n_bins, n_marks = inputs[0].shape
    if name == "deeplift":
        # DeepLift hangs hooks and attributes on the modules while it runs: work on a private copy
        # so that the shared model is never touched, even transiently.
        forward = copy.deepcopy(forward)
    budget = rows_budget(opts, recurrent)
    if name == "occlusion":
        w, s = min(int(opts["window_bins"]), n_bins), int(opts["stride_bins"])
        n_windows = 1 + -(-(n_bins - w) // s)  # Captum adds a clipped last window to cover the end
        n_perturb = n_windows * n_marks * len(inputs)
    else:
        n_perturb = n_marks * len(inputs)
    per_gene = _rows_per_gene(name, opts, n_perturb)
    chunk = max(1, budget // per_gene)

    algo = {"integrated_gradients": IntegratedGradients, "saliency": Saliency, "gradient_shap": GradientShap,
            "deeplift": DeepLift, "occlusion": Occlusion, "feature_ablation": FeatureAblation}[name](forward)
    kw: dict = {}
    if name == "integrated_gradients":
        kw = dict(n_steps=int(opts["n_steps"]), method=opts["integration"], internal_batch_size=budget)
    elif name == "saliency":
        kw = dict(abs=False)
    elif name == "gradient_shap":
        # GradientShap has SmoothGrad's noise built in (its own `stdevs`): no NoiseTunnel around it.
        kw = dict(n_samples=int(opts["n_samples"]), stdevs=float(opts["noise_stdev"]) if opts["smoothgrad"] else 0.0)
    elif name == "occlusion":
        kw = dict(sliding_window_shapes=tuple((min(int(opts["window_bins"]), n_bins), 1) for _ in inputs),
                  strides=tuple((int(opts["stride_bins"]), 1) for _ in inputs),
                  perturbations_per_eval=max(1, min(n_perturb, budget // min(chunk, n_genes))))
    elif name == "feature_ablation":
        kw = dict(feature_mask=_mark_mask(inputs),
                  perturbations_per_eval=max(1, min(n_perturb, budget // min(chunk, n_genes))))
    if spec.needs_baseline:
        kw["baselines"] = baselines
    if opts["smoothgrad"] and name != "gradient_shap":
        inner_rows = per_gene // opts["nt_samples"]
        kw.update(nt_type="smoothgrad", nt_samples=int(opts["nt_samples"]), stdevs=float(opts["noise_stdev"]),
                  nt_samples_batch_size=max(1, min(int(opts["nt_samples"]), budget // max(1, inner_rows * chunk))))
        algo = NoiseTunnel(algo)

    pieces: list[tuple[torch.Tensor, ...]] = []
    with seeded(int(opts["seed"])), warnings.catch_warnings():
        # Captum announces on every DeepLift call that it hangs hooks on the (copied) model.
        warnings.filterwarnings("ignore", message="Setting forward, backward hooks", category=UserWarning)
        for start in range(0, n_genes, chunk):
            part = tuple(x[start:start + chunk].detach().requires_grad_(spec.gradient) for x in inputs)
            out = algo.attribute(part, **kw)
            pieces.append(tuple(t.detach() for t in out))
            if progress is not None:
                progress(min(start + chunk, n_genes), n_genes)
    result = tuple(torch.cat([p[k] for p in pieces]) for k in range(len(inputs)))
    if name == "feature_ablation":
        # Captum repeats each group's effect on every element of the group; spread it instead, so
        # that the sum over a mark's bins is the effect of ablating that mark.
        result = tuple(r / n_bins for r in result)
    return result


def forward_in_batches(forward: nn.Module, inputs: Sequence[torch.Tensor], budget: int) -> np.ndarray:
    """``forward(*inputs)`` in batches of ``budget`` genes without gradients; float64 ``(genes,)``."""
    n = inputs[0].shape[0]
    out = []
    with torch.no_grad():
        for start in range(0, n, budget):
            out.append(forward(*(x[start:start + budget] for x in inputs)).double().cpu())
    return torch.cat(out).numpy() if out else np.zeros(0)
