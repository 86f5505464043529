"""The tool registry: names -> (description, args model, run function).

``Registry.run`` is the only way the assistant runs a tool: it validates the
arguments (pydantic errors become ``ToolArgumentError`` quoting tool, field, value
and the allowed values), runs the tool, and stores the normalised call (every
default filled in, JSON only) in ``result.extra["call"]`` so a session keeps fully
explicit, replayable arguments. A tool that resolves an argument while running (a
``backend="auto"`` that chose diffusion) puts ``result.extra["resolved_args"] = {...}``; those
values are merged into the stored call, so it names what really ran.

Calls stored before the tools shared one backend vocabulary (``tools/backends`` ``BACKENDS``)
still validate and replay: their old argument names and values are mapped onto the new ones
(the same algorithm runs, so replay stays bit-identical); ``validate`` (hence ``normalise`` and
``run``) does that for every call.

Calls of a tool whose output changed name the implementation that made them: an ``impl``
argument (``IMPLS``; a new call gets the current one, so every stored call has it). A *stored*
call without it was made before implementations were numbered, by the last release (0.1.0):
``upgrade_call`` (the vocabulary mapping plus that) fills in ``impl: 1``; replay
(``Runner.replay``) applies it to every stored call, so 0.1.0's code runs (``tools/legacy``).
A new call without ``impl`` (a planner's) gets today's; ``validate(call, stored=True)`` checks a
call as read from a session.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Annotated, Any, Callable

from pydantic import BaseModel, BeforeValidator, Field, ValidationError

from imagent.errors import ImagentError, InternalError, ToolArgumentError, UsageError
from imagent.tools.types import ToolCall, ToolResult, ToolState

RunFn = Callable[[Any, ToolState], ToolResult]


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    args_model: type[BaseModel]
    run: RunFn | None
    session: bool = False  # undo/redo/checkout: validated here, executed by the assistant


class Registry:
    def __init__(self) -> None:
        self._specs: dict[str, ToolSpec] = {}

    # ------------------------------------------------------------------ lookup
    def register(self, spec: ToolSpec) -> None:
        if spec.name in self._specs:
            raise ValueError(f"tool {spec.name!r} is registered twice")
        if spec.run is None and not spec.session:
            raise ValueError(f"tool {spec.name!r} has no run function")
        self._specs[spec.name] = spec

    def names(self) -> list[str]:
        return list(self._specs)

    def spec(self, name: str) -> ToolSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise ToolArgumentError(f"unknown tool {name!r}",
                                    hint="known tools: " + ", ".join(self._specs)) from None

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    # ------------------------------------------------------------------ validation
    def validate(self, call: ToolCall, *, stored: bool = False) -> BaseModel:
        """The call's validated args model. ``stored=True``: a call read from a session
        (``upgrade_call``: without ``impl`` it was made by 0.1.0, impl 1); otherwise a new
        call (old argument vocabulary mapped, a missing ``impl`` is today's)."""
        spec = self.spec(call.name)
        if not isinstance(call.args, dict):
            raise ToolArgumentError(f"{call.name}: arguments must be an object, got {call.args!r}")
        upgrade = upgrade_call if stored else _map_vocabulary
        args = upgrade({"name": call.name, "args": call.args})["args"]
        try:
            return spec.args_model.model_validate(args)
        except ValidationError as exc:
            raise _argument_error(spec, exc) from None

    def normalise(self, call: ToolCall, *, stored: bool = False) -> ToolCall:
        """The call validated, with every default filled in, as plain JSON values."""
        args = self.validate(call, stored=stored)
        return ToolCall(name=call.name, args=args.model_dump(mode="json"))

    def run(self, call: ToolCall, state: ToolState) -> ToolResult:
        spec = self.spec(call.name)
        if spec.session:
            raise UsageError(f"{call.name!r} is a session call; undo/redo/checkout are run by "
                             "the assistant, not by the tool registry",
                             hint="pass it to the assistant (Assistant.ask or its session methods)")
        args = self.validate(call)
        state.check_cancelled()
        normalised = ToolCall(name=call.name, args=args.model_dump(mode="json"))
        state.emit(kind="tool_start", tool=call.name, args=normalised.args)
        t0 = time.perf_counter()
        try:
            result = spec.run(args, state)  # type: ignore[misc]
        except ImagentError:
            raise
        except Exception as exc:  # a bug in a tool must still come out as our error
            raise InternalError(f"tool {call.name!r} failed unexpectedly: "
                                f"{type(exc).__name__}: {exc}",
                                hint="this is a bug in imagent; the image was not changed") from exc
        if not isinstance(result, ToolResult):
            raise InternalError(f"tool {call.name!r} returned {type(result).__name__}, "
                                "not a ToolResult")
        resolved = result.extra.get("resolved_args")
        if resolved:
            normalised = _merge_resolved(spec, normalised, resolved)
        result.extra["call"] = normalised.to_json_dict()
        result.metrics.setdefault("elapsed_ms", round((time.perf_counter() - t0) * 1000.0, 1))
        state.emit(kind="tool_end", tool=call.name, message=result.message)
        return result

    # ------------------------------------------------------------------ schemas
    def json_schemas(self) -> dict[str, dict]:
        return {name: spec.args_model.model_json_schema() for name, spec in self._specs.items()}

    def describe(self) -> list[dict[str, Any]]:
        """name, description, session flag and JSON schema of each tool (for planners)."""
        return [{"name": s.name, "description": s.description, "session": s.session,
                 "parameters": s.args_model.model_json_schema()} for s in self._specs.values()]

    def as_langchain_tools(self, executor: Callable[[ToolCall], str]) -> list:
        """One ``StructuredTool`` per tool; calling it builds a ToolCall for ``executor``."""
        from langchain_core.tools import StructuredTool  # lazy: langchain is heavy

        tools = []
        for spec in self._specs.values():
            tools.append(StructuredTool.from_function(
                func=_make_tool_func(spec.name, spec.args_model, executor),
                name=spec.name, description=spec.description, args_schema=spec.args_model))
        return tools


# Old stored calls -> the one backend vocabulary. Each maps to the call that runs the same
# algorithm the old one did:
#   remove      backend "patchmatch" | "telea"  -> backend "embedded",
#                                                  algorithm "patchmatch" | "telea"
#   outpaint    backend "classical"             -> backend "embedded" (algorithm "auto": PatchMatch,
#                                                  the mirrored edge without it, as before)
#   insert      method X                        -> technique X
#   build_mask  refine "auto"                   -> refine None,  backend "auto"
#               refine "none"                   -> refine False, backend "embedded"
#               refine "grabcut"                -> refine True,  backend "embedded"
#               refine "sam"                    -> refine True,  backend "sam"
# ground and global_edit kept their names and values (global_edit gained ``backend``, whose
# default is filled in from the operation).
_OLD_BACKEND = {
    "remove": {"patchmatch": {"backend": "embedded", "algorithm": "patchmatch"},
               "telea": {"backend": "embedded", "algorithm": "telea"}},
    "outpaint": {"classical": {"backend": "embedded"}},
}
_OLD_REFINE = {"auto": (None, "auto"), "none": (False, "embedded"),
               "grabcut": (True, "embedded"), "sam": (True, "sam")}
_RENAMED = {"insert": {"method": "technique"}}

# The implementations of the tools whose pixels changed, by number (``impl``). 1 is the code of
# the last release (0.1.0, commit 5fa86c6), which stored no impl; the highest is today's, the
# default of a new call. Only what changed the output gets a number: the model backends, the
# geometric global_edit operations, outpaint's reflect fill and remove's Telea ran the same code
# in both, so they accept either.
IMPLS: dict[str, dict[int, str]] = {
    "global_edit": {1: "0.1.0: the colour operations in float32 (tools/legacy/global_edit_v1.py)",
                    2: "colour operations on uint8 (lookup tables, cv2.transform, maps estimated "
                       "on a downscaled copy); adds pixelate and blur's value"},
    "outpaint": {1: "0.1.0: PatchMatch outward in tiles from a band of the whole image "
                    "(tools/legacy/outpaint_v1.py)",
                 2: "PatchMatch from a band next to the border minus objects, synthesized "
                    "structure and texture beyond it"},
    "remove": {1: "0.1.0: PatchMatch may copy from anywhere in the crop",
               2: "PatchMatch copies no patch from a face clear of the hole"},
}
CURRENT_IMPL: dict[str, int] = {name: max(v) for name, v in IMPLS.items()}


def check_impl(tool: str, value: object) -> int:
    """``value`` as one of ``tool``'s implementation numbers, or ValueError naming them (the
    args models call it, so a bad impl is a ToolArgumentError quoting the versions)."""
    known = IMPLS[tool]
    if isinstance(value, bool) or not isinstance(value, int) or value not in known:
        listed = "; ".join(f"{k} = {v}" for k, v in known.items())
        raise ValueError(f"{tool} has no implementation {value!r}; this imagent has "
                         f"{', '.join(map(str, known))} ({listed})")
    return value


def impl_arg(tool: str) -> Any:
    """The type of ``tool``'s ``impl`` argument (``impl: Impl`` in its args model, with
    ``Impl = impl_arg(NAME)``): today's implementation by default, any other checked against
    ``IMPLS`` by ``check_impl``."""
    return Annotated[int, BeforeValidator(functools.partial(check_impl, tool)),
                     Field(CURRENT_IMPL[tool], description=impl_description(tool))]


def impl_description(tool: str) -> str:
    return (f"Which implementation of {tool} runs: " +
            "; ".join(f"{k} = {v}" for k, v in IMPLS[tool].items()) +
            f". Leave it out: new calls get {CURRENT_IMPL[tool]}; a stored call keeps the one "
            "that made it, so replay is bit-identical.")


def upgrade_call(call: dict[str, Any]) -> dict[str, Any]:
    """A *stored* call ``{"name", "args"}`` as today's tools read it (a new dict; a call that is
    already current comes back equal): old argument names and values mapped to today's, and a
    call of a tool in ``IMPLS`` without ``impl`` (made by 0.1.0) given ``impl: 1``. Unknown
    shapes are returned unchanged for validation to report."""
    new = _map_vocabulary(call)
    name, args = new.get("name"), new.get("args")
    if name in IMPLS and isinstance(args, dict) and "impl" not in args:
        new = {**new, "args": {**args, "impl": 1}}
    return new


def _map_vocabulary(call: dict[str, Any]) -> dict[str, Any]:
    """``call`` with old argument names and values mapped to today's (stored or new calls)."""
    name, args = call.get("name"), call.get("args")
    if not isinstance(args, dict):
        return call
    new = dict(args)
    old = _OLD_BACKEND.get(name, {}).get(new.get("backend"))  # type: ignore[arg-type]
    if old:
        new.update(old)
    for before, after in _RENAMED.get(name, {}).items():  # type: ignore[arg-type]
        if before in new and after not in new:
            new[after] = new.pop(before)
    if name == "build_mask" and isinstance(new.get("refine"), str) and \
            new["refine"] in _OLD_REFINE:
        refine, backend = _OLD_REFINE[new["refine"]]
        new["refine"] = refine
        if new.get("backend", "auto") == "auto":
            new["backend"] = backend
    return {**call, "args": new}


def _merge_resolved(spec: ToolSpec, call: ToolCall, resolved: Any) -> ToolCall:
    """The normalised call with what the tool resolved (e.g. ``backend="auto"`` ->
    ``"diffusion"``) merged in and validated again, so the stored call names what really ran
    and replays it (or fails clearly where that backend is missing)."""
    if not isinstance(resolved, dict):
        raise InternalError(f"tool {spec.name!r} returned resolved_args {resolved!r}, not a dict")
    try:
        args = spec.args_model.model_validate({**call.args, **resolved})
    except ValidationError as exc:
        raise InternalError(f"tool {spec.name!r} resolved its arguments to invalid values "
                            f"{resolved!r}: {exc.errors(include_url=False)[0].get('msg')}",
                            hint="this is a bug in imagent; the image was not changed") from None
    return ToolCall(name=call.name, args=args.model_dump(mode="json"))


def _make_tool_func(name: str, model: type[BaseModel],
                    executor: Callable[[ToolCall], str]) -> Callable[..., str]:
    def func(**kwargs: Any) -> str:
        # langchain passes validated attribute values (defaults included); dump them
        # back to plain JSON so the ToolCall is explicit and storable
        args = model.model_validate(kwargs).model_dump(mode="json")
        return executor(ToolCall(name=name, args=args))

    func.__name__ = name
    return func


def _argument_error(spec: ToolSpec, exc: ValidationError) -> ToolArgumentError:
    parts: list[str] = []
    hints: list[str] = []
    fields = spec.args_model.model_fields
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err.get("loc", ())) or "(arguments)"
        top = str(err["loc"][0]) if err.get("loc") else ""
        etype = err.get("type", "")
        value = err.get("input")
        msg = err.get("msg", "invalid")
        if etype == "missing":
            parts.append(f"required argument {loc!r} is missing")
        elif etype == "extra_forbidden":
            parts.append(f"unknown argument {loc!r} (= {value!r})")
            hints.append("the arguments of " + spec.name + " are: " + ", ".join(fields))
        else:
            parts.append(f"argument {loc!r} = {_short(value)} is invalid: {msg}")
        field = fields.get(top)
        if field is not None and field.description and etype != "extra_forbidden":
            hints.append(f"{top}: {field.description}")
    hint = "; ".join(dict.fromkeys(hints)) or None
    return ToolArgumentError(f"{spec.name}: " + "; ".join(parts), hint=hint)


def _short(value: Any, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@functools.lru_cache(maxsize=1)
def default_registry() -> Registry:
    """The registry of every built-in tool and the session calls (built once)."""
    from imagent.tools import (build_mask, extract, global_edit, ground, insert, outpaint,
                               recolor, remove, session_calls)

    reg = Registry()
    for mod in (ground, build_mask, remove, insert, outpaint, global_edit, extract, recolor):
        reg.register(ToolSpec(name=mod.NAME, description=mod.DESCRIPTION, args_model=mod.Args,
                              run=mod.run))
    reg.register(ToolSpec("undo", session_calls.UNDO_DESCRIPTION, session_calls.UndoArgs,
                          None, session=True))
    reg.register(ToolSpec("redo", session_calls.REDO_DESCRIPTION, session_calls.RedoArgs,
                          None, session=True))
    reg.register(ToolSpec("checkout", session_calls.CHECKOUT_DESCRIPTION,
                          session_calls.CheckoutArgs, None, session=True))
    return reg
