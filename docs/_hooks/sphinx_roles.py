"""MkDocs hook: abkit's docstrings use Sphinx cross-reference roles (:class:`X`,
:func:`~a.b.c`), which the Markdown of the API reference shows verbatim; render each as
inline code with the role and the '~' dropped."""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(r":(?:class|func|mod|attr|meth|data|obj|exc):(<code>)~?")


def on_page_content(html: str, **kwargs: Any) -> str:
    return _ROLE.sub(r"\1", html)
