"""The attribution methods hmviz offers, one registry, one Captum call per method.

Every method meets one contract: inputs ``(genes, bins, marks)`` (or a tuple of such tensors for
gene pairs) in the model's input space -> attributions shaped like the inputs, to the model's
**logit** (or ranking score), never to a probability.

Each method declares its **kind** (:data:`KINDS`): what its numbers are, and so which words may
describe them.

==========================  ============  ==================================================================
method (Captum class)       kind          what a value means
==========================  ============  ==================================================================
``integrated_gradients``    additive      share of ``f(x) - f(reference)`` due to each bin and mark; they add
(IntegratedGradients)                     up to it up to the gap, which hmviz drives below 1% of the
                                          difference by doubling the steps (up to ``max_steps``)
``gradient_shap``           additive      expected IG over sampled reference genes: adds up to
(GradientShap)                            ``f(x) - mean f(reference)`` in expectation (samples doubled alike)
``deeplift`` (DeepLift)     additive      rescale rule; exact completeness for CNN / MLP models only
``saliency`` (Saliency)     sensitivity   signed gradient ``df/dx`` at the input (a local slope; no reference)
``occlusion`` (Occlusion)   removal       mean change in output when a window of bins of one mark covering
                                          this bin is replaced by the reference (windows overlap)
``feature_ablation``        removal       change in output when the whole mark is replaced by the reference,
(FeatureAblation)                         spread evenly over the mark's bins
==========================  ============  ==================================================================

The output is a logit (a classifier's logit of "high", a ranker's score) or, for DeepDiff, a
log2 fold change (:func:`output_unit`); never a probability.

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

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
    "smoothgrad": False,  # wrap the method in NoiseTunnel (SmoothGrad); gradient methods only
    "noise_stdev": 0.15,  # SmoothGrad noise, absolute, in input units
    "nt_samples": 20,  # SmoothGrad: noisy copies per gene
    "seed": 0,  # for the stochastic parts (GradientShap, SmoothGrad)
    "rows_per_pass": None,  # None: ROWS_PER_PASS (ROWS_PER_PASS_RECURRENT for LSTM models)
}


def _always(model: nn.Module) -> bool:
    return isinstance(model, nn.Module)


def _deeplift_exact(model: nn.Module) -> bool:
    # DeepLift cannot see inside nn.LSTM/GRU (it falls back to plain gradients there), and
    # attention softmax over learned scores is not covered by its rules either.
    return (
        isinstance(model, nn.Module)
        and not has_recurrent(model)
        and not any(isinstance(m, (nn.MultiheadAttention, nn.TransformerEncoderLayer)) for m in model.modules())
    )


@dataclass(frozen=True)
class MethodKind:
    """What a method's numbers are, and the only words hmviz uses for them.

    Attributes:
        name: ``"additive"``, ``"sensitivity"`` or ``"removal"``.
        additive: the values share out ``f(x) - f(reference)``: they add up to it (up to the gap).
        noun: what one value is called (table headers, axis titles): "contribution", ...
        plural: the noun for several values: "contributions", "slopes", "effects of removal".
        meaning: one line on what a value means, shown under every result.
        sentence: how the sentence states the marks: ``"sums"`` (numbers that add up) or ``"ranks"``.
    """

    name: str
    additive: bool
    noun: str
    plural: str
    meaning: str
    sentence: str


KINDS: dict[str, MethodKind] = {
    "additive": MethodKind(
        "additive",
        True,
        "contribution",
        "contributions",
        "each value is a share of the output minus its value at the reference; together they add up to it, "
        "up to the gap shown",
        "sums",
    ),
    "sensitivity": MethodKind(
        "sensitivity",
        False,
        "sensitivity (slope)",
        "slopes",
        "each value is the local slope of the output at the input (how fast it moves for a small change of "
        "that bin); slopes are not shares of the output and do not add up to it",
        "ranks",
    ),
    "removal": MethodKind(
        "removal",
        False,
        "effect of removal",
        "effects of removal",
        "each value is the change in the output when that part of the input is replaced by the reference; "
        "the effects overlap and do not add up to the output",
        "ranks",
    ),
}


@dataclass(frozen=True)
class MethodSpec:
    """One attribution method, as the app lists it.

    Attributes:
        label: the name shown to users.
        captum: the Captum class (in ``captum.attr``) that computes it.
        kind: a key of :data:`KINDS`: what the numbers are.
        needs_baseline: whether the method compares with a reference input (a baseline).
        supports: ``supports(model) -> bool``: whether the method is valid (exact) for the model.
        exactness: what the numbers satisfy, in one line (shown under the result).
        options: the method's own options and their defaults (plus :data:`COMMON_OPTIONS`).
        gradient: a gradient method (SmoothGrad applies).
        refinement: for additive methods whose gap shrinks with more work, the option doubled until the
            gap is within ``tolerance`` of the output difference (``n_steps``, ``n_samples``), and its cap.
        refusal: why the method is refused for a model ``supports`` rejects.
    """

    label: str
    captum: str
    kind: str
    needs_baseline: bool
    supports: Callable[[nn.Module], bool]
    exactness: str
    options: dict = field(default_factory=dict)
    gradient: bool = True
    refinement: tuple[str, str] | None = None
    refusal: str = ""

    @property
    def additive(self) -> bool:
        return KINDS[self.kind].additive

    @property
    def meaning(self) -> str:
        return KINDS[self.kind].meaning

    def value_title(self, unit: str) -> str:
        """Axis / colour-bar title for this method's values: ``contribution (logit)``, ``slope (logit per
        input unit)``, ``effect of removal (log2 fold change)``; the chart's title says what of."""
        return {
            "additive": f"contribution ({unit})",
            "sensitivity": f"slope ({unit} per input unit)",
            "removal": f"effect of removal ({unit})",
        }[self.kind]


