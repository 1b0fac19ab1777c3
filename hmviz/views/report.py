"""Figures and views that describe themselves: a caption carried inside every exported figure, a
self-contained HTML report of a gene pair, and a saved view (a small JSON file) that reopens a page.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field

import pandas as pd
import plotly.graph_objects as go

from hmviz.errors import DataError
from hmviz.views.figures import wrap_text

VIEW_FORMAT = "hmviz-view"
VIEW_VERSION = 1
_MAX_VIEW_BYTES = 64 * 1024


def figure_caption(
    *,
    model: str | None,
    data: str | None = None,
    trained_on: str | None,
    method: str | None = None,
    baseline: str | None = None,
    genes: Sequence[str] = (),
    prediction: str | None = None,
    measured: str | None = None,
    version: str | None = None,
) -> str:
    """One line naming everything a figure depends on: the data shown, model and its training data
    (``model=None`` for a figure of data only), method and baseline, genes, prediction and measured
    expression (each with its unit), hmviz version."""
    from hmviz._version import __version__

    parts = [f"Data: {data}"] if data else []
    if model:
        parts.append(f"Model: {model} (trained on {trained_on})")
    if method:
        parts.append(f"method: {method}" + (f", reference: {baseline}" if baseline else ""))
    if genes:
        parts.append(f"genes: {', '.join(genes)}")
    if prediction:
        parts.append(f"prediction: {prediction}")
    if measured:
        parts.append(f"measured: {measured}")
    parts.append(f"hmviz {version or __version__}")
    return " · ".join(parts)


def export_name(*parts: str, limit: int = 120) -> str:
    """A file name for an exported figure that says where it came from: ``hmviz`` and ``parts`` (the
    page, model, genes, what is shown) in letters, digits, ``.`` and ``-`` only (anything else, and ``..``,
    becomes ``-``), joined by ``_``,
    at most ``limit`` characters (the end of a long name is dropped, the page and model kept)."""
    words = [re.sub(r"(?:[^A-Za-z0-9.]|\.{2,})+", "-", str(p)).strip("-.") for p in ("hmviz", *parts)]
    return "_".join(w for w in words if w)[:limit].rstrip("_-.")


#: Plotly's default bottom margin and figure height (px), for figures that set neither.
_PLOTLY_MARGIN_B, _PLOTLY_HEIGHT = 80, 450


def axis_room(fig: go.Figure) -> int:
    """Pixels under the plot area that the x axis's tick labels and title may take: an upper bound, since
    plotly turns category labels that do not fit by up to 90 degrees (about 6 px per character of 12 px
    text, at most 200 px), and a title takes 18 px per line."""
    longest = 0
    for trace in fig.data:
        xs = getattr(trace, "x", None)
        if xs is not None and len(xs) and isinstance(xs[0], str):
            longest = max(longest, *(len(str(x)) for x in xs))
    ticks = 50 + min(200, 6 * longest) if longest else 40
    lines = [str(ax.title.text).count("<br>") + 1 for ax in fig.select_xaxes() if ax.title and ax.title.text]
    return ticks + 18 * max(lines, default=0)


def with_caption(fig: go.Figure, caption: str, width_chars: int = 90) -> go.Figure:
    """``fig`` with ``caption`` written under the x axis (wrapped at ``width_chars``, about 500 px of 10 px
    text, so that it fits a figure drawn at 1024 px wide; a longer word such as a path is cut into pieces),
    so PNG/SVG/PDF exports carry it. The caption starts below :func:`axis_room` (or the figure's own bottom
    margin, if larger), so it never overlaps tick labels or the axis title; the bottom margin and the
    height grow to fit it, keeping the plot area's size. Returns the same figure."""
    lines = wrap_text(caption, width_chars, break_words=True).split("<br>")
    own = fig.layout.margin.b if fig.layout.margin and fig.layout.margin.b is not None else None
    room = max(own or 0, axis_room(fig))
    bottom = room + 14 * len(lines) + 10
    fig.add_annotation(
        text="<br>".join(html.escape(x) for x in lines),
        xref="paper",
        yref="paper",
        x=0,
        y=0,
        xanchor="left",
        yanchor="top",
        yshift=-room,
        showarrow=False,
        align="left",
        font={"size": 10, "color": "#444"},
        name="hmviz-caption",
    )
    height = fig.layout.height or _PLOTLY_HEIGHT
    fig.update_layout(margin={"b": bottom}, height=height + bottom - (_PLOTLY_MARGIN_B if own is None else own))
    return fig


