"""Regular expressions compiled on first use.

The rules planner and the pointing rewrites keep ~90 module-level patterns, some of them long
word alternations; compiling them all at import took ~50-100 ms of every ``imagent edit``
while a request touches only some of them. ``lazy(expr)`` keeps the expression and compiles
it the first time any attribute of a compiled pattern is read (``search``, ``match``,
``sub``...); after that the methods are the compiled pattern's own bound methods, so a call
costs what ``re.compile(expr).search`` costs. The pattern text and flags are unchanged, so
what matches is exactly what matched before.
"""

from __future__ import annotations

import re
from typing import Any

_METHODS = ("search", "match", "fullmatch", "sub", "subn", "split", "findall", "finditer")


class LazyPattern:
    """A stand-in for ``re.compile(pattern, flags)`` that compiles on first use."""

    __slots__ = ("pattern", "_flags", "_rx", *_METHODS)

    def __init__(self, pattern: str, flags: int = 0) -> None:
        self.pattern = pattern
        self._flags = flags

    def compiled(self) -> re.Pattern[str]:
        try:
            return self._rx
        except AttributeError:
            rx = re.compile(self.pattern, self._flags)
            for name in _METHODS:
                setattr(self, name, getattr(rx, name))
            self._rx = rx
            return rx

    def __getattr__(self, name: str) -> Any:
        # Only reached for what is not set yet: the methods before the first compile, and the
        # compiled pattern's other attributes (flags, groups, groupindex).
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.compiled(), name)

    def __repr__(self) -> str:
        return f"lazy({self.pattern!r})"


def lazy(pattern: str, flags: int = 0) -> re.Pattern[str]:
    """``re.compile(pattern, flags)``, compiled the first time it is used."""
    return LazyPattern(pattern, flags)  # type: ignore[return-value]
