"""Attributions: which bins and marks drive the model's output, for one gene or a set of genes (all
high, all low, or an uploaded list), with the method and baseline chosen from the library's registries."""

import numpy as np
import pandas as pd
import streamlit as st

from hmviz.errors import DataError, HmvizError
from hmviz_app import captions, explore, state
from hmviz_app.text import escape_md

SCOPES = {"one": "One gene", "high": "All high genes", "low": "All low genes", "list": "An uploaded list of genes"}

st.title("Attributions")
data, entry, session = state.model_on_data()
if session.differential:
    st.info(f"{entry.family} reads two cells per gene: its explanations attribute the predicted change to both "
            "cells' marks, one gene at a time, on the Gene pairs page.")
    st.stop()

from hmviz import plots
from hmviz.explain import BASELINES, DEFAULT_BASELINE, DEFAULT_BASELINE_WHY, KINDS, METHODS, data_regions
from hmviz.explain._model_view import has_recurrent

ds = session.dataset
recurrent = has_recurrent(session.model)
labels = session.labels()
output_name = "ranking score" if entry.task == "ranking" else "logit of high expression"
st.caption(f"**{escape_md(entry.label)}** on **{data.shown_name}**, explaining the model's {output_name}: red raises it, blue lowers "
           "it.")

saved_sets = explore.gene_sets(data.key)
scopes = {**SCOPES, **({"set": "A saved gene set"} if saved_sets else {})}
c1, c2 = st.columns([2, 3])
scope = c1.radio("Explain", list(scopes), format_func=scopes.get, key=state.sticky("attr_scope", "one"))
methods = [m for m, spec in METHODS.items() if spec.supports(session.model)]
with c2:  # method and reference one above the other: their names fit at 1024 px
    cc1 = cc2 = st.container()
    method = cc1.selectbox("Method", methods, format_func=lambda m: METHODS[m].label,
                           key=state.sticky("attr_method", "integrated_gradients"))
    baselines = [b for b in BASELINES if b != "gene_sample" or method == "gradient_shap"]
    if st.session_state.get("attr_baseline") not in baselines:
        state.set_sticky("attr_baseline", DEFAULT_BASELINE)
    baseline = cc2.selectbox("Reference (baseline)", baselines, format_func=lambda b: BASELINES[b].label,
                             key=state.sticky("attr_baseline", DEFAULT_BASELINE),
                             disabled=not METHODS[method].needs_baseline,
                             help="\n".join(f"- **{s.label}**: {s.description}" for s in BASELINES.values()))
    steps = cc1.slider("Integration steps (first try; doubled until the gap is within 1%)", 8, 200,
                       key=state.sticky("attr_steps", 32 if recurrent else 50),
                       disabled=method != "integrated_gradients")
    smooth = cc2.checkbox("SmoothGrad (average over noisy copies)", key=state.sticky("attr_smooth", False),
                          disabled=not METHODS[method].gradient)
    st.caption(f"{METHODS[method].label}: {METHODS[method].exactness}. {DEFAULT_BASELINE_WHY}")

rows_eval = session.evaluation_rows()
rows: list[int] = []
title = ""
if scope == "one":
    row = state.gene_picker("Gene (type an id or a symbol)", data, ds, "attr_gene",
                            int(rows_eval[0]) if len(rows_eval) else 0)
    rows, title = [int(row)], session.display(int(row))
elif scope in ("high", "low"):
    if labels is None:
        st.info("The data has neither labels nor expression, so there are no high or low genes.")
        st.stop()
    c1, c2 = st.columns(2)
    where = c1.selectbox("From", ["test", "all"], key=state.sticky("attr_from", "test"),
                         format_func={"test": "the test genes", "all": "all genes"}.get)
    pool = rows_eval if where == "test" else np.arange(ds.n_genes)
    pool = pool[labels[pool] == (1 if scope == "high" else 0)]
    cap = 200 if recurrent else 1000
    limit = c2.slider("At most this many genes (a random sample when there are more)", 10, cap,
                      key=state.sticky(f"attr_limit_{recurrent}", 50 if recurrent else 200), step=10)
    if len(pool) > limit:
        pool = np.sort(np.random.default_rng(0).choice(pool, size=limit, replace=False))
    rows = [int(r) for r in pool]
    title = f"{len(rows)} {scope} genes"
