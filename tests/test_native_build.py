"""The compiled LSTM kernel's build never blocks anyone (hmviz/models/_native.py).

A build runs in a child process with a time limit, in a private temporary directory that is renamed
into place when finished; what a killed build leaves is removed before the next one; any failure
falls back to the eager recurrence, and the model card says which implementation ran.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hmviz.models import _native

ROOT = Path(__file__).resolve().parents[1]


def _env(cache: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "HMVIZ_CACHE_DIR": str(cache), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env.update(extra)
    return env


@pytest.fixture
def tiny_table(tmp_path: Path) -> Path:
    from hmviz.data.io import write_long
    from hmviz.data.synthetic import make_sample_dataset

    dataset, _ = make_sample_dataset(n_genes=60, seed=0)
    return write_long(dataset, tmp_path / "tiny.csv.gz")


@pytest.fixture
def buildable() -> None:
    """Skip where the kernel is not built at all (no compiler, not Linux x86_64, HMVIZ_NATIVE=0)."""
    if _native._missing_tool() is not None:
        pytest.skip(f"the kernel is not built on this machine: {_native._missing_tool()}")


@pytest.fixture
def fresh_cache(tmp_path: Path, monkeypatch, buildable) -> Path:
    """A process that has not tried to load the kernel yet, with an empty build cache."""
    monkeypatch.setattr(_native, "_state", {})
    monkeypatch.setenv("HMVIZ_CACHE_DIR", str(tmp_path))
    return tmp_path


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_clean_stale_removes_what_killed_builds_left_and_keeps_live_and_finished_builds(tmp_path: Path) -> None:
    import socket

    host = socket.gethostname()
    native = tmp_path / "native"
    dead = native / f".tmp-hmviz_bilstm_aaaa-{host}-{_dead_pid()}"
    live = native / f".tmp-hmviz_bilstm_aaaa-{host}-{os.getpid()}"
    old_style = native / "hmviz_bilstm_bbbb"  # built in place by an older hmviz and killed: torch's lock
    finished = native / "hmviz_bilstm_cccc"
    for d in (dead, live, old_style, finished):
        d.mkdir(parents=True)
    (dead / "lock").touch()
    (old_style / "lock").touch()
    (finished / "BUILT").touch()
    removed = _native.clean_stale(native)
    assert sorted(removed) == sorted([dead, old_style])
    assert live.exists() and finished.exists() and not dead.exists() and not old_style.exists()


def test_a_failing_build_logs_one_line_and_falls_back_in_bounded_time(fresh_cache, monkeypatch, caplog) -> None:
    """A compiler that fails (here `false`) ends the child build; load() returns None with the reason."""
    monkeypatch.setenv("CXX", "false")
    t0 = time.perf_counter()
    with caplog.at_level(logging.WARNING, logger=_native.__name__):
        assert _native.load() is None
    assert time.perf_counter() - t0 < 120
    assert _native.unavailable_reason().startswith("building _bilstm_native.cpp failed")
    unavailable = [r for r in caplog.records if "unavailable" in r.getMessage()]
    assert len(unavailable) == 1 and "\n" not in unavailable[0].getMessage()
    assert not [p for p in (fresh_cache / "native").iterdir() if p.name.startswith(".tmp-")]  # nothing left behind


def test_the_build_time_limit_stops_the_compiler_and_falls_back(fresh_cache, monkeypatch) -> None:
    monkeypatch.setenv("HMVIZ_NATIVE_BUILD_TIMEOUT", "1")
    t0 = time.perf_counter()
    assert _native.load() is None
    assert time.perf_counter() - t0 < 30
    assert "longer than 1 s" in _native.unavailable_reason()
    assert not _native.is_built()


def test_a_model_run_never_builds_the_kernel_and_says_once_how_to(fresh_cache, monkeypatch, caplog) -> None:
    """ready() (what "auto" models ask) hands out only a finished build: with none, it returns at once,
    builds nothing, and logs one line naming the build command; load() (an explicit request) builds."""

    def no_build(niceness: int = 0) -> None:
        raise AssertionError("a model run must not build the kernel")

    monkeypatch.setattr(_native, "_build", no_build)
    t0 = time.perf_counter()
    with caplog.at_level(logging.WARNING, logger=_native.__name__):
        assert _native.ready() is None
        assert _native.ready() is None
    assert time.perf_counter() - t0 < 2
    told = [r.getMessage() for r in caplog.records if "not built" in r.getMessage()]
    assert len(told) == 1 and "python -m hmviz.models._native" in told[0]
    assert "reason" not in _native._state  # not a failure: the app's background build may still run
    assert not (fresh_cache / "native").exists() or not any((fresh_cache / "native").iterdir())


def test_without_a_compiler_nothing_is_built_and_the_reason_is_given(monkeypatch) -> None:
    monkeypatch.setattr(_native, "_state", {})
    monkeypatch.setenv("HMVIZ_NATIVE", "0")
    assert _native.load() is None
    assert _native.unavailable_reason() == "HMVIZ_NATIVE=0 is set"
    monkeypatch.setattr(_native, "_state", {})
    monkeypatch.delenv("HMVIZ_NATIVE")
    monkeypatch.setenv("CXX", "no-such-compiler-hmviz")
    if sys.platform == "linux" and os.uname().machine == "x86_64":
        assert _native.load() is None
        assert "no C++ compiler ('no-such-compiler-hmviz' not found" in _native.unavailable_reason()


def _wait_for(predicate, seconds: float) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def test_train_attentivechrome_finishes_after_a_build_was_killed_midway(tmp_path: Path, tiny_table: Path,
                                                                      buildable) -> None:
    """Kill a build while torch holds its lock, then train AttentiveChrome for one epoch from the CLI.

    Before: the killed build's ``lock`` stayed in the build directory and every later LSTM run waited
    on it forever. Now a run never builds the kernel (nor waits on a build): it runs on the eager
    recurrence, says how to build the kernel, and the card records the implementation used; the next
    build removes what the killed one left."""
    cache = tmp_path / "cache"
    build = subprocess.Popen([sys.executable, "-m", "hmviz.models._native", "--quiet"], env=_env(cache),
                             start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    native = cache / "native"
    try:
        locked = _wait_for(lambda: any(native.glob(".tmp-*/lock")), 60)
    finally:
        os.killpg(build.pid, signal.SIGKILL)
        build.wait()
    assert locked, "the build never started compiling"
    # What an older hmviz left when killed: the build directory itself, holding torch's lock.
    old_style = native / subprocess.run(
        [sys.executable, "-c", "from hmviz.models import _native; print(_native.build_dir().name)"],
        env=_env(cache), capture_output=True, text=True, check=True).stdout.strip()
    old_style.mkdir()
    (old_style / "lock").touch()

    out = tmp_path / "run"
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "hmviz", "train", "--data", str(tiny_table), "--model",
                           "attentivechrome", "--epochs", "1", "--out", str(out), "--quiet"],
                          env=_env(cache, HMVIZ_NATIVE_BUILD_TIMEOUT="3"), capture_output=True, text=True,
                          timeout=240)
    seconds = time.perf_counter() - t0
    assert proc.returncode == 0, proc.stderr
    assert seconds < 240
    card = json.loads((out / "model_card.json").read_text())
    assert card["training"]["bin_lstm_impl"] == "grouped"
    assert "python -m hmviz.models._native" in proc.stderr
    removed = _native.clean_stale(native)  # what the next build does first
    assert not any(p.name.startswith(".tmp-") and (p / "lock").exists() for p in native.iterdir())
    assert old_style in removed and not old_style.exists()


def test_without_the_kernel_the_card_records_the_eager_recurrence(monkeypatch) -> None:
    from hmviz.data.synthetic import make_sample_dataset
    from hmviz.options import TrainOptions
    from hmviz.training import train

    monkeypatch.setattr(_native, "_state", {"reason": "HMVIZ_NATIVE=0 is set"})
    dataset, _ = make_sample_dataset(n_genes=40, seed=0)
    card = train(dataset, TrainOptions(model="attentivechrome", epochs=1, device="cpu")).card
    assert card["training"]["bin_lstm_impl"] == "grouped"
    card = train(dataset, TrainOptions(model="deepchrome", epochs=1, device="cpu")).card
    assert "bin_lstm_impl" not in card["training"]  # no LSTM, nothing to record


def test_the_apps_background_build_runs_at_the_lowest_priority(monkeypatch) -> None:
    """The app's build (build_in_background) asks for niceness 19 and the build's main() applies it before
    anything else, so the compiler it starts inherits it; a build asked for in the foreground keeps its
    priority. A malformed --nice is a usage error."""
    monkeypatch.setattr(_native, "_state", {})
    asked = []
    monkeypatch.setattr(_native, "load", lambda niceness=0: asked.append(niceness))
    _native.build_in_background().join(10)
    assert asked == [19]
    assert _native._build_command(19)[-2:] == ["--nice", "19"] and "--nice" not in _native._build_command()
    niced = []
    monkeypatch.setattr(_native.os, "nice", niced.append)
    monkeypatch.setattr(_native, "_missing_tool", lambda: "no C++ compiler")
    assert _native.main(["--quiet", "--nice", "19"]) == 2 and niced == [19]
    with pytest.raises(SystemExit):
        _native.main(["--nice", "25"])
