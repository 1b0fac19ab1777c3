"""Hover text is text: gene ids, symbols, mark and file names reach plotly's hover boxes through a trace's
``text``, ``hovertext``, ``customdata`` (shown by ``%{customdata}``) and the hover template itself, and
plotly renders <a href>, <b>, <span style>... there as it does in titles. hmviz_app.text.plain_text_figure
(applied by hmviz_app.state.plot to every figure a page shows) escapes them; numbers stay numbers."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd

from hmviz import plots
from hmviz.views.figures import gene_tracks_figure
from hmviz_app.text import escape_hovertemplate, escape_plotly, plain_text_figure

IMG = "<img src=x onerror=alert(1)>"
LINK = '<a href="http://evil.example">x</a>'
MD_LINK = "[x](http://evil)"


def _hover_tags(fig) -> list[str]:
    """Every '<' plotly would parse as markup in the hover fields, hmviz's own <br> and <extra></extra> aside."""
    spec = json.loads(fig.to_json().replace("\\u003c", "<").replace("\\u003e", ">"))
    fields = [t.get(k) for t in spec["data"] for k in ("text", "hovertext", "customdata", "hovertemplate")]
    text = json.dumps(fields).replace("<br>", "").replace("<extra></extra>", "")
    return re.findall(r"<[a-z/]", text)


def _track(mark: str) -> pd.DataFrame:
    return pd.DataFrame({"mark": [mark, mark], "bin": [0, 1], "start_bp": [-100, 0], "end_bp": [0, 100],
                         "signal": [1.0, 2.0], "attribution": [0.5, -0.5], "chrom": ["chr1", "chr1"],
                         "genomic_start": [999, 1099], "genomic_end": [1099, 1199]})


def test_gene_track_hover_names_a_symbol_as_text():
    fig = gene_tracks_figure([_track(LINK), _track(LINK)], [IMG, MD_LINK], units="reads", attribution_unit="logit")
    assert _hover_tags(fig)  # the library's hover carries the user's markup (through customdata)...
    plain_text_figure(fig)
    assert _hover_tags(fig) == []  # ...and none of it is left as tags
    first = fig.data[0]
    assert first.customdata[0] == "&lt;img src=x onerror=alert(1)&gt;: -100 to +0 bp<br>chr1:1,000-1,099"
    assert first.hovertemplate == "%{customdata}<br>signal %{y:.3g} reads<extra></extra>"  # hmviz's markup kept
    # A Markdown link is not markup to plotly: it stays exactly as typed (no link is made of it).
    assert fig.data[2].customdata[0].startswith(MD_LINK + ": -100 to +0 bp")


def test_gene_names_in_a_scatter_and_mark_names_in_hover_templates_are_text():
    scatter = plots.predicted_vs_actual([0.1, 0.2, 0.3], [1.0, 2.0, 3.0], gene_names=[IMG, LINK, "TP53"])
    positions = [list(t.customdata) for t in scatter.data]
    plain_text_figure(scatter)
    assert _hover_tags(scatter) == []
    assert list(scatter.data[0].text) == [escape_plotly(IMG), escape_plotly(LINK), "TP53"]
    assert [list(t.customdata) for t in scatter.data] == positions  # selection positions stay numbers
    profiles = plots.mark_profiles(np.ones((4, 3, 2)), [IMG, "H3K4me3"], np.arange(3) * 100, np.array([0, 0, 1, 1]))
    assert _hover_tags(profiles)  # the mark name is written into the hover template
    plain_text_figure(profiles)
    assert _hover_tags(profiles) == []


def test_escape_hovertemplate_keeps_fields_line_breaks_and_the_empty_extra():
    assert escape_hovertemplate(f"{IMG}, %{{x}}: %{{y:.3g}}<br>bp<extra></extra>") == (
        "&lt;img src=x onerror=alert(1)&gt;, %{x}: %{y:.3g}<br>bp<extra></extra>")
    assert escape_hovertemplate("<extra>%{fullData.name}</extra>") == "&lt;extra&gt;%{fullData.name}&lt;/extra&gt;"
    twice = escape_hovertemplate(escape_hovertemplate(LINK))
    assert twice == escape_hovertemplate(LINK) == escape_plotly(LINK)  # idempotent: no &amp;lt;


def test_two_dimensional_string_customdata_is_escaped_cell_by_cell():
    import plotly.graph_objects as go

    fig = go.Figure(go.Scatter(x=[1, 2], y=[1, 2], customdata=np.array([[IMG, 1], ["a", 2]], dtype=object),
                               hovertext=[LINK, "b"]))
    plain_text_figure(fig)
    assert [list(r) for r in fig.data[0].customdata] == [[escape_plotly(IMG), 1], ["a", 2]]
    assert list(fig.data[0].hovertext) == [escape_plotly(LINK), "b"]
