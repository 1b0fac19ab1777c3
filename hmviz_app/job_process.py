"""Run one job in a fresh process: progress reports and the result come back through a pipe, a cancel
goes there as a shared event, and a process that dies or ignores its cancel ends with a clear message
instead of a wait that never ends. Used by :mod:`hmviz_app.jobs`; no streamlit here (the job's
process imports only this module and the job's own).

* :func:`run_in_process` ``(target, args, ...)`` runs ``target(link, *args)`` in a ``spawn``
  process at the lowest CPU priority (:func:`job_priority`: nice 19 and ``SCHED_IDLE``) with ``threads`` PyTorch/OpenMP threads and
  returns ``(status, result, error)``: ``done``, ``cancelled`` or ``failed`` with the message for the user.
* :class:`JobLink` is ``link`` in that process: ``report(event, epoch_row)``, ``cancel.is_set()`` and
  ``should_stop()`` (the library's check between batches: it first pauses while pages hold the jobs).
* :class:`PageHold` puts pages first where the user's browser draws on the server's own CPU: a page's
  run holds the jobs for :data:`HOLD_S` seconds (:func:`page_hold` ``.hold``); a training job pauses at
  its next batch until the hold ends, but never for more than half of its time (:meth:`PageHold.pause`).
* :func:`outcome` turns a call into that triple (hmviz's errors are the user's message; anything
  else is a bug, logged with its traceback).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from hmviz.errors import HmvizError

log = logging.getLogger("hmviz_app")

#: How long a job's process may take to stop after a cancel before it is killed (seconds): it checks
#: the cancel after every batch, but loading PyTorch at its start takes tens of seconds on a busy machine.
CANCEL_GRACE_S = 30.0
#: How much lower a job process's CPU priority is than the server's (``nice``; 19, the lowest, by default:
#: ``HMVIZ_JOB_NICENESS`` sets 0 to 19), so pages win the CPU.
JOB_NICENESS = 19
NICENESS_ENV = "HMVIZ_JOB_NICENESS"
#: ``idle`` (the default): the job's process also runs under Linux's ``SCHED_IDLE`` policy, so it gets
#: the CPU only when nothing else of normal priority wants it; ``normal`` keeps the usual policy.
SCHED_ENV = "HMVIZ_JOB_SCHED"
#: Whose page runs hold the training jobs: ``local`` (the default: a browser on this machine, whose drawing
#: shares its CPU with the jobs), ``all`` (every user's) or ``off``.
HOLD_ENV = "HMVIZ_JOB_HOLD"
HOLD_MODES = ("local", "all", "off")
#: How long one page's run holds the jobs (seconds): long enough for a browser to draw a page with its
#: charts on a busy 2-core machine (bench/bench_app_load.py).
HOLD_S = 3.0
#: The most pause a job saves up (seconds): it earns one second of pause per second it runs, so over any
#: long stretch it runs at least half of the time, however many pages are opened.
HOLD_BURST_S = 6.0
_PAUSE_STEP_S = 0.05
BUG_TEXT = "Something went wrong inside hmviz (a bug, not your input): {}"
_RELAY_POLL_S = 0.1

Outcome = tuple[str, Any, "str | None"]


def job_priority() -> tuple[int, bool]:
    """(niceness to add, whether to use ``SCHED_IDLE``) for job processes: :data:`JOB_NICENESS` and idle,
    or ``HMVIZ_JOB_NICENESS`` (0 to 19) and ``HMVIZ_JOB_SCHED`` (``idle`` or ``normal``); an error naming
    the variable when one is malformed (checked by the server before a job starts)."""
    raw = os.environ.get(NICENESS_ENV, "").strip()
    niceness = JOB_NICENESS
    if raw:
        niceness = int(raw) if raw.isdigit() else -1
        if not 0 <= niceness <= 19:
            raise HmvizError(f"{NICENESS_ENV}={raw!r} is not a niceness from 0 to 19; set it to e.g. 10 or 19 "
                             "(19: jobs run only when pages leave the CPU free), or unset it.")
    sched = os.environ.get(SCHED_ENV, "idle").strip().lower() or "idle"
    if sched not in ("idle", "normal"):
        raise HmvizError(f"{SCHED_ENV}={sched!r} is not 'idle' or 'normal'; unset it for 'idle' (jobs run only when "
                         "nothing else wants the CPU) or set 'normal' (jobs share the CPU by niceness alone).")
    return niceness, sched == "idle"


def hold_mode() -> str:
    """``local``, ``all`` or ``off`` from ``HMVIZ_JOB_HOLD`` (unset: ``local``); an error naming the
    variable when it is none of them (checked by the server before a job starts)."""
    mode = os.environ.get(HOLD_ENV, "").strip().lower() or "local"
    if mode not in HOLD_MODES:
        raise HmvizError(f"{HOLD_ENV}={mode!r} is not 'local', 'all' or 'off'; unset it for 'local' (training pauses "
                         "for a few seconds while a browser on this machine draws a page), or set 'all' or 'off'.")
    return mode


def holds(mode: str, local: bool) -> bool:
    """Whether a page for a browser on this machine (``local``) or elsewhere holds the jobs under ``mode``
    (:func:`hold_mode`)."""
    return mode == "all" or (mode == "local" and local)


class PageHold:
    """Pages before training jobs, across processes: the server calls :meth:`hold`, a job :meth:`pause`.

    ``until`` is a shared double (the :func:`time.monotonic` time the hold ends, the same clock in every
    process on Linux); ``clock`` and ``sleep`` are injectable for tests. A job's pause budget starts at
    ``burst_s`` seconds and grows by the time it runs between pauses, up to ``burst_s``: a job pauses at
    most ``burst_s`` at once and, over any long stretch, at most half of its time.
    """

    def __init__(self, until: Any = None, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep, burst_s: float = HOLD_BURST_S) -> None:
        self.until = until if until is not None else multiprocessing.get_context("spawn").Value("d", 0.0, lock=False)
        self._clock, self._sleep, self._burst = clock, sleep, burst_s
        self._budget: float = burst_s
        self._last: float | None = None  # when the last pause ended: the job ran since

    def hold(self, seconds: float = HOLD_S) -> None:
        """(The server) hold the jobs until ``seconds`` from now, or longer where a hold lasts longer."""
        self.until.value = max(self.until.value, self._clock() + seconds)

    def held(self) -> bool:
        return self._clock() < self.until.value

    def pause(self, stop: Callable[[], bool] = lambda: False) -> float:
        """(A job, between batches) sleep while the hold lasts, within the budget and until ``stop()``;
        the seconds slept."""
        now = self._clock()
        if self._last is not None:
            self._budget = min(self._burst, self._budget + max(0.0, now - self._last))
        slept = 0.0
        while now < self.until.value and self._budget > 0 and not stop():
            self._sleep(min(_PAUSE_STEP_S, self.until.value - now, self._budget))
            later = self._clock()
            self._budget -= later - now
            slept += later - now
            now = later
        self._last = now
        return slept


_server_hold: PageHold | None = None
_server_hold_lock = threading.Lock()


def page_hold() -> PageHold:
    """The server's one :class:`PageHold`, shared with every job process it starts."""
    global _server_hold
    with _server_hold_lock:
        if _server_hold is None:
            _server_hold = PageHold()
        return _server_hold


