"""How long each page's script run takes on the server, for benchmarks: with ``HMVIZ_PAGE_TIMES`` set to a
file path, the router (``app.py``) appends one JSON line per run of the whole app (page name, wall seconds,
the server's CPU seconds during the run, the time it ended). Unset (the default), nothing is written.
``bench/bench_app_load.py`` reads the file to split a page's time in the browser into the script's share
and the rest (transfer, the browser's drawing, waits for the CPU).
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator

PAGE_TIMES_ENV = "HMVIZ_PAGE_TIMES"
_lock = threading.Lock()


def clock() -> tuple[float, float]:
    """(wall, process CPU) seconds now, for :func:`timed`'s ``since``."""
    return time.perf_counter(), time.process_time()


@contextlib.contextmanager
def timed(page: str, since: tuple[float, float] | None = None) -> Iterator[None]:
    """Time the block (a page's run) and append its line to ``$HMVIZ_PAGE_TIMES``, when set; the record
    is written also when the run ends with ``st.stop``/``st.rerun`` (raised through here). ``since``: a
    :func:`clock` reading taken earlier (the start of the router's run), to time from there instead.
    ``cpu_s`` is the server process's CPU time (all its threads) over the same span."""
    path = os.environ.get(PAGE_TIMES_ENV)
    if not path:
        yield
        return
    t0, c0 = since or clock()
    outcome = "ok"
    try:
        yield
    except BaseException as exc:
        outcome = type(exc).__name__
        raise
    finally:
        record = {"page": page, "s": time.perf_counter() - t0, "cpu_s": time.process_time() - c0,
                  "end": time.time(), "outcome": outcome}
        with _lock, open(path, "a") as f:
            f.write(json.dumps(record) + "\n")
