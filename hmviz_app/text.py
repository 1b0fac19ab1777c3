"""Text from users is shown as text: URL parameters, file names, gene ids and symbols, cell and model
names can hold Markdown (links, images, colour directives) that Streamlit would render. Every such
piece of text passes through :func:`escape_md` before it reaches ``st.markdown``, a caption, a title,
an alert or a widget label (all of which render Markdown)."""

from __future__ import annotations

import re
import string

# CommonMark lets a backslash escape any ASCII punctuation; escaping all of it also breaks GFM's bare
# links (``www.x.org``, ``http://...``), Streamlit's ``:color[...]`` directives and ``$`` maths.
_PUNCT = re.compile("([" + re.escape(string.punctuation) + "])")
_SPACE = re.compile(r"\s+")


def escape_md(text: object) -> str:
    """``text`` as Markdown that renders exactly as its characters (on one line).

    >>> escape_md("[x](http://e.org)")
    '\\\\[x\\\\]\\\\(http\\\\:\\\\/\\\\/e\\\\.org\\\\)'
    """
    return _PUNCT.sub(r"\\\1", _SPACE.sub(" ", str(text)))
