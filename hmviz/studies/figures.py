"""Figures of a study: pure functions from a summary table to a plotly figure (no I/O, no Streamlit)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from hmviz.errors import DataError
from hmviz.metrics import metric_label
from hmviz.studies.marks import (
    DEFAULT_MARGIN,
    reference_row,
    smallest_within_margin,
    value_column,
)

MAIN, VALID, HIGHLIGHT = "#1f77b4", "#7f7f7f", "#d62728"


def _subset_traces(
    fig: go.Figure, table: pd.DataFrame, margin: float, order: list[str], col: int, label: str, legend: bool
) -> None:
    value = value_column(table)
    t = table.set_index("marks").reindex(order).dropna(subset=[value]).reset_index()
    ref = reference_row(table)
    best = smallest_within_margin(table, margin)
    err = None
    if "std" in t.columns and t["std"].notna().any():
        err = {"type": "data", "array": t["std"].fillna(0).to_numpy(), "visible": True, "thickness": 1}
    fig.add_trace(
        go.Scatter(
            x=t[value],
            y=t["marks"],
            mode="markers",
            error_x=err,
            name="test (mean ± SD over seeds)" if err is not None else "test",  # masking: one evaluation, no seeds
            marker={"color": MAIN, "size": 8},
            showlegend=legend,
            legendgroup="test",
            hovertemplate="%{y}<br>test: %{x:.4f}<extra>" + label + "</extra>",
        ),
        row=1,
        col=col,
    )
    if best["chosen_on"] == "valid_mean":
        fig.add_trace(
            go.Scatter(
                x=t["valid_mean"],
                y=t["marks"],
                mode="markers",
                name="validation (mean)",
                marker={"color": VALID, "size": 7, "symbol": "circle-open"},
                showlegend=legend,
                legendgroup="valid",
                hovertemplate="%{y}<br>validation: %{x:.4f}<extra>" + label + "</extra>",
            ),
            row=1,
            col=col,
        )
    fig.add_trace(
        go.Scatter(
            x=[best[value]],
            y=[best["marks"]],
            mode="markers",
            showlegend=legend,
            legendgroup="chosen",
            name=f"smallest subset within {margin:g} of all marks"
            f" (chosen on {'validation' if best['chosen_on'] == 'valid_mean' else 'test'})",
            marker={"color": HIGHLIGHT, "size": 14, "symbol": "diamond"},
            hoverinfo="skip",
        ),
        row=1,
        col=col,
    )
    fig.add_vline(x=ref[value], line={"color": "black", "width": 1, "dash": "dash"}, row=1, col=col)


def subset_chart(
    table: pd.DataFrame,
    *,
    margin: float = DEFAULT_MARGIN,
    published: pd.DataFrame | None = None,
    title: str | None = None,
) -> go.Figure:
    """Test metric per subset of marks (mean ± SD over seeds), validation mean beside it, and the smallest
    subset within ``margin`` of all marks chosen on validation (red diamond); the dashed line is all marks.

    ``published``: a published table (:func:`hmviz.studies.read_published_ablation`) drawn in a second
    panel beside it, rows in the same order (subsets one of them lacks are left out of that panel).
    """
    for c in ("marks", "n_marks", "metric"):
        if c not in table.columns:
            raise DataError(f"The mark-subset table has no '{c}' column.")
    order = table.sort_values(value_column(table), ascending=True, kind="stable")["marks"].astype(str).tolist()
    label = metric_label(table["metric"].iloc[0])
    panels = ["hmviz"] + (["published"] if published is not None else [])
    if published is not None:
        order += [m for m in published.sort_values("mean")["marks"] if m not in order]
    # Panel titles only beside a published panel (one panel: the figure's title says it all).
    fig = make_subplots(
        rows=1,
        cols=len(panels),
        shared_yaxes=True,
        horizontal_spacing=0.04,
        subplot_titles=(
            [
                f"hmviz: {label}",
                f"{published.attrs.get('source', 'published')}: {metric_label(published['metric'].iloc[0])}",
            ]
            if published is not None
            else None
        ),
    )
    _subset_traces(fig, table, margin, order, 1, "hmviz", True)
    if published is not None:
        _subset_traces(fig, published, margin, order, 2, "published", False)
    fig.update_yaxes(categoryorder="array", categoryarray=order, title_text="marks used", row=1, col=1)
    for i in range(len(panels)):
        fig.update_xaxes(title_text=label, row=1, col=i + 1)
    height = max(350, 22 * len(order) + 170)
    # The legend 60 px below the top of the figure (under the title), the panels' titles at 120 px (the top
    # margin): placed in the figure's own pixels, they never overlap whatever the number of subsets.
    fig.update_layout(
        title=title or f"Which marks does the model need? {label} per subset of marks",
        height=height,
        margin={"t": 120},
        legend={
            "orientation": "h",
            "x": 0,
            "xanchor": "left",
            "yref": "container",
            "y": 1 - 60 / height,
            "yanchor": "top",
        },
    )
    return fig


def cross_cell_heatmap(matrix: pd.DataFrame, *, title: str | None = None) -> go.Figure:
    """The cross-cell matrix (:func:`hmviz.studies.cross_cell_matrix`): trained on (rows) x scored on
    (columns), the mean test metric over seeds written in each cell."""
    if matrix.empty:
        raise DataError("The cross-cell matrix is empty.")
    z = matrix.to_numpy(dtype=np.float64)
    label = metric_label(matrix.attrs.get("metric", "test metric"))
    text = np.where(np.isfinite(z), np.vectorize(lambda v: f"{v:.3f}")(np.nan_to_num(z)), "")
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=list(matrix.columns.astype(str)),
            y=list(matrix.index.astype(str)),
            text=text,
            texttemplate="%{text}",
            colorscale="Viridis",
            colorbar={"title": {"text": label}},
            hovertemplate="trained on %{y}<br>scored on %{x}<br>" + label + ": %{z:.4f}<extra></extra>",
        )
    )
    fig.update_layout(
        title=title or f"Cross-cell {label} (mean over {matrix.attrs.get('n_seeds', '?')} seeds)",
        xaxis_title="scored on (cell)",
        yaxis_title="trained on (cell)",
        height=max(320, 60 * len(z) + 160),
    )
    fig.update_yaxes(autorange="reversed")
    return fig
