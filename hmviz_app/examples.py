"""The real REMC example on the Data page: offered only where its public data is found
(:func:`hmviz.examples.find_remc_example`), converted once per server."""

from __future__ import annotations

import streamlit as st

from hmviz.examples import CELLS, find_remc_example, remc_example
from hmviz_app.state import DataEntry, fingerprint

#: What the Data page offers: both cells (for DeepDiff) or one of them.
CHOICES = {"both": "Both cells (K562 and H1, for DeepDiff)",
           **{name: f"{name} only ({roadmap})" for name, roadmap in CELLS.values()}}


def available() -> bool:
    return find_remc_example() is not None


@st.cache_resource(show_spinner="Reading the REMC example...")
def _example():
    return remc_example()


def entry(which: str) -> DataEntry:
    """The example as a :class:`DataEntry`: ``"both"`` cells or one cell by name."""
    data = _example()
    if which == "both":
        return DataEntry(f"remc:{fingerprint(data)}", "Real example (600 REMC genes, K562 and H1)", data,
                         "real example")
    ds = data.cells[which]
    return DataEntry(f"remc-{which}:{fingerprint(ds)}", f"Real example (600 REMC genes, {which})", ds,
                     "real example")
