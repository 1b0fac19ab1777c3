"""Regions of the window around the TSS (upstream, promoter, downstream) and their bins.

A bin belongs to the region that holds its **start** (bp relative to the TSS, as
``HistoneDataset.bin_starts_bp()`` gives it). With the default boundaries at -1 kb and +1 kb and
100-bp bins, the promoter is the 20 bins covering -1000..+1000 bp.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hmviz.errors import HmvizError

PROMOTER_UPSTREAM_BP = 1000
PROMOTER_DOWNSTREAM_BP = 1000


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

    @property
    def bounds(self) -> str:
        """The boundaries in words: ``'< -1 kb'``, ``'-1 kb to +1 kb'``, ``'>= +1 kb'``."""
        if self.start_bp is None and self.end_bp is None:
            return "whole window"
        if self.start_bp is None:
            return f"< {format_bp(self.end_bp)}"
        if self.end_bp is None:
            return f">= {format_bp(self.start_bp)}"
        return f"{format_bp(self.start_bp)} to {format_bp(self.end_bp)}"

    @property
    def label(self) -> str:
        return f"{self.name} ({self.bounds})"

    def mask(self, bin_starts_bp: np.ndarray) -> np.ndarray:
        starts = np.asarray(bin_starts_bp, dtype=np.float64)
        keep = np.ones(starts.shape, dtype=bool)
        if self.start_bp is not None:
            keep &= starts >= self.start_bp
        if self.end_bp is not None:
            keep &= starts < self.end_bp
        return keep


def tss_regions(upstream_bp: float = PROMOTER_UPSTREAM_BP,
                downstream_bp: float = PROMOTER_DOWNSTREAM_BP) -> tuple[Region, ...]:
    """``upstream`` (< -upstream_bp), ``promoter`` (-upstream_bp .. +downstream_bp), ``downstream``."""
    if upstream_bp < 0 or downstream_bp <= 0:
        raise HmvizError(f"Promoter boundaries must be positive distances from the TSS; got {upstream_bp} "
                         f"upstream and {downstream_bp} downstream.")
    return (Region("upstream", None, -upstream_bp), Region("promoter", -upstream_bp, downstream_bp),
            Region("downstream", downstream_bp, None))


def region_masks(bin_starts_bp: np.ndarray, regions: tuple[Region, ...] | None = None) -> np.ndarray:
    """Boolean ``(regions, bins)``; a bin that falls in several regions is counted in each."""
    regions = tss_regions() if regions is None else tuple(regions)
    return np.stack([r.mask(bin_starts_bp) for r in regions])
