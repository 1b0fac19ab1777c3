"""From a selection in a figure or a table to the genes it holds (click to explore).

A plotly figure made by :mod:`hmviz.plots` gives each point its position in the plotted arrays as
``customdata``; a selection event (a click, a box or a lasso) lists the chosen points with it. A table
selection lists the chosen rows' positions in the table as shown. Both map to dataset rows through
``rows``, the dataset row of each plotted point or shown table row.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from hmviz.errors import DataError


def _position(point: Mapping) -> int:
    data = point.get("customdata")
    if isinstance(data, (list, tuple, np.ndarray)):
        data = data[0] if len(data) else None
    if data is None:
        raise DataError("The chosen point carries no gene (the figure gives its points no customdata).")
    return int(data)


def selected_rows(points: Iterable[Mapping], rows: Sequence[int] | np.ndarray) -> np.ndarray:
    """Dataset rows of the selected ``points`` (plotly selection points with ``customdata`` = position
    in ``rows``), each once, in the order chosen."""
    rows = np.asarray(rows)
    picked = [int(rows[_position(p)]) for p in points]
    return np.asarray(list(dict.fromkeys(picked)), dtype=np.int64)


def table_rows(positions: Iterable[int], rows: Sequence[int] | np.ndarray) -> np.ndarray:
    """Dataset rows of the selected table rows (``positions`` in the table as shown; ``rows`` the
    dataset row of each shown row), each once, in the order chosen."""
    rows = np.asarray(rows)
    return np.asarray(list(dict.fromkeys(int(rows[int(i)]) for i in positions)), dtype=np.int64)


def is_group_selection(selection: Mapping) -> bool:
    """Whether a plotly selection was a box or a lasso (a group), not a click on one point."""
    return bool(selection.get("box")) or bool(selection.get("lasso"))


def gene_set_name(rows: np.ndarray, labels: Sequence[str], how: str = "selection", shown: int = 3) -> str:
    """A default name for a selected gene set: ``how`` and the count, with the first genes' labels."""
    rows = np.asarray(rows)
    first = ", ".join(str(labels[int(r)]) for r in rows[:shown])
    more = ", ..." if rows.size > shown else ""
    return f"{how}: {rows.size} gene{'s' if rows.size != 1 else ''} ({first}{more})"
