"""In-silico epigenome editing: edit a gene's marks and watch the model's prediction move.

* :mod:`~hmviz.perturb.edits`: :class:`Edit` (``MARK:REGION:OP[:VALUE]``), named regions, validation.
* :mod:`~hmviz.perturb.apply`: edits applied to raw reads per bin, before the model's transform.
* :mod:`~hmviz.perturb.score`: :class:`Editor` scores edited signal through the card's transform and
  the model; :meth:`Editor.perturb` gives the prediction before and after (:class:`PerturbResult`).
* :mod:`~hmviz.perturb.scan`: :func:`scan`, the effect of deleting each mark in each window.
* :mod:`~hmviz.perturb.search`: :func:`smallest_edit`, the smallest allowed edit that flips the answer.
* :mod:`~hmviz.perturb.plots`: figures (tracks before/after, the scan heatmap).

Example::

    editor = Editor.from_session(prepare(model, card, dataset))
    editor.perturb("SIMG7", ["H3K27me3:window:remove"]).summary()
"""

from hmviz.perturb.apply import apply_edits, reference_profiles
from hmviz.perturb.edits import NAMED_REGIONS, OPERATIONS, Edit, Window, parse_edit, parse_edits, resolve
from hmviz.perturb.scan import ScanResult, by_window, scan, windows
from hmviz.perturb.score import Editor, PerturbResult, perturb
from hmviz.perturb.search import Allowance, SearchResult, allowed_masks, parse_allowance, smallest_edit

__all__ = [
    "NAMED_REGIONS",
    "OPERATIONS",
    "Allowance",
    "Edit",
    "Editor",
    "PerturbResult",
    "ScanResult",
    "SearchResult",
    "Window",
    "allowed_masks",
    "apply_edits",
    "by_window",
    "parse_allowance",
    "parse_edit",
    "parse_edits",
    "perturb",
    "reference_profiles",
    "resolve",
    "scan",
    "smallest_edit",
    "windows",
]
