"""The verb registry of the command line: below the verbs, which register themselves with :func:`verb`.

:mod:`hmviz.cli.main` imports the verb modules and builds one parser from what they registered; no verb
imports it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

EXIT_OK = 0
EXIT_USER_ERROR = 2
EXIT_INTERNAL = 1


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad flag as one ``error:`` line (exit 2) instead of usage text."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USER_ERROR, f"error: {message} (see 'python -m hmviz {self._verb()}--help')\n")

    def _verb(self) -> str:
        parts = self.prog.split()
        return (parts[-1] + " ") if len(parts) > 1 and parts[-1] != "hmviz" else ""


# Each verb registers (name, help, add_arguments, run), in the order its module was imported.
_VERBS: list[tuple[str, str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = []


def verb(name: str, help: str, add_arguments: Callable[[argparse.ArgumentParser], None]):
    """Register ``run(args) -> exit code`` as the verb ``name``."""

    def deco(run: Callable[[argparse.Namespace], int]):
        _VERBS.append((name, help, add_arguments, run))
        return run

    return deco


def build_parser(description: str) -> argparse.ArgumentParser:
    """One parser with a sub-command per registered verb."""
    parser = _Parser(prog="python -m hmviz", description=description)
    parser.add_argument("--debug", action="store_true", help="show tracebacks of unexpected errors")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    for name, help_text, add_arguments, run in _VERBS:
        p = sub.add_parser(name, help=help_text, description=help_text)
        add_arguments(p)
        p.set_defaults(run=run)
    return parser
