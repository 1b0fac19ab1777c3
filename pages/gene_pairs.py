"""Gene pairs: why does the model rank gene A above gene B? P(A > B) with the measured expressions,
both genes' attribution maps and their difference, contributions by mark and region, one sentence.
The pair is kept in the URL (?a=...&b=...), so a view can be shared and reopened."""

import numpy as np
import pandas as pd
import streamlit as st

from hmviz.errors import HmvizError
from hmviz.views.figures import wrap_titles
from hmviz.views.report import SavedView, pair_report_html
from hmviz_app import captions, state
from hmviz_app.saved_views import open_view, save_view_button
from hmviz_app.text import escape_md

st.title("Gene pairs")
data, entry, session = state.model_on_data()

from hmviz import plots
from hmviz.explain import BASELINES, DEFAULT_BASELINE, DEFAULT_BASELINE_WHY, METHODS
from hmviz.explain import KINDS as METHOD_KINDS
from hmviz.explain.session import SUGGESTION_KINDS, suggest_genes, suggest_pairs

ds = session.dataset
two_cells = session.differential
KINDS = {"confident": "Confidently ranked", "surprising": "Surprisingly ranked", "close": "Close call"} if not two_cells \
    else {"confident": "Change predicted right", "surprising": "Change predicted the wrong way",
          "close": "Change missed"}


@st.cache_data(max_entries=16, show_spinner="Finding pairs worth a look...")
def _suggestions(model_key: str, data_key: str, _session) -> pd.DataFrame:
    measured = _session.measured()
    if measured is None:
        return pd.DataFrame()
    scores = state.scores(model_key, data_key, _session)
    rows = _session.evaluation_rows()
    if _session.differential:
        return suggest_genes(scores, measured, rows)
    return suggest_pairs(scores, measured, rows)


gene_labels = state.gene_labels(f"{data.key}:{ds.cell}", ds)
suggestions = _suggestions(entry.cache_key, data.key, session)

# ------------------------------------------------------------------- a saved view -> the URL
view = open_view("gene_pairs", data, "pair_view_upload")
if view is not None:
    st.query_params.from_dict({k: str(v) for k, v in view.choices.items() if v is not None})
    st.rerun()

# ------------------------------------------------------------------- the URL -> choices
methods = [m for m, spec in METHODS.items() if spec.supports(session.model)]
qp = st.query_params
wanted = tuple(qp.get(k) for k in ("a", "b", "method", "baseline"))
if any(wanted) and wanted != st.session_state.get("_pairs_url"):
    st.session_state["_pairs_url"] = wanted  # a shared link, or the page opened with parameters
    for key, gene in (("pair_a", wanted[0]), ("pair_b", wanted[1])):
        if gene:
            try:
                state.set_sticky(key, session.row(gene))
            except HmvizError as exc:
                state.show_error(exc, "The link's gene is not in the dataset in use; pick a gene below.")
    if wanted[2] in methods:
        state.set_sticky("pair_method", wanted[2])
    if wanted[3] in BASELINES:
        state.set_sticky("pair_baseline", wanted[3])


def _take_suggestion() -> None:
    row = suggestions.iloc[st.session_state["pair_suggestion"]]
    if two_cells:
        state.set_sticky("pair_a", int(row["row"]))
    else:
        state.set_sticky("pair_a", int(row["row_a"]))
        state.set_sticky("pair_b", int(row["row_b"]))


def _swap() -> None:
    a, b = st.session_state.get("pair_a"), st.session_state.get("pair_b")
    state.set_sticky("pair_a", b)
    state.set_sticky("pair_b", a)


def _suggestion_label(i: int) -> str:
    r = suggestions.iloc[i]
    if two_cells:
        return (f"{KINDS[r['kind']]}: {gene_labels[int(r['row'])].split(' · ')[0]} (predicted {r['predicted']:+.2f}, "
                f"measured {r['measured']:+.2f} log2 fold change)")
    return (f"{KINDS[r['kind']]}: {gene_labels[int(r['row_a'])].split(' · ')[0]} vs "
            f"{gene_labels[int(r['row_b'])].split(' · ')[0]} (P = {r['probability']:.2f})")


