"""Regions of the window around the TSS (upstream, promoter, downstream) and their bins.

A bin belongs to the region that holds its **start** (bp relative to the TSS, as
``HistoneDataset.bin_starts_bp()`` gives it). With the default boundaries at -1 kb and +1 kb and
100-bp bins, the promoter is the 20 bins covering -1000..+1000 bp.

Names follow the data (:func:`data_regions`): "promoter", "upstream" and "downstream" are used only
where bins are fine enough to resolve a promoter (``bin_size <= FINE_BIN_BP``) and the bins follow
the strand (``strand_aware``); coarser bins are named by the bp span they really cover ("0 to +10
kb"), and unoriented bins by side ("left of the TSS", in the order the bins are stored).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hmviz.errors import HmvizError

PROMOTER_UPSTREAM_BP = 1000
PROMOTER_DOWNSTREAM_BP = 1000
#: Bins up to this size (bp) resolve a promoter; coarser bins are named by their bp span.
FINE_BIN_BP = 1000
_SIDES = {"upstream": "left of the TSS", "promoter": "around the TSS", "downstream": "right of the TSS"}


def format_bp(bp: float, signed: bool = True) -> str:
    """``-1000 -> '-1 kb'``, ``1500 -> '+1.5 kb'``, ``250 -> '+250 bp'``."""
    sign = ("+" if bp > 0 else "-" if bp < 0 else "") if signed else ""
    a = abs(bp)
    text = f"{a / 1000:g} kb" if a >= 1000 else f"{a:g} bp"
    return f"{sign}{text}"


@dataclass(frozen=True)
class Region:
    """Bins whose start lies in ``[start_bp, end_bp)`` relative to the TSS (``None``: open end)."""

    name: str
    start_bp: float | None
    end_bp: float | None
    #: The bp the region's bins really cover, ``[first start, last start + bin size)`` (None: not fitted).
    span: tuple[float, float] | None = None
    #: How the sentence says where (e.g. "at the promoter (-1 kb to +1 kb)"); empty: built from the name.
    phrase: str = ""

    @property
    def span_text(self) -> str:
        """The bp really covered (``'0 to +10 kb'``) when fitted to the data, else :attr:`bounds`."""
        if self.span is None:
            return self.bounds
        return f"{format_bp(self.span[0])} to {format_bp(self.span[1])}"

    @property
    def where(self) -> str:
        """Where, in words, for the sentence."""
        if self.phrase:
            return self.phrase
        if self.start_bp is None and self.end_bp is None:
            return "across the window"
        return f"in the {self.name} region ({self.span_text})"

    @property
    def bounds(self) -> str:
        """The boundaries in words: ``'< -1 kb'``, ``'-1 kb to +1 kb'``, ``'>= +1 kb'``."""
        if self.start_bp is None:
            return "whole window" if self.end_bp is None else f"< {format_bp(self.end_bp)}"
        if self.end_bp is None:
            return f">= {format_bp(self.start_bp)}"
        return f"{format_bp(self.start_bp)} to {format_bp(self.end_bp)}"

    @property
    def label(self) -> str:
        return self.name if self.name == self.span_text else f"{self.name} ({self.span_text})"

    def mask(self, bin_starts_bp: np.ndarray) -> np.ndarray:
        starts = np.asarray(bin_starts_bp, dtype=np.float64)
        keep = np.ones(starts.shape, dtype=bool)
        if self.start_bp is not None:
            keep &= starts >= self.start_bp
        if self.end_bp is not None:
            keep &= starts < self.end_bp
        return keep


def tss_regions(
    upstream_bp: float = PROMOTER_UPSTREAM_BP, downstream_bp: float = PROMOTER_DOWNSTREAM_BP
) -> tuple[Region, ...]:
    """``upstream`` (< -upstream_bp), ``promoter`` (-upstream_bp .. +downstream_bp), ``downstream``."""
    if upstream_bp < 0 or downstream_bp <= 0:
        raise HmvizError(
            f"Promoter boundaries must be positive distances from the TSS; got {upstream_bp} "
            f"upstream and {downstream_bp} downstream."
        )
    return (
        Region("upstream", None, -upstream_bp),
        Region("promoter", -upstream_bp, downstream_bp),
        Region("downstream", downstream_bp, None),
    )


def region_masks(bin_starts_bp: np.ndarray, regions: tuple[Region, ...] | None = None) -> np.ndarray:
    """Boolean ``(regions, bins)``; a bin that falls in several regions is counted in each."""
    regions = tss_regions() if regions is None else tuple(regions)
    return np.stack([r.mask(bin_starts_bp) for r in regions])


def orientation_note(strand_aware: bool | None) -> str:
    """What left and right mean when the bins do not follow the strand; empty when they do."""
    if strand_aware:
        return ""
    if strand_aware is None:
        return (
            "The data does not record whether its bins follow each gene's strand, so positions are "
            "left and right of the TSS as the bins are stored, not upstream and downstream."
        )
    return (
        "The bins are in genome order, not oriented by strand: left and right of the TSS, not upstream and downstream."
    )


def data_regions(
    bin_starts_bp: np.ndarray, bin_size: float, strand_aware: bool | None, regions: tuple[Region, ...] | None = None
) -> tuple[Region, ...]:
    """``regions`` (default :func:`tss_regions`) fitted to the data: named only as the data allows.

    Every region gets the ``span`` its bins really cover; regions holding no bin are dropped. The TSS
    regions keep the names upstream / promoter / downstream only when ``bin_size <= FINE_BIN_BP``
    and ``strand_aware`` is True; with coarser bins a region is named by its span ("0 to +10 kb");
    with bins that may not follow the strand by its side ("left of the TSS").
    """
    starts = np.asarray(bin_starts_bp, dtype=np.float64)
    regions = tss_regions() if regions is None else tuple(regions)
    fine = float(bin_size) <= FINE_BIN_BP
    out = []
    for r in regions:
        inside = starts[r.mask(starts)]
        if inside.size == 0:
            continue
        span = (float(inside.min()), float(inside.max() + bin_size))
        fitted = Region(r.name, r.start_bp, r.end_bp, span)
        text = fitted.span_text
        if r.start_bp is None and r.end_bp is None:
            out.append(Region(r.name, None, None, span, f"across the window ({text})"))
        elif r.name not in _SIDES:
            out.append(Region(r.name, r.start_bp, r.end_bp, span, r.phrase or f"in the {r.name} region ({text})"))
        elif not fine:
            out.append(Region(text, r.start_bp, r.end_bp, span, f"at {text} from the TSS"))
        elif strand_aware:
            words = {"promoter": "at the promoter", "upstream": "upstream", "downstream": "downstream"}[r.name]
            out.append(Region(r.name, r.start_bp, r.end_bp, span, f"{words} ({text})"))
        else:
            out.append(Region(_SIDES[r.name], r.start_bp, r.end_bp, span, f"{_SIDES[r.name]} ({text})"))
    return tuple(out)
