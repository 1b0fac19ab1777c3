"""Attention: where attention models (AttentiveChrome, the ranker built on it, DeepDiff) look, over
bins (alpha) and over marks (beta), per gene and per expression class, beside an attribution."""

import streamlit as st

from hmviz.errors import HmvizError, ModelError
from hmviz_app import state
from hmviz_app.text import escape_md

st.title("Attention")
data, entry, session = state.model_on_data()

from hmviz import plots
from hmviz.explain import (
    BASELINES,
    DEFAULT_BASELINE,
    attention_attribution_agreement,
    attention_by_class,
    attention_maps,
    attention_maps_per_cell,
    has_attention,
)
from hmviz.views.figures import wrap_titles

st.caption("Attention is where the model looked (weights that sum to 1), not what moved its output: read it beside "
           "an attribution, as below.")
ds, marks, starts = session.dataset, session.marks, session.bin_starts_bp


@st.cache_data(max_entries=32, show_spinner=False)
def _attribution(model_key: str, data_key: str, row: int, _session):
    return _session.explain_genes([row], "integrated_gradients", DEFAULT_BASELINE, n_steps=32)


def _where(key: str) -> str:
    """Which input a DeepDiff attention map belongs to (its keys: a, b, or b-a)."""
    if not key or not session.cells:
        return ""
    return {"a": f" (in {session.cells[0]})", "b": f" (in {session.cells[1]})"}.get(
        key, f" ({session.cells[1]} minus {session.cells[0]})")


@st.cache_data(max_entries=8, show_spinner="Reading the attention weights...")
def _maps(model_key: str, data_key: str, rows: tuple[int, ...], _session) -> dict:
    idx = list(rows)
    if _session.differential:
        return attention_maps_per_cell(_session.model, _session.x[idx], _session.x_other[idx])
    return {"": attention_maps(_session.model, _session.x[idx])}


if not has_attention(session.model):
    st.info(f"{escape_md(entry.name)} has no attention weights to show: attention maps exist for AttentiveChrome, "
            "the ranker built on it and DeepDiff. What moves this model's output is on the Attributions page; "
            "or choose an attention model (attentivechrome, ranker-attentivechrome or deepdiff) in the sidebar.",
            icon=":material/info:")
    st.stop()
rows_eval = session.evaluation_rows()
row = state.gene_picker("Gene (type an id or a symbol)", data, ds, "att_gene",
                        int(rows_eval[0]) if len(rows_eval) else 0)
try:
    one = _maps(entry.cache_key, data.key, (int(row),), session)
except ModelError as exc:
    state.show_error(exc)
    st.stop()
name = session.display(int(row))

st.subheader(f"{escape_md(name)}: attention")
for key, (alpha, beta) in one.items():
    where = _where(key)
    c1, c2 = st.columns([3, 2])
    with c1:
        state.plot(plots.attention_heatmap(alpha[0], marks, starts, bin_size=ds.bin_size,
                                           title=f"{name}{where}: attention over positions (alpha)"),
                   f"attention_{name}{key}", key=f"att_alpha_{key}")
    with c2:
        state.plot(plots.attention_beta_bars(beta[0], marks, title=f"{name}{where}: attention over marks (beta)"),
                   f"attention_marks_{name}{key}", key=f"att_beta_{key}")

if not session.differential:
    st.subheader(f"{escape_md(name)}: attention beside an attribution (Integrated Gradients)")
    try:
        attr = _attribution(entry.cache_key, data.key, int(row), session)
    except HmvizError as exc:
        state.show_error(exc)
        st.stop()
    alpha, beta = one[""]
    by_bins = attention_attribution_agreement(alpha, attr)
    by_marks = attention_attribution_agreement(beta, attr)
    c1, c2 = st.columns([3, 2])
    with c1:
        # Wrapped: the column is about 340 px wide at 1024 px, and plotly cuts a long title.
        state.plot(wrap_titles(plots.attribution_heatmap(
            attr.values[0], marks, starts, bin_size=ds.bin_size, colorbar_title=attr.value_title,
            title=f"{name}: contributions to the output (Integrated Gradients; reference: "
                  f"{BASELINES[DEFAULT_BASELINE].label})")), f"attribution_{name}", key="att_attr")
    with c2:
        st.metric("Agreement over marks (Spearman, beta vs |attribution|)", f"{by_marks.mean:.2f}")
        st.metric("Agreement over positions (Spearman, alpha vs |attribution|, mean over marks)", f"{by_bins.mean:.2f}")
        st.caption("1: attention and attribution rank marks (positions) alike; 0: unrelated; below 0: opposite.")

    labels = session.labels()
    if labels is not None:
        st.subheader("Attention per expression class (test genes)")
        rows = rows_eval[labels[rows_eval] >= 0]
        maps = _maps(entry.cache_key, data.key, tuple(int(r) for r in rows), session)[""]
        classes = attention_by_class(maps[0], maps[1], labels[rows])
        cols = st.columns(len(classes.classes))
        for k, (col, cls) in enumerate(zip(cols, classes.classes)):
            with col:
                state.plot(plots.attention_heatmap(classes.alpha[k], marks, starts, bin_size=ds.bin_size,
                                                   title=f"{cls} genes ({classes.counts[k]}): mean alpha"),
                           f"attention_{cls}", key=f"att_class_alpha_{cls}")
        state.plot(plots.attention_beta_bars(classes.beta, marks, series_names=[f"{c} genes" for c in classes.classes],
                                             title="Mean attention over marks (beta) per class"),
                   "attention_marks_by_class", key="att_class_beta")
        import pandas as pd

        table = pd.DataFrame(classes.beta, columns=list(marks), index=list(classes.classes)).rename_axis("class")
        state.csv_button(table.reset_index(), "attention_beta_by_class.csv", "Download beta per class (CSV)",
                         key="att_dl_beta")
else:
    read = ("is shown per cell" if len(one) > 1 else
            "is over the difference of the two cells' marks (B minus A), which is what this DeepDiff reads")
    st.caption(f"DeepDiff's attention {read}; explain the gene's predicted change on the Gene pairs page.")
