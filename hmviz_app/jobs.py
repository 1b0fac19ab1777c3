"""Long work (training, ablation) in a bounded pool shared by every session, apart from the threads
that render pages: the page stays live, the user can cancel, a job waits its turn (its place in the
queue is shown) when the workers are busy, and other sessions keep being served. Pages poll a job
with ``st.fragment(run_every=...)``.

The pool has :func:`worker_count` workers (``HMVIZ_APP_WORKERS``; by default a quarter of the cores,
1 to 4). Short work that a page waits on (the baselines of the Evaluate page) goes to a second pool of
one worker (``queue="short"``), so that it does not wait behind other users' training runs; its jobs
are shared by every session (:func:`shared_job`). A page's job (:func:`start_job`) runs in its own process (:mod:`hmviz_app.job_process`:
``spawn``, a fresh interpreter), so its PyTorch work never holds the server's interpreter lock while
pages render: a worker thread of the server starts the process, relays its progress reports, passes
a cancel on, and collects its result or error message. The process runs at a lower CPU priority
with the torch threads :func:`hmviz.runtime.job_threads` gives it (the cores left after one for the
server, shared by the workers: 1 on 2 cores). A job whose process dies (out of memory, a crash)
fails with its exit status instead of waiting forever; one that does not stop soon after a cancel
is killed. When the server stops, every job is cancelled and the workers are joined before Python
finalises.

A job's ``target(job, *args)`` is then a module-level function (:mod:`hmviz_app.job_targets`) with
picklable arguments; in its process ``job`` is a :class:`JobLink` with the same ``report`` and
``cancel`` as :class:`Job`. ``Job(..., process=False)`` runs the target in the worker thread instead
(small work, or a target that cannot be pickled).
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import logging
import multiprocessing.util  # noqa: F401  (its exit hook joins child processes: registered before the pool's)
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from hmviz.errors import HmvizError
from hmviz_app.job_process import HOLD_S, hold_mode, holds, kill_job, outcome, page_hold, run_in_process

log = logging.getLogger("hmviz_app")

#: How often a page showing a running job refreshes (seconds).
POLL_SECONDS = 2.0
#: How long a stopping server waits for cancelled jobs to reach their next check (seconds).
STOP_WAIT_S = 20.0


def page_shown() -> None:
    """A page's run began (the router calls this; a fragment's rerun does not): hold the training jobs for
    :data:`~hmviz_app.job_process.HOLD_S` seconds when this user's browser draws on the server's own CPU
    (``HMVIZ_JOB_HOLD``: ``local``, the default, for a browser on this machine; ``all``; ``off``), so
    that the page is drawn before the jobs take the CPU back (:class:`~hmviz_app.job_process.PageHold`)."""
    try:
        mode = hold_mode()
    except HmvizError:  # shown when a job starts (run_in_process); pages are still served
        return
    if holds(mode, local=st.context.ip_address is None):  # Streamlit gives None for a browser on this machine
        page_hold().hold(HOLD_S)


def worker_count() -> int:
    """How many jobs run at once in this server (``HMVIZ_APP_WORKERS`` overrides)."""
    return int(os.environ.get("HMVIZ_APP_WORKERS") or 0) or max(1, min(4, (os.cpu_count() or 2) // 4))


def _duration(seconds: float) -> str:
    """``seconds`` in words: "30 minutes", "90 seconds", "1 second"."""
    value, unit = (seconds / 60, "minute") if seconds >= 120 else (seconds, "second")
    return f"{value:g} {unit}{'' if value == 1 else 's'}"


@dataclass(eq=False)
class Job:
    """Work for the pool: a training run or an ablation.

    ``target(job, *args)`` does the work; it reports through :meth:`report` (kept in ``events``/``history``)
    and stops when ``job.cancel`` is set (the library's ``should_stop``). ``status`` is ``queued``,
    ``running``, ``done``, ``cancelled`` or ``failed`` (``error`` holds the message shown to the user).
    ``context`` is what the page wants to remember with it (e.g. the dataset it runs on). With
    ``process=True`` it runs in its own process (see the module docstring).
    """

    kind: str
    title: str
    target: Callable[..., Any]
    context: dict = field(default_factory=dict)
    args: tuple = ()
    process: bool = False
    queue: str = "long"  # the pool it runs in: "long" (training, ablation) or "short" (see the module docstring)
    time_limit_s: float | None = None  # a job still running after this long is cancelled and fails (None: no limit)
    timed_out: bool = False
    status: str = "queued"
    result: Any = None
    error: str | None = None
    last: Any = None
    history: list = field(default_factory=list)
    events: list = field(default_factory=list)
    submitted: float = field(default_factory=time.time)
    started: float | None = None
    finished: float | None = None
    pid: int | None = None  # of its process, while it runs in one
    collected: bool = False  # its result was handed to the session
    announced: bool = False  # the page showing it reran the whole app once it finished
    cancel: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Job:
        """Queue the job in its pool."""
        pool(self.queue).submit(self)
        return self

    def _run(self, threads: int = 1) -> None:
        self.started = time.time()
        try:
            if self.cancel.is_set():
                self.status, self.error = "cancelled", "Cancelled before it started."
                return
            self.status = "running"
            timer, limit = None, self.time_limit_s
            if limit is not None:
                timer = threading.Timer(limit, self._time_out)
                timer.daemon = True
                timer.start()
            if self.process:
                status, result, error = outcome(
                    lambda: run_in_process(self.target, self.args, threads=threads, title=self.title,
                                           cancel=self.cancel, report=self.report,
                                           started=lambda pid: setattr(self, "pid", pid)), self.title)
                if status == "done":
                    status, result, error = result
            else:
                from hmviz_app.state import configure_torch

                configure_torch()
                status, result, error = outcome(lambda: self.target(self, *self.args), self.title)
            if timer is not None:
                timer.cancel()
            if self.timed_out and limit is not None:
                status, result, error = "failed", None, (
                    f"{self.title} took longer than {_duration(limit)} and was stopped (the server may be very busy).")
            self.result, self.error, self.status = result, error, status
        finally:
            self.finished = time.time()
            self.args = ()  # its inputs (a dataset...) are not kept alive by a finished job

    def should_stop(self) -> bool:
        """The library's check between batches, for a job run in the worker thread (no pause there)."""
        return self.cancel.is_set()

    def _time_out(self) -> None:
        self.timed_out = True
        self.cancel.set()  # a process job that does not stop within its grace period is killed

    @property
    def running(self) -> bool:
        """Queued or running: not finished yet."""
        return self.status in ("queued", "running")

    @property
    def queued(self) -> bool:
        return self.status == "queued"

    @property
    def position(self) -> int:
        """1 for the next job to start, 2 for the one after...; 0 once it has started."""
        return pool(self.queue).position(self)

    @property
    def seconds(self) -> float:
        """Seconds it has run (0 while queued)."""
        return 0.0 if self.started is None else (self.finished or time.time()) - self.started

    @property
    def waited(self) -> float:
        """Seconds it waited in the queue (so far)."""
        return (self.started or time.time()) - self.submitted

    def queue_text(self) -> str:
        """Where a queued job stands, in words."""
        n = pool(self.queue).workers
        return (f"Waiting for a free worker: number {self.position} in the queue for {self.waited:.0f} s (this server "
                f"runs {n} job{'s' if n > 1 else ''} at a time, for all its users).")

    def report(self, event: Any, epoch_row: dict | None = None) -> None:
        with self.lock:
            self.last = event
            self.events.append(event)
            if epoch_row is not None:
                self.history.append(epoch_row)

    def snapshot(self) -> tuple[Any, list, list]:
        with self.lock:
            return self.last, list(self.history), list(self.events)


class JobPool:
    """A fixed number of daemon worker threads taking jobs in order from one queue (a worker thread runs
    a ``process`` job by starting its process and relaying it until it ends)."""

    def __init__(self, workers: int) -> None:
        from hmviz.runtime import job_threads

        self.workers = workers
        self.threads = job_threads(workers)  # torch threads of each job process
        self._waiting: collections.deque[Job] = collections.deque()
        self._active: set[Job] = set()
        self._threads: list[threading.Thread] = []
        self._cv = threading.Condition()
        self._closed = False

    def submit(self, job: Job) -> None:
        with self._cv:
            if self._closed:
                raise HmvizError("The server is stopping; start the job again once it is back.")
            self._waiting.append(job)
            if len(self._threads) < self.workers:
                thread = threading.Thread(target=self._work, name=f"hmviz-worker-{len(self._threads) + 1}", daemon=True)
                self._threads.append(thread)
                thread.start()
            self._cv.notify()

    def position(self, job: Job) -> int:
        with self._cv:
            waiting = [j for j in self._waiting if not j.cancel.is_set() or j is job]
            return waiting.index(job) + 1 if job in waiting else 0

    def _work(self) -> None:
        while True:
            with self._cv:
                while not self._waiting and not self._closed:
                    self._cv.wait()
                if not self._waiting:
                    return
                job = self._waiting.popleft()
                self._active.add(job)
                if job.status == "queued":  # out of the queue from now on (never "number 0 in the queue")
                    job.status = "running"
            try:
                job._run(self.threads)
            finally:
                with self._cv:
                    self._active.discard(job)

    def close(self, wait_s: float = STOP_WAIT_S) -> None:
        """Cancel every job (queued or running), wait up to ``wait_s`` for the workers to stop, then kill the
        processes of jobs still running."""
        with self._cv:
            self._closed = True
            for job in [*self._waiting, *self._active]:
                job.cancel.set()
            self._cv.notify_all()
            threads = list(self._threads)
        deadline = time.monotonic() + wait_s
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._cv:
            stuck = [job for job in self._active if job.pid is not None]
        for job in stuck:  # its process outlived the wait: end it (its worker then sees it gone)
            log.warning("%s did not stop within %.0f s of the server stopping; killing process %s", job.title, wait_s,
                        job.pid)
            with contextlib.suppress(OSError, TypeError):
                kill_job(job.pid)
        for thread in threads:
            thread.join(5.0)
        if any(t.is_alive() for t in threads):
            log.warning("a job did not stop within %.0f s of the server stopping", wait_s)


#: Workers of each pool: "long" for training and ablation, "short" for work a page waits on.
QUEUES: dict[str, Callable[[], int]] = {"long": worker_count, "short": lambda: 1}
_pools: dict[str, JobPool] = {}
_pool_lock = threading.Lock()


def pool(queue: str = "long") -> JobPool:
    """The server's pool of ``queue`` (created on first use; closed when the process exits)."""
    with _pool_lock:
        if queue not in _pools:
            _pools[queue] = JobPool(QUEUES[queue]())
            atexit.register(_pools[queue].close)
        return _pools[queue]


#: Shared jobs kept (the oldest finished ones are forgotten first).
SHARED_KEEP = 64
_shared: dict[tuple, Job] = {}


#: How long a shared job may run (seconds): it holds the short pool's one worker meanwhile.
SHARED_TIME_LIMIT_S = 1800.0


def shared_job(key: tuple, title: str, target: Callable[..., Any], args: tuple = (), queue: str = "short",
               time_limit_s: float = SHARED_TIME_LIMIT_S, retry: bool = False) -> Job:
    """The one job of ``key`` for the whole server (work whose result every session can use, such as the
    baselines of a model on a dataset): the queued, running or finished job of that key, or a new one
    (in its own process, in ``queue``'s pool) when there is none or the last one was cancelled (the server
    stopped it). A failure, running out of time (``time_limit_s``) included, is kept for every session (its
    page shows it once, not a new try on every visit) until ``retry``: a user asked to try again (the
    cause may have passed: a busy server, a process killed for memory)."""
    with _pool_lock:
        job = _shared.get(key)
        restart = job is None or job.status == "cancelled" or (job.status == "failed" and retry)
        if not restart:
            return job
        job = Job(key[0], title, target, args=args, process=True, queue=queue, time_limit_s=time_limit_s)
        _shared[key] = job
        finished = [k for k, j in _shared.items() if not j.running]
        for old in finished[: max(0, len(_shared) - SHARED_KEEP)]:
            del _shared[old]
    return job.start()


def jobs() -> dict[str, Job]:
    return st.session_state.setdefault("jobs", {})


def start_job(kind: str, title: str, target: Callable[..., Any], args: tuple = (), process: bool = True,
              **context: Any) -> Job:
    """Queue ``target(job, *args)`` as this session's job of ``kind`` (one per kind: a new one replaces the
    old), in its own process unless ``process=False`` (then ``target`` may be any callable)."""
    job = Job(kind, title, target, context=context, args=args, process=process)
    jobs()[kind] = job
    return job.start()
