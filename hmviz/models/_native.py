"""The compiled per-mark BiLSTM kernel (``_bilstm_native.cpp``): built once per machine, optional.

:func:`load` registers the kernel's operators as ``torch.ops.hmviz_bilstm``. The kernel is compiled
with torch's ``cpp_extension`` (the machine's C++ compiler and ninja) into a cache directory, once
per machine (about half a minute), and reused afterwards: the directory name carries a digest of the
source, the compiler flags, the torch version and the CPU, so a changed source or another machine
sharing the home directory gets its own build.

The build never blocks anyone:

* a training, evaluation or explanation never builds it: :func:`ready` hands out a kernel that is
  already built (loading it takes milliseconds) and otherwise says, once per process, how to build
  it, and the model runs on the eager recurrence. The kernel is built ahead of time by
  ``python -m hmviz.models._native`` (after installing, or in CI), by the app in the background
  when it starts (:func:`build_in_background`), or by naming ``bin_lstm_impl="native"`` /
  ``HMVIZ_NATIVE=1`` (which asks for it and waits for the build, bounded as below);

* it runs in a **separate process** (``python -m hmviz.models._native``) with a time limit
  (``$HMVIZ_NATIVE_BUILD_TIMEOUT`` seconds, default 300); past it the build is killed;
* it compiles into a **private temporary directory** (``native/.tmp-<name>-<host>-<pid>``) and only
  a finished build is renamed into place, in one atomic step; so a killed build (Ctrl-C of the app,
  a killed job, a power cut) leaves no half-built directory and no torch ``lock`` file that a later
  process would wait on. Temporary directories of builds whose process is gone, and directories
  left by older hmviz versions without the ``BUILT`` marker (where torch's ``lock`` lived), are
  removed before the next build (:func:`clean_stale`);
* any failure (no compiler, no ninja, not Linux x86_64, ``HMVIZ_NATIVE=0``, a compile error, the
  time limit) logs one line and :func:`load` returns ``None``; :func:`unavailable_reason` says why,
  and ``PerMarkBiLSTM(impl="auto")`` then uses the eager ``"grouped"`` recurrence, which gives the
  same numbers up to float rounding.

Build it ahead of time (after installing, or in CI) with ``python -m hmviz.models._native``.
The compiled module only ever comes from hmviz's own source file; nothing is loaded from a model
or data file.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import logging
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("_bilstm_native.cpp")
_FLAGS = ("-O3", "-march=native", "-fopenmp")
DEFAULT_TIMEOUT_S = 300.0
_MARKER = "BUILT"
_lock = threading.Lock()
_state: dict[str, Any] = {}  # "ops" once loaded, or "reason" once it failed


def cache_dir() -> Path:
    """Where builds go: ``$HMVIZ_CACHE_DIR``, else ``$XDG_CACHE_HOME/hmviz``, else ``~/.cache/hmviz``."""
    if os.environ.get("HMVIZ_CACHE_DIR"):
        return Path(os.environ["HMVIZ_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hmviz"


def build_timeout() -> float:
    """Seconds a build may take (``$HMVIZ_NATIVE_BUILD_TIMEOUT``, default 300) before it is killed."""
    raw = os.environ.get("HMVIZ_NATIVE_BUILD_TIMEOUT", "")
    try:
        return float(raw) if raw else DEFAULT_TIMEOUT_S
    except ValueError:
        log.warning("hmviz: HMVIZ_NATIVE_BUILD_TIMEOUT=%r is not a number of seconds; using %s", raw, DEFAULT_TIMEOUT_S)
        return DEFAULT_TIMEOUT_S


def _cpu_signature() -> str:
    """The CPU's model and instruction-set flags (builds use -march=native)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor()
    lines = [ln for ln in text.splitlines() if ln.startswith(("model name", "flags"))]
    return "\n".join(sorted(set(lines)))


def _build_name() -> str:
    digest = hashlib.sha256()
    for part in (
        SOURCE.read_bytes(),
        " ".join(_FLAGS).encode(),
        torch.__version__.encode(),
        _cpu_signature().encode(),
        platform.machine().encode(),
    ):
        digest.update(part)
    return f"hmviz_bilstm_{digest.hexdigest()[:16]}"


def build_dir() -> Path:
    """The finished build's directory for this source, torch and CPU (it may not exist yet)."""
    return cache_dir() / "native" / _build_name()


