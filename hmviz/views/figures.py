"""Figures of :mod:`hmviz.views`: genome-browser tracks of one or two genes and deepTools-style
heatmaps of many genes. Pure functions: data in, ``plotly`` figure out.

Colours: signal is drawn as filled grey-blue areas on a scale starting at 0 in the data's units
(never red/blue); attributions get their own rows under each mark, as bars in a diverging
red (raises the model output) / blue (lowers it) scale centred at 0, so the two cannot be confused.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from hmviz.errors import DataError
from hmviz.views.heatmap import HeatmapData, display_rows, pool_rows

SIGNAL_COLOURS = ("#3b5b92", "#e08a1e")  # gene A, gene B
RAISES, LOWERS = "#c0392b", "#2e6fb5"
POSITION_TITLE = "Position relative to the TSS (bp)"


def gene_tracks_figure(
    tracks: Sequence[pd.DataFrame],
    names: Sequence[str],
    *,
    units: str,
    attribution_unit: str | None = None,
    title: str = "",
    strand_note: str = "",
) -> go.Figure:
    """One row per mark with each gene's signal (``tracks`` from :func:`hmviz.views.gene_tracks`,
    aligned at the TSS), and under it a row of each gene's attribution when the frames carry an
    ``attribution`` column (``attribution_unit`` names its unit, e.g. "logit")."""
    if not tracks:
        raise DataError("No gene to draw.")
    if len(names) != len(tracks):
        raise DataError(f"{len(tracks)} genes but {len(names)} names.")
    marks = list(dict.fromkeys(tracks[0]["mark"]))
    with_att = "attribution" in tracks[0].columns
    rows = len(marks) * (2 if with_att else 1)
    heights = ([0.62, 0.38] * len(marks)) if with_att else [1.0] * len(marks)
    subtitles = []
    for m in marks:
        subtitles.append(f"{m}: signal ({units})")
        if with_att:
            subtitles.append(f"{m}: attribution ({attribution_unit or 'model output'})")
    traces, trace_rows = [], []
    for g, (frame, name) in enumerate(zip(tracks, names)):
        colour = SIGNAL_COLOURS[g % len(SIGNAL_COLOURS)]
        for k, mark in enumerate(marks):
            part = frame[frame["mark"] == mark]
            x = np.column_stack([part["start_bp"], part["end_bp"]]).reshape(-1)
            y = np.repeat(part["signal"].to_numpy(), 2)
            row = k * (2 if with_att else 1) + 1
            hover = _hover(part, name)
            traces.append(
                go.Scatter(
                    x=x,
                    y=y,
                    mode="lines",
                    line={"color": colour, "width": 1.2},
                    fill="tozeroy",
                    opacity=0.8,
                    name=name,
                    legendgroup=name,
                    showlegend=k == 0,
                    customdata=np.repeat(hover, 2),
                    hovertemplate="%{customdata}<br>signal %{y:.3g} " + units + "<extra></extra>",
                )
            )
            trace_rows.append(row)
            if with_att:
                att = part["attribution"].to_numpy()
                centres = (part["start_bp"].to_numpy() + part["end_bp"].to_numpy()) / 2
                traces.append(
                    go.Bar(
                        x=centres,
                        y=att,
                        width=(part["end_bp"] - part["start_bp"]).to_numpy() * 0.9,
                        marker={
                            "color": np.where(att >= 0, RAISES, LOWERS),
                            "line": {"color": colour, "width": 0.6 if len(tracks) > 1 else 0},
                        },
                        opacity=0.85 if len(tracks) == 1 else 0.6,
                        name=f"{name} attribution",
                        showlegend=False,
                        customdata=hover,
                        hovertemplate="%{customdata}<br>attribution %{y:.3g}<extra></extra>",
                    )
                )
                trace_rows.append(row + 1)
    # The axes are laid out by hand (plotly's make_subplots costs most of a second for 10 rows).
    layout = _stacked_axes(heights, subtitles, spacing=0.035 if rows > 6 else 0.06)
    for trace, row in zip(traces, trace_rows):
        trace.update(xaxis="x", yaxis=f"y{'' if row == 1 else row}")
    for r in range(1, rows + 1, 2 if with_att else 1):
        layout[f"yaxis{'' if r == 1 else r}"]["rangemode"] = "tozero"
    layout["shapes"] = [
        {
            "type": "line",
            "xref": "x",
            "x0": 0,
            "x1": 0,
            "yref": f"y{'' if r == 1 else r} domain",
            "y0": 0,
            "y1": 1,
            "line": {"color": "black", "width": 1, "dash": "dash"},
        }
        for r in range(1, rows + 1)
    ]
    layout["xaxis"]["title"] = {"text": POSITION_TITLE + (f" ({strand_note})" if strand_note else "")}
    layout.update(
        title={"text": title, "x": 0, "xanchor": "left"} if title else None,
        barmode="overlay",
        height=max(320, 120 * rows),
        margin={"l": 60, "r": 20, "t": 60 if title else 30, "b": 50},
        legend={"orientation": "h", "y": 1.02, "x": 1, "xanchor": "right", "yanchor": "bottom"},
    )
    return go.Figure(data=traces, layout=layout)


def _stacked_axes(heights: Sequence[float], titles: Sequence[str], spacing: float) -> dict:
    """Layout of rows stacked top to bottom sharing one x axis (anchored to the bottom row), with a
    title above each row; ``heights`` are relative."""
    n = len(heights)
    usable = 1.0 - spacing * (n - 1)
    scale = usable / float(sum(heights))
    layout: dict = {"annotations": []}
    top = 1.0
    for r, (h, text) in enumerate(zip(heights, titles), start=1):
        bottom = max(top - h * scale, 0.0)
        name = "" if r == 1 else str(r)
        layout[f"yaxis{name}"] = {"domain": [bottom, top], "anchor": "x"}
        layout["annotations"].append(
            {
                "text": text,
                "x": 0,
                "xref": "paper",
                "xanchor": "left",
                "y": top,
                "yref": "paper",
                "yanchor": "bottom",
                "showarrow": False,
                "font": {"size": 11},
            }
        )
        top = bottom - spacing
    layout["xaxis"] = {"anchor": f"y{'' if n == 1 else n}"}
    return layout


def _hover(part: pd.DataFrame, name: str) -> np.ndarray:
    text = [f"{name}: {s:+,} to {e:+,} bp" for s, e in zip(part["start_bp"], part["end_bp"])]
    if "genomic_start" in part.columns:
        text = [
            f"{t}<br>{c}:{gs + 1:,}-{ge:,}"
            for t, c, gs, ge in zip(text, part["chrom"], part["genomic_start"], part["genomic_end"])
        ]
    return np.asarray(text, dtype=object)


def heatmap_figure(
    data: HeatmapData, *, what: str, units: str, signed: bool = False, max_rows: int = 2000, title: str = ""
) -> go.Figure:
    """Mean profile per cluster (top) over a genes x bins heatmap (bottom), rows in ``data``'s order.

    More than ``max_rows`` genes are pooled into ``max_rows`` display rows (the mean of consecutive
    genes in the sorted order); the y axis title says so. ``signed``: a diverging scale centred at 0
    (attributions), else a sequential scale from 0 (signal)."""
    n = data.matrix.shape[0]
    edges = display_rows(n, max_rows)
    shown = pool_rows(data.matrix, edges) if edges.size - 1 < n else data.matrix
    x = data.bin_starts_bp + data.bin_size / 2
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.25, 0.75], vertical_spacing=0.04)
    k = data.profiles.shape[0]
    for c in range(k):
        count = int((data.cluster == c).sum())
        label = f"cluster {c + 1} ({count:,} genes)" if k > 1 else f"mean of {count:,} genes"
        fig.add_trace(go.Scatter(x=x, y=data.profiles[c], mode="lines", name=label), row=1, col=1)
    if signed:
        zmax = float(np.nanmax(np.abs(shown))) or 1.0
        scale = dict(colorscale="RdBu_r", zmin=-zmax, zmax=zmax, zmid=0)
    else:
        scale = dict(colorscale="Blues", zmin=0, zmax=float(np.nanpercentile(shown, 99)) or None)
    fig.add_trace(
        go.Heatmap(
            z=shown,
            x=x,
            y=np.arange(shown.shape[0]),
            colorbar={"title": {"text": units, "side": "right"}, "len": 0.7, "y": 0.37},
            hovertemplate="row %{y}<br>%{x:+,} bp<br>%{z:.3g}<extra></extra>",
            **scale,
        ),
        row=2,
        col=1,
    )
    if k > 1:  # cluster boundaries, in display rows
        bounds = np.searchsorted(edges[:-1], np.flatnonzero(np.diff(data.cluster)) + 1)
        for b in bounds:
            fig.add_hline(y=b - 0.5, line={"color": "black", "width": 1.5}, row=2, col=1)
    pooled = edges.size - 1 < n
    order = {
        "expression": "measured expression",
        "score": "model score",
        "signal": "mean signal",
        "none": "data order",
    }[data.sorted_by]
    ytitle = f"{n:,} genes by {order}" + (", highest at top" if data.sorted_by != "none" else "")
    ytitle += (", within clusters" if k > 1 else "") + (
        f" (rows: means of ~{n / (edges.size - 1):.0f} genes)" if pooled else " (one row per gene)"
    )
    fig.update_yaxes(autorange="reversed", showticklabels=False, title_text=ytitle, title_font_size=11, row=2, col=1)
    fig.update_yaxes(title_text=f"mean {what}", title_font_size=11, row=1, col=1)
    fig.update_xaxes(title_text=POSITION_TITLE, row=2, col=1)
    for r in (1, 2):
        fig.add_vline(x=0, line={"color": "black", "width": 1, "dash": "dash"}, row=r, col=1)
    fig.update_layout(
        title={"text": title, "x": 0, "xanchor": "left"} if title else None,
        height=720,
        margin={"l": 70, "r": 20, "t": 60 if title else 30, "b": 50},
        legend={"orientation": "h", "y": 1.02, "x": 1, "xanchor": "right", "yanchor": "bottom"},
    )
    return fig


def wrap_text(text: str, width_chars: int, break_words: bool = False) -> str:
    """``text`` with ``<br>`` between words so that no line is longer than ``width_chars`` (a single
    longer word stays whole unless ``break_words``, which cuts it into pieces); existing ``<br>``
    breaks are kept."""
    out = []
    for part in str(text).split("<br>"):
        lines, line = [], ""
        words = part.split(" ")
        if break_words:
            words = [w[i : i + width_chars] for w in words for i in range(0, max(len(w), 1), width_chars)]
        for word in words:
            if line and len(line) + 1 + len(word) > width_chars:
                lines.append(line)
                line = word
            else:
                line = f"{line} {word}" if line else word
        lines.append(line)
        out.append("<br>".join(lines))
    return "<br>".join(out)


def wrap_titles(fig: go.Figure, width_chars: int = 34) -> go.Figure:
    """Wrap the figure's title and its x-axis titles at ``width_chars`` (about 300 px of plotly's title
    font: half of the main area at 1024 px wide), so that a figure drawn in a half-width column is not
    cut. The top margin grows with the title's extra lines. Returns the same figure."""
    title = fig.layout.title.text if fig.layout.title else None
    if title:
        wrapped = wrap_text(title, width_chars)
        extra = wrapped.count("<br>") - title.count("<br>")
        fig.update_layout(title_text=wrapped)
        if extra:
            top = fig.layout.margin.t if fig.layout.margin and fig.layout.margin.t is not None else 100
            fig.update_layout(margin={"t": top + 20 * extra})
    for name in dir(fig.layout):
        if name.startswith("xaxis"):
            axis = fig.layout[name]
            if axis.title and axis.title.text:
                axis.title.text = wrap_text(axis.title.text, width_chars)
    return fig


def legend_inside(fig: go.Figure, corner: str = "bottom right") -> go.Figure:
    """Draw the legend inside the plot, in an empty ``corner`` ("bottom right" for ROC curves, "bottom
    left" for precision-recall), so that a half-width figure keeps its whole width for the plot and its
    axis titles. Returns the same figure."""
    right = corner.endswith("right")
    fig.update_layout(
        legend={
            "x": 0.98 if right else 0.02,
            "xanchor": "right" if right else "left",
            "y": 0.02,
            "yanchor": "bottom",
            "bgcolor": "rgba(255,255,255,0.75)",
        }
    )
    return fig
