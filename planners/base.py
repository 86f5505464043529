"""The planner interface: ``plan(request, context) -> Plan``.

A Plan is a list of steps (each with its edit *kind* — Emu Edit's task routing —
its *target* phrase, and the ToolCalls that carry it out) plus a reply, or a
clarification question back to the user.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

from imagent.tools.referent import Referent
from imagent.tools.types import ToolCall

EditKind = Literal["remove", "add", "replace", "local", "background", "global", "outpaint",
                   "extract", "undo", "redo", "checkout"]
SESSION_KINDS = ("undo", "redo", "checkout")


class Step(BaseModel):
    kind: EditKind
    target: str | None = None
    calls: list[ToolCall] = Field(default_factory=list)
    description: str = ""
    # When no embedded tool can serve the step: the model role it needs (e.g. "instruct").
    needs_model: str | None = None
    # Where: ``target`` is the phrase ``ground`` receives ("the man"); the instance selector
    # is kept apart (``select`` / ``index``, ground's own arguments), and ``target_full`` is
    # the whole description ("the man on the left in a blue shirt").
    target_full: str | None = None
    # The target parsed once (tools/referent.py): noun, colour, place, select, ordinal, box.
    # The ground call carries it; the check re-grounds it without the instance words.
    referent: Referent | None = None
    select: str | None = None  # ground's select: left/right/top/bottom/largest/smallest/center
    index: int = 0
    # What: the new content ("a red hat"), the insertion place ("on the table", "top-right"),
    # a colour word, and a strength multiplier (0.5 = "a bit", 2 = "much").
    prompt: str | None = None
    place: str | None = None
    color: str | None = None
    strength: float = 1.0

    @property
    def is_session(self) -> bool:
        return self.kind in SESSION_KINDS


class Plan(BaseModel):
    steps: list[Step] = Field(default_factory=list)
    reply: str = ""
    question: str | None = None
    choices: list[str] = Field(default_factory=list)
    planner: str = ""
    # A request that asks to look rather than edit ("show the history", "compare with the
    # original"): the action name and its arguments; no steps.
    action: str | None = None
    action_args: dict[str, Any] = Field(default_factory=dict)

    @property
    def is_question(self) -> bool:
        return self.question is not None

    def calls(self) -> list[ToolCall]:
        return [c for s in self.steps for c in s.calls]

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")


@dataclass
class PlanContext:
    """What a planner may know about the session when it plans."""

    image_size: tuple[int, int] | None = None
    version_seq: int | None = None
    history: list[str] = field(default_factory=list)  # earlier requests, oldest first
    seed: int = 0
    last_plan: Plan | None = None
    # Optional, for planners that look at the image (the LLM planner runs ``ground`` on it
    # to give the model real detections): the current RGB image. Planners never open sessions.
    image: Any = None
    # Whether the current version has transparency (an alpha plane): "add a white background"
    # then fills it in. None = unknown (``imagent plan`` without an image).
    has_alpha: bool | None = None
    # Where the user points for this request (tools/selection.py ``Selection``), or None:
    # "this", "here", "the selection" then mean it (planners/pointing.py).
    selection: Any = None


class Planner(Protocol):
    name: str

    def plan(self, request: str, context: PlanContext) -> Plan: ...
