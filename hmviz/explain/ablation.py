"""Mark ablation: which histone marks does a model need?

Two complementary answers, as in the 2025 pairwise-ranking work on histone marks:

* :func:`ablate_retrain` **retrains** the model on every non-empty subset of marks (``2^m - 1``
  subsets, 31 for 5 marks), repeated over seeds, and reports the test metric per subset. This says
  what the *data* allows: a subset that loses nothing carries all the information.
  Runs go in parallel over the CPU cores (one process per core, one torch thread each) and are
  **resumable**: every finished (subset, seed) run is saved in ``out_dir`` as it finishes, and a
  rerun with the same settings only trains what is missing.
* :func:`ablate_mask` **masks** marks of one trained model (replaces them by a baseline) and
  reports the drop in its test metric. Fast (no training), but it says what *this model* relies
  on, which is not the same: a model may lean on a mark that another mark could stand in for.

Tables (pandas, one row per subset of marks the model sees) share these columns:

==============  ==================================================================================
``marks``       the marks the model used, joined by ``+`` in the dataset's order ("H3K4me3+H3K36me3")
``n_marks``     how many
``metric``      the metric's name, e.g. ``test_auroc`` (binary models) or ``test_pairwise_accuracy``
``rank``        1 = best
==============  ==================================================================================

plus ``mean``, ``std`` (over seeds, ``ddof=1``; empty for one seed), ``n_runs``, ``valid_metric``,
``valid_mean`` and one ``seed_<k>`` column per seed (retraining), or ``masked_marks``, ``value`` and
``drop`` (masking). :func:`smallest_within_margin` picks the smallest subset whose metric is within a
margin of all marks; :func:`read_published_ablation` reads the published tables into the same shape.

Out directory of a retraining ablation::

    out_dir/config.json          what decides the results (model, epochs, data fingerprint, ...)
    out_dir/runs/<subset>.seed<k>.<hash>.json   one finished run: its marks, seed and test metrics
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import hashlib
import itertools
import json
import logging
import math
import multiprocessing
import os
import re
import signal
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch

from hmviz.atomic import atomic_output
from hmviz.data.dataset import HistoneDataset, MultiCellDataset
from hmviz.errors import DataError, HmvizError, ModelError
from hmviz.explain._baselines import Baseline, make_baseline
from hmviz.training import TrainingCancelled

log = logging.getLogger(__name__)

SUBSET_SEP = "+"
NONE_MASKED = "(none)"
CONFIG_FILE = "config.json"
RUNS_DIR = "runs"
ABLATION_FORMAT = 1
#: Retraining defaults: short runs with early stopping. On the sample data DeepChrome's validation
#: AUROC peaks within 2-6 epochs, so 20 epochs with patience 3 lose nothing and keep 31 subsets in minutes.
DEFAULT_EPOCHS = 20
DEFAULT_PATIENCE = 3
DEFAULT_MARGIN = 0.01

MaskSubsets = Literal["single", "leave-one-out", "all"]
MASK_SUBSETS: tuple[str, ...] = ("single", "leave-one-out", "all")
MASK_BASELINES: tuple[str, ...] = ("train_mean", "zeros")

#: The metric reported by default, per model task (the family of its early-stopping metric).
DEFAULT_METRIC = {"binary": "test_auroc", "ranking": "test_pairwise_accuracy"}


class AblationCancelled(TrainingCancelled):
    """The ablation was cancelled; the runs that finished are saved and a rerun resumes from them."""


@dataclass(frozen=True)
class AblationProgress:
    """What the progress callback of :func:`ablate_retrain` receives once per (subset, seed) run.

    ``done`` counts finished runs including those found in ``out_dir`` (``from_cache=True``, reported
    first); ``value`` is the run's test metric.
    """

    done: int
    total: int
    marks: tuple[str, ...]
    seed: int
    metric: str
    value: float | None
    seconds: float
    from_cache: bool


# ----------------------------------------------------------------------------- subsets
def subset_name(marks: Sequence[str]) -> str:
    """``("H3K4me3", "H3K36me3") -> "H3K4me3+H3K36me3"``."""
    return SUBSET_SEP.join(marks)


def mark_subsets(marks: Sequence[str]) -> list[tuple[str, ...]]:
    """Every non-empty subset of ``marks`` (``2^m - 1``): all marks first, then smaller and smaller.

    Within a size, subsets follow :func:`itertools.combinations`, and each subset keeps the order of
    ``marks``, so names are stable for a given mark order.
    """
    marks = tuple(str(m) for m in marks)
    if not marks:
        raise DataError("Mark ablation needs at least one mark.")
    if len(set(marks)) != len(marks):
        raise DataError(f"Mark names must be unique; got {', '.join(marks)}.")
    bad = [m for m in marks if SUBSET_SEP in m]
    if bad:
        raise DataError(f"Mark names may not contain '{SUBSET_SEP}' (it joins subset names); rename {', '.join(bad)}.")
    return [c for k in range(len(marks), 0, -1) for c in itertools.combinations(marks, k)]


def _mask_sets(marks: tuple[str, ...], subsets) -> list[tuple[str, ...]]:
    """The sets of marks to mask, the empty set (nothing masked, the reference) first."""
    if isinstance(subsets, str):
        if subsets == "single":  # keep one mark, mask the others
            masked = [tuple(m for m in marks if m != keep) for keep in marks]
        elif subsets == "leave-one-out":  # mask one mark, keep the others
            masked = [(m,) for m in marks]
        elif subsets == "all":  # every non-empty kept subset, like retraining
            masked = [tuple(m for m in marks if m not in keep) for keep in mark_subsets(marks)]
        else:
            raise HmvizError(f"Unknown subsets '{subsets}'; use one of {', '.join(MASK_SUBSETS)}, "
                             "or give the sets of marks to mask.")
    else:
        masked = []
        for group in subsets:
            group = (group,) if isinstance(group, str) else tuple(group)
            missing = [m for m in group if m not in marks]
            if missing:
                raise DataError(f"Cannot mask {', '.join(missing)}: the model uses {', '.join(marks)}.")
            masked.append(tuple(m for m in marks if m in group))
    if any(len(m) == len(marks) for m in masked):
        raise HmvizError("Masking every mark leaves the model nothing to see; keep at least one mark.")
    out = [()]
    for m in masked:
        if m not in out:
            out.append(m)
    return out


# ----------------------------------------------------------------------------- tables
def _rank(values: pd.Series) -> pd.Series:
    return values.rank(ascending=False, method="min").astype("Int64")


def value_column(table: pd.DataFrame) -> str:
    """The column holding a table's metric: ``mean`` (retraining, published) or ``value`` (masking)."""
    for col in ("mean", "value"):
        if col in table.columns:
            return col
    raise DataError("This is not an ablation table: it has neither a 'mean' nor a 'value' column.")


