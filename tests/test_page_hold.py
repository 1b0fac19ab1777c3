"""Pages before training (hmviz_app.job_process.PageHold, hmviz_app.jobs.page_shown): a page's run holds
the training jobs for a few seconds where the user's browser draws on the server's own CPU; a job pauses
at its next batch, stops pausing as soon as it is cancelled, and never pauses more than half of its time.
Constructed clocks give the exact seconds; one spawned process shows that the hold crosses processes."""

from __future__ import annotations

import threading
import time

import pytest

from hmviz.errors import HmvizError
from hmviz_app import job_process
from hmviz_app.job_process import HOLD_BURST_S, PageHold, run_in_process


class FakeClock:
    """A clock that moves only when the job sleeps or runs (``advance``)."""

    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.slept.append(seconds)
        self.now += seconds

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Value:
    def __init__(self) -> None:
        self.value = 0.0


def _pair(burst_s: float = HOLD_BURST_S) -> tuple[PageHold, PageHold, FakeClock]:
    """The server's hold and a job's, sharing one value and one clock."""
    clock, shared = FakeClock(), Value()
    server = PageHold(shared, clock=clock, sleep=clock.sleep, burst_s=burst_s)
    job = PageHold(shared, clock=clock, sleep=clock.sleep, burst_s=burst_s)
    return server, job, clock


def test_a_job_pauses_exactly_until_the_hold_ends_and_not_without_one():
    server, job, clock = _pair()
    assert job.pause() == 0.0 and clock.slept == []  # nothing held: no pause, no sleep
    server.hold(3.0)
    assert job.pause() == pytest.approx(3.0)
    assert sum(clock.slept) == pytest.approx(3.0) and max(clock.slept) <= 0.05 + 1e-9  # short naps: a hold ends on time
    assert not server.held() and job.pause() == 0.0


def test_a_hold_is_extended_by_a_later_page_never_shortened():
    server, job, clock = _pair()
    server.hold(3.0)
    clock.advance(1.0)
    server.hold(1.0)  # ends at 2 s from now; the first ends at 2 s too
    assert job.pause() == pytest.approx(2.0)
    server.hold(3.0)
    clock.advance(2.0)
    server.hold(3.0)  # a second page 2 s later: held until 3 s from now
    assert job.pause() == pytest.approx(3.0)


def test_a_cancel_ends_the_pause_at_once():
    server, job, clock = _pair()
    server.hold(3.0)
    cancelled = iter([False, False, True])
    assert job.pause(lambda: next(cancelled)) == pytest.approx(0.1)


def test_a_job_never_pauses_more_than_its_burst_at_once_nor_half_of_its_time():
    server, job, clock = _pair(burst_s=6.0)
    server.hold(1000.0)  # pages opened without end
    assert job.pause() == pytest.approx(6.0)  # at most the burst at once
    assert job.pause() == 0.0  # no budget left: the batch runs
    paused = ran = 0.0
    for batch_s in [0.5, 0.2, 1.0, 0.05] * 50:  # batches of uneven length under a hold that never ends
        clock.advance(batch_s)
        ran += batch_s
        paused += job.pause()
    assert paused == pytest.approx(ran)  # it pauses as long as it ran, never longer: half of the time
    clock.until = None
    server.until.value = 0.0
    clock.advance(100.0)
    server.hold(1000.0)
    assert job.pause() == pytest.approx(6.0)  # a long run earns the burst back, no more


def test_hold_mode_setting_and_its_message(monkeypatch):
    monkeypatch.delenv(job_process.HOLD_ENV, raising=False)
    assert job_process.hold_mode() == "local"
    monkeypatch.setenv(job_process.HOLD_ENV, " ALL ")
    assert job_process.hold_mode() == "all"
    monkeypatch.setenv(job_process.HOLD_ENV, "sometimes")
    with pytest.raises(HmvizError, match="HMVIZ_JOB_HOLD='sometimes' is not 'local', 'all' or 'off'"):
        job_process.hold_mode()


def test_a_malformed_hold_setting_fails_the_job_with_its_message(monkeypatch):
    monkeypatch.setenv(job_process.HOLD_ENV, "sometimes")
    status, _, error = run_in_process(timed_check, (), threads=1, title="test job", cancel=threading.Event(),
                                      report=lambda event, row: None)
    assert status == "failed" and error.startswith("HMVIZ_JOB_HOLD='sometimes'")


def timed_check(job):
    """(In the job's process) how long its check between batches took, and what it answered."""
    t0 = time.monotonic()
    stop = job.should_stop()
    return time.monotonic() - t0, stop


def longest_check(job):
    """(In the job's process) say it is ready, then check between 'batches' until one check pauses."""
    job.report("ready")
    longest, deadline = 0.0, time.monotonic() + 60
    while longest < 0.3 and time.monotonic() < deadline:
        t0 = time.monotonic()
        job.should_stop()
        longest = max(longest, time.monotonic() - t0)
        time.sleep(0.01)
    return longest


@pytest.fixture()
def server_hold():
    hold = job_process.page_hold()
    yield hold
    hold.until.value = 0.0  # no later test's job pauses


def test_the_servers_hold_reaches_a_job_in_its_own_process(server_hold):
    def report(event, row):
        if event == "ready":  # a page's run while the job trains
            server_hold.hold(1.0)

    status, longest, error = run_in_process(longest_check, (), threads=1, title="test job",
                                            cancel=threading.Event(), report=report)
    assert (status, error) == ("done", None)
    assert 0.5 < longest <= 1.5  # it paused until the 1-s hold ended (less the relay's delay), not for its 6-s burst
    server_hold.until.value = 0.0
    _, (took, stopped), _ = run_in_process(timed_check, (), threads=1, title="test job", cancel=threading.Event(),
                                           report=lambda event, row: None)
    assert took < 0.05 and not stopped  # no hold: the check is immediate


def test_whose_page_runs_hold_the_jobs():
    from hmviz_app.job_process import holds

    assert holds("local", local=True) and not holds("local", local=False)
    assert holds("all", local=True) and holds("all", local=False)
    assert not holds("off", local=True) and not holds("off", local=False)


def test_the_router_holds_the_jobs_on_a_page_run(monkeypatch, server_hold):
    from streamlit.testing.v1 import AppTest

    from tests.conftest import ROOT  # noqa: I001

    def held_after_a_run(mode: str) -> bool:
        monkeypatch.setenv(job_process.HOLD_ENV, mode)
        server_hold.until.value = 0.0
        t0 = time.monotonic()
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
        assert not at.exception
        return server_hold.until.value >= t0 + job_process.HOLD_S  # held during the run (a first run may outlast it)

    assert held_after_a_run("all")  # AppTest's browser has no address, so "all" stands for a local one here
    assert not held_after_a_run("off")
    assert not held_after_a_run("bogus")  # a malformed setting holds nothing (its message comes with the next job)
