"""The one training loop for every model: optimiser, epochs, validation, epoch selection, early stopping.

:func:`_run_epochs` trains a model on a task (:mod:`hmviz.tasks`), reports progress through a callback
(:class:`ProgressEvent`), checks a cancel flag between batches (:class:`TrainingCancelled`) and keeps the
epoch with the best validation metric. The workflow around it (data preparation, the model card) is
:func:`hmviz.training.train`.
"""

from __future__ import annotations

import copy
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from hmviz.errors import HmvizError, ModelError
from hmviz.tasks import _Task

log = logging.getLogger(__name__)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) from one number; cuDNN made deterministic.

    For scripts only: it reseeds the whole process. :func:`train` does not call it; a run draws
    from its own generators (:func:`hmviz.models._common.seeded_init`), so runs in threads of one
    process are independent."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    _deterministic_kernels()


def _deterministic_kernels() -> None:
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False


class TrainingCancelled(HmvizError):
    """Training was cancelled by the user; nothing was saved."""


@dataclass
class ProgressEvent:
    """What the progress callback receives, after every batch and at the end of every epoch."""

    stage: str  # "pretrain" (unsupervised stage of SimpleChrome) or "train"
    epoch: int  # 1-based
    epochs: int
    step: int  # batches done in this epoch
    steps: int
    train_loss: float | None
    valid_metric: float | None = None
    metric_name: str = ""
    epoch_end: bool = False
    seconds: float = 0.0


OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
}


def make_optimizer(name: str, params, lr: float, weight_decay: float = 0.0) -> torch.optim.Optimizer:
    """The optimiser a model config names (``config.optimizer``): Adam, AdamW or plain SGD (momentum 0)."""
    if name not in OPTIMIZERS:
        raise ModelError(f"Unknown optimizer '{name}'; use one of {', '.join(OPTIMIZERS)} (--set optimizer=...).")
    return OPTIMIZERS[name](params, lr=lr, weight_decay=weight_decay)


#: What ends training early, by what the epoch is kept on (``select_on``); recorded in the model card.
EARLY_STOPPING = {
    "metric": "no new best epoch (a higher validation metric, or the same at a lower validation loss) "
    "for `patience` epochs, once the model's `min_steps` training steps are done",
    "loss": "no new best validation loss or metric for `patience` epochs, once the model's `min_steps` "
    "training steps are done",
}


#: The validation metric each kind of task keeps its epoch on (``select_on="metric"``).
VALIDATION_METRIC = {"binary": "AUROC", "ranking": "pairwise accuracy", "differential": "R²"}


def epoch_rule(task: str, min_steps: int | None = None, select_on: str = "metric") -> str:
    """The rule that ends training and picks the kept epoch, in words (the Train page's help; the CLI's
    flags name the settings)."""
    metric = VALIDATION_METRIC[task]
    if select_on == "loss":
        kept = "keeps the epoch with the lowest validation loss"
        stop = f"stops once as many epochs as --patience pass in which neither the validation loss nor the {metric} improved"
    else:
        kept = f"keeps the epoch with the best validation {metric} (of equal ones, the lower validation loss)"
        stop = "stops once as many epochs as --patience pass without a new best epoch"
    warm = f", but not before {min_steps} training steps (batches)" if min_steps else ""
    return f"Training {kept} and {stop}{warm}; --epochs is a cap."