def _summarize(records: Sequence[dict], universe: tuple[str, ...], metric: str,
               seeds: Sequence[int] | None = None) -> pd.DataFrame:
    """One row per subset with finished runs, ranked by the mean test metric over seeds."""
    seeds = sorted({int(r["seed"]) for r in records}) if seeds is None else sorted(int(s) for s in seeds)
    by_subset: dict[tuple[str, ...], dict[int, dict]] = {}
    for r in records:
        by_subset.setdefault(tuple(r["marks"]), {})[int(r["seed"])] = r["metrics"]
    rows = []
    for subset in mark_subsets(universe):
        runs = by_subset.get(subset)
        if not runs:
            continue
        missing = [s for s, m in runs.items() if metric not in m]
        if missing:
            have = ", ".join(sorted(k for k in runs[missing[0]] if k.startswith("test_")))
            raise DataError(f"The runs have no '{metric}'; choose one of: {have}.")
        test = np.array([runs[s][metric] for s in seeds if s in runs], dtype=np.float64)
        valid_keys = sorted(k for k in next(iter(runs.values())) if k.startswith("valid_"))
        valid_metric = valid_keys[0] if valid_keys else ""
        valid = np.array([runs[s].get(valid_metric, np.nan) for s in seeds if s in runs], dtype=np.float64)
        row = {
            "marks": subset_name(subset), "n_marks": len(subset), "metric": metric,
            "mean": float(test.mean()), "std": float(test.std(ddof=1)) if test.size > 1 else np.nan,
            "n_runs": int(test.size), "valid_metric": valid_metric,
            "valid_mean": float(np.nanmean(valid)) if np.isfinite(valid).any() else np.nan,
        }
        for s in seeds:
            row[f"seed_{s}"] = runs[s][metric] if s in runs else np.nan
        rows.append(row)
    columns = ["marks", "n_marks", "metric", "mean", "std", "n_runs", "valid_metric", "valid_mean",
               *(f"seed_{s}" for s in seeds)]
    table = pd.DataFrame(rows, columns=columns)
    table["rank"] = _rank(table["mean"])
    return table.sort_values(["rank", "n_marks"], kind="stable").reset_index(drop=True)


