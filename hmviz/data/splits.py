"""Train / valid / test splits of genes: the file's own, a seeded random one, or by chromosome.

Holding out whole chromosomes avoids leakage between neighbouring genes that share chromatin
domains (Chromoformer and selene-sdk split by chromosome). Fixed hold-outs such as selene-sdk's
``chr6, chr7`` / ``chr8, chr9`` (:data:`DEFAULT_VALID_CHROMS`, :data:`DEFAULT_TEST_CHROMS`, the
defaults of :func:`chromosome_split`) hold 8-10 % of human genes each, and none of a dataset
without those chromosomes; :func:`ensure_split` therefore chooses the hold-out chromosomes with
:func:`choose_holdout_chroms` (seeded, each set near its fraction of genes) unless they are given.
A random split can be stratified (by label, or by expression quantile) so that every split has the
same class balance. :func:`ensure_split` records how the split was made in ``dataset.meta["split"]``
so that a model card can state it.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import numpy as np

from hmviz.choices import one_of
from hmviz.data.dataset import SPLITS, HistoneDataset
from hmviz.errors import DataError

log = logging.getLogger(__name__)

SplitHow = Literal["file", "random", "chromosome"]
SPLIT_HOWS: tuple[SplitHow, ...] = ("file", "random", "chromosome")


def as_split_how(text: str) -> SplitHow:
    """``text`` as a split kind; raises :class:`DataError` naming the kinds when it is none of them."""
    return one_of(text, SPLIT_HOWS, "split")


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
    return fr


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


def random_split(
    n_genes: int,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    seed: int = 0,
    strata: np.ndarray | Sequence | None = None,
) -> np.ndarray:
    """A seeded random split by gene: shape (n_genes,) object array of ``train``/``valid``/``test``.

    Counts are exactly :func:`split_counts`; every split with a positive fraction is non-empty
    when ``n_genes >= 3``. The same ``(n_genes, fractions, seed, strata)`` gives the same split.

    ``strata`` (one value per gene, e.g. the 0/1 label or an expression quantile bin) makes the split
    stratified: the genes are ordered by stratum (randomly within each) and dealt to the splits in an
    evenly interleaved pattern, so every stratum is split in the given fractions to within one gene
    while the totals stay exactly :func:`split_counts`. Without ``strata`` the split is the plain
    permutation of earlier versions (so old model cards rebuild the same split).
    """
    n_genes = int(n_genes)
    if n_genes < 1:
        raise DataError("A split needs at least one gene.")
    counts = split_counts(n_genes, fractions)
    rng = np.random.default_rng(seed)
    split = np.empty(n_genes, dtype=object)
    if strata is None:
        order = rng.permutation(n_genes)
        start = 0
        for name, count in zip(SPLITS, counts):
            split[order[start : start + count]] = name
            start += count
        return split
    strata = np.asarray(strata)
    if strata.shape != (n_genes,):
        raise DataError(f"strata must give one value per gene ({n_genes}); got shape {strata.shape}.")
    keys = np.unique(strata.astype(str), return_inverse=True)[1]
    order = np.lexsort((rng.random(n_genes), keys))  # by stratum, randomly within a stratum
    # The k-th gene of split s ideally sits at (k + 0.5) / count_s of the way along; sorting those
    # positions deals the splits out evenly (largest-remainder order) with exact totals.
    ideal = np.concatenate([(np.arange(c) + 0.5) / c for c in counts if c])
    names = np.concatenate([np.full(c, i) for i, c in enumerate(counts) if c])
    pattern = names[np.argsort(ideal, kind="stable")]
    split[order] = np.asarray(SPLITS, dtype=object)[pattern]
    return split


def quantile_strata(values: np.ndarray, n_strata: int = 10) -> np.ndarray:
    """Quantile bin (0 .. n_strata-1) of each value, for stratifying a split on a continuous target;
    genes without a finite value form their own stratum (-1). Fewer bins for few genes (>= 20 per bin)."""
    values = np.asarray(values, dtype=np.float64)
    ok = np.isfinite(values)
    out = np.full(values.shape, -1, dtype=np.int64)
    n = int(ok.sum())
    k = max(1, min(int(n_strata), n // 20))
    if n:
        ranks = np.argsort(np.argsort(values[ok], kind="stable"), kind="stable")
        out[ok] = ranks * k // n
    return out


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
    names = _chrom_names(chrom)
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


def _chrom_names(chrom: np.ndarray | Sequence[str]) -> np.ndarray:
    """Normalised chromosome per gene; a gene without one is an error (a chromosome split needs all)."""
    names = np.array([normalize_chrom(c) for c in np.asarray(chrom, dtype=object).ravel()], dtype=object)
    missing = np.flatnonzero(names == "")
    if missing.size:
        raise DataError(
            f"{missing.size} genes have no chromosome (e.g. row {int(missing[0])}); a chromosome split "
            "needs one for every gene. Fill in the chrom column or use a random split."
        )
    return names


def choose_holdout_chroms(
    chrom: np.ndarray | Sequence[str],
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    seed: int = 0,
    valid_chroms: Iterable[str] | str | None = None,
    test_chroms: Iterable[str] | str | None = None,
) -> tuple[list[str], list[str]]:
    """Validation and test chromosomes for a chromosome hold-out, chosen so that each held-out set
    holds roughly its fraction of the genes.

    The chromosomes are visited in a seeded random order; the test set (then the validation set)
    takes a chromosome when that brings its gene count closer to ``fraction * genes``, and always
    gets at least one. A set given by the user (``valid_chroms``/``test_chroms``) is kept as given
    and the other one is chosen from the remaining chromosomes. At least one chromosome is left for
    training. Same ``(genes' chromosomes, fractions, seed)``, same choice. Returns ``(valid, test)``,
    each sorted in karyotype order.
    """
    names = _chrom_names(chrom)
    fr = _check_fractions(fractions)
    chroms, sizes = np.unique(names, return_counts=True)
    size = dict(zip(chroms.tolist(), sizes.tolist()))
    given = {
        "valid": None if valid_chroms is None else _chrom_list(valid_chroms, "validation"),
        "test": None if test_chroms is None else _chrom_list(test_chroms, "test"),
    }
    taken = set().union(*(set(g) for g in given.values() if g is not None))
    to_choose = [k for k in ("test", "valid") if given[k] is None and fr[SPLITS.index(k)] > 0]
    pool = [c for c in sorted(size, key=_chrom_sort_key) if c not in taken]
    if len(pool) < len(to_choose) + 1:
        have = ", ".join(sorted(size, key=_chrom_sort_key))
        raise DataError(
            f"A chromosome split needs a chromosome each for training, validation and test, but the data has "
            f"only {len(size)} ({have}). Use a random split (--split random) for data on so few chromosomes."
        )
    order = [pool[i] for i in np.random.default_rng(seed).permutation(len(pool))]
    chosen = {k: (list(v) if v is not None else []) for k, v in given.items()}
    for k in to_choose:
        target = fr[SPLITS.index(k)] * names.size
        reserve = 1 + sum(1 for j in to_choose if j != k and not chosen[j])  # chromosomes others still need
        total = 0
        for c in list(order):
            if len(order) - 1 < reserve:
                break
            if abs(total + size[c] - target) < abs(total - target):
                chosen[k].append(c)
                total += size[c]
                order.remove(c)
        if not chosen[k]:  # every chromosome overshoots: the one closest to the target
            c = min(order, key=lambda c: (abs(size[c] - target), _chrom_sort_key(c)))
            chosen[k].append(c)
            order.remove(c)
    return (sorted(chosen["valid"], key=_chrom_sort_key), sorted(chosen["test"], key=_chrom_sort_key))


def ensure_split(
    dataset: HistoneDataset,
    how: SplitHow = "file",
    seed: int = 0,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    valid_chroms: Iterable[str] | str | None = None,
    test_chroms: Iterable[str] | str | None = None,
    strata: np.ndarray | None = None,
    stratified_by: str | None = None,
) -> HistoneDataset:
    """A new dataset whose ``split`` is set, with ``meta["split"]`` saying how it was made.

    ``how``:

    * ``"file"``: keep the split the file gave; when it has none, make a seeded random split.
    * ``"random"``: a seeded random split by gene (:func:`random_split`), replacing any file split;
      stratified by ``strata`` (one value per gene) when given, ``stratified_by`` naming them.
    * ``"chromosome"``: hold out whole chromosomes (:func:`chromosome_split`): ``valid_chroms`` and
      ``test_chroms`` when given, the others chosen by :func:`choose_holdout_chroms` from ``seed``
      and ``fractions``.

    ``meta["split"]`` holds ``kind`` (``file``/``random``/``chromosome``), the ``seed`` and
    ``fractions``, ``stratified_by`` (random), the ``valid_chroms``/``test_chroms`` and
    ``chroms_chosen`` (``"given"``, ``"seeded"`` or ``"valid given, test seeded"`` ...; chromosome),
    and the gene ``counts`` per split; it is JSON-safe so a model card can store it. The input
    dataset is not changed.
    """
    how = as_split_how(how)
    if how != "chromosome" and (valid_chroms is not None or test_chroms is not None):
        raise DataError(
            "Validation and test chromosomes (--valid-chroms, --test-chroms) apply to the chromosome "
            f"split only, not to a {how} split; add --split chromosome or leave them out."
        )
    meta = dict(dataset.meta)
    info: dict[str, Any]  # JSON-safe: kind, seed, fractions, chromosomes, counts
    if how == "file" and dataset.split is not None:
        split = dataset.split
        info = dict(meta["split"]) if isinstance(meta.get("split"), dict) else {"kind": "file"}
    elif how == "chromosome":
        if dataset.chrom is None:
            raise DataError(
                "A chromosome split needs the chromosome of every gene, but this dataset has no chrom column. "
                "Add one (e.g. from a gene annotation) or use a random split."
            )
        valid, test = choose_holdout_chroms(dataset.chrom, fractions, seed, valid_chroms, test_chroms)
        split = chromosome_split(dataset.chrom, valid, test)
        given = [w for w, g in (("valid", valid_chroms), ("test", test_chroms)) if g is not None]
        chosen = "given" if len(given) == 2 else f"{given[0]} given, the other seeded" if given else "seeded"
        info = {"kind": "chromosome", "valid_chroms": valid, "test_chroms": test, "chroms_chosen": chosen}
        if len(given) < 2:
            info.update(seed=int(seed), fractions=list(_check_fractions(fractions)))
    else:
        if how == "file":
            log.info("The data has no split column; making a random split by gene (seed %d).", seed)
        elif dataset.split is not None:
            log.info("Replacing the file's split with a random split by gene (seed %d).", seed)
        split = random_split(dataset.n_genes, fractions, seed, strata=strata)
        info = {"kind": "random", "seed": int(seed), "fractions": list(_check_fractions(fractions))}
        if strata is not None:
            info["stratified_by"] = stratified_by or "given strata"
    info["counts"] = {name: int((split == name).sum()) for name in SPLITS}
    if info["counts"]["train"] == 0:
        raise DataError("The split has no 'train' genes; a model needs training genes. Use another split.")
    meta["split"] = info
    return dataclasses.replace(dataset, split=split, meta=meta)
