"""Data: the bundled sample, uploaded tables, or a table built from tracks; a report and a preview."""

import re

import numpy as np
import streamlit as st

from hmviz.errors import HmvizError
from hmviz.examples import SMALL_NOTE, TITLE
from hmviz_app import examples, gene_names, state, uploads
from hmviz_app.text import escape_md, report_html

SOURCES = {
    "sample": "Sample data",
    "two_cell": "Two-cell sample (DeepDiff)",
    **({"real": TITLE} if examples.available() else {}),
    "upload": "Upload tables",
    "build": "Build from tracks",
}
FORMATS = {"auto": "detect from the content", "deepchrome": "DeepChrome / AttentiveChrome CSV",
           "deepdiff": "DeepDiff CSV", "long": "hmviz long format"}
TABLE_TYPES = ["csv", "tsv", "txt", "gz", "parquet", "pq"]
TRACK_TYPES = ["bw", "bigwig", "bedgraph", "bdg", "bg", "narrowpeak", "broadpeak", "gappedpeak", "bed", "gz"]
MARK_RE = re.compile(r"(H2A\.?Z|H[1-4][AB]?K\d+(?:me[123]|ac|ub\d?|cr)?)", re.IGNORECASE)

st.title("Data")
st.caption("Histone-mark ChIP-seq signal binned around each gene's transcription start site (TSS): "
           "genes x bins x marks, with measured expression when you have it.")

current = state.current_data()
source = st.radio("Where the data comes from", list(SOURCES), format_func=SOURCES.get, horizontal=True,
                  key=state.sticky("data_source", "sample"))


def _use_button(entry: state.DataEntry, key: str) -> None:
    if current.key == entry.key:
        st.success(f"In use: {entry.shown_name}.", icon=":material/check:")
    else:
        st.button(f"Use the {entry.name.split(' (')[0].lower()}", type="primary", key=key,
                  on_click=state.set_data, args=(entry,))


def _sample_panel() -> None:
    st.markdown("3,000 synthetic genes with planted rules (H3K4me3 at the promoter and H3K36me3 over the gene "
                "body raise expression; H3K27me3 and H3K9me3 lower it; H3K4me1 is a decoy), 100 bins of 100 bp "
                "around the TSS, 5 marks, a train/validation/test split. The bundled models were trained on it.")
    _use_button(state.sample_data(), "use_sample")


def _two_cell_panel() -> None:
    st.markdown("Two generated cell types over the first 1,000 genes of the sample (`sample_data/two_cells`): cell "
                "*synthetic* is the sample itself; in *synthetic-B* 40% of the genes have their marks redrawn and "
                "their expression follows. The input of DeepDiff, which predicts the change between two cells; the "
                "bundled DeepDiff was trained on it.")
    _use_button(state.two_cell_sample(), "use_two_cell")


def _real_panel() -> None:
    st.markdown("Real Roadmap Epigenomics (REMC) data: five histone marks (H3K4me1, H3K4me3, H3K9me3, H3K27me3, "
                "H3K36me3) in 200 bins of 100 bp around the TSS of 600 genes, with RNA-seq counts and gene symbols, in "
                "K562 (E123, a leukaemia line) and H1 (E003, embryonic stem cells); from the public DeepDiff release "
                "(see docs/sample-data.md). No model is bundled for it: train one on the Train page.")
    st.info(SMALL_NOTE, icon=":material/info:")
    which = st.radio("Cells", list(examples.CHOICES), format_func=examples.CHOICES.get, horizontal=True,
                     key=state.sticky("real_cells", "both"))
    entry = examples.entry(which)
    _use_button(entry, "use_real")
    if current.key == entry.key:
        st.page_link("pages/train.py", label="Train a model on it", icon=":material/model_training:")


