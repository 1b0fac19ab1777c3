"""Layout that fits: long gene names, symbols and numbers wrap instead of being cut with an ellipsis.

Streamlit draws metric values and labels, the chosen value of a select box and button labels on one
line and cuts what does not fit ("LINC1010-AS1-RE..."), which at 1024 px wide (a laptop with the sidebar
open) hides the answer. This style lets them wrap, breaking inside a long id where needed. (A select box shows
its value in a text input, which cannot wrap: pages give gene pickers a full-width row instead.) The router
(``app.py``) adds it once per page run; ``tests/test_browser_views.py`` checks every page at 1024 and
1400 px for text that is still cut.
"""

FIT_CSS = """<style>
[data-testid="stMetricValue"] div, [data-testid="stMetricValue"] p, [data-testid="stMetricLabel"] div,
[data-testid="stMetricLabel"] p,
[data-testid="stSelectbox"] [data-baseweb="select"] div, [data-testid="stMultiSelect"] [data-baseweb="select"] div,
[data-testid^="stBaseButton"] div, [data-testid^="stBaseButton"] p,
[data-testid="stDownloadButton"] p, [data-testid="stPageLink"] p, [data-testid="stWidgetLabel"] p {
  white-space: normal !important; text-overflow: clip !important; overflow-wrap: anywhere;
}
[data-testid="stMetricValue"] { font-size: clamp(1.3rem, 2.4vw, 2.25rem); line-height: 1.2; }
</style>"""


def fit_text() -> None:
    """Add :data:`FIT_CSS` to the page (call once per run, from the router)."""
    import streamlit as st

    st.html(FIT_CSS)
