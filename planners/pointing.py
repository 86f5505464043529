"""Pointing: how a request uses the user's selection (a box, a point or a mask).

Three small pieces, all driven by the word tables below:

- ``rewrite(text)``: what the rules planner reads when a selection is given. Deictic words
  ("this", "that one", "this area", "the selected area", "the same area") become "the
  selection", a target every edit verb already knows ("remove the selection", "make the
  selection blue", "blur the selection"); "this cup" becomes "the cup" (the cup inside the
  selection); "here"/"there" are dropped ("make it brighter here" → a global edit that
  ``bind`` limits to the selection), or become "the selection" after a bare verb ("brighten
  here"). "this image/photo" stays the image.
- ``wants_previous(text, has_selection=)``: "the same area", "the same spot", "there" (with no
  selection) reuse the previous version's mask.
- ``bind(plan, selection, request)``: put the selection into the plan. A ground call whose
  target is "the selection" gets the selection's referent (a box read as "the object in it"
  after "this"/"that", as the whole box after "here"/"this area"/"the selection"); a target
  that names an object ("the cup", "the red square") is looked for inside the selection; a
  whole-image step that can take a mask region (the colour operations of ``global_edit``,
  instruction edits, additions) is limited to the selection; one that cannot (rotate, crop,
  outpaint) is answered with a question saying so. Returns the plan and whether the
  selection was used.
"""

from __future__ import annotations

import re
from typing import Any

from imagent.planners.base import Plan, Step
from imagent.planners.lazyre import lazy as _lazy
from imagent.tools.types import ToolCall

SELECTION = "the selection"
_AREA = r"(?:area|spot|part|region|bit|patch|place|zone|section|portion|pixels)"
_THING = r"(?:one|ones|thing|things|object|objects|stuff|item|items)"
_IMAGE = r"(?:image|picture|photo|pic|shot|scene|frame|photograph|view|version|edit|time|way)"
_DEM = r"(?:this|that|these|those)"
_PRONOUN = r"(?:it|its|he|she|they|we|you|i|there|this|that|is|was|are|were|the|a|an)"
# words after a bare demonstrative that show it is a pronoun ("make this blue", "blur this a
# bit", "make this brighter"), not a determiner ("remove this cup")
_NOT_NOUN = (r"(?:to|into|in|on|with|a|an|the|by|for|from|at|and|but|or|so|more|less|much|very|"
             r"really|too|even|bit|little|slightly|completely|entirely|fully|please|now|look|looks|"
             r"go|disappear|vanish|away|out|off|up|down|again|gone|be|is|are|[a-z]+er|[a-z]+ly|"
             + "|".join(sorted("""red orange yellow green blue purple violet pink brown black white
             grey gray gold golden silver beige cyan magenta teal turquoise navy maroon crimson
             lavender lilac khaki tan ivory cream olive lime indigo coral peach mint bronze copper
             transparent invisible bright dark light pale deep vivid""".split(), key=len,
                               reverse=True)) + r")")
# (pattern, replacement), applied in order to the cleaned lower-case request
REWRITES: tuple[tuple[re.Pattern[str], str], ...] = tuple((_lazy(p), r) for p, r in (
    (rf"\b(?:the\s+)?(?:selected\s+(?:{_AREA}|{_THING})|selection|same\s+{_AREA})\b", SELECTION),
    (rf"\b{_DEM}\s+(?:{_AREA}|{_THING})\b", SELECTION),
    (rf"(?<!\bso )(?<!\bsure )(?<!\bsuch )\b{_DEM}\b(?=\s*$|\s*[,.;!?]|\s+{_NOT_NOUN}\b)", SELECTION),
    (rf"(?<!\bso )(?<!\bsure )(?<!\bsuch )\b{_DEM}\s+(?!{_IMAGE}\b|{_PRONOUN}\b)(?=[a-z])", "the "),
    (r"^([a-z]+(?: up| down| out| away| off)?)\s+(?:(?:in|at|over|on|around|right)\s+)?"
     r"(?:here|there)$", r"\1 " + SELECTION),
    (r"\s*\b(?:(?:in|at|over|on|around|from|right|just)\s+)?(?:here|there)\b(?!\s+(?:is|are|was|were|'s)\b)",
     ""),
))
# the request reads the selection as an object ("remove this", "that one"), not as an area
_OBJECT_WORDS = _lazy(rf"\b{_DEM}(?:\s+{_THING})?\b(?!\s+{_AREA}\b)(?!\s+{_IMAGE}\b)")
_SAME = _lazy(rf"\b(?:the\s+)?same\s+{_AREA}\b")
_THERE = _lazy(r"\bthere\b(?!\s+(?:is|are|was|were|'s|be)\b)")
# global_edit operations that act on the whole image only (tools/global_edit.py geometric ops)
_WHOLE_ONLY_KINDS = ("outpaint",)


def rewrite(text: str) -> str:
    """The request as the rules planner should read it when a selection is given."""
    out = text
    for pattern, repl in REWRITES:
        out = pattern.sub(repl, out)
    return " ".join(out.split()) or text


def reads_as_object(text: str) -> bool:
    """"remove this" / "make that one blue": the selection is an object (a box is refined to
    the object inside it); "brighten here" / "this area" / "the selection": an area."""
    return bool(_OBJECT_WORDS.search(text.lower()))


def wants_previous(text: str, *, has_selection: bool) -> bool:
    """The request points at the previous edit's area: "the same area/spot/place", or "there"
    when the user gave no selection."""
    low = text.lower()
    return bool(_SAME.search(low)) or (not has_selection and bool(_THERE.search(low)))


