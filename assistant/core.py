"""The assistant: plan → run ToolCalls through the registry → check → commit.

``Assistant`` is the public Python API (``from imagent import Assistant``) and
what the CLI and the TUI drive. One request (``ask``) becomes one version; the
session steps of a request (undo, redo, checkout) move the head instead.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image

from imagent.assistant.config import Settings, load_settings
from imagent.errors import (ImagentError, InputError, ModelUnavailableError, NeedsModelError,
                            SessionNotFound, UsageError)
from imagent.planners.base import Plan, PlanContext, Step
from imagent.sessions import Session, Store, Version
from imagent.tools.registry import Registry, default_registry
from imagent.tools.types import ToolCall, ToolResult, ToolState

# Tools that change the image geometry: the alpha channel kept aside at load time
# cannot follow them, so it is dropped (and the reply says so).
_GEOMETRY_OPS = {"rotate", "flip_horizontal", "flip_vertical", "crop", "resize"}

_MODEL_NEEDS = {
    "instruct": ("instruction editing", "timbrooks/instruct-pix2pix",
                 "global and style edits such as weather, season or art style"),
    "inpaint": ("diffusion inpainting", "an SD inpainting or PowerPaint checkpoint",
                "adding, replacing and background edits"),
}


@dataclass
class Turn:
    """The outcome of one request."""

    request: str
    reply: str
    version: Version | None = None  # the new head (or the version moved to), None for a question
    plan: Plan | None = None
    question: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    branched: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "request": self.request, "reply": self.reply, "question": self.question,
            "version": self.version.to_dict() if self.version else None,
            "plan": self.plan.to_json_dict() if self.plan else None,
            "metrics": self.metrics, "timings": self.timings, "branched": self.branched,
        }


def make_planner(settings: Settings):
    """The planner the settings ask for. The LLM planner lands with the planners issue."""
    from imagent.planners.rules import RulesPlanner

    if settings.planner == "llm":
        raise ModelUnavailableError(
            "the LLM planner is not available in this version of imagent",
            hint="use --planner rules (the default); the langchain planner comes with the planners work",
        )
    return RulesPlanner()


class Assistant:
    """An editing session driven by natural-language requests.

    >>> a = Assistant.open("photo.jpg")                      # doctest: +SKIP
    >>> turn = a.ask("remove the flag in the top-left corner")  # doctest: +SKIP
    >>> a.undo(); a.image.save("before.png")                 # doctest: +SKIP
    """

    def __init__(self, store: Store, session: Session, *, settings: Settings,
                 planner=None, registry: Registry | None = None,
                 on_event: Callable[[dict], None] | None = None) -> None:
        self.store = store
        self.session = session
        self.settings = settings
        self.planner = planner or make_planner(settings)
        self.registry = registry or default_registry()
        self.on_event = on_event
        self._last_plan: Plan | None = None
        self._cancel = threading.Event()

    # -- opening ------------------------------------------------------------------------
    @classmethod
    def open(cls, source: str | Path | None = None, *, session: str | None = None,
             settings: Settings | None = None, **overrides: Any) -> "Assistant":
        """Open an image (starting a new session) or an existing session.

        ``source`` is an image path, or None to continue ``session`` (a name or id)
        or else the most recent session. ``overrides`` are settings (``home``,
        ``profile``, ``seed``...).
        """
        settings = settings or load_settings(overrides)
        loaded = None
        if source is not None:
            src = str(source)
            # A bare word that is no file may be a session name; anything else is an image
            # path, loaded *before* the store is touched so a bad file changes nothing on disk.
            if Path(src).exists() or "/" in src or "\\" in src or Path(src).suffix:
                from imagent.tools.imageio import load_image

                loaded = load_image(source, max_pixels=settings.max_pixels)
            elif session is None:
                session, source = src, None
        store = Store(settings.home_path)
        try:
            if loaded is not None:
                sess = store.create_session(loaded.image, name=session, alpha=loaded.alpha,
                                            source=str(Path(source).resolve()))
            elif session is not None:
                sess = store.get_session(session)
            else:
                sess = store.latest_session()
                if sess is None:
                    raise SessionNotFound("there is no session yet",
                                          hint="start one with: imagent edit IMAGE \"request\"")
        except BaseException:
            store.close()
            raise
        return cls(store, sess, settings=settings)

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> "Assistant":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- state ----------------------------------------------------------------------------
    def _refresh(self) -> Session:
        self.session = self.store.get_session(self.session.id)
        return self.session

    @property
    def head(self) -> Version:
        return self.store.head(self._refresh())

    @property
    def image(self) -> Image.Image:
        """The current version's image (RGB)."""
        return self.store.load_image(self.head)

    @property
    def history(self) -> list[Version]:
        return self.store.log(self.session)

    def context(self) -> PlanContext:
        head = self.head
        path = self._path_to(head)
        return PlanContext(image_size=(head.width, head.height), version_seq=head.seq,
                           history=[v.request for v in path[1:]], seed=self.settings.seed,
                           last_plan=self._last_plan)

    def _path_to(self, version: Version) -> list[Version]:
        by_id = {v.id: v for v in self.store.log(self.session)}
        path = [version]
        while path[-1].parent_id:
            path.append(by_id[path[-1].parent_id])
        return path[::-1]

    def cancel(self) -> None:
        """Ask the running request (in another thread) to stop at its next step.

        Nothing is committed for a cancelled request; ``ask`` raises ``Cancelled``."""
        self._cancel.set()

    def _emit(self, events: list[dict], **event: Any) -> None:
        events.append(event)
        if self.on_event is not None:
            self.on_event(event)

    # -- session moves ----------------------------------------------------------------------
    def undo(self, steps: int = 1) -> Version:
        version = self.head
        for _ in range(steps):
            version = self.store.undo(self.session)
        return version

    def redo(self, steps: int = 1) -> Version:
        version = self.head
        for _ in range(steps):
            version = self.store.redo(self.session)
        return version

    def checkout(self, ref: str | int) -> Version:
        return self.store.checkout(self.session, ref)

    # -- the request loop -----------------------------------------------------------------------
    def plan(self, request: str) -> Plan:
        return self.planner.plan(request, self.context())

    def ask(self, request: str, *, seed: int | None = None) -> Turn:
        """Plan and carry out one request; commit the result as one new version."""
        t0 = time.perf_counter()
        self._cancel.clear()
        events: list[dict] = []
        context = self.context()
        if seed is not None:
            context.seed = seed
        plan = self.planner.plan(request, context)
        t_plan = time.perf_counter() - t0
        self._emit(events, kind="plan", planner=plan.planner, steps=[s.kind for s in plan.steps])
        if plan.is_question:
            return Turn(request=request, reply=plan.question or "", plan=plan, question=plan.question,
                        events=events, timings={"plan_s": t_plan})
        for step in plan.steps:
            if step.needs_model and not step.calls:
                raise self._needs_model(step, request)

        replies: list[str] = []
        pending: list[Step] = []
        version: Version | None = None
        metrics: dict[str, Any] = {}
        branched = False
        timings: dict[str, float] = {"plan_s": round(t_plan, 4)}
        for step in plan.steps:
            if step.is_session:
                if pending:
                    version, m, b = self._run_and_commit(request, pending, events, timings)
                    metrics.update(m)
                    branched |= b
                    pending = []
                version = self._session_step(step)
                replies.append(f"{step.description} → version {version.seq}")
            else:
                pending.append(step)
        if pending:
            version, m, b = self._run_and_commit(request, pending, events, timings)
            metrics.update(m)
            branched |= b
            replies.append(f"{'; '.join(s.description for s in pending)} → version {version.seq}")
            if b:
                replies.append(f"another process changed this session meanwhile: your edit is kept as "
                               f"branch version {version.seq} (run `imagent checkout {version.seq}` to continue from it)")
            if metrics.get("alpha_dropped"):
                replies.append("the image's transparency could not follow the geometry change and was dropped")
        self._last_plan = plan
        timings["total_s"] = round(time.perf_counter() - t0, 4)
        return Turn(request=request, reply=". ".join(replies), version=version, plan=plan,
                    metrics=metrics, events=events, timings=timings, branched=branched)

    def _needs_model(self, step: Step, request: str) -> ImagentError:
        role = step.needs_model or "inpaint"
        what, model, used_for = _MODEL_NEEDS.get(role, (role, role, "this edit"))
        return NeedsModelError(
            f"\"{request}\" is a {step.kind} edit; the embedded default (no model weights) cannot do it. "
            f"It needs the {what} model ({model}), used for {used_for}.",
            hint="the model backends arrive with imagent's model-backend work (--profile models); "
                 "offline you can remove regions, adjust the whole image, extend it, cut out or undo",
        )

    def _session_step(self, step: Step) -> Version:
        call = step.calls[0]
        args = self.registry.validate(call)
        if call.name == "undo":
            return self.undo(args.steps)
        if call.name == "redo":
            return self.redo(args.steps)
        if call.name == "checkout":
            return self.checkout(args.version)
        raise UsageError(f"unknown session call {call.name!r}")

    def _run_and_commit(self, request: str, steps: list[Step], events: list[dict],
                        timings: dict[str, float]) -> tuple[Version, dict, bool]:
        parent = self.head
        image = self.store.load_image(parent)
        state = ToolState(image=image, original=image, cancel=self._cancel,
                          events=lambda e: self._emit(events, **e))
        calls: list[dict] = []
        metrics: dict[str, Any] = {}
        backends: dict[str, Any] = {}
        geometry_changed = False
        t_run = time.perf_counter()
        for step in steps:
            for call in step.calls:
                t = time.perf_counter()
                result = self.registry.run(call, state)
                self._apply(state, result)
                stored = result.extra.get("call", call.to_json_dict())
                calls.append(stored)
                metrics[f"{len(calls)}.{call.name}"] = result.metrics
                if result.backend:
                    backends[call.name] = result.backend
                if result.model_ids:
                    backends.setdefault("models", {}).update(result.model_ids)
                if call.name == "global_edit" and stored.get("args", {}).get("operation") in _GEOMETRY_OPS:
                    geometry_changed = True
                self._emit(events, kind="tool", name=call.name, message=result.message,
                           seconds=round(time.perf_counter() - t, 4))
        timings["run_s"] = round(time.perf_counter() - t_run, 4)
        # The result check (background preservation, Emu Edit thresholding, effect test,
        # re-detection with retries) lands with the embedded-tools work; here we record
        # the plain change figures so every version carries them.
        metrics["change"] = _change_figures(image, state.image)
        alpha = None
        if parent.alpha_hash:
            if state.image.size == image.size and not geometry_changed:
                alpha = self.store.load_alpha(parent)
            else:
                metrics["alpha_dropped"] = True
        mask = state.mask if state.mask is not None and state.mask.shape == (state.image.height, state.image.width) else None
        seeds = [c["args"]["seed"] for c in calls if "seed" in c.get("args", {})]
        state.check_cancelled()  # last chance: a cancel before the commit commits nothing
        t_commit = time.perf_counter()
        version = self.store.commit(
            self.session, parent=parent.id, image=state.image, mask=mask, alpha=alpha,
            request=request, tool_calls=calls, metrics=metrics, backends=backends,
            seed=seeds[0] if seeds else None, timings=dict(timings),
        )
        timings["commit_s"] = round(time.perf_counter() - t_commit, 4)
        self._refresh()
        self._emit(events, kind="commit", version=version.id, seq=version.seq)
        return version, metrics, version.branched

    @staticmethod
    def _apply(state: ToolState, result: ToolResult) -> None:
        if result.image is not None:
            if result.image.size != state.image.size and result.mask is None:
                state.mask = None  # an old mask no longer fits the new geometry
            state.image = result.image
        if result.mask is not None:
            state.mask = result.mask
        if result.detections is not None:
            state.detections = result.detections

    # -- replay and export -------------------------------------------------------------------------
    def run_calls(self, image: Image.Image, tool_calls: list[dict]) -> Image.Image:
        """Re-run stored ToolCalls on an image (what replay does for each version)."""
        state = ToolState(image=image, original=image)
        for call in tool_calls:
            self._apply(state, self.registry.run(ToolCall(**call), state))
        return state.image

    def replay(self, *, verify: bool = False):
        return self.store.replay(self.session, lambda image, version: self.run_calls(image, version.tool_calls),
                                 verify=verify)

    def save(self, path: str | Path, *, version: str | int | None = None) -> Path:
        """Write a version's image (default: the current one) with provenance; alpha restored."""
        from imagent.tools.imageio import save_image

        v = self.head if version is None else self.store.get_version(self.session, version)
        return save_image(self.store.load_image(v), path, alpha=self.store.load_alpha(v),
                          provenance={"imagent:session": self.session.id, "imagent:version": v.id,
                                      "imagent:request": v.request})

    def export(self, path: str | Path, *, script: bool = False) -> Path:
        """Export the session as a bundle (zip) or, with ``script=True``, as a YAML request script."""
        if script:
            return _atomic_write_text(Path(path), self.store.export_script(self.session))
        return self.store.export_bundle(self.session, path)


def _change_figures(before: Image.Image, after: Image.Image) -> dict[str, Any]:
    if before.size != after.size:
        return {"size_before": list(before.size), "size_after": list(after.size)}
    a = np.asarray(before, dtype=np.int16)
    b = np.asarray(after, dtype=np.int16)
    diff = np.abs(a - b).max(axis=2)
    return {"changed_fraction": round(float((diff > 0).mean()), 5),
            "changed_fraction_over_8": round(float((diff > 8).mean()), 5),
            "mean_abs": round(float(diff.mean()), 4)}


def _atomic_write_text(path: Path, text: str) -> Path:
    import os
    import tempfile

    if not path.parent.is_dir():
        raise InputError(f"cannot write {path}: the folder {path.parent} does not exist",
                         hint="create the folder first or choose another output path")
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


__all__ = ["Assistant", "Turn", "make_planner"]
