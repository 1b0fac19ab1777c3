"""Write a file all at once: a temporary file beside it, then ``os.replace``.

Readers never see half a file, and a failed write leaves the previous file untouched. The finished
file gets the usual permissions for a new file (``0666`` less the umask, e.g. ``0644``), not the
``0600`` that ``tempfile.mkstemp`` gives, so collaborators can read what hmviz writes.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


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
