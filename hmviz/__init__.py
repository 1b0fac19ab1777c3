"""hmviz: train, compare and explain models that predict gene expression from histone marks.

The library never imports streamlit; the app in ``app.py``/``pages/`` and the command line
(``python -m hmviz``) are thin layers over it.
"""

import os as _os

# OpenMP threads that spin while waiting make small torch calls (LSTMs, single-gene attributions) up to
# ~1000x slower when anything else runs on the same cores; threads that sleep at once make AttentiveChrome
# ~5x slower on an idle machine. Measured compromise: passive waiting after a short spin (6.7 s vs 6.5 s
# per AttentiveChrome epoch when idle, no collapse under load). The user's own settings win. This must
# happen before torch loads its OpenMP runtime, so hmviz sets it on import.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
_os.environ.setdefault("GOMP_SPINCOUNT", "100000")

from hmviz.errors import HmvizError  # noqa: E402

__version__ = "0.1.0"

__all__ = ["HmvizError", "__version__"]
