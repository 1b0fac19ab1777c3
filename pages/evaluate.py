"""Evaluate: the model's test metrics beside baselines and published numbers; ROC and PR curves;
predicted vs measured; a searchable, downloadable table of per-gene predictions."""

import numpy as np
import pandas as pd
import streamlit as st

from hmviz.errors import HmvizError
from hmviz.views.figures import legend_inside, wrap_titles
from hmviz.views.report import export_name, with_caption
from hmviz_app import captions, explore, jobs, paired, state
from hmviz_app.job_targets import fit_baselines
from hmviz_app.text import escape_md

st.title("Evaluate")
data, entry, session = state.model_on_data()
st.caption(f"**{escape_md(entry.label)}** on **{data.shown_name}**. Change them in the sidebar and on the Data page.")


@st.cache_data(max_entries=16, show_spinner="Evaluating on the test genes...")
def _evaluate(model_key: str, data_key: str, path: str, _dataset) -> dict:
    from hmviz.evaluation import evaluate

    return evaluate(path, _dataset, device="auto")


try:
    metrics = _evaluate(entry.cache_key, data.key, str(entry.path), data.dataset)
except HmvizError as exc:
    state.show_error(exc, state.misfit_advice(data))
    st.stop()

from hmviz import metrics as M
from hmviz.provenance import published_matching, roadmap_ids

from hmviz.comparison import INTERVAL_METRIC, Comparison, compare
from hmviz.models.baselines import BASELINE_WORDS


@st.cache_data(max_entries=16, show_spinner="Bootstrapping the test metric (1,000 resamples)...")
def _interval(model_key: str, data_key: str, task: str, truth, scores, _ids) -> tuple[str, float, float] | None:
    name, fn = INTERVAL_METRIC[task]
    try:
        return name, *M.bootstrap_ci(fn, truth, scores, n=1000, seed=0)
    except HmvizError:
        return None


@st.cache_data(max_entries=32, show_spinner="Comparing with the baseline on the same test genes (1,000 resamples)...")
def _comparison(model_key: str, data_key: str, baseline: str, task: str, label: str, truth, scores, ids,
                _by_gene: dict) -> Comparison | None:
    """This model (``label``) minus ``baseline`` on the test genes both scored (None where undefined)."""
    try:
        return compare(task, truth, scores, ids, _by_gene, model=label, other=BASELINE_WORDS.get(baseline, baseline))
    except HmvizError:
        return None

@st.cache_data(max_entries=16, show_spinner=False)
def _baseline_source(model_key: str, data_key: str, family: str, _card, _dataset) -> str:
    """Where the baselines' rows come from: the model's own split, or a split of data it was not trained on."""
    from hmviz.evaluation import training_split

    if training_split(_card, _dataset) is not None:
        return f"baseline, same split, marks and labels as {family}"
    return f"baseline, trained and tested on a split of this data with the marks of {family} (not the model's data)"


st.subheader("Test metrics")
linear = "ridge" if entry.task == "ranking" and not paired.ranked_on_labels(entry, data) else "logistic"
want_baselines = entry.task != "differential" and st.toggle(
    f"Compare with baselines ({linear} regression, boosted trees) trained on the same genes",
    key=state.sticky("eval_baselines", True))


def _metrics_table(baselines: list[dict], pending: str = "") -> None:
    """The model's test metrics, the baselines' and the published numbers, in one table."""
    row = {"model": entry.label, "source": f"this model, {metrics['evaluated_on']}",
           **{k: v for k, v in metrics.items() if k.startswith("test_")}}
    if interval is not None:
        row[f"{interval[0]} 95% CI"] = f"{interval[1]:.3f} to {interval[2]:.3f}"
    rows = [row]
    compared = [_comparison(entry.cache_key, data.key, b["model"], pair[0], entry.label, *pair[1:], b["scores_by_gene"])
                if pair is not None and "scores_by_gene" in b else None for b in baselines]
    source = _baseline_source(entry.cache_key, data.key, entry.family, entry.card, data.dataset)
    rows += [{"model": b["model"], "source": source,
              **{k: v for k, v in b.items() if k.startswith("test_")},
              **({f"this model minus baseline, {c.metric} (95% CI)": c.cell()} if c else {})}
             for b, c in zip(baselines, compared)]
    rows += [{"model": f"{p.result.model} (published)",
              "source": f"{p.result.data}, {p.gene_set}, {p.split}; {p.result.source}", p.result.metric: p.result.value}
             for p in published]
    table = pd.DataFrame(rows)
    main = entry.card.main_metric
    ci = [c for c in table.columns if "95% CI" in c]  # beside the main metric, not scrolled out of view
    table[ci] = table[ci].fillna("")  # each interval is of one row's own figure only
    of = INTERVAL_METRIC[pair[0]][0] if pair is not None else main
    first = [main, *[of] * (of != main), *ci]  # the metric of the interval and differences, beside the main one
    order = ["model", *first, *[c for c in table.columns if c not in ("model", "source", *first)], "source"]
    st.dataframe(table[[c for c in order if c in table.columns]], hide_index=True,
                 column_config={c: st.column_config.NumberColumn(format="%.3f") for c in table.columns
                                if c.startswith("test_") and c not in ci})
    st.caption(f"{metrics['genes_evaluated']:,} genes evaluated ({metrics['evaluated_on']}). "
               + (f"The 95% interval of {interval[0]} is a percentile bootstrap over these genes (1,000 resamples, "
                  "seed 0). " if interval is not None else "")
               + (f"Published numbers are for the same cell type ({', '.join(sorted(cells))}), on the paper's genes "
                  "and test split, not these: a point of reference only. " if published else
                  "Published numbers are shown only for data of the cell type they were measured on (a Roadmap "
                  "id such as E123 in the cell or file names). ")
               + "pearson_r is Pearson's r (not R²); auprc is average precision." + pending)
    for c in compared:
        if c is not None:
            st.caption(escape_md(c.sentence()))
    state.csv_button(table, "metrics.csv", "Download metrics (CSV)", key=f"download_metrics_{len(baselines)}")


