"""The input transform applied to histone signal before a model sees it.

The published models disagree (raw counts, per-mark max over the whole data set, log1p); hmviz makes
the choice explicit and serialisable: optional ``log1p``, then per-mark scaling whose statistics
are fitted on the **training genes only** and stored (with the mark names) via :meth:`to_dict`, so
that a model card carries it and a loaded model applies the identical transform.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from hmviz.choices import one_of
from hmviz.data.dataset import HistoneDataset
from hmviz.errors import DataError, ModelError

log = logging.getLogger(__name__)

Scaling = Literal["none", "standard", "max"]
SCALINGS: tuple[Scaling, ...] = ("none", "standard", "max")


def as_scaling(text: str) -> Scaling:
    """``text`` as a scaling; raises :class:`DataError` naming the scalings when it is none of them."""
    return one_of(text, SCALINGS, "scaling")


@dataclass
class SignalTransform:
    """``x -> (f(x) - center[mark]) / scale[mark]`` with ``f = log1p`` (or identity).

    * ``scaling="standard"``: center = mean, scale = standard deviation of ``f(x)`` over the
      training genes and all bins, per mark (z-scores; a constant mark gets scale 1).
    * ``scaling="max"``: center = 0, scale = the largest ``|f(x)|`` over the training genes, per
      mark (values in [-1, 1] on the training genes; an all-zero mark gets scale 1).
    * ``scaling="none"``: center = 0, scale = 1.

    Call :meth:`fit` before :meth:`transform`. Statistics are kept in float64 and applied in float32.
    """

    log1p: bool = True
    scaling: Scaling = "standard"
    marks: tuple[str, ...] | None = None
    center: np.ndarray | None = field(default=None, repr=False)
    scale: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.scaling = as_scaling(self.scaling)
        self.log1p = bool(self.log1p)
        if self.marks is not None:
            self.marks = tuple(str(m) for m in self.marks)
        for name in ("center", "scale"):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, np.asarray(value, dtype=np.float64).reshape(-1))

    @property
    def is_fitted(self) -> bool:
        return self.center is not None and self.scale is not None

    # ------------------------------------------------------------------ core
    def _forward(self, signal: np.ndarray) -> np.ndarray:
        x = np.asarray(signal)
        if x.ndim != 3:
            raise DataError(f"signal must be shaped (genes, bins, marks); got {x.shape}.")
        if self.log1p:
            if x.size and np.nanmin(x) < 0:
                raise DataError(
                    f"The signal has negative values (minimum {np.nanmin(x):.4g}), so log1p does not apply. "
                    "Is it already transformed (e.g. log fold change)? Then use log1p=False."
                )
            return np.log1p(x, dtype=np.float32)
        return np.array(x, dtype=np.float32, copy=True)

    def _check_marks(self, n_marks: int, marks: Sequence[str] | None) -> None:
        fitted = self.marks or ()
        if n_marks != len(fitted):
            raise DataError(
                f"The signal has {n_marks} marks but the transform was fitted on {len(fitted)} "
                f"({', '.join(fitted)}). Select those marks, in that order, with dataset.select_marks()."
            )
        if marks is not None and tuple(str(m) for m in marks) != fitted:
            raise DataError(
                f"The signal's marks are {', '.join(map(str, marks))} but the transform was fitted on "
                f"{', '.join(fitted)} in that order. Select and order the marks with dataset.select_marks()."
            )

    def fit(
        self, signal: np.ndarray, train_index: np.ndarray | Sequence[int], marks: Sequence[str] | None = None
    ) -> SignalTransform:
        """Fit per-mark statistics on the training genes ``signal[train_index]`` only; returns self.

        ``signal``: (genes, bins, marks). ``train_index``: integer rows or a boolean mask.
        ``marks``: the mark names in order (stored and checked later); ``mark1..markN`` if omitted.
        """
        x = np.asarray(signal)
        if x.ndim != 3:
            raise DataError(f"signal must be shaped (genes, bins, marks); got {x.shape}.")
        n_marks = x.shape[2]
        names = tuple(str(m) for m in marks) if marks is not None else tuple(f"mark{k + 1}" for k in range(n_marks))
        if len(names) != n_marks:
            raise DataError(f"{len(names)} mark names given for a signal with {n_marks} marks.")
        train = np.arange(x.shape[0])[np.asarray(train_index)]
        if train.size == 0:
            raise DataError("No training genes to fit the signal transform on; check the split.")
        values = self._forward(x[train]).astype(np.float64).reshape(-1, n_marks)
        if not np.isfinite(values).all():
            raise DataError("The training signal has missing or infinite values; fill or drop those genes first.")
        if self.scaling == "standard":
            center = values.mean(axis=0)
            scale = values.std(axis=0)
        elif self.scaling == "max":
            center = np.zeros(n_marks)
            scale = np.abs(values).max(axis=0)
        else:
            center, scale = np.zeros(n_marks), np.ones(n_marks)
        flat = ~(scale > 0)
        if flat.any():
            log.warning(
                "Mark(s) %s are constant on the training genes; they are not rescaled.",
                ", ".join(n for n, f in zip(names, flat) if f),
            )
            scale = np.where(flat, 1.0, scale)
        self.marks, self.center, self.scale = names, center, scale
        return self

    def transform(self, signal: np.ndarray, marks: Sequence[str] | None = None) -> np.ndarray:
        """The transformed signal: a new float32 array shaped like ``signal`` (never in place).

        ``marks``, when given, must equal the fitted mark names in order; the number of marks is
        always checked. Raises :class:`DataError` on a mismatch.
        """
        center, scale = self.center, self.scale
        if center is None or scale is None:  # not is_fitted
            raise RuntimeError("SignalTransform.transform called before fit (or from_dict).")
        x = np.asarray(signal)
        if x.ndim != 3:
            raise DataError(f"signal must be shaped (genes, bins, marks); got {x.shape}.")
        self._check_marks(x.shape[2], marks)
        out = self._forward(x)
        if self.scaling != "none":
            out -= center.astype(np.float32)
            out /= scale.astype(np.float32)
        return out

    def fit_dataset(self, dataset: HistoneDataset, train_index: np.ndarray | None = None) -> SignalTransform:
        """:meth:`fit` on a dataset's signal and marks; ``train_index`` defaults to its ``train`` split."""
        if train_index is None:
            train_index = dataset.split_indices("train")
        return self.fit(dataset.signal, train_index, marks=dataset.marks)

    def transform_dataset(self, dataset: HistoneDataset) -> HistoneDataset:
        """A new dataset with transformed signal; ``meta["transform"]`` records :meth:`to_dict`."""
        signal = self.transform(dataset.signal, marks=dataset.marks)
        return dataclasses.replace(dataset, signal=signal, meta={**dataset.meta, "transform": self.to_dict()})

    # --------------------------------------------------------- serialisation
    def to_dict(self) -> dict:
        """A JSON-safe description (for model cards); :meth:`from_dict` restores it exactly."""
        center, scale = self.center, self.scale
        if center is None or scale is None:  # not is_fitted
            raise RuntimeError("SignalTransform.to_dict called before fit.")
        return {
            "log1p": self.log1p,
            "scaling": self.scaling,
            "marks": list(self.marks or ()),
            "center": [float(v) for v in center],
            "scale": [float(v) for v in scale],
        }

    @classmethod
    def from_dict(cls, data: dict) -> SignalTransform:
        """Rebuild a fitted transform from :meth:`to_dict` output (e.g. read from a model card)."""
        need = ("log1p", "scaling", "marks", "center", "scale")
        if not isinstance(data, dict) or any(k not in data for k in need):
            have = ", ".join(sorted(data)) if isinstance(data, dict) else type(data).__name__
            raise ModelError(f"The stored signal transform needs the keys {', '.join(need)}; found {have}.")
        marks = [str(m) for m in data["marks"]]
        if not (len(marks) == len(data["center"]) == len(data["scale"])):
            raise ModelError(
                f"The stored signal transform names {len(marks)} marks but has {len(data['center'])} centers "
                f"and {len(data['scale'])} scales; the model card is damaged."
            )
        return cls(
            log1p=data["log1p"],
            scaling=data["scaling"],
            marks=tuple(marks),
            center=np.asarray(data["center"], dtype=np.float64),
            scale=np.asarray(data["scale"], dtype=np.float64),
        )
