"""hmviz: train, compare and explain models that predict gene expression from histone marks.

The library never imports streamlit; the app in ``app.py``/``pages/`` and the command line
(``hmviz <verb>``, :mod:`hmviz.cli`) are thin layers over it. In Python::

    import hmviz
    model = hmviz.load("models/deepchrome")      # a TrainedModel: .card, .predict, .evaluate, .explain, ...

``import hmviz`` stays light: :func:`load`, :class:`TrainedModel` and :class:`ModelCard` (and torch with
the first two) are imported on first use.
"""

from hmviz._version import __version__
from hmviz.errors import HmvizError

_LAZY = {
    "load": "hmviz.trained",
    "load_card": "hmviz.card",
    "TrainedModel": "hmviz.trained",
    "ModelCard": "hmviz.card",
}

__all__ = ["HmvizError", "ModelCard", "TrainedModel", "__version__", "load", "load_card"]


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'hmviz' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_LAZY[name]), name)
