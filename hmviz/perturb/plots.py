"""Figures of in-silico edits (pure functions: data -> plotly figure).

* :func:`tracks_before_after`: one track per mark, reads per bin over bp relative to the TSS, the
  signal before the edit (grey, filled) and after it (coloured line), as a genome browser draws it;
* :func:`scan_heatmap`: the deletion scan, marks x windows, as what each mark adds (diverging colours);
* :func:`scan_vs_attribution`: the scan above an attribution summed over the same windows, one colour scale.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from hmviz.errors import DataError
from hmviz.plots import DIVERGING, MARK_TITLE, POSITION_TITLE, SERIES_COLOURS, TSS_LINE, attribution_heatmap

BEFORE_COLOUR = "#9e9e9e"
READS_TITLE = "reads per bin"


def tracks_before_after(
    raw_before,
    raw_after,
    marks: Sequence[str],
    bin_starts_bp,
    bin_size: float,
    *,
    title: str = "Signal before and after the edit",
) -> go.Figure:
    """One track per mark: reads per bin before (grey, filled) and after (line), shared x axis in bp.

    ``raw_before``, ``raw_after``: ``(bins, marks)`` reads per bin. Bins are drawn as steps from their
    start to their end (``bin_size`` bp); a dashed line marks the TSS.
    """
    before = np.asarray(raw_before, dtype=np.float64)
    after = np.asarray(raw_after, dtype=np.float64)
    marks = [str(m) for m in marks]
    starts = np.asarray(bin_starts_bp, dtype=np.float64)
    if (
        before.shape != after.shape
        or before.ndim != 2
        or before.shape[1] != len(marks)
        or before.shape[0] != starts.size
    ):
        raise DataError(
            f"before {before.shape} and after {after.shape} must both be (bins, marks) with "
            f"{starts.size} bins and {len(marks)} marks."
        )
    fig = make_subplots(rows=len(marks), cols=1, shared_xaxes=True, vertical_spacing=0.02, row_titles=marks)
    x = np.append(starts, starts[-1] + bin_size)
    for k, mark in enumerate(marks):
        changed = not np.allclose(before[:, k], after[:, k])
        fig.add_trace(
            go.Scatter(
                x=x,
                y=np.append(before[:, k], before[-1, k]),
                line_shape="hv",
                fill="tozeroy",
                line={"color": BEFORE_COLOUR, "width": 1},
                name="before",
                legendgroup="before",
                showlegend=k == 0,
                hovertemplate=f"{mark} before: " + "%{y:.1f} reads at %{x:+,.0f} bp<extra></extra>",
            ),
            row=k + 1,
            col=1,
        )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=np.append(after[:, k], after[-1, k]),
                line_shape="hv",
                line={"color": SERIES_COLOURS[1], "width": 2 if changed else 1},
                name="after",
                legendgroup="after",
                showlegend=k == 0,
                hovertemplate=f"{mark} after: " + "%{y:.1f} reads at %{x:+,.0f} bp<extra></extra>",
            ),
            row=k + 1,
            col=1,
        )
        fig.update_yaxes(title_text=READS_TITLE if k == len(marks) // 2 else None, rangemode="tozero", row=k + 1, col=1)
    fig.add_vline(x=0, line=TSS_LINE)
    fig.update_xaxes(title_text=POSITION_TITLE, row=len(marks), col=1)
    fig.update_layout(
        title=title,
        height=110 + 90 * len(marks),
        legend={"orientation": "h", "y": 1.02, "x": 1, "xanchor": "right", "yanchor": "bottom"},
        margin={"r": 90},
    )
    fig.for_each_annotation(lambda a: a.update(textangle=0, xanchor="left"))
    return fig


def scan_heatmap(
    effect,
    marks: Sequence[str],
    starts_bp,
    window_bp: float,
    unit: str,
    *,
    title: str = "What each mark adds, by deletion",
) -> go.Figure:
    """Marks x windows heatmap of a deletion scan, drawn as what each mark adds to the prediction:
    ``-effect`` (the score minus the score with the mark deleted in that window), so that the colours
    mean what they mean in an attribution map (red: the mark there raises the prediction; blue: it
    lowers it). ``effect``: ``(marks, windows)``, :attr:`hmviz.perturb.ScanResult.effect`."""
    z = np.asarray(effect, dtype=np.float64)
    if z.ndim != 2 or z.shape[0] != len(marks):
        raise DataError(f"effect must be (marks, windows) with {len(marks)} marks; got {z.shape}.")
    fig = attribution_heatmap(
        -z.T,
        marks,
        starts_bp,
        bin_size=window_bp,
        title=title,
        colorbar_title=f"{unit}: score minus score without the mark",
    )
    fig.data[0].hovertemplate = (
        "%{y}, %{customdata[0]:+,.0f} to %{customdata[1]:+,.0f} bp<br>"
        "adds %{z:.3g} (deleting it changes the score by the opposite)<extra></extra>"
    )
    return fig


def scan_vs_attribution(
    effect,
    attribution,
    marks: Sequence[str],
    starts_bp,
    window_bp: float,
    unit: str,
    *,
    title: str = "What each mark adds: by deletion and by attribution",
) -> go.Figure:
    """Two marks x windows heatmaps on one colour scale, one above the other with a shared x axis: the
    deletion scan as what each mark adds (``-effect``, see :func:`scan_heatmap`) and an attribution
    summed over the same windows (``attribution``, ``(marks, windows)``; see
    :func:`hmviz.perturb.by_window`), both in the model's ``unit`` (red raises the prediction)."""
    z_scan = -np.asarray(effect, dtype=np.float64)
    z_attr = np.asarray(attribution, dtype=np.float64)
    marks = [str(m) for m in marks]
    starts = np.asarray(starts_bp, dtype=np.float64)
    if z_scan.shape != z_attr.shape or z_scan.shape != (len(marks), starts.size):
        raise DataError(
            f"effect {z_scan.shape} and attribution {z_attr.shape} must both be (marks, windows) = "
            f"({len(marks)}, {starts.size})."
        )
    zmax = float(max(np.abs(z_scan).max(), np.abs(z_attr).max())) or 1.0
    x = starts + window_bp / 2.0
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.12,
        subplot_titles=(
            "Deletion: score minus the score without the mark there",
            "Attribution (integrated gradients vs no reads), per window",
        ),
    )
    for row, (z, what) in enumerate(((z_scan, "adds"), (z_attr, "attribution")), start=1):
        fig.add_trace(
            go.Heatmap(
                z=z,
                x=x,
                y=marks,
                coloraxis="coloraxis",
                hovertemplate="%{y}, window centred at %{x:+,.0f} bp<br>" + what + ": %{z:.3g}<extra></extra>",
            ),
            row=row,
            col=1,
        )
        fig.update_yaxes(title_text=MARK_TITLE, row=row, col=1)
    fig.add_vline(x=0, line=TSS_LINE)
    fig.update_xaxes(title_text=POSITION_TITLE, row=2, col=1)
    fig.update_layout(
        title=title,
        height=520,
        coloraxis={
            "colorscale": DIVERGING,
            "cmid": 0.0,
            "cmin": -zmax,
            "cmax": zmax,
            "colorbar": {"title": {"text": unit, "side": "right"}},
        },
    )
    return fig


__all__ = ["scan_heatmap", "scan_vs_attribution", "tracks_before_after"]