#: Integrated Gradients doubles its steps (GradientShap its samples) until
#: ``|sum - output difference| <= tolerance * |output difference|`` or the cap is reached.
TOLERANCE = 0.01
MAX_STEPS = 512
MAX_SAMPLES = 320

METHODS: dict[str, MethodSpec] = {
    "integrated_gradients": MethodSpec(
        "Integrated Gradients",
        "IntegratedGradients",
        "additive",
        True,
        _always,
        "adds up to the output minus its value at the reference; the steps are doubled (up to "
        f"{MAX_STEPS}) until the gap is within 1% of that difference",
        {"n_steps": 50, "integration": "gausslegendre", "max_steps": MAX_STEPS, "tolerance": TOLERANCE},
        refinement=("n_steps", "max_steps"),
    ),
    "saliency": MethodSpec(
        "Saliency",
        "Saliency",
        "sensitivity",
        False,
        _always,
        "signed gradient at the input: a local slope, not a share of the output",
    ),
    "gradient_shap": MethodSpec(
        "GradientShap",
        "GradientShap",
        "additive",
        True,
        _always,
        "expected Integrated Gradients over sampled reference genes: adds up to the output minus its mean at "
        f"the references in expectation; the samples are doubled (up to {MAX_SAMPLES}) until the gap is "
        "within 1% of that difference",
        {"n_samples": 20, "max_samples": MAX_SAMPLES, "tolerance": TOLERANCE},
        refinement=("n_samples", "max_samples"),
    ),
    "deeplift": MethodSpec(
        "DeepLift",
        "DeepLift",
        "additive",
        True,
        _deeplift_exact,
        "adds up to the output minus its value at the reference, exactly for CNN and MLP models",
        refusal="DeepLift cannot see inside LSTMs (it silently falls back to plain gradients there), so it is "
        "not exact for this model. Use integrated_gradients, which is exact for every model.",
    ),
    "occlusion": MethodSpec(
        "Occlusion (bin windows)",
        "Occlusion",
        "removal",
        True,
        _always,
        "mean change in the output when a window of bins of one mark is set to the reference; windows "
        "overlap, so the values do not add up to the output",
        {"window_bins": 10, "stride_bins": 5},
        gradient=False,
    ),
    "feature_ablation": MethodSpec(
        "Mark ablation",
        "FeatureAblation",
        "removal",
        True,
        _always,
        "change in the output when a whole mark is set to the reference, spread evenly over its bins; "
        "the marks' effects do not add up to the output",
        gradient=False,
    ),
}


