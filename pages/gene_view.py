"""Gene view: one or two genes as a genome browser shows them: each mark's signal in the data's
units over the window around the TSS, with the model's attribution as a separate track under it."""

import numpy as np
import pandas as pd
import streamlit as st

from hmviz.errors import HmvizError
from hmviz.views import GeneLocus, attribution_bedgraph, browser_links, gene_tracks
from hmviz.views.figures import gene_tracks_figure
from hmviz.views.report import SavedView, export_name, with_caption
from hmviz_app import captions, gene_names, state
from hmviz_app.provenance import show_provenance
from hmviz_app.saved_views import open_view, save_view_button

st.title("Gene view")
data = state.current_data()
ds = data.first
gene_names.annotation_panel(data)
index = gene_names.gene_index(data)

view = open_view("gene_view", data, "gv_view_upload")
if view is not None:  # the saved genes, found by id, and whether the attribution track was on
    try:
        for which, query_key, box in (("gene", "gv_query", "gv_gene"), ("gene_b", "gv_query_b", "gv_gene_b")):
            gene = view.choices.get(which)
            state.set_sticky(query_key, str(gene or ""))
            if gene:
                st.session_state[f"{box}_{data.key}_{gene}"] = index.find(str(gene))
        if isinstance(view.choices.get("attribution"), bool):
            state.set_sticky("gv_att", view.choices["attribution"])
    except HmvizError as exc:
        state.show_error(exc)
    else:
        st.rerun()

c1, c2 = st.columns(2)
query = c1.text_input("Find a gene (symbol or id)", key=state.sticky("gv_query", ""),
                      placeholder="e.g. " + index.label(0))
hits = index.search(query, limit=50) if query else np.arange(min(len(index), 50))
if query and hits.size == 0:
    c1.warning(f"No gene matches '{query}' by symbol or id.")
    st.stop()
query_b = c2.text_input("Compare with (optional; symbol or id)", key=state.sticky("gv_query_b", ""))
# the pickers take full-width rows: a select box cuts a long symbol with its Ensembl id instead of wrapping it
row = st.selectbox("Gene", hits.tolist(), format_func=index.label, key=f"gv_gene_{data.key}_{query}")
row_b = None
if query_b:
    hits_b = index.search(query_b, limit=50)
    if hits_b.size == 0:
        c2.warning(f"No gene matches '{query_b}' by symbol or id.")
    else:
        row_b = st.selectbox("Second gene", hits_b.tolist(), format_func=index.label, key=f"gv_gene_b_{data.key}_{query_b}")
rows = [row] + ([row_b] if row_b is not None and row_b != row else [])


def locus(r: int):
    if index.tss[r] < 0 or not index.chrom[r]:
        return None
    return GeneLocus(str(index.chrom[r]), int(index.tss[r]), str(index.strand[r]))


entry = state.current_model()
show_att = False
session = None
if entry is not None and not data.multi_cell and state.fits(entry, data):
    try:
        session = state.explainer(entry, data)
        show_provenance(entry, data)
        show_att = not session.differential and st.toggle(
            f"Attribution track of {entry.label} (Integrated Gradients)", key=state.sticky("gv_att", True))
    except HmvizError:
        session = None
attributions = {}
if show_att:
    with st.spinner("Attributing the model's output to every bin and mark..."):
        try:
            att = session.explain_genes([ds.gene_ids[r] for r in rows], method="integrated_gradients")
        except HmvizError as exc:
            state.show_error(exc)
            st.stop()
    marks_model = list(att.marks or session.marks)
    for k, r in enumerate(rows):
        full = np.full((ds.n_bins, ds.n_marks), np.nan)
        for j, m in enumerate(ds.marks):
            if m in marks_model:
                full[:, j] = att.values[k][:, marks_model.index(m)]
        attributions[r] = np.nan_to_num(full)

