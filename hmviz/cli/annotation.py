"""``--annotation PATH`` for every verb that reads data: gene symbols (and loci) from a GTF, a BED6
file or a two-column ``gene_id,symbol`` table, attached to the data as it is read, so that ``--gene``
takes a symbol and the tables a verb writes carry a ``symbol`` column.

A verb adds the flag with :func:`add_annotation_argument` and passes the data it read through
:func:`apply_annotation`; the matching itself is :func:`hmviz.views.genes.with_gene_names`.
"""

from __future__ import annotations

import argparse
import logging
import sys

from hmviz.errors import DataError

log = logging.getLogger(__name__)


def add_annotation_argument(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--annotation",
        metavar="PATH",
        help="gene names for the data: a GTF, a BED6 file, or a table with the header gene_id,symbol "
        "(Ensembl ids match with or without version; DeepChrome's numeric ids match the Ensembl "
        "gene with the same number). Genes can then be named by symbol, and tables get a symbol column",
    )


def apply_annotation(args: argparse.Namespace, dataset):
    """``dataset`` with the symbols of ``--annotation`` attached (unchanged without the flag). Prints one
    line on stderr saying how many genes got a symbol. Errors name the flag and the file."""
    path = getattr(args, "annotation", None)
    if not path:
        return dataset
    from hmviz.views.genes import read_gene_names, with_gene_names

    try:
        named = with_gene_names(dataset, read_gene_names(path))
    except DataError as exc:
        raise DataError(f"--annotation {path}: {exc}") from None
    first = getattr(named, "first", named)
    have = int(sum(1 for s, g in zip(first.symbols, first.gene_ids) if s and s != g))
    print(f"annotation {path}: symbols for {have:,} of {first.n_genes:,} genes", file=sys.stderr)
    return named
