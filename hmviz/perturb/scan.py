"""In-silico deletion scan: the effect on the prediction of removing each mark in each window.

Windows of ``window_bp`` tile the model's window from its upstream end (the last one may be shorter);
a bin belongs to the window that holds its start. Every (mark, window) deletion of one gene is scored
in **one batched forward pass** (marks x windows inputs).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from hmviz.errors import HmvizError
from hmviz.perturb.edits import Window
from hmviz.perturb.score import Editor, sigmoid


def windows(window: Window, window_bp: int) -> tuple[np.ndarray, np.ndarray]:
    """``(starts_bp, membership)``: window starts ``(W,)`` and a boolean ``(W, bins)`` membership."""
    try:
        size = int(window_bp)
    except (TypeError, ValueError):
        raise HmvizError(f"The scan window must be a whole number of bp; got '{window_bp}'.") from None
    span = window.end_bp - window.start_bp
    if size < window.bin_size or size % window.bin_size or size > span:
        raise HmvizError(
            f"Scan window {window_bp} bp: give a multiple of the bin size ({window.bin_size} bp) "
            f"between {window.bin_size} and {span} bp (the whole window), e.g. 500."
        )
    starts = np.arange(window.start_bp, window.end_bp, size)
    bins = window.bin_starts_bp()
    membership = (bins[None, :] >= starts[:, None]) & (bins[None, :] < starts[:, None] + size)
    return starts, membership


def by_window(values: np.ndarray, membership: np.ndarray) -> np.ndarray:
    """Sum of per-bin ``values`` ``(bins, marks)`` over each window: ``(marks, windows)`` (e.g. an
    attribution put beside the scan)."""
    return (membership.astype(np.float64) @ np.asarray(values, dtype=np.float64)).T


@dataclass
class ScanResult:
    """``effect[m, w]``: score after deleting mark ``m`` in window ``w`` minus the score before (in
    :attr:`unit`). ``p_after``: P(gene above vs) after each deletion, for a pair; else None."""

    gene: str
    gene_id: str
    unit: str
    marks: tuple[str, ...]
    starts_bp: np.ndarray
    window_bp: int
    end_bp: int
    score_before: float
    effect: np.ndarray
    reads_removed: np.ndarray
    vs: str | None = None
    p_before: float | None = None
    p_after: np.ndarray | None = None

    @property
    def ends_bp(self) -> np.ndarray:
        return np.minimum(self.starts_bp + self.window_bp, self.end_bp)

    def strongest(self) -> tuple[int, int]:
        """``(mark, window)`` of the deletion that moves the score most (either way)."""
        m, w = np.unravel_index(int(np.argmax(np.abs(self.effect))), self.effect.shape)
        return int(m), int(w)

    def to_frame(self) -> pd.DataFrame:
        """One row per mark and window: ``gene_id, mark, window_start_bp, window_end_bp, reads_removed,
        score_after, effect`` (+ ``p_after`` for a pair)."""
        n_marks, n_win = self.effect.shape
        table = pd.DataFrame(
            {
                "gene_id": self.gene_id,
                "mark": np.repeat(self.marks, n_win),
                "window_start_bp": np.tile(self.starts_bp, n_marks),
                "window_end_bp": np.tile(self.ends_bp, n_marks),
                "reads_removed": self.reads_removed.reshape(-1),
                "score_after": self.score_before + self.effect.reshape(-1),
                "effect": self.effect.reshape(-1),
            }
        )
        if self.p_after is not None:
            table["p_after"] = self.p_after.reshape(-1)
        return table

    def summary(self) -> dict:
        m, w = self.strongest()
        out = {
            "gene": self.gene_id,
            "unit": self.unit,
            "score_before": round(self.score_before, 6),
            "score_after": round(self.score_before + float(self.effect[m, w]), 6),
            "strongest": {
                "mark": self.marks[m],
                "window_bp": [int(self.starts_bp[w]), int(self.ends_bp[w])],
                "effect": round(float(self.effect[m, w]), 6),
            },
            "window_bp": self.window_bp,
            "n_windows": len(self.starts_bp),
        }
        if self.p_after is not None and self.p_before is not None:
            out.update(vs=self.vs, p_before=round(self.p_before, 6), p_after=round(float(self.p_after[m, w]), 6))
        return out


def scan(editor: Editor, gene, window_bp: int = 500, vs=None) -> ScanResult:
    """Delete each mark in each window of ``window_bp`` for ``gene`` and score all deletions in one batch.

    With ``vs`` (another gene), also P(gene above vs) after each deletion; ``vs`` is not edited."""
    row = editor.row(gene)
    vs_row = None if vs is None else editor.row(vs)
    if vs_row is not None and editor.session.differential:
        raise HmvizError(f"{editor.session.card.model} compares one gene between two cells; drop the second gene.")
    starts, membership = windows(editor.window, window_bp)
    raw = editor.raw[row]
    n_marks, n_win = len(editor.marks), len(starts)
    batch = np.repeat(raw[None], n_marks * n_win + 1, axis=0)  # last input: the gene unedited
    removed = np.zeros((n_marks, n_win))
    for m in range(n_marks):
        for w in range(n_win):
            removed[m, w] = raw[membership[w], m].sum()
            batch[m * n_win + w, membership[w], m] = 0.0
    scores = editor.score_raw(batch, row)
    before = float(scores[-1])
    effect = (scores[:-1] - before).reshape(n_marks, n_win)
    s = editor.session
    out = ScanResult(
        s.display(row),
        str(s.dataset.gene_ids[row]),
        editor.unit,
        editor.marks,
        starts,
        int(window_bp),
        editor.window.end_bp,
        before,
        effect,
        removed,
    )
    if vs_row is not None:
        score_b = float(editor.all_scores()[vs_row])
        out.vs, out.p_before = str(s.dataset.gene_ids[vs_row]), sigmoid(before - score_b)
        out.p_after = 1.0 / (1.0 + np.exp(-((before + effect) - score_b)))
    return out


__all__ = ["ScanResult", "by_window", "scan", "windows"]