elif scope == "set" and saved_sets:
    name = st.selectbox("Gene set (saved from a selection on the Evaluate page)", list(saved_sets),
                        key=state.sticky("attr_set"))
    rows = [int(r) for r in saved_sets[name]]
    title = f"{len(rows)} genes of the set {name}"
else:
    up = st.file_uploader("A list of gene ids or symbols (one per line, or the first column of a CSV/TSV)",
                          type=["txt", "csv", "tsv"], key="attr_list")
    if up is not None:
        text = up.getvalue().decode("utf-8", errors="replace")
        names = [line.replace("\t", ",").split(",")[0].strip().strip('"') for line in text.splitlines()]
        names = [n for n in dict.fromkeys(names) if n and n.lower() not in ("gene", "gene_id", "id", "symbol")]
        missing = []
        for n in names:
            try:
                rows.append(session.row(n))
            except DataError as exc:
                missing.append(str(exc))
        if missing:
            st.warning(f"{len(missing)} of {len(names)} genes are not in the dataset and are left out: "
                       + " ".join(missing[:5]) + (" ..." if len(missing) > 5 else ""))
        rows = list(dict.fromkeys(rows))
        title = f"{len(rows)} listed genes"
    if not rows:
        st.info("Upload a list of genes to explain them together.")
        st.stop()

options = {"n_steps": int(steps)} if method == "integrated_gradients" else {}
if smooth and METHODS[method].gradient:
    options["smoothgrad"] = True


def _attributions(key: tuple, rows: list[int], method: str, baseline: str, options: dict):
    """Attributions, kept for this session's last few requests (with a progress bar while computing)."""
    cache = st.session_state.setdefault("_attr_cache", {})
    if key not in cache:
        bar = st.progress(0.0, text=f"Explaining {len(rows)} genes...")

        def progress(done: int, total: int) -> None:
            bar.progress(done / max(total, 1), text=f"Explaining {len(rows)} genes: {done} of {total} done")

        attr = session.explain_genes(rows, method, baseline, progress=progress, **options)
        bar.empty()
        while len(cache) >= 4:
            cache.pop(next(iter(cache)))
        cache[key] = attr
    return cache[key]


auto = scope == "one" or len(rows) <= 20
key = (entry.cache_key, data.key, tuple(rows), method, baseline, tuple(sorted(options.items())))
if not auto and st.session_state.get("_attr_requested") != key:
    st.button(f"Explain {len(rows)} genes", type="primary", key="attr_run",
              on_click=lambda: st.session_state.update(_attr_requested=key))
    st.stop()
try:
    attr = _attributions(key, rows, method, baseline, options)
except HmvizError as exc:
    state.show_error(exc)
    st.stop()

starts, marks = session.bin_starts_bp, session.marks
noun = KINDS[attr.kind].noun
value_title = attr.value_title
mean = attr.values.mean(axis=0)
if scope == "one":
    st.subheader(f"{escape_md(title)}: output {attr.outputs[0]:+.3g} {attr.unit}"
                 + ("" if attr.baseline_outputs is None else f" (at the reference {attr.baseline_outputs[0]:+.3g})"))
    st.info(escape_md(attr.sentence(0, bin_size=ds.bin_size, strand_aware=session.strand_aware)), icon=":material/lightbulb:")
    heat = plots.attribution_heatmap(mean, marks, starts, bin_size=ds.bin_size, colorbar_title=value_title,
                                     title=f"{title}: {noun} of each mark and position")
else:
    st.subheader(f"{escape_md(title)}: the mean {noun}")
    heat = plots.attribution_heatmap(mean, marks, starts, bin_size=ds.bin_size, colorbar_title=f"mean {value_title}",
                                     title=f"Mean over {title}: {noun} of each mark and position")
# What every figure carries: data, model and its training data, method, genes, output and measured expression.
gene_names = [session.display(r) for r in rows]
if scope == "one":
    genes_text = gene_names
    output_text = f"{output_name} {attr.outputs[0]:+.3g} {attr.unit}"
    measured_text = f"{captions.measured_expression(ds, labels, rows[0])} ({captions.EXPRESSION_UNIT})"
else:
    genes_text = [f"{title} ({', '.join(gene_names[:3])}{', ...' if len(rows) > 3 else ''})"]
    output_text = f"mean {output_name} {attr.outputs.mean():+.3g} {attr.unit}"
    finite = ds.expression[rows][np.isfinite(ds.expression[rows])] if ds.expression is not None else np.array([])
    measured_text = (f"median {np.median(finite):.3g} ({captions.EXPRESSION_UNIT}) over {finite.size} genes"
                     if finite.size else "not measured")