def lower_priority(niceness: int, idle: bool) -> None:
    """Lower this process's CPU priority by ``niceness`` and, with ``idle`` where Linux offers it, put it
    under ``SCHED_IDLE``. Call before starting threads: on Linux both apply to the calling thread and
    are inherited by the threads it starts (PyTorch's)."""
    with contextlib.suppress(OSError):
        os.nice(niceness)
    if idle and hasattr(os, "SCHED_IDLE"):
        with contextlib.suppress(OSError):
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))


def _cancelled_type() -> type | None:
    """:class:`hmviz.engine.TrainingCancelled` when the training engine was imported (no exception can
    be one otherwise): a job that never trains does not load PyTorch for it."""
    engine = sys.modules.get("hmviz.engine")
    return getattr(engine, "TrainingCancelled", None)


def outcome(call: Callable[[], Any], title: str) -> Outcome:
    """(status, result, error) of ``call()``: ``done``, ``cancelled`` or ``failed`` with the user's message."""
    try:
        return "done", call(), None
    except HmvizError as exc:
        cancelled = _cancelled_type()
        return ("cancelled" if cancelled is not None and isinstance(exc, cancelled) else "failed"), None, str(exc)
    except Exception as exc:  # a bug: logged with its traceback on the server, one line for the user
        log.exception("%s failed", title)
        return "failed", None, BUG_TEXT.format(f"{type(exc).__name__}: {exc}")


def died_text(exitcode: int | None) -> str:
    """The message for a job whose process ended without sending its outcome."""
    if exitcode is not None and exitcode < 0:
        how = f"killed by signal {-exitcode}" + (", perhaps for lack of memory" if exitcode == -signal.SIGKILL else "")
    else:
        how = f"exit status {exitcode}"
    return (f"The job's process stopped without a result ({how}); nothing was saved. Start it again; if it "
            "stops again, try a smaller dataset or model, or ask the server's administrator to check its log.")


