"""Edit marks: change a gene's histone marks in silico and watch the model's prediction move; scan
every mark and window for the deletions that matter; find the smallest edit that changes the answer.
All of it comes from ``hmviz.perturb``; this page reads widgets and draws the results."""

import numpy as np
import streamlit as st

from hmviz.errors import HmvizError
from hmviz_app import state

st.title("Edit marks")
data, entry, session = state.model_on_data()

from hmviz.explain._regions import format_bp
from hmviz.perturb import NAMED_REGIONS, Editor, by_window, scan, smallest_edit, windows
from hmviz.perturb import plots as pplots
from hmviz.perturb.search import ordinal

ds = session.dataset
OPS = {"remove": "remove", "scale": "scale", "set": "set level", "add": "add reads", "like": "like a gene class"}
OPS_HELP = ("- **remove**: 0 reads\n- **scale**: reads times a factor\n- **set level**: this many reads per bin\n"
            "- **add reads**: this many more reads per bin\n- **like a gene class**: the per-bin median of the high "
            "(or low) expression training genes")
REGION_WORDS = {"upstream": "upstream", "promoter": "promoter", "gene_body": "gene body", "window": "window",
                "custom": "bp range"}

# --------------------------------------------------------------------------- model, genes
cell = None
if session.differential:
    cell = st.radio("Edit the marks of cell", list(session.cells), index=1, horizontal=True,
                    key=state.sticky("edit_cell", session.cells[1]))


def _editor() -> Editor:
    """The editor of this model, data and cell, kept for the session (the every-gene scores come from the
    app's shared cache)."""
    cache = st.session_state.setdefault("_editors", {})
    key = (entry.cache_key, data.key, cell)
    if key not in cache:
        editor = Editor.from_session(session, cell)
        editor.use_scores(state.scores(entry.cache_key, data.key, session))
        cache.clear()
        cache[key] = editor
    return cache[key]


try:
    editor = _editor()
except HmvizError as exc:
    state.show_error(exc)
    st.stop()
window, marks = editor.window, editor.marks
scores = editor.all_scores()
rows_eval = session.evaluation_rows()
default_gene = int(rows_eval[np.argmin(scores[rows_eval])]) if len(rows_eval) else 0

st.caption(f"**{entry.label}** on **{data.name}**. Edits change the reads per bin (the data's units) before the "
           f"model's own transform; the prediction is the {editor.unit}. Named regions: "
           f"{window.describe_regions()} bp from the TSS.")
c1, c2 = st.columns(2)
gene = state.gene_picker("Gene to edit (type an id or a symbol)", data, ds, "edit_gene", default_gene, container=c1)
vs = None
if not session.differential:
    compare = c2.toggle("Compare with a second gene", help="P(the edited gene ranks above the second gene), before and after",
                        key=state.sticky("edit_compare", entry.task == "ranking"))
    if compare:
        vs = state.gene_picker("Second gene (not edited)", data, ds, "edit_vs",
                               int(rows_eval[np.argmax(scores[rows_eval])]) if len(rows_eval) else 1, container=c2)
        if vs == gene:
            st.info("The two genes are the same gene: choose another second gene.")
            st.stop()


def _region_control(prefix: str, container, default: str = "promoter") -> str:
    """A named region or a dragged bp range, as the text the library reads."""
    choice = container.selectbox("Region", [*NAMED_REGIONS, "custom"], format_func=REGION_WORDS.get,
                                 key=state.sticky(f"{prefix}_region", default))
    if choice != "custom":
        return choice
    a, b = container.slider("Range (bp from the TSS)", window.start_bp, window.end_bp, step=window.bin_size,
                            key=state.sticky(f"{prefix}_range", (-1000, 1000)))
    return f"{a}..{b}"


# ------------------------------------------------------------------------------- edit
st.subheader("Edit")
c1, c2, c3, c4 = st.columns(4)
mark = c1.selectbox("Mark", marks, key=state.sticky("edit_mark", marks[0]))
region = _region_control("edit", c2, "window")
op = c3.selectbox("Operation", list(OPS), format_func=OPS.get, key=state.sticky("edit_op", "remove"), help=OPS_HELP)
if op == "like":
    value = c4.selectbox("Reference", ["high", "low"], key=state.sticky("edit_like", "high"))
