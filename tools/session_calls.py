"""Argument models of the session calls (undo, redo, checkout).

They are validated by the registry like any tool call but executed by the
assistant, which owns the session store (``ToolSpec.session=True``, ``run=None``).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class UndoArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: int = Field(1, ge=1, le=1000, description="How many versions to step back (>= 1).")


class RedoArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    steps: int = Field(1, ge=1, le=1000, description="How many undone versions to re-apply (>= 1).")


class CheckoutArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str = Field(..., min_length=1, max_length=128,
                         description="The version to make current: its id, an id prefix, or its "
                                     "sequence number as text (e.g. '3').")


UNDO_DESCRIPTION = "Go back to the previous version of the image (the history is kept; redo returns)."
REDO_DESCRIPTION = "Re-apply a version that was undone."
CHECKOUT_DESCRIPTION = ("Make an earlier version current, by id, id prefix or sequence number; "
                        "a later edit starts a branch from it.")
