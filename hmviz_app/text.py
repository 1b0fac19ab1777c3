"""Text from users is shown as text: URL parameters, file names, gene ids and symbols, cell and model
names can hold Markdown (links, images, colour directives) that Streamlit would render. Every such
piece of text passes through :func:`escape_md` before it reaches ``st.markdown``, a caption, a title,
an alert or a widget label (all of which render Markdown)."""

from __future__ import annotations

import html
import re
import string

# CommonMark lets a backslash escape any ASCII punctuation; escaping all of it also breaks GFM's bare
# links (``www.x.org``, ``http://...``), Streamlit's ``:color[...]`` directives and ``$`` maths.
_PUNCT = re.compile("([" + re.escape(string.punctuation) + "])")
_SPACE = re.compile(r"\s+")
# GFM's bare links (``https://...``, ``www.x``, ``a@b.org``) are found in the text after escapes are
# resolved, so escaping cannot stop them: an invisible word joiner (U+2060) where such a link would
# start keeps the characters on screen and leaves no link to find.
_WJ = "\u2060"
_BARE_LINK = re.compile(r"(?<=:)(?=//)|(?<=www)(?=\.)|(?<=@)", re.IGNORECASE)


def escape_md(text: object) -> str:
    """``text`` as Markdown that renders exactly as its characters (on one line), with no link, image,
    emphasis, colour directive or maths from it.

    >>> escape_md("[x](e.org)")
    '\\\\[x\\\\]\\\\(e\\\\.org\\\\)'
    """
    text = _BARE_LINK.sub(_WJ, _SPACE.sub(" ", str(text)))
    return _PUNCT.sub(r"\\\1", text)


def report_html(text: object) -> str:
    """A plain-text report (the Data page's build and validation reports) as HTML for ``st.html``: every
    character shown as itself (``<``, ``&``... escaped), lines and their alignment kept, in the monospace
    font. Not ``st.code``: its syntax highlighter alone kept the browser busy about half a second on
    every load of the page (``docs/performance.md``)."""
    return ('<pre style="white-space: pre-wrap; overflow-wrap: anywhere; font-size: 0.85rem; margin: 0; '
            f'padding: 0.75rem 1rem; border-radius: 0.5rem; background: rgba(128, 128, 128, 0.08);">{html.escape(str(text))}</pre>')


#: The library's words for the command line and Python, and what the app's pages call the same thing.
PAGE_WORDS = (
    (re.compile(r"e\.g\. --set kernel_size=(\d+) --set pool_size=(\d+)"),
     r"e.g. kernel_size=\1 and pool_size=\2 on two lines of Model settings"),
    (re.compile(r"\(--set\)"), "(Model settings)"),
    (re.compile(r"\(--format ([a-z]+)\)"), r"(choose '\1' in the Format list)"),
    (re.compile(r"\(--format\)"), "(with the Format list)"),
    (re.compile(r"\(--format [^)]*\)"), "(with the Format list)"),
    (re.compile(r"--expression \(expression= in Python\)"), "the role 'expression table' beside its file name"),
    (re.compile(r"--bin-size"), "Bin size"),
    (re.compile(r"--flank"), "Window"),
    (re.compile(r"--stat"), "Signal per bin"),
    (re.compile(r"--track"), "a signal track"),
    (re.compile(r"--format"), "the Format list"),
    (re.compile(r"--split (file|random|chromosome)"), r"the split '\1'"),
    (re.compile(r"--split"), "the Train / validation / test split list"),
    (re.compile(r"--label file"), "the label 'the file's labels'"),
    (re.compile(r"--label"), "the Label list"),
    (re.compile(r"\(--expression\)"), "(on the Data page)"),
    (re.compile(r"--expression"), "an expression table"),
    (re.compile(r"--lr"), "Learning rate"),
    (re.compile(r"--epochs"), "Epochs (at most)"),
    (re.compile(r"--patience"), "Patience (epochs)"),
    (re.compile(r"\bbin bins // 2\b"), "the middle bin"),
    (re.compile(r"\bbins // 2\b"), "half the number of bins"),
    (re.compile(r"Give a dataset with two cells over the same genes \(a long table with a cell column\)\."),
     "Choose the two-cell sample, or upload two cells over the same genes, on the Data page."),
)


def in_page_words(message: str) -> str:
    """A library message (written for the command line and Python) with its flags and Python
    expressions replaced by the names of the app's page controls and plain words."""
    for pattern, words in PAGE_WORDS:
        message = pattern.sub(words, message)
    return message


