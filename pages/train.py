"""Train: a model family, its key hyperparameters, marks, label rule and split; live progress and
cancel; your models beside the bundled ones (rename, compare, delete, download)."""

import numpy as np
import pandas as pd
import streamlit as st

from hmviz.errors import HmvizError
from hmviz.card import ModelCard
from hmviz.engine import epoch_rule
from hmviz.metrics import metric_label
from hmviz.provenance import shown_card, shown_source, trained_on
from hmviz_app import jobs, paired, state
from hmviz_app.job_targets import train_and_save
from hmviz_app.model_settings import model_settings
from hmviz_app.text import escape_md, in_page_words

TASKS = {"binary": "high vs low expression", "ranking": "which of two genes is expressed higher",
         "differential": "the change in expression between two cell types"}
SPLITS = {"auto": "the file's split or random", "file": "the file's split column",
          "random": "random by gene (70/15/15, seeded)", "chromosome": "hold out whole chromosomes"}

st.title("Train")
data = state.current_data()
ds = data.first
with st.spinner("Loading the model families (PyTorch)..."):
    from hmviz.models import MODEL_REGISTRY
    from hmviz.plots import training_curves
    from hmviz.inference import choose_device
    from hmviz.options import TrainOptions

job = jobs.jobs().get("train")
running = job is not None and job.running

st.caption(f"Training on **{data.shown_name}** ({data.describe()}). Change the data on the Data page.")
family = st.selectbox("Model family", list(MODEL_REGISTRY), key=state.sticky("train_family", "deepchrome"),
                      disabled=running)
spec = MODEL_REGISTRY[family]
st.caption(f"{spec.description} Predicts {TASKS[spec.task]}.")
overrides, config, problem = model_settings(family, ds, "train_settings", disabled=running, own_controls={
    "epochs": "Epochs (at most)", "batch_size": "Batch size", "lr": "Learning rate"})
if problem:
    pass
elif spec.task == "differential" and not data.multi_cell:
    problem = ("DeepDiff compares two cell types, but the dataset in use has one. Choose the two-cell sample "
               "(or upload two cells) on the Data page.")
elif spec.task != "differential" and data.multi_cell:
    problem = (f"{family} models one cell type, but the dataset in use has {len(data.dataset.cells)}. "
               "Choose deepdiff, or load one cell on the Data page.")

c = st.columns(5)
epochs = c[0].number_input("Epochs (at most)", 1, 1000, key=state.sticky(f"train_epochs_{family}", min(config.epochs, 10)),
                           help=f"The family's default is {config.epochs}"
                                + (f", after {config.vae_epochs} epochs of its VAE stage. " if hasattr(config, "vae_epochs")
                                   else ". ")
                                + in_page_words(epoch_rule(spec.task, config.min_steps)),
                           disabled=running)
batch_size = c[1].number_input("Batch size", 1, 4096, key=state.sticky(f"train_batch_{family}", config.batch_size),
                               help="Genes per training step. Rankers compare 4 pairs per gene, drawn among the "
                                    "genes of each step.", disabled=running)
lr = c[2].number_input("Learning rate", 1e-6, 1.0, key=state.sticky(f"train_lr_{family}", float(config.lr)),
                       format="%.5f", step=1e-4, disabled=running)
seed = c[3].number_input("Seed", 0, 2**31 - 1, key=state.sticky("train_seed", 1), disabled=running)
patience = c[4].number_input("Patience (epochs)", 0, 100, key=state.sticky("train_patience", 10), disabled=running,
                             help="Stop after this many epochs without improvement on the validation genes (0: never).")
marks = st.multiselect("Marks", list(ds.marks), key=state.sticky(f"train_marks_{data.key}", list(ds.marks)),
                       disabled=running)

label_rule, cells = None, None
if spec.task in ("binary", "ranking"):
    rules = (["file"] if ds.labels is not None else []) + (["median", "quantile", "threshold"]
                                                           if ds.expression is not None else [])
    words = {"file": "the file's labels", "median": "above the training genes' median (DeepChrome)",
             "quantile": "above a quantile of the training genes", "threshold": "above a fixed value"}
    c1, c2 = st.columns(2)
    if rules:
        key = state.sticky(f"train_rule_{data.key}", rules[0])
        if st.session_state.get(key) not in rules:
            st.session_state[key] = rules[0]
        rule = c1.selectbox("Label: a gene is 'high' when its expression is...", rules, format_func=words.get, key=key,
                            disabled=running)
        if rule == "quantile":
            q = c2.number_input("Quantile", 0.01, 0.99, key=state.sticky("train_quantile", 0.75), step=0.05,
                                disabled=running)
            label_rule = f"quantile:{q}"
        elif rule == "threshold":
            median = float(np.nanmedian(ds.expression))
            t = c2.number_input("Threshold (expression units)", key=state.sticky("train_threshold", round(median, 3)),
                                disabled=running)
            label_rule = f"threshold:{t}"
        else:
            label_rule = rule
        if spec.task == "ranking" and ds.expression is not None:
            c2.caption("A ranker learns from the measured expression itself; the label is used only for its AUROC.")
    else:
        problem = problem or "The dataset has neither labels nor expression values, so there is nothing to learn."
