"""Pieces every model shares: the config base class and the input-shape check.

Every model config is a ``@dataclass`` that derives from :class:`ModelConfig`. It holds the data
shape (``n_marks``, ``n_bins``), every architectural hyperparameter and the training defaults
(``optimizer``, ``lr``, ``batch_size``, ``epochs``, ``grad_clip``, ``weight_decay``) that the
training engine reads. ``dataclasses.asdict(config)`` is JSON-serialisable and
``Config.from_dict(d)`` rebuilds it.

Randomness of a training run (see :func:`seeded_init`, :class:`Dropout`, :func:`use_generator`):
weights are initialised from torch's global generator seeded with the run's seed, under a process
lock and inside ``torch.random.fork_rng`` (so no other run's draws interleave and the process's own
state is left as it was); every draw after that (dropout masks, SimpleChrome's VAE noise) comes from
the run's own ``torch.Generator``, which continues the same stream. Two runs in one process, in two
threads, are therefore independent, and each gives bit for bit what it gives alone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import threading
import types
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Self, cast

import torch
from torch import nn

from hmviz.errors import ModelError

OptimizerName = Literal["adam", "adamw", "sgd"]

# Real-valued settings that must be > 0, not only >= 0 (a step size, a clip norm, a weight scale).
_STRICTLY_POSITIVE = frozenset({"lr", "vae_lr", "grad_clip", "init_range", "init_std"})


def field_kinds(hint: Any) -> tuple[Any, ...]:
    """The types a field annotation admits (``float | None`` -> ``(float, NoneType)``)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return typing.get_args(hint)
    return (hint,)


