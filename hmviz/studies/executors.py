"""Where a study's runs execute: in this process, in local worker processes, or on a Ray cluster.

Every executor has one method, ``map(runs, job, on_record, should_stop)``: it executes
:func:`hmviz.studies.work.execute_run` for each run and calls ``on_record(record)`` in the calling
process as each run finishes (in finishing order), so the runner is the only writer of results.
``should_stop()`` is polled; when it returns True, running runs stop at their next batch and
:class:`StudyCancelled` is raised.

* :class:`InlineExecutor`: one run after another in this process (``--workers 1``).
* :class:`LocalExecutor`: a :class:`concurrent.futures.ProcessPoolExecutor` of fresh ("spawn")
  processes, one torch thread each; the datasets are sent once per worker process. Ctrl-C stops the
  workers at their next batch and waits for them, so nothing is left behind (no leaked semaphores).
* :class:`RayExecutor`: each run is a Ray task declaring ``num_cpus``/``num_gpus`` (fractions allowed);
  each dataset is put once in the object store (``ray.put``) and passed by reference, so it travels to
  each node once, not once per run; results stream back with ``ray.wait``. Needs ``pip install
  "hmviz[ray]"``.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import multiprocessing
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from hmviz.data.dataset import HistoneDataset
from hmviz.engine import TrainingCancelled
from hmviz.errors import HmvizError
from hmviz.studies.spec import Resources, Run

log = logging.getLogger(__name__)

EXECUTORS = ("local", "ray")
RAY_INSTALL = 'pip install "hmviz[ray]"  (or: pip install "ray[default]")'
_POLL_S = 0.2


class StudyCancelled(TrainingCancelled):
    """The study was cancelled; the runs that finished are saved and a rerun resumes from them."""


@dataclass(frozen=True)
class Job:
    """What every run of a study shares: the training options, the datasets and the cross-cell flag."""

    train_kw: dict
    datasets: Mapping[str, HistoneDataset]
    cross_cell: bool = False


OnRecord = Callable[[dict], None]
ShouldStop = Callable[[], bool] | None


def default_workers() -> int:
    """The CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _one_thread() -> None:
    import torch

    torch.set_num_threads(1)
    with contextlib.suppress(RuntimeError):
        torch.set_num_interop_threads(1)


# ---------------------------------------------------------------------------- inline
class InlineExecutor:
    """Runs one after another in this process."""

    name = "inline"

    def map(self, runs: Sequence[Run], job: Job, on_record: OnRecord, should_stop: ShouldStop = None) -> None:
        from hmviz.studies.work import execute_run

        for i, run in enumerate(runs):
            if should_stop is not None and should_stop():
                raise StudyCancelled(f"Study cancelled after {i} of {len(runs)} runs.")
            try:
                record = execute_run(run, job.train_kw, job.datasets, job.cross_cell, should_stop)
            except TrainingCancelled:
                raise StudyCancelled(f"Study cancelled after {i} of {len(runs)} runs.") from None
            on_record(record)


# ----------------------------------------------------------------------------- local
# Set in each worker process by _init_worker: the datasets (sent once per worker) and the stop flag.
_WORKER_JOB: Job | None = None
_WORKER_STOP = None


def _init_worker(job: Job, stop_event) -> None:
    global _WORKER_JOB, _WORKER_STOP
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the parent sets the stop flag instead
    _one_thread()
    _WORKER_JOB, _WORKER_STOP = job, stop_event


def _worker_run(run: Run) -> dict:
    from hmviz.studies.work import execute_run

    job = _WORKER_JOB
    assert job is not None and _WORKER_STOP is not None, "the pool's initializer sets the worker's job"
    return execute_run(run, job.train_kw, job.datasets, job.cross_cell, _WORKER_STOP.is_set)


class LocalExecutor:
    """Runs in ``workers`` fresh local processes (spawned, one torch thread each)."""

    name = "local"

    def __init__(self, workers: int | None = None):
        self.workers = default_workers() if workers is None else int(workers)
        if self.workers < 1:
            raise HmvizError(f"--workers must be at least 1; got {self.workers}.")

    def map(self, runs: Sequence[Run], job: Job, on_record: OnRecord, should_stop: ShouldStop = None) -> None:
        n = min(self.workers, len(runs))
        if n <= 1:
            InlineExecutor().map(runs, job, on_record, should_stop)
            return
        # "spawn": fresh interpreters, never a fork of a process whose torch already started threads.
        ctx = multiprocessing.get_context("spawn")
        stop = ctx.Event()
        pool = cf.ProcessPoolExecutor(max_workers=n, mp_context=ctx, initializer=_init_worker, initargs=(job, stop))
        done = 0
        try:
            futures = {pool.submit(_worker_run, run): run for run in runs}
            waiting = set(futures)
            while waiting:
                ready, waiting = cf.wait(waiting, timeout=_POLL_S, return_when=cf.FIRST_COMPLETED)
                for fut in ready:
                    if fut.cancelled():
                        continue
                    exc = fut.exception()
                    if isinstance(exc, TrainingCancelled) and stop.is_set():
                        continue
                    if isinstance(exc, cf.process.BrokenProcessPool):
                        raise HmvizError(
                            "A study worker process died (out of memory?); finished runs are saved. "
                            "Rerun with fewer --workers to resume."
                        ) from exc
                    if exc is not None:
                        raise exc
                    on_record(fut.result())
                    done += 1
                if not stop.is_set() and should_stop is not None and should_stop():
                    stop.set()
                    for fut in waiting:
                        fut.cancel()
            if stop.is_set():
                raise StudyCancelled(f"Study cancelled after {done} of {len(runs)} runs.")
        except BaseException:
            stop.set()  # running workers stop at their next batch
            raise
        finally:
            # Wait for the workers to exit (they stop at their next batch once `stop` is set), so no
            # process or semaphore outlives the study.
            pool.shutdown(wait=True, cancel_futures=True)


