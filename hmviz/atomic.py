"""Outputs that appear whole or not at all, with one writer at a time.

* :func:`output_lock`: an exclusive, non-blocking lock on an output path (a model folder, a table).
  A second writer, in another process or another thread of this one, is refused at once with a
  message naming the path and the holder's pid; it never waits. The lock is ``flock`` on a hidden
  ``.NAME.lock`` file beside the output, so the kernel releases it when its holder dies (a
  ``kill -9`` leaves no stale lock); where ``fcntl`` is missing, an ``O_EXCL`` lock file holding
  the pid is used and is taken over when that pid is dead.
* :func:`replace_dir`: swap a fully written temporary folder into place with ``renameat2(...,
  RENAME_EXCHANGE)`` (Linux 3.15+): one atomic system call, so at every instant the path holds
  either the complete old folder or the complete new one. Where the exchange is not available it
  falls back to two renames; a writer killed between them leaves the old folder in a hidden
  ``.NAME.<pid>.<tag>.old`` sibling, which the next writer (holding the lock) moves back.
* Leftovers of killed writers (hidden ``.NAME.<pid>.<tag>.tmp``/``.old`` siblings) are removed by
  the next writer of the same output, under the lock, so they can never belong to a live writer.

* :func:`atomic_output`: write one file all at once (a temporary file beside it, then
  ``os.replace``), with the permissions of a new file under the umask (``new_file_mode``), not the
  ``0600`` that ``tempfile.mkstemp`` gives, so collaborators can read what hmviz writes.

Test hook: the environment variable ``HMVIZ_KILL_AT=<point>`` makes the process SIGKILL itself at
that named point of a save (see :func:`kill_point`); used by the kill tests only.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import os
import re
import secrets
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hmviz.errors import HmvizError

log = logging.getLogger(__name__)

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

_HELD: dict[str, list[int]] = {}  # lock path -> [thread ident, depth] for locks this process holds
_HELD_GUARD = threading.Lock()
_TEMP_TAIL = re.compile(r"\d+\.[0-9a-f]{8}\.(tmp|old)")  # <pid>.<random>.<kind>, see temp_sibling
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


def kill_point(name: str) -> None:
    """Test hook: SIGKILL this process when ``HMVIZ_KILL_AT`` names this point."""
    if os.environ.get("HMVIZ_KILL_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


def _lock_path(path: Path) -> Path:
    return path.parent / f".{path.name}.lock"


def _holder(lock: Path) -> str:
    try:
        text = lock.read_text().strip()
    except OSError:
        return "unknown"
    return text or "unknown"


@contextmanager
def output_lock(path: str | Path, what: str = "") -> Iterator[None]:
    """Hold the exclusive lock on output ``path`` for the ``with`` block; refuse at once if taken.

    Re-entrant within one thread (the CLI takes it for a whole run, the save takes it again).
    Raises :class:`HmvizError` when another writer holds it, or when the folder cannot be written.
    """
    path = Path(os.path.abspath(path))
    lock = _lock_path(path)
    key = str(lock)
    me = threading.get_ident()
    with _HELD_GUARD:
        held = _HELD.get(key)
        if held is not None:
            if held[0] != me:
                raise HmvizError(
                    f"{what or path}: another save to it is already running in this process; "
                    "wait for it to finish, or choose another output."
                )
            held[1] += 1
            reentered = True
        else:
            _HELD[key] = [me, 1]
            reentered = False
    if reentered:
        try:
            yield
        finally:
            with _HELD_GUARD:
                _HELD[key][1] -= 1
        return
    fd = None
    try:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _os_error(path.parent, exc, "create the folder") from None
        fd = _acquire(lock, what or str(path))
        yield
    finally:
        with _HELD_GUARD:
            del _HELD[key]
        if fd is not None:
            _release(lock, fd)


def _acquire(lock: Path, what: str) -> int:
    for _ in range(20):
        if fcntl is None:  # pragma: no cover - Windows
            return _acquire_exclusive_file(lock, what)
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:
            raise _os_error(lock.parent, exc, "write in") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise HmvizError(
                    f"{what}: another hmviz process ({_holder(lock)}) is writing it now. Wait for it to "
                    "finish, or choose another output; two writers to one output would overwrite each other."
                ) from None
            raise
        try:  # the file we locked must still be the one at the path (a releaser may have unlinked it)
            if os.fstat(fd).st_ino != os.stat(lock).st_ino:
                raise FileNotFoundError
        except FileNotFoundError:
            os.close(fd)
            continue
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}".encode())
        return fd
    raise HmvizError(f"{what}: could not take the lock {lock}; other writers keep taking it. Try again.")


#: A lock file without a readable pid is a writer between creating it and writing its pid, unless older.
_UNWRITTEN_LOCK_S = 10.0


def _acquire_exclusive_file(lock: Path, what: str) -> int:  # pragma: no cover - used without fcntl
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            os.write(fd, f"pid {os.getpid()}".encode())
            return fd
        except FileExistsError:
            text = _holder(lock)
            pid = int(text.split()[-1]) if text.split() and text.split()[-1].isdigit() else None
            if pid is None:  # its writer may not have written its pid yet: held, unless it is old
                try:
                    age = time.time() - lock.stat().st_mtime
                except FileNotFoundError:
                    continue
                if age < _UNWRITTEN_LOCK_S:
                    raise HmvizError(
                        f"{what}: another hmviz process is starting to write it. Wait for it to finish, "
                        "or choose another output."
                    ) from None
            elif _alive(pid):
                raise HmvizError(
                    f"{what}: another hmviz process (pid {pid}) is writing it now. Wait for it "
                    "to finish, or choose another output."
                ) from None
            try:
                lock.unlink()  # stale: its writer is dead
            except FileNotFoundError:
                pass
    raise HmvizError(f"{what}: could not take the lock {lock}. Try again.")


def _alive(pid: int) -> bool:  # pragma: no cover - used without fcntl
    if os.name == "nt":
        return _alive_windows(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _alive_windows(pid: int, kernel32=None) -> bool:
    """Whether process ``pid`` runs, on Windows: ``os.kill(pid, 0)`` is no test there (signal 0 is
    ``CTRL_C_EVENT``: it would interrupt the other writer). ``kernel32``: for tests."""
    if kernel32 is None:  # pragma: no cover - Windows
        kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return kernel32.GetLastError() == 5  # ERROR_ACCESS_DENIED: it exists, as another user's
    try:
        code = ctypes.c_ulong()
        ok = kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        return not ok or code.value == 259  # STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)


def _release(lock: Path, fd: int) -> None:
    if fcntl is None:  # the O_EXCL file: close it first (Windows cannot remove a file that is open)
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            lock.unlink()
        return
    try:
        lock.unlink()  # before unlocking: a waiter that opened it re-checks the inode and retries
    except FileNotFoundError:
        pass
    finally:
        os.close(fd)


def _os_error(path: Path, exc: OSError, doing: str) -> HmvizError:
    return HmvizError(
        f"{path}: cannot {doing} it ({exc.strerror}). Check that the folder exists and that "
        "you may write there, or choose another output."
    )


# --------------------------------------------------------------------------- temporary siblings
def temp_sibling(path: Path, kind: str = "tmp") -> Path:
    """A fresh hidden sibling name ``.NAME.<pid>.<random>.<kind>`` (not created)."""
    return path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.{kind}"


def _leftovers(path: Path) -> list[Path]:
    prefix = f".{path.name}."
    try:
        entries = list(path.parent.iterdir())
    except OSError:
        return []
    return [p for p in entries if p.name.startswith(prefix) and _TEMP_TAIL.fullmatch(p.name[len(prefix) :])]


def clean_leftovers(path: str | Path) -> None:
    """Under the output's lock: restore an old folder a killed fallback swap left hidden, then remove
    every temporary sibling (they belong to dead writers, since writers hold the lock)."""
    path = Path(os.path.abspath(path))
    found = _leftovers(path)
    if not path.exists():
        old = sorted((p for p in found if p.name.endswith(".old")), key=lambda p: p.stat().st_mtime)
        if old:
            os.rename(old[-1], path)
            log.warning("restored %s from %s (a save was interrupted)", path, old[-1].name)
            found.remove(old[-1])
    for p in found:
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            try:
                p.unlink()
            except OSError:
                pass


# ------------------------------------------------------------------------------------ swap
def _exchange(a: Path, b: Path) -> bool:
    """Atomically exchange two paths; False when the system or file system cannot."""
    if os.environ.get("HMVIZ_NO_RENAME_EXCHANGE"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def replace_dir(new: Path, path: Path) -> None:
    """Put the complete folder ``new`` at ``path``; the old folder (if any) is removed afterwards.

    Call under :func:`output_lock`. With RENAME_EXCHANGE ``path`` is never absent; in the fallback
    a kill between the two renames leaves the old folder hidden, restored by :func:`clean_leftovers`.
    """
    if not path.exists():
        os.rename(new, path)  # atomic; fails if something appeared at path meanwhile
        kill_point("after_swap")
        return
    if _exchange(new, path):
        kill_point("after_swap")
        shutil.rmtree(new, ignore_errors=True)  # now the old folder
        return
    old = temp_sibling(path, "old")
    os.rename(path, old)
    kill_point("between_renames")
    try:
        os.rename(new, path)
    except BaseException:
        os.rename(old, path)
        raise
    kill_point("after_swap")
    shutil.rmtree(old, ignore_errors=True)


def new_file_mode() -> int:
    """The permissions ``open(path, "w")`` would give a new file under the current umask."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in ``path``'s folder to write to; on success it replaces ``path``
    (with :func:`new_file_mode` permissions), on any error it is removed."""
    path = Path(path)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, new_file_mode())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
