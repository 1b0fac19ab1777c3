"""Heatmap: many genes at once (deepTools plotHeatmap / plotProfile): one mark's signal, or the
model's attribution to it, for every gene (or a gene set) x bin, sorted by expression or model score,
optionally in k-means clusters with each cluster's mean profile above."""

import numpy as np
import pandas as pd
import streamlit as st

from hmviz.errors import HmvizError
from hmviz.views import profile_heatmap
from hmviz.views.figures import heatmap_figure
from hmviz.views.report import SavedView, export_name
from hmviz_app import captions, explore, gene_names, state
from hmviz_app.provenance import show_provenance
from hmviz_app.saved_views import open_view, save_view_button

st.title("Heatmap of many genes")
data = state.current_data()
ds = data.first
index = gene_names.gene_index(data)

entry = state.current_model()
session = None
if entry is not None and not data.multi_cell and state.fits(entry, data):
    try:
        session = state.explainer(entry, data)
        show_provenance(entry, data)
    except HmvizError:
        session = None

view = open_view("heatmap", data, "hm_view_upload")
if view is not None:  # the saved choices; a gene set travels as its gene ids (sets live in one session only)
    choices = view.choices
    for key, choice in (("hm_mark", "mark"), ("hm_what", "show")):
        if choices.get(choice) is not None:
            state.set_sticky(key, choices[choice])
    if choices.get("clusters") in range(1, 9):
        state.set_sticky("hm_k", int(choices["clusters"]))
    for key, choice in (("hm_sort", "sort"), ("hm_scope", "scope"), ("hm_set", "genes")):
        value = choices.get(choice) or {"hm_scope": "all", "hm_set": ""}.get(key)
        if isinstance(value, str):
            st.session_state[key] = value
        else:
            st.session_state.pop(key, None)
    st.rerun()
# a value the saved view or an earlier model left that this data or model does not offer falls back to the default
for key, allowed in (("hm_mark", list(ds.marks)), ("hm_what", ["signal", "attribution"] if session else ["signal"])):
    if st.session_state.get(key, st.session_state.get("_sticky", {}).get(key, allowed[0])) not in allowed:
        state.forget(key)

c1, c2, c3, c4 = st.columns([2, 2, 3, 2])
mark = c1.selectbox("Mark", list(ds.marks), key=state.sticky("hm_mark", ds.marks[0]))
whats = ["signal"] + (["attribution"] if session is not None else [])
what = c2.radio("Show", whats, key=state.sticky("hm_what", "signal"), horizontal=True,
                format_func={"signal": "Signal", "attribution": "Attribution"}.get)
sorts = ([("expression", "Measured expression")] if ds.expression is not None else []) + \
        ([("score", f"Score of {entry.label}")] if session is not None else []) + [("signal", "Mean signal of the mark")]
if st.session_state.get("hm_sort") not in dict(sorts):
    st.session_state.pop("hm_sort", None)
sort_by = c3.selectbox("Sort genes by", [s for s, _ in sorts], format_func=dict(sorts).get, key="hm_sort")
k = c4.number_input("k-means clusters", 1, 8, key=state.sticky("hm_k", 1),
                    help="1 = no clustering. Clusters group genes by the shape of the shown rows.")
sets = {"all": f"All {ds.n_genes:,} genes"}
if ds.split is not None and (ds.split == "test").any():
    sets["test"] = "Test genes"
saved = explore.gene_sets(data.key)
sets.update({f"set:{name}": f"Gene set {name}" for name in saved})
genes_query = st.text_input("Or a gene set: symbols or ids separated by commas or spaces", key="hm_set")
if st.session_state.get("hm_scope") not in sets:
    st.session_state.pop("hm_scope", None)
scope = st.radio("Genes", list(sets), format_func=sets.get, horizontal=True, key="hm_scope",
                 help="Gene sets are saved from a box or lasso selection on the Evaluate page's scatter.")

genes = np.flatnonzero(ds.split == "test") if scope == "test" else \
    np.sort(saved[scope[4:]]) if scope.startswith("set:") and scope[4:] in saved else None
if genes_query.strip():
    wanted, missing = [], []
    for q in genes_query.replace(",", " ").split():
        try:
            wanted.append(index.find(q))
        except HmvizError:
            missing.append(q)
    if missing:
        st.warning(f"Not found (by symbol or id): {', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}.")
    if not wanted:
        st.stop()
    genes = np.asarray(sorted(set(wanted)))

