"""Session state and caches of the app (uploads: :mod:`hmviz_app.uploads`; long work: :mod:`hmviz_app.jobs`).

What lives where:

* **Shared by every session** (``st.cache_resource``; never mutated): the sample datasets, the
  bundled models, and each model's :class:`hmviz.explain.session.ExplainSession` for a dataset.
  Keys name the content (a model's path and file time, a dataset's content hash), never a session.
* **Cached by content** (``st.cache_data``, copies per caller): uploaded datasets (keyed by the
  hash of the uploaded bytes and their roles), built tables, metrics, scores, explanations.
* **Per session** (``st.session_state``): the current dataset and model, models trained in this
  session, widget choices, jobs. Files go to a per-session temporary folder under generated names
  (removed when the server exits; uploads are removed as soon as they are read).
"""

from __future__ import annotations

import atexit
import io
import logging
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import streamlit as st

from hmviz.bundled import BUNDLED_DIR, SAMPLE_DIR, list_bundled
from hmviz.errors import HmvizError
from hmviz_app.text import escape_md, in_page_words, plain_text_figure

if TYPE_CHECKING:
    from hmviz.card import ModelCard

log = logging.getLogger("hmviz_app")


# ----------------------------------------------------------------------------- basics
def bundled_dir() -> Path:
    """Where the bundled models live (``HMVIZ_MODELS_DIR`` overrides, e.g. for tests)."""
    return Path(os.environ.get("HMVIZ_MODELS_DIR") or BUNDLED_DIR)


_torch_lock = threading.Lock()
_torch_configured = False


def torch_threads() -> int:
    """PyTorch threads per caller: the free cores (:func:`hmviz.runtime.recommended_threads`) shared by
    the job workers plus the threads that render pages (``HMVIZ_TORCH_THREADS`` or ``HMVIZ_THREADS``
    overrides; 1 on 2 cores)."""
    from hmviz.runtime import recommended_threads
    from hmviz_app.jobs import worker_count

    override = os.environ.get("HMVIZ_TORCH_THREADS") or os.environ.get("HMVIZ_THREADS")
    return int(override) if override else recommended_threads(concurrent_jobs=worker_count() + 1)


def configure_torch() -> None:
    """Import torch and set its thread count once per server (:func:`torch_threads`): the one place the
    app sets threads, so that jobs and pages share the CPU instead of oversubscribing it."""
    global _torch_configured
    import torch

    with _torch_lock:
        if not _torch_configured:
            torch.set_num_threads(torch_threads())
            _torch_configured = True


def _warm_imports(delay_s: float = 2.0) -> None:
    time.sleep(delay_s)  # let the first page reach the browser and draw before competing for the CPU
    try:
        configure_torch()
        import captum.attr  # noqa: F401  (with matplotlib, about 1.8 s: Gene pairs, Attributions)
        import scipy.stats  # noqa: F401
        import sklearn.metrics  # noqa: F401

        import hmviz.explain
        import hmviz.explain.session
        import hmviz.models
        import hmviz.plots
        import hmviz.training  # noqa: F401
    except Exception:  # a broken install shows up on the page that needs it, with its message
        log.exception("warming up imports failed")
    try:
        from hmviz.models import _native

        _native.build_in_background()  # the LSTM kernel, once per machine (about 30 s, in a child process)
    except Exception:  # without the kernel, models use the eager recurrence (the same numbers)
        log.exception("starting the LSTM kernel's build failed")


@st.cache_resource(show_spinner=False)
def prewarm() -> threading.Thread:
    """Import torch, Captum and scikit-learn in the background once per server, after the first page
    is shown, so that the first visit to a model page does not wait for them; then start building the
    compiled LSTM kernel (:func:`hmviz.models._native.build_in_background`, at the lowest CPU priority)."""
    thread = threading.Thread(target=_warm_imports, name="hmviz-prewarm", daemon=True)
    thread.start()
    return thread


def session_dir() -> Path:
    """This session's private folder (removed when the server exits)."""
    path = st.session_state.get("_session_dir")
    if path is None or not Path(path).is_dir():
        path = tempfile.mkdtemp(prefix="hmviz-session-")
        atexit.register(shutil.rmtree, path, True)
        st.session_state["_session_dir"] = path
    return Path(path)