def smallest_within_margin(table: pd.DataFrame, margin: float = DEFAULT_MARGIN) -> pd.Series:
    """The row of the smallest subset whose metric is at least (all marks' metric - ``margin``).

    ``margin`` is in the metric's units (0.01 = one point of AUROC or pairwise accuracy). Among
    subsets of the same size the best wins. The all-marks row (the most marks) is the reference; it
    qualifies itself, so there is always an answer. Works on retraining, masking and published tables.
    """
    if not (isinstance(margin, (int, float)) and math.isfinite(margin) and margin >= 0):
        raise HmvizError(f"The margin must be a number >= 0 in the metric's units (e.g. 0.01); got {margin!r}.")
    if table.empty:
        raise DataError("The ablation table is empty; no subset has a finished run yet.")
    col = value_column(table)
    reference = reference_row(table)
    ok = table[table[col] >= reference[col] - margin - 1e-12]
    ok = ok.sort_values(["n_marks", col], ascending=[True, False], kind="stable")
    return ok.iloc[0]


def reference_row(table: pd.DataFrame) -> pd.Series:
    """The row with every mark (the most marks; for a masking table, nothing masked)."""
    if table.empty:
        raise DataError("The ablation table is empty; no subset has a finished run yet.")
    top = table[table["n_marks"] == table["n_marks"].max()]
    if len(top) != 1:
        raise DataError("The ablation table has no single all-marks row to compare with; run (or finish) "
                        "the subset with every mark.")
    return top.iloc[0]


# ------------------------------------------------------------------------ retraining
def _json_write_atomic(path: Path, obj) -> None:
    with atomic_output(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=1, sort_keys=True)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())


def _run_file(runs_dir: Path, subset: tuple[str, ...], seed: int) -> Path:
    name = subset_name(subset)
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", name)[:120]
    digest = hashlib.sha1(f"{name}\x1f{seed}".encode()).hexdigest()[:8]
    return runs_dir / f"{safe}.seed{seed}.{digest}.json"


def _read_runs(runs_dir: Path) -> list[dict]:
    records = []
    if not runs_dir.is_dir():
        return records
    for path in sorted(runs_dir.glob("*.json")):
        try:
            r = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            r, why = None, str(exc)
        else:
            why = "no marks, seed or metrics"
        if not (isinstance(r, dict) and isinstance(r.get("marks"), list) and isinstance(r.get("seed"), int)
                and isinstance(r.get("metrics"), dict)):
            log.warning("Ignoring %s (not a finished ablation run: %s); it will be recomputed.", path, why)
            continue
        records.append(r)
    return records


def _split_fingerprint(dataset: HistoneDataset) -> str | None:
    if dataset.split is None:
        return None
    return hashlib.sha256("\x1f".join(dataset.split.tolist()).encode()).hexdigest()[:16]


def _check_config(out_dir: Path, config: dict) -> None:
    """Write ``config.json``, or refuse when the one there was made with other settings."""
    path = out_dir / CONFIG_FILE
    if not path.exists():
        _json_write_atomic(path, config)
        return
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise HmvizError(f"{path} is not a readable ablation config ({exc}); choose another output directory "
                         "or delete that one to start over.") from None
    diffs = [f"{k}: {old.get(k)!r} there, {config[k]!r} now" for k in config if k != "data" and old.get(k) != config[k]]
    for k in ("fingerprint", "split_fingerprint"):
        if old.get("data", {}).get(k) != config["data"][k]:
            what = "data" if k == "fingerprint" else "train/valid/test split"
            diffs.append(f"{what}: {old.get('data', {}).get(k)} there, {config['data'][k]} now (different {what})")
    if diffs:
        raise HmvizError(
            f"{out_dir} holds ablation results made with other settings ({'; '.join(diffs)}). Their results "
            "cannot be mixed with this run's: choose another output directory, rerun with the same settings to "
            "resume, or delete that directory to start over."
        )


