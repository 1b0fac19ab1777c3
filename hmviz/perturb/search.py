"""The smallest edit that changes the model's answer, within the marks, regions and directions allowed.

The answer: for one gene of a binary model, whether it is called high (logit > 0); for a pair, whether
gene A ranks above gene B (score_A > score_B, i.e. P(A above B) > 0.5); for a two-cell model, the sign
of the predicted log2 fold change. The search flips the current answer by editing gene A's signal
(for a two-cell model, the edited cell's).

**Size** of an edit: the Euclidean (L2) norm of the change in reads over all bins and marks (reads).
L2 rather than the total reads (L1) because the smallest L1 edit piles every read into the single most
sensitive bin, while real deposition or removal spreads over neighbouring nucleosomes; the smallest L2
edit spreads the change in proportion to the model's sensitivity. Total reads added and removed are
reported too.

**Allowed set** (a box): each allowed (mark, bin) may move up (``add``), down (``remove``) or both;
the edited signal stays non-negative and, when adding, at most the largest value of that mark in any
training gene (an edit stays within the range of data the model was trained on). Everything else is
fixed.

**Method** (minimum-norm adversarial search in the spirit of DDN/FMN, with a projection):

1. From the unedited signal x0, repeat Newton steps on the margin h (the score's distance past the
   decision boundary, signed so that h > 0 is the flipped answer): ``x <- P(x - h / |g|^2 * g)`` with g
   the gradient of h in reads through the card's transform, restricted to coordinates free to move in
   their allowed direction, and P the projection onto the box. For a linear model this first step is
   exactly the minimum-norm edit.
2. Once the answer flips, a batched line search on the segment x0 -> x (10 + 10 evaluations, two
   forward passes, to 1% of the segment) finds the smallest fraction of the edit that still flips it.
3. A few refinement rounds: at that boundary point, replace the edit by its projection onto the
   gradient direction (the minimum-norm direction of the local linear model), walk to the boundary
   again and keep the smaller edit.

When no step flips the answer and neither does the strongest allowed edit (every allowed bin at its
bound in the direction the gradient asks for), the search reports that no allowed edit suffices.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from hmviz.errors import HmvizError
from hmviz.explain._regions import format_bp
from hmviz.perturb.edits import Edit, Window, mark_index, parse_region, region_mask
from hmviz.perturb.score import Editor, PerturbResult

log = logging.getLogger(__name__)

DIRECTIONS: tuple[str, ...] = ("add", "remove", "both")
ALLOW_SYNTAX = "MARK[,MARK...]:REGION:add|remove|both, e.g. H3K4me3,H3K36me3:-1000..5000:add"


@dataclass(frozen=True)
class Allowance:
    """Marks that may change over a region, in a direction (``add``, ``remove`` or ``both``)."""

    marks: tuple[str, ...]
    region: str
    direction: str
    text: str = ""

    def __str__(self) -> str:
        return self.text or f"{','.join(self.marks)}:{self.region}:{self.direction}"


def parse_allowance(text: str) -> Allowance:
    """Read ``MARK[,MARK...]:REGION:add|remove|both`` (checked against a window by :func:`allowed_masks`)."""
    raw = str(text).strip()
    parts = [p.strip() for p in raw.split(":")]
    if len(parts) != 3 or not all(parts):
        raise HmvizError(f"Allowed edit '{raw}': write it as {ALLOW_SYNTAX}.")
    marks = tuple(m.strip() for m in parts[0].split(",") if m.strip())
    direction = parts[2].lower()
    if direction not in DIRECTIONS:
        raise HmvizError(f"Allowed edit '{raw}': unknown direction '{parts[2]}'; allowed: {', '.join(DIRECTIONS)}.")
    return Allowance(marks, parse_region(raw, parts[1]), direction, raw)


def allowed_masks(allowances, window: Window) -> tuple[np.ndarray, np.ndarray]:
    """``(up, down)`` boolean ``(bins, marks)``: where reads may be added, where removed."""
    up = np.zeros((window.n_bins, len(window.marks)), dtype=bool)
    down = np.zeros_like(up)
    items = [a if isinstance(a, Allowance) else parse_allowance(a) for a in allowances]
    if not items:
        raise HmvizError(
            f"No allowed edit given; name the marks, region and direction the search may use: {ALLOW_SYNTAX}."
        )
    for a in items:
        bins = region_mask(a.region, window, str(a))
        for mark in a.marks:
            m = mark_index(Edit(mark, a.region, "add", text=str(a)), window)
            if a.direction in ("add", "both"):
                up[bins, m] = True
            if a.direction in ("remove", "both"):
                down[bins, m] = True
    return up, down


def ordinal(n: float) -> str:
    """``1 -> '1st'``, ``3 -> '3rd'``, ``11 -> '11th'``, ``42.4 -> '42nd'`` (rounded)."""
    k = round(n)
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"


def percentile(values: np.ndarray, value: float) -> float:
    """Share of ``values`` at or below ``value``, in percent (NaN when there are none)."""
    values = np.asarray(values, dtype=np.float64)
    return float(100.0 * np.mean(values <= value)) if values.size else float("nan")


@dataclass
class MarkChange:
    """How one mark was changed: reads added and removed in total and per named region, the region
    changed most per bin (``main_region``, with its bounds in bp), and how the edited signal there
    compares with the training genes of the target class (``signal_percentile``: the percentile of
    the mean log1p reads over that region)."""

    mark: str
    reads_added: float
    reads_removed: float
    by_region: dict[str, float]
    main_region: str
    main_bp: tuple[float, float]
    signal_percentile: float

    def text(self, reference: str = "training genes of the target class") -> str:
        parts = []
        if self.reads_added > 0:
            parts.append(f"+{self.reads_added:.0f} reads")
        if self.reads_removed > 0:
            parts.append(f"-{self.reads_removed:.0f} reads")
        total = sum(abs(v) for v in self.by_region.values()) or 1.0
        shares = ", ".join(
            f"{name.replace('_', ' ')} {100 * abs(v) / total:.0f}%" for name, v in self.by_region.items()
        )
        a, b = self.main_bp
        return (
            f"{self.mark}: {' and '.join(parts)} ({shares}); most per bin in the {self.main_region.replace('_', ' ')} "
            f"({format_bp(a)}..{format_bp(b)}), where the edited signal is at the {ordinal(self.signal_percentile)} "
            f"percentile of the {reference}"
        )


@dataclass
class SearchResult:
    """The outcome of :func:`smallest_edit`.

    ``found``: whether an allowed edit flips the answer. ``delta``: ``(bins, marks)`` change in reads
    (zeros when not found). ``size_reads``: its L2 norm. ``result``: the prediction before and after
    (after = before when not found). ``score_percentile``: the new score's percentile among the
    training genes of the target class (``target_class``: high when the edit raises the score, low when it
    lowers it; for a two-cell model the sign of the measured fold change), named in words by ``reference``.
    """

    found: bool
    goal: str
    allowed: list[str]
    delta: np.ndarray
    size_reads: float
    reads_added: float
    reads_removed: float
    changes: list[MarkChange]
    result: PerturbResult
    target_class: str
    reference: str
    score_percentile: float
    evaluations: int
    message: str = ""
    extra: dict = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        return self.result.to_frame()

    def lines(self) -> list[str]:
        out = [f"goal: {self.goal}; allowed: {'; '.join(self.allowed)}"]
        if not self.found:
            return out + [self.message]
        out.append(
            f"smallest edit found: {self.size_reads:.1f} reads (L2 norm; {self.reads_added:.0f} reads added, "
            f"{self.reads_removed:.0f} removed)"
        )
        out += [f"  {c.text(self.reference)}" for c in self.changes]
        out += self.result.lines()[1:]
        out.append(f"the new score is at the {ordinal(self.score_percentile)} percentile of the {self.reference}")
        return out

    def summary(self) -> dict:
        out = {
            "mode": "search",
            "found": self.found,
            "goal": self.goal,
            "allowed": self.allowed,
            **self.result.summary(),
            "size_reads": round(self.size_reads, 3),
            "reads_added": round(self.reads_added, 3),
            "reads_removed": round(self.reads_removed, 3),
            "target_class": self.target_class,
            "reference": self.reference,
            "evaluations": self.evaluations,
            "changes": [
                {
                    "mark": c.mark,
                    "reads_added": round(c.reads_added, 3),
                    "reads_removed": round(c.reads_removed, 3),
                    "by_region": {k: round(v, 3) for k, v in c.by_region.items()},
                    "main_region": c.main_region,
                    "signal_percentile": round(c.signal_percentile, 1),
                }
                for c in self.changes
            ],
        }
        if self.found:
            out["score_percentile"] = round(self.score_percentile, 1)
        else:
            out["message"] = self.message
        return out


class _Margin:
    """h(x) = sign * (score(x) - target) for one gene; h > 0 is the flipped answer. Counts evaluations."""

    def __init__(self, editor: Editor, row: int, target: float, sign: float):
        self.editor, self.row, self.target, self.sign = editor, row, target, sign
        self.evaluations = 0

    def value_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        s, g = self.editor.score_and_grad(x, self.row)
        self.evaluations += 1
        return self.sign * (s - self.target), self.sign * g

    def values(self, xs: np.ndarray) -> np.ndarray:
        self.evaluations += len(xs)
        return self.sign * (self.editor.score_raw(xs, self.row) - self.target)


def _free(g: np.ndarray, x: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The gradient where moving along it stays inside the box ``[lo, hi]`` (else 0)."""
    return np.where(((g > 0) & (x < hi)) | ((g < 0) & (x > lo)), g, 0.0)