def new_folder(kind: str) -> Path:
    """A new folder with a generated name under this session's folder."""
    path = session_dir() / kind / uuid.uuid4().hex[:12]
    path.mkdir(parents=True)
    return path


def sticky(key: str, default: Any = None) -> str:
    """A widget key whose value survives page switches (Streamlit forgets widgets that are not drawn).

    Call it as the widget's ``key`` and do not pass the widget a default value; ``default`` is used
    the first time."""
    store = st.session_state.setdefault("_sticky", {})
    if key in st.session_state:
        store[key] = st.session_state[key]
    elif key in store:
        st.session_state[key] = store[key]
    elif default is not None:
        st.session_state[key] = default
    return key


def forget(key: str) -> None:
    """Drop a sticky widget value (so that it falls back to its default)."""
    st.session_state.get("_sticky", {}).pop(key, None)
    st.session_state.pop(key, None)


def set_sticky(key: str, value: Any) -> None:
    """Set a sticky widget's value (call before the widget is drawn, e.g. in a callback)."""
    st.session_state.setdefault("_sticky", {})[key] = value
    st.session_state[key] = value


def show_error(exc: BaseException, what_next: str = "") -> None:
    """A user's error as one message (never a traceback); an unexpected one says it is a bug.

    The message is shown as text (it quotes file names, gene ids and URL parameters: no Markdown from
    them is rendered); ``what_next`` is the app's own advice, in Markdown."""
    if isinstance(exc, HmvizError):
        st.error(f"{escape_md(in_page_words(str(exc)))}{' ' + what_next if what_next else ''}")
    else:
        log.error("unexpected error", exc_info=exc)
        st.error(f"Something went wrong inside hmviz (a bug, not your input): {type(exc).__name__}: {escape_md(exc)}. "
                 f"{what_next}".strip())


def image_format() -> str:
    return st.session_state.get("image_format", "png")