def _upload_panel() -> None:
    st.markdown("Upload one table, or several at once: train/validation/test files, DeepDiff's "
                "`CellX.train.csv` ... with `CellX.expr.csv`, or features plus an expression table "
                "(`gene_id`, `expression`). Formats: DeepChrome/AttentiveChrome CSV, DeepDiff CSV, and the long "
                "format (CSV, TSV or Parquet with `gene_id`, `bin` and one column per mark; text may be gzipped).")
    files = st.file_uploader("Histone tables and expression tables", accept_multiple_files=True, type=TABLE_TYPES,
                             key="upload_tables")
    chosen = []
    if files:
        st.caption("What each file is (guessed from its name; change it if the guess is wrong):")
        for f in files:
            role, cell = uploads.guess_role(f.name)
            c1, c2, c3 = st.columns([3, 2, 2], vertical_alignment="center")
            c1.markdown(f"{escape_md(f.name)} :gray[({f.size / 1e6:.2f} MB)]")
            role = c2.selectbox("Role", list(uploads.ROLES), index=list(uploads.ROLES).index(role),
                                format_func=uploads.ROLES.get, key=f"role_{f.file_id}", label_visibility="collapsed")
            cell = c3.text_input("Cell", value=cell, key=f"cell_{f.file_id}", label_visibility="collapsed",
                                 placeholder="cell (DeepDiff files only)")
            chosen.append(uploads.Upload(f.name, f.getvalue(), role, cell))
    fmt = st.selectbox("Format", list(FORMATS), format_func=lambda k: f"{k}: {FORMATS[k]}",
                       key=state.sticky("upload_format", "auto"))
    if st.button("Load the uploaded data", type="primary", disabled=not files, key="load_upload"):
        try:
            with st.spinner("Reading and checking the files..."):
                entry = uploads.load_uploads(chosen, fmt)
        except HmvizError as exc:
            state.show_error(exc, f"Nothing was changed: {current.shown_name} is still loaded.")
        else:
            state.set_data(entry)
            st.session_state["_data_flash"] = f"Loaded {entry.shown_name}: {entry.describe()}."
            st.rerun()  # so that the sidebar shows the new dataset too


def _guess_mark(name: str) -> str:
    m = MARK_RE.search(name)
    return m.group(1) if m else state.clean_label(name.split(".")[0])


def _build_panel() -> None:
    st.markdown("From your own ChIP-seq: one signal file per mark (bigWig, bedGraph, or narrowPeak/broadPeak/"
                "gappedPeak peak calls) and a gene annotation (GTF, BED6, or a table with `gene_id`, `chrom` and "
                "`tss` or `start`/`end`/`strand`). hmviz cuts a window around every TSS into bins.")
    tracks = st.file_uploader("Signal tracks, one file per mark", accept_multiple_files=True, type=TRACK_TYPES,
                              key="build_tracks")
    named = []
    for f in tracks or []:
        c1, c2 = st.columns([3, 2], vertical_alignment="center")
        c1.markdown(f"{escape_md(f.name)} :gray[({f.size / 1e6:.2f} MB)]")
        mark = c2.text_input("Mark", value=_guess_mark(f.name), key=f"mark_{f.file_id}", label_visibility="collapsed",
                             placeholder="mark name, e.g. H3K4me3")
        named.append((mark, uploads.Upload(f.name, f.getvalue())))
    c1, c2 = st.columns(2)
    genes = c1.file_uploader("Gene annotation", type=["gtf", "bed", "csv", "tsv", "txt", "parquet", "pq", "gz"],
                             key="build_genes")
    expression = c2.file_uploader("Expression table (optional: gene_id, expression)", type=["csv", "tsv", "txt", "gz"],
                                  key="build_expression")
    c1, c2, c3, c4 = st.columns(4, vertical_alignment="bottom")
    bin_size = c1.number_input("Bin size (bp)", min_value=1, max_value=100_000, step=50,
                               key=state.sticky("build_bin_size", 100))
    flank = c2.number_input("Window either side of the TSS (bp)", min_value=1, max_value=1_000_000, step=500,
                            key=state.sticky("build_flank", 5000))
    stat = c3.selectbox("Signal per bin", ["sum", "mean", "max"], key=state.sticky("build_stat", "sum"),
                        help="How a bigWig/bedGraph is summarised over a bin; peak files always give the mean "
                             "signalValue of the peaks overlapping the bin (0 where none).")
    strand = c4.checkbox("Strand-aware", key=state.sticky("build_strand", False),
                         help="Reverse the bins of minus-strand genes so that they run in the direction of "
                              "transcription (otherwise bins keep genomic order).")
    st.caption(f"{2 * int(flank) // max(1, int(bin_size))} bins of {int(bin_size)} bp, from -{int(flank):,} to "
               f"+{int(flank):,} bp around the TSS.")
    if st.button("Build the table", type="primary", disabled=not (tracks and genes), key="build_table"):
        try:
            with st.spinner("Binning the tracks around every TSS..."):
                entry = uploads.build_from_tracks(
                    named, uploads.Upload(genes.name, genes.getvalue()),
                    uploads.Upload(expression.name, expression.getvalue()) if expression else None,
                    int(bin_size), int(flank), stat, bool(strand))
        except HmvizError as exc:
            state.show_error(exc, f"Nothing was changed: {current.shown_name} is still loaded.")
        else:
            state.set_data(entry)
            st.session_state["_data_flash"] = f"Built {entry.describe()}; it is now the dataset in use."
            st.rerun()  # so that the sidebar shows the new dataset too