j = list(ds.marks).index(mark)
scores = state.scores(entry.cache_key, data.key, session) if session is not None else None
units = "signal per bin, as in the data file"
values = ds.signal[:, :, j]
if what == "attribution":
    rows = genes if genes is not None else np.arange(ds.n_genes)
    if rows.size > 2000:
        st.info(f"Attributions are computed per gene; showing the first 2,000 of {rows.size:,} genes in the chosen "
                "order. Choose a gene set for others.")
    key = ds.expression if sort_by == "expression" else scores if sort_by == "score" else values.mean(axis=1)
    rows = rows[np.argsort(-np.nan_to_num(np.asarray(key)[rows], nan=-np.inf), kind="stable")][:2000]
    with st.spinner(f"Attributing {rows.size:,} genes (Integrated Gradients)..."):
        att = session.explain_genes([ds.gene_ids[r] for r in rows], method="integrated_gradients", n_steps=16)
    mj = list(att.marks or session.marks).index(mark)
    values = np.zeros((ds.n_genes, ds.n_bins))
    values[rows] = att.values[:, :, mj]
    genes = rows
    units = att.target
try:
    hm = profile_heatmap(values, ds.bin_starts_bp(), ds.bin_size, genes=genes, sort_by=sort_by,
                         expression=ds.expression, scores=scores, k=int(k))
except HmvizError as exc:
    state.show_error(exc)
    st.stop()
title = f"{mark} {'signal' if what == 'signal' else 'attribution'} of {hm.rows.size:,} genes"
fig = heatmap_figure(hm, what=f"{mark} {what}", units=units, signed=what == "attribution", title=title)
which = (f"listed: {genes_query.strip()[:60]}" if genes_query.strip() else "all" if scope == "all" else
         "test genes" if scope == "test" else sets.get(scope, scope))
order = {"expression": f"measured expression ({captions.EXPRESSION_UNIT})",
         "score": f"the score of {entry.label if entry else ''}", "signal": f"mean {mark} signal"}[sort_by]
genes_text = f"{hm.rows.size:,} genes ({which}), sorted by {order}" + (f", {int(k)} k-means clusters" if int(k) > 1 else "")
uses_model = session is not None and (what == "attribution" or sort_by == "score")
caption = captions.caption(
    data, entry if uses_model else None, genes=[genes_text],
    method=f"Integrated Gradients (16 steps) to {mark}" if what == "attribution" else None,
    baseline=getattr(att.baseline, "label", None) if what == "attribution" else None,
    prediction=f"{entry.label}'s {att.target if what == 'attribution' else 'score'}" if uses_model else None,
    measured=f"{mark} signal per bin, as in the data file" if what == "signal" else None)
captions.plot(fig, caption, ("heatmap", *((entry.name,) if uses_model else ()), mark, what, f"{hm.rows.size}-genes", which),
              key="hm_fig")
if what == "attribution":
    st.caption(f"Integrated Gradients of {entry.label}'s {att.target}: red raises it, blue lowers it.")
else:
    st.caption("Signal in the data's own units (not z-scored); the colour scale runs from 0 to the 99th percentile.")
table = index.labels()
state.csv_button(
    pd.DataFrame({"gene": [table[r] for r in hm.rows], "cluster": hm.cluster + 1,
                                    "sort_value": hm.sort_value}), "heatmap_genes.csv", key="hm_csv")

set_ids = [str(ds.gene_ids[r]) for r in saved[scope[4:]]] if scope.startswith("set:") and scope[4:] in saved else None
saved_view = SavedView(page="heatmap", data_name=data.name, data_fingerprint=data.fingerprint,
                       model=entry.key if uses_model else None,
                       choices={"mark": mark, "show": what, "sort": sort_by, "clusters": int(k),
                                "scope": "all" if set_ids is not None else scope,
                                "genes": " ".join(set_ids) if set_ids is not None else genes_query})
too_big = set_ids is not None and len(set_ids) > 2000
save_view_button(saved_view, export_name("heatmap", mark, what, "view") + ".json", "hm_view_save", "Heatmap",
                 disabled_why=f"A gene set of {len(set_ids):,} genes is too large for a saved view (at most 2,000): "
                              "save the view of all genes, or of a smaller set." if too_big else "")