# ------------------------------------------------------------------------------ choices
if two_cells:
    st.caption(f"**{escape_md(entry.label)}** predicts how a gene's expression changes from cell "
               f"**{escape_md(session.cells[0])}** to **{escape_md(session.cells[1])}**; pick a gene to see which marks in which cell drive that prediction.")
else:
    st.caption(f"**{escape_md(entry.label)}** on **{data.shown_name}**: pick two genes (type an id or a symbol to search) or "
               "take a suggested pair from the test genes.")

if not suggestions.empty:
    # full-width rows: a select box cuts a long value (two gene names and P) instead of wrapping it
    c1 = c2 = st.container()
    c1.selectbox("Suggested " + ("genes" if two_cells else "pairs") + " (test genes)", range(len(suggestions)),
                 format_func=_suggestion_label, key="pair_suggestion",
                 help=None if two_cells else
                 "\n".join(f"- **{KINDS[k]}**: {v.split(': ', 1)[1]}" for k, v in SUGGESTION_KINDS.items()))
    c2.button("Show this " + ("gene" if two_cells else "pair"), on_click=_take_suggestion, key="pair_take",
              icon=":material/arrow_downward:")
    first = suggestions.iloc[0]
    default_a, default_b = (int(first["row"]), None) if two_cells else (int(first["row_a"]), int(first["row_b"]))
else:
    default_a, default_b = 0, min(1, ds.n_genes - 1)

if two_cells:
    a = state.gene_picker("Gene", data, ds, "pair_a", default_a)
    b = None
else:
    # one gene per row, so that a long symbol with its Ensembl id fits the picker at 1024 px
    a = state.gene_picker("Gene A", data, ds, "pair_a", default_a)
    c1, c2 = st.columns([12, 1], vertical_alignment="bottom")
    b = state.gene_picker("Gene B", data, ds, "pair_b", default_b, container=c1)
    c2.button(":material/swap_vert:", on_click=_swap, key="pair_swap", help="Swap A and B", width="stretch")

with st.expander("Attribution method and baseline"):
    c1, c2 = st.columns(2)  # two per row: the method and reference names fit at 1024 px
    c3 = st.container()
    method = c1.selectbox("Method", methods, format_func=lambda m: METHODS[m].label,
                          key=state.sticky("pair_method", "integrated_gradients"))
    baselines = [b_ for b_ in BASELINES if (b_ != "gene_sample" or method == "gradient_shap")
                 and not (two_cells and b_ == "low_expression_mean")]
    if st.session_state.get("pair_baseline") not in baselines:
        state.set_sticky("pair_baseline", DEFAULT_BASELINE)
    baseline = c2.selectbox("Reference (baseline)", baselines, format_func=lambda b_: BASELINES[b_].label,
                            key=state.sticky("pair_baseline", DEFAULT_BASELINE),
                            disabled=not METHODS[method].needs_baseline,
                            help="\n".join(f"- **{s.label}**: {s.description}" for s in BASELINES.values()))
    steps = c3.slider("Integration steps (first try; doubled until the gap is within 1%)", 8, 200,
                      key=state.sticky("pair_steps", 50), disabled=method != "integrated_gradients")
    c1, c2 = st.columns(2)
    up = c1.number_input("Promoter starts this far upstream (bp)", 0, 100_000, step=100,
                         key=state.sticky("pair_promoter_up", 1000))
    down = c2.number_input("...and ends this far downstream (bp)", 1, 100_000, step=100,
                           key=state.sticky("pair_promoter_down", 1000))
    st.caption(f"{METHODS[method].label}: {METHODS[method].exactness}. {DEFAULT_BASELINE_WHY}")
    other = None
    if METHODS[method].needs_baseline and st.toggle("Compare with a second reference, side by side",
                                                   key=state.sticky("pair_compare", False)):
        others = [b_ for b_ in baselines if b_ != baseline]
        other = st.selectbox("Second reference", others, format_func=lambda b_: BASELINES[b_].label,
                             key=state.sticky("pair_baseline_2", "zeros" if "zeros" in others else others[0]))

# ------------------------------------------------------------------------- the URL <- choices
params = {"model": entry.key, "a": str(ds.gene_ids[a]), "method": method, "baseline": baseline}
if b is not None:
    params["b"] = str(ds.gene_ids[b])