def kill_job(pid: int) -> None:
    """Kill a job's process and the processes it started (a study's workers): its process group."""
    try:
        os.killpg(pid, signal.SIGKILL)  # the job's process leads its own group (_process_main)
    except (ProcessLookupError, PermissionError):  # not yet its own group leader, or already gone
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def run_in_process(target: Callable[..., Any], args: tuple, *, threads: int, title: str, cancel: threading.Event,
                   report: Callable[[Any, dict | None], None], started: Callable[[int | None], None] = lambda pid: None,
                   ) -> Outcome:
    """Run ``target(link, *args)`` in a fresh process and wait for it, relaying ``link.report`` to ``report``
    and ``cancel`` to ``link.cancel``; its (status, result, error).

    ``target`` must be a module-level function and ``args`` picklable (checked here, before the process
    starts). ``started(pid)`` is called with the process id once it runs and with None once it is gone.
    A process that ends without an outcome gives ``failed`` with its exit status; one still running
    :data:`CANCEL_GRACE_S` after ``cancel`` is killed (``cancelled``).
    """
    try:
        payload = pickle.dumps((target, args), protocol=pickle.HIGHEST_PROTOCOL)
        priority = job_priority()
        hold_mode()
    except HmvizError as exc:
        return "failed", None, str(exc)
    except Exception as exc:
        return "failed", None, BUG_TEXT.format(f"the job cannot be sent to its process: {type(exc).__name__}: {exc}")
    ctx = multiprocessing.get_context("spawn")
    receive, send = ctx.Pipe(duplex=False)
    stop = ctx.Event()
    # not a daemon: a daemonic process may not start children (a study's own worker processes)
    proc = ctx.Process(target=_process_main, args=(payload, send, stop, threads, title, priority, page_hold().until),
                       name="hmviz-job", daemon=False)
    proc.start()
    send.close()  # the child holds the only sending end now: its exit reads as end-of-file here
    started(proc.pid)
    result: Outcome | None = None
    stopped_at = None
    try:
        while True:
            if cancel.is_set() and stopped_at is None:
                stop.set()
                stopped_at = time.monotonic()
            if stopped_at is not None and result is None and proc.is_alive() \
                    and time.monotonic() - stopped_at > CANCEL_GRACE_S:
                log.warning("%s did not stop within %.0f s of its cancel; killing process %s", title, CANCEL_GRACE_S,
                            proc.pid)
                kill_job(proc.pid)
                result = ("cancelled", None, f"Cancelled: the job did not stop within {CANCEL_GRACE_S:.0f} s, so its "
                                             "process was ended; nothing was saved.")
            if not receive.poll(_RELAY_POLL_S):
                continue
            try:
                message = receive.recv()
            except EOFError:
                break
            if message[0] == "event":
                report(message[1], message[2])
            else:  # ("outcome", status, result, error): its last message; it exits (or is ended below)
                result = result or tuple(message[1:])
                break
    finally:
        receive.close()
        proc.join(CANCEL_GRACE_S)
        if proc.is_alive():
            kill_job(proc.pid)
            proc.join()
        started(None)
    return result if result is not None else ("failed", None, died_text(proc.exitcode))


# ------------------------------------------------------------------------------ in the job's process
class JobLink:
    """What a target running in its own process gets as ``job``: :meth:`report` sends progress to the
    server (events must be picklable), ``cancel`` is set when the user cancels (``cancel.is_set``);
    :meth:`should_stop` is the check between batches (it pauses first while pages hold the jobs)."""

    def __init__(self, conn, cancel, hold: PageHold | None = None) -> None:
        self._conn, self.cancel, self._hold = conn, cancel, hold
        self._lock = threading.Lock()  # a study's progress may come from several threads

    def should_stop(self) -> bool:
        """Whether the user cancelled, after a pause while a page holds the jobs (:class:`PageHold`)."""
        if self._hold is not None:
            self._hold.pause(self.cancel.is_set)
        return self.cancel.is_set()

    def report(self, event: Any, epoch_row: dict | None = None) -> None:
        with self._lock:
            self._conn.send(("event", event, epoch_row))


def _watch_parent(parent: int, cancel) -> None:
    """Cancel the job when the server is gone (killed: it could not cancel), and end the process if the
    job does not stop within the grace period: no job outlives its server for long."""
    while os.getppid() == parent:
        time.sleep(1.0)
    cancel.set()
    time.sleep(CANCEL_GRACE_S)
    os._exit(1)


def _process_main(payload: bytes, conn, cancel, threads: int, title: str, priority: tuple[int, bool],
                  hold_until: Any = None) -> None:
    """The body of a job's process: lower priority (``priority``: :func:`job_priority`) and ``threads``
    threads first, then load, run, send. ``hold_until``: the server's :class:`PageHold` value."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C on the server: the server cancels its jobs
    with contextlib.suppress(OSError):
        os.setpgrp()  # a group of its own, so that killing it also ends the workers it starts
    lower_priority(*priority)
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):  # read when PyTorch loads (here, not in the server)
        os.environ[name] = str(threads)
    from hmviz.runtime import configure_openmp

    configure_openmp()
    threading.Thread(target=_watch_parent, args=(os.getppid(), cancel), daemon=True).start()

    def call() -> Any:
        target, args = pickle.loads(payload)
        hold = PageHold(hold_until) if hold_until is not None else None
        return target(JobLink(conn, cancel, hold), *args)

    result = outcome(call, title)
    try:
        conn.send(("outcome", *result))
    except Exception as exc:  # the result could not be pickled: a bug
        log.exception("%s: sending its result failed", title)
        conn.send(("outcome", "failed", None, BUG_TEXT.format(f"the result could not be sent back: {exc}")))
    conn.close()
