"""hmviz: train, compare and explain models that predict gene expression from histone marks.

The library never imports streamlit; the app in ``app.py``/``pages/`` and the command line
(``python -m hmviz``) are thin layers over it.
"""

import os as _os

# OpenMP threads that spin while waiting make small torch calls (LSTMs, single-gene attributions) up to
# ~1000x slower when anything else runs on the same cores. Sleep instead, unless the user chose a policy.
# This must happen before torch loads its OpenMP runtime, so hmviz sets it on import.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from hmviz.errors import HmvizError  # noqa: E402

__version__ = "0.1.0"

__all__ = ["HmvizError", "__version__"]
