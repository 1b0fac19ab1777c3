"""``hmviz <verb>`` (the console script) and ``python -m hmviz <verb>``: see :mod:`hmviz.cli.main`.

``hmviz --version`` prints hmviz's version with those of Python and torch, without loading torch.
"""

from __future__ import annotations

import platform
import sys
from collections.abc import Sequence
from importlib import metadata

from hmviz._version import __version__


def version_line() -> str:
    """``hmviz 0.1.0 (Python 3.11.7, torch 2.13.0+cpu)``."""
    try:
        torch_version = metadata.version("torch")
    except metadata.PackageNotFoundError:
        torch_version = "not installed"
    return f"hmviz {__version__} (Python {platform.python_version()}, torch {torch_version})"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] in (["--version"], ["-V"]):
        print(version_line())
        return 0
    from hmviz.cli.main import main as cli_main

    return cli_main(args)


if __name__ == "__main__":
    sys.exit(main())
