"""Models that predict a gene's expression from its binned histone-mark signal.

Every model is a plain ``nn.Module`` with one ``@dataclass`` config. Inputs are float32 tensors
shaped ``(batch, bins, marks)``; single-cell models return one logit per gene ``(batch,)``.
The registry maps a name to its :class:`ModelSpec`::

    module, config = build_model("attentivechrome", n_marks=5, n_bins=100, lr=1e-4)
    same = build_from_config("attentivechrome", dataclasses.asdict(config))

Families that predict one score per gene (DeepChrome, AttentiveChrome, SimpleChrome, the rankers'
backbones) can also be trained with MSE on a continuous target; ``ModelSpec.task`` is the default.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from torch import nn

from hmviz.errors import ModelError
from hmviz.model_families import FAMILIES, Inputs, Task, get_family
from hmviz.models._common import ModelConfig, check_input, field_kinds
from hmviz.models.attentivechrome import AttentionOutput, AttentiveChrome, AttentiveChromeConfig
from hmviz.models.deepchrome import DeepChrome, DeepChromeConfig
from hmviz.models.deepdiff import DeepDiff, DeepDiffConfig, DeepDiffOutput, contrastive_loss, log2_fold_change
from hmviz.models.ranker import (
    PairwiseRanker,
    RankerAttentiveChromeConfig,
    RankerDeepChromeConfig,
    ranknet_loss,
    ranknet_targets,
)
from hmviz.models.simplechrome import SimpleChrome, SimpleChromeConfig


@dataclass(frozen=True)
class ModelSpec:
    """What the registry knows about one model.

    Attributes:
        name: registry name (``"deepchrome"``, ...).
        config_cls: the config dataclass.
        module_cls: the ``nn.Module`` class that :attr:`build` returns.
        build: ``config -> module``.
        description: one line for the UI.
        task, inputs: the family's (:data:`hmviz.model_families.FAMILIES`, the table that needs no PyTorch).
    """

    name: str
    config_cls: type[ModelConfig]
    module_cls: type[nn.Module]
    build: Callable[[Any], nn.Module]
    description: str

    @property
    def task(self) -> Task:
        """Default task: ``"binary"`` (high/low expression), ``"ranking"`` (which gene of a pair is higher)
        or ``"differential"`` (log2 fold change between two cells)."""
        return FAMILIES[self.name].task

    @property
    def inputs(self) -> Inputs:
        """``"single"`` (one gene), ``"pair-of-genes"`` (two genes, one cell) or ``"two-cells"`` (one gene
        in two cells)."""
        return FAMILIES[self.name].inputs


MODEL_REGISTRY: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            "deepchrome",
            DeepChromeConfig,
            DeepChrome,
            DeepChrome,
            "Convolutional network that scans the mark profiles for local patterns (DeepChrome, 2016).",
        ),
        ModelSpec(
            "attentivechrome",
            AttentiveChromeConfig,
            AttentiveChrome,
            AttentiveChrome,
            "Recurrent network that shows which bins and which marks it attends to (AttentiveChrome, 2017).",
        ),
        ModelSpec(
            "simplechrome",
            SimpleChromeConfig,
            SimpleChrome,
            SimpleChrome,
            f"Compresses each gene's mark profile to {SimpleChromeConfig.__dataclass_fields__['latent_dim'].default} "
            "numbers (a VAE; the paper used 10), then classifies those (SimpleChrome, 2020).",
        ),
        ModelSpec(
            "deepdiff",
            DeepDiffConfig,
            DeepDiff,
            DeepDiff,
            "Predicts how much a gene's expression changes between two cell types from both cells' marks (DeepDiff, 2018).",
        ),
        ModelSpec(
            "ranker-deepchrome",
            RankerDeepChromeConfig,
            PairwiseRanker,
            lambda config: PairwiseRanker(DeepChrome(config)),
            "Says which of two genes is expressed higher, scoring each gene with a DeepChrome network.",
        ),
        ModelSpec(
            "ranker-attentivechrome",
            RankerAttentiveChromeConfig,
            PairwiseRanker,
            lambda config: PairwiseRanker(AttentiveChrome(config)),
            "Says which of two genes is expressed higher, scoring each gene with an AttentiveChrome network.",
        ),
    )
}


_LAZY_BASELINES = ("BASELINES", "baseline_scores", "fit_baseline")


def __getattr__(name: str) -> Any:
    # The scikit-learn baselines load on first use: importing sklearn costs about a second, and
    # most callers of hmviz.models never need it.
    if name in _LAZY_BASELINES:
        from hmviz.models import baselines

        return getattr(baselines, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def list_models() -> list[str]:
    """Registry names, in display order."""
    return list(MODEL_REGISTRY)


#: The training settings :func:`training_defaults` reports (``python -m hmviz models``).
TRAINING_SETTINGS = ("epochs", "batch_size", "lr", "min_steps", "ema_decay")


def training_defaults(name: str) -> dict[str, Any]:
    """Model ``name``'s default training settings: the epoch cap, batch size, learning rate, warm-up
    (``min_steps``, None: none) and weight average (``ema_decay``, None: off); for SimpleChrome also
    the epochs of its first (VAE) stage, ``vae_epochs``, which come before the capped ones."""
    fields = get_spec(name).config_cls.__dataclass_fields__
    return {key: fields[key].default for key in (*TRAINING_SETTINGS, "vae_epochs") if key in fields}


def get_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` for ``name``; an unknown name raises :class:`ModelError` with the valid names."""
    return MODEL_REGISTRY[get_family(name).name]


