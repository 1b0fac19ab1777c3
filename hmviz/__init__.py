"""hmviz: train, compare and explain models that predict gene expression from histone marks.

The library never imports streamlit; the app in ``app.py``/``pages/`` and the command line
(``python -m hmviz``) are thin layers over it.
"""

from hmviz._version import __version__
from hmviz.errors import HmvizError

__all__ = ["HmvizError", "__version__"]