st.query_params.from_dict(params)
st.session_state["_pairs_url"] = (params["a"], params.get("b"), method, baseline)
state.note_model_param(entry.key)

if b is not None and a == b:
    st.info("Gene A and gene B are the same gene: choose two different genes.")
    st.stop()


@st.cache_data(max_entries=64, show_spinner="Explaining the pair...")
def _explain(model_key: str, data_key: str, a: int, b: int | None, method: str, baseline: str, steps: int,
             promoter: tuple[float, float], _session):
    options = {"n_steps": steps} if method == "integrated_gradients" else {}
    return _session.explain_pair(a, b, method, baseline, promoter_bp=promoter, **options)


try:
    pair = _explain(entry.cache_key, data.key, a, b, method, baseline, int(steps), (float(up), float(down)), session)
except HmvizError as exc:
    state.show_error(exc)
    st.stop()
pe = pair.explanation
name_a, name_b = pair.names
kind = METHOD_KINDS[METHODS[method].kind]
noun = kind.noun  # what one value is called: contribution, sensitivity (slope), effect of removal


def _expression_text(row: int) -> str:
    return captions.measured_expression(ds, session.labels(), row)


# What every figure and the report carry: data, model and its training data, method, genes, prediction, measured.
if two_cells:
    measured_fc = session.measured()
    prediction = f"predicted log2 fold change ({name_b} over {name_a}) {pe.difference:+.2f}"
    measured_text = (f"log2 fold change {measured_fc[a]:+.2f}"
                     if measured_fc is not None and np.isfinite(measured_fc[a]) else "not measured")
else:
    prediction = f"P({name_a} ranked above {name_b}) = {pe.probability:.2f}"
    measured_text = f"{name_a} {_expression_text(a)}; {name_b} {_expression_text(b)} ({captions.EXPRESSION_UNIT})"
caption = captions.caption(data, entry, method=METHODS[method].label,
                           baseline=BASELINES[baseline].label if METHODS[method].needs_baseline else None,
                           genes=[pair.gene] if two_cells else [name_a, name_b], prediction=prediction,
                           measured=measured_text)
figure_name = ("gene-pairs", entry.name, *([pair.gene] if two_cells else [name_a, "vs", name_b]), method)


# ------------------------------------------------------------------------------- answer
if two_cells:
    st.subheader(escape_md(f"{pair.gene}: {name_a} vs {name_b}"))
    measured = session.measured()
    c = st.columns(3)
    c[0].metric(escape_md(f"Predicted log2 fold change ({name_b} over {name_a})"), f"{pe.difference:+.2f}")
    if measured is not None and np.isfinite(measured[a]):
        c[1].metric("Measured log2 fold change", f"{measured[a]:+.2f}")
        agree = np.sign(measured[a]) == np.sign(pe.difference)
        c[2].metric("Direction", "agrees" if agree else "disagrees")
else:
    st.subheader(escape_md(f"{name_a} vs {name_b}"))
    c = [*st.columns(2), *st.columns(2)]  # two per row: long gene names in the labels and values fit at 1024 px
    c[0].metric(escape_md(f"P({name_a} ranked above {name_b})"), f"{pe.probability:.2f}")
    c[1].metric(escape_md(f"{name_a}: measured expression"), _expression_text(a))
    c[2].metric(escape_md(f"{name_b}: measured expression"), _expression_text(b))
    if ds.expression is not None and np.isfinite(ds.expression[[a, b]]).all():
        truth = ds.expression[a] - ds.expression[b]
        if truth == 0:
            verdict = "measured equal"
        else:
            agree = (truth > 0) == (pe.difference > 0)
            verdict = f"model {'agrees' if agree else 'disagrees'}"
        c[3].metric("Measured: higher gene", name_a if truth > 0 else name_b if truth < 0 else "tie", verdict,
                    delta_color="gray" if truth == 0 else "green" if agree else "red", delta_arrow="off")
what = pe.explained


