"""The model families hmviz knows, by name, without PyTorch.

What a model's card says it is (its family's task and inputs) is checked against this table before any
model code loads: the app lists and checks the bundled models' cards on its first page, and importing
PyTorch would make that page wait about a second and a half. :data:`hmviz.models.MODEL_REGISTRY` takes
each family's task and inputs from here (one table; a test checks that both know the same names).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Literal

from hmviz.errors import ModelError

Task = Literal["binary", "ranking", "differential"]
Inputs = Literal["single", "pair-of-genes", "two-cells"]


@dataclass(frozen=True)
class Family:
    """One model family.

    Attributes:
        name: registry name (``"deepchrome"``, ...).
        task: default task: ``"binary"`` (high/low expression), ``"ranking"`` (which gene of a pair is
            higher) or ``"differential"`` (log2 fold change between two cells).
        inputs: ``"single"`` (one gene), ``"pair-of-genes"`` (two genes, one cell) or ``"two-cells"``
            (one gene in two cells).
    """

    name: str
    task: Task
    inputs: Inputs


#: Every family, in display order.
FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("deepchrome", "binary", "single"),
        Family("attentivechrome", "binary", "single"),
        Family("simplechrome", "binary", "single"),
        Family("deepdiff", "differential", "two-cells"),
        Family("ranker-deepchrome", "ranking", "pair-of-genes"),
        Family("ranker-attentivechrome", "ranking", "pair-of-genes"),
    )
}


def get_family(name: object) -> Family:
    """The :class:`Family` called ``name``; an unknown name raises :class:`ModelError` with the valid names."""
    try:
        return FAMILIES[name]  # type: ignore[index]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name).lower(), list(FAMILIES), n=1, cutoff=0.5)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ModelError(f"Unknown model {name!r}. Valid models: {', '.join(FAMILIES)}.{hint}") from None
