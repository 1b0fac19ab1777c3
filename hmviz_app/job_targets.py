"""What the app's long jobs run, in their own processes (see :mod:`hmviz_app.jobs`): module-level
functions with picklable arguments, so that a spawned process can import and call them.

Each takes ``job`` first (a :class:`hmviz_app.jobs.JobLink` in the job's process): progress goes to
``job.report``, ``job.should_stop`` is the library's ``should_stop`` (between batches: it also pauses
while a page holds the jobs, :class:`hmviz_app.job_process.PageHold`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

#: Progress within an epoch is sent at most this often (seconds); every epoch's end is sent.
STEP_REPORT_S = 0.25


def train_and_save(job: Any, dataset: Any, options: Any, out: Path) -> dict:
    """Train ``options`` on ``dataset``, save the model to ``out`` (atomically); ``{"path", "card"}``.

    Reports every epoch's end with its row (stage, epoch, training loss, validation metric) and the
    progress within an epoch at most every :data:`STEP_REPORT_S`.
    """
    from hmviz.checkpoints import save_model
    from hmviz.training import train

    sent = [0.0]

    def progress(ev) -> None:
        now = time.monotonic()
        if not ev.epoch_end and now - sent[0] < STEP_REPORT_S:
            return
        sent[0] = now
        row = None
        if ev.epoch_end:
            row = {"stage": ev.stage, "epoch": ev.epoch, "train_loss": ev.train_loss,
                   (ev.metric_name or "valid_metric"): ev.valid_metric}
        job.report(ev, row)

    result = train(dataset, options, progress=progress, should_stop=job.should_stop)
    save_model(result.model, result.card, out)
    return {"path": out, "card": result.card}


def ablation_retrain(job: Any, dataset: Any, family: str, options: dict):
    """:func:`hmviz.studies.ablation.ablate_retrain` of ``family`` on ``dataset`` with ``options`` (its
    keyword arguments); every finished run is reported."""
    from hmviz.studies.ablation import ablate_retrain

    return ablate_retrain(dataset, family, progress=job.report, should_stop=job.should_stop, **options)


def fit_baselines(job: Any, dataset: Any, card: Any) -> list[dict]:
    """The baselines trained and tested on ``dataset`` as the model of ``card`` was
    (:func:`hmviz.comparison.baselines_like`), each reported as it finishes, with its test genes' scores
    for a paired comparison with the model (``scores_by_gene``)."""
    from hmviz.comparison import baselines_like

    return baselines_like(card, dataset, report=job.report)