def _is_selection_ref(args: dict) -> bool:
    ref = args.get("referent") or {}
    words = str(ref.get("text") or args.get("phrase") or "").lower()
    return SELECTION in words and not (ref.get("box") or ref.get("points") or ref.get("region"))


def _names_object(ref: dict) -> bool:
    from imagent.tools.ground import AREA_NOUNS

    noun = ref.get("noun") or ""
    return bool(ref.get("colour")) or bool(noun and not all(w in AREA_NOUNS for w in noun.split()))


def _geometric(op: str) -> bool:
    from imagent.tools.global_edit import OPERATIONS, normalise_operation

    spec = OPERATIONS.get(normalise_operation(op))
    return bool(spec is not None and spec.geometric)


def bind(plan: Plan, selection: Any, request: str) -> tuple[Plan, bool]:
    """The plan with the selection put in (module docstring), and whether it was used. A step
    the selection cannot limit gives a Plan with a question instead."""
    if plan.is_question or plan.action or selection is None:
        return plan, False
    as_object = reads_as_object(request) and selection.kind == "box"
    sel_ref = selection.referent(noun="object" if as_object else None)
    where = selection.describe()
    used = False
    steps: list[Step] = []
    for step in plan.steps:
        if step.is_session:
            steps.append(step)
            continue
        new, why_not = _bind_step(step, selection, sel_ref, where)
        if why_not:
            return Plan(question=why_not, choices=["clear the selection and do it to the whole image"],
                        planner=plan.planner), False
        used |= new is not step
        steps.append(new)
    return plan.model_copy(update={"steps": steps}), used


def needs_selection(plan: Plan) -> str | None:
    """A question when the plan points at "the selection" but there is none (an earlier
    "remove this" read as the selection, now cleared), else None."""
    for step in plan.steps:
        for c in step.calls:
            if c.name == "ground" and _is_selection_ref(c.args):
                return ("What does that point at? There is no selection now: point at it (a box, "
                        "a point or a mask) or describe it (\"the red square on the left\").")
        if step.needs_model and not step.calls and SELECTION in (step.target or ""):
            return "What does that point at? There is no selection now: point at it or describe it."
    return None


def _bind_step(step: Step, selection: Any, sel_ref, where: str) -> tuple[Step, str | None]:
    calls: list[ToolCall] = []
    bound = False
    for c in step.calls:
        if c.name == "ground":
            ref = dict(c.args.get("referent") or {})
            if _is_selection_ref(c.args):
                calls.append(ToolCall(name="ground", args={"phrase": SELECTION,
                                                           "referent": sel_ref.to_args()}))
                bound = True
                continue
            if _names_object(ref) and not (ref.get("box") or ref.get("points") or ref.get("region")):
                merged = {**ref, **{k: v for k, v in sel_ref.to_args().items() if k in ("box", "points", "region")}}
                calls.append(ToolCall(name="ground", args={**c.args, "referent": merged}))
                bound = True
                continue
        calls.append(c)
    if bound:
        referent = step.referent
        if referent is not None:
            referent = sel_ref if SELECTION in (step.target or "") else referent.model_copy(
                update={k: getattr(sel_ref, k) for k in ("box", "points", "region")})
        return step.model_copy(update={"calls": calls, "referent": referent,
                                       "description": f"{step.description} ({where})"}), None
    if any(c.name == "ground" for c in step.calls):
        return step, None  # its own explicit target (a box in the words): that wins
    what = step.description or step.kind
    if step.kind in _WHOLE_ONLY_KINDS:
        return step, _cannot(what, where)
    globals_ = [c for c in step.calls if c.name == "global_edit"]
    if globals_:
        if any(_geometric(str(c.args.get("operation", ""))) for c in globals_) or \
                any(c.name != "global_edit" for c in step.calls):
            return step, _cannot(what, where)
        new_calls = [ToolCall(name="ground", args={"phrase": SELECTION, "referent": sel_ref.to_args()}),
                     ToolCall(name="build_mask", args={"source": "detections", "index": 0,
                                                       "feather": 2 if selection.kind == "mask" else 8})]
        new_calls += [ToolCall(name="global_edit", args={**c.args, "region": "mask"}) for c in globals_]
        return step.model_copy(update={"kind": "local", "calls": new_calls, "target": SELECTION,
                                       "target_full": SELECTION, "referent": sel_ref,
                                       "description": f"{what} on the selection ({where})"}), None
    if step.needs_model and not step.calls:
        if step.target is None or SELECTION in step.target:
            kind = "local" if step.kind == "global" else step.kind
            return step.model_copy(update={"kind": kind, "target": SELECTION, "target_full": SELECTION,
                                           "referent": sel_ref,
                                           "description": f"{what} on the selection ({where})"}), None
        if step.referent is not None and step.referent.names_object and step.referent.box is None:
            ref = step.referent.model_copy(update={k: getattr(sel_ref, k) for k in ("box", "points", "region")})
            return step.model_copy(update={"referent": ref, "description": f"{what} ({where})"}), None
    if not step.calls and not step.needs_model:
        return step, None
    return step, _cannot(what, where)


def _cannot(what: str, where: str) -> str:
    return (f"\"{what}\" changes the whole image; it cannot be limited to the selection ({where}). "
            "Clear the selection to do it to the whole image, or ask for an edit that can be "
            "limited to an area (brighter, blur, recolour, remove...).")


__all__ = ["REWRITES", "SELECTION", "bind", "needs_selection", "reads_as_object", "rewrite",
           "wants_previous"]
