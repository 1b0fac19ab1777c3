"""Build step that ships the repository's top-level ``models/`` and ``sample_data/`` inside the
package, as ``hmviz/_bundled/models`` and ``hmviz/_bundled/sample_data`` (found at run time by
:mod:`hmviz.resources`). Everything else about the package is in ``pyproject.toml``."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED = ("models", "sample_data")


class BuildWithBundledData(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):  # an editable install reads the checkout in place
            return
        for name in SHIPPED:
            source, target = ROOT / name, Path(self.build_lib) / "hmviz" / "_bundled" / name
            if not source.is_dir():
                raise SystemExit(f"error: {source} is missing; build hmviz from a full checkout or its sdist")
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", ".*"))


setup(cmdclass={"build_py": BuildWithBundledData})
