"""Gene names and loci attached to the dataset in use (an annotation uploaded on a page), and the
gene index built from them; kept per dataset in the session."""

from __future__ import annotations

import tempfile
from pathlib import Path

import streamlit as st

from hmviz.errors import DataError
from hmviz.views import GeneIndex, read_gene_names

ASSEMBLIES = ("unknown", "hg38", "hg19", "mm10", "mm39")


def _store() -> dict:
    return st.session_state.setdefault("_gene_names", {})


def attach(data_key: str, upload) -> str:
    """Read an uploaded annotation (kept under the user's file name) for the dataset ``data_key``;
    returns a one-line report. Raises :class:`DataError` with the user's file name, never a server path."""
    name = Path(upload.name).name
    with tempfile.TemporaryDirectory(prefix="hmviz-names-") as tmp:
        path = Path(tmp) / name
        path.write_bytes(upload.getvalue())
        try:
            names = read_gene_names(path)
        except DataError as exc:
            raise DataError(str(exc).replace(f"{tmp}/", "")) from None
    _store()[data_key] = (name, names)
    return name


def gene_index(data) -> GeneIndex:
    """The :class:`GeneIndex` of ``data`` (a DataEntry) with its attached annotation, if any."""
    cache = st.session_state.setdefault("_gene_index", {})
    attached = _store().get(data.key)
    key = (data.key, attached[0] if attached else None)
    if key not in cache:
        cache.clear()
        cache[key] = GeneIndex.from_dataset(data.dataset, attached[1] if attached else None)
    return cache[key]


def attached_name(data_key: str) -> str | None:
    found = _store().get(data_key)
    return found[0] if found else None


def annotation_panel(data) -> None:
    """The expander that attaches a gene annotation to ``data`` and picks the genome assembly."""
    current = attached_name(data.key)
    with st.expander("Gene names and loci" + (f": {current}" if current else ": attach an annotation"),
                     expanded=False):
        st.caption("A GTF, a BED6 file, a table with gene_id, chrom and tss (or start, end, strand), or a "
                   "two-column table with the header gene_id,symbol. Ensembl ids match with or without their "
                   "version, and DeepChrome's numeric ids match the Ensembl gene with the same number.")
        upload = st.file_uploader("Gene annotation", type=["gtf", "bed", "csv", "tsv", "txt", "gz"],
                                  key=f"names_upload_{data.key}")
        if upload is not None and upload.name != current:
            try:
                attach(data.key, upload)
                st.rerun()
            except DataError as exc:
                st.error(str(exc))
        st.selectbox("Genome assembly (for links to the UCSC browser and Ensembl)", ASSEMBLIES,
                     key="genome_assembly")
        index = gene_index(data)
        st.caption(f"{index.n_matched_symbols:,} of {len(index):,} genes have a symbol; "
                   f"{int((index.tss >= 0).sum()):,} have a known locus.")


def assembly() -> str | None:
    value = st.session_state.get("genome_assembly", "unknown")
    return None if value == "unknown" else value