frames = [gene_tracks(ds, r, locus(r), attributions.get(r)) for r in rows]
strand_known = bool(ds.strand_aware)
note = "in the direction of transcription" if strand_known else "genome order: left = lower coordinate"
units = "signal per bin, as in the data file"
title_parts = []
for r in rows:
    loc = locus(r)
    where = f" · {loc.ucsc_position(ds.n_bins, ds.bin_size, ds.tss_bin)} ({loc.strand})" if loc else ""
    title_parts.append(f"{index.label(r)}{where}")
unit_att = getattr(att, "target", "model output") if show_att else None
fig = gene_tracks_figure(frames, [index.label(r) for r in rows], units=units, attribution_unit=unit_att,
                         title=" vs ".join(title_parts), strand_note=note)
measured = "; ".join(f"{index.label(r)} {captions.measured_expression(ds, ds.labels, r)}" for r in rows)
caption = captions.caption(
    data, entry if show_att else None, genes=[index.label(r) for r in rows],
    method="Integrated Gradients" if show_att else None, baseline=att.baseline.label if show_att else None,
    prediction="; ".join(f"{index.label(r)}: output {o:+.3g} {att.target}" for r, o in zip(rows, att.outputs))
    if show_att else None, measured=f"{measured} ({captions.EXPRESSION_UNIT})")
with_caption(fig, caption, width_chars=captions.FULL)
model_name = (entry.name,) if show_att else ()
state.plot(fig, export_name("gene-view", *model_name, *(index.label(r) for r in rows)), key="gv_fig")
if show_att:
    st.caption(f"Attribution: Integrated Gradients of {entry.label}'s {att.target} against the "
               f"{att.baseline.label} reference; "
               "red bars raise the output, blue bars lower it. The signal rows show the data itself.")
if not strand_known:
    st.caption("This data does not orient bins by strand: positions run in genome order, so negative positions "
               "are to the left of the TSS, not necessarily upstream.")

for r in rows:
    loc = locus(r)
    cols = st.columns([3, 2])
    links = browser_links(loc, ds.n_bins, ds.bin_size, ds.tss_bin, gene_names.assembly()) if loc else {}
    if links:
        cols[0].markdown(" · ".join(f"[{name}]({url})" for name, url in links.items()) + f" for {index.label(r)}")
    elif loc is None:
        cols[0].caption(f"{index.label(r)}: locus unknown (attach an annotation with coordinates above to get "
                        "genomic positions, a bedGraph export and browser links).")
    else:
        cols[0].caption("Choose the genome assembly above to get links to the UCSC browser and Ensembl.")
    if loc is not None and r in attributions:
        mark = cols[1].selectbox("Export attributions of mark", list(ds.marks), key=f"gv_bg_mark_{r}")
        j = list(ds.marks).index(mark)
        text = attribution_bedgraph(attributions[r][:, j], loc, ds.bin_size, ds.tss_bin, strand_known,
                                    name=f"{index.label(r)} {mark} attribution",
                                    description=f"{entry.label} Integrated Gradients ({unit_att})")
        cols[1].download_button("Download bedGraph (for IGV / UCSC)", text.encode(),
                                file_name=f"{ds.gene_ids[r]}_{mark}_attribution.bedGraph", key=f"gv_bg_{r}")
state.csv_button(pd.concat([f.assign(gene=str(ds.gene_ids[r])) for f, r in zip(frames, rows)]), "gene_tracks.csv",
                 key="gv_csv")

saved = SavedView(page="gene_view", data_name=data.name, data_fingerprint=data.fingerprint,
                  model=entry.key if show_att else None,
                  choices={"gene": str(ds.gene_ids[rows[0]]),
                           "gene_b": str(ds.gene_ids[rows[1]]) if len(rows) > 1 else None, "attribution": show_att})
save_view_button(saved, export_name("gene-view", *(str(ds.gene_ids[r]) for r in rows), "view") + ".json", "gv_view_save",
                 "Gene view")
