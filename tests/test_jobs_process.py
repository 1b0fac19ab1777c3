"""The app's jobs in their own processes (hmviz_app.job_process, hmviz_app.jobs): progress and the
result come back, cancel reaches the process, a crash or a bug gives a clear message, nothing waits
forever, and the pool stays bounded. Targets are module-level (a spawned process imports them)."""

from __future__ import annotations

import os
import threading
import time

import pytest

from hmviz.errors import HmvizError
from hmviz.runtime import job_threads
from hmviz_app import job_process
from hmviz_app.job_process import run_in_process


# ------------------------------------------------------------------------ targets (in the job's process)
def counting(job, n):
    for k in range(n):
        job.report({"step": k}, {"epoch": k} if k % 2 else None)
    return {"pid": os.getpid(), "nice": os.nice(0), "omp": os.environ.get("OMP_NUM_THREADS"),
            "sched": os.sched_getscheduler(0) if hasattr(os, "sched_getscheduler") else None}


def until_cancelled(job, marker):
    from hmviz.engine import TrainingCancelled

    job.report("started")
    open(marker + ".running", "w").close()
    while not job.cancel.is_set():
        time.sleep(0.01)
    open(marker, "w").close()
    raise TrainingCancelled("Training was cancelled; nothing was saved.")


def stops_when_cancelled(job):
    job.report("started")
    while not job.cancel.is_set():
        time.sleep(0.01)
    return "saw the cancel"


def ignores_cancel(job, pid_file):
    import subprocess

    worker = subprocess.Popen(["sleep", "120"])  # like a study's worker process
    with open(pid_file + ".tmp", "w") as fh:
        fh.write(str(worker.pid))
    os.rename(pid_file + ".tmp", pid_file)
    time.sleep(120)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as fh:
            return "\tZ" not in next(line for line in fh if line.startswith("State:"))
    except FileNotFoundError:
        return False


def killed(job):
    os.kill(os.getpid(), 9)


def users_error(job):
    raise HmvizError("Batch size must be at least 1.")


def bug(job):
    raise ValueError("oops")


def unpicklable_result(job):
    return threading.Lock()


def _run(target, *args, cancel=None, **kw):
    events, rows = [], []

    def report(event, row):
        events.append(event)
        if row is not None:
            rows.append(row)

    result = run_in_process(target, args, threads=1, title="test job", cancel=cancel or threading.Event(),
                            report=report, **kw)
    return result, events, rows


def _wait(predicate, seconds=30.0):
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert predicate()


# -------------------------------------------------------------------------------------------- tests
def test_result_and_progress_come_back_from_a_lower_priority_process():
    pids = []
    (status, result, error), events, rows = _run(counting, 5, started=pids.append)
    assert (status, error) == ("done", None)
    assert events == [{"step": k} for k in range(5)] and rows == [{"epoch": 1}, {"epoch": 3}]
    assert result["pid"] != os.getpid() and pids == [result["pid"], None]
    assert job_process.JOB_NICENESS == 19 and result["nice"] == 19  # the lowest priority there is
    if hasattr(os, "SCHED_IDLE"):  # Linux: it runs only when nothing else wants the CPU
        assert result["sched"] == os.SCHED_IDLE
    assert result["omp"] == "1"


def test_job_priority_settings_and_their_messages(monkeypatch):
    monkeypatch.delenv(job_process.NICENESS_ENV, raising=False)
    monkeypatch.delenv(job_process.SCHED_ENV, raising=False)
    assert job_process.job_priority() == (19, True)
    monkeypatch.setenv(job_process.NICENESS_ENV, "10")
    monkeypatch.setenv(job_process.SCHED_ENV, "normal")
    assert job_process.job_priority() == (10, False)
    for name, value in ((job_process.NICENESS_ENV, "-5"), (job_process.NICENESS_ENV, "20"),
                        (job_process.SCHED_ENV, "fifo")):
        monkeypatch.setenv(name, value)
        with pytest.raises(HmvizError, match=f"{name}='{value}'"):
            job_process.job_priority()
        monkeypatch.setenv(name, "10" if name == job_process.NICENESS_ENV else "idle")


