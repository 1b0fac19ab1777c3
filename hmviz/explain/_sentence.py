"""One plain-language sentence for a gene-pair explanation, in words true for the method.

The sentence names the winner, then the mark with the largest **total** contribution (summed over
every region and both inputs) and where it acts:

* additive methods (:data:`~hmviz.explain._methods.KINDS` ``"additive"``): numbers in the output's
  unit that add up: the top mark's regions add up to its total, and the marks' totals add up to the
  explained difference up to the stated gap;
* other methods (sensitivity, removal): marks by **rank**, no sums (their values are slopes or
  overlapping effects, not shares of the output).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from hmviz.explain._methods import METHODS
from hmviz.explain._regions import Region

#: Marks whose totals differ by less than this fraction of the largest |total| are stated as a tie.
TIE = 1e-6
#: After the top mark, other marks favouring the winner are named when at least this share of its total.
ALSO = 0.25
#: The top mark's regions are listed when they hold at least this share of its total (the rest: "elsewhere").
SHOWN = 0.05


def _decimals(values: np.ndarray) -> int:
    """Decimals showing about three significant digits of the largest |value| (2 to 4)."""
    scale = float(np.max(np.abs(values))) if np.size(values) else 0.0
    if scale == 0 or not math.isfinite(scale):
        return 2
    return int(min(4, max(2, 2 - math.floor(math.log10(scale)))))


def _where(region: Region, regions: Sequence[Region]) -> str:
    return "" if len(regions) == 1 else f" {region.where}"


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def explained_name(kind: str) -> str:
    """What a pair explanation explains, in words: score difference, difference of logits, fold change."""
    return {
        "ranking": "score difference",
        "scores": "difference of the two logits",
        "differential": "predicted log2 fold change",
    }[kind]


def pair_sentence(
    gene_a: str,
    gene_b: str,
    difference: float,
    probability: float | None,
    marks: Sequence[str],
    regions: Sequence[Region],
    contrib_a: np.ndarray,
    contrib_b: np.ndarray,
    signal_diff: np.ndarray,
    kind: str = "ranking",
    gene: str | None = None,
    *,
    method: str = "integrated_gradients",
    unit: str = "logit",
    baseline_difference: float | None = 0.0,
    gap: float | None = None,
    note: str = "",
) -> str:
    """The sentence for a pair explanation.

    Args:
        contrib_a, contrib_b: ``(regions, marks)`` attributions to A's and B's inputs (region sums).
        signal_diff: ``(regions, marks)`` summed input signal of A minus B (its sign gives more / less).
        kind: ``"ranking"``/``"scores"``: "ranks A above B (P = ...)"; ``"differential"``: "predicts
            GENE higher in B than in A (log2 fold change ...)", where A and B name the two cells and
            ``gene`` the gene.
        method: a key of :data:`METHODS`; its kind decides between sums (additive) and ranks.
        unit: the output's unit ("logit", "log2 fold change").
        baseline_difference: the explained output at the reference (additive methods add up to
            ``difference - baseline_difference``).
        gap: the measured ``sum of attributions - (difference - baseline_difference)``.
        note: appended as is (e.g. what left and right mean for unoriented bins).
    """
    what = explained_name(kind)
    if kind == "differential":
        subject = f"{gene} " if gene else "expression "
        if difference == 0:
            return f"The model predicts {subject}equal in {gene_a} and {gene_b} (log2 fold change 0.00)."
        winner, loser, sign = (gene_b, gene_a, 1.0) if difference > 0 else (gene_a, gene_b, -1.0)
        head = (
            f"The model predicts {subject}higher in {winner} than in {loser} "
            f"(log2 fold change {gene_b} over {gene_a}: {difference:+.2f})"
        )
    else:
        if difference == 0:
            return f"The model scores {gene_a} and {gene_b} equally (P = 0.50)."
        winner, loser, sign = (gene_a, gene_b, 1.0) if difference > 0 else (gene_b, gene_a, -1.0)
        assert probability is not None, "a score model's pair has P(A above B)"
        p = probability if difference > 0 else 1.0 - probability
        head = f"The model ranks {winner} above {loser} (P = {p:.2f}, a {what} of {abs(difference):.2f} {unit})"
    # Every value turned into support for the winner: a positive contribution raises f, which favours
    # A for a score model and B (the numerator of the fold change) for DeepDiff.
    support = sign * (np.asarray(contrib_a, dtype=np.float64) + np.asarray(contrib_b, dtype=np.float64))
    winner_minus_loser = np.asarray(signal_diff, dtype=np.float64) * (-sign if kind == "differential" else sign)
    totals = support.sum(axis=0)  # (marks,)
    order = [int(k) for k in np.argsort(-totals, kind="stable")]
    tail = f" {note}" if note else ""

    def more_or_less(r: int, m: int) -> str:
        d = winner_minus_loser[r, m]
        if d == 0:
            return ""
        has = f"{winner} has {'more' if d > 0 else 'less'} {marks[m]}"
        return f", where {has}" if len(regions) > 1 else f" ({has})"

    def best_region(m: int) -> int:
        return int(np.argmax(support[:, m]))

    spec = METHODS[method]
    if spec.kind == "sensitivity":
        # Slopes of both genes' inputs: their signs cancel between A and B (a linear score has the same
        # slope in both), so rank the marks by how sensitive the output is, not by which gene they favour.
        size = np.abs(np.asarray(contrib_a, dtype=np.float64)) + np.abs(np.asarray(contrib_b, dtype=np.float64))
        ranked = [int(k) for k in np.argsort(-size.sum(axis=0), kind="stable") if size[:, k].sum() > 0]
        if not ranked:
            return f"{head}. The {what} does not change with any mark at these inputs (every slope is 0).{tail}"
        m, rest = ranked[0], [marks[k] for k in ranked[1:3]]
        return (
            f"{head}. Ranked by the size of its slopes, the {what} is most sensitive to {marks[m]}"
            f"{_where(regions[int(np.argmax(size[:, m]))], regions)}"
            + (f", then {_join(rest)}" if rest else "")
            + f" (slopes say how fast the {what} moves for a small change; they are not shares of it).{tail}"
        )
    if spec.kind == "removal":
        how = f"the change in the {what} when a mark is replaced by the reference"
        caveat = f"these effects overlap and are not shares of the {what}"
        ranked = [k for k in order if totals[k] > 0]
        if not ranked:
            m = order[-1]
            return (
                f"{head}. Ranked by {how}, no mark favours {winner}; {marks[m]} leans most towards {loser}"
                f"{_where(regions[int(np.argmin(support[:, m]))], regions)} ({caveat}).{tail}"
            )
        m = ranked[0]
        rest = [marks[k] for k in ranked[1:3]]
        return (
            f"{head}. Ranked by {how}, {marks[m]} favours {winner} most"
            f"{_where(regions[best_region(m)], regions)}{more_or_less(best_region(m), m)}"
            + (f", then {_join(rest)}" if rest else "")
            + f" ({caveat}).{tail}"
        )

    explained = difference - (baseline_difference or 0.0)
    dec = _decimals(np.concatenate([totals, support.ravel(), [explained]]))

    def num(v: float) -> str:
        return f"{v:+.{dec}f}"

    total_all = float(totals.sum())
    if totals[order[0]] <= 0:
        m = order[-1]
        r = int(np.argmin(support[:, m]))
        return (
            f"{head}, although no mark favours {winner}: every one leans towards {loser}, most of all "
            f"{marks[m]} ({num(totals[m])} {unit} in total, {num(support[r, m])}{_where(regions[r], regions)})."
            f"{_together(total_all, explained, sign, winner, what, num, baseline_difference, gap)}{tail}"
        )
    top = order[0]
    tied = [k for k in order[1:] if abs(totals[k] - totals[top]) <= TIE * max(abs(totals[top]), 1e-30)]
    if tied:
        lead = (
            f"{_join([marks[top]] + [marks[k] for k in tied])} favour {winner} equally and most "
            f"({num(totals[top])} {unit} each)"
        )
        shown = {top, *tied}
    else:
        lead = f"{marks[top]} favours {winner} most: {num(totals[top])} {unit} in total"
        if len(regions) > 1:
            rs = [
                int(r)
                for r in np.argsort(-np.abs(support[:, top]), kind="stable")
                if abs(support[r, top]) >= SHOWN * abs(totals[top])
            ]
            remainder = float(totals[top] - support[rs, top].sum())
            parts = [f"{num(support[r, top])}{_where(regions[r], regions)}" for r in rs]
            if round(remainder, dec) != 0:
                parts.append(f"{num(remainder)} elsewhere")
            lead += f", all of it{_where(regions[rs[0]], regions)}" if len(parts) == 1 else f" ({_join(parts)})"
            lead += more_or_less(rs[0], top)
        shown = {top}
    others = [k for k in order if k not in shown and totals[k] > 0 and totals[k] >= ALSO * totals[top]][:2]
    if others:
        lead += "; then " + _join([f"{marks[k]} ({num(totals[k])})" for k in others])
    return f"{head}. {lead}.{_together(total_all, explained, sign, winner, what, num, baseline_difference, gap)}{tail}"


def _together(
    total_all: float, explained: float, sign: float, winner: str, what: str, num, baseline_difference, gap: float | None
) -> str:
    """ " All marks together give +6.07 of the +6.07 score difference in A's favour (gap 0.001)."."""
    if baseline_difference:
        return (
            f" All marks together give {num(total_all)} in {winner}'s favour: the {what} "
            f"({num(explained + baseline_difference)}) minus its value at the reference "
            f"({num(baseline_difference)}){_gap_text(gap)}."
        )
    return (
        f" All marks together give {num(total_all)} of the {num(sign * explained)} {what} in {winner}'s "
        f"favour{_gap_text(gap)}."
    )


def _gap_text(gap: float | None) -> str:
    """ " (gap 0.0066)" (the measured |sum - explained difference|); empty when not measured."""
    if gap is None:
        return ""
    return f" (gap {abs(gap):.2g})" if abs(gap) >= 1e-4 else " (gap below 0.0001)"


def gene_sentence(
    gene: str,
    output: float,
    baseline_output: float | None,
    marks: Sequence[str],
    regions: Sequence[Region],
    contrib: np.ndarray,
    *,
    method: str = "integrated_gradients",
    unit: str = "logit",
    what: str = "output",
    gap: float | None = None,
    note: str = "",
) -> str:
    """One gene's sentence: its output, then the mark with the largest total contribution and where.

    ``contrib``: ``(regions, marks)`` attributions (region sums). Additive methods state sums that add
    up to ``output - baseline_output`` (up to ``gap``); the others rank the marks.
    """
    contrib = np.asarray(contrib, dtype=np.float64)
    tail = f" {note}" if note else ""
    head = f"The model's {what} for {gene} is {output:+.2f} {unit}"
    spec = METHODS[method]
    if spec.kind == "sensitivity" or baseline_output is None:
        size = np.abs(contrib)
        ranked = [int(k) for k in np.argsort(-size.sum(axis=0), kind="stable") if size[:, k].sum() > 0]
        if not ranked:
            return f"{head}; it does not change with any mark at this input (every slope is 0).{tail}"
        m, rest = ranked[0], [marks[k] for k in ranked[1:3]]
        return (
            f"{head}. Ranked by the size of its slopes, it is most sensitive to {marks[m]}"
            f"{_where(regions[int(np.argmax(size[:, m]))], regions)}"
            + (f", then {_join(rest)}" if rest else "")
            + f" (slopes are not shares of the {what}).{tail}"
        )
    explained = output - baseline_output
    head += f", {explained:+.2f} from its value at the reference ({baseline_output:+.2f})"
    sign = 1.0 if explained >= 0 else -1.0
    verb = "raises" if sign > 0 else "lowers"
    support = sign * contrib
    totals = support.sum(axis=0)
    order = [int(k) for k in np.argsort(-totals, kind="stable")]
    m = order[0]
    if spec.kind == "removal":
        rest = [marks[k] for k in order[1:3] if totals[k] > 0]
        return (
            f"{head}. Ranked by the change in the {what} when a mark is replaced by the reference, {marks[m]} "
            f"{verb} it most{_where(regions[int(np.argmax(support[:, m]))], regions)}"
            + (f", then {_join(rest)}" if rest else "")
            + f" (these effects overlap and are not shares of the {what}).{tail}"
        )
    dec = _decimals(np.concatenate([totals, [explained]]))

    def num(v: float) -> str:
        return f"{v:+.{dec}f}"

    r = int(np.argmax(support[:, m]))
    others = [k for k in order[1:] if totals[k] > 0 and totals[k] >= ALSO * totals[m]][:2]
    return (
        f"{head}. {marks[m]} {verb} it most: {num(sign * totals[m])} {unit} in total, "
        f"{num(sign * support[r, m])}{_where(regions[r], regions)}"
        + (f"; then {_join([f'{marks[k]} ({num(sign * totals[k])})' for k in others])}" if others else "")
        + f". All marks together give {num(float(contrib.sum()))} of the {num(explained)} change from the reference"
        f"{_gap_text(gap)}.{tail}"
    )
