"""One of a fixed set of names: a user's text narrowed to a ``Literal`` type, or a clear error."""

from __future__ import annotations

from typing import TypeVar

from hmviz.errors import DataError

T = TypeVar("T", bound=str)


def one_of(text: str, options: tuple[T, ...], what: str) -> T:
    """``text`` as one of ``options``; raises :class:`DataError` naming them when it is none of them.

    ``what`` names the setting in the message ("Unknown split 'x'; use one of file, random, chromosome.").
    """
    for option in options:
        if option == text:
            return option
    raise DataError(f"Unknown {what} '{text}'; use one of {', '.join(options)}.")
