"""Train / valid / test splits of genes: the file's own, a seeded random one, or by chromosome.

Holding out whole chromosomes avoids leakage between neighbouring genes that share chromatin
domains (Chromoformer splits by chromosome; selene-sdk's samplers default to
``validation_holdout=['chr6', 'chr7']`` and ``test_holdout=['chr8', 'chr9']``, which hmviz uses as
its defaults). :func:`ensure_split` records how the split was made in ``dataset.meta["split"]`` so
that a model card can state it.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
from typing import Iterable, Literal, Sequence

import numpy as np

from hmviz.data.dataset import SPLITS, HistoneDataset
from hmviz.errors import DataError

log = logging.getLogger(__name__)

SplitHow = Literal["file", "random", "chromosome"]
SPLIT_HOWS: tuple[str, ...] = ("file", "random", "chromosome")

DEFAULT_FRACTIONS: tuple[float, float, float] = (0.7, 0.15, 0.15)
#: selene-sdk's default hold-outs (samplers' ``validation_holdout`` / ``test_holdout``).
DEFAULT_VALID_CHROMS: tuple[str, ...] = ("chr6", "chr7")
DEFAULT_TEST_CHROMS: tuple[str, ...] = ("chr8", "chr9")

_UNKNOWN_CHROM = {"", ".", "na", "nan", "none", "null", "?"}


def normalize_chrom(name: object) -> str:
    """One spelling per chromosome: ``1``, ``chr1``, ``CHR01`` -> ``chr1``; ``x`` -> ``chrX``;
    ``MT``/``M`` -> ``chrM``. Other names (scaffolds) keep their suffix after a ``chr`` prefix.

    Returns ``""`` for a missing chromosome (empty, ``.``, ``NA``, ``nan``).
    """
    s = str(name).strip()
    if s.lower() in _UNKNOWN_CHROM:
        return ""
    if s.lower().startswith("chr"):
        s = s[3:]
    if s.isdigit():
        s = str(int(s))
    elif s.upper() in ("X", "Y"):
        s = s.upper()
    elif s.upper() in ("M", "MT"):
        s = "M"
    return "chr" + s


def _chrom_sort_key(name: str) -> tuple:
    rest = name[3:]
    return (0, int(rest), "") if rest.isdigit() else (1, 0, rest)


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    try:
        fr = tuple(float(f) for f in fractions)
    except (TypeError, ValueError):
        raise DataError(f"Split fractions must be three numbers (train, valid, test); got {fractions!r}.") from None
    if len(fr) != 3 or not all(math.isfinite(f) and f >= 0 for f in fr):
        raise DataError(
            f"Split fractions must be three non-negative numbers (train, valid, test), e.g. 0.7,0.15,0.15; got {fractions!r}."
        )
    if abs(sum(fr) - 1.0) > 1e-6:
        raise DataError(f"Split fractions must add up to 1; {', '.join(map(str, fr))} add up to {sum(fr):.6g}.")
    if fr[0] == 0:
        raise DataError("The train fraction must be above 0: a model needs training genes.")
    return fr  # type: ignore[return-value]


def split_counts(n_genes: int, fractions: Sequence[float] = DEFAULT_FRACTIONS) -> tuple[int, int, int]:
    """Genes per split for ``n_genes``: largest-remainder rounding of ``fractions * n_genes``.

    The counts add up to ``n_genes`` exactly; a split with a positive fraction gets at least one gene
    when there are enough genes (taken from the largest split).
    """
    fr = np.array(_check_fractions(fractions))
    raw = fr * int(n_genes)
    counts = np.floor(raw).astype(int)
    short = int(n_genes) - int(counts.sum())
    # Largest fractional parts first; ties go to the earlier split (train, then valid).
    for k in np.argsort(-(raw - counts), kind="stable")[:short]:
        counts[k] += 1
    for k in range(3):
        if fr[k] > 0 and counts[k] == 0 and counts.max() > 1:
            counts[int(np.argmax(counts))] -= 1
            counts[k] += 1
    return int(counts[0]), int(counts[1]), int(counts[2])


def random_split(n_genes: int, fractions: Sequence[float] = DEFAULT_FRACTIONS, seed: int = 0) -> np.ndarray:
    """A seeded random split by gene: shape (n_genes,) object array of ``train``/``valid``/``test``.

    Counts are exactly :func:`split_counts`; every split with a positive fraction is non-empty
    when ``n_genes >= 3``. The same ``(n_genes, fractions, seed)`` gives the same split.
    """
    n_genes = int(n_genes)
    if n_genes < 1:
        raise DataError("A split needs at least one gene.")
    counts = split_counts(n_genes, fractions)
    order = np.random.default_rng(seed).permutation(n_genes)
    split = np.empty(n_genes, dtype=object)
    start = 0
    for name, count in zip(SPLITS, counts):
        split[order[start:start + count]] = name
        start += count
    return split


def _chrom_list(chroms: Iterable[str] | str, what: str) -> list[str]:
    if isinstance(chroms, str):
        chroms = [c for c in re.split(r"[,\s]+", chroms) if c]
    out = []
    for c in chroms:
        norm = normalize_chrom(c)
        if not norm:
            raise DataError(f"'{c}' in the {what} chromosomes is not a chromosome name.")
        if norm not in out:
            out.append(norm)
    return out


def chromosome_split(
    chrom: np.ndarray | Sequence[str],
    valid_chroms: Iterable[str] | str = DEFAULT_VALID_CHROMS,
    test_chroms: Iterable[str] | str = DEFAULT_TEST_CHROMS,
) -> np.ndarray:
    """A split by chromosome: genes on ``test_chroms`` are test, on ``valid_chroms`` valid, the rest train.

    Names are harmonised (``1`` == ``chr1``, see :func:`normalize_chrom`) on both sides; a
    comma-separated string is accepted. Defaults are selene-sdk's (valid chr6, chr7; test chr8, chr9).
    Returns shape (genes,) object array. Raises :class:`DataError` when a gene has no chromosome,
    when a named hold-out chromosome is not in the data, when a chromosome is named for both
    valid and test, or when no genes are left for training.
    """
    names = np.array([normalize_chrom(c) for c in np.asarray(chrom, dtype=object).ravel()], dtype=object)
    missing = np.flatnonzero(names == "")
    if missing.size:
        raise DataError(
            f"{missing.size} genes have no chromosome (e.g. row {int(missing[0])}); a chromosome split "
            "needs one for every gene. Fill in the chrom column or use a random split."
        )
    valid = _chrom_list(valid_chroms, "validation")
    test = _chrom_list(test_chroms, "test")
    both = sorted(set(valid) & set(test), key=_chrom_sort_key)
    if both:
        raise DataError(f"Chromosome(s) {', '.join(both)} are named for both validation and test; name each once.")
    present = set(names.tolist())
    absent = [c for c in valid + test if c not in present]
    if absent:
        have = ", ".join(sorted(present, key=_chrom_sort_key))
        raise DataError(
            f"Hold-out chromosome(s) {', '.join(absent)} have no genes in this data. "
            f"Chromosomes present: {have}. Choose hold-out chromosomes from that list."
        )
    split = np.full(names.size, "train", dtype=object)
    split[np.isin(names, valid)] = "valid"
    split[np.isin(names, test)] = "test"
    if not (split == "train").any():
        raise DataError(
            "Every gene lies on a hold-out chromosome, so none is left for training; hold out fewer chromosomes."
        )
    return split


def ensure_split(
    dataset: HistoneDataset,
    how: SplitHow = "file",
    seed: int = 0,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    valid_chroms: Iterable[str] | str = DEFAULT_VALID_CHROMS,
    test_chroms: Iterable[str] | str = DEFAULT_TEST_CHROMS,
) -> HistoneDataset:
    """A new dataset whose ``split`` is set, with ``meta["split"]`` saying how it was made.

    ``how``:

    * ``"file"``: keep the split the file gave; when it has none, make a seeded random split.
    * ``"random"``: a seeded random split by gene (:func:`random_split`), replacing any file split.
    * ``"chromosome"``: hold out whole chromosomes (:func:`chromosome_split`).

    ``meta["split"]`` holds ``kind`` (``file``/``random``/``chromosome``), the ``seed`` and
    ``fractions`` or the ``valid_chroms``/``test_chroms``, and the gene ``counts`` per split;
    it is JSON-safe so a model card can store it. The input dataset is not changed.
    """
    if how not in SPLIT_HOWS:
        raise DataError(f"Unknown split '{how}'; use one of {', '.join(SPLIT_HOWS)}.")
    meta = dict(dataset.meta)
    if how == "file" and dataset.split is not None:
        split = dataset.split
        info = dict(meta["split"]) if isinstance(meta.get("split"), dict) else {"kind": "file"}
    elif how == "chromosome":
        if dataset.chrom is None:
            raise DataError(
                "A chromosome split needs the chromosome of every gene, but this dataset has no chrom column. "
                "Add one (e.g. from a gene annotation) or use a random split."
            )
        split = chromosome_split(dataset.chrom, valid_chroms, test_chroms)
        info = {"kind": "chromosome",
                "valid_chroms": _chrom_list(valid_chroms, "validation"),
                "test_chroms": _chrom_list(test_chroms, "test")}
    else:
        if how == "file":
            log.info("The data has no split column; making a random split by gene (seed %d).", seed)
        elif dataset.split is not None:
            log.info("Replacing the file's split with a random split by gene (seed %d).", seed)
        split = random_split(dataset.n_genes, fractions, seed)
        info = {"kind": "random", "seed": int(seed), "fractions": list(_check_fractions(fractions))}
    info["counts"] = {name: int((split == name).sum()) for name in SPLITS}
    if info["counts"]["train"] == 0:
        raise DataError("The split has no 'train' genes; a model needs training genes. Use another split.")
    meta["split"] = info
    return dataclasses.replace(dataset, split=split, meta=meta)
