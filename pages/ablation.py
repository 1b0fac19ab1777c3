"""Ablation: which marks does a model need? Mask marks of the current model (fast), retrain on every
subset of marks (a study: slow, in the background on this machine or on a Ray cluster, cancellable,
resumable), or load saved or published results; the smallest subset within a chosen margin of all marks
is highlighted (chosen on validation where the runs have it)."""

import hashlib
import shutil

import pandas as pd
import streamlit as st

from hmviz.errors import DataError, HmvizError
from hmviz_app import jobs, state, uploads
from hmviz_app.model_settings import model_settings
from hmviz_app.provenance import show_provenance
from hmviz_app.text import escape_md, in_page_words

MODES = {"mask": "Mask marks of the current model (seconds)", "retrain": "Retrain on every subset of marks (minutes)",
         "load": "Load saved or published results"}

st.title("Ablation")
st.caption("Masking says what *this model* relies on; retraining says what the *data* allows (a model may lean on a "
           "mark that another mark could stand in for).")
data = state.current_data()
with st.spinner("Loading..."):
    from hmviz.explain import ablation as ab
    from hmviz.studies import executors, figures
    from hmviz.studies.ablation import DEFAULT_PATIENCE
    from hmviz_app.job_targets import ablation_retrain

mode = st.radio("Results from", list(MODES), format_func=MODES.get, horizontal=True,
                key=state.sticky("abl_mode", "mask"))
tables = st.session_state.setdefault("_ablation_tables", {})


def _mask_panel() -> None:
    entry = state.current_model()
    if entry is None:
        st.info(state.NO_MODEL)
        return
    if entry.task not in ab.DEFAULT_METRIC:
        st.info(f"Masking applies to single-cell models (binary or ranking); {entry.label} is a {entry.task} model. "
                "Choose another model in the sidebar.")
        return
    try:
        session = state.explainer(entry, data)
    except HmvizError as exc:
        state.show_error(exc, state.misfit_advice(data))
        return
    show_provenance(entry, data)
    c1, c2 = st.columns(2)
    subsets = c1.selectbox("Which marks to mask", ab.MASK_SUBSETS, key=state.sticky("abl_subsets", "single"),
                           format_func={"single": "keep one mark at a time", "leave-one-out": "mask one mark at a time",
                                        "all": "every subset of marks"}.get)
    baseline = c2.selectbox("Replace masked marks by", ab.MASK_BASELINES, key=state.sticky("abl_baseline", "train_mean"),
                            format_func={"train_mean": "the training genes' mean", "zeros": "no reads"}.get)
    key = (entry.cache_key, data.key, subsets, baseline)
    if tables.get("mask_key") != key and st.button("Mask marks", type="primary", key="abl_mask_run"):
        try:
            with st.spinner("Evaluating the model with marks masked..."):
                tables["mask"] = _mask(*key, session)
            tables["mask_key"] = key
        except HmvizError as exc:
            state.show_error(exc)
    if tables.get("mask_key") == key:
        table = tables["mask"]
        st.caption(f"{entry.label}, evaluated on {table.attrs.get('evaluated_on')} "
                   f"({table.attrs.get('genes_evaluated')} genes); masked marks replaced by "
                   f"{table.attrs.get('baseline')}.")
        _show(table, f"ablation_mask_{state.clean_label(entry.name)}")


@st.cache_data(max_entries=16, show_spinner=False)
def _mask(model_key: str, data_key: str, subsets: str, baseline: str, _session) -> pd.DataFrame:
    return ab.ablate_mask(_session.model, _session.card, _session.dataset, subsets=subsets, baseline=baseline)


