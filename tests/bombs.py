"""Decompression bombs for the limit tests and ``bench/bench_repros.py``: small files, huge when read."""

from __future__ import annotations

import zlib
from pathlib import Path


def gzip_bomb(path: Path, first: bytes, repeated: bytes, decompressed_mb: int) -> Path:
    """Write ``first`` then ``decompressed_mb`` MB of ``repeated`` to ``path``, gzip-compressed about 1000:1
    (made 1 MB at a time: memory stays small whatever the size)."""
    comp = zlib.compressobj(1, zlib.DEFLATED, 31)
    block = (repeated * ((1 << 20) // len(repeated) + 1))[: 1 << 20]
    with open(path, "wb") as fh:
        fh.write(comp.compress(first))
        for _ in range(decompressed_mb):
            fh.write(comp.compress(block))
        fh.write(comp.flush())
    return path
