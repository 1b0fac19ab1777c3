"""``python -m hmviz``: see :mod:`hmviz.cli`."""

import sys

from hmviz.cli import main

if __name__ == "__main__":
    sys.exit(main())