def pair_report_html(
    *,
    title: str,
    sentence: str,
    caption: str,
    figures: Sequence[go.Figure],
    tables: Mapping[str, pd.DataFrame] | None = None,
) -> str:
    """A self-contained HTML page (plotly's JavaScript inline, no network needed) with the title, the
    sentence, the caption, every figure and every table. All text is escaped."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px}"
        ".caption{color:#555;font-size:13px}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p><b>{html.escape(sentence)}</b></p>",
        f"<p class='caption'>{html.escape(caption)}</p>",
    ]
    for k, fig in enumerate(figures):
        parts.append(fig.to_html(full_html=False, include_plotlyjs=(k == 0)))
    for name, table in (tables or {}).items():
        parts.append(f"<h2>{html.escape(name)}</h2>")
        parts.append(table.to_html(index=False, escape=True, float_format=lambda v: f"{v:.4g}"))
    parts.append("</body></html>")
    return "\n".join(parts)


@dataclass
class SavedView:
    """What reopens a page on the same data and model: the page, a reference to the data (its name
    and content fingerprint; the data itself is not in the file), the model, and the page's choices
    (plain JSON values). Reading one never runs code from it."""

    page: str
    data_name: str
    data_fingerprint: str
    model: str | None = None
    choices: dict = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps({"format": VIEW_FORMAT, "version": VIEW_VERSION, **asdict(self)}, indent=2)

    @classmethod
    def from_json(cls, text: str | bytes, name: str = "the view file") -> SavedView:
        if len(text) > _MAX_VIEW_BYTES:
            raise DataError(f"{name}: is {len(text):,} bytes; a saved view is a small JSON file (at most 64 KB).")
        try:
            raw = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise DataError(f"{name}: is not a saved hmviz view (not JSON: {exc}).") from None
        if not isinstance(raw, dict) or raw.get("format") != VIEW_FORMAT:
            raise DataError(f'{name}: is not a saved hmviz view (no "format": "{VIEW_FORMAT}").')
        if raw.get("version") != VIEW_VERSION:
            raise DataError(
                f"{name}: is a saved view of version {raw.get('version')!r}; this hmviz reads version {VIEW_VERSION}."
            )
        fields = {"page": str, "data_name": str, "data_fingerprint": str}
        for key, typ in fields.items():
            if not isinstance(raw.get(key), typ) or not raw[key]:
                raise DataError(f"{name}: the field '{key}' is missing or not text.")
        choices = raw.get("choices", {})
        if not isinstance(choices, dict) or not all(
            isinstance(v, (str, int, float, bool)) or v is None for v in choices.values()
        ):
            raise DataError(f"{name}: 'choices' must map names to plain values (text, numbers, true/false).")
        model = raw.get("model")
        if model is not None and not isinstance(model, str):
            raise DataError(f"{name}: 'model' must be text.")
        return cls(raw["page"], raw["data_name"], raw["data_fingerprint"], model, dict(choices))

    def check_data(self, fingerprint: str, current_name: str) -> None:
        """Refuse to apply the view to other data than it was saved on (naming both)."""
        if fingerprint != self.data_fingerprint:
            raise DataError(
                f"This view was saved on the data '{self.data_name}', but the data in use is "
                f"'{current_name}' (different content). Load the same files on the Data page first."
            )