@contextlib.contextmanager
def _exclusive(out_dir: Path) -> Iterator[None]:
    """One writer per out_dir at a time (an advisory lock; released when the process ends)."""
    import fcntl

    with open(out_dir / ".lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise HmvizError(f"Another ablation is writing to {out_dir} right now; wait for it to finish or "
                             "choose another output directory.") from None
        yield


# Set in each worker process by _init_worker: the dataset (sent once per worker, not per run) and
# the shared cancel flag.
_WORKER_DATASET: HistoneDataset | None = None
_WORKER_STOP = None


def _init_worker(dataset: HistoneDataset, stop_event) -> None:
    global _WORKER_DATASET, _WORKER_STOP
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the parent sets the stop flag instead
    torch.set_num_threads(1)
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(1)
    _WORKER_DATASET, _WORKER_STOP = dataset, stop_event


def _train_one(model: str, marks: tuple[str, ...], seed: int, options: dict,
               dataset: HistoneDataset | None = None, should_stop: Callable[[], bool] | None = None) -> dict:
    """Train one (subset, seed) run and return its record (in a worker, or in this process)."""
    from hmviz.training import TrainOptions, train

    if dataset is None:
        dataset = _WORKER_DATASET
        should_stop = _WORKER_STOP.is_set if _WORKER_STOP is not None else None
    t0 = time.perf_counter()
    result = train(dataset, TrainOptions(model=model, marks=tuple(marks), seed=int(seed), device="cpu", **options),
                   should_stop=should_stop)
    return {
        "marks": list(marks), "seed": int(seed), "metrics": result.metrics,
        "epochs_run": result.card["training"]["epochs_run"], "best_epoch": result.card["training"]["best_epoch"],
        "seconds": round(time.perf_counter() - t0, 2),
    }