def _retrain_panel() -> None:
    from hmviz.models import MODEL_REGISTRY

    if data.multi_cell:
        st.info("Retraining ablation is for single-cell models; load one cell on the Data page.")
        return
    ds = data.first
    job = jobs.jobs().get("ablation")
    running = job is not None and job.running
    families = [n for n, s in MODEL_REGISTRY.items() if s.task in ab.DEFAULT_METRIC]
    c1, c2, c3 = st.columns(3)  # two rows of three: in one row of six, the lists cut their choices at 1024 px
    family = c1.selectbox("Model family", families, key=state.sticky("abl_family", "deepchrome"), disabled=running)
    seeds = c2.number_input("Seeds per subset", 1, 10, key=state.sticky("abl_seeds", 1), disabled=running)
    epochs = c3.number_input("Epochs (at most)", 1, 500, key=state.sticky("abl_epochs", 5), disabled=running)
    c4, c5, c6 = st.columns(3)
    patience = c4.number_input("Patience", 0, 50, key=state.sticky("abl_patience", DEFAULT_PATIENCE),
                               disabled=running)
    where = c5.selectbox("Run on", ["local", "ray"], key=state.sticky("abl_executor", "local"), disabled=running,
                         format_func={"local": "this machine", "ray": "a Ray cluster"}.get,
                         help="A Ray cluster runs many subsets at once (pip install 'hmviz[ray]' where the app runs).")
    if where == "local":
        workers = c6.number_input("Worker processes", 1, executors.default_workers(), key=state.sticky("abl_jobs", 1),
                                  disabled=running, help="More workers finish sooner but leave less CPU to other users.")
    else:
        address = c6.text_input("Ray address", key=state.sticky("abl_address", "auto"), disabled=running,
                                help="'auto' joins the cluster started on this machine with 'ray start'; or HOST:PORT.")
    marks = st.multiselect("Marks to ablate over", list(ds.marks), key=state.sticky(f"abl_marks_{data.key}",
                                                                                     list(ds.marks)), disabled=running)
    settings, _, problem = model_settings(family, ds, "abl_settings", disabled=running,
                                          own_controls={"epochs": "Epochs (at most)"})
    if problem:
        st.warning(problem, icon=":material/warning:")
    runs = (2 ** len(marks) - 1) * int(seeds)
    st.caption(f"{2 ** len(marks) - 1} subsets x {int(seeds)} seed(s) = {runs} training runs of at most {int(epochs)} "
               "epochs. Finished runs are kept for this session: starting again with the same settings resumes.")
    config = repr((data.key, family, tuple(marks), int(seeds), int(epochs), int(patience), sorted(settings.items())))
    out = state.session_dir() / "ablation" / hashlib.sha256(config.encode()).hexdigest()[:16]
    if not running and st.button("Start", type="primary", key="abl_start", disabled=not marks or bool(problem)):
        dataset = ds

        try:
            executor = (executors.make_executor("local", workers=int(workers)) if where == "local"
                        else executors.make_executor("ray", address=address.strip() or None))
        except HmvizError as exc:
            state.show_error(exc)
            return

        options = dict(seeds=range(1, int(seeds) + 1), epochs=int(epochs), out_dir=out, executor=executor, marks=marks,
                       patience=int(patience), settings=settings)
        # a Ray client cannot be sent to another process; the cluster does the work, this thread only waits
        job = jobs.start_job("ablation", f"Ablation of {family}", ablation_retrain, args=(dataset, family, options),
                             process=where == "local")
    if job is not None:
        _job_panel(job)


def _job_panel(job: jobs.Job) -> None:
    @st.fragment(run_every=jobs.POLL_SECONDS if job.running else None)
    def panel() -> None:
        last, _, events = job.snapshot()
        if job.running:
            if last is None:
                st.progress(0.0, text="Starting the first runs...")
            else:
                value = f"{last.metric} {last.value:.3f}" if last.value is not None else f"failed ({last.error})"
                st.progress(last.done / last.total, text=f"{last.done} of {last.total} runs done; last: "
                                                         f"{'+'.join(last.marks)}, seed {last.seed}: {value}")
            st.button("Cancel", icon=":material/stop:", on_click=job.cancel.set, key="abl_cancel")
        elif job.status == "done":
            st.success(f"Ablation finished in {job.seconds:.0f} s ({job.result.attrs.get('computed')} runs trained, "
                       f"{job.result.attrs.get('failed')} failed, {job.result.attrs.get('reused')} reused).",
                       icon=":material/check:")
        elif job.status == "cancelled":
            st.warning(job.error, icon=":material/stop:")
        else:
            st.error(escape_md(in_page_words(job.error)))  # the library's words, the user's text as text
        table = job.result if job.status == "done" else None
        if table is None and events:
            table = _partial(events)
        if table is not None and not table.empty:
            try:
                ab.reference_row(table)
            except DataError:
                st.caption("The chart appears once the run with every mark has finished.")
                st.dataframe(table, hide_index=True)
            else:
                _show(table, "ablation_retrain", live=job.running)

    panel()


