"""How big a model would be, measured before any memory is allocated.

:func:`check_model_size` builds the model on PyTorch's ``meta`` device (shapes only, no storage)
and counts its parameters. Settings (``--set n_filters=200000``), widgets and model cards are
checked against :data:`hmviz.limits.PARAMETERS` this way, so an oversized model is refused in
milliseconds instead of exhausting the machine. (Activations grow with the same settings; the
parameter count is the measure used.)
"""

from __future__ import annotations

from typing import Any

import torch

from hmviz import limits


def meta_model(name: str, config: dict[str, Any]) -> torch.nn.Module:
    """Model ``name`` built from ``config`` on the meta device (no memory for its weights)."""
    from hmviz.models import build_from_config

    with torch.device("meta"):
        return build_from_config(name, config)


def check_model_size(name: str, config: dict[str, Any], where: str) -> torch.nn.Module:
    """Refuse a model whose parameters exceed :data:`hmviz.limits.PARAMETERS`; returns the meta model.

    ``where`` names the source of the config (``--set``, a model card) for the message.
    """
    model = meta_model(name, config)
    n_params = sum(p.numel() for p in model.parameters())
    limits.check(
        limits.PARAMETERS,
        n_params,
        where,
        "Use smaller settings (fewer filters, hidden units or layers).",
        subject=f"the {name} model",
    )
    return model