def _note(pe) -> str:
    """What was explained, against what, and (additive methods only) what the values add up to."""
    note = f"Explained: the {what}, {pe.difference:+.3g} {pe.unit}, with {pe.label} ({kind.meaning})"
    if pe.baseline is not None:
        note += f"; reference: {pe.baseline.description}, {session.reference_note}"
    if pe.additive:
        note += (f". The {kind.plural} add up to {pe.attribution_sum:+.3g} {pe.unit}: the {what} minus its value at the "
                 f"reference ({pe.difference - pe.baseline_difference:+.3g}), gap {abs(pe.convergence_delta):.2g}")
        if pe.work is not None:
            note += f" after {pe.work} {'steps' if method == 'integrated_gradients' else 'samples'}"
    return note + "."


def _cap_warning(pe) -> None:
    if pe.cap_reached:
        st.warning(f"{pe.label} stopped at its cap of {pe.work} {'steps' if method == 'integrated_gradients' else 'samples'}"
                   f" with a gap of {abs(pe.convergence_delta):.2g} {pe.unit}, more than 1% of the {what} minus its "
                   "value at the reference: read the numbers as approximate.", icon=":material/warning:")


if other is None:
    st.info(escape_md(pe.sentence), icon=":material/lightbulb:")
    _cap_warning(pe)
    st.caption(_note(pe))
else:
    try:
        pe2 = _explain(entry.cache_key, data.key, a, b, method, other, int(steps), (float(up), float(down)),
                       session).explanation
    except HmvizError as exc:
        state.show_error(exc)
        st.stop()
    for col, one in zip(st.columns(2), (pe, pe2)):
        with col:
            st.markdown(f"**Reference: {one.baseline.label}**")
            st.info(escape_md(one.sentence), icon=":material/lightbulb:")
            _cap_warning(one)
            st.caption(_note(one))
            own = (one.values_a.sum(axis=0), (1 if two_cells else -1) * one.values_b.sum(axis=0))
            captions.plot(plots.mark_bars(np.stack(own), one.marks, series_names=(name_a, name_b),
                                          title=f"{noun.capitalize()} of each mark: {one.baseline.label}",
                                          value_title=METHODS[method].value_title(one.unit)),
                          caption.replace(f"reference: {BASELINES[baseline].label}",
                                          f"reference: {one.baseline.label}"),
                          (*figure_name, one.baseline.name, "marks"), key=f"pair_compare_{one.baseline.name}", half=True)

# -------------------------------------------------------------------------------- figures
starts, bin_size = session.bin_starts_bp, ds.bin_size
own_what = "predicted change" if two_cells else "gene's score"
value_title = METHODS[method].value_title(pe.unit)
if two_cells:
    own_a, own_b = pe.values_a, pe.values_b
    heat = plots.pair_heatmaps(own_a, own_b, pe.marks, starts, bin_size=bin_size, gene_a=name_a, gene_b=name_b,
                               combine="sum", colorbar_title=value_title,
                               title=f"{pair.gene}: {kind.plural} of each cell's marks, on the predicted change")
else:
    # The pair's attributions to B are those of -s_B: negate them to show each gene's push on its own score.
    own_a, own_b = pe.values_a, -pe.values_b
    heat = plots.pair_heatmaps(own_a, own_b, pe.marks, starts, bin_size=bin_size, gene_a=name_a, gene_b=name_b,
                               combine="difference", colorbar_title=value_title,
                               title=f"{kind.plural.capitalize()} of each gene's marks, on its own score")
captions.plot(heat, caption, (*figure_name, "heatmaps"), key="pair_heatmaps")
bottom = f"The bottom panel ({name_a} + {name_b})" if two_cells else f"The bottom panel ({name_a} minus {name_b})"
if pe.additive:
    tail = (f"{bottom} adds up to the predicted log2 fold change minus its value at the reference." if two_cells else
            f"{bottom} adds up to the score difference behind P({name_a} > {name_b}).")
else:
    tail = f"{bottom} shows {kind.plural}: they are not shares of the {what} and do not add up to it."
st.caption(f"Red raises the {own_what}, blue lowers it. {tail}")

c1, c2 = st.columns(2)
with c1:
    mark_fig = plots.mark_bars(np.stack([own_a.sum(axis=0), own_b.sum(axis=0)]), pe.marks,
                               series_names=(name_a, name_b), value_title=value_title,
                               title=f"{noun.capitalize()} of each mark" + (" in each cell" if two_cells else ""))
    captions.plot(mark_fig, caption, (*figure_name, "marks"), key="pair_mark_bars", half=True)