def _missing_tool() -> str | None:
    if os.environ.get("HMVIZ_NATIVE", "1") == "0":
        return "HMVIZ_NATIVE=0 is set"
    if platform.system() != "Linux" or platform.machine() != "x86_64":
        return f"the compiled kernel is built on Linux x86_64 only (this is {platform.system()} {platform.machine()})"
    from torch.utils import cpp_extension

    compiler = os.environ.get("CXX", "c++")
    if shutil.which(compiler) is None:
        return f"no C++ compiler ({compiler!r} not found; install g++, e.g. `apt-get install g++`)"
    if not cpp_extension.is_ninja_available():
        return "ninja is not installed (`pip install ninja`)"
    return None


def cpu_has_avx512() -> bool:
    """Whether this CPU has AVX-512 (Linux: the ``avx512f`` flag in ``/proc/cpuinfo``)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(line.startswith("flags") and " avx512f" in line for line in text.splitlines())


def preferred() -> bool:
    """Whether ``bin_lstm_impl="auto"`` runs the kernel here: it is built already (:func:`ready`;
    ``HMVIZ_NATIVE=1`` builds it if needed), and the CPU is one where it was measured faster than
    the eager recurrence. Its register blocking is written for AVX-512:
    there it ran an AttentiveChrome epoch in 3.3-3.6 s against 8.8-10.3 s for the eager recurrence;
    on an AVX2-only AMD EPYC one forward+backward of 64 genes took 0.75 s of CPU time against
    0.22 s (docs/performance-kernel.md). ``HMVIZ_NATIVE=1`` prefers it on any CPU, ``=0`` never."""
    setting = os.environ.get("HMVIZ_NATIVE", "")
    if setting == "0" or (setting != "1" and not cpu_has_avx512()):
        return False
    return (load() if setting == "1" else ready()) is not None


def ready():
    """``torch.ops.hmviz_bilstm`` if the kernel is built already, else ``None``: never builds, never waits.

    Where it is not built (and could be), logs once per process how to build it. A model asks once
    and keeps the answer for its lifetime, so a build finishing in the background (the app's) never
    changes a running model's implementation."""
    if "ops" in _state or "reason" in _state:
        return _state.get("ops")
    if is_built():
        return load()
    if not _state.get("told") and _missing_tool() is None:
        _state["told"] = True
        log.warning(
            "hmviz: the compiled LSTM kernel is not built on this machine; using the eager recurrence "
            "(build it once, about 30 s: python -m hmviz.models._native)"
        )
    return None


def load(niceness: int = 0):
    """``torch.ops.hmviz_bilstm`` (building it first if needed, bounded), or ``None`` where it cannot be built.

    For the build entry points and an explicit request for the kernel; models on ``auto`` use
    :func:`ready`, which never builds. ``niceness``: the build process's CPU priority is lowered by this
    much (the app's background build: pages come first)."""
    if "ops" in _state:
        return _state["ops"]
    if "reason" in _state:
        return None
    with _lock:
        if "ops" in _state or "reason" in _state:
            return _state.get("ops")
        reason = _missing_tool()
        if reason is None:
            try:
                _build(niceness)
                _state["ops"] = torch.ops.hmviz_bilstm
                return _state["ops"]
            except Exception as exc:  # a failed build must never break the model: fall back
                text = str(exc).strip()
                reason = f"building {SOURCE.name} failed: {text.splitlines()[-1] if text else type(exc).__name__}"
        _state["reason"] = reason
        log.warning("hmviz: compiled LSTM kernel unavailable (%s); using the eager recurrence", reason)
        return None


def _library(directory: Path) -> Path:
    return directory / f"{directory.name}.so"


def is_built(directory: Path | None = None) -> bool:
    """Whether a finished build (library and ``BUILT`` marker) is in place."""
    directory = directory or build_dir()
    return (directory / _MARKER).exists() and _library(directory).exists()


def _build(niceness: int = 0) -> None:
    """Load the finished build, compiling it first (in a child process, with a time limit) if needed."""
    directory = build_dir()
    if not is_built(directory):
        log.warning(
            "hmviz: compiling the LSTM kernel once for this machine (about 30 s, at most %.0f s) into %s",
            build_timeout(),
            directory,
        )
        _run_build_process(directory, build_timeout(), niceness)
        if not is_built(directory):
            raise RuntimeError(f"the build process finished but left no library in {directory}")
    torch.ops.load_library(str(_library(directory)))


def _build_command(niceness: int = 0) -> list[str]:
    """The child process that builds: this module's :func:`main`, at ``niceness`` lower priority."""
    return [sys.executable, "-m", "hmviz.models._native", "--quiet", *(["--nice", str(niceness)] if niceness else [])]


def _run_build_process(directory: Path, timeout: float, niceness: int = 0) -> None:
    """Run :func:`build_into` for ``directory`` in a child process (at ``niceness``: :func:`_build_command`);
    kill its whole group past ``timeout``."""
    cmd = _build_command(niceness)
    env = {**os.environ, "HMVIZ_CACHE_DIR": str(directory.parent.parent)}
    proc = subprocess.Popen(
        cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )  # its own process group: the compiler dies with it
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        clean_stale(directory.parent)
        raise RuntimeError(
            f"the build took longer than {timeout:.0f} s and was stopped (set HMVIZ_NATIVE_BUILD_TIMEOUT to allow more)"
        ) from None
    except BaseException:  # Ctrl-C or a cancelled job: take the compiler down with us
        _kill_group(proc)
        clean_stale(directory.parent)
        raise
    if proc.returncode != 0:
        lines = [ln for ln in (output or "").strip().splitlines() if ln.strip()]
        errors = [ln for ln in lines if "error" in ln.lower()]
        raise RuntimeError((errors or lines or [f"exit status {proc.returncode}"])[-1])


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def clean_stale(native_dir: Path | None = None) -> list[Path]:
    """Remove what killed builds left in ``native_dir`` (default ``<cache>/native``); returns what was removed.

    * ``.tmp-<name>-<host>-<pid>`` directories whose process on this host is gone;
    * build directories without the ``BUILT`` marker (older hmviz versions built in place, so a
      killed build left torch's ``lock`` file there, on which every later build waited forever).
    """
    native_dir = native_dir or cache_dir() / "native"
    removed: list[Path] = []
    if not native_dir.is_dir():
        return removed
    host = socket.gethostname()
    for path in native_dir.iterdir():
        if not path.is_dir():
            continue
        if path.name.startswith(".tmp-"):
            _, _, rest = path.name.partition(".tmp-")
            owner_host, _, pid = rest.rpartition("-")
            stale = pid.isdigit() and owner_host.endswith(f"-{host}") and not _pid_alive(int(pid))
        else:
            stale = path.name.startswith("hmviz_bilstm_") and not (path / _MARKER).exists()
        if stale:
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def build_into(directory: Path) -> Path:
    """Compile the kernel into ``directory`` (in this process): into a private temporary directory
    beside it, then renamed into place. Returns ``directory``; a finished build there is kept."""
    if is_built(directory):
        return directory
    from torch.utils import cpp_extension

    directory.parent.mkdir(parents=True, exist_ok=True)
    for path in clean_stale(directory.parent):
        log.info("hmviz: removed %s, left by a stopped build", path)
    tmp = directory.parent / f".tmp-{directory.name}-{socket.gethostname()}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        # The library's file name must be the build's name (torch registers the ops under it).
        cpp_extension.load(
            name=directory.name,
            sources=[str(SOURCE)],
            extra_cflags=list(_FLAGS),
            extra_ldflags=["-fopenmp"],
            build_directory=str(tmp),
            is_python_module=False,
            verbose=False,
        )
        (tmp / _MARKER).write_text("built by hmviz; the next process loads the library without rebuilding\n")
        try:
            os.rename(tmp, directory)  # atomic; fails if another build got there first
        except OSError:
            if not is_built(directory):  # a leftover without the marker: replace it
                shutil.rmtree(directory, ignore_errors=True)
                os.rename(tmp, directory)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return directory


def build_in_background(niceness: int = 19) -> threading.Thread | None:
    """Start :func:`load` on a daemon thread (the app calls this at start, so the one-off build
    does not wait for the first explanation); ``None`` if it has already run. The compiler runs in a
    child process at ``niceness`` lower priority (19, the lowest: it never slows a page), so stopping the
    app mid-build leaves nothing behind that blocks the next start."""
    if "ops" in _state or "reason" in _state:
        return None
    thread = threading.Thread(target=load, args=(niceness,), name="hmviz-native-build", daemon=True)
    thread.start()
    return thread


def unavailable_reason() -> str | None:
    """Why :func:`load` returned ``None`` (``None`` if it has not failed)."""
    reason = _state.get("reason")
    return None if reason is None else str(reason)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hmviz.models._native", description="Build hmviz's compiled LSTM kernel for this machine now."
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines")
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        choices=range(20),
        metavar="0-19",
        help="lower this build's CPU priority (and its compiler's) by this much",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    if args.nice:
        with contextlib.suppress(OSError):
            os.nice(args.nice)  # inherited by ninja and the compiler
    reason = _missing_tool()
    if reason is not None:
        print(f"error: the compiled LSTM kernel cannot be built here: {reason}", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    directory = build_into(build_dir())
    if not args.quiet:
        print(f"built {directory} in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
