"""Where the bundled models and the sample data are, in an installed hmviz or in a checkout.

A wheel carries them inside the package, as ``hmviz/_bundled/models`` and
``hmviz/_bundled/sample_data`` (copied there from the repository's top-level ``models/`` and
``sample_data/`` when the wheel is built, see ``setup.py``); they are found with
:mod:`importlib.resources`. A checkout (or an editable install, ``pip install -e .``) reads the
top-level folders in place.

On the command line, and wherever hmviz reads data or a model, a path that does not exist and
starts with ``sample_data`` or ``models`` means the shipped copy (:func:`shipped_or_given`), so the
README's examples (``--data sample_data``, ``--model models/deepchrome``) work from any folder; a
real folder of that name in the current directory always wins.
"""

from __future__ import annotations

import logging
import os
from importlib import resources
from pathlib import Path

log = logging.getLogger(__name__)

SHIPPED = ("models", "sample_data")  # top-level folders of the repository that ship with the package


def _shipped(name: str) -> Path:
    packaged = resources.files("hmviz") / "_bundled" / name
    if packaged.is_dir():
        return Path(str(packaged))
    checkout = Path(str(resources.files("hmviz"))).parent / name  # a checkout or an editable install
    return checkout


def bundled_models() -> Path:
    """The folder of bundled models (one subfolder per model: weights and model card)."""
    return _shipped("models")


def sample_data() -> Path:
    """The sample data folder (generated genes with planted rules; ``two_cells/`` for DeepDiff)."""
    return _shipped("sample_data")


def shipped_or_given(path: str | os.PathLike) -> Path:
    """``path``, or the shipped copy when ``path`` does not exist and is ``sample_data[/...]`` or
    ``models[/...]`` (relative). Anything else is returned unchanged, to fail where it is read."""
    given = Path(path)
    if given.exists() or given.is_absolute() or not given.parts or given.parts[0] not in SHIPPED:
        return given
    candidate = _shipped(given.parts[0]).joinpath(*given.parts[1:])
    if not candidate.exists():
        return given
    log.info("%s is not in %s; using the copy shipped with hmviz: %s", given, Path.cwd(), candidate)
    return candidate
