"""The real example: 600 REMC genes in K562 (E123) and H1 (E003), read where the public data is.

The data are Roadmap Epigenomics (REMC) histone-mark reads and RNA-seq counts as released with DeepDiff
(Sekhon et al. 2018, https://github.com/QData/DeepDiff; see docs/real-example.md for where to get them).
They are not shipped with hmviz: :func:`find_remc_example` looks for the folder that holds
``Cell1.{train,valid,test}.csv`` and ``Cell1.expr.csv`` (and the same for Cell2), in this order:

1. the folder named by the environment variable ``HMVIZ_EXAMPLE_DATA``;
2. ``../shared/data/deepdiff-E123-E003`` beside a checkout of hmviz.

:func:`remc_example` converts it on the fly into an hmviz :class:`~hmviz.data.dataset.MultiCellDataset`
with the cells named ``K562`` (Cell1, E123) and ``H1`` (Cell2, E003); each cell is a
:class:`~hmviz.data.dataset.HistoneDataset` of 600 genes x 200 bins of 100 bp x 5 marks, with the
genes' symbols (from the release's row names), their RNA-seq counts (from the ``.expr.csv`` files) and
the release's train/valid/test split (200 genes each). No model is shipped for it: models are trained
on demand (the Train page, or ``python -m hmviz train --data DIR``).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

from hmviz import resources

log = logging.getLogger(__name__)

ENV = "HMVIZ_EXAMPLE_DATA"
FOLDER = "deepdiff-E123-E003"
#: DeepDiff's cell file prefix -> (cell name in hmviz, Roadmap epigenome id).
CELLS = {"Cell1": ("K562", "E123"), "Cell2": ("H1", "E003")}
TITLE = "Real example: 600 REMC genes in K562 and H1"
SMALL_NOTE = (
    "600 genes is a small training set (200 for training, 200 for validation, 200 for testing): models "
    "trained on it are rough and their test metrics vary a lot from seed to seed; published models "
    "used about 6,600 genes for training."
)
SOURCE = (
    "Roadmap Epigenomics (REMC) K562 (E123) and H1 (E003), 600 genes, as released with DeepDiff (Sekhon et al. 2018)"
)


def _complete(folder: Path) -> bool:
    return all(
        (folder / f"{cell}.{part}.csv").is_file() for cell in CELLS for part in ("train", "valid", "test", "expr")
    )


def find_remc_example() -> Path | None:
    """The folder of the public REMC example, or None when it is not on this machine."""
    candidates = []
    if os.environ.get(ENV):
        candidates.append(Path(os.environ[ENV]).expanduser())
    checkout = resources.sample_data().parent  # the repository root of a checkout
    candidates.append(checkout.parent / "shared" / "data" / FOLDER)
    for folder in candidates:
        if _complete(folder):
            return folder
        log.debug("no REMC example in %s", folder)
    return None


def remc_example(folder: str | Path | None = None):
    """The REMC example as a :class:`MultiCellDataset` with cells ``K562`` and ``H1`` (see the module
    docstring); ``folder`` defaults to :func:`find_remc_example`. Raises :class:`DataError` when absent."""
    from hmviz.data import read_dataset
    from hmviz.data.dataset import MultiCellDataset
    from hmviz.errors import DataError

    folder = Path(folder) if folder is not None else find_remc_example()
    if folder is None or not _complete(folder):
        raise DataError(
            f"The REMC example data is not here: set {ENV} to the folder holding the DeepDiff "
            "release's Cell1.*.csv and Cell2.*.csv files (see docs/real-example.md)."
        )
    data = read_dataset(folder, format="deepdiff")
    if not isinstance(data, MultiCellDataset):
        raise DataError(f"{folder} holds one cell, not the DeepDiff release's two (Cell1 and Cell2).")
    cells = {}
    for prefix, (name, roadmap) in CELLS.items():
        ds = data.cells[prefix]
        source = f"{SOURCE}: {name} = {roadmap}"
        cells[name] = dataclasses.replace(
            ds, cell=name, source=source, meta={**ds.meta, "roadmap_id": roadmap, "notes": [SMALL_NOTE]}
        )
    return MultiCellDataset(cells, source=SOURCE)
