"""Long work (training, ablation) in a thread of its own, so that the page stays live, the user can
cancel, and other sessions keep being served. Pages poll a job with ``st.fragment(run_every=...)``."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from hmviz.errors import HmvizError

log = logging.getLogger("hmviz_app")

#: How often a page showing a running job refreshes (seconds).
POLL_SECONDS = 0.5


@dataclass
class Job:
    """Work running in a thread of its own: a training run or an ablation.

    ``target(job)`` does the work; it reports through :meth:`report` (kept in ``events``/``history``)
    and stops when ``job.cancel`` is set (the library's ``should_stop``). ``status`` is ``running``,
    ``done``, ``cancelled`` or ``failed`` (``error`` holds the message shown to the user).
    """

    kind: str
    title: str
    target: Callable[[Job], Any]
    status: str = "running"
    result: Any = None
    error: str | None = None
    last: Any = None
    history: list = field(default_factory=list)
    events: list = field(default_factory=list)
    started: float = field(default_factory=time.time)
    finished: float | None = None
    collected: bool = False  # its result was handed to the session
    announced: bool = False  # the page showing it reran the whole app once it finished
    cancel: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> Job:
        threading.Thread(target=self._run, name=f"hmviz-{self.kind}", daemon=True).start()
        return self

    def _run(self) -> None:
        from hmviz.training import TrainingCancelled
        from hmviz_app.state import configure_torch

        try:
            configure_torch()
            self.result = self.target(self)
            self.status = "done"
        except TrainingCancelled as exc:
            self.error, self.status = str(exc), "cancelled"
        except HmvizError as exc:
            self.error, self.status = str(exc), "failed"
        except Exception as exc:  # a bug: logged with its traceback on the server, one line for the user
            log.exception("%s failed", self.title)
            self.error = f"Something went wrong inside hmviz (a bug, not your input): {type(exc).__name__}: {exc}"
            self.status = "failed"
        finally:
            self.finished = time.time()

    @property
    def running(self) -> bool:
        return self.status == "running"

    @property
    def seconds(self) -> float:
        return (self.finished or time.time()) - self.started

    def report(self, event: Any, epoch_row: dict | None = None) -> None:
        with self.lock:
            self.last = event
            self.events.append(event)
            if epoch_row is not None:
                self.history.append(epoch_row)

    def snapshot(self) -> tuple[Any, list, list]:
        with self.lock:
            return self.last, list(self.history), list(self.events)


def jobs() -> dict[str, Job]:
    return st.session_state.setdefault("jobs", {})


def start_job(kind: str, title: str, target: Callable[[Job], Any]) -> Job:
    job = Job(kind, title, target)
    jobs()[kind] = job
    return job.start()
