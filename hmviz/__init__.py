"""hmviz: train, compare and explain models that predict gene expression from histone marks.

The library never imports streamlit; the app in ``app.py``/``pages/`` and the command line
(``python -m hmviz``) are thin layers over it.
"""

from hmviz.errors import HmvizError

__version__ = "0.1.0"

__all__ = ["HmvizError", "__version__"]
