"""Histone-mark datasets: the dataset type, readers and writers, validation.

Public surface::

    from hmviz.data import HistoneDataset, MultiCellDataset, read_dataset, write_long
    from hmviz.data import read_expression, check_marks

Submodules (imported on their own, not from here): ``io`` (formats), ``validation``,
``targets``, ``splits``, ``transforms``, ``synthetic``.
"""

from hmviz.data.dataset import SPLITS, HistoneDataset, MultiCellDataset
from hmviz.data.io import FORMATS, read_dataset, read_expression, write_long
from hmviz.data.validation import check_marks

__all__ = [
    "FORMATS",
    "SPLITS",
    "HistoneDataset",
    "MultiCellDataset",
    "check_marks",
    "read_dataset",
    "read_expression",
    "write_long",
]