def plot(fig, name: str, key: str | None = None, **select):
    """Show a plotly figure; its camera button downloads it as PNG or SVG (sidebar choice). Its titles,
    names and labels are shown as text (:func:`hmviz_app.text.plain_text_figure`): they carry gene,
    mark and cell names from users, and plotly renders some HTML in them. ``select`` (``on_select``,
    ``selection_mode``) makes its points selectable: the selection event is returned."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "figure"
    config = {"displaylogo": False,
              "toImageButtonOptions": {"format": image_format(), "filename": safe, "scale": 2}}
    return st.plotly_chart(plain_text_figure(fig), config=config, key=key, **select)


def csv_button(table, file_name: str, label: str = "Download table (CSV)", key: str | None = None) -> None:
    """A download button for a pandas table as CSV."""
    st.download_button(label, table.to_csv(index=False).encode(), file_name=file_name, mime="text/csv", key=key,
                       icon=":material/download:")

def clean_label(text: str, limit: int = 40) -> str:
    """Letters, digits, ``_`` and ``-`` of ``text`` (a cell or mark label), at most ``limit`` of them."""
    return re.sub(r"[^A-Za-z0-9_-]+", "", str(text))[:limit]



# ---------------------------------------------------------------------------- datasets
@dataclass(frozen=True)
class DataEntry:
    """A dataset the app can use: ``key`` identifies its content (for caches), ``name`` is shown."""

    key: str
    name: str
    dataset: Any  # HistoneDataset | MultiCellDataset
    origin: str  # "sample", "two-cell sample", "upload" or "build"
    report: str | None = None

    @property
    def first(self):
        return getattr(self.dataset, "first", self.dataset)

    @property
    def multi_cell(self) -> bool:
        return hasattr(self.dataset, "cells")

    @property
    def fingerprint(self) -> str:
        """The content hash of the data (what a model card records as ``data.fingerprint``): the part
        of ``key`` after its origin."""
        return self.key.split(":", 1)[1]

    @property
    def shown_name(self) -> str:
        """``name`` as Markdown that shows it as typed (it may hold an uploaded file's name)."""
        return escape_md(self.name)

    def describe(self) -> str:
        first = self.first
        cells = f", {len(self.dataset.cells)} cells" if self.multi_cell else ""
        return f"{first.n_genes:,} genes x {first.n_bins} bins x {first.n_marks} marks{cells}"


def fingerprint(dataset) -> str:
    if hasattr(dataset, "cells"):
        return "+".join(c.fingerprint() for c in dataset.cells.values())
    return dataset.fingerprint()


@st.cache_resource(show_spinner="Loading the sample data...")
def sample_data() -> DataEntry:
    """The bundled sample (3000 synthetic genes with planted rules); shared, never mutated."""
    from hmviz.data import read_dataset

    ds = read_dataset(SAMPLE_DIR)
    ds.source = "hmviz's generated sample data (sample_data)"
    return DataEntry(f"sample:{ds.fingerprint()}", f"Sample data ({ds.n_genes:,} synthetic genes)", ds, "sample")


@st.cache_resource(show_spinner="Loading the two-cell sample...")
def two_cell_sample() -> DataEntry:
    """``sample_data/two_cells``: two generated cell types over the first 1,000 genes of the sample, the
    data the bundled DeepDiff was trained on (so that its card's fingerprint matches)."""
    from hmviz.data import read_dataset

    ds = read_dataset(SAMPLE_DIR / "two_cells")
    ds.source = "hmviz's generated two-cell sample (sample_data/two_cells)"
    for cell in ds.cells.values():
        cell.source = ds.source
    return DataEntry(f"two-cell:{fingerprint(ds)}", f"Two-cell sample ({ds.first.n_genes:,} synthetic genes, "
                     "for DeepDiff)", ds, "two-cell sample")


@st.cache_data(max_entries=8, show_spinner=False)
def gene_labels(data_key: str, _dataset) -> list[str]:
    """``"SYMBOL · ID"`` per gene (the id alone when there is no symbol): what gene pickers show, so
    that typing either an id or a symbol finds the gene."""
    ids = _dataset.gene_ids.tolist()
    if _dataset.symbols is None:
        return ids
    return [f"{s} · {g}" if s not in ("", "nan", "None", g) else g for s, g in zip(_dataset.symbols.tolist(), ids)]


def gene_picker(label: str, data: DataEntry, dataset, key: str, default: int = 0, container=st) -> int:
    """A searchable gene chooser (id or symbol) over the rows of ``dataset``; its choice is sticky
    while the dataset stays (a new dataset resets it to ``default``: :func:`set_data`)."""
    labels = gene_labels(f"{data.key}:{dataset.cell}", dataset)
    owners = st.session_state.setdefault("_picker_data", {})
    here = f"{data.key}:{dataset.cell}"
    sticky(key, default)
    if owners.get(key, here) != here or not 0 <= int(st.session_state.get(key, default)) < dataset.n_genes:
        set_sticky(key, default)  # a choice made on other data means nothing here
    owners[key] = here
    return container.selectbox(escape_md(label), range(dataset.n_genes), format_func=labels.__getitem__, key=key)


def current_data() -> DataEntry:
    entry = st.session_state.get("data")
    return entry if entry is not None else sample_data()


def set_data(entry: DataEntry) -> None:
    """Use ``entry`` from now on; every gene choice made on other data is forgotten (pickers fall back to
    their page's default pair); when the model in use cannot read it, switch to one that can."""
    previous = st.session_state.get("data")
    st.session_state["data"] = entry
    if previous is None or previous.key != entry.key:
        for key in st.session_state.get("_picker_data", {}):
            forget(key)
        st.session_state["_picker_data"] = {}
    model = model_by_key(st.session_state.get("model"))
    if model is None or not fits(model, entry):
        pick = next((m for m in all_models() if fits(m, entry)), None)
        if pick is not None:
            select_model(pick.key)


# ------------------------------------------------------------------------------- models
@dataclass
class ModelEntry:
    """A model the app can use: bundled (shared, read-only) or trained in this session. ``card`` is its typed
    :class:`~hmviz.card.ModelCard` (a card dict given here is typed once)."""

    key: str
    name: str
    path: Path
    card: ModelCard
    bundled: bool
    stamp: float = 0.0

    def __post_init__(self) -> None:
        from hmviz.card import ModelCard

        self.card = ModelCard.of(self.card)

    @property
    def family(self) -> str:
        return self.card.model

    @property
    def task(self) -> str:
        return self.card.task

    @property
    def label(self) -> str:
        return f"{self.name} ({'bundled' if self.bundled else 'trained here'})"

    @property
    def cache_key(self) -> str:
        return f"{self.key}@{self.stamp}"


def _stamp(path: Path) -> float:
    try:
        return max((path / f).stat().st_mtime for f in ("model.safetensors", "model_card.json"))
    except OSError:
        return 0.0


def _read_card(path: Path) -> ModelCard:
    """The model's card, checked once (a damaged card is a :class:`~hmviz.errors.ModelError`); the weights
    are not read."""
    from hmviz.card import load_card

    return load_card(path)


@st.cache_resource(show_spinner=False)
def _bundled_index(folder: str, stamps: tuple[tuple[str, float], ...]) -> list[ModelEntry]:
    entries = []
    for name, stamp in stamps:
        path = Path(folder) / name
        try:
            card = _read_card(path)
        except (OSError, ValueError, HmvizError) as exc:
            log.warning("skipping bundled model %s: %s", path, exc)
            continue
        entries.append(ModelEntry(f"bundled:{name}", name, path, card, True, stamp))
    return entries


def bundled_models() -> list[ModelEntry]:
    """The bundled models (``models/<name>/``), or none when that folder is empty."""
    found = list_bundled(bundled_dir())
    return _bundled_index(str(bundled_dir()), tuple((n, _stamp(p)) for n, p in found.items()))


def session_models() -> dict[str, ModelEntry]:
    """Models trained in this session; a finished training job's model is added (and chosen) here."""
    from hmviz_app.jobs import jobs

    models = st.session_state.setdefault("models", {})
    job = jobs().get("train")
    if job is not None and job.status == "done" and not job.collected:
        job.collected = True
        entry = _session_entry(job.result["path"], job.result["card"], models)
        models[entry.key] = entry
        if fits(entry, current_data()):  # not when the data was changed while it trained
            select_model(entry.key)
    return models


def all_models() -> list[ModelEntry]:
    return [*bundled_models(), *session_models().values()]


def model_by_key(key: str | None) -> ModelEntry | None:
    return next((m for m in all_models() if m.key == key), None)


def fits(entry: ModelEntry, data: DataEntry) -> bool:
    """Whether the model can read the data at all (one cell or two, its marks, its window)."""
    card, first = entry.card, data.first
    if (entry.task == "differential") != data.multi_cell:
        return False
    return set(card.marks) <= set(first.marks) and card.n_bins == first.n_bins and card.bin_size == first.bin_size


def current_model() -> ModelEntry | None:
    """The model chosen in the sidebar; by default the first that fits the current data."""
    entry = model_by_key(st.session_state.get("model"))
    if entry is not None:
        return entry
    models = all_models()
    data = current_data()
    pick = next((m for m in models if fits(m, data)), models[0] if models else None)
    if pick is not None:
        st.session_state["model"] = pick.key
    return pick


def select_model(key: str) -> None:
    """Choose the model every page uses (a plain session key, so that it survives page switches)."""
    st.session_state["model"] = key


def apply_model_param() -> None:
    """A shared link's ``?model=KEY`` chooses the model (once per link; call before the sidebar)."""
    key = st.query_params.get("model")
    if not key or key == st.session_state.get("_url_model"):
        return
    st.session_state["_url_model"] = key
    if model_by_key(key) is not None:
        select_model(key)
        st.session_state.pop("_url_model_missing", None)
    else:
        st.session_state["_url_model_missing"] = key


def note_model_param(key: str) -> None:
    """The page wrote ``?model=KEY`` itself: do not treat it as a new link."""
    st.session_state["_url_model"] = key


@st.cache_resource(max_entries=16, show_spinner="Loading the model...")
def _load(path: str, stamp: float):
    from hmviz.checkpoints import load_model
    from hmviz.inference import choose_device

    configure_torch()
    return load_model(path, device=choose_device("auto"))


def load(entry: ModelEntry):
    """``(model, card)`` of a model entry; shared and cached, never to be mutated."""
    return _load(str(entry.path), entry.stamp)


@st.cache_resource(max_entries=8, show_spinner="Preparing the model's inputs...")
def _explainer(model_key: str, data_key: str, _entry: ModelEntry, _data: DataEntry):
    from hmviz.explain.session import prepare

    model, card = load(_entry)
    return prepare(model, card, _data.dataset)


def explainer(entry: ModelEntry, data: DataEntry):
    """The :class:`hmviz.explain.session.ExplainSession` of a model on a dataset (shared, cached).

    Raises the library's :class:`DataError` when the data does not fit the model."""
    return _explainer(entry.cache_key, data.key, entry, data)


NO_MODEL = "No model yet: train one on the Train page (the bundled models are not installed)."
MISFIT = "Choose another model in the sidebar, or load matching data on the Data page."


def misfit_advice(data: DataEntry) -> str:
    """What to do when the model in use cannot read ``data``: name the models that can, or say that
    none can and point to the Train page."""
    fitting = [m for m in all_models() if fits(m, data)]
    if fitting:
        names = ", ".join(escape_md(m.label) for m in fitting)
        return f"Models that fit this dataset: {names}; choose one in the sidebar's Model list."
    first = data.first
    return (f"No model here fits this dataset ({first.n_marks} marks: {escape_md(', '.join(first.marks))}; "
            f"{first.n_bins} bins of {first.bin_size} bp{', two cells' if data.multi_cell else ''}): train one on "
            "it on the Train page.")


def offer_training(data: DataEntry) -> None:
    """When no model fits ``data``: say so, and link to the Train page."""
    st.info(misfit_advice(data), icon=":material/model_training:")
    st.page_link("pages/train.py", label="Train a model on this dataset", icon=":material/model_training:")


def model_on_data():
    """``(data, model entry, explain session)`` for the page, or a message and ``st.stop()`` when there
    is no model or the data does not fit it. Says what the model was trained on (and warns when it is
    applied to other data) above everything it shows."""
    from hmviz_app.provenance import show_provenance

    data, entry = current_data(), current_model()
    if st.session_state.get("_url_model_missing"):
        st.warning(f"The link names the model '{escape_md(st.session_state['_url_model_missing'])}', which is not "
                   "available here (models trained in another session are not shared); showing the model chosen in "
                   "the sidebar.")
    if entry is None:
        st.info(NO_MODEL)
        st.stop()
    if not any(fits(m, data) for m in all_models()):
        offer_training(data)
        st.stop()
    try:
        session = explainer(entry, data)
    except HmvizError as exc:
        show_error(exc, misfit_advice(data))
        st.stop()
    show_provenance(entry, data)
    return data, entry, session


@st.cache_data(max_entries=16, show_spinner="Scoring every gene...")
def scores(model_key: str, data_key: str, _session):
    """The model's score for every gene (cached per model and dataset)."""
    return _session.scores()


def model_zip(entry: ModelEntry) -> bytes:
    """The model folder (weights + card) as a zip, for download."""
    return _zip(str(entry.path), entry.stamp)


@st.cache_data(max_entries=8, show_spinner=False)
def _zip(path: str, stamp: float) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(Path(path).iterdir()):
            if f.is_file() and not f.name.startswith("."):
                zf.write(f, f.name)
    return buf.getvalue()


def _session_entry(path: Path, card: ModelCard | dict, models: dict[str, ModelEntry]) -> ModelEntry:
    """The entry of a model trained in this session (``card``: the training job's card, typed here)."""
    from hmviz.card import ModelCard

    card = ModelCard.of(card)
    n = sum(1 for m in models.values() if m.family == card.model) + 1
    return ModelEntry(f"session:{path.name}", f"{card.model} #{n}", path, card, False, _stamp(path))


def delete_session_model(key: str) -> None:
    entry = session_models().pop(key, None)
    if entry is not None:
        shutil.rmtree(entry.path, ignore_errors=True)
        if st.session_state.get("model") == key:
            st.session_state.pop("model", None)


def unique_model_name(name: str, exclude: str | None = None) -> str:
    """``name``, or ``name (2)`` ... when another model is called that already."""
    taken = {m.name for m in all_models() if m.key != exclude}
    out, k = name, 2
    while out in taken:
        out, k = f"{name} ({k})", k + 1
    return out
