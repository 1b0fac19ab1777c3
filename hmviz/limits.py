"""Resource limits: every size that input, a flag, a widget or a model card can drive is checked here
before the memory is allocated or the work starts.

Each limit has a default that fits a laptop (a few GB of memory) and an environment variable that
overrides it, e.g. ``HMVIZ_MAX_INPUT_MB=4096 python -m hmviz validate big.csv.gz``. A value over a
limit raises :class:`hmviz.errors.HmvizError` (exit 2 on the command line) naming the input, the
size found, the limit and the variable that raises it. See ``docs/robustness.md``.

This module imports nothing heavy (no numpy, no torch) so that every reader can use it.
"""

from __future__ import annotations

import io
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from hmviz.errors import HmvizError, LimitError


@dataclass(frozen=True)
class Limit:
    """One limit: its default, the environment variable that overrides it, and its unit."""

    env: str
    default: int
    unit: str  # shown in messages ("MB", "values", ...)
    scale: int = 1  # the variable is in ``unit``; the value used is ``env value * scale``
    what: str = ""

    def value(self) -> int:
        """The limit in effect (the environment variable if set to a positive whole number)."""
        raw = os.environ.get(self.env, "").strip()
        if raw:
            try:
                number = int(float(raw))
            except ValueError:
                raise HmvizError(
                    f"The environment variable {self.env}={raw!r} is not a whole number; "
                    f"unset it or give a number of {self.unit}."
                ) from None
            if number > 0:
                return number * self.scale
        return self.default * self.scale

    def shown(self) -> str:
        return f"{self.value() // self.scale:,} {self.unit}"


MB = 1 << 20

#: Bytes of one data, annotation or track file after decompression.
INPUT_BYTES = Limit("HMVIZ_MAX_INPUT_MB", 512, "MB", MB, "decompressed size of one input file")
#: Columns of one table (a header of 100,000 names is not histone data).
COLUMNS = Limit("HMVIZ_MAX_COLUMNS", 2_000, "columns", what="columns in one table")
#: Values of signal held in memory: genes x bins x marks (float32, 4 bytes each).
SIGNAL_VALUES = Limit("HMVIZ_MAX_VALUES", 150_000_000, "values", what="signal values (genes x bins x marks)")
#: Bins per gene (window / bin size).
BINS_PER_GENE = Limit("HMVIZ_MAX_BINS", 20_000, "bins", what="bins per gene")
#: Bytes of one gene annotation (GTF) after decompression. Larger than :data:`INPUT_BYTES`: a GTF is
#: streamed (only its gene lines are kept) and GENCODE's comprehensive human GTF is about 1.5 GB.
ANNOTATION_BYTES = Limit("HMVIZ_MAX_ANNOTATION_MB", 4096, "MB", MB, "decompressed size of one gene annotation")
#: Gene records of one annotation or gene-name table (a genome has tens of thousands of genes).
GENE_RECORDS = Limit("HMVIZ_MAX_GENES", 500_000, "gene records", what="gene records in one annotation")
#: Trainable parameters of one model.
PARAMETERS = Limit("HMVIZ_MAX_PARAMETERS", 50_000_000, "parameters", what="model parameters")
#: Size of a model card (JSON).
CARD_BYTES = Limit("HMVIZ_MAX_CARD_MB", 16, "MB", MB, "model card size")
#: Integration steps (and similar per-explanation repetitions).
STEPS = Limit("HMVIZ_MAX_STEPS", 5_000, "steps", what="integration steps")
#: Training epochs and batch size.
EPOCHS = Limit("HMVIZ_MAX_EPOCHS", 100_000, "epochs", what="epochs")
BATCH_SIZE = Limit("HMVIZ_MAX_BATCH_SIZE", 1_000_000, "genes", what="batch size")


def check(limit: Limit, value: int, where: str, fix: str = "", subject: str = "") -> None:
    """Raise when ``value`` (in bytes for byte limits) exceeds ``limit``; ``where`` names the input, and
    ``subject`` what has that many (``"the deepchrome model"``: "... has 5,000,000 parameters, ...")."""
    if value > limit.value():
        found = f"{value / limit.scale:,.0f} {limit.unit}" if limit.scale > 1 else f"{value:,} {limit.unit}"
        what = f"{subject} has {found}" if subject else f"{limit.what or limit.unit}: {found}"
        raise LimitError(
            f"{where}: {what}, more than hmviz's limit of {limit.shown()}. "
            + (f"{fix} " if fix else "")
            + f"If the machine has the memory, raise the limit with the environment variable {limit.env}."
        )


def check_regular_file(path: str | Path, what: str = "") -> Path:
    """``path`` must be a regular file (after following symlinks): never a FIFO, device or socket.

    Reading a FIFO waits forever and ``/dev/zero`` never ends; both are refused before opening.
    Returns the path. Missing files and folders are left to the caller's own message.
    """
    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return path
    except OSError as exc:
        raise HmvizError(
            f"{what or path}: cannot be read ({exc.strerror}). Check the path and its permissions."
        ) from None
    if stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode):
        return path
    kind = (
        "a named pipe (FIFO)"
        if stat.S_ISFIFO(st.st_mode)
        else "a device"
        if (stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode))
        else "a socket"
        if stat.S_ISSOCK(st.st_mode)
        else "not a regular file"
    )
    target = f" (a link to {os.path.realpath(path)})" if path.is_symlink() else ""
    raise LimitError(
        f"{what or path}: is {kind}{target}, not a regular file; hmviz reads only regular files. "
        "Give a regular file (save the data to a file first)."
    )


class LimitedReader(io.RawIOBase):
    """A binary file object read through (e.g. a ``gzip.open`` stream), raising :class:`LimitError` once
    more than ``limit`` bytes came out of it: a reader that streams stops a decompression bomb at the
    limit, in time and memory. ``where`` names the input in the message; ``fix`` says what to do."""

    def __init__(self, fh, limit: Limit, where: str, fix: str = "") -> None:
        super().__init__()
        self._fh, self._limit, self._where, self._fix = fh, limit, where, fix
        self._max = limit.value()
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = self._fh.readinto(buffer)
        self.count += n
        if self.count > self._max:
            check(self._limit, self.count, self._where, self._fix)
        return n

    def close(self) -> None:
        self._fh.close()
        super().close()


def read_limited(path: str | Path, limit: Limit = INPUT_BYTES) -> bytes:
    """The bytes of a regular file, refused before reading when larger than ``limit``."""
    path = check_regular_file(path)
    with open(path, "rb") as fh:
        size = os.fstat(fh.fileno()).st_size
        check(limit, size, str(path))
        data = fh.read(limit.value() + 1)
    check(limit, len(data), str(path))
    return data
