"""Training a model: the workflow from a dataset and :class:`~hmviz.options.TrainOptions` to a model card.

:func:`train` takes a dataset and :class:`TrainOptions`, and

1. seeds everything from one seed (:func:`seed_everything`),
2. selects the marks, assigns the split (the file's, a seeded random one, or a chromosome hold-out),
3. builds the target on the training genes only (labels by a rule, ranking pairs, or log fold change),
4. fits the input transform (log1p + per-mark scaling) on the training genes only,
5. trains on the train split with early stopping on the validation metric, reporting progress
   through a callback and checking a cancel flag between batches,
6. evaluates the best model once on the test split,

and returns the model with its model card. The pieces: :mod:`hmviz.preparation` (steps 2-4),
:mod:`hmviz.tasks` (targets, loss, metrics), :mod:`hmviz.engine` (the epoch loop of step 5). Applying a
saved model to new data is :func:`hmviz.evaluation.evaluate`; baselines, :func:`hmviz.baselines.train_baseline`.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from hmviz.card import ModelCard
from hmviz.data.dataset import HistoneDataset, MultiCellDataset
from hmviz.data.gene_sets import record_split
from hmviz.engine import EARLY_STOPPING, ProgressEvent, _deterministic_kernels, _run_epochs
from hmviz.errors import HmvizError
from hmviz.inference import EVAL_BATCH, choose_device
from hmviz.options import TrainOptions
from hmviz.preparation import _prepare
from hmviz.tasks import _make_task, class_balance


@dataclass
class TrainResult:
    """A trained model and its card: ``card`` as it is written to ``model_card.json`` (what
    :func:`hmviz.checkpoints.save_model` takes), ``model_card`` the same card typed."""

    model: nn.Module
    card: dict
    history: list[dict]

    @property
    def model_card(self) -> ModelCard:
        """The card as a :class:`ModelCard` (typed from ``card`` on each call, so it follows edits of it)."""
        return ModelCard.of(self.card)

    @property
    def metrics(self) -> dict:
        return dict(self.model_card.metrics)


def train(
    dataset: HistoneDataset | MultiCellDataset,
    options: TrainOptions,
    progress: Callable[[ProgressEvent], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> TrainResult:
    """Train ``options.model`` on ``dataset``; see the module docstring for the steps."""
    from hmviz.model_size import check_model_size
    from hmviz.models import build_model, get_spec
    from hmviz.models._common import attention_impl_used, lstm_impl_used, seeded_init, use_generator
    from hmviz.models.simplechrome import SimpleChrome

    spec = get_spec(options.model)
    options.validate()
    device = choose_device(options.device)
    _deterministic_kernels()
    prep = _prepare(dataset, options, spec)
    dataset, first, rule, threshold, transform = prep.dataset, prep.first, prep.rule, prep.threshold, prep.transform
    fingerprint, source = prep.fingerprint, prep.source

    check_model_size(
        options.model,
        {"n_marks": first.n_marks, "n_bins": first.n_bins, **options.model_overrides},
        "the model settings (--set)",
    )
    # This run's randomness only (weights from its seed, then its own generator): see hmviz.models._common.
    with seeded_init(options.seed, device) as generator:
        model, config = build_model(
            options.model, n_marks=first.n_marks, n_bins=first.n_bins, **options.model_overrides
        )
    use_generator(model, generator[0])
    model.to(device)
    task = _make_task(dataset, options, spec, device, transform, rule, threshold)

    epochs = options.epochs if options.epochs is not None else config.epochs
    batch_size = options.batch_size or config.batch_size
    lr = options.lr or config.lr
    if epochs < 1:
        raise HmvizError(f"--epochs must be at least 1; got {epochs}.")
    if options.patience < 0:
        raise HmvizError(
            f"--patience must be 0 (never stop early) or a positive number of epochs; got {options.patience}."
        )
    if options.select_on not in ("loss", "metric"):
        raise HmvizError(f"--select-on must be 'loss' or 'metric'; got '{options.select_on}'.")
    amp = options.amp if options.amp is not None else device.type == "cuda"
    history: list[dict] = []
    common = dict(
        batch_size=batch_size,
        patience=options.patience,
        seed=options.seed,
        device=device,
        amp=amp,
        progress=progress,
        should_stop=should_stop,
        history=history,
        grad_clip=getattr(config, "grad_clip", None),
        weight_decay=getattr(config, "weight_decay", 0.0),
        ema_decay=getattr(config, "ema_decay", None),
        min_steps=getattr(config, "min_steps", None) or 0,
    )
    t_start = time.perf_counter()
    if isinstance(model, SimpleChrome):
        # SimpleChrome stage 1: the VAE learns from the training genes' signal only, without labels.
        vae_epochs = getattr(config, "vae_epochs", epochs)
        _run_epochs(
            model,
            task,
            params=list(model.vae_parameters()),
            lr=getattr(config, "vae_lr", lr),
            epochs=vae_epochs,
            stage="pretrain",
            loss_fn=lambda m, batch: m.vae_loss(batch[0]),
            metric_fn=lambda m: -_vae_valid_loss(m, task),
            **common,
        )
        for p in model.vae_parameters():
            p.requires_grad_(False)
        params = list(model.head_parameters())
    else:
        params = [p for p in model.parameters() if p.requires_grad]
    task.prepare_model(model)
    select_on = options.select_on
    best_epoch, _ = _run_epochs(
        model,
        task,
        params=params,
        lr=lr,
        epochs=epochs,
        stage="train",
        select_on=select_on,
        optimizer=getattr(config, "optimizer", "adam"),
        **common,
    )
    best_record = next(h for h in history if h["stage"] == "train" and h["epoch"] == best_epoch)
    best_metric = best_record[task.metric_name]
    train_seconds = time.perf_counter() - t_start
    for p in model.parameters():
        p.requires_grad_(True)
    use_generator(model, None)

    metrics = {task.metric_name: best_metric, "best_epoch": best_epoch}
    metrics.update(task.test_metrics(model))
    metrics = {k: (round(float(v), 6) if isinstance(v, (float, np.floating)) else v) for k, v in metrics.items()}
    split_counts = {s: int(len(first.split_indices(s))) for s in ("train", "valid", "test")}
    balance = class_balance(task)
    genes = record_split(first.gene_ids, first.require_split())
    card = {
        "model": spec.name,
        "task": spec.task,
        "description": spec.description,
        "config": dataclasses.asdict(config),
        "marks": list(first.marks),
        "n_bins": first.n_bins,
        "bin_size": first.bin_size,
        "tss_bin": first.tss_bin,
        "strand_aware": first.strand_aware,
        "transform": transform.to_dict(),
        "label_rule": str(rule) if rule is not None else ("file" if spec.task != "differential" else None),
        "label_threshold": threshold,
        "cells": list(options.cells)
        if options.cells
        else (dataset.cell_names[:2] if isinstance(dataset, MultiCellDataset) else None),
        "split": {
            **first.meta.get("split", {}),
            "counts": split_counts,
            **({"class_balance": balance} if balance else {}),
        },
        "genes": genes,
        "training": {
            "epochs_max": epochs,
            "epochs_run": len([h for h in history if h["stage"] == "train"]),
            "best_epoch": best_epoch,
            "selected_on": f"validation {select_on}",
            "optimizer": getattr(config, "optimizer", "adam"),
            "batch_size": batch_size,
            "lr": lr,
            "patience": options.patience,
            "early_stopping": EARLY_STOPPING[select_on],
            "device": str(device),
            "mixed_precision": bool(amp),
            "seconds": round(train_seconds, 2),
            **({"bin_lstm_impl": impl} if (impl := lstm_impl_used(model, device)) else {}),
            **({"attention_impl": pool} if (pool := attention_impl_used(model)) else {}),
            **(
                {"pairs_per_gene": options.pairs_per_gene, "pair_sampling": options.pair_sampling}
                if spec.task == "ranking"
                else {}
            ),
        },
        "seed": options.seed,
        "metrics": metrics,
        "history": history,
        "data": {
            "source": source,
            "fingerprint": fingerprint,
            "genes": first.n_genes,
            "split_fingerprint": genes["split_fingerprint"],
        },
    }
    return TrainResult(model=model, card=card, history=history)


def _vae_valid_loss(model, task) -> float:
    idx = task.valid_idx
    x = task.x if hasattr(task, "x") else task.xa
    with torch.inference_mode():
        losses = [
            float(model.vae_loss(x[torch.as_tensor(idx[s : s + EVAL_BATCH])].to(task.device)))
            for s in range(0, len(idx), EVAL_BATCH)
        ]
    return float(np.mean(losses)) if losses else 0.0


# Names that lived here before the split, and their homes now: old imports keep working, with a warning.
_MOVED = {
    **dict.fromkeys(("EVAL_BATCH", "choose_device", "prepare_inputs", "predict_scores"), "hmviz.inference"),
    **dict.fromkeys(("seed_everything", "TrainingCancelled", "make_optimizer"), "hmviz.engine"),
    **dict.fromkeys(
        ("evaluate", "evaluation_set", "evaluation_genes", "training_split", "EvaluationSet"), "hmviz.evaluation"
    ),
    "train_baseline": "hmviz.baselines",
}


def __getattr__(name: str):
    if name not in _MOVED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib
    import warnings

    warnings.warn(f"hmviz.training.{name} moved to {_MOVED[name]}.{name}", DeprecationWarning, stacklevel=2)
    return getattr(importlib.import_module(_MOVED[name]), name)
