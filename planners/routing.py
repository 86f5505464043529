"""Model routing (Emu Edit's task routing): which engine carries out a step the embedded
default cannot, and the message when that engine is missing.

On the ``models`` profile a step with ``needs_model`` gets its tool calls here: style,
weather and whole-image changes, and background changes, go to the instruction model;
object insertion and replacement to the inpainting model (PowerPaint task prompts when the
checkpoint has them); local attribute changes of a grounded object to the instruction model
inside the object's mask, or to inpainting for colours and patterns. Offline the same step
is refused with ``needs_model_error``: the role, the model, and the command that fetches it.
"""

from __future__ import annotations

from imagent.errors import ImagentError, NeedsModelError
from imagent.planners.base import Plan, PlanContext, Step
from imagent.tools.types import ToolCall

MODEL_NEEDS = {
    "instruct": ("instruction editing", "timbrooks/instruct-pix2pix",
                 "global and style edits such as weather, season or art style"),
    "inpaint": ("diffusion inpainting", "an SD inpainting or PowerPaint checkpoint",
                "adding, replacing and background edits"),
}


def _ground_call(step: Step) -> list[ToolCall]:
    if not step.target:
        return []
    args: dict = {"phrase": step.target}
    if step.referent is not None:
        args["referent"] = step.referent.to_args()
    return [ToolCall(name="ground", args=args)]


def model_calls(step: Step, request: str, context: PlanContext) -> list[ToolCall]:
    """The tool calls that carry out a step the embedded default cannot (module docstring)."""
    seed = context.seed
    prompt = (step.prompt or "").strip()
    target = step.target
    ground = _ground_call(step)
    if step.kind in ("global", "background") or (step.needs_model == "instruct" and not target):
        instruction = request if step.kind == "background" or not prompt else prompt
        return [ToolCall(name="global_edit", args={"operation": "instruct", "prompt": instruction, "seed": seed})]
    if step.needs_model == "instruct":  # a local change the instruction model makes inside the mask
        return ground + [
            ToolCall(name="build_mask", args={"source": "detections", "index": 0, "dilate": 8, "feather": 6}),
            ToolCall(name="global_edit", args={"operation": "instruct", "region": "mask",
                                               "prompt": prompt or request, "seed": seed})]
    if step.kind == "add" and not target:
        w, h = context.image_size or (512, 512)  # no anchor: a central region for the new object
        box = [int(w * 0.3), int(h * 0.3), int(w * 0.7), int(h * 0.7)]
        return [ToolCall(name="build_mask", args={"source": "box", "box": box, "shape": "ellipse"}),
                ToolCall(name="insert", args={"kind": "generate", "prompt": prompt or request, "seed": seed})]
    what = prompt or request
    if step.kind == "local" and target:
        what = f"{target} {prompt}".strip() if prompt else request
    dilate = 0.15 if step.kind == "add" else 0.08
    return ground + [
        ToolCall(name="build_mask", args={"source": "detections", "index": 0, "dilate_frac": dilate,
                                          "feather": 4}),
        ToolCall(name="insert", args={"kind": "generate", "prompt": what, "seed": seed})]


def route(plan: Plan, request: str, context: PlanContext, *, models: bool) -> Plan:
    """The plan with every model step given its calls (``models``: the profile has a model
    manager), or ``needs_model_error`` for the first step nothing here can carry out."""
    if models:
        plan = plan.model_copy(update={"steps": [
            s.model_copy(update={"calls": model_calls(s, request, context)})
            if s.needs_model and not s.calls else s for s in plan.steps]})
    for step in plan.steps:
        if step.needs_model and not step.calls:
            raise needs_model_error(step, request)
    return plan


def needs_model_error(step: Step, request: str) -> ImagentError:
    role = step.needs_model or "inpaint"
    what, model, used_for = MODEL_NEEDS.get(role, (role, role, "this edit"))
    return NeedsModelError(
        f"\"{request}\" is a {step.kind} edit; the embedded default (no model weights) cannot do it. "
        f"It needs the {what} model ({model}), used for {used_for}.",
        hint=f"run with --profile models (after `imagent models pull {role}` if the model is not "
             "present); offline you can remove regions, recolour, adjust the whole image, extend "
             "it, cut out or undo",
    )


__all__ = ["MODEL_NEEDS", "model_calls", "needs_model_error", "route"]