# Plotly renders a few HTML tags in the text it draws (titles, legend entries, tick labels,
# annotations: <b>, <i>, <br>, <span style>, <a href>). With < and > as entities it draws the
# characters and renders no tag; entities themselves are shown, never parsed into tags. Idempotent.
_TAGS = str.maketrans({"<": "&lt;", ">": "&gt;"})
#: Annotations hmviz writes with its own markup, already escaped (hmviz.views.report.with_caption).
_OWN_ANNOTATIONS = ("hmviz-caption",)


_LINE_BREAK = re.compile(r"&lt;br\s*/?&gt;", re.IGNORECASE)


def escape_plotly(text: object) -> str:
    """``text`` for a plotly title, legend entry, tick label or annotation: drawn as its characters, except
    a line break ``<br>`` (hmviz wraps long titles with it; it carries no link, image or style).

    >>> escape_plotly('<a href="https://x.org">x</a>')
    '&lt;a href="https://x.org"&gt;x&lt;/a&gt;'
    >>> escape_plotly("By region (above 0 favours<br>LINC1010-AS1)")
    'By region (above 0 favours<br>LINC1010-AS1)'
    """
    return _LINE_BREAK.sub("<br>", str(text).translate(_TAGS))


#: hmviz's own markup in hover templates: the end of the hover box (no trace name beside it).
_EXTRA = re.compile(r"&lt;extra&gt;&lt;/extra&gt;")


def escape_hovertemplate(template: str) -> str:
    """A hover template with any user text in it (a mark or gene name put there by the library) drawn as
    its characters; hmviz's own ``<br>`` and ``<extra></extra>`` and the ``%{...}`` fields are kept.

    >>> escape_hovertemplate("<b>K4</b>, %{x}: %{y:.3g}<br>bp<extra></extra>")
    '&lt;b&gt;K4&lt;/b&gt;, %{x}: %{y:.3g}<br>bp<extra></extra>'
    """
    return _EXTRA.sub("<extra></extra>", escape_plotly(template))


def _escaped_values(values):
    """A trace's ``x``/``y``: its strings escaped (they become category tick labels), numbers untouched."""
    import numpy as np

    if isinstance(values, str):
        return escape_plotly(values)
    if isinstance(values, np.ndarray):
        if values.dtype.kind not in "OUS":
            return values
        values = values.tolist()  # strings, or rows of them (a 2-d customdata)
    if isinstance(values, list | tuple | np.ndarray) and any(isinstance(v, str | list | tuple) for v in values):
        return [_escaped_values(v) for v in values]
    return values


def plain_text_figure(fig):
    """``fig`` (changed in place and returned) with every piece of text plotly would render as HTML shown
    as text: the figure, axis, legend and colour-bar titles, tick labels given as text, trace names,
    category values (tick labels) and annotations. Gene ids, symbols, mark and cell names from users
    reach all of these, and the hover text: a trace's ``text``, ``hovertext`` and string ``customdata``
    (which hover templates show) and the hover template itself (:func:`escape_hovertemplate`: the
    library writes mark names into some), numbers untouched."""

    def title(obj) -> None:
        if obj is not None and obj.title is not None and obj.title.text is not None:
            obj.title.text = escape_plotly(obj.title.text)

    layout = fig.layout
    title(layout)
    title(layout.legend)
    for axis in [*fig.select_xaxes(), *fig.select_yaxes()]:
        title(axis)
        if axis.ticktext is not None:
            axis.ticktext = [escape_plotly(t) for t in axis.ticktext]
    for name in layout:
        if name.startswith("coloraxis") and layout[name].colorbar is not None:
            title(layout[name].colorbar)
    for note in layout.annotations or ():
        if note.text is not None and note.name not in _OWN_ANNOTATIONS:
            note.text = escape_plotly(note.text)
    for trace in fig.data:
        if getattr(trace, "name", None) is not None:
            trace.name = escape_plotly(trace.name)
        if getattr(trace, "colorbar", None) is not None:
            title(trace.colorbar)
        for key in ("x", "y", "text", "hovertext", "customdata"):
            if key in trace and trace[key] is not None:
                trace[key] = _escaped_values(trace[key])
        for key in ("hovertemplate", "texttemplate"):
            if key in trace and trace[key] is not None:
                value = trace[key]
                trace[key] = (escape_hovertemplate(value) if isinstance(value, str)
                              else [escape_hovertemplate(v) for v in value])
    return fig