def default_n_jobs() -> int:
    """The CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def ablate_retrain(
    dataset: HistoneDataset,
    model: str = "deepchrome",
    seeds: Sequence[int] = (1, 2, 3),
    epochs: int = DEFAULT_EPOCHS,
    out_dir: str | Path | None = None,
    n_jobs: int | None = None,
    progress: Callable[[AblationProgress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    *,
    marks: Sequence[str] | None = None,
    patience: int = DEFAULT_PATIENCE,
    batch_size: int | None = None,
    lr: float | None = None,
    label_rule: str | None = None,
    split: str = "auto",
    metric: str | None = None,
) -> pd.DataFrame:
    """Retrain ``model`` on every non-empty subset of ``marks`` for every seed; one row per subset.

    Args:
        dataset: a single-cell dataset (signal genes x bins x marks). Its split is used when it has
            one (``split="auto"``), otherwise a seeded random split per seed.
        model: a single-cell model name (``deepchrome``, ``ranker-deepchrome``, ...).
        seeds: one run per subset and seed; a seed sets the initialisation, the batch order and a
            random split.
        epochs, patience: at most ``epochs`` epochs, early stopping after ``patience`` epochs
            without validation improvement (short defaults, see :data:`DEFAULT_EPOCHS`).
        out_dir: where finished runs are saved (resumable). ``None``: a temporary directory that is
            deleted afterwards (nothing resumable).
        n_jobs: worker processes (default: the CPU cores); each uses one torch thread. ``1`` trains
            in this process.
        progress: called once per run (:class:`AblationProgress`), from this process.
        should_stop: polled while training; when it returns True the workers stop at their next
            batch and :class:`AblationCancelled` is raised (finished runs stay saved).
        marks: the marks to ablate over (default: all marks of the dataset, in its order).
        batch_size, lr, label_rule, split: as in :class:`hmviz.training.TrainOptions`.
        metric: the test metric to report (default ``test_auroc`` for binary models,
            ``test_pairwise_accuracy`` for rankers). Every test metric of every run is saved, so
            another metric can be tabulated later with :func:`load_ablation` without retraining.

    Returns:
        The table described in the module docstring, sorted by rank (best first), with
        ``attrs``: ``model``, ``out_dir``, ``computed`` and ``reused`` run counts, ``seconds``.

    Raises:
        HmvizError: bad arguments; ``out_dir`` made with other settings (model, marks, epochs,
        patience, batch size, learning rate, label rule, split, data); another process writing there.
        AblationCancelled: ``should_stop`` returned True.
    """
    from hmviz.models import get_spec

    spec = get_spec(model)
    if spec.task not in DEFAULT_METRIC:
        raise ModelError(f"Mark ablation retrains single-cell models (binary or ranking); {spec.name} is a "
                         f"{spec.task} model.")
    if isinstance(dataset, MultiCellDataset):
        raise DataError(f"{spec.name} models one cell type; give the data of one cell.")
    universe = tuple(dataset.marks) if marks is None else tuple(str(m) for m in marks)
    dataset.select_marks(list(universe))  # unknown marks: the dataset's clear error
    subsets = mark_subsets(universe)
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise HmvizError(f"Give one or more distinct seeds; got {seeds}.")
    if int(epochs) < 1 or int(patience) < 0:
        raise HmvizError(f"epochs must be at least 1 and patience at least 0; got {epochs} and {patience}.")
    n_jobs = default_n_jobs() if n_jobs is None else int(n_jobs)
    if n_jobs < 1:
        raise HmvizError(f"n_jobs must be at least 1; got {n_jobs}.")
    metric = metric or DEFAULT_METRIC[spec.task]
    options = {"epochs": int(epochs), "patience": int(patience), "batch_size": batch_size, "lr": lr,
               "label_rule": label_rule, "split": split}
    config = {"format": ABLATION_FORMAT, "model": spec.name, "marks": list(universe), **options,
              "data": {"fingerprint": dataset.fingerprint(), "split_fingerprint": _split_fingerprint(dataset),
                       "genes": dataset.n_genes, "source": str(dataset.source)}}

    with contextlib.ExitStack() as stack:
        if out_dir is None:
            out = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hmviz-ablation-")))
        else:
            out = Path(out_dir)
            if out.exists() and not out.is_dir():
                raise HmvizError(f"{out} exists and is not a directory; choose another output directory.")
            out.mkdir(parents=True, exist_ok=True)
        stack.enter_context(_exclusive(out))
        _check_config(out, config)
        runs_dir = out / RUNS_DIR
        runs_dir.mkdir(exist_ok=True)
        t0 = time.perf_counter()
        wanted = {(s, seed) for s in subsets for seed in seeds}
        records = {(tuple(r["marks"]), int(r["seed"])): r for r in _read_runs(runs_dir)}
        cached = [records[k] for k in sorted(wanted & set(records), key=lambda k: (k[1], subsets.index(k[0])))]
        # Seed-major order: a cancelled ablation still has complete tables for its first seeds.
        pending = [(s, seed) for seed in seeds for s in subsets if (s, seed) not in records]
        total = len(wanted)
        done = 0

        def finished(record: dict, from_cache: bool) -> None:
            nonlocal done
            done += 1
            if not from_cache:
                key = (tuple(record["marks"]), int(record["seed"]))
                _json_write_atomic(_run_file(runs_dir, *key), record)
                records[key] = record
            if progress is not None:
                progress(AblationProgress(done, total, tuple(record["marks"]), int(record["seed"]), metric,
                                          record["metrics"].get(metric), float(record.get("seconds", 0.0)),
                                          from_cache))

        for r in cached:
            finished(r, True)
        if pending:
            log.info("ablation: %d of %d runs to train (%d found in %s), %d worker(s)", len(pending), total,
                     len(cached), out, min(n_jobs, len(pending)))
            if n_jobs == 1 or len(pending) == 1:
                _run_here(dataset, spec.name, pending, options, finished, should_stop)
            else:
                _run_pool(dataset, spec.name, pending, options, finished, should_stop, min(n_jobs, len(pending)))
        table = _summarize([records[k] for k in wanted if k in records], universe, metric, seeds)
        table.attrs.update({"model": spec.name, "out_dir": None if out_dir is None else str(out),
                            "computed": len(pending), "reused": len(cached),
                            "seconds": round(time.perf_counter() - t0, 2)})
        return table


def _cancelled(done: int, total: int) -> AblationCancelled:
    return AblationCancelled(f"Ablation cancelled after {done} of {total} runs; the finished runs are saved and "
                             "rerunning with the same output directory resumes from them.")


def _run_here(dataset, model, pending, options, finished, should_stop) -> None:
    for i, (subset, seed) in enumerate(pending):
        try:
            record = _train_one(model, subset, seed, options, dataset=dataset, should_stop=should_stop)
        except TrainingCancelled:
            raise _cancelled(i, len(pending)) from None
        finished(record, False)


def _run_pool(dataset, model, pending, options, finished, should_stop, n_workers: int) -> None:
    # "spawn": fresh interpreters, never a fork of a process whose torch already started threads.
    ctx = multiprocessing.get_context("spawn")
    stop = ctx.Event()
    n_done = 0
    with cf.ProcessPoolExecutor(max_workers=n_workers, mp_context=ctx, initializer=_init_worker,
                                initargs=(dataset, stop)) as pool:
        futures = [pool.submit(_train_one, model, subset, seed, options) for subset, seed in pending]
        waiting = set(futures)
        try:
            while waiting:
                ready, waiting = cf.wait(waiting, timeout=0.2, return_when=cf.FIRST_COMPLETED)
                for fut in ready:
                    if fut.cancelled():
                        continue
                    exc = fut.exception()
                    if isinstance(exc, TrainingCancelled) and stop.is_set():
                        continue
                    if isinstance(exc, cf.process.BrokenProcessPool):
                        raise ModelError("An ablation worker process died (out of memory?); finished runs are "
                                         "saved. Rerun with fewer --jobs to resume.") from exc
                    if exc is not None:
                        raise exc
                    finished(fut.result(), False)
                    n_done += 1
                if not stop.is_set() and should_stop is not None and should_stop():
                    stop.set()
                    for fut in waiting:
                        fut.cancel()
            if stop.is_set():
                raise _cancelled(n_done, len(pending))
        except BaseException:
            stop.set()  # running workers stop at their next batch
            for fut in futures:
                fut.cancel()
            raise


def load_ablation(out_dir: str | Path, metric: str | None = None, seeds: Sequence[int] | None = None) -> pd.DataFrame:
    """The table of the finished runs saved in ``out_dir`` by :func:`ablate_retrain` (all seeds found,
    or ``seeds``), for ``metric`` (default: the model's), without training anything."""
    out = Path(out_dir)
    try:
        config = json.loads((out / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise DataError(f"{out} holds no ablation results (no readable {CONFIG_FILE}); run an ablation there "
                        "first ('python -m hmviz ablate').") from None
    from hmviz.models import get_spec

    metric = metric or DEFAULT_METRIC.get(get_spec(config["model"]).task, "test_auroc")
    universe = tuple(config["marks"])
    records = [r for r in _read_runs(out / RUNS_DIR)
               if set(r["marks"]) <= set(universe) and (seeds is None or r["seed"] in seeds)]
    table = _summarize(records, universe, metric, seeds)
    table.attrs.update({"model": config["model"], "out_dir": str(out)})
    return table


# --------------------------------------------------------------------------- masking
def _mask_baseline(baseline: str | Baseline, card: dict, x: torch.Tensor, train_rows: np.ndarray | None) -> Baseline:
    n_bins, n_marks = x.shape[1:]
    if isinstance(baseline, Baseline):
        if baseline.is_distribution or baseline.values.shape != (n_bins, n_marks):
            raise HmvizError(f"A masking baseline is one input shaped ({n_bins}, {n_marks}); got "
                             f"{baseline.values.shape}.")
        return baseline
    if baseline == "zeros":
        return make_baseline("zeros", transform=card["transform"], shape=(n_bins, n_marks))
    if baseline != "train_mean":
        raise HmvizError(f"Unknown masking baseline '{baseline}'; use one of {', '.join(MASK_BASELINES)}.")
    if train_rows is not None:
        return make_baseline("train_mean", reference_inputs=x[torch.as_tensor(train_rows)])
    if card["transform"].get("scaling") == "standard":
        # Standardised per mark on the training genes: their mean of every mark is 0 in the input space.
        return Baseline("train_mean", "per-mark mean of the model's training genes over all bins (0 after the "
                        "model card's standardisation)", np.zeros((n_bins, n_marks), dtype=np.float32))
    raise DataError("This is not the model's training data and its card does not store the training genes' "
                    f"mean (scaling '{card['transform'].get('scaling')}'); mask with baseline 'zeros' instead, or "
                    "give the training data.")


def ablate_mask(
    model: torch.nn.Module,
    card: dict,
    dataset: HistoneDataset,
    subsets: MaskSubsets | Sequence[Sequence[str]] = "single",
    baseline: str | Baseline = "train_mean",
    metric: str | None = None,
) -> pd.DataFrame:
    """Replace marks of a trained model's input by a baseline and measure the metric; no retraining.

    Args:
        model, card: a trained single-cell model and its model card (``load_model``). Never modified.
        dataset: the data to evaluate on (must hold the card's marks, by name, and its window).
        subsets: which marks to mask: ``"single"`` keeps one mark at a time (the others masked),
            ``"leave-one-out"`` masks one mark at a time, ``"all"`` keeps every non-empty subset
            (``2^m - 1`` rows, as retraining); or explicit sets of marks to mask. The row with nothing
            masked is always included (its metric is the model's own).
        baseline: what a masked mark is replaced by, in the model's input space:
            ``"train_mean"``: the per-bin, per-mark mean of the model's training genes
            (:func:`hmviz.explain.make_baseline`); when the data is not the training data, the
            per-mark training mean from the card's transform statistics (0 after standardisation).
            ``"zeros"``: no reads, i.e. the card's transform applied to 0 (not 0 itself).
            Or a :class:`~hmviz.explain.Baseline` shaped (bins, marks).
        metric: default ``test_auroc`` (binary) or ``test_pairwise_accuracy`` (rankers).

    Genes evaluated: those :func:`hmviz.training.evaluate` scores (:func:`hmviz.training.evaluation_set`),
    so the unmasked row equals ``evaluate``'s metric: the model's **test split** when ``dataset`` is its
    training data (same fingerprint as ``card["data"]["fingerprint"]``; the split is rebuilt from
    ``card["split"]``), otherwise the dataset's own test split when it has one, otherwise **all genes**
    of ``dataset``. ``attrs["evaluated_on"]`` says which.

    Returns:
        One row per masked set: ``marks`` (kept), ``masked_marks`` (``"(none)"`` for the reference),
        ``n_marks``, ``metric``, ``value``, ``drop`` (reference - value), ``rank``; sorted best
        first. ``attrs``: ``evaluated_on``, ``genes_evaluated``, ``baseline`` (its description).
    """
    from hmviz.explain._model_view import eval_view, model_device, require_module
    from hmviz.models import get_spec
    from hmviz.training import evaluation_set

    spec = get_spec(card["model"])
    if spec.task not in DEFAULT_METRIC:
        raise ModelError(f"Masking is implemented for single-cell models (binary or ranking); {spec.name} is a "
                         f"{spec.task} model.")
    if isinstance(dataset, MultiCellDataset):
        raise DataError(f"{spec.name} models one cell type; give the data of one cell.")
    model = eval_view(require_module(model))
    marks = tuple(card["marks"])
    mask_sets = _mask_sets(marks, subsets)
    chosen = evaluation_set(card, dataset, model_device(model))  # the genes `evaluate` scores
    x = chosen.inputs  # marks selected by name, window checked, the card's transform applied
    train_rows = chosen.train_index
    base = _mask_baseline(baseline, card, x, train_rows)
    base_values = torch.as_tensor(base.values, dtype=x.dtype)
    metric = metric or DEFAULT_METRIC[spec.task]

    rows = []
    for masked in mask_sets:
        cols = [marks.index(m) for m in masked]
        xm = x
        if cols:
            xm = x.clone()
            xm[:, :, cols] = base_values[:, cols]
        metrics = chosen.metrics(model, xm)
        if metric not in metrics:
            raise HmvizError(f"Unknown metric '{metric}' for this model and data; choose one of: "
                             f"{', '.join(sorted(metrics))}.")
        kept = tuple(m for m in marks if m not in masked)
        rows.append({"marks": subset_name(kept), "masked_marks": subset_name(masked) if masked else NONE_MASKED,
                     "n_marks": len(kept), "metric": metric, "value": float(metrics[metric])})
    table = pd.DataFrame(rows)
    table["drop"] = table["value"].iloc[0] - table["value"]
    table["rank"] = _rank(table["value"])
    table = table.sort_values(["rank", "n_marks"], ascending=[True, False], kind="stable").reset_index(drop=True)
    table.attrs.update({"evaluated_on": chosen.evaluated_on, "genes_evaluated": chosen.n_genes,
                        "baseline": f"{base.name}: {base.description}", "model": spec.name})
    return table


# ------------------------------------------------------------------------- published
def read_published_ablation(path: str | Path, cell: str | None = None, model: str | None = None) -> pd.DataFrame:
    """A published mark-subset table (``/work/shared/data/published/pairwise_*.csv``) as an ablation table.

    The pairwise-ranking work reports pairwise accuracy in percent; here it becomes a fraction under
    ``metric = "test_pairwise_accuracy"`` so that :func:`smallest_within_margin` and the ablation chart
    apply. Mark names joined by ``-`` there are joined by ``+`` here. ``cell`` picks the cell of a table
    with per-cell columns (``E066``, ``HepG2``); ``model`` the model of a table with a ``model`` column.
    """
    path = Path(path)
    try:
        raw = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"Cannot read {path} as a CSV table ({exc}).") from None
    name_col = next((c for c in ("histone_marks", "histone_marker") if c in raw.columns), None)
    if name_col is None:
        raise DataError(f"{path} has no 'histone_marks' or 'histone_marker' column; is it a published ablation table?")
    if "model" in raw.columns:
        models = sorted(raw["model"].astype(str).unique())
        if model not in models:
            raise DataError(f"{path.name} holds several models; choose one with model=: {', '.join(models)}.")
        raw = raw[raw["model"].astype(str) == model]
    cells = sorted(c[: -len("_test_acc")] for c in raw.columns
                   if c.endswith("_test_acc") and f"{c[: -len('_test_acc')]}_val_acc" in raw.columns)
    if cells:
        if cell not in cells:
            raise DataError(f"{path.name} holds several cells; choose one with cell=: {', '.join(cells)}.")
        test, valid, std = raw[f"{cell}_test_acc"], raw[f"{cell}_val_acc"], None
    elif "test_accuracy_mean" in raw.columns:
        test, valid, std = raw["test_accuracy_mean"], raw["val_accuracy_mean"], raw["test_accuracy_std"]
    elif "test_accuracy" in raw.columns:
        test, valid, std = raw["test_accuracy"], raw.get("val_accuracy_avg"), None
    else:
        raise DataError(f"{path.name} has no test accuracy column this reader knows.")
    names = raw[name_col].astype(str).str.split("-")
    table = pd.DataFrame({
        "marks": names.map(subset_name), "n_marks": names.map(len), "metric": "test_pairwise_accuracy",
        "mean": test.to_numpy(dtype=float) / 100.0,
        "std": std.to_numpy(dtype=float) / 100.0 if std is not None else np.nan,
        "n_runs": np.nan, "valid_metric": "valid_pairwise_accuracy",
        "valid_mean": valid.to_numpy(dtype=float) / 100.0 if valid is not None else np.nan,
    })
    table["rank"] = _rank(table["mean"])
    table = table.sort_values(["rank", "n_marks"], kind="stable").reset_index(drop=True)
    table.attrs["source"] = f"published: {path.name}" + (f" ({cell})" if cell else "") + (f" ({model})" if model else "")
    return table
