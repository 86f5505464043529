"""The one error hierarchy of imagent.

It sits at the namespace root so that the leaf packages (``tools``,
``sessions``) can raise it without importing ``assistant``; the public face is
``imagent.assistant.errors``, which re-exports everything here and maps errors
to CLI exit codes. Every message says what happened; ``hint`` says what to do.

Exit codes: 0 ok, 1 bad input, 2 usage, 3 model or backend unavailable,
4 internal error.
"""

from __future__ import annotations


class ImagentError(Exception):
    """Base of every error imagent raises on purpose."""

    exit_code = 4

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message

    def to_dict(self) -> dict:
        return {"error": type(self).__name__, "message": self.message, "hint": self.hint,
                "exit_code": self.exit_code}


# --- 1: bad input -----------------------------------------------------------------
class InputError(ImagentError):
    """The user's input (file, mask, argument, request) is not usable."""

    exit_code = 1


class ImageLoadError(InputError):
    """An image file is missing, empty, corrupt, truncated, not an image, or too large."""


class MaskError(InputError):
    """A mask has the wrong size or type, is empty, or covers everything where that is not allowed."""


class ToolArgumentError(InputError):
    """A tool call has an unknown tool name or arguments that fail validation."""


class GroundingError(InputError):
    """A phrase could not be grounded to a region of the image."""


class PlanningError(InputError):
    """A request could not be turned into tool calls."""


class SessionError(InputError):
    """A session-level problem the user can fix (unknown name, nothing to undo...)."""


class SessionNotFound(SessionError):
    pass


class VersionNotFound(SessionError):
    pass


class NothingToUndo(SessionError):
    pass


class NothingToRedo(SessionError):
    pass


class UnsafePathError(SessionError):
    """A user-given name or path would escape the store or the allowed folder."""


class BundleError(SessionError):
    """An exported bundle is malformed, incomplete or fails its hash checks."""


class SessionConflict(SessionError):
    """Another process changed the session in a way this operation cannot merge."""


class Cancelled(ImagentError):
    """The user cancelled a running request; nothing was committed."""

    exit_code = 130


# --- 2: usage ---------------------------------------------------------------------
class UsageError(ImagentError):
    """The command line or API was called wrongly."""

    exit_code = 2


class ConfigError(UsageError):
    """A settings file or environment variable holds an invalid value."""


class SelectionError(UsageError):
    """A box, point or mask pointing at the image is malformed, outside it, of another size,
    or selects nothing."""


# --- 3: model or backend unavailable -----------------------------------------------
class ModelUnavailableError(ImagentError):
    """A model or backend the request needs is not installed, not downloaded or not loadable."""

    exit_code = 3


class NeedsModelError(ModelUnavailableError):
    """The embedded default cannot serve this request; a named model backend can."""


# --- 4: internal --------------------------------------------------------------------
class InternalError(ImagentError):
    """A bug or an unexpected state; the session is left unchanged."""

    exit_code = 4


class StoreCorruptError(InternalError):
    """The session store on disk fails an integrity check."""


# --- outcomes that are not errors, but not "done" either --------------------------------
# A request can end without raising and still not be done. The CLI (``imagent edit``,
# ``ask``, ``run``) reports these with their own exit codes, so a script never mistakes
# them for success (0) or for bad input (1).
EXIT_CHECK_FAILED = 5  # the edit failed its result check; nothing was reported done
EXIT_QUESTION = 6  # the assistant asked a question back; the request needs an answer
