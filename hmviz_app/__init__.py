"""The Streamlit app's session helpers (the library, ``hmviz``, never imports streamlit).

Importing this package makes sure every page runs under the router (``app.py``). Streamlit treats an
app with a ``pages/`` folder as an old-style multipage app until ``st.navigation`` has run once in the
server; until then a deep link (``/gene_pairs?a=...``) on a fresh server runs the page file alone: no
sidebar, ``?model=`` ignored. The first page to import this package (every page and ``app.py`` do)
switches that off and reruns, so that ``app.py`` routes the same link.
"""


def _route_through_app() -> None:
    try:
        from streamlit.runtime.pages_manager import PagesManager
        from streamlit.runtime.scriptrunner import get_script_run_ctx
    except ImportError:  # another Streamlit layout: nothing to do
        return
    if PagesManager.uses_pages_directory and get_script_run_ctx() is not None:
        PagesManager.uses_pages_directory = False
        import streamlit as st

        st.rerun()  # the same URL (page and query) again, now through app.py


_route_through_app()
