"""Edits of a gene's histone marks as data: which mark, which bins, what to do with the reads there.

An edit is written ``MARK:REGION:OP[:VALUE]`` (the CLI's ``--edit``), for example
``H3K27me3:promoter:remove``, ``H3K4me3:-1000..1000:set=20`` or ``H3K36me3:gene_body:like=high``.

Regions (a bin belongs to a region when its **start**, in bp relative to the TSS in the direction of
transcription, lies in ``[START, END)``; the same rule as :class:`hmviz.explain.Region`):

* ``START..END`` in bp, e.g. ``-1000..1000``; it must lie inside the data's window
  (``-tss_bin * bin_size .. (n_bins - tss_bin) * bin_size``) and hold at least one bin start;
* ``upstream``: from the start of the window to -1 kb;
* ``promoter``: -1 kb .. +1 kb (the bounds of :func:`hmviz.explain.tss_regions`);
* ``gene_body`` (also ``gene body``, ``body``): from +1 kb to the end of the window;
* ``window`` (also ``all``): every bin.

Operations act on the raw signal in the data's units (reads per bin), **before** the model's transform:

* ``remove``: 0 reads in every bin of the region;
* ``scale=F``: reads times F (F >= 0);
* ``set=V``: V reads in every bin (V >= 0);
* ``add=V``: V more reads in every bin (V >= 0);
* ``like=high`` / ``like=low``: the per-bin median of the dataset's high (low) expression
  **training** genes (see :func:`hmviz.perturb.apply.reference_profiles`).

``VALUE`` may also follow a colon: ``H3K4me3:promoter:set:20`` is ``set=20``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hmviz.card import ModelCard
from hmviz.errors import HmvizError
from hmviz.explain._regions import PROMOTER_DOWNSTREAM_BP, PROMOTER_UPSTREAM_BP, format_bp

#: Operation -> what its value is (None: takes no value).
OPERATIONS: dict[str, str | None] = {
    "remove": None,
    "scale": "a factor >= 0",
    "set": "reads per bin >= 0",
    "add": "reads per bin >= 0",
    "like": "high or low",
}
REFERENCES: tuple[str, ...] = ("high", "low")
NAMED_REGIONS: tuple[str, ...] = ("upstream", "promoter", "gene_body", "window")
_ALIASES = {
    "gene body": "gene_body",
    "gene-body": "gene_body",
    "genebody": "gene_body",
    "body": "gene_body",
    "all": "window",
    "whole": "window",
}
SYNTAX = "MARK:REGION:OP[:VALUE], e.g. H3K27me3:promoter:remove or H3K4me3:-1000..1000:set=20"


@dataclass(frozen=True)
class Window:
    """The bins around the TSS that a model reads: ``n_bins`` bins of ``bin_size`` bp, TSS at ``tss_bin``."""

    marks: tuple[str, ...]
    n_bins: int
    bin_size: int
    tss_bin: int

    @classmethod
    def from_card(cls, card: ModelCard | dict) -> Window:
        """The window of a model card (its marks in order, bins, bin size and TSS bin)."""
        card = ModelCard.of(card)
        tss_bin = card.tss_bin if card.tss_bin is not None else card.n_bins // 2
        return cls(card.marks, card.n_bins, card.bin_size, tss_bin)

    @property
    def start_bp(self) -> int:
        return -self.tss_bin * self.bin_size

    @property
    def end_bp(self) -> int:
        return (self.n_bins - self.tss_bin) * self.bin_size

    def bin_starts_bp(self) -> np.ndarray:
        """Start of every bin in bp relative to the TSS, ``(bins,)``."""
        return (np.arange(self.n_bins) - self.tss_bin) * self.bin_size

    def named(self) -> dict[str, tuple[int, int]]:
        """The named regions of this window as ``name -> (start_bp, end_bp)``."""
        up = max(self.start_bp, -PROMOTER_UPSTREAM_BP)
        down = min(self.end_bp, PROMOTER_DOWNSTREAM_BP)
        return {
            "upstream": (self.start_bp, up),
            "promoter": (up, down),
            "gene_body": (down, self.end_bp),
            "window": (self.start_bp, self.end_bp),
        }

    def describe_regions(self) -> str:
        """``upstream (-5000..-1000), promoter (-1000..1000), ...`` for messages."""
        return ", ".join(f"{name} ({a}..{b})" for name, (a, b) in self.named().items())

    def span(self) -> str:
        return (
            f"{self.start_bp}..{self.end_bp} bp ({self.n_bins} bins of {self.bin_size} bp, TSS at bin {self.tss_bin})"
        )


@dataclass(frozen=True)
class Edit:
    """One edit: ``op`` applied to ``mark`` over ``region`` (a name of :data:`NAMED_REGIONS` or
    ``START..END`` in bp). ``value``: the factor (scale), reads per bin (set, add), or ``high``/``low``
    (like); None for remove. ``text`` is how the user wrote it (quoted in error messages)."""

    mark: str
    region: str
    op: str
    value: float | str | None = None
    text: str = ""

    @property
    def label(self) -> str:
        """Canonical ``MARK:REGION:OP[=VALUE]``."""
        value = "" if self.value is None else f"={self.value:g}" if isinstance(self.value, float) else f"={self.value}"
        return f"{self.mark}:{self.region}:{self.op}{value}"

    def __str__(self) -> str:
        return self.text or self.label


def _fail(text: str, what: str) -> HmvizError:
    return HmvizError(f"Edit '{text}': {what}")


def _number(text: str, op: str, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise _fail(text, f"'{raw}' is not a number; {op} takes {OPERATIONS[op]}.") from None
    if not math.isfinite(value):
        raise _fail(text, f"{op} takes a finite number ({OPERATIONS[op]}); got '{raw}'.")
    if value < 0:
        what = "a negative factor" if op == "scale" else "a negative level"
        raise _fail(
            text,
            f"{op}={raw} is {what}; {op} takes {OPERATIONS[op]} (reads cannot be negative; "
            "use remove or scale=F with 0 <= F < 1 to take reads away).",
        )
    return value


def parse_region(text: str, raw: str) -> str:
    """A region as written (``raw``) in canonical form: a name of :data:`NAMED_REGIONS` or ``START..END``;
    ``text`` (the whole edit) is quoted in the error."""
    key = raw.strip().lower()
    key = _ALIASES.get(key, key)
    if key in NAMED_REGIONS:
        return key
    start, sep, end = raw.replace(" ", "").partition("..")
    try:
        if not sep:
            raise ValueError
        a, b = float(start), float(end)
    except ValueError:
        raise _fail(
            text,
            f"region '{raw}' is neither START..END in bp relative to the TSS (e.g. -1000..1000) "
            f"nor a named region ({', '.join(NAMED_REGIONS)}).",
        ) from None
    if not a < b:
        raise _fail(
            text,
            f"region '{raw}' is empty: START must be below END (bp relative to the TSS, "
            "downstream positive), e.g. -1000..1000.",
        )
    return f"{a:g}..{b:g}"


def parse_edit(text: str) -> Edit:
    """Read ``MARK:REGION:OP[:VALUE]`` (syntax only; :func:`resolve` checks it against a model's window).

    Raises :class:`HmvizError` naming the edit and what is allowed."""
    raw = str(text).strip()
    parts = [p.strip() for p in raw.split(":")]
    if len(parts) not in (3, 4) or not all(parts):
        raise _fail(raw, f"write it as {SYNTAX}.")
    mark, region, op = parts[:3]
    op_name, eq, value_text = op.partition("=")
    op_name = op_name.strip().lower()
    if len(parts) == 4:
        if eq:
            raise _fail(raw, f"give the value once (as {op_name}=VALUE or {op_name}:VALUE).")
        value_text, eq = parts[3], "="
    if op_name not in OPERATIONS:
        raise _fail(raw, f"unknown operation '{op_name}'; allowed: remove, scale=F, set=V, add=V, like=high, like=low.")
    needs = OPERATIONS[op_name]
    if needs is None and eq:
        raise _fail(raw, f"{op_name} takes no value.")
    if needs is not None and not (eq and value_text.strip()):
        raise _fail(raw, f"{op_name} needs a value ({needs}), e.g. {op_name}=" + ("high" if op_name == "like" else "2"))
    value: float | str | None = None
    if op_name == "like":
        value = value_text.strip().lower()
        if value not in REFERENCES:
            raise _fail(
                raw,
                f"like={value_text} is not a reference; allowed: like=high, like=low (the per-bin "
                "median of the high or low expression training genes).",
            )
    elif needs is not None:
        value = _number(raw, op_name, value_text.strip())
    return Edit(mark, parse_region(raw, region), op_name, value, raw)


def parse_edits(texts) -> list[Edit]:
    """:func:`parse_edit` for each text (an empty list is an error)."""
    edits = [parse_edit(t) for t in texts]
    if not edits:
        raise HmvizError(f"No edit given; write one as {SYNTAX}.")
    return edits


def region_bp(edit_or_region: Edit | str, window: Window, text: str | None = None) -> tuple[float, float]:
    """``(start_bp, end_bp)`` of an edit's region in ``window``; an error when it lies outside."""
    region = edit_or_region.region if isinstance(edit_or_region, Edit) else str(edit_or_region)
    what = text or str(edit_or_region)
    named = window.named()
    if region in named:
        lo, hi = named[region]
        if lo >= hi:
            raise _fail(what, f"the window {window.span()} has no {region} region.")
        return float(lo), float(hi)
    a, b = (float(v) for v in region.split(".."))
    if a < window.start_bp or b > window.end_bp:
        raise _fail(
            what,
            f"region {format_bp(a)}..{format_bp(b)} lies outside the window {window.span()}; give "
            f"START..END within {window.start_bp}..{window.end_bp}, or a named region: "
            f"{window.describe_regions()}.",
        )
    return a, b


def region_mask(edit_or_region: Edit | str, window: Window, text: str | None = None) -> np.ndarray:
    """Boolean ``(bins,)``: the bins whose start lies in the region (at least one, else an error)."""
    a, b = region_bp(edit_or_region, window, text)
    starts = window.bin_starts_bp()
    mask = (starts >= a) & (starts < b)
    if not mask.any():
        raise _fail(
            text or str(edit_or_region),
            f"region {a:g}..{b:g} holds no bin start (bins start every {window.bin_size} bp from "
            f"{window.start_bp}); widen it.",
        )
    return mask


def mark_index(edit: Edit, window: Window) -> int:
    """Column of the edit's mark in the model's mark order; an unknown mark is an error naming the marks."""
    if edit.mark in window.marks:
        return window.marks.index(edit.mark)
    folded = {m.lower(): i for i, m in enumerate(window.marks)}
    if edit.mark.lower() in folded:
        return folded[edit.mark.lower()]
    raise _fail(str(edit), f"unknown mark '{edit.mark}'; this model reads {', '.join(window.marks)}.")


@dataclass(frozen=True)
class ResolvedEdit:
    """An edit checked against a window: its mark's column and its bins."""

    edit: Edit
    mark: int
    bins: np.ndarray  # bool (bins,)


def resolve(edits, window: Window) -> list[ResolvedEdit]:
    """Check edits (objects or texts) against a model's window: marks exist, regions inside the window."""
    out = []
    for e in edits:
        edit = e if isinstance(e, Edit) else parse_edit(e)
        out.append(ResolvedEdit(edit, mark_index(edit, window), region_mask(edit, window, str(edit))))
    return out


__all__ = [
    "NAMED_REGIONS",
    "OPERATIONS",
    "SYNTAX",
    "Edit",
    "ResolvedEdit",
    "Window",
    "mark_index",
    "parse_edit",
    "parse_edits",
    "parse_region",
    "region_bp",
    "region_mask",
    "resolve",
]