elif op == "scale":
    value = c4.number_input("Factor", min_value=0.0, step=0.25, key=state.sticky("edit_scale", 0.5))
elif op in ("set", "add"):
    value = c4.number_input("Reads per bin", min_value=0.0, step=1.0, key=state.sticky(f"edit_{op}", 20.0))
else:
    value = None
first = f"{mark}:{region}:{op}" + ("" if value is None else f"={value:g}" if not isinstance(value, str) else f"={value}")
more = st.text_area("More edits, applied after it (one per line: MARK:REGION:OP[:VALUE], e.g. H3K4me3:-1000..1000:set=20)",
                    key=state.sticky("edit_more", ""), height=68)
edits = [first, *[line.strip() for line in more.splitlines() if line.strip()]]
try:
    result = editor.perturb(gene, edits, vs)
except HmvizError as exc:
    state.show_error(exc, "Fix the edit above; nothing was changed.")
    st.stop()

cols = st.columns(4 if vs is not None else 3)
cols[0].metric(editor.unit[0].upper() + editor.unit[1:], f"{result.score_after:+.3f}",
               f"{result.delta:+.3f} (was {result.score_before:+.3f})")
if result.probability_before is not None:
    cols[1].metric("P(high)", f"{result.probability_after:.3f}",
                   f"{result.probability_after - result.probability_before:+.3f}")
cols[2].metric(f"Rank among {result.n_genes:,} genes", f"{result.rank_after:,}",
               f"{result.rank_before - result.rank_after:+,} places", delta_color="normal")
if vs is not None:
    cols[3].metric(f"P({result.gene} above {result.vs})", f"{result.p_after:.3f}",
                   f"{result.p_after - result.p_before:+.3f}")
st.caption(f"Edits: {'; '.join(result.edits)}. Rank 1 is the highest {editor.unit}; the other genes keep their "
           "unedited scores.")
state.plot(pplots.tracks_before_after(result.raw_before, result.raw_after, marks, window.bin_starts_bp(),
                                      window.bin_size, title=f"{result.gene}: reads per bin before and after the edit"),
           f"edit_tracks_{state.clean_label(result.gene)}", key="edit_tracks")
state.csv_button(result.to_frame(), f"edit_{state.clean_label(result.gene)}.csv",
                 "Download the edited signal and deltas (CSV)", key="edit_dl")

# ------------------------------------------------------------------------------- scan
st.subheader("Scan: delete each mark in each window")
sizes = [s for s in (250, 500, 1000, 2000) if s % window.bin_size == 0 and s <= window.end_bp - window.start_bp]
size = st.select_slider("Window (bp)", sizes or [window.bin_size], key=state.sticky("edit_scan_size", 500
                        if 500 in sizes else (sizes or [window.bin_size])[0]))
try:
    sres = scan(editor, gene, size, vs)
except HmvizError as exc:
    state.show_error(exc)
    st.stop()
m, w = sres.strongest()
st.caption(f"{len(sres.marks)} marks x {len(sres.starts_bp)} windows scored in one batch. The largest change: deleting "
           f"{sres.marks[m]} from {format_bp(sres.starts_bp[w])} to {format_bp(sres.ends_bp[w])} moves the {editor.unit} by "
           f"{sres.effect[m, w]:+.3f}.")
if session.differential:
    state.plot(pplots.scan_heatmap(sres.effect, marks, sres.starts_bp, size, editor.unit,
                                   title=f"{sres.gene}: what each mark adds (deletion)"),
               f"scan_{state.clean_label(sres.gene)}", key="edit_scan")
    st.caption("Red where the mark raises the predicted change, blue where it lowers it: the score minus the score "
               "with the mark deleted in that window. Attributions of a two-cell model are on the Gene pairs page.")
    scan_table = sres.to_frame()