@dataclass(kw_only=True)
class ModelConfig:
    """Fields every model config has.

    Attributes:
        n_marks: number of histone marks (input channels); the dataset's mark order is recorded
            in the model card, not here.
        n_bins: number of bins around the TSS (sequence length).
        optimizer: optimiser name the training engine builds (``"adam"``, ``"adamw"``, ``"sgd"``).
        lr: learning rate.
        batch_size: genes (or gene pairs) per training step.
        epochs: maximum number of epochs (the engine may stop earlier on validation).
        grad_clip: max global gradient norm, or ``None`` for no clipping.
        weight_decay: L2 penalty passed to the optimiser.
        ema_decay: ``None`` (off), or the decay per training step of an exponential moving average
            of the weights (and buffers), e.g. 0.98 (the last ~50 steps). Validation, the choice of
            epoch and the saved model then use the averaged weights (``torch.optim.swa_utils``).
    """

    n_marks: int
    n_bins: int
    optimizer: OptimizerName = "adam"
    lr: float = 1e-3
    batch_size: int = 64
    epochs: int = 30
    grad_clip: float | None = None
    weight_decay: float = 0.0
    ema_decay: float | None = None
    min_steps: int | None = None
    #: Settings added since cards were first written: name -> the value a card written before the
    #: setting existed trained with (so that an older card reads as what its model had).
    ADDED: ClassVar[dict[str, Any]] = {"ema_decay": None, "min_steps": None}
    #: Settings a config used to list but training never read: name -> (the value every card saved
    #: by hmviz holds, why the setting is refused). A saved card with that value loads without it;
    #: any other value, and every ``--set`` of it, is refused with the reason.
    RETIRED: ClassVar[dict[str, tuple[Any, str]]] = {}

    def __post_init__(self) -> None:
        # Every count (sizes, epochs, batch sizes) is a positive integer, every real-valued setting
        # (rates, weights, margins, dropout) a finite number >= 0 and every word one of its
        # ``Literal`` choices, checked here from the field types so that a setting given on the
        # command line (``--set``) never reaches a layer as a value it would crash on; the few
        # real settings that must be strictly positive are named in ``_STRICTLY_POSITIVE``.
        cls = type(self).__name__
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value, kinds = getattr(self, f.name), field_kinds(hints[f.name])
            choices = [v for k in kinds if typing.get_origin(k) is Literal for v in typing.get_args(k)]
            if choices:
                if value not in choices:
                    raise ModelError(f"{cls}.{f.name} must be one of {', '.join(map(str, choices))}; got {value!r}.")
            elif value is None and type(None) in kinds:
                pass
            elif int in kinds and bool not in kinds:
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise ModelError(f"{cls}.{f.name} must be a positive integer, got {value!r}.")
            elif float in kinds and value is not None:
                if (
                    isinstance(value, bool)
                    or not isinstance(value, (int, float))
                    or not math.isfinite(value)
                    or value < 0
                ):
                    raise ModelError(f"{cls}.{f.name} must be a finite number >= 0, got {value!r}.")
                if f.name in _STRICTLY_POSITIVE and value == 0:
                    raise ModelError(f"{cls}.{f.name} must be > 0, got {value!r}.")
                if "dropout" in f.name and value >= 1:
                    raise ModelError(f"{cls}.{f.name} is a probability in [0, 1), got {value!r}.")
                if f.name == "ema_decay" and value >= 1:
                    raise ModelError(f"{cls}.{f.name} is a decay per step in [0, 1), e.g. 0.98; got {value!r}.")

    def to_dict(self) -> dict[str, Any]:
        """Plain dict of every field (JSON-serialisable); the inverse of :meth:`from_dict`."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, saved: bool = True) -> Self:
        """Rebuild a config from :meth:`to_dict` output; unknown keys raise :class:`ModelError`.

        ``saved`` (default): ``values`` were saved (a model card), so a setting added since (:data:`ADDED`)
        takes the value such a model trained with; ``saved=False``: a new config, where a missing
        setting takes its default."""
        values = dict(values)
        for name, (saved, reason) in cls.RETIRED.items():
            if name in values:
                if values.pop(name) != saved:
                    raise ModelError(
                        f"{cls.__name__}.{name} is not a setting: {reason} (A model card that lists "
                        f"{name} was written before this was found; remove the key, it had no effect.)"
                    )
        for name, value in cls.ADDED.items() if saved else ():
            values.setdefault(name, value)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ModelError(
                f"Unknown setting(s) for {cls.__name__}: {', '.join(unknown)}. Valid settings: "
                f"{', '.join(sorted(known))}. (A saved config with extra keys was written for another model "
                "or hmviz version.)"
            )
        missing = sorted(
            f.name
            for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and f.name not in values
        )
        if missing:
            raise ModelError(f"{cls.__name__} needs {', '.join(missing)} (the data shape the model was built for).")
        return cls(**values)


def check_input(x: torch.Tensor, n_bins: int, n_marks: int, model_name: str) -> None:
    """Raise :class:`ModelError` unless ``x`` is a ``(batch, n_bins, n_marks)`` floating tensor."""
    if not isinstance(x, torch.Tensor):
        raise ModelError(f"{model_name} expects a torch.Tensor shaped (batch, bins, marks), got {type(x).__name__}.")
    if x.ndim != 3 or x.shape[1] != n_bins or x.shape[2] != n_marks:
        hint = " For a single gene add a batch axis: x.unsqueeze(0)." if x.ndim == 2 else ""
        raise ModelError(
            f"{model_name} was built for input (batch, {n_bins} bins, {n_marks} marks) but got shape "
            f"{tuple(x.shape)}.{hint} Check that the dataset has the same bins and marks, in the same "
            "order, as the model (see its model card)."
        )
    if not x.is_floating_point():
        raise ModelError(f"{model_name} expects floating-point input (float32), got {x.dtype}. Use x.float().")


# -- randomness of one run ---------------------------------------------------------------------------
_GLOBAL_RNG_LOCK = threading.RLock()


@contextlib.contextmanager
def seeded_global_rng(seed: int) -> Iterator[torch.Generator]:
    """Draws from torch's global CPU generator inside the block start at ``seed`` and are not
    interleaved with those of any other thread inside such a block; the process's generator state is
    restored afterwards. Yields a fresh ``torch.Generator`` that, when the block ends, continues the
    seeded stream where the block left it."""
    follow_on = torch.Generator()
    with _GLOBAL_RNG_LOCK, torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        yield follow_on
        follow_on.set_state(torch.default_generator.get_state())


@contextlib.contextmanager
def seeded_init(seed: int, device: torch.device | str = "cpu") -> Iterator[list[torch.Generator]]:
    """Build a model inside this block: its initial weights come from ``seed`` alone.

    Yields a list that holds, once the block has ended, the run's generator on ``device`` for every
    later draw (give it to :func:`use_generator`). On the CPU it continues the stream the weights
    were drawn from, so a run gives the same numbers as one that seeds the global generator once and
    draws everything from it; on a GPU it is a CUDA generator seeded with ``seed``."""
    out: list[torch.Generator] = []
    with seeded_global_rng(seed) as follow_on:
        yield out
    device = torch.device(device)
    out.append(follow_on if device.type == "cpu" else torch.Generator(device=device).manual_seed(seed))


def use_generator(model: nn.Module, generator: torch.Generator | None) -> nn.Module:
    """Make every random layer of ``model`` (:class:`Dropout` and others with a ``generator``
    attribute) draw from ``generator`` (``None``: from torch's global generator again)."""
    for module in model.modules():
        if hasattr(module, "generator"):
            cast(Any, module).generator = generator
    return model


class Dropout(nn.Dropout):
    """``nn.Dropout`` that draws its mask from ``self.generator`` when one is set (a run's own
    ``torch.Generator``; see :func:`use_generator`), else from torch's global generator.

    With a CPU generator in the same state as the global one it gives exactly ``nn.Dropout``'s
    output (the same Bernoulli draw, scaled by ``1 / (1 - p)``)."""

    generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.generator is None or not self.training or self.p == 0 or x.numel() == 0:
            return super().forward(x)
        keep = 1.0 - self.p
        noise = torch.empty_like(x).bernoulli_(keep, generator=self.generator).div_(keep)
        return x * noise


def gaussian_like(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Standard normal noise shaped like ``x`` from ``generator`` (``None``: torch's global one)."""
    return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)


def lstm_impl_used(model: nn.Module, device: torch.device | str) -> str | None:
    """How ``model``'s per-mark LSTMs run on ``device`` (``"native"``, ``"grouped"``, ...; several
    joined by ``+``), or ``None`` for a model without them. Recorded in the model card."""
    device = torch.device(device)
    impls = sorted({cast(Any, m).resolved_impl(device) for m in model.modules() if hasattr(m, "resolved_impl")})
    return "+".join(impls) or None


def attention_impl_used(model: nn.Module) -> str | None:
    """How ``model``'s grouped attention pooling ran: ``"compiled"`` (the kernel's fused pooling) or
    ``"eager"``, or ``None`` for a model without it. Recorded in the model card: the two give the same
    numbers up to float rounding, so a seed reproduces bit for bit only with the same one."""
    from hmviz.models._attention import ContextAttention

    used = [m._kernel for m in model.modules() if isinstance(m, ContextAttention) and m.context.dim() == 2]
    if not used:
        return None
    return "compiled" if any(used) else "eager"