else:
    names = list(data.dataset.cells) if data.multi_cell else []
    if len(names) >= 2:
        c1, c2 = st.columns(2)
        a = c1.selectbox("Cell A", names, index=0, key="train_cell_a", disabled=running)
        b = c2.selectbox("Cell B (the model predicts log2 of B over A)", names, index=1, key="train_cell_b",
                         disabled=running)
        cells = (a, b)
        if a == b:
            problem = "Choose two different cells."

c1, c2, c3 = st.columns([3, 2, 1])  # the split names fit at 1024 px
splits = [s for s in SPLITS if (s != "file" or ds.split is not None) and (s != "chromosome" or ds.chrom is not None)]
split_key = state.sticky(f"train_split_{data.key}", "auto")
split = c1.selectbox("Train / validation / test split", splits, format_func=lambda s: f"{s}: {SPLITS[s]}",
                     key=split_key, disabled=running)
valid_chroms = test_chroms = None
if split == "chromosome":
    hint = "empty: chosen from the seed, about 15% of the genes (recorded in the model card)"
    v = c2.text_input("Validation chromosomes", "", placeholder=hint, key="train_valid_chroms")
    t = c2.text_input("Test chromosomes", "", placeholder=hint, key="train_test_chroms")
    valid_chroms = tuple(x.strip() for x in v.split(",") if x.strip()) or None
    test_chroms = tuple(x.strip() for x in t.split(",") if x.strip()) or None
device = choose_device("auto")
c3.metric("Device", device.type.upper())
if problem:
    st.warning(problem, icon=":material/warning:")


if st.button("Train", type="primary", icon=":material/play_arrow:", disabled=running or bool(problem),
             key="train_start"):
    try:
        if not marks:
            raise HmvizError("Choose at least one mark.")
        options = TrainOptions(model=family, epochs=int(epochs), batch_size=int(batch_size), lr=float(lr),
                               seed=int(seed), device="auto", marks=tuple(marks), label_rule=label_rule, split=split,
                               valid_chroms=valid_chroms, test_chroms=test_chroms, patience=int(patience), cells=cells,
                               model_overrides=overrides)
        dataset, out = data.dataset, state.new_folder("models")
        job = jobs.start_job("train", f"Training {family}", train_and_save, args=(dataset, options, out),
                             data_key=data.key, data_name=data.name)
        running = True
    except HmvizError as exc:
        state.show_error(exc)


def _progress_panel(job: jobs.Job) -> None:
    elsewhere = job.context.get("data_key") != data.key
    if elsewhere and not job.running:
        st.caption(f"Your last training run ({escape_md(job.title.lower())}) was on "
                   f"**{escape_md(job.context.get('data_name', 'another dataset'))}**, not on the dataset in use; "
                   "its model, if it finished, is listed under Models below.")
        return

    @st.fragment(run_every=jobs.POLL_SECONDS if job.running else None)
    def panel() -> None:
        last, history, _ = job.snapshot()
        if elsewhere:
            st.caption(f"{escape_md(job.title)} on **{escape_md(job.context.get('data_name', 'another dataset'))}** "
                       "(started before the dataset was changed):")
        if job.queued:
            st.info(job.queue_text(), icon=":material/hourglass_top:")
            st.button("Cancel training", icon=":material/stop:", on_click=job.cancel.set, key="train_cancel")
        elif job.running:
            if last is None:
                st.progress(0.0, text="Preparing the data (split, labels, input transform)...")
            else:
                done = (last.epoch - 1 + last.step / max(last.steps, 1)) / max(last.epochs, 1)
                stage = "Pre-training the VAE" if last.stage == "pretrain" else "Training"
                loss = f", training loss {last.train_loss:.4f}" if last.train_loss is not None else ""
                st.progress(min(done, 1.0), text=f"{stage}: epoch {last.epoch} of {last.epochs}, batch {last.step} of "
                                                 f"{last.steps}{loss} ({job.seconds:.0f} s)")
            st.button("Cancel training", icon=":material/stop:", on_click=job.cancel.set, key="train_cancel")
        elif job.status == "done":
            card = ModelCard.of(job.result["card"])
            main = card.main_metric
            value = card.metrics.get(main)
            st.success(f"Training finished in {job.seconds:.0f} s and the model is saved"
                       + (f": {metric_label(main)} = {value:.3f} on {card.split_record.counts['test']} test genes"
                          if value is not None else "") + ". It is now the model in use (sidebar).",
                       icon=":material/check:")
        elif job.status == "cancelled":
            st.warning(job.error, icon=":material/stop:")
        else:
            st.error(escape_md(in_page_words(job.error)))  # the library's words, the user's text as text
        if history:
            # Rebuilt only when an epoch ends or the job finishes (building the figure on every poll of
            # every session held the interpreter lock against other users' pages).
            best = ModelCard.of(job.result["card"]).run.best_epoch if job.status == "done" else None
            cached = job.context.get("_curve")
            if cached is None or cached[0] != (len(history), best):
                cached = ((len(history), best),
                          training_curves(history, best_epoch=best, title="Training loss and validation metric"))
                job.context["_curve"] = cached
            state.plot(cached[1], "training_curves", key="train_live_curves")
        if not job.running and not job.announced:
            job.announced = True
            st.rerun()  # the whole app reruns once, so that the sidebar lists the new model

    panel()


