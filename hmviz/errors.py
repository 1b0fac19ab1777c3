"""The one exception type that carries a message a biologist can act on.

Every error caused by the user's input (a malformed file, a wrong flag, an incompatible
checkpoint) is raised as :class:`HmvizError` (or a subclass). Its message names the file, the row
or gene, what is wrong and how to fix it. The CLI prints it as one ``error: ...`` line and exits
with status 2; the app shows it with ``st.error``. Anything else is a bug.
"""

from __future__ import annotations


class HmvizError(ValueError):
    """An error in the user's input, with a message that says what is wrong and how to fix it."""


class DataError(HmvizError):
    """A data file or table that cannot be read as a histone dataset."""


class ModelError(HmvizError):
    """A model, checkpoint or model card that cannot be used as asked."""


class LimitError(HmvizError):
    """An input, flag or card that would need more memory or time than hmviz's limits allow
    (see :mod:`hmviz.limits`)."""
