"""Figures show user text as text: plotly renders <b>, <i>, <br>, <span style> and <a href> in titles,
legend entries, tick labels and annotations, and gene ids, symbols, mark and cell names from users
reach all of them (hmviz_app.text.plain_text_figure, applied by hmviz_app.state.plot)."""

from __future__ import annotations

import json
import re

import numpy as np

from hmviz import plots
from hmviz_app.text import escape_plotly, plain_text_figure

LINK = '<a href="https://evil.example/login">Click to re-login</a>'
IMG = "<img src=x onerror=alert(1)>"


def _tags(fig) -> list[str]:
    """Every '<' plotly would parse as markup: in the figure's text fields (hover templates excluded)."""
    spec = json.loads(fig.to_json())
    spec["data"] = [{k: v for k, v in t.items() if k != "hovertemplate"} for t in spec["data"]]
    return re.findall(r"<[a-z/]", json.dumps(spec).replace("\\u003c", "<"))


def test_user_names_in_a_pair_figure_are_text():
    a, b = np.ones((4, 2)), np.zeros((4, 2))
    fig = plots.pair_heatmaps(a, b, [LINK, "<b>K27</b>"], np.arange(4) * 100 - 200, gene_a=LINK, gene_b=IMG,
                              bin_size=100)
    assert _tags(fig)  # the library's figure carries the user's markup...
    plain_text_figure(fig)
    assert _tags(fig) == []  # ...and none of it is left as tags
    texts = [n.text for n in fig.layout.annotations]
    assert texts[0] == escape_plotly(LINK) == '&lt;a href="https://evil.example/login"&gt;Click to re-login&lt;/a&gt;'
    assert fig.data[0].y[0] == escape_plotly(LINK)  # a mark name as a tick label
    assert escape_plotly(LINK) in fig.layout.title.text


def test_titles_names_and_axes_are_escaped_numbers_untouched_and_twice_is_once():
    fig = plots.training_curves([{"stage": "train", "epoch": 1, "train_loss": 0.5, "auroc": 0.7}], title=LINK)
    fig.add_bar(x=[1, 2], y=[IMG, "b"], name=IMG)
    fig.update_layout(legend_title_text=LINK, xaxis_title=IMG, yaxis=dict(ticktext=[LINK], tickvals=[0]))
    plain_text_figure(plain_text_figure(fig))
    assert _tags(fig) == []
    assert fig.layout.title.text == escape_plotly(LINK) and fig.layout.legend.title.text == escape_plotly(LINK)
    assert fig.data[-1].name == "&lt;img src=x onerror=alert(1)&gt;"  # once, not &amp;lt;
    assert list(fig.data[-1].x) == [1, 2] and fig.layout.yaxis.ticktext == (escape_plotly(LINK),)


def test_the_apps_plot_shows_the_escaped_figure(monkeypatch):
    from hmviz_app import state

    shown = []
    monkeypatch.setattr(state.st, "plotly_chart", lambda fig, **kw: shown.append(fig))
    monkeypatch.setattr(state, "image_format", lambda: "png")
    fig = plots.training_curves([{"stage": "train", "epoch": 1, "train_loss": 0.5, "auroc": 0.7}], title=LINK)
    state.plot(fig, "curves")
    assert shown and _tags(shown[0]) == [] and shown[0].layout.title.text.startswith("&lt;a href=")


def test_hmvizs_own_line_breaks_survive_while_user_markup_is_text():
    """Wrapped titles (hmviz.views.figures.wrap_titles) keep their <br>: the Evaluate and Gene pairs
    figures once showed a literal "<br>" at 1024 px; a user's link or image is still text."""
    import plotly.graph_objects as go

    from hmviz.views.figures import wrap_titles
    from hmviz_app.text import plain_text_figure

    fig = go.Figure(go.Bar(x=["a"], y=[1], name='<a href="https://evil.example">x</a>'))
    fig.update_layout(title="By region (above 0 favours LINC1010-AS1-READTHROUGH-<img src=x>)", width=480)
    fig = plain_text_figure(wrap_titles(fig))
    title = fig.layout.title.text
    assert "<br>" in title and "&lt;br&gt;" not in title
    assert "<img" not in title and "&lt;img src=x&gt;" in title.replace("<br>", " ")
    assert fig.data[0].name.startswith("&lt;a href=")