if job is not None:
    _progress_panel(job)

# ------------------------------------------------------------------------------- models
st.divider()
st.subheader("Models")
models = state.all_models()
if not models:
    st.info("No models yet. The bundled models are not installed (models/ is empty); train one above.")
    st.stop()


def _row(m: state.ModelEntry) -> dict:
    card = m.card
    main = card.main_metric
    return {"name": m.name, "source": "bundled" if m.bundled else "trained here", "family": m.family,
            "task": m.task, "test metric": main, "value": card.metrics.get(main),
            "best epoch": card.run.best_epoch, "marks": ", ".join(card.marks),
            "label rule": card.label_rule, "trained on": shown_source(card.data_source or ""),
            "seconds": card.run.seconds}


st.dataframe(pd.DataFrame([_row(m) for m in models]), hide_index=True,
             column_config={"value": st.column_config.NumberColumn(format="%.3f")})

labels = {m.key: m.label for m in models}
in_use = state.current_model()
key = state.sticky("manage_model", in_use.key if in_use else None)
if in_use is not None and st.session_state.get("_manage_follows") != in_use.key:
    state.set_sticky(key, in_use.key)  # the model in use changed (sidebar, a new run, a link): follow it
st.session_state["_manage_follows"] = in_use.key if in_use else None
if st.session_state.get(key) not in labels:
    st.session_state[key] = next(iter(labels))
pick = state.model_by_key(st.selectbox("Manage a model", list(labels), format_func=labels.get, key=key))
st.caption(escape_md(trained_on(pick.card)))
c1, c2, c3, c4 = st.columns(4, vertical_alignment="bottom")
if c1.button("Use this model", key="use_model", disabled=st.session_state.get("model") == pick.key):
    state.select_model(pick.key)
    st.rerun()
c2.download_button("Download (zip)", state.model_zip(pick), file_name=f"{state.clean_label(pick.name) or 'model'}.zip",
                   mime="application/zip", icon=":material/download:", key="download_model")
if not pick.bundled:
    new_name = c3.text_input("New name", value=pick.name, key=f"rename_{pick.key}")
    if c3.button("Rename", key="rename_model") and new_name.strip() and new_name.strip() != pick.name:
        pick.name = state.unique_model_name(new_name.strip(), exclude=pick.key)
        st.rerun()
    if c4.button("Delete", key="delete_model", icon=":material/delete:"):
        state.delete_session_model(pick.key)
        st.rerun()
else:
    c3.caption("Bundled models are shared by everyone: they cannot be renamed or deleted.")
with st.expander("Model card"):
    st.json(shown_card(pick.card), expanded=False)  # no history; no server path in the data's source

st.markdown("**Compare models**")
chosen = st.multiselect("Models to compare", list(labels), format_func=labels.get,
                        key=state.sticky("compare_models", list(labels)[:2]))
chosen = [state.model_by_key(k) for k in chosen if state.model_by_key(k) is not None]
if chosen:
    table = pd.DataFrame([{"model": m.label, "family": m.family,
                           **{k: v for k, v in m.card.metrics.items() if k.startswith(("test_", "valid_"))}}
                          for m in chosen])
    st.dataframe(table, hide_index=True)
    state.csv_button(table, "model_comparison.csv", key="download_comparison")
    st.caption("Each model's metrics on the test genes of the data it was trained on (its card).")
    if len(chosen) > 1:
        data_in_use = state.current_data()
        st.markdown(f"**{escape_md(chosen[0].label)} against the others, on the same test genes of "
                    f"{data_in_use.shown_name}**")
        for other in chosen[1:]:
            verdict = paired.versus(chosen[0], other, data_in_use)
            st.caption(escape_md(verdict if isinstance(verdict, str) else verdict.sentence()))
    for m in chosen:  # one per row: each has two panels, which overlap in a third of the page at 1024 px
        history = list(m.card.history)
        if history:
            state.plot(training_curves(history, best_epoch=m.card.run.best_epoch, selected_on=m.card.run.selected_on,
                                       title=m.label),
                       f"training_{m.name}", key=f"compare_curves_{m.key}")