cells = roadmap_ids(data.first.cell or "", data.first.source, *data.first.meta.get("files", []),
                    *(getattr(data.dataset, "cells", {}) or {}))
published = published_matching(entry.family, cells)
pair = paired.test_truth_and_scores(entry, data, session)
interval = _interval(entry.cache_key, data.key, *pair) if pair is not None and len(pair[1]) > 1 else None


def _metrics_panel(job: jobs.Job | None, retry) -> None:
    """The metrics table, with the baselines once their job (shared by every session) has trained them:
    the page polls it meanwhile and reruns once when it ends. When it failed, a button runs it again
    (``retry()``)."""
    polling = job is not None and job.running

    @st.fragment(run_every=jobs.POLL_SECONDS if polling else None)
    def panel() -> None:
        if job is None or job.status == "done":
            _metrics_table(job.result if job is not None else [])
        elif job.running:
            where = (f"waiting for a free worker, number {job.position} in the queue" if job.queued
                     else f"running for {job.seconds:.0f} s")
            _metrics_table([], pending=f" The baselines are being trained on the same split, once for this model and "
                                       f"dataset ({where}); their rows appear here when they are done.")
        else:
            _metrics_table([])
            state.show_error(HmvizError(f"The baselines could not be trained: {job.error}"))
            if st.button("Train the baselines again", key="eval_baselines_retry", icon=":material/refresh:",
                         help="Starts their job again for this model and dataset (for every user of this server)."):
                retry()
                st.rerun()
        if polling and not job.running:
            st.rerun()  # once: the page is drawn again without polling

    panel()


def _baselines(retry: bool = False) -> jobs.Job:
    return jobs.shared_job(("baselines", entry.cache_key, data.key), f"Baselines for {entry.label}", fit_baselines,
                           args=(data.dataset, entry.card), retry=retry)


_metrics_panel(_baselines() if want_baselines else None, retry=lambda: _baselines(retry=True))

# ------------------------------------------------------------------------------ curves
from hmviz import plots

scores = state.scores(entry.cache_key, data.key, session)
rows_eval = session.evaluation_rows()
ds = session.dataset
names = [session.display(r) for r in range(ds.n_genes)]
target = explore.target_choice("eval_click_target")
st.caption("Click a gene in the scatter or a row of the table below to open it there; drag a box or a lasso over the "
           "scatter (its toolbar) to select a group of genes and save it as a gene set.")


main = entry.card.main_metric
score_name = {"differential": "predicted log2 fold change", "ranking": "ranking score"}.get(
    entry.task, "predicted logit of 'high'")
metric_text = f"{main} = {metrics[main]:.3f}" if isinstance(metrics.get(main), float) else None


def _caption(n_genes: int, measured: str) -> str:
    """The caption every figure of the page carries: the test genes, what is predicted and measured."""
    return captions.caption(data, entry, genes=[f"{n_genes:,} genes: {metrics['evaluated_on']}"],
                            prediction=", ".join(p for p in (score_name, metric_text) if p), measured=measured)


def _table_spearman(rows) -> float | None:
    """The metrics table's Spearman r when it covers exactly ``rows`` (the scatter's genes), so that the figure
    and the table show one number for one thing: the scatter's scores come from other batches than the
    evaluation's, and float rounding can break a tie between two genes' scores (DeepDiff on the two-cell
    sample: 0.809 against 0.811). None: the figure computes it."""
    value = metrics.get("test_spearman_r")
    return value if isinstance(value, float) and len(rows) == metrics.get("genes_evaluated") else None