def _walk(margin: _Margin, x: np.ndarray, lo, hi, max_steps: int) -> np.ndarray | None:
    """Projected Newton steps until h > 0 (a point that flips the answer) or no progress."""
    push = 1.05
    last = None
    for _ in range(max_steps):
        h, g = margin.value_grad(x)
        if h > 0:
            return x
        g = _free(g, x, lo, hi)
        norm2 = float((g * g).sum())
        if norm2 == 0.0:
            return None
        if last is not None and h <= last:  # the linear step fell short: push harder next time
            push = min(push * 2.0, 64.0)
        last = h
        x = np.clip(x + push * (-h / norm2) * g + 1e-6 * np.sign(g), lo, hi)
    return None


def _line_search(margin: _Margin, x0: np.ndarray, x1: np.ndarray, points: int = 10) -> np.ndarray:
    """The point nearest x0 on the segment x0 -> x1 where h > 0 (x1 has h > 0), by two batched grids."""
    a, b = 0.0, 1.0
    for _ in range(2):
        alphas = np.linspace(a, b, points + 1)[1:]
        xs = x0[None] + alphas[:, None, None] * (x1 - x0)[None]
        ok = margin.values(xs) > 0
        if not ok.any():
            break
        k = int(np.argmax(ok))
        a, b = (alphas[k - 1] if k else a), alphas[k]
    return x0 + b * (x1 - x0)