def test_a_malformed_priority_setting_fails_the_job_with_its_message(monkeypatch):
    monkeypatch.setenv(job_process.SCHED_ENV, "fifo")
    (status, _, error), _, _ = _run(counting, 1)
    assert status == "failed" and error.startswith("HMVIZ_JOB_SCHED='fifo' is not 'idle' or 'normal'")


def test_cancel_reaches_the_process_and_it_stops(tmp_path):
    cancel = threading.Event()
    marker = tmp_path / "stopped"
    out = {}
    thread = threading.Thread(target=lambda: out.update(r=_run(until_cancelled, str(marker), cancel=cancel)))
    thread.start()
    _wait((tmp_path / "stopped.running").exists, 120)  # past its imports: PyTorch loads slowly on a busy machine
    cancel.set()
    thread.join(60)
    (status, result, error), events, _ = out["r"]
    assert status == "cancelled" and error == "Training was cancelled; nothing was saved." and result is None
    assert events == ["started"] and marker.exists()  # the process itself saw the cancel


def test_a_process_that_ignores_cancel_is_killed_with_the_processes_it_started(monkeypatch, tmp_path):
    monkeypatch.setattr(job_process, "CANCEL_GRACE_S", 0.5)
    cancel = threading.Event()
    pid_file = tmp_path / "worker.pid"
    out = {}
    thread = threading.Thread(target=lambda: out.update(r=_run(ignores_cancel, str(pid_file), cancel=cancel)))
    thread.start()
    _wait(pid_file.exists, 120)
    cancel.set()
    t0 = time.monotonic()
    thread.join(30)
    assert not thread.is_alive() and time.monotonic() - t0 < 15
    status, _, error = out["r"][0]
    assert status == "cancelled" and "did not stop within 0 s" in error and "nothing was saved" in error
    _wait(lambda: not _alive(int(pid_file.read_text())), 10)  # the process it started went with it


@pytest.mark.parametrize("target, message", [
    (killed, "The job's process stopped without a result (killed by signal 9, perhaps for lack of memory)"),
    (users_error, "Batch size must be at least 1."),
    (bug, "Something went wrong inside hmviz (a bug, not your input): ValueError: oops"),
    (unpicklable_result, "Something went wrong inside hmviz (a bug, not your input): the result could not be sent"),
])
def test_a_crash_or_an_error_is_one_clear_message(target, message):
    t0 = time.monotonic()
    (status, result, error), _, _ = _run(target)
    assert status == "failed" and result is None and error.startswith(message), error
    assert time.monotonic() - t0 < 30  # a dead process is noticed, not waited for


def test_a_job_that_cannot_be_sent_fails_before_a_process_starts():
    status, _, error = _run(lambda job: None)[0]
    assert status == "failed" and "cannot be sent to its process" in error


def test_pool_runs_process_jobs_in_order_and_close_stops_them():
    from hmviz_app.jobs import Job, JobPool

    pool = JobPool(workers=1)
    first = Job("train", "first", stops_when_cancelled, process=True)
    second = Job("train", "second", counting, args=(3,), process=True)
    pool.submit(first)
    pool.submit(second)
    _wait(lambda: first.events == ["started"])
    assert first.pid is not None and first.pid != os.getpid()
    assert (first.status, second.status, pool.position(second)) == ("running", "queued", 1)
    first.cancel.set()
    _wait(lambda: second.status == "done")
    assert (first.status, first.result, first.pid) == ("done", "saw the cancel", None)
    assert second.result["pid"] != os.getpid() and second.history == [{"epoch": 1}]
    third = Job("train", "third", stops_when_cancelled, process=True)
    pool.submit(third)
    _wait(lambda: third.events == ["started"])
    t0 = time.monotonic()
    pool.close(wait_s=20)
    assert third.result == "saw the cancel" and time.monotonic() - t0 < 15