def _scatter(fig, rows, measured: str) -> None:
    with_caption(fig, _caption(len(rows), measured), width_chars=captions.FULL)
    explore.scatter(fig, export_name("evaluate", entry.name, "predicted-vs-measured"), rows, ds.gene_ids, names,
                    data.key, target, key="eval_scatter")


if session.differential:
    measured = session.measured()
    st.subheader("Predicted vs measured change")
    if measured is None:
        st.info("The data has no expression for both cells, so there is no measured change to compare with.")
    else:
        ok = rows_eval[np.isfinite(measured[rows_eval])]
        change = f"{session.cells[1]} over {session.cells[0]}"
        _scatter(plots.predicted_vs_actual(scores[ok], measured[ok], gene_names=[names[r] for r in ok],
                                           log1p_expression=False, predicted_title="predicted log2 fold change",
                                           measured_name="log2 fold change",
                                           measured_title=f"measured log2 fold change ({change})",
                                           spearman=_table_spearman(ok)), ok,
                 f"log2 fold change of {captions.EXPRESSION_UNIT} ({change})")
else:
    labels = session.labels()
    c1, c2 = st.columns(2)
    if labels is not None:
        ok = rows_eval[labels[rows_eval] >= 0]
        if len(np.unique(labels[ok])) == 2:
            curves = {entry.name: (labels[ok], scores[ok])}
            curve_caption = _caption(len(ok), "high/low labels of the data")
            with c1:
                captions.plot(wrap_titles(legend_inside(plots.roc_curves(curves), "bottom right")), curve_caption,
                              ("evaluate", entry.name, "roc"), key="eval_roc", half=True)
            with c2:
                captions.plot(wrap_titles(legend_inside(plots.pr_curves(curves), "bottom left")), curve_caption,
                              ("evaluate", entry.name, "precision-recall"), key="eval_pr", half=True)
    if ds.expression is not None:
        ok = rows_eval[np.isfinite(ds.expression[rows_eval])]
        _scatter(plots.predicted_vs_actual(scores[ok], ds.expression[ok], gene_names=[names[r] for r in ok],
                                           labels=labels[ok] if labels is not None and (labels[ok] >= 0).all()
                                           else None, predicted_title=score_name, spearman=_table_spearman(ok)), ok,
                 f"log1p of {captions.EXPRESSION_UNIT}")

# ------------------------------------------------------------------------- predictions
st.subheader("Per-gene predictions")
genes = ds.gene_table()
if session.split is not None:
    genes["split"] = session.split
if session.differential:
    cell_a, cell_b = session.cells
    if "expression" in genes:  # each cell's, named: the table's own column is the first cell's
        genes = genes.rename(columns={"expression": f"expression ({cell_a})"})
        if session.other is not None and session.other.expression is not None:
            genes.insert(genes.columns.get_loc(f"expression ({cell_a})") + 1, f"expression ({cell_b})",
                         session.other.expression)
    genes["predicted_log2fc"] = scores
    measured = session.measured()
    if measured is not None:
        genes["measured_log2fc"] = measured
else:
    genes["score"] = scores
    if entry.task == "binary":
        genes["p_high"] = 1.0 / (1.0 + np.exp(-scores))
    if session.labels() is not None:
        genes["label"] = np.where(session.labels() >= 0, session.labels(), np.nan)
    genes["rank"] = pd.Series(scores).rank(ascending=False, method="min").astype(int).to_numpy()
c1, c2 = st.columns([5, 2])
query = c1.text_input("Search genes by id or symbol", key=state.sticky("eval_search", ""),
                      placeholder="e.g. SIMG12 or SIM00012")
scope = c2.selectbox("Genes", ["test", "all"], key=state.sticky("eval_scope", "test"),
                     format_func={"test": f"evaluated ({len(rows_eval):,})", "all": f"all ({len(genes):,})"}.get,
                     help="Evaluated genes: those of the metrics and figures above, never one the model trained or "
                          "validated on.")
shown = genes.iloc[rows_eval] if scope == "test" else genes
if query.strip():
    q = query.strip().lower()
    hit = shown["gene_id"].str.lower().str.contains(q, regex=False)
    if "symbol" in shown:
        hit |= shown["symbol"].astype(str).str.lower().str.contains(q, regex=False)
    shown = shown[hit]
explore.clickable_table(shown, shown.index.to_numpy(), ds.gene_ids, "eval_table", target, hide_index=True, height=320)
st.caption(f"{len(shown):,} genes shown.")
state.csv_button(shown, f"predictions_{state.clean_label(entry.name)}.csv", "Download predictions (CSV)",
                 key="download_predictions")
