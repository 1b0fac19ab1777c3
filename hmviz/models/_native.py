"""The compiled per-mark BiLSTM kernel (``_bilstm_native.cpp``): built once per machine, optional.

:func:`load` compiles the C++ source with torch's ``cpp_extension`` (the machine's C++ compiler and
ninja) into a cache directory and registers its operators as ``torch.ops.hmviz_bilstm``. The build
takes about half a minute the first time on a machine and is reused afterwards (the directory name
carries a digest of the source, the compiler flags, the torch version and the CPU, so a changed
source or another machine sharing the home directory gets its own build). Where it cannot be built
(no compiler, no ninja, not Linux x86_64, ``HMVIZ_NATIVE=0``), :func:`load` returns ``None`` and
:func:`unavailable_reason` says why; ``PerMarkBiLSTM(impl="auto")`` then uses the eager
``"grouped"`` recurrence, which gives the same numbers up to float rounding.

The compiled module only ever comes from hmviz's own source file; nothing is loaded from a model
or data file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
import shutil
import threading
from pathlib import Path

import torch

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("_bilstm_native.cpp")
_FLAGS = ("-O3", "-march=native", "-fopenmp")
_lock = threading.Lock()
_state: dict[str, object] = {}  # "ops" once loaded, or "reason" once it failed


def cache_dir() -> Path:
    """Where builds go: ``$HMVIZ_CACHE_DIR``, else ``$XDG_CACHE_HOME/hmviz``, else ``~/.cache/hmviz``."""
    if os.environ.get("HMVIZ_CACHE_DIR"):
        return Path(os.environ["HMVIZ_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "hmviz"


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
    for part in (SOURCE.read_bytes(), " ".join(_FLAGS).encode(), torch.__version__.encode(),
                 _cpu_signature().encode(), platform.machine().encode()):
        digest.update(part)
    return f"hmviz_bilstm_{digest.hexdigest()[:16]}"


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


def load():
    """``torch.ops.hmviz_bilstm`` (building it on first use), or ``None`` where it cannot be built."""
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
                _build()
                _state["ops"] = torch.ops.hmviz_bilstm
                return _state["ops"]
            except Exception as exc:  # a failed build must never break the model: fall back
                reason = f"building {SOURCE.name} failed: {str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__}"
        _state["reason"] = reason
        log.warning("hmviz: compiled LSTM kernel unavailable (%s); using the slower eager recurrence", reason)
        return None


def _build() -> None:
    name = _build_name()
    directory = cache_dir() / "native" / name
    library, done = directory / f"{name}.so", directory / "BUILT"
    if done.exists() and library.exists():  # built before (the name pins source, flags, torch, CPU)
        torch.ops.load_library(str(library))
        return
    from torch.utils import cpp_extension

    directory.mkdir(parents=True, exist_ok=True)
    log.warning("hmviz: compiling the LSTM kernel once for this machine (about 30 s) into %s", directory)
    cpp_extension.load(name=name, sources=[str(SOURCE)], extra_cflags=list(_FLAGS), extra_ldflags=["-fopenmp"],
                       build_directory=str(directory), is_python_module=False, verbose=False)
    done.write_text("built by hmviz; the next process loads the library without rebuilding\n")


def build_in_background() -> threading.Thread | None:
    """Start :func:`load` on a daemon thread (the app calls this at start, so the one-off build
    does not wait for the first explanation); ``None`` if it has already run."""
    if "ops" in _state or "reason" in _state:
        return None
    thread = threading.Thread(target=load, name="hmviz-native-build", daemon=True)
    thread.start()
    return thread


def unavailable_reason() -> str | None:
    """Why :func:`load` returned ``None`` (``None`` if it has not failed)."""
    reason = _state.get("reason")
    return None if reason is None else str(reason)