def _partial(events) -> pd.DataFrame:
    """A table of the runs finished so far (mean over the seeds done)."""
    rows = pd.DataFrame([{"marks": "+".join(e.marks), "n_marks": len(e.marks), "metric": e.metric, "value": e.value}
                         for e in events if e.value is not None])  # runs finished so far (test metric only)
    if rows.empty:
        return rows
    table = rows.groupby(["marks", "n_marks", "metric"], as_index=False).agg(mean=("value", "mean"),
                                                                            std=("value", "std"),
                                                                            n_runs=("value", "size"))
    return table.sort_values("mean", ascending=False).reset_index(drop=True)


def _load_panel() -> None:
    st.markdown("An `ablation.csv` written by `python -m hmviz ablate` or downloaded from this page, or a published "
                "mark-subset table of the pairwise-ranking work (columns `histone_marks` or `histone_marker`).")
    up = st.file_uploader("Ablation table (CSV)", type=["csv"], key="abl_upload")
    c1, c2 = st.columns(2)
    cell = c1.text_input("Cell (tables with one column per cell, e.g. E066)", key="abl_cell")
    model = c2.text_input("Model (tables with a model column, e.g. DirectRanker)", key="abl_model")
    if up is None:
        return
    folder = state.new_folder("ablation-upload")
    path = folder / f"table{uploads.checked_suffix(up.name, ('.csv',), 'an ablation table', gzip_ok=False)}"
    path.write_bytes(up.getvalue())
    try:
        raw = pd.read_csv(path)
        if {"histone_marks", "histone_marker"} & set(raw.columns):
            table = ab.read_published_ablation(path, cell=cell.strip() or None, model=model.strip() or None)
            table.attrs["source"] = table.attrs.get("source", "").replace(path.name, up.name)
        else:
            missing = [c for c in ("marks", "n_marks", "metric") if c not in raw.columns]
            if missing or not {"mean", "value"} & set(raw.columns):
                raise DataError(f"{up.name} is not an ablation table: it needs the columns marks, n_marks, metric and "
                                "mean (retraining) or value (masking).")
            table = raw
    except HmvizError as exc:
        message = str(exc).replace(str(path), up.name).replace(path.name, up.name)
        message = message.replace("with cell=", "in the Cell field").replace("with model=", "in the Model field")
        state.show_error(type(exc)(message))
        return
    except (ValueError, OSError) as exc:
        state.show_error(DataError(f"{up.name}: cannot read it as CSV ({exc})."))
        return
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    st.caption(table.attrs.get("source", up.name))
    _show(table, "ablation_loaded")


def _show(table: pd.DataFrame, name: str, live: bool = False) -> None:
    margin = st.slider("Margin (in the metric's units)", 0.0, 0.1, step=0.005, format="%.3f",
                       key=state.sticky(f"abl_margin_{name}", ab.DEFAULT_MARGIN) if not live else "abl_margin_live",
                       help="The highlighted subset is the smallest whose metric is within this margin of all marks.")
    try:
        best = ab.smallest_within_margin(table, margin)
        ref = ab.reference_row(table)
        col = ab.value_column(table)
        on = best["chosen_on"]
        how = ("chosen on the validation metric" if on == "valid_mean" else
               "chosen on the test metric: these results have no validation metric")
        st.success(f"Smallest subset within {margin:g} of all marks ({how}; all marks: {ref[on]:.3f}): "
                   f"**{best['marks']}** ({int(best['n_marks'])} mark{'s' if best['n_marks'] != 1 else ''}, "
                   f"{best[on]:.3f}; test {best[col]:.3f} vs {ref[col]:.3f} with all marks).", icon=":material/star:")
        state.plot(figures.subset_chart(table, margin=margin), name, key=f"abl_chart_{name}")
    except HmvizError as exc:
        state.show_error(exc)
    st.dataframe(table, hide_index=True, height=min(420, 40 + 35 * len(table)))
    state.csv_button(table, f"{name}.csv", "Download the table (CSV)", key=f"abl_dl_{name}")


{"mask": _mask_panel, "retrain": _retrain_panel, "load": _load_panel}[mode]()