def output_unit(task: str | None) -> str:
    """The unit of what is explained: ``"log2 fold change"`` for a differential (two-cell) model,
    else ``"logit"`` (a classifier's logit of high expression, a ranker's score: both log-odds)."""
    return "log2 fold change" if task == "differential" else "logit"


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
        raise HmvizError(
            f"{spec.label} has no option(s) {', '.join(unknown)}; its options are {', '.join(sorted(allowed))}."
        )
    out = {**allowed, **{k: v for k, v in options.items() if v is not None}}
    if out["smoothgrad"] and not spec.gradient:
        raise HmvizError(
            f"SmoothGrad averages gradients; it does not apply to {spec.label}. "
            "Choose saliency, integrated_gradients, gradient_shap or deeplift."
        )
    if name == "integrated_gradients" and out["integration"] not in (
        "gausslegendre",
        "riemann_trapezoid",
        "riemann_left",
        "riemann_right",
        "riemann_middle",
    ):
        raise HmvizError(f"Unknown integration '{out['integration']}'; use gausslegendre or riemann_trapezoid.")
    for key in ("n_steps", "n_samples", "window_bins", "stride_bins", "nt_samples"):
        if key in out and int(out[key]) < 1:
            raise HmvizError(f"{key} must be at least 1; got {out[key]}.")
    if spec.refinement is not None:
        work, cap = spec.refinement
        out[cap] = max(int(out[cap]), int(out[work]))  # a start above the cap is kept as given
        if not 0 < float(out["tolerance"]) < 1:
            raise HmvizError(
                f"tolerance is a fraction of the output difference, between 0 and 1; got {out['tolerance']}."
            )
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
    rows = {
        "integrated_gradients": opts.get("n_steps", 1),
        "gradient_shap": opts.get("n_samples", 1),
        "deeplift": 2,
        "saliency": 1,
    }.get(name, n_perturbations)
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
    import captum.attr  # Captum takes seconds to import: only when attributing

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

    algo = getattr(captum.attr, spec.captum)(forward)
    kw: dict = {}
    if name == "integrated_gradients":
        kw = dict(n_steps=int(opts["n_steps"]), method=opts["integration"], internal_batch_size=budget)
    elif name == "saliency":
        kw = dict(abs=False)
    elif name == "gradient_shap":
        # GradientShap has SmoothGrad's noise built in (its own `stdevs`): no NoiseTunnel around it.
        kw = dict(n_samples=int(opts["n_samples"]), stdevs=float(opts["noise_stdev"]) if opts["smoothgrad"] else 0.0)
    elif name == "occlusion":
        kw = dict(
            sliding_window_shapes=tuple((min(int(opts["window_bins"]), n_bins), 1) for _ in inputs),
            strides=tuple((int(opts["stride_bins"]), 1) for _ in inputs),
            perturbations_per_eval=max(1, min(n_perturb, budget // min(chunk, n_genes))),
        )
    elif name == "feature_ablation":
        kw = dict(
            feature_mask=_mark_mask(inputs),
            perturbations_per_eval=max(1, min(n_perturb, budget // min(chunk, n_genes))),
        )
    if spec.needs_baseline:
        kw["baselines"] = baselines
    if opts["smoothgrad"] and name != "gradient_shap":
        inner_rows = per_gene // opts["nt_samples"]
        kw.update(
            nt_type="smoothgrad",
            nt_samples=int(opts["nt_samples"]),
            stdevs=float(opts["noise_stdev"]),
            nt_samples_batch_size=max(1, min(int(opts["nt_samples"]), budget // max(1, inner_rows * chunk))),
        )
        algo = captum.attr.NoiseTunnel(algo)

    pieces: list[tuple[torch.Tensor, ...]] = []
    with seeded(int(opts["seed"])), warnings.catch_warnings():
        # Captum announces on every DeepLift call that it hangs hooks on the (copied) model.
        warnings.filterwarnings("ignore", message="Setting forward, backward hooks", category=UserWarning)
        for start in range(0, n_genes, chunk):
            part = tuple(x[start : start + chunk].detach().requires_grad_(spec.gradient) for x in inputs)
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


@dataclass
class Converged:
    """Attributions of an additive method with their measured gap and the work it took.

    Attributes:
        values: one tensor per input, shaped like the inputs.
        gap: ``(genes,)`` ``sum of the attributions over every input - explained``, float64.
        work: ``(genes,)`` the steps (IG) or samples (GradientShap) used per gene; None for other methods.
        cap_reached: ``(genes,)`` True where the cap was reached before the gap fell within tolerance;
            None for methods that are not refined.
    """

    values: tuple[torch.Tensor, ...]
    gap: np.ndarray
    work: np.ndarray | None
    cap_reached: np.ndarray | None


def attribute_converged(
    forward: nn.Module,
    inputs: tuple[torch.Tensor, ...],
    baselines: tuple[torch.Tensor, ...],
    name: str,
    opts: dict,
    recurrent: bool,
    explained: np.ndarray,
    progress: Callable[[int, int], None] | None = None,
) -> Converged:
    """:func:`attribute` for an additive method, refined until its gap is small enough.

    ``explained``: ``(genes,)`` what the attributions should add up to, ``f(x) - f(reference)``.
    For Integrated Gradients (GradientShap) the genes whose ``|gap| > tolerance * |explained|`` are
    attributed again with twice the steps (samples), until every gene is within tolerance or the cap
    (``max_steps`` / ``max_samples``) is reached; those genes are flagged in ``cap_reached``.
    """
    spec = METHODS[name]
    explained = np.asarray(explained, dtype=np.float64)
    values = list(attribute(forward, inputs, baselines, name, opts, recurrent, progress))

    def gaps(vals: Sequence[torch.Tensor], rows) -> np.ndarray:
        return sum(v.double().sum(dim=(1, 2)).cpu().numpy() for v in vals) - explained[rows]

    gap = gaps(values, slice(None))
    if spec.refinement is None:
        return Converged(tuple(values), gap, None, None)
    key, cap_key = spec.refinement
    n, cap = int(opts[key]), int(opts[cap_key])
    work = np.full(len(gap), n, dtype=np.int64)
    cap_reached = np.zeros(len(gap), dtype=bool)
    tol = float(opts["tolerance"])
    todo = np.flatnonzero(np.abs(gap) > tol * np.abs(explained))
    while todo.size:
        if n >= cap:
            cap_reached[todo] = True
            log.info(
                "%s: the gap of %d gene(s) is above %.0f%% of the output difference at the cap of %d %s.",
                spec.label,
                todo.size,
                100 * tol,
                cap,
                key,
            )
            break
        n = min(2 * n, cap)
        idx = torch.as_tensor(todo, dtype=torch.long)
        part = attribute(
            forward, tuple(x[idx.to(x.device)] for x in inputs), baselines, name, {**opts, key: n}, recurrent
        )
        for k, v in enumerate(part):
            values[k][idx.to(values[k].device)] = v
        gap[todo] = gaps(part, todo)
        work[todo] = n
        todo = todo[np.abs(gap[todo]) > tol * np.abs(explained[todo])]
    return Converged(tuple(values), gap, work, cap_reached)


def forward_in_batches(forward: nn.Module, inputs: Sequence[torch.Tensor], budget: int) -> np.ndarray:
    """``forward(*inputs)`` in batches of ``budget`` genes without gradients; float64 ``(genes,)``."""
    n = inputs[0].shape[0]
    out = []
    with torch.no_grad():
        for start in range(0, n, budget):
            out.append(forward(*(x[start : start + budget] for x in inputs)).double().cpu())
    return torch.cat(out).numpy() if out else np.zeros(0)