def smallest_edit(editor: Editor, gene, allow, vs=None, *, max_steps: int = 40, rounds: int = 2) -> SearchResult:
    """The smallest allowed edit of ``gene`` that flips the model's answer (see the module docstring).

    Args:
        editor: the model and data (:class:`hmviz.perturb.Editor`).
        gene: gene A (id, symbol or row); its signal is edited.
        allow: allowances (:class:`Allowance` or texts ``MARK[,MARK]:REGION:add|remove|both``).
        vs: gene B for a pair (left unedited); needed for rankers, refused for two-cell models.
        max_steps: Newton steps per walk; rounds: refinement rounds after the first edit is found.
    """
    s = editor.session
    row = editor.row(gene)
    vs_row = None if vs is None else editor.row(vs)
    if vs_row is not None and s.differential:
        raise HmvizError(f"{s.card.model} compares one gene between two cells; drop the second gene.")
    if vs_row is None and editor.kind == "ranking" and not s.differential:
        raise HmvizError(
            f"{s.card.model} ranks genes against each other and has no 'high' call; give a second "
            "gene (--vs) to search for the edit that ranks the first above it."
        )
    if vs_row is not None and vs_row == row:
        raise HmvizError(f"Gene A and gene B are the same gene ({s.dataset.gene_ids[row]}); choose two genes.")
    up, down = allowed_masks(allow, editor.window)
    allowed = [str(a) for a in allow]
    x0 = editor.raw[row].astype(np.float64)
    train = editor.training_rows()
    cap = editor.raw[train].max(axis=(0, 1)).astype(np.float64)  # per mark, the training maximum
    hi = np.where(up, np.maximum(x0, cap[None, :]), x0)
    lo = np.where(down, 0.0, x0)

    score0 = float(editor.score_raw(x0, row)[0])
    target = float(editor.all_scores()[vs_row]) if vs_row is not None else 0.0
    sign = 1.0 if score0 <= target else -1.0
    names = (s.display(row), None if vs_row is None else s.display(vs_row))
    if vs_row is not None:
        goal = f"rank {names[0]} {'above' if sign > 0 else 'below'} {names[1]}"
    elif s.differential:
        goal = f"make the predicted log2 fold change of {names[0]} {'positive' if sign > 0 else 'negative'}"
    else:
        goal = f"make the model call {names[0]} {'high' if sign > 0 else 'low'} (logit {'>' if sign > 0 else '<'} 0)"
    margin = _Margin(editor, row, target, sign)

    found = _walk(margin, x0.copy(), lo, hi, max_steps)
    if found is None:
        _, g0 = margin.value_grad(x0)
        extreme = np.where(g0 > 0, hi, lo)
        if margin.values(extreme[None])[0] > 0:
            found = extreme
    if found is None:
        result = editor.result(row, x0.astype(np.float32), [], vs_row, score0, score0)
        message = (
            f"No allowed edit suffices: neither the gradient search nor the strongest allowed edit (every allowed "
            f"bin at 0 reads or at the training maximum of its mark, as the gradient asks) can {goal}. "
            "Allow more marks, a wider region or the other direction."
        )
        target_class, _, reference = _target_group(editor, sign)
        return SearchResult(
            False,
            goal,
            allowed,
            np.zeros_like(x0),
            0.0,
            0.0,
            0.0,
            [],
            result,
            target_class,
            reference,
            float("nan"),
            margin.evaluations,
            message,
        )
    best = _line_search(margin, x0, found)
    for _ in range(rounds):
        delta = best - x0
        _, g = margin.value_grad(best)
        g = np.where(up | down, g, 0.0)
        g = np.where(((g > 0) & up) | ((g < 0) & down), g, 0.0)
        norm2 = float((g * g).sum())
        if norm2 == 0.0:
            break
        guess = np.clip(x0 + (float((g * delta).sum()) / norm2) * g, lo, hi)
        walked = _walk(margin, guess, lo, hi, max_steps // 2)
        if walked is None:
            break
        candidate = _line_search(margin, x0, walked)
        if np.linalg.norm(candidate - x0) >= np.linalg.norm(delta) * 0.999:
            break
        best = candidate
    return _report(editor, margin, row, vs_row, x0, best, goal, allowed, sign)


def _target_group(editor: Editor, sign: float) -> tuple[str, np.ndarray, str]:
    """``(target class, its training genes, those genes in words)`` for an edit that raises (sign > 0) or
    lowers the score: high / low expression genes; for a two-cell model, genes whose measured fold change
    has the target sign. All training genes when the classes are unknown."""
    train = editor.training_rows()
    if editor.session.differential:
        measured = editor.session.measured()
        target = "positive fold change" if sign > 0 else "negative fold change"
        if measured is None:
            return target, train, "training genes"
        return target, train[(measured[train] > 0) == (sign > 0)], f"training genes with a measured {target}"
    target = "high" if sign > 0 else "low"
    labels = editor.labels()
    if labels is None:
        return target, train, "training genes"
    return target, train[labels[train] == (1 if sign > 0 else 0)], f"{target}-expression training genes"


def _report(editor: Editor, margin: _Margin, row: int, vs_row, x0, best, goal, allowed, sign) -> SearchResult:
    delta = best - x0
    raw_after = best.astype(np.float32)
    scores = margin.editor.score_raw(np.stack([x0, best]), row)
    result = editor.result(row, raw_after, ["smallest edit found by search"], vs_row, scores[0], scores[1])
    target_class, pool, reference = _target_group(editor, sign)
    starts = editor.window.bin_starts_bp()
    regions = {k: v for k, v in editor.window.named().items() if k != "window" and v[0] < v[1]}
    changes = []
    for m, mark in enumerate(editor.marks):
        d = delta[:, m]
        if not np.any(np.abs(d) > 1e-6):
            continue
        masks = {k: (starts >= a) & (starts < b) for k, (a, b) in regions.items()}
        by_region = {k: float(d[mask].sum()) for k, mask in masks.items()}
        main = max(masks, key=lambda k: np.abs(d[masks[k]]).mean())
        bins = masks[main]
        after_mean = float(np.log1p(best[bins, m]).mean())
        ref = np.log1p(editor.raw[pool][:, bins, m].astype(np.float64)).mean(axis=1)
        changes.append(
            MarkChange(
                mark,
                float(d[d > 0].sum()),
                float(np.abs(d[d < 0]).sum()),
                by_region,
                main,
                regions[main],
                percentile(ref, after_mean),
            )
        )
    return SearchResult(
        True,
        goal,
        allowed,
        delta,
        float(np.linalg.norm(delta)),
        float(delta[delta > 0].sum()),
        float(np.abs(delta[delta < 0]).sum()),
        changes,
        result,
        target_class,
        reference,
        percentile(editor.all_scores()[pool], result.score_after),
        margin.evaluations,
    )


__all__ = [
    "ALLOW_SYNTAX",
    "DIRECTIONS",
    "Allowance",
    "MarkChange",
    "SearchResult",
    "allowed_masks",
    "ordinal",
    "parse_allowance",
    "percentile",
    "smallest_edit",
]
