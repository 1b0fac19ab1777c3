"""Views of the signal as a biologist reads it: genes by name, genome-browser tracks per gene,
heatmaps of many genes (deepTools style), and exports a genome browser loads.

Pure data -> data/figure functions; no streamlit (the pages in ``pages/`` draw them).
"""

from hmviz.views.genes import GeneIndex, ensembl_key, match_names, read_gene_names, symbol_column, with_gene_names
from hmviz.views.heatmap import HeatmapData, profile_heatmap
from hmviz.views.tracks import GeneLocus, attribution_bedgraph, browser_links, gene_tracks, window_coordinates

__all__ = [
    "GeneIndex",
    "GeneLocus",
    "HeatmapData",
    "attribution_bedgraph",
    "browser_links",
    "ensembl_key",
    "gene_tracks",
    "match_names",
    "profile_heatmap",
    "read_gene_names",
    "symbol_column",
    "window_coordinates",
    "with_gene_names",
]
