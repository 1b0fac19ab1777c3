"""Click to explore: a click on a gene (a scatter point or a table row) opens it in Gene pairs or the
Gene view; a box or lasso selection becomes a named gene set that Attributions and the Heatmap offer.
The selection -> genes logic is :mod:`hmviz.views.selection`; this module keeps the sets per dataset
in the session and does the page switches."""

from __future__ import annotations

import numpy as np
import streamlit as st

from hmviz.views.selection import gene_set_name, is_group_selection, selected_rows, table_rows
from hmviz_app import state
from hmviz_app.text import escape_md

TARGETS = {"gene_pairs": "Gene pairs", "gene_view": "Gene view"}
SELECT_MODES = ("points", "box", "lasso")


def _sets() -> dict:
    return st.session_state.setdefault("_gene_sets", {})


def gene_sets(data_key: str) -> dict[str, np.ndarray]:
    """The gene sets saved for the dataset ``data_key``: name -> dataset rows."""
    return _sets().get(data_key, {})


def save_gene_set(data_key: str, name: str, rows) -> None:
    _sets().setdefault(data_key, {})[name] = np.asarray(rows, dtype=np.int64)


def open_gene(gene_id: str, target: str) -> None:
    """Switch to ``target`` (a key of :data:`TARGETS`) showing the gene ``gene_id``."""
    if target == "gene_view":
        state.set_sticky("gv_query", str(gene_id))
        st.switch_page("pages/gene_view.py")
    st.switch_page("pages/gene_pairs.py", query_params={"a": str(gene_id)})


def target_choice(key: str) -> str:
    return st.radio("A click on a gene opens it in", list(TARGETS), format_func=TARGETS.get, horizontal=True,
                    key=state.sticky(key, "gene_pairs"))


def clickable_table(frame, rows, gene_ids, key: str, target: str, **kwargs) -> None:
    """``st.dataframe`` of ``frame`` (shown row i is dataset row ``rows[i]``); choosing a row opens its gene."""
    event = st.dataframe(frame, on_select="rerun", selection_mode="single-row", key=key, **kwargs)
    picked = table_rows(event.selection.rows, rows)
    if picked.size:
        open_gene(gene_ids[picked[0]], target)


def scatter(fig, name: str, rows, gene_ids, labels, data_key: str, target: str, key: str) -> None:
    """Draw a scatter whose point i is dataset row ``rows[i]`` (its customdata): a click opens the gene,
    a box or lasso selection can be saved as a named gene set."""
    event = state.plot(fig, name, key=key, on_select="rerun", selection_mode=SELECT_MODES)
    selection = event.selection if event is not None else {}
    points = selection.get("points", []) if selection else []
    if not points:
        return
    picked = selected_rows(points, rows)
    if not is_group_selection(selection):
        open_gene(gene_ids[picked[0]], target)
    how = "lasso" if selection.get("lasso") else "box"
    c1, c2 = st.columns([4, 1], vertical_alignment="bottom")
    default = gene_set_name(picked, labels, how)
    set_name = c1.text_input(f"Name the {picked.size:,} selected genes as a gene set (for Attributions and the "
                             "Heatmap)", value=default, key=f"{key}_set_name")
    if c2.button("Save gene set", key=f"{key}_save", icon=":material/playlist_add:"):
        save_gene_set(data_key, set_name.strip() or default, picked)
        st.success(f"Saved the gene set '{escape_md(set_name.strip() or default)}' ({picked.size:,} genes): choose "
                   "it on the Attributions and Heatmap pages.", icon=":material/check:")
