"""The output lock where ``fcntl`` is missing (Windows): hmviz.atomic then takes an ``O_EXCL`` lock file
holding the writer's pid. Simulated here by setting ``hmviz.atomic.fcntl`` to None, as the import
fallback does: two writers are still refused, a dead writer's lock is taken over, a writer that has not
written its pid yet still holds it, the lock file is closed before it is removed (Windows cannot remove
an open file), and a writer's liveness is not tested with ``os.kill(pid, 0)`` on Windows (signal 0 is
CTRL_C_EVENT there)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hmviz import atomic
from hmviz.errors import HmvizError

HOLDER = """
import sys
from hmviz import atomic
atomic.fcntl = None
with atomic.output_lock(sys.argv[1], "the model folder"):
    print("held", flush=True)
    sys.stdin.readline()
print("released", flush=True)
"""


@pytest.fixture
def no_fcntl(monkeypatch):
    monkeypatch.setattr(atomic, "fcntl", None)


def _lock_file(out: Path) -> Path:
    return out.parent / f".{out.name}.lock"


def test_a_writer_in_another_process_refuses_the_second(tmp_path, no_fcntl):
    out = tmp_path / "model"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(out)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, cwd=Path(__file__).resolve().parents[1])
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(HmvizError, match=rf"model: another hmviz process \(pid {holder.pid}\) is writing it now"):
            with atomic.output_lock(out):
                pass
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "released"
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert not _lock_file(out).exists()
    with atomic.output_lock(out):  # free again once the first writer is done
        assert _lock_file(out).read_text() == f"pid {os.getpid()}"
    assert not _lock_file(out).exists()


def test_two_saves_in_one_process_without_fcntl_one_is_refused(tmp_path, no_fcntl):
    import threading

    out, errors, inside = tmp_path / "model", [], threading.Event()
    release = threading.Event()

    def first():
        with atomic.output_lock(out):
            inside.set()
            release.wait(10)

    thread = threading.Thread(target=first)
    thread.start()
    inside.wait(10)
    try:
        with atomic.output_lock(out):
            pass
    except HmvizError as exc:
        errors.append(str(exc))
    release.set()
    thread.join()
    assert len(errors) == 1 and "another save to it is already running" in errors[0]


def test_a_dead_writers_lock_is_taken_over_and_an_unwritten_one_is_not(tmp_path, no_fcntl):
    out = tmp_path / "model"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _lock_file(out).write_text(f"pid {dead.pid}")  # a writer killed while it held the lock
    with atomic.output_lock(out):
        assert _lock_file(out).read_text() == f"pid {os.getpid()}"
    _lock_file(out).write_text("")  # a writer between creating the file and writing its pid
    with pytest.raises(HmvizError, match="another hmviz process is starting to write it"):
        with atomic.output_lock(out):
            pass
    old = time.time() - 60
    os.utime(_lock_file(out), (old, old))  # ...or one killed right there, a minute ago
    with atomic.output_lock(out):
        pass
    assert not _lock_file(out).exists()


def test_the_lock_file_is_closed_before_it_is_removed(tmp_path, no_fcntl, monkeypatch):
    """As on Windows: removing a file this process still has open fails (PermissionError)."""
    real_unlink = Path.unlink

    def windows_unlink(self, missing_ok=False):
        target = os.path.realpath(self)
        for fd in os.listdir("/proc/self/fd"):
            try:
                if os.readlink(f"/proc/self/fd/{fd}") == target:
                    raise PermissionError(13, "The process cannot access the file because it is in use", str(self))
            except OSError as exc:
                if isinstance(exc, PermissionError):
                    raise
        return real_unlink(self, missing_ok=missing_ok)

    if not Path("/proc/self/fd").is_dir():
        pytest.skip("needs /proc to see which files are open")
    monkeypatch.setattr(Path, "unlink", windows_unlink)
    out = tmp_path / "model"
    for _ in range(2):  # a left-behind lock with this (live) process's pid would refuse the second save
        with atomic.output_lock(out):
            pass
        assert not _lock_file(out).exists()


class _Kernel32:
    """Windows' process calls, faked: ``procs`` maps pid -> exit code (259: still running)."""

    def __init__(self, procs, denied=()):
        self.procs, self.denied, self.error, self.closed = procs, set(denied), 0, 0

    def OpenProcess(self, access, inherit, pid):  # noqa: N802
        if pid in self.denied:
            self.error = 5
            return 0
        if pid not in self.procs:
            self.error = 87  # ERROR_INVALID_PARAMETER: no such process
            return 0
        return pid

    def GetLastError(self):  # noqa: N802
        return self.error

    def GetExitCodeProcess(self, handle, code_ref):  # noqa: N802
        code_ref._obj.value = self.procs[handle]
        return 1

    def CloseHandle(self, handle):  # noqa: N802
        self.closed += 1


def test_liveness_on_windows_asks_for_the_exit_code_not_a_signal(monkeypatch):
    k = _Kernel32({10: 259, 11: 0}, denied={12})
    monkeypatch.setattr(os, "kill", lambda *a: pytest.fail("os.kill(pid, 0) sends CTRL_C_EVENT on Windows"))
    assert atomic._alive_windows(10, k) is True  # running
    assert atomic._alive_windows(11, k) is False  # exited
    assert atomic._alive_windows(12, k) is True  # another user's: it exists
    assert atomic._alive_windows(13, k) is False  # no such process
    assert k.closed == 2
    monkeypatch.setattr(atomic.os, "name", "nt")
    monkeypatch.setattr(atomic, "_alive_windows", lambda pid: pid == 10)
    assert atomic._alive(10) and not atomic._alive(11)