caption = captions.caption(data, entry, method=attr.label,
                           baseline=BASELINES[baseline].label if METHODS[method].needs_baseline else None,
                           genes=genes_text, prediction=output_text, measured=measured_text)
figure_name = ("attributions", entry.name, gene_names[0] if scope == "one" else title, method)
captions.plot(heat, caption, (*figure_name, "heatmap"), key="attr_heatmap")
c1, c2 = st.columns(2)
with c1:
    captions.plot(plots.mark_bars(attr.by_mark().mean(axis=0), marks, value_title=value_title,
                                  title=f"{noun.capitalize()} of each mark" + ("" if scope == "one" else
                                                                             " (mean over genes)")),
                  caption, (*figure_name, "marks"), key="attr_mark_bars", half=True)
with c2:
    regions = data_regions(starts, ds.bin_size, session.strand_aware)
    captions.plot(plots.region_bars(attr.by_region(regions=regions).mean(axis=0), marks, [r.label for r in regions],
                                    value_title=value_title,
                                    title=f"{noun.capitalize()} by region around the TSS"
                                          + ("" if scope == "one" else " (mean over genes)")),
                  caption, (*figure_name, "regions"), key="attr_region_bars", half=True)
if attr.additive:
    explained = np.abs(attr.outputs - attr.baseline_outputs)
    worst = int(np.argmax(np.abs(attr.convergence_delta) / np.maximum(explained, 1e-12)))
    steps_note = "" if attr.work is None else (
        f" after {int(attr.work.max())} {'steps' if method == 'integrated_gradients' else 'samples'} at most")
    st.caption(f"The {KINDS[attr.kind].plural} of each gene add up to its output minus the output at the reference, up to a gap of at "
               f"most {attr.max_abs_delta:.2g} {attr.unit} (largest relative gap "
               f"{abs(attr.convergence_delta[worst]) / max(explained[worst], 1e-12):.1%}){steps_note}. "
               f"Reference: {attr.baseline.description}; {session.reference_note}.")
    if attr.cap_reached is not None and attr.cap_reached.any():
        st.warning(f"For {int(attr.cap_reached.sum())} of {len(rows)} genes {attr.label} stopped at its cap of "
                   f"{int(attr.work.max())} {'steps' if method == 'integrated_gradients' else 'samples'} with a gap "
                   "above 1% of the output difference: read their numbers as approximate.", icon=":material/warning:")
else:
    st.caption(f"{attr.label}: {KINDS[attr.kind].meaning}."
               + (f" Reference: {attr.baseline.description}; {session.reference_note}." if attr.baseline else ""))

aggregate = pd.DataFrame({"bin": np.repeat(np.arange(len(starts)), len(marks)),
                          "bin_start_bp": np.repeat(starts, len(marks)),
                          "mark": np.tile(marks, len(starts)), "mean_attribution": mean.reshape(-1),
                          "sd_attribution": attr.values.std(axis=0).reshape(-1), "unit": attr.unit,
                          "values are": f"{noun} ({attr.label})"})
per_gene = pd.DataFrame(attr.by_mark(), columns=list(marks))
per_gene.insert(0, "gene_id", [str(ds.gene_ids[r]) for r in rows])
if ds.symbols is not None:
    per_gene.insert(1, "symbol", [str(ds.symbols[r]) for r in rows])
per_gene["output"] = attr.outputs
per_gene["unit"] = attr.unit
per_gene["values are"] = f"{noun} ({attr.label})"
st.markdown(f"**Per gene: {noun} of each mark** ({attr.unit})")
st.dataframe(per_gene, hide_index=True, height=min(320, 40 + 35 * len(per_gene)))
c1, c2, c3 = st.columns(3)
with c1:
    state.csv_button(aggregate, "attributions_mean_per_bin.csv", "Mean per bin and mark (CSV)", key="attr_dl_mean")
with c2:
    state.csv_button(per_gene, "attributions_per_gene_mark.csv", "Per gene and mark (CSV)", key="attr_dl_genes")
with c3:
    if len(rows) <= 200:
        state.csv_button(attr.to_frame(), "attributions_per_bin.csv", "Every gene, bin and mark (CSV)",
                         key="attr_dl_all")
