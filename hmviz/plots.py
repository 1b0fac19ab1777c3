"""Figures: pure functions from numbers to a ``plotly.graph_objects.Figure`` (no I/O, no Streamlit).

Every function takes plain NumPy/pandas inputs plus the names that label them (marks, bin starts
in bp relative to the TSS, gene names) and returns a figure; shapes are checked and a mismatch is a
:class:`~hmviz.errors.DataError` that says which shape was expected.

==============================  ============================================================
figure                          inputs
==============================  ============================================================
:func:`attribution_heatmap`     one gene's attributions ``(bins, marks)``
:func:`pair_heatmaps`           genes A and B ``(bins, marks)`` each, and A - B (or A + B)
:func:`mark_bars`               per-mark sums ``(marks,)``, or ``(series, marks)`` (A vs B)
:func:`region_bars`             per-region sums ``(regions, marks)``
:func:`attention_heatmap`       AttentiveChrome alpha ``(marks, bins)``
:func:`attention_beta_bars`     beta ``(marks,)`` or ``(series, marks)`` (per class)
:func:`roc_curves`              ``{model: (labels, scores)}``
:func:`pr_curves`               ``{model: (labels, scores)}``
:func:`predicted_vs_actual`     predicted scores and measured expression ``(genes,)``
:func:`mark_profiles`           signal ``(genes, bins, marks)`` and a group per gene
:func:`training_curves`         a model card's ``history`` (list of per-epoch dicts)
==============================  ============================================================

Positions: a bin covers ``[start, start + bin_size)`` bp relative to the TSS; heatmap cells and
profile points sit at the bin centre, so the TSS (a vertical line at 0) falls on the edge between
the bin that ends at the TSS and the bin that starts there.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from hmviz.errors import DataError

POSITION_TITLE = "Position relative to the TSS (bp)"
MARK_TITLE = "Histone mark"
# Callers pass the method's own title (`MethodSpec.value_title`): contribution, slope or effect of removal, in
# the output's unit (logit, log2 fold change). The default names neither.
ATTRIBUTION_UNITS = "attribution (in the model output's unit)"
DIVERGING = "RdBu_r"  # red raises the output, blue lowers it, white is 0
SEQUENTIAL = "Viridis"
TSS_LINE = {"color": "black", "width": 1, "dash": "dash"}
HIGHLIGHT = "#d62728"
MAIN = "#1f77b4"
SERIES_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22")


# ----------------------------------------------------------------------------- helpers
def _array(values, name: str, ndim: int | tuple[int, ...]) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    dims = (ndim,) if isinstance(ndim, int) else ndim
    if arr.ndim not in dims:
        raise DataError(f"{name} must have {' or '.join(map(str, dims))} dimension(s); got shape {arr.shape}.")
    return arr


def _names(names: Sequence[str] | None, n: int, what: str, default: str) -> list[str]:
    if names is None:
        return [f"{default} {k + 1}" for k in range(n)]
    names = [str(v) for v in names]
    if len(names) != n:
        raise DataError(f"{len(names)} {what} names given for {n} {what}s.")
    return names


def _bin_positions(bin_starts_bp, n_bins: int, bin_size: float | None) -> tuple[np.ndarray, float]:
    """Bin centres in bp and the bin size (from ``bin_size`` or the spacing of the starts)."""
    starts = _array(bin_starts_bp, "bin_starts_bp", 1)
    if starts.size != n_bins:
        raise DataError(f"{starts.size} bin starts given for {n_bins} bins.")
    if bin_size is None:
        steps = np.diff(starts)
        if steps.size == 0 or not np.allclose(steps, steps[0]) or steps[0] <= 0:
            raise DataError("Give bin_size (bp): it cannot be read from the bin starts.")
        bin_size = float(steps[0])
    if not bin_size > 0:
        raise DataError(f"bin_size must be a positive number of bp; got {bin_size}.")
    return starts + bin_size / 2.0, float(bin_size)


def _symmetric_range(*arrays: np.ndarray) -> float:
    m = max((float(np.nanmax(np.abs(a))) if np.size(a) and np.isfinite(a).any() else 0.0) for a in arrays)
    return m if m > 0 else 1.0


def _mark_tss(fig: go.Figure, **where) -> None:
    fig.add_vline(x=0, line=TSS_LINE, **where)


def _heatmap(
    z: np.ndarray,
    x: np.ndarray,
    marks: list[str],
    bin_size: float,
    *,
    signed: bool,
    zmax: float | None,
    coloraxis: str | None = None,
    value_name: str = "attribution",
) -> go.Heatmap:
    starts = x - bin_size / 2.0
    custom = np.broadcast_to(np.stack([starts, starts + bin_size], axis=-1), (z.shape[0], z.shape[1], 2))
    kw = {
        "z": z,
        "x": x,
        "y": marks,
        "customdata": custom,
        "hovertemplate": "%{y}, %{customdata[0]:+,.0f} to %{customdata[1]:+,.0f} bp<br>"
        f"{value_name}: " + "%{z:.3g}<extra></extra>",
    }
    if coloraxis:
        return go.Heatmap(coloraxis=coloraxis, **kw)
    if signed:
        zmax = zmax or _symmetric_range(z)
        return go.Heatmap(colorscale=DIVERGING, zmid=0.0, zmin=-zmax, zmax=zmax, **kw)
    return go.Heatmap(colorscale=SEQUENTIAL, zmin=0.0, zmax=zmax, **kw)


# ------------------------------------------------------------------------ attributions
def attribution_heatmap(
    values,
    marks: Sequence[str],
    bin_starts_bp,
    *,
    bin_size: float | None = None,
    title: str = "Where each mark drives the prediction",
    colorbar_title: str = ATTRIBUTION_UNITS,
    signed: bool = True,
    zmax: float | None = None,
) -> go.Figure:
    """Marks x positions heatmap of one gene's attributions.

    ``values``: ``(bins, marks)`` (the layout of the data and of ``Attribution.values[g]``); shown
    transposed, marks as rows. The x axis is the bin centre in bp relative to the TSS; a dashed line
    marks the TSS. Signed values use a diverging scale centred at 0 (red raises the output, blue
    lowers it), symmetric up to ``zmax`` (default: the largest absolute value).
    """
    z = _array(values, "values", 2)
    marks = [str(m) for m in marks]
    if z.shape[1] != len(marks):
        raise DataError(
            f"values has shape {z.shape}; expected (bins, marks) with {len(marks)} marks ({', '.join(marks)})."
        )
    x, size = _bin_positions(bin_starts_bp, z.shape[0], bin_size)
    fig = go.Figure(_heatmap(z.T, x, marks, size, signed=signed, zmax=zmax))
    fig.data[0].colorbar = {"title": {"text": colorbar_title, "side": "right"}}
    _mark_tss(fig, annotation_text="TSS", annotation_position="top")
    fig.update_layout(title=title, xaxis_title=POSITION_TITLE, yaxis_title=MARK_TITLE)
    return fig


def pair_heatmaps(
    values_a,
    values_b,
    marks: Sequence[str],
    bin_starts_bp,
    *,
    gene_a: str = "gene A",
    gene_b: str = "gene B",
    bin_size: float | None = None,
    combine: str = "difference",
    title: str | None = None,
    colorbar_title: str = ATTRIBUTION_UNITS,
) -> go.Figure:
    """Two genes' attribution heatmaps and their difference, stacked with one shared x axis and one
    shared diverging colour scale (centred at 0, symmetric over all three panels).

    ``values_a``, ``values_b``: ``(bins, marks)`` each. ``combine="difference"`` shows A - B (use it
    for each gene's attributions of its own score); ``"sum"`` shows A + B (use it for a pair
    explanation, whose two parts together make up the score difference s_A - s_B).
    """
    a, b = _array(values_a, "values_a", 2), _array(values_b, "values_b", 2)
    marks = [str(m) for m in marks]
    if a.shape != b.shape or a.shape[1] != len(marks):
        raise DataError(
            f"values_a {a.shape} and values_b {b.shape} must both be (bins, marks) with {len(marks)} marks."
        )
    if combine not in ("difference", "sum"):
        raise DataError(f"combine must be 'difference' or 'sum'; got '{combine}'.")
    x, size = _bin_positions(bin_starts_bp, a.shape[0], bin_size)
    third = a - b if combine == "difference" else a + b
    third_title = f"{gene_a} minus {gene_b}" if combine == "difference" else f"{gene_a} + {gene_b} (together)"
    fig = make_subplots(
        rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.08, subplot_titles=(gene_a, gene_b, third_title)
    )
    for row, z in enumerate((a, b, third), start=1):
        fig.add_trace(_heatmap(z.T, x, marks, size, signed=True, zmax=None, coloraxis="coloraxis"), row=row, col=1)
        fig.update_yaxes(title_text=MARK_TITLE if row == 2 else None, row=row, col=1)
        _mark_tss(fig, row=row, col=1)
    zmax = _symmetric_range(a, b, third)
    fig.update_layout(
        title=title or f"Why the model ranks {gene_a} vs {gene_b}: contributions by mark and position",
        coloraxis={
            "colorscale": DIVERGING,
            "cmid": 0.0,
            "cmin": -zmax,
            "cmax": zmax,
            "colorbar": {"title": {"text": colorbar_title, "side": "right"}},
        },
        height=650,
    )
    fig.update_xaxes(title_text=POSITION_TITLE, row=3, col=1)
    return fig


def _bars(values, labels: list[str], series_names, *, what: str, title: str, x_title: str, y_title: str) -> go.Figure:
    v = _array(values, "values", (1, 2))
    v2 = v[None, :] if v.ndim == 1 else v
    if v2.shape[1] != len(labels):
        raise DataError(
            f"values has shape {v.shape}; expected ({len(labels)},) or (series, {len(labels)}) for the "
            f"{what}s {', '.join(labels)}."
        )
    fig = go.Figure()
    if v.ndim == 1 and series_names is None:
        colours = [HIGHLIGHT if val > 0 else MAIN for val in v]  # red raises, blue lowers (as the heatmaps)
        fig.add_trace(
            go.Bar(x=labels, y=v, marker_color=colours, name=y_title, hovertemplate="%{x}: %{y:.3g}<extra></extra>")
        )
    else:
        names = _names(series_names, v2.shape[0], "series", "series")
        for k, (name, row) in enumerate(zip(names, v2)):
            fig.add_trace(
                go.Bar(
                    x=labels,
                    y=row,
                    name=name,
                    marker_color=SERIES_COLOURS[k % len(SERIES_COLOURS)],
                    hovertemplate=f"{name}, " + "%{x}: %{y:.3g}<extra></extra>",
                )
            )
        fig.update_layout(barmode="group")
    fig.add_hline(y=0, line={"color": "black", "width": 1})
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title=y_title)
    # every bar named: on a narrow figure plotly would otherwise drop category labels that overlap
    fig.update_xaxes(tickmode="array", tickvals=labels, ticktext=labels)
    return fig


def mark_bars(
    values,
    marks: Sequence[str],
    *,
    series_names: Sequence[str] | None = None,
    title: str = "Contribution of each mark",
    value_title: str = ATTRIBUTION_UNITS,
) -> go.Figure:
    """Signed per-mark contributions as bars.

    ``values``: ``(marks,)`` (one bar per mark, red above 0, blue below) or ``(series, marks)``
    grouped by mark, one colour per series (e.g. gene A vs gene B: ``series_names=("A", "B")``).
    """
    return _bars(
        values, [str(m) for m in marks], series_names, what="mark", title=title, x_title=MARK_TITLE, y_title=value_title
    )


def region_bars(
    values,
    marks: Sequence[str],
    regions: Sequence[str],
    *,
    title: str = "Contribution by region around the TSS",
    value_title: str = ATTRIBUTION_UNITS,
) -> go.Figure:
    """Signed contributions per region (x, e.g. "promoter (-1 kb to +1 kb)") and mark (one colour each).

    ``values``: ``(regions, marks)`` (``Attribution.by_region()[g]``, or a pair's region sums).
    """
    v = _array(values, "values", 2)
    regions, marks = [str(r) for r in regions], [str(m) for m in marks]
    if v.shape != (len(regions), len(marks)):
        raise DataError(f"values has shape {v.shape}; expected (regions, marks) = ({len(regions)}, {len(marks)}).")
    return _bars(
        v.T, regions, marks, what="region", title=title, x_title="Region relative to the TSS", y_title=value_title
    )


# --------------------------------------------------------------------------- attention
def attention_heatmap(
    alpha,
    marks: Sequence[str],
    bin_starts_bp,
    *,
    bin_size: float | None = None,
    title: str = "Where the model looks along each mark (attention over positions)",
) -> go.Figure:
    """AttentiveChrome's alpha as a marks x positions heatmap (sequential scale from 0).

    ``alpha``: ``(marks, bins)``, as ``hmviz.explain.attention_maps`` returns it per gene (or a class mean);
    each mark's row sums to 1 over bins.
    """
    a = _array(alpha, "alpha", 2)
    marks = [str(m) for m in marks]
    if a.shape[0] != len(marks):
        raise DataError(f"alpha has shape {a.shape}; expected (marks, bins) with {len(marks)} marks.")
    x, size = _bin_positions(bin_starts_bp, a.shape[1], bin_size)
    fig = go.Figure(_heatmap(a, x, marks, size, signed=False, zmax=None, value_name="attention"))
    fig.data[0].colorbar = {"title": {"text": "attention weight (sums to 1 per mark)", "side": "right"}}
    _mark_tss(fig, annotation_text="TSS", annotation_position="top")
    fig.update_layout(title=title, xaxis_title=POSITION_TITLE, yaxis_title=MARK_TITLE)
    return fig


def attention_beta_bars(
    beta,
    marks: Sequence[str],
    *,
    series_names: Sequence[str] | None = None,
    title: str = "How much the model attends to each mark",
) -> go.Figure:
    """AttentiveChrome's beta (attention over marks, sums to 1): ``(marks,)`` or ``(series, marks)``
    (e.g. the class means with ``series_names=("low", "high")``)."""
    fig = _bars(
        beta,
        [str(m) for m in marks],
        series_names if np.ndim(beta) == 2 else None,
        what="mark",
        title=title,
        x_title=MARK_TITLE,
        y_title="attention weight (sums to 1 over marks)",
    )
    if np.ndim(beta) == 1:
        fig.data[0].marker.color = MAIN
    return fig


# ------------------------------------------------------------------------- evaluation
def _curve_inputs(curves: Mapping[str, tuple], what: str) -> list[tuple[str, np.ndarray, np.ndarray]]:
    if not curves:
        raise DataError(f"Give at least one model for the {what} curve.")
    out = []
    for name, pair in curves.items():
        if len(pair) != 2:
            raise DataError(f"{name}: give (labels, scores) for the {what} curve.")
        y, s = _array(pair[0], f"{name} labels", 1), _array(pair[1], f"{name} scores", 1)
        if y.shape != s.shape:
            raise DataError(f"{name}: {y.size} labels but {s.size} scores.")
        if not np.isin(y, (0, 1)).all() or len(np.unique(y)) < 2:
            raise DataError(f"{name}: labels must be 0 (low) and 1 (high), with both classes present.")
        out.append((str(name), y.astype(int), s))
    return out


def roc_curves(curves: Mapping[str, tuple], *, title: str = "ROC curve: high vs low expression") -> go.Figure:
    """ROC curves of several models on one figure, AUROC in the legend.

    ``curves``: ``{model name: (labels (genes,) 0/1, scores (genes,))}``.
    """
    from sklearn.metrics import roc_curve

    from hmviz.metrics import auroc

    fig = go.Figure()
    for name, y, s in _curve_inputs(curves, "ROC"):
        fpr, tpr, _ = roc_curve(y, s)
        fig.add_trace(go.Scatter(x=fpr, y=tpr, mode="lines", name=f"{name} (AUROC {auroc(y, s):.3f})"))
    fig.add_trace(
        go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance (AUROC 0.5)", line={"color": "grey", "dash": "dot"})
    )
    fig.update_layout(
        title=title,
        showlegend=True,
        xaxis_title="false positive rate (low genes called high)",
        yaxis_title="true positive rate (high genes found)",
        xaxis={"range": [0, 1]},
        yaxis={"range": [0, 1.02]},
    )
    return fig


def pr_curves(
    curves: Mapping[str, tuple], *, title: str = "Precision-recall curve: finding the highly expressed genes"
) -> go.Figure:
    """Precision-recall curves of several models on one figure, AUPRC (average precision) in the legend,
    and the fraction of high genes (a random ranking's precision) as a dotted line."""
    from sklearn.metrics import precision_recall_curve

    from hmviz.metrics import auprc

    fig = go.Figure()
    prevalence = None
    for name, y, s in _curve_inputs(curves, "precision-recall"):
        precision, recall, _ = precision_recall_curve(y, s)
        fig.add_trace(go.Scatter(x=recall, y=precision, mode="lines", name=f"{name} (AUPRC {auprc(y, s):.3f})"))
        prevalence = float(y.mean()) if prevalence is None else prevalence
    fig.add_hline(
        y=prevalence,
        line={"color": "grey", "dash": "dot"},
        annotation_text=f"random ranking ({prevalence:.2f} of genes are high)",
        annotation_position="bottom right",  # under the line: the curve reaches it from above at recall 1
    )
    fig.update_layout(
        title=title,
        showlegend=True,  # the legend carries the AUPRC: shown also for one model (plotly hides a lone trace's)
        xaxis_title="recall (high genes found)",
        yaxis_title="precision (genes called high that are high)",
        xaxis={"range": [0, 1]},
        yaxis={"range": [0, 1.02]},
    )
    return fig


def predicted_vs_actual(
    predicted,
    expression,
    *,
    labels=None,
    gene_names: Sequence[str] | None = None,
    log1p_expression: bool = True,
    predicted_title: str = "predicted score (logit)",
    title: str | None = None,
    measured_name: str = "expression",
    measured_title: str | None = None,
    spearman: float | None = None,
) -> go.Figure:
    """Predicted score against measured expression, one point per gene, Spearman r in the title.

    ``predicted``, ``expression``: ``(genes,)``; expression is shown as log(1 + expression) unless
    ``log1p_expression=False``. ``labels`` (0/1) colour the points low/high; ``gene_names`` show on hover.
    Each point's ``customdata`` is its position in ``predicted`` (what a selection of points reports).
    ``measured_name`` says what was measured (``"log2 fold change"`` for two cells) in the title and on the
    axis (``measured_title``, when given, is the whole axis title). ``spearman``: the Spearman r to show,
    when a table beside the figure already gives it for these genes (the same predictions computed in other
    batches can break ties differently); computed here when None.
    """
    from scipy.stats import spearmanr

    p, e = _array(predicted, "predicted", 1), _array(expression, "expression", 1)
    if p.shape != e.shape:
        raise DataError(f"{p.size} predictions but {e.size} expression values; give one of each per gene.")
    names = _names(gene_names, p.size, "gene", "gene")
    ok = np.isfinite(p) & np.isfinite(e)
    if log1p_expression:
        if (e[ok] < 0).any():
            raise DataError(
                "Expression has negative values, so log(1 + expression) does not apply; pass log1p_expression=False."
            )
        e = np.where(ok, np.log1p(np.where(ok, e, 0.0)), np.nan)
    fig = go.Figure()
    groups = [("genes", np.ones(p.size, dtype=bool), MAIN)]
    if labels is not None:
        lab = np.asarray(labels)
        if lab.shape != p.shape:
            raise DataError(f"{lab.size} labels for {p.size} genes.")
        groups = [("low expression", lab == 0, MAIN), ("high expression", lab == 1, HIGHLIGHT)]
    for name, sel, colour in groups:
        sel = sel & ok
        # customdata: each point's position in the inputs, so that a selected point names its gene
        fig.add_trace(
            go.Scatter(
                x=e[sel],
                y=p[sel],
                mode="markers",
                name=name,
                text=np.asarray(names)[sel],
                customdata=np.flatnonzero(sel),
                marker={"color": colour, "size": 5, "opacity": 0.6},
                hovertemplate=f"%{{text}}<br>{measured_name} %{{x:.3g}}<br>score %{{y:.3g}}<extra></extra>",
            )
        )
    if spearman is not None:
        rho = float(spearman)
    else:
        rho = float(spearmanr(e[ok], p[ok])[0]) if ok.sum() > 2 else float("nan")
    axis = f"measured {measured_name}" + (", log(1 + value)" if log1p_expression else "")
    fig.update_layout(
        title=title or f"Predicted vs measured {measured_name} (Spearman r = {rho:.3f}, {int(ok.sum())} genes)",
        xaxis_title=measured_title or axis,
        yaxis_title=predicted_title,
    )
    return fig


# ------------------------------------------------------------------------------- data
def mark_profiles(
    signal,
    marks: Sequence[str],
    bin_starts_bp,
    groups,
    *,
    bin_size: float | None = None,
    group_names: Mapping | None = None,
    log1p: bool = True,
    title: str = "Average mark profile around the TSS, high vs low expressed genes",
) -> go.Figure:
    """Mean signal of each mark along the window, one panel per mark, one line per group of genes
    (e.g. 0/1 labels: low and high expression) with a band of ± one standard error.

    ``signal``: ``(genes, bins, marks)`` read counts (shown as log(1 + reads) unless ``log1p=False``);
    ``groups``: ``(genes,)`` group of each gene; ``group_names`` maps a group to its label (0/1 default to
    "low expression"/"high expression").
    """
    x3 = _array(signal, "signal", 3)
    marks = [str(m) for m in marks]
    if x3.shape[2] != len(marks):
        raise DataError(f"signal has shape {x3.shape}; expected (genes, bins, marks) with {len(marks)} marks.")
    g = np.asarray(groups)
    if g.shape != (x3.shape[0],):
        raise DataError(f"groups has shape {g.shape}; expected one group per gene ({x3.shape[0]},).")
    x, _ = _bin_positions(bin_starts_bp, x3.shape[1], bin_size)
    if log1p:
        if np.nanmin(x3) < 0:
            raise DataError("The signal has negative values, so log(1 + reads) does not apply; pass log1p=False.")
        x3 = np.log1p(x3)
    values = [v for v in pd.unique(g) if not (isinstance(v, float) and np.isnan(v))]
    values = sorted(values, key=lambda v: (str(type(v)), v))
    default = {0: "low expression", 1: "high expression"} if set(values) <= {0, 1} else {}
    names = {**default, **(group_names or {})}
    fig = make_subplots(rows=len(marks), cols=1, shared_xaxes=True, vertical_spacing=0.05, subplot_titles=marks)
    for k, v in enumerate(values):
        sel = g == v
        mean = x3[sel].mean(axis=0)
        sem = x3[sel].std(axis=0, ddof=1) / np.sqrt(sel.sum()) if sel.sum() > 1 else np.zeros_like(mean)
        colour = SERIES_COLOURS[k % len(SERIES_COLOURS)]
        label = f"{names.get(v, str(v))} ({int(sel.sum())} genes)"
        for m in range(len(marks)):
            band_x = np.concatenate([x, x[::-1]])
            band_y = np.concatenate([mean[:, m] + sem[:, m], (mean[:, m] - sem[:, m])[::-1]])
            fig.add_trace(
                go.Scatter(
                    x=band_x,
                    y=band_y,
                    fill="toself",
                    fillcolor=colour,
                    opacity=0.2,
                    line={"width": 0},
                    hoverinfo="skip",
                    showlegend=False,
                    legendgroup=label,
                ),
                row=m + 1,
                col=1,
            )
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=mean[:, m],
                    mode="lines",
                    name=label,
                    legendgroup=label,
                    line={"color": colour},
                    showlegend=m == 0,
                    hovertemplate=f"{marks[m]}, {label}<br>" + "%{x:+,.0f} bp: %{y:.3g}<extra></extra>",
                ),
                row=m + 1,
                col=1,
            )
    for m in range(len(marks)):
        _mark_tss(fig, row=m + 1, col=1)
    fig.update_xaxes(title_text=POSITION_TITLE, row=len(marks), col=1)
    fig.update_yaxes(title_text="mean log(1 + reads)" if log1p else "mean signal", row=(len(marks) + 1) // 2, col=1)
    fig.update_layout(title=title, height=max(400, 170 * len(marks)))
    return fig


def training_curves(
    history: Sequence[Mapping],
    *,
    metric_name: str | None = None,
    best_epoch: int | None = None,
    selected_on: str | None = None,
    title: str = "Training progress",
) -> go.Figure:
    """Training loss and validation metric per epoch (two panels), from a model card's ``history``
    (list of ``{"stage", "epoch", "train_loss", <validation metric>}``); grows as epochs finish.

    The validation value is the entry named ``metric_name``, else the first key starting with
    ``valid_`` other than ``valid_loss``; ``valid_loss``, where the history has it, is drawn beside the
    training loss (the kept epoch is often chosen on it). A stage other than ``train`` (SimpleChrome's ``pretrain``) gets its own lines.
    ``best_epoch`` draws a dotted line at the kept epoch; ``selected_on`` (a card's ``training.selected_on``,
    e.g. "validation loss") labels it with what chose it, which need not be the validation value drawn.
    """
    from hmviz.metrics import metric_label  # scikit-learn and SciPy load only where curves are drawn

    rows = list(history)
    for r in rows:
        if "epoch" not in r or "train_loss" not in r:
            raise DataError("Each history entry needs 'epoch' and 'train_loss' (a model card's 'history').")
    # The legend goes under the panels: beside them it took the width that kept the right panel's axis title
    # clear of the left panel at 1024 px.
    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss", "validation"), horizontal_spacing=0.14)
    stages = list(dict.fromkeys(str(r.get("stage", "train")) for r in rows))
    for k, stage in enumerate(stages):
        sel = [r for r in rows if str(r.get("stage", "train")) == stage]
        key = metric_name or next((c for c in sel[0] if c.startswith("valid_") and c != "valid_loss"), None)
        colour = SERIES_COLOURS[k % len(SERIES_COLOURS)]
        suffix = "" if len(stages) == 1 else f" ({stage})"
        epochs = [r["epoch"] for r in sel]
        fig.add_trace(
            go.Scatter(
                x=epochs,
                y=[r["train_loss"] for r in sel],
                mode="lines+markers",
                name="training loss" + suffix,
                line={"color": colour},
            ),
            row=1,
            col=1,
        )
        if any("valid_loss" in r for r in sel):
            fig.add_trace(
                go.Scatter(
                    x=epochs,
                    y=[r.get("valid_loss") for r in sel],
                    mode="lines+markers",
                    name=metric_label("valid_loss") + suffix,
                    line={"color": colour, "dash": "dashdot"},
                    marker={"symbol": "circle-open"},
                ),
                row=1,
                col=1,
            )
        if key is not None:
            fig.add_trace(
                go.Scatter(
                    x=epochs,
                    y=[r.get(key) for r in sel],
                    mode="lines+markers",
                    name=metric_label(key) + suffix,
                    line={"color": colour, "dash": "dash"},
                ),
                row=1,
                col=2,
            )
    if best_epoch is not None:
        kept = {"color": "grey", "dash": "dot"}
        for col in (1, 2):
            fig.add_vline(x=best_epoch, line=kept, row=1, col=col)
        if selected_on:  # named in the legend (an annotation beside the line would widen the axis)
            fig.add_trace(
                go.Scatter(
                    x=[None],
                    y=[None],
                    mode="lines",
                    line=kept,
                    hoverinfo="skip",
                    name=f"kept: epoch {best_epoch}<br>(best {selected_on})",
                ),
                row=1,
                col=2,
            )
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text="loss", row=1, col=1)
    fig.update_yaxes(title_text="validation metric", row=1, col=2)
    fig.update_layout(title=title, legend={"orientation": "h", "x": 0, "xanchor": "left", "y": -0.3, "yanchor": "top"})
    return fig
