"""Which genes a model was trained, validated and tested on, in a compact exact form for its card.

A genome-wide split holds ~20,000 gene ids; as plain JSON lists they would swell the model card
that the app shows. :func:`record_split` stores, per split, the sorted gene ids joined by newlines,
zlib-compressed and base64-encoded (exact: :func:`recorded_genes` gives the ids back), next to the
count and the SHA-256 of the same joined text, so two cards can be compared by eye. The
``split_fingerprint`` covers every split's genes at once: two models with the same fingerprint were
trained, validated and tested on the same genes.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from collections.abc import Mapping

import numpy as np

from hmviz.data.dataset import SPLITS
from hmviz.errors import ModelError

ENCODING = "sorted gene ids joined by newlines, zlib-compressed, base64"


def _joined(ids) -> bytes:
    return "\n".join(sorted(str(g) for g in ids)).encode()


def split_fingerprint(gene_ids: np.ndarray, split: np.ndarray) -> str:
    """A short hash of which gene is in which split (order of the genes does not matter)."""
    h = hashlib.sha256()
    for name in SPLITS:
        h.update(name.encode() + b"\x1e" + _joined(np.asarray(gene_ids)[np.asarray(split) == name]) + b"\x1d")
    return h.hexdigest()[:16]


def record_split(gene_ids: np.ndarray, split: np.ndarray) -> dict:
    """The card's ``genes`` record: for each of train/valid/test the ``count``, ``sha256`` and the
    compressed sorted ``ids``; plus ``encoding`` and ``split_fingerprint``. JSON-safe.

    ``gene_ids`` and ``split`` are per-gene arrays of the same length (genes outside the three
    splits, e.g. ``"none"``, are not recorded).
    """
    gene_ids, split = np.asarray(gene_ids, dtype=object), np.asarray(split, dtype=object)
    out: dict = {"encoding": ENCODING, "split_fingerprint": split_fingerprint(gene_ids, split)}
    for name in SPLITS:
        text = _joined(gene_ids[split == name])
        out[name] = {
            "count": int((split == name).sum()),
            "sha256": hashlib.sha256(text).hexdigest(),
            "ids": base64.b64encode(zlib.compress(text, 9)).decode("ascii"),
        }
    return out


def recorded_counts(record: Mapping) -> dict[str, int]:
    """The number of genes per split (``train``, ``valid``, ``test``) of a :func:`record_split` record."""
    return {name: int(record[name]["count"]) for name in SPLITS}


def recorded_genes(record: Mapping) -> dict[str, set[str]]:
    """The gene ids per split of a :func:`record_split` record; a damaged record is a :class:`ModelError`."""
    out = {}
    for name in SPLITS:
        entry = record.get(name) if isinstance(record, Mapping) else None
        try:
            if not isinstance(entry, Mapping):
                raise TypeError
            text = zlib.decompress(base64.b64decode(entry["ids"]))
        except (TypeError, KeyError, ValueError, zlib.error):
            raise ModelError(
                f"The model card's record of its {name} genes is unreadable; the card was edited "
                "or damaged. Retrain the model or restore its model_card.json."
            ) from None
        if hashlib.sha256(text).hexdigest() != entry.get("sha256"):
            raise ModelError(
                f"The model card's record of its {name} genes does not match its checksum; the card "
                "was edited or damaged. Retrain the model or restore its model_card.json."
            )
        out[name] = set(text.decode().split("\n")) if text else set()
    return out


def split_of_genes(record: Mapping, gene_ids: np.ndarray) -> np.ndarray:
    """For each gene of ``gene_ids``: the split the model put it in (``train``/``valid``/``test``), or
    ``""`` when the model never saw the gene. Shape ``(genes,)``, object array."""
    genes = recorded_genes(record)
    ids = np.asarray(gene_ids, dtype=object)
    out = np.full(ids.shape, "", dtype=object)
    for name in SPLITS:
        out[np.isin(ids, list(genes[name]))] = name
    return out