with c2:
    by = pe.table.pivot_table(index="region", columns="mark", values="attribution", aggfunc="sum")
    by = by.reindex(index=[r.name for r in pe.regions], columns=list(pe.marks))
    region_fig = wrap_titles(plots.region_bars(by.to_numpy(), pe.marks, [r.label for r in pe.regions],
                                               value_title=value_title,
                                               title=("By region: the predicted change" if two_cells else
                                                      f"By region (above 0 favours {name_a})")))
    captions.plot(region_fig, caption, (*figure_name, "regions"), key="pair_region_bars", half=True)

if st.toggle("Show the two genes' inputs (the model's view of the marks: log1p reads, scaled per mark)",
             key=state.sticky("pair_show_inputs", False)):
    c1, c2 = st.columns(2)
    for col, values, name in ((c1, pe.x_a, name_a), (c2, pe.x_b, name_b)):
        with col:
            captions.plot(plots.attribution_heatmap(values, pe.marks, starts, bin_size=bin_size, title=f"{name}: input",
                                                    colorbar_title="scaled log1p(reads)"),
                          caption, (*figure_name, name, "input"), key=f"pair_input_{name}", half=True)

table = pe.by_region().reset_index()
if not two_cells:  # as in the figures: each gene's push on its own score, and A minus B (which favours A)
    table[name_b] = -table[name_b]
    table = table.rename(columns={"total": f"{name_a} minus {name_b}"})
table.insert(2, "bp", table["region"].map({r.name: r.span_text for r in pe.regions}))
table.insert(len(table.columns), "unit", pe.unit)
table.insert(len(table.columns), "values are", f"{noun} ({METHODS[method].label})")
# On the page: short columns, so that the table fits at 1024 px without scrolling sideways (the CSV keeps all).
shown = table.drop(columns=["bp", "unit", "values are"])
shown["region"] = shown["region"].map({r.name: r.label for r in pe.regions})
if not two_cells:
    shown.columns = ["mark", "region", "A", "B", "A minus B"]
st.markdown(f"**{noun.capitalize()} by mark and region** ({pe.unit}; {noun} by {METHODS[method].label})"
            + ("" if two_cells else escape_md(f": A is {name_a}, B is {name_b}")))
st.dataframe(shown, hide_index=True, column_config={c: st.column_config.NumberColumn(format="%+.3f")
                                                     for c in shown.columns[2:]})
c1, c2 = st.columns(2)
with c1:
    state.csv_button(table, f"pair_{name_a}_{name_b}_regions.csv", f"Download {noun} by mark and region (CSV)",
                     key="download_pair_regions")
with c2:
    state.csv_button(pair.to_frame(), f"pair_{name_a}_{name_b}_bins.csv", "Download per-bin attributions (CSV)",
                     key="download_pair_bins")

# ------------------------------------------------------------- a report and a view to share
report_title = f"{pair.gene}: {name_a} vs {name_b}" if two_cells else f"{name_a} vs {name_b}"
c1, c2 = st.columns(2)
with c1:
    st.download_button(
        "Download a report of this pair (HTML)",
        data=lambda: pair_report_html(title=report_title, sentence=pe.sentence, caption=caption,
                                      figures=[heat, mark_fig, region_fig],  # each carries the caption already
                                      tables={f"{noun.capitalize()} by mark and region ({pe.unit})": table}),
        file_name=f"pair_{name_a}_{name_b}_report.html", mime="text/html", key="download_pair_report",
        on_click="ignore", icon=":material/description:",
        help="One self-contained file (opens offline): the sentence, the figures with their caption, the table.")
with c2:
    view = SavedView(page="gene_pairs", data_name=data.name, data_fingerprint=data.fingerprint,
                     model=entry.key, choices={"a": params["a"], "b": params.get("b"), "method": method,
                                                 "baseline": baseline})
    save_view_button(view, f"pair_{name_a}_{name_b}_view.json", "download_pair_view", "Gene pairs")
st.caption(escape_md(caption))
st.caption("Share this view: its address holds the model, the two genes, the method and the baseline; the saved "
           "view file also checks that the data is the same.")

