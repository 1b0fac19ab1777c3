"""One run of a study: train with the one engine (:func:`hmviz.training.train`), score it, and (for a
cross-cell study) score its model on every other dataset. Runs in whatever process an executor
chooses; returns a plain, JSON-ready record and never raises for a failed run."""

from __future__ import annotations

import dataclasses
import logging
import os
import platform
import socket
import time
import traceback
from collections.abc import Callable, Mapping

import numpy as np

from hmviz.data.dataset import HistoneDataset
from hmviz.errors import HmvizError
from hmviz.studies.spec import Run

log = logging.getLogger(__name__)


def versions() -> dict[str, str]:
    """Versions of the software a run used (one column each in the results table)."""
    import torch

    from hmviz._version import __version__

    return {
        "hmviz": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
    }


def execute_run(
    run: Run,
    train_kw: Mapping,
    datasets: Mapping[str, HistoneDataset],
    cross_cell: bool = False,
    should_stop: Callable[[], bool] | None = None,
) -> dict:
    """Train ``run`` on ``datasets[run.dataset]`` and return its record.

    The record holds the run's identity, ``status`` (``ok`` or ``failed``), every metric of the run
    (``valid_*`` and ``test_*``), ``card`` (its model card), ``cross_cell`` ({other dataset: metrics}),
    ``seconds``, ``device``, ``host``, ``pid`` and ``versions``. A failed run has ``error`` instead of
    metrics. :class:`hmviz.engine.TrainingCancelled` propagates (the study was cancelled).
    """
    from hmviz.engine import TrainingCancelled
    from hmviz.options import TrainOptions
    from hmviz.training import train

    t0 = time.perf_counter()
    record = run.record(host=socket.gethostname(), pid=os.getpid(), versions=versions())
    try:
        options = TrainOptions(
            model=run.model, marks=tuple(run.marks), seed=run.seed, model_overrides=dict(run.settings), **train_kw
        )
        result = train(datasets[run.dataset], options, should_stop=should_stop)
        trained = result.model_card.run
        record.update(
            status="ok",
            metrics=dict(result.metrics),
            card=result.card,
            device=trained.device,
            epochs_run=trained.epochs_run,
            best_epoch=trained.best_epoch,
        )
        if cross_cell:
            record["cross_cell"] = {
                name: cross_cell_metrics(result.model, result.card, datasets[run.dataset], other)
                for name, other in datasets.items()
                if name != run.dataset
            }
    except TrainingCancelled:
        raise
    except HmvizError as exc:  # bad settings for this data, a split with no genes, ...: this run fails alone
        record.update(status="failed", error=str(exc))
    except Exception as exc:  # a bug, or out of memory: recorded with its traceback, the study goes on
        record.update(status="failed", error=f"{type(exc).__name__}: {exc}", traceback=traceback.format_exc())
        log.warning("run %s failed: %s", run.run_id, record["error"])
    record["seconds"] = round(time.perf_counter() - t0, 3)
    return record


def cross_cell_metrics(model, card: dict, train_data: HistoneDataset, other: HistoneDataset) -> dict:
    """Test metrics of a model trained on ``train_data`` when scored on the cell ``other``.

    Genes: the model's own **test genes** (by gene id) that ``other`` has, so that no gene the model
    trained on is scored, and the in-cell (diagonal) and cross-cell numbers cover the same genes. When
    ``other`` shares no gene id with the training data, all its genes are scored. Labels: ``other``'s
    own labels when the model used the file's labels; otherwise the card's label rule (e.g. median)
    fitted on ``other``'s own expression, since every cell has its own expression scale.
    """
    from hmviz.card import ModelCard
    from hmviz.data.targets import LabelRule
    from hmviz.evaluation import evaluation_set, training_split

    split = training_split(card, train_data)
    test_ids = set(split.gene_ids[split.split == "test"]) if split is not None else set()
    rows = np.flatnonzero(np.isin(other.gene_ids, list(test_ids)))
    shared = len(rows) > 0
    target = other.subset(rows) if shared else other
    target = dataclasses.replace(target, split=None)  # evaluation_set then scores every gene given
    typed = ModelCard.of(card)
    if typed.label_rule not in (None, "file"):
        if other.expression is None:
            raise HmvizError(f"The cell {other.source} has no expression values to label by {typed.label_rule}.")
        rule = LabelRule.parse(typed.label_rule)
        typed = dataclasses.replace(typed, label_threshold=rule.fit(other.expression, np.arange(other.n_genes)))
    chosen = evaluation_set(typed, target)
    out: dict[str, float | int | str] = {
        k: float(v) for k, v in chosen.metrics(model).items() if isinstance(v, (int, float, np.floating))
    }
    out["genes"] = chosen.n_genes
    out["genes_are"] = "the model's test genes" if shared else "all genes (no gene shared with the training data)"
    return out
