"""The real REMC example (issue 19, item 4): found where the public data is, converted on the fly into
K562 and H1 datasets with symbols and RNA-seq counts; never shipped (tests skip when it is absent)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hmviz.errors import DataError
from hmviz.examples import ENV, find_remc_example, remc_example


def test_the_example_is_k562_and_h1_with_symbols_counts_and_the_release_split(deepdiff_dir, monkeypatch):
    monkeypatch.setenv(ENV, str(deepdiff_dir))
    assert find_remc_example() == deepdiff_dir
    data = remc_example()
    assert data.cell_names == ["K562", "H1"]
    k562, h1 = data.cells["K562"], data.cells["H1"]
    assert (k562.n_genes, k562.n_bins, k562.bin_size, k562.n_marks) == (600, 200, 100, 5)
    assert "E123" in k562.source and "E003" in h1.source
    # the counts are the release's expression files, joined by gene id
    expr = pd.read_csv(deepdiff_dir / "Cell2.expr.csv", header=None, index_col=0)[1]
    gene = str(h1.gene_ids[7]).split("_")[0].split(".")[0]
    assert h1.expression[7] == expr[gene]
    assert (h1.symbols != "").all() and h1.symbols[0] == "ZC3H4"
    assert {s: int((k562.split == s).sum()) for s in ("train", "valid", "test")} == {"train": 200, "valid": 200,
                                                                                     "test": 200}
    assert np.array_equal(k562.gene_ids, h1.gene_ids)


def test_a_folder_without_the_files_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match=f"set {ENV} to the folder"):
        remc_example(tmp_path)
