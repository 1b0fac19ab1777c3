"""Apply edits to raw signal (reads per bin, the data's units), before any model transform."""

from __future__ import annotations

import numpy as np

from hmviz.errors import HmvizError
from hmviz.perturb.edits import ResolvedEdit


def reference_profiles(raw: np.ndarray, rows: np.ndarray, labels: np.ndarray | None) -> dict[str, np.ndarray]:
    """Per-bin median raw signal of the high (label 1) and low (label 0) genes among ``rows``.

    Args:
        raw: ``(genes, bins, marks)`` reads per bin.
        rows: the reference genes (the model's training genes).
        labels: ``(genes,)`` 1 high, 0 low, -1 unknown; None when the data has no classes.

    Returns:
        ``{"high": (bins, marks), "low": (bins, marks)}`` float32; a class with no gene is left out.
    """
    if labels is None:
        return {}
    rows = np.asarray(rows, dtype=np.int64)
    out = {}
    for name, value in (("high", 1), ("low", 0)):
        pick = rows[labels[rows] == value]
        if pick.size:
            out[name] = np.median(raw[pick], axis=0).astype(np.float32)
    return out


def apply_edits(
    raw: np.ndarray, edits: list[ResolvedEdit], references: dict[str, np.ndarray] | None = None
) -> np.ndarray:
    """The signal after ``edits``, applied in order; a new float32 array shaped like ``raw``.

    Args:
        raw: ``(bins, marks)`` or ``(genes, bins, marks)`` reads per bin (never modified).
        edits: edits resolved against the model's window (:func:`hmviz.perturb.edits.resolve`).
        references: profiles for ``like=`` edits (:func:`reference_profiles`).
    """
    out = np.array(raw, dtype=np.float32, copy=True)
    for r in edits:
        e, cols = r.edit, out[..., r.bins, r.mark]
        if e.op == "remove":
            new = np.zeros_like(cols)
        elif e.op == "scale":
            new = cols * np.float32(e.value)
        elif e.op == "set":
            new = np.full_like(cols, np.float32(e.value))
        elif e.op == "add":
            new = cols + np.float32(e.value)
        elif e.op == "like":
            if not references or e.value not in references:
                raise HmvizError(
                    f"Edit '{e}': like={e.value} needs the {e.value}-expression training genes, and "
                    "this data has none (no labels or expression, or no training split)."
                )
            new = np.broadcast_to(references[e.value][r.bins, r.mark], cols.shape).astype(np.float32)
        else:  # parse_edit admits only the operations above
            raise HmvizError(f"Edit '{e}': unknown operation '{e.op}'.")
        out[..., r.bins, r.mark] = new
    return out


__all__ = ["apply_edits", "reference_profiles"]
