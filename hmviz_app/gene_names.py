"""Gene names and loci attached to the dataset in use (an annotation uploaded on a page), and the
gene index built from them; kept per dataset in the session."""

from __future__ import annotations

import dataclasses
import hashlib
import tempfile
from pathlib import Path

import streamlit as st

from hmviz.errors import DataError
from hmviz.views import GeneIndex, read_gene_names, with_gene_names
from hmviz.views.genes import GeneNames
from hmviz_app import state
from hmviz_app.text import escape_md

ASSEMBLIES = ("unknown", "hg38", "hg19", "mm10", "mm39")


def _store() -> dict:
    return st.session_state.setdefault("_gene_names", {})


def named_entry(data: state.DataEntry, file_name: str, content: bytes) -> tuple[state.DataEntry, GeneNames]:
    """``data`` with the gene names of an annotation file attached (symbols, chromosomes, strands), as a
    new :class:`~hmviz_app.state.DataEntry`: the same content fingerprint (models trained on the data
    still fit), a new key (caches and pickers see the names). Raises :class:`DataError` naming the user's
    file, never a server path."""
    name = Path(file_name).name
    with tempfile.TemporaryDirectory(prefix="hmviz-names-") as tmp:
        path = Path(tmp) / name
        path.write_bytes(content)
        try:
            names = read_gene_names(path)
            dataset = with_gene_names(data.dataset, names)
        except DataError as exc:
            raise DataError(str(exc).replace(f"{tmp}/", "")) from None
    origin = data.key.split(":", 1)[0].split("+names-")[0]
    key = f"{origin}+names-{hashlib.sha256(content).hexdigest()[:12]}:{data.fingerprint}"
    base = data.name.split(" + names from ")[0]
    return dataclasses.replace(data, key=key, name=f"{base} + names from {name}", dataset=dataset), names


def attach(data: state.DataEntry, upload) -> state.DataEntry:
    """Attach an uploaded annotation to ``data``, make the named data the data in use and return it."""
    entry, names = named_entry(data, upload.name, upload.getvalue())
    _store()[entry.key] = (Path(upload.name).name, names)
    state.set_data(entry)
    return entry


def gene_index(data) -> GeneIndex:
    """The :class:`GeneIndex` of ``data`` (a DataEntry) with its attached annotation, if any."""
    cache = st.session_state.setdefault("_gene_index", {})
    attached = _store().get(data.key)
    if data.key not in cache:
        cache.clear()
        cache[data.key] = GeneIndex.from_dataset(data.dataset, attached[1] if attached else None)
    return cache[data.key]


def attached_name(data_key: str) -> str | None:
    found = _store().get(data_key)
    return found[0] if found else None


def annotation_panel(data: state.DataEntry, expanded: bool = False) -> None:
    """The expander that attaches a gene annotation (names and loci) to ``data`` and picks the assembly."""
    current = attached_name(data.key)
    with st.expander("Gene names and loci" + (f": {current}" if current else ": attach an annotation"),
                     expanded=expanded):
        st.caption("A GTF, a BED6 file, a table with gene_id, chrom and tss (or start, end, strand), or a "
                   "two-column table with the header gene_id,symbol. Ensembl ids match with or without their "
                   "version, and DeepChrome's numeric ids match the Ensembl gene with the same number. Every gene "
                   "picker then shows the symbol and finds a gene by symbol or id.")
        # the uploader is drawn on demand, so that a page's own uploader stays the only one on it
        opened = st.toggle("Upload an annotation file", key="names_open")
        upload = st.file_uploader("Gene annotation", type=["gtf", "bed", "csv", "tsv", "txt", "gz"],
                                  key=f"names_upload_{data.key}") if opened else None
        if upload is not None and upload.name != current:
            try:
                entry = attach(data, upload)
            except DataError as exc:
                st.error(f"{exc} Nothing was attached: {data.shown_name} is unchanged.")
            else:
                index = gene_index(entry)
                st.session_state["_names_flash"] = (
                    f"Attached {escape_md(Path(upload.name).name)}: {index.n_matched_symbols:,} of {len(index):,} "
                    f"genes have a symbol, {int((index.tss >= 0).sum()):,} a known locus.")
                st.rerun()
        if flash := st.session_state.pop("_names_flash", None):
            st.success(flash, icon=":material/check:")
        st.selectbox("Genome assembly (for links to the UCSC browser and Ensembl)", ASSEMBLIES,
                     key="genome_assembly")
        index = gene_index(data)
        st.caption(f"{index.n_matched_symbols:,} of {len(index):,} genes have a symbol; "
                   f"{int((index.tss >= 0).sum()):,} have a known locus.")


def assembly() -> str | None:
    value = st.session_state.get("genome_assembly", "unknown")
    return None if value == "unknown" else value
