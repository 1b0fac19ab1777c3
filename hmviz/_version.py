"""hmviz's version, in a module of its own so that modules inside the package can record it without
importing the package's front (``hmviz/__init__``, which sits above every module)."""

__version__ = "0.1.0"
