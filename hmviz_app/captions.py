"""Figures that describe themselves in the app: every figure a page draws carries its caption
(:func:`hmviz.views.report.figure_caption`: data, model and its training data, method and reference,
genes, prediction and measured expression, hmviz version) inside it, so a PNG or SVG saved with plotly's
camera button still says what it shows; the camera button names the file after the page, the model and
the genes (:func:`hmviz.views.report.export_name`)."""

from __future__ import annotations

import numpy as np

from hmviz.provenance import training_data
from hmviz.views.report import export_name, figure_caption, with_caption
from hmviz_app import state

#: Characters per caption line: a full-width figure, and a figure in one of two columns, each drawn
#: at 1024 px wide with the sidebar open (``tests/test_browser_views.py`` checks nothing is cut).
FULL, HALF = 90, 42

#: The unit of measured expression: hmviz takes it as the data file gives it.
EXPRESSION_UNIT = "expression as in the data file"


def caption(data, entry=None, **parts) -> str:
    """The caption of a figure of ``data`` (a :class:`hmviz_app.state.DataEntry`) drawn with the model
    ``entry`` (None for a figure of data only); ``parts`` are the other arguments of
    :func:`~hmviz.views.report.figure_caption` (method, baseline, genes, prediction, measured)."""
    return figure_caption(data=data.name, model=entry.label if entry is not None else None,
                          trained_on=training_data(entry.card) if entry is not None else None, **parts)


def measured_expression(dataset, labels, row: int) -> str:
    """Gene ``row``'s measured expression as the data gives it and its label (high/low), or "not measured"."""
    parts = []
    if dataset.expression is not None and np.isfinite(dataset.expression[row]):
        value = float(dataset.expression[row])
        parts.append(f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}")  # 1,020 rather than 1.02e+03
    if labels is not None and labels[row] >= 0:
        parts.append("high" if labels[row] == 1 else "low")
    return ", ".join(parts) if parts else "not measured"


def plot(fig, text: str, name: tuple[str, ...], key: str, half: bool = False, **select):
    """Draw ``fig`` with the caption ``text`` inside it (wrapped for a half-width column when ``half``);
    its camera button saves it as ``hmviz_<name parts>``. ``select`` as for :func:`hmviz_app.state.plot`."""
    with_caption(fig, text, width_chars=HALF if half else FULL)
    return state.plot(fig, export_name(*name), key=key, **select)