def test_job_threads_share_the_cores_left_after_the_server(monkeypatch):
    monkeypatch.delenv("HMVIZ_THREADS", raising=False)
    assert job_threads(1, cores=2) == 1  # this machine: one core for pages, one for the job
    assert job_threads(4, cores=16) == 3
    assert job_threads(3, cores=2) == 1  # never zero
    monkeypatch.setenv("HMVIZ_THREADS", "5")
    assert job_threads(1, cores=2) == 5
    with pytest.raises(HmvizError, match="workers must be at least 1"):
        job_threads(0)


def test_shared_jobs_run_once_per_key_in_the_short_pool_beside_a_busy_long_pool(monkeypatch):
    """Work a page waits on (the Evaluate page's baselines) is one job per key for every session, in a
    pool of its own: a training run holding the long pool's only worker does not delay it."""
    from hmviz_app import jobs

    monkeypatch.setattr(jobs, "_pools", {})
    monkeypatch.setattr(jobs, "_shared", {})
    monkeypatch.setitem(jobs.QUEUES, "long", lambda: 1)
    try:
        training = jobs.Job("train", "training", stops_when_cancelled, process=True).start()
        _wait(lambda: training.events == ["started"])
        first = jobs.shared_job(("baselines", "model", "data"), "baselines", counting, args=(2,))
        assert jobs.shared_job(("baselines", "model", "data"), "again", counting, args=(2,)) is first
        other = jobs.shared_job(("baselines", "model", "other data"), "other", counting, args=(2,))
        assert other is not first and first.queue == "short"
        _wait(lambda: first.status == "done" and other.status == "done")
        assert training.status == "running" and first.result["pid"] != os.getpid()
        assert first.args == ()  # a finished job keeps no reference to its inputs (a dataset)
        assert jobs.shared_job(("baselines", "model", "data"), "later", counting, args=(2,)) is first  # kept
        first.status = "cancelled"  # as when the server stopped it: the next visit starts it again
        assert jobs.shared_job(("baselines", "model", "data"), "retry", counting, args=(2,)) is not first
    finally:
        for p in list(jobs._pools.values()):
            p.close(wait_s=20)


def sleeps(job, seconds):
    time.sleep(seconds)  # like a fit that never checks the cancel
    return "woke"


def test_durations_in_words():
    from hmviz_app.jobs import _duration

    assert [_duration(s) for s in (1800, 120, 90, 1, 2.5)] == ["30 minutes", "2 minutes", "90 seconds", "1 second",
                                                                "2.5 seconds"]


def test_a_shared_job_past_its_time_limit_fails_with_a_message_and_frees_the_worker(monkeypatch):
    """Nothing waits forever: a shared job (which holds the short pool's one worker) is cancelled at its time
    limit, its process killed after the grace period when it ignores the cancel, and it fails with one line."""
    from hmviz_app import job_process, jobs

    monkeypatch.setattr(jobs, "_pools", {})
    monkeypatch.setattr(jobs, "_shared", {})
    monkeypatch.setattr(job_process, "CANCEL_GRACE_S", 1.0)
    try:
        slow = jobs.shared_job(("baselines", "m", "d"), "Baselines for m", sleeps, args=(60,), time_limit_s=1.0)
        after = jobs.shared_job(("baselines", "m", "other"), "Baselines for m on other", counting, args=(1,))
        t0 = time.monotonic()
        _wait(lambda: after.status == "done", seconds=40)
        assert time.monotonic() - t0 < 30 and slow.status == "failed" and slow.timed_out
        assert slow.error == "Baselines for m took longer than 1 second and was stopped (the server may be very busy)."
        assert jobs.shared_job(("baselines", "m", "d"), "again", counting, args=(1,)) is slow  # kept, not retried
        again = jobs.shared_job(("baselines", "m", "d"), "asked", counting, args=(1,), retry=True)  # a user asked
        assert again is not slow
        _wait(lambda: again.status == "done")
        assert jobs.shared_job(("baselines", "m", "d"), "third", counting, args=(1,), retry=True) is again  # done
        again.status, again.error = "failed", "one class only"  # any failure is kept for every visit
        assert jobs.shared_job(("baselines", "m", "d"), "fourth", counting, args=(1,)) is again
    finally:
        for p in list(jobs._pools.values()):
            p.close(wait_s=20)
