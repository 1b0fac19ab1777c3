"""Provenance wherever a model speaks: under the title of every page that shows a model's output, the
data the model was trained on (from its card, :func:`hmviz.provenance.trained_on`), and a visible notice
when the data in use is not that data (:func:`hmviz.provenance.applied_elsewhere`)."""

from __future__ import annotations

import streamlit as st

from hmviz.provenance import applied_elsewhere, trained_on
from hmviz_app.text import escape_md


def provenance_notice(entry, data) -> str | None:
    """The notice for ``entry`` (a model) applied to ``data`` (a dataset entry), or None on its own data."""
    return applied_elsewhere(entry.card, data.fingerprint, data.name)


def show_provenance(entry, data) -> None:
    """Name the model's training data (a caption) and warn when it is applied to other data."""
    st.caption(f":material/history_edu: {escape_md(trained_on(entry.card))}")
    notice = provenance_notice(entry, data)
    if notice:
        st.warning(escape_md(notice), icon=":material/warning:")