# ------------------------------------------------------------------------------- ray
def import_ray():
    """The ``ray`` module, or a clear error saying how to install it."""
    try:
        import ray
    except ImportError:
        raise HmvizError(
            f"--executor ray needs Ray, which is not installed here; install it with {RAY_INSTALL}, "
            "or use --executor local."
        ) from None
    return ray


def _ray_task(run: Run, train_kw: dict, refs: dict, cross_cell: bool, num_cpus: float) -> dict:
    """The body of one Ray task: fetch the datasets it needs from the object store (cached per node)."""
    import ray
    import torch

    from hmviz.studies.work import execute_run

    torch.set_num_threads(max(1, int(num_cpus)))
    names = list(refs) if cross_cell else [run.dataset]
    datasets = dict(zip(names, ray.get([refs[n] for n in names])))
    record = execute_run(run, train_kw, datasets, cross_cell)
    record["node"] = ray.get_runtime_context().get_node_id()
    return record


class RayExecutor:
    """Runs each run as a Ray task on the cluster at ``address`` (``auto``, ``HOST:PORT``, or None for a
    Ray instance started for this study on this machine)."""

    name = "ray"

    def __init__(self, address: str | None = None, resources: Resources = Resources(), max_retries: int = 2):
        self.ray = import_ray()
        self.address = address
        self.resources = resources
        self.max_retries = int(max_retries)

    def map(self, runs: Sequence[Run], job: Job, on_record: OnRecord, should_stop: ShouldStop = None) -> None:
        ray = self.ray
        started = not ray.is_initialized()
        if started:
            try:
                ray.init(
                    address=self.address,
                    log_to_driver=False,
                    include_dashboard=False,
                    logging_level=logging.WARNING,
                    configure_logging=False,
                    runtime_env=_runtime_env(),
                )
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise HmvizError(
                    f"Cannot connect to a Ray cluster at --address {self.address} ({exc}); start one "
                    "with 'ray start --head', or check the address."
                ) from None
        try:
            self._map(runs, job, on_record, should_stop)
        finally:
            if started:
                ray.shutdown()  # disconnects this driver; a cluster given by --address keeps running

    def _map(self, runs, job, on_record, should_stop) -> None:
        ray = self.ray
        res = self.resources
        refs = {name: ray.put(ds) for name, ds in job.datasets.items()}  # once, not once per run
        task = ray.remote(
            num_cpus=res.num_cpus, num_gpus=res.num_gpus, max_retries=self.max_retries, retry_exceptions=False
        )(_ray_task)
        pending = {task.remote(run, job.train_kw, refs, job.cross_cell, res.num_cpus): run for run in runs}
        done = 0
        try:
            while pending:
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=_POLL_S)
                for ref in ready:
                    run = pending.pop(ref)
                    try:
                        record = ray.get(ref)
                    except ray.exceptions.TaskCancelledError:
                        continue
                    except ray.exceptions.RayError as exc:  # its worker or node died, past the retries
                        record = _lost_record(run, exc)
                    on_record(record)
                    done += 1
                if pending and should_stop is not None and should_stop():
                    raise StudyCancelled(f"Study cancelled after {done} of {len(runs)} runs.")
        finally:
            for ref in pending:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)


def _runtime_env() -> dict:
    """Ship this hmviz to the workers when they cannot import it (a checkout, not an installed package);
    its dependencies (torch, ...) must be installed on every node."""
    import importlib.util
    from pathlib import Path

    package = Path(__file__).resolve().parents[1]  # the hmviz package
    site = importlib.util.find_spec("torch")
    installed = (
        site is not None and site.origin is not None and package.is_relative_to(Path(site.origin).resolve().parents[1])
    )
    return {} if installed else {"py_modules": [str(package)], "excludes": ["__pycache__", "*.pyc"]}


def _lost_record(run: Run, exc: Exception) -> dict:
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return run.record(
        status="failed",
        error=f"the Ray task was lost ({type(exc).__name__}: {first[:300]}); rerun the study to retry it",
    )


def make_executor(
    kind: str = "local", workers: int | None = None, address: str | None = None, resources: Resources = Resources()
):
    """``local`` (``workers`` processes; 1 = this process) or ``ray`` (at ``address``)."""
    if kind == "local":
        if address is not None:
            raise HmvizError("--address applies to --executor ray only.")
        return LocalExecutor(workers)
    if kind == "ray":
        if workers is not None:
            raise HmvizError(
                "--workers applies to --executor local; Ray runs as many runs at once as the "
                "cluster's CPUs (and GPUs) allow for each run's declared resources."
            )
        return RayExecutor(address, resources)
    raise HmvizError(f"Unknown executor '{kind}'; use one of {', '.join(EXECUTORS)}.")
