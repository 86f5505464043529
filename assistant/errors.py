"""The public face of imagent's error hierarchy.

The classes are defined once in ``imagent/errors.py`` (a leaf the ``tools`` and
``sessions`` packages may import without depending on ``assistant``) and
re-exported here. This module adds how errors surface: CLI exit codes and the
one-line form shown to users.

Exit codes: 0 ok, 1 bad input, 2 usage, 3 model or backend unavailable, 4 internal.
"""

from __future__ import annotations

from imagent.errors import *  # noqa: F401,F403  (re-export the hierarchy)
from imagent.errors import ImagentError, InternalError

EXIT_OK = 0
EXIT_INPUT = 1
EXIT_USAGE = 2
EXIT_MODEL = 3
EXIT_INTERNAL = 4


def exit_code_for(exc: BaseException) -> int:
    """The CLI exit code for an exception (unexpected exceptions are internal errors)."""
    if isinstance(exc, ImagentError):
        return exc.exit_code
    return EXIT_INTERNAL


def as_imagent_error(exc: BaseException) -> ImagentError:
    """Wrap an unexpected exception so the user sees what happened and what to do."""
    if isinstance(exc, ImagentError):
        return exc
    return InternalError(
        f"internal error: {type(exc).__name__}: {exc}",
        hint="nothing was committed; please report this with the command you ran "
             "(run with IMAGENT_DEBUG=1 for the full traceback)",
    )
