"""Heatmap: many genes at once (deepTools plotHeatmap / plotProfile): one mark's signal, or the
model's attribution to it, for every gene (or a gene set) x bin, sorted by expression or model score,
optionally in k-means clusters with each cluster's mean profile above."""

import numpy as np
import pandas as pd
import streamlit as st

from hmviz.errors import HmvizError
from hmviz.views import profile_heatmap
from hmviz.views.figures import heatmap_figure
from hmviz_app import explore, gene_names, state
from hmviz_app.provenance import show_provenance

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

c1, c2, c3, c4 = st.columns([2, 2, 3, 2])
mark = c1.selectbox("Mark", list(ds.marks), key=state.sticky("hm_mark", ds.marks[0]))
whats = ["signal"] + (["attribution"] if session is not None else [])
what = c2.radio("Show", whats, key=state.sticky("hm_what", "signal"), horizontal=True,
                format_func={"signal": "Signal", "attribution": "Attribution"}.get)
sorts = ([("expression", "Measured expression")] if ds.expression is not None else []) + \
        ([("score", f"Score of {entry.label}")] if session is not None else []) + [("signal", "Mean signal of the mark")]
sort_by = c3.selectbox("Sort genes by", [s for s, _ in sorts], format_func=dict(sorts).get, key="hm_sort")
k = c4.number_input("k-means clusters", 1, 8, key=state.sticky("hm_k", 1),
                    help="1 = no clustering. Clusters group genes by the shape of the shown rows.")
sets = {"all": f"All {ds.n_genes:,} genes"}
if ds.split is not None and (ds.split == "test").any():
    sets["test"] = "Test genes"
saved = explore.gene_sets(data.key)
sets.update({f"set:{name}": f"Gene set {name}" for name in saved})
genes_query = st.text_input("Or a gene set: symbols or ids separated by commas or spaces", key="hm_set")
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
state.plot(fig, f"heatmap_{mark}_{what}", key="hm_fig")
if what == "attribution":
    st.caption(f"Integrated Gradients of {entry.label}'s {att.target}: red raises it, blue lowers it.")
else:
    st.caption("Signal in the data's own units (not z-scored); the colour scale runs from 0 to the 99th percentile.")
table = index.labels()
state.csv_button(
    pd.DataFrame({"gene": [table[r] for r in hm.rows], "cluster": hm.cluster + 1,
                                    "sort_value": hm.sort_value}), "heatmap_genes.csv", key="hm_csv")
