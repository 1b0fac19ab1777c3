"""One module per file format (readers, and the long-format writer); use :mod:`hmviz.data.io`.

* :mod:`.deepchrome`: DeepChrome / AttentiveChrome CSV,
* :mod:`.deepdiff`: DeepDiff CSV (one folder, several cells),
* :mod:`.long`: hmviz's long format (CSV/TSV/Parquet), read and written,
* :mod:`.expression`: expression tables joined by gene id.

Shared machinery: ``_files`` (bytes, decoding, parsing, atomic writes) and ``_assemble`` (rows ->
validated :class:`~hmviz.data.dataset.HistoneDataset`).
"""