def build_model(name: str, n_marks: int, n_bins: int, **overrides: Any) -> tuple[nn.Module, ModelConfig]:
    """Build model ``name`` for ``n_marks`` marks x ``n_bins`` bins; ``overrides`` set config fields.

    Returns ``(module, config)``. Unknown override names raise :class:`ModelError`.
    """
    spec = get_spec(name)
    config = spec.config_cls.from_dict({"n_marks": n_marks, "n_bins": n_bins, **overrides}, saved=False)
    return spec.build(config), config


_DATA_SHAPE = ("n_marks", "n_bins")


def parse_settings(name: str, pairs: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """``["variant=raw_d", "dropout=0.5"]`` -> config overrides for model ``name``, typed and checked.

    Each value is read as the setting's type (from the config dataclass): numbers, ``true``/``false``,
    ``none`` where the setting may be empty, or one of a fixed set of words. The data shape
    (``n_marks``, ``n_bins``) comes from the data and cannot be set. A malformed pair, an unknown
    setting or a value of the wrong type raises :class:`ModelError` naming it and the valid choices.
    """
    spec = get_spec(name)
    hints = typing.get_type_hints(spec.config_cls)
    fields = {f.name: f for f in dataclasses.fields(spec.config_cls) if f.name not in _DATA_SHAPE}
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key, raw = key.strip(), raw.strip()
        if not sep or not key:
            raise ModelError(f"A model setting is KEY=VALUE, e.g. dropout=0.5; got {pair!r}.")
        if key in _DATA_SHAPE:
            raise ModelError(f"{key} is set by the data (its marks and bins), not by a setting; remove {pair!r}.")
        if key in spec.config_cls.RETIRED:
            raise ModelError(f"{name} has no setting {key!r}: {spec.config_cls.RETIRED[key][1]}")
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ModelError(f"{name} has no setting {key!r}.{hint} Its settings: {', '.join(sorted(fields))}.")
        out[key] = _typed(name, key, raw, hints[key])
    return out


def _typed(model: str, key: str, raw: str, hint: Any) -> Any:
    """``raw`` as a value of type ``hint`` (int, float, bool, str, Literal, and unions of them with None)."""
    options = field_kinds(hint)
    if type(None) in options and raw.lower() in ("none", "null"):
        return None
    words: list[str] = []
    for option in options:
        if typing.get_origin(option) is typing.Literal:
            words += [str(v) for v in typing.get_args(option)]
            if raw in words:
                return raw
        elif option is bool:
            if raw.lower() in ("true", "false"):
                return raw.lower() == "true"
            words.append("true/false")
        elif option is int:
            try:
                return int(raw)
            except ValueError:
                words.append("a whole number")
        elif option is float:
            try:
                return float(raw)
            except ValueError:
                words.append("a number")
        elif option is str:
            return raw
    if type(None) in options:
        words.append("none")
    raise ModelError(f"{model} setting {key} takes {' or '.join(words)}; got {raw!r}.")


def build_from_config(name: str, config: dict[str, Any] | ModelConfig) -> nn.Module:
    """Rebuild model ``name`` from a config dict (``dataclasses.asdict`` output, e.g. a model card).

    Unknown keys raise :class:`ModelError` naming them.
    """
    spec = get_spec(name)
    if isinstance(config, ModelConfig):
        if not isinstance(config, spec.config_cls):
            raise ModelError(f"Model {name!r} needs a {spec.config_cls.__name__}, got {type(config).__name__}.")
        return spec.build(config)
    return spec.build(spec.config_cls.from_dict(dict(config)))


__all__ = [
    "BASELINES",
    "MODEL_REGISTRY",
    "AttentionOutput",
    "AttentiveChrome",
    "AttentiveChromeConfig",
    "DeepChrome",
    "DeepChromeConfig",
    "DeepDiff",
    "DeepDiffConfig",
    "DeepDiffOutput",
    "ModelConfig",
    "ModelSpec",
    "PairwiseRanker",
    "RankerAttentiveChromeConfig",
    "RankerDeepChromeConfig",
    "SimpleChrome",
    "SimpleChromeConfig",
    "baseline_scores",
    "build_from_config",
    "parse_settings",
    "build_model",
    "check_input",
    "contrastive_loss",
    "fit_baseline",
    "get_spec",
    "list_models",
    "log2_fold_change",
    "ranknet_loss",
    "ranknet_targets",
]