def _run_epochs(
    model,
    task: _Task,
    *,
    params,
    lr,
    weight_decay,
    epochs,
    batch_size,
    patience,
    grad_clip,
    seed,
    device,
    amp,
    stage,
    progress,
    should_stop,
    loss_fn=None,
    metric_fn=None,
    history=None,
    select_on="metric",
    optimizer="adam",
    ema_decay=None,
    min_steps=0,
):
    """Train ``params`` of ``model``; keep the state with the best validation metric (or loss).

    ``select_on="metric"``: the epoch with the best validation metric (AUROC, pairwise accuracy,
    R^2) is kept; among epochs with the same metric, the one with the lower validation loss. On
    real data the validation loss and the ranking can disagree for many epochs either way (600
    REMC genes: loss-selection kept epoch 1 in issue 15's runs and ran to the epoch cap in ours;
    docs/training.md).
    ``select_on="loss"``: the lowest validation loss.
    ``metric_fn(model) -> float`` (higher is better) replaces the task's validation when given.
    ``ema_decay``: validate, select and return an exponential moving average of the weights (decay per
    step), which ``torch.optim.swa_utils.AveragedModel`` updates after every step; None trains and
    keeps the weights themselves.
    Early stopping watches what the epoch is kept on. ``select_on="metric"``: training ends after
    ``patience`` epochs without a new best epoch (a higher validation metric, or the same metric at a
    lower loss). A loss that keeps falling slowly after the metric has peaked does not hold training
    open: on 600 REMC genes AttentiveChrome's validation loss still reached new lows at epoch 52 of
    60 (seed 5) while its validation AUROC had peaked at epoch 39, so watching the loss too made the
    epoch cap, not the data, end its runs (``bench/bench_epochs.py``, docs/training.md).
    ``select_on="loss"``: training ends after ``patience`` epochs in which neither the validation loss
    nor the validation metric reached a new best, since the loss can sit at log 2 for several epochs
    while the ranking already improves (a small set, few steps per epoch).
    """
    optimizer = make_optimizer(optimizer, params, lr, weight_decay)
    rng = np.random.default_rng(seed)
    loss_fn = loss_fn or task.loss
    own_metric = metric_fn is None  # the task's validation metric (named, higher or lower is better)
    metric_fn = task.valid_metric if own_metric else metric_fn
    best: tuple[float, ...] = (-math.inf, -math.inf)  # (what the epoch is kept on, tie break)
    best_state, best_epoch, bad = None, 0, 0
    watched_best = {"loss": math.inf, "metric": -math.inf}  # early stopping of select_on="loss" watches both
    use_amp = bool(amp) and device.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    history = history if history is not None else []
    averaged = (
        AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(ema_decay), use_buffers=True)
        if ema_decay is not None
        else None
    )
    kept = model if averaged is None else averaged.module  # what is validated, selected and returned
    steps_done = 0
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        model.train()
        batches = list(task.train_batches(rng, batch_size))
        total, count = 0.0, 0
        for step, batch in enumerate(batches, 1):
            if should_stop is not None and should_stop():
                raise TrainingCancelled("Training was cancelled; nothing was saved.")
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device_type=device.type, dtype=amp_dtype, enabled=use_amp):
                loss = loss_fn(model, batch)
            if not torch.isfinite(loss):
                raise ModelError(
                    f"The training loss became {loss.item()} at epoch {epoch}; lower the learning rate "
                    "(--lr) or check the input values."
                )
            scaler.scale(loss).backward()
            if grad_clip:
                scaler.unscale_(optimizer)
                nn.utils.clip_grad_norm_(params, grad_clip)
            scaler.step(optimizer)
            scaler.update()
            steps_done += 1
            if averaged is not None:
                averaged.update_parameters(model)
            total += float(loss.detach()) * len(batch[0])
            count += len(batch[0])
            if progress is not None:
                progress(ProgressEvent(stage, epoch, epochs, step, len(batches), total / max(count, 1)))
        kept.eval()
        valid_loss = None
        if own_metric:
            metric, valid_loss = task.validate(kept)
            metric = float(metric)
        else:
            metric = float(metric_fn(kept))
        seconds = time.perf_counter() - t0
        record = {
            "stage": stage,
            "epoch": epoch,
            "train_loss": total / max(count, 1),
            task.metric_name if own_metric else "valid_metric": metric,
            "seconds": round(seconds, 3),
        }
        if valid_loss is not None:
            record["valid_loss"] = valid_loss
        history.append(record)
        if progress is not None:
            progress(
                ProgressEvent(
                    stage,
                    epoch,
                    epochs,
                    len(batches),
                    len(batches),
                    total / max(count, 1),
                    metric,
                    task.metric_name if own_metric else "valid_metric",
                    epoch_end=True,
                    seconds=seconds,
                )
            )
        metric_score = metric if task.higher_is_better or not own_metric else -metric
        tie_break = -valid_loss if valid_loss is not None and math.isfinite(valid_loss) else -math.inf
        score: tuple[float, ...] = (
            (-valid_loss, metric_score) if select_on == "loss" and valid_loss is not None else (metric_score, tie_break)
        )
        score = tuple(v if math.isfinite(v) else -math.inf for v in score)
        if best_state is None or score > best:
            best, best_epoch = score, epoch
            best_state = copy.deepcopy(kept.state_dict())
        improved = False
        if select_on == "loss" and valid_loss is not None and valid_loss < watched_best["loss"]:
            watched_best["loss"], improved = valid_loss, True
        if select_on == "loss" and math.isfinite(metric_score) and metric_score > watched_best["metric"]:
            watched_best["metric"], improved = metric_score, True
        bad = 0 if improved or best_epoch == epoch else bad + 1
        if patience and bad >= patience and steps_done >= min_steps:
            log.info("early stop at epoch %d (best epoch %d)", epoch, best_epoch)
            break
    model.load_state_dict(best_state)
    model.eval()
    return best_epoch, best[0]