else:
    @st.cache_data(max_entries=32, show_spinner="Attributing (integrated gradients)...")
    def _attribution(model_key: str, data_key: str, row: int, _session):
        return _session.explain_genes([row], "integrated_gradients", "zeros", n_steps=32).values[0]

    values = _attribution(entry.cache_key, data.key, int(gene), session)
    _, membership = windows(window, size)
    state.plot(pplots.scan_vs_attribution(sres.effect, by_window(values, membership), marks, sres.starts_bp, size,
                                          editor.unit, title=f"{sres.gene}: what each mark adds, by deletion and by "
                                                             "attribution"),
               f"scan_{state.clean_label(sres.gene)}", key="edit_scan")
    st.caption("Red where the mark raises the prediction, blue where it lowers it, on one scale. Top: the score minus "
               "the score with the mark deleted in that window (what the model does). Bottom: integrated gradients "
               "against no reads summed over the same windows, a local linear view of the same model; where the two "
               "disagree, trust the deletion.")
    scan_table = sres.to_frame()
    scan_table["attribution_ig"] = by_window(values, membership).reshape(-1)
state.csv_button(scan_table, f"scan_{state.clean_label(sres.gene)}.csv", "Download the scan (CSV)",
                 key="edit_scan_dl")

# ----------------------------------------------------------------------------- search
st.subheader("Smallest edit that changes the answer")
if entry.task == "ranking" and vs is None:
    st.info("A ranker has no 'high' call: compare with a second gene above to search for the edit that ranks the "
            "edited gene above it.")
    st.stop()
active = [m_ for m_ in ("H3K4me3", "H3K36me3", "H3K27ac") if m_ in marks] or list(marks)
c1, c2, c3 = st.columns([2, 1, 1])
allowed_marks = c1.multiselect("Marks it may change", marks, key=state.sticky("search_marks", active))
search_region = _region_control("search", c2, "window")
direction = c3.radio("Direction", ["add", "remove", "both"], horizontal=True,
                     key=state.sticky("search_direction", "add"))
st.caption("Size of an edit: the L2 norm of the change in reads over all bins. Edited signal stays between 0 and the "
           "largest value of its mark in the training genes.")
if not allowed_marks:
    st.info("Choose at least one mark the search may change.")
    st.stop()
key = (entry.cache_key, data.key, cell, int(gene), vs, tuple(allowed_marks), search_region, direction)
if st.button("Find the smallest edit", type="primary", key="search_run"):
    try:
        allow = f"{','.join(allowed_marks)}:{search_region}:{direction}"
        st.session_state["_search"] = (key, smallest_edit(editor, gene, [allow], vs))
    except HmvizError as exc:
        state.show_error(exc)
        st.stop()
found = st.session_state.get("_search")
if found is None or found[0] != key:
    st.caption("Press the button to search with these constraints.")
    st.stop()
res = found[1]
if not res.found:
    st.warning(res.message)
    st.stop()
st.success(f"Found an edit that would {res.goal}: {res.size_reads:.1f} reads (L2 norm; {res.reads_added:,.0f} reads "
           f"added, {res.reads_removed:,.0f} removed).")
st.markdown("\n".join(f"- {c.text(res.reference)}" for c in res.changes))
st.caption(f"After the edit: {editor.unit} {res.result.score_after:+.3f} (was {res.result.score_before:+.3f})"
           + (f", P({res.result.gene} above {res.result.vs}) {res.result.p_after:.3f}" if vs is not None else "")
           + f"; at the {ordinal(res.score_percentile)} percentile of the {res.reference}. The smallest edit stops just "
             "past the decision boundary.")
state.plot(pplots.tracks_before_after(res.result.raw_before, res.result.raw_after, marks, window.bin_starts_bp(),
                                      window.bin_size, title=f"{res.result.gene}: the smallest edit found"),
           f"search_{state.clean_label(res.result.gene)}", key="search_tracks")
state.csv_button(res.to_frame(), f"smallest_edit_{state.clean_label(res.result.gene)}.csv",
                 "Download the edited signal (CSV)", key="search_dl")
