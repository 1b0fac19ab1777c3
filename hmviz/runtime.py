"""How many CPU threads hmviz gives torch: the cores that are free, shared by the jobs run at once.

torch's default is one thread per core. On a machine where other processes (or other hmviz jobs)
already use the cores, those threads wait on each other and an epoch can take ten times longer
than with one thread (measured in ``docs/performance.md``). So entry points call
:func:`apply_threads` once at start; nothing here runs on import.

* :func:`recommended_threads` ``(concurrent_jobs)``: the cores this process may run on
  (``os.sched_getaffinity``), minus the cores already busy with other work (the 1-minute load
  average, less what this process itself adds), divided among ``concurrent_jobs`` jobs; at least 1.
* :func:`job_threads` ``(workers)``: torch threads for each of ``workers`` job processes that run
  beside a server (the app's training jobs): the cores left after one for the server, shared equally.
* :func:`apply_threads` sets ``torch.set_num_threads`` to that, or to ``HMVIZ_THREADS`` when the
  user sets it (a positive integer).
* :func:`configure_openmp` sets OpenMP's waiting policy (passive after a short spin) unless the user
  set it; it only acts when called before torch is imported.
"""

from __future__ import annotations

import logging
import math
import os
import sys

from hmviz.errors import HmvizError

log = logging.getLogger(__name__)

THREADS_ENV = "HMVIZ_THREADS"


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity; the machine's count where that is unknown)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def busy_cores(own_threads: int = 0) -> float:
    """Cores other work keeps busy: the 1-minute load average less ``own_threads`` of this process.

    The load average counts runnable threads machine-wide, this process's included; subtract what
    this process runs itself (0 before it has started any work). 0 where the load is unknown.
    """
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return 0.0
    return max(0.0, load - own_threads)


def recommended_threads(concurrent_jobs: int = 1, *, cores: int | None = None, busy: float | None = None) -> int:
    """Torch threads for one of ``concurrent_jobs`` jobs: ``floor((cores - busy) / jobs)``, at least 1.

    Args:
        concurrent_jobs: jobs this program runs at the same time (an app's training sessions);
            each gets an equal share of the free cores.
        cores: available cores (default :func:`available_cores`).
        busy: cores busy with other work (default :func:`busy_cores`).
    """
    if concurrent_jobs < 1:
        raise HmvizError(f"concurrent_jobs must be at least 1; got {concurrent_jobs}.")
    cores = available_cores() if cores is None else cores
    busy = busy_cores() if busy is None else busy
    free = max(0.0, cores - busy)
    return max(1, min(cores, math.floor(free / concurrent_jobs)))


def job_threads(workers: int, *, reserved: int = 1, cores: int | None = None) -> int:
    """Torch threads for each of ``workers`` job processes beside a server that keeps ``reserved`` cores
    for itself (rendering pages): ``floor((cores - reserved) / workers)``, at least 1.

    ``HMVIZ_THREADS`` (a positive integer) wins. Not from the load average: the jobs themselves are
    the load once they run, and every job of a server should get the same share.
    """
    if workers < 1:
        raise HmvizError(f"workers must be at least 1; got {workers}.")
    n = threads_from_env()
    if n is not None:
        return n
    cores = available_cores() if cores is None else cores
    return max(1, (cores - reserved) // workers)


def threads_from_env() -> int | None:
    """``HMVIZ_THREADS`` as a positive integer, None when unset; an error naming it when malformed."""
    raw = os.environ.get(THREADS_ENV, "").strip()
    if not raw:
        return None
    try:
        n = int(raw)
    except ValueError:
        n = 0
    if n < 1:
        raise HmvizError(
            f"{THREADS_ENV}={raw!r} is not a positive whole number of threads; set it to e.g. 1 or 4, "
            "or unset it to let hmviz choose from the free cores."
        )
    return n


def apply_threads(concurrent_jobs: int = 1) -> int:
    """Set torch's intra-op thread count for this process and return it.

    ``HMVIZ_THREADS`` (if set) wins; otherwise :func:`recommended_threads` ``(concurrent_jobs)``.
    Call once at the start of a command or app session, before the work begins.
    """
    import torch

    n = threads_from_env()
    source = THREADS_ENV
    if n is None:
        n, source = recommended_threads(concurrent_jobs), f"{available_cores()} cores, load {busy_cores():.2f}"
    torch.set_num_threads(n)
    log.info("torch threads: %d (%s, %d concurrent job(s))", n, source, concurrent_jobs)
    return n


def configure_openmp() -> None:
    """OpenMP waits passively after a short spin, unless the user set ``OMP_WAIT_POLICY``/``GOMP_SPINCOUNT``.

    Threads that spin while waiting make small torch calls (LSTMs, single-gene attributions) up to
    ~1000x slower when anything else runs on the same cores; threads that sleep at once make
    AttentiveChrome ~5x slower on an idle machine; passive after 100,000 spins measured 6.7 s vs
    6.5 s per AttentiveChrome epoch when idle and no collapse under load. OpenMP reads these when
    torch loads it, so this acts only before ``import torch`` (returns without effect after).
    """
    if "torch" in sys.modules:
        log.debug("configure_openmp called after torch was imported; OpenMP settings unchanged")
        return
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    os.environ.setdefault("GOMP_SPINCOUNT", "100000")