{"sample": _sample_panel, "two_cell": _two_cell_panel, "real": _real_panel, "upload": _upload_panel,
 "build": _build_panel}[source]()
if flash := st.session_state.pop("_data_flash", None):
    st.success(flash, icon=":material/check:")


@st.cache_data(max_entries=8, show_spinner=False)
def _profiles(key: str, cell: str, _ds):
    from hmviz.plots import mark_profiles

    ds = _ds
    if ds.labels is not None:
        groups, names = ds.labels.astype(int), None
    elif ds.expression is not None and np.isfinite(ds.expression).any():
        median = float(np.nanmedian(ds.expression))
        groups = np.where(np.isfinite(ds.expression), (ds.expression > median).astype(float), np.nan)
        names = {0.0: "expression at or below the median", 1.0: "expression above the median"}
    else:
        groups, names = np.zeros(ds.n_genes, dtype=int), {0: "all genes"}
    title = "Average mark profile around the TSS" + (", high vs low expressed genes" if names != {0: "all genes"} else "")
    return mark_profiles(ds.signal, ds.marks, ds.bin_starts_bp(), groups, bin_size=ds.bin_size, group_names=names,
                         title=title)


def _preview(entry: state.DataEntry) -> None:
    st.subheader(f"In use: {entry.shown_name}")
    ds = entry.first
    if entry.multi_cell:
        cells = list(entry.dataset.cells)
        cell = st.selectbox("Cell type", cells, key="preview_cell", help="The cells share genes, marks and bins.")
        ds = entry.dataset.cells[cell]
    s = ds.summary()
    c = st.columns(4)
    c[0].metric("Genes", f"{ds.n_genes:,}")
    c[1].metric("Marks", ds.n_marks, help=escape_md(", ".join(ds.marks)))
    c[2].metric(f"Bins of {ds.bin_size} bp", ds.n_bins)
    if "labels" in s:
        high, low = s["labels"]["high"], s["labels"]["low"]
        c[3].metric("Highly expressed", f"{100 * high / max(1, high + low):.0f}%", help=f"{high:,} high, {low:,} low")
    elif "expression" in s:
        c[3].metric("With expression", f"{s['expression']['genes_with_value']:,}")
    else:
        c[3].metric("Labels", "none")
    split = ("Split: " + ", ".join(f"{k} {v:,}" for k, v in s["split"].items()) + ". ") if "split" in s else \
        "No split: a seeded random split by gene is made at training. "
    st.caption(f"Marks in order: {escape_md(', '.join(ds.marks))}. Window {s['window_bp'][0]:+,} to {s['window_bp'][1]:+,} bp, "
               f"TSS at bin {ds.tss_bin}. " + ("Bins run in the direction of transcription. " if ds.strand_aware else
                                               "Bins keep genomic order for every gene. " if ds.strand_aware is False
                                               else "") + split)
    for note in ds.meta.get("notes", []):
        st.info(escape_md(note), icon=":material/info:")
    gene_names.annotation_panel(entry)
    if entry.report:
        with st.expander("Build report", expanded=True):
            st.html(report_html(entry.report))
    with st.expander("Validation report", expanded=entry.origin in ("upload", "build")):
        st.html(report_html(entry.dataset.describe()))
    state.plot(_profiles(entry.key, ds.cell or "", ds), "mark_profiles")
    st.markdown("**Genes**")
    st.dataframe(ds.gene_table(), height=260, hide_index=True)
    if entry.origin in ("upload", "build"):
        st.download_button("Download as hmviz long table (CSV, gzipped)", uploads.long_table_bytes(entry.key, entry.dataset),
                           file_name="hmviz_table.csv.gz", mime="application/gzip", icon=":material/download:",
                           key="download_long")


_preview(state.current_data())
