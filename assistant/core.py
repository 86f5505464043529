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
from imagent.errors import (ImagentError, ModelUnavailableError, NeedsModelError,
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
    """The planner the settings ask for: ``rules`` (embedded default), ``llm`` (langchain,
    the model named by the ``llm`` setting / IMAGENT_LLM), or ``auto`` (the LLM when
    configured and reachable, else the rules; the reply says which planned)."""
    from imagent.planners.rules import RulesPlanner

    if settings.planner == "llm":
        from imagent.planners.llm import LLMPlanner, load_chat_model

        return LLMPlanner(load_chat_model(settings.llm), model_name=settings.llm)
    if settings.planner == "auto":
        from imagent.planners.llm import AutoPlanner, LLMPlanner

        llm = LLMPlanner(model_name=settings.llm) if settings.llm else None
        return AutoPlanner(llm, RulesPlanner())
    return RulesPlanner()


class Assistant:
    """An editing session driven by natural-language requests.

    >>> a = Assistant.open("photo.jpg")                      # doctest: +SKIP
    >>> turn = a.ask("remove the flag in the top-left corner")  # doctest: +SKIP
    >>> a.undo(); a.image.save("before.png")                 # doctest: +SKIP

    Opening: ``Assistant.open(image_or_session, session=, settings=, **overrides)``
    starts a new session on an image file, or continues a session by name or id
    (default: the most recent one). Use it as a context manager, or call ``close()``.

    Requests: ``ask(text, seed=)`` plans and runs one request and returns a ``Turn``
    (``reply``, ``version``, ``plan``, ``question``, ``metrics``, ``timings``); a
    request the planner cannot map returns a Turn with ``question`` (and
    ``plan.choices``) and commits nothing. ``chat(text)`` is ``ask`` for a
    conversation: when the last turn was a question, ``text`` answers it
    (``answer``, ``resolve_choice``, ``compose_answer``). ``cancel()`` stops a request
    running in another thread at its next step (it raises ``Cancelled``, commits
    nothing). ``on_event`` receives progress dicts (``kind``: plan, tool_start,
    tool_end, tool, step, commit).

    Moving in history (history is never deleted): ``undo(steps=1)``,
    ``redo(steps=1)``, ``checkout(ref)`` each return the new current ``Version``; a
    ref is a version number, a full id or 4+ hex prefix, ``"root"`` or ``"head"``.

    Looking: ``image`` (the current version's RGB image), ``head`` (its
    ``Version``), ``history`` (every version, oldest first), ``log_tree()``,
    ``version(ref)``, ``version_image(ref)``, ``version_mask(ref)``,
    ``current_mask``, ``parent_image`` (the "before" of the current edit),
    ``describe()`` (planner, profile, backends, head).

    Keeping: ``save(path, version=)`` writes an image with provenance;
    ``export(path)`` a bundle (zip), ``export(path, script=True)`` a YAML script that
    ``imagent run`` replays; ``replay(verify=)`` re-runs the stored tool calls.
    ``configure(**settings)`` changes the planner, profile or seed for later requests.
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
        # Ask "which one?" when grounding finds several equally likely candidates and the
        # request did not say which; False picks the best-scoring one silently.
        self.ask_which_one = True

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
                                            source=str(Path(source).resolve()), seed=settings.seed)
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
        path = self.store.path(self.session, head)
        return PlanContext(image_size=(head.width, head.height), version_seq=head.seq,
                           history=[v.request for v in path[1:]], seed=self.settings.seed,
                           last_plan=self._last_plan)

    @property
    def models(self):
        """The model manager (tools/models.py) on the ``models`` profile; None on ``offline``.

        Creating it loads nothing: each model loads on first use and stays cached."""
        if getattr(self, "_models", None) is None:
            self._models = model_manager(self.settings)
        return self._models

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
        self._request_seed = context.seed  # recorded per version so a script can re-run it
        t_plan = time.perf_counter() - t0
        self._emit(events, kind="plan", planner=plan.planner, steps=[s.kind for s in plan.steps])
        if plan.is_question:
            return Turn(request=request, reply=plan.question or "", plan=plan, question=plan.question,
                        events=events, timings={"plan_s": t_plan})
        if plan.action:
            return self._look(request, plan, events, t_plan)
        if self.models is not None:  # profile "models": steps that need a model get its calls
            plan = plan.model_copy(update={"steps": [
                s.model_copy(update={"calls": model_calls(s, request, context)})
                if s.needs_model and not s.calls else s for s in plan.steps]})
        for step in plan.steps:
            if step.needs_model and not step.calls:
                raise self._needs_model(step, request)

        try:
            return self._carry_out(request, plan, events, t0, t_plan)
        except _Ambiguous as amb:  # nothing was committed for this request
            question, choices = _which_one(amb)
            asked = Plan(steps=[amb.step], question=question, choices=choices, planner=plan.planner)
            return Turn(request=request, reply=question, plan=asked, question=question,
                        events=events, timings={"plan_s": round(t_plan, 4)})

    def _carry_out(self, request: str, plan: Plan, events: list[dict], t0: float,
                   t_plan: float) -> Turn:
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
            replies.extend(metrics.get("check", {}).get("notes", []))  # a failed result check says so
        self._last_plan = plan
        if self.settings.planner == "auto" and plan.planner:  # auto: say which planner planned
            replies.append(f"planned by the {plan.planner} planner")
        timings["total_s"] = round(time.perf_counter() - t0, 4)
        return Turn(request=request, reply=". ".join(replies), version=version, plan=plan,
                    metrics=metrics, events=events, timings=timings, branched=branched)

    def _look(self, request: str, plan: Plan, events: list[dict], t_plan: float) -> Turn:
        """Read-only requests ("show the history", "compare with the original"): no new version."""
        if plan.action == "history":
            reply = f"history of session {self.session.name}:\n{self.store.log_tree(self.session)}"
            metrics: dict[str, Any] = {"versions": len(self.history)}
        elif plan.action == "compare":
            a, b = plan.action_args.get("a", "0"), plan.action_args.get("b", "head")
            d = self.store.diff(self.session, a, b)
            metrics = {k: getattr(d, k) for k in ("changed_fraction", "changed_fraction_over_8",
                                                  "mean_abs", "max_abs", "bbox", "size_changed")}
            reply = (f"version {a} → {b}: {d.changed_fraction:.1%} of pixels changed "
                     f"({d.changed_fraction_over_8:.1%} by more than 8 levels), mean |Δ| {d.mean_abs:.1f}"
                     + (f", changed area {d.bbox}" if d.bbox else "")
                     + (" (sizes differ: compared the common area)" if d.size_changed else ""))
        else:
            raise UsageError(f"the planner asked for an unknown action {plan.action!r}",
                             hint="this is a planner bug; rephrase the request")
        return Turn(request=request, reply=reply, version=self.head, plan=plan, metrics=metrics,
                    events=events, timings={"plan_s": round(t_plan, 4)})

    def _needs_model(self, step: Step, request: str) -> ImagentError:
        role = step.needs_model or "inpaint"
        what, model, used_for = _MODEL_NEEDS.get(role, (role, role, "this edit"))
        return NeedsModelError(
            f"\"{request}\" is a {step.kind} edit; the embedded default (no model weights) cannot do it. "
            f"It needs the {what} model ({model}), used for {used_for}.",
            hint=f"run with --profile models (after `imagent models pull {role}` if the model is not "
                 "present); offline you can remove regions, recolour, adjust the whole image, extend "
                 "it, cut out or undo",
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
        state = ToolState(image=image, original=image, cancel=self._cancel, models=self.models,
                          events=lambda e: self._emit(events, **e))
        calls: list[dict] = []
        metrics: dict[str, Any] = {}
        backends: dict[str, Any] = {}
        geometry_changed = False
        t_run = time.perf_counter()
        checks: list[dict[str, Any]] = []
        for step in steps:
            base, snapshot = len(calls), (state.image, state.mask, state.detections)
            for call in step.calls:
                geometry_changed |= self._run_call(call, state, calls, metrics, backends, events)
                if self.ask_which_one and _ambiguous_ground(calls, metrics):
                    raise _Ambiguous(step, state.detections, state.image.size)
            # The result check: local edits were composited through their mask and
            # thresholded call by call (_run_call); here the effect test and, for a
            # removal, re-detection with retries (larger mask, new seed).
            checks.append(self._check_step(step, base, snapshot, state, calls, metrics,
                                           backends, events))
        timings["run_s"] = round(time.perf_counter() - t_run, 4)
        metrics["check"] = _check_summary(checks, self.check_config)
        metrics["change"] = _change_figures(image, state.image)
        metrics["request_seed"] = getattr(self, "_request_seed", self.settings.seed)
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

    # -- the result check (tools/check.py) ------------------------------------------------------
    @property
    def check_config(self):
        """The thresholds of the result check (``tools.check.CheckConfig``); assign to change."""
        cfg = getattr(self, "_check_config", None)
        if cfg is None:
            from imagent.tools.check import CheckConfig

            cfg = self._check_config = CheckConfig()
        return cfg

    @check_config.setter
    def check_config(self, value) -> None:
        self._check_config = value

    def _run_call(self, call: ToolCall | dict, state: ToolState, calls: list[dict],
                  metrics: dict[str, Any], backends: dict[str, Any], events: list[dict]) -> bool:
        """Run one call, apply it, finalize a local edit, record it. True if it changed
        the geometry."""
        from imagent.tools.check import finalize_local_edit, is_local_edit

        call = call if isinstance(call, ToolCall) else ToolCall(**call)
        t = time.perf_counter()
        before = state.image
        result = self.registry.run(call, state)
        self._apply(state, result)
        stored = result.extra.get("call", call.to_json_dict())
        if is_local_edit(stored):  # same rule as run_calls: replay reproduces it
            state.image, figures = finalize_local_edit(before, state.image, state.mask,
                                                       self.check_config)
            result.metrics["finalize"] = figures
        calls.append(stored)
        metrics[f"{len(calls)}.{call.name}"] = result.metrics
        if result.backend:
            backends[call.name] = result.backend
        if result.model_ids:
            backends.setdefault("models", {}).update(result.model_ids)
        self._emit(events, kind="tool", name=call.name, message=result.message,
                   seconds=round(time.perf_counter() - t, 4))
        return call.name == "global_edit" and stored.get("args", {}).get("operation") in _GEOMETRY_OPS

    def _check_step(self, step: Step, base: int, snapshot: tuple, state: ToolState,
                    calls: list[dict], metrics: dict[str, Any], backends: dict[str, Any],
                    events: list[dict]) -> dict[str, Any]:
        """Check one step's result; retry a failed removal; keep the best attempt.

        Every attempt's figures are returned (they go into the version's metrics); the
        state and ``calls[base:]`` end as the kept attempt, so the stored calls (with its
        seed and mask arguments) replay to exactly the committed image."""
        from imagent.tools.check import run_checks

        cfg = self.check_config
        before = snapshot[0]
        step_calls = calls[base:]
        if not step_calls:
            return {"kind": step.kind, "skipped": "no calls"}
        phrase, method = None, None
        for i, c in enumerate(step_calls):
            if c["name"] == "ground":
                phrase = c["args"].get("phrase")
                method = metrics.get(f"{base + i + 1}.ground", {}).get("method")
                break

        def check():
            return run_checks(before, state.image, state.mask, kind=step.kind, config=cfg,
                              phrase=phrase, ground_method=method)

        def figures(report, n):
            return {"attempt": n, "passed": report.passed, "failures": report.failures,
                    "calls": [dict(c["args"]) for c in calls[base:]
                              if c["name"] in ("build_mask", "remove")],
                    **{k: v for k, v in report.metrics.items() if k not in ("kind", "passed")}}

        report = check()
        attempts = [figures(report, 0)]
        kept = 0
        if not report.passed and step.kind == "remove" and cfg.max_retries > 0:
            best = (self._attempt_rank(report), 0, list(calls[base:]),
                    (state.image, state.mask, state.detections),
                    {k: metrics[k] for k in list(metrics) if _call_index(k) > base})
            first = [dict(c, args=dict(c["args"])) for c in calls[base:]]
            for n in range(1, cfg.max_retries + 1):
                self._emit(events, kind="retry", step=step.kind, attempt=n,
                           reason="; ".join(report.failures))
                for k in [k for k in metrics if _call_index(k) > base]:
                    del metrics[k]
                del calls[base:]
                state.image, state.mask, state.detections = snapshot
                for c in _retry_calls(first, n, cfg):
                    self._run_call(c, state, calls, metrics, backends, events)
                report = check()
                attempts.append(figures(report, n))
                rank = self._attempt_rank(report)
                if rank > best[0]:
                    best = (rank, n, list(calls[base:]), (state.image, state.mask, state.detections),
                            {k: metrics[k] for k in list(metrics) if _call_index(k) > base})
                if report.passed:
                    break
            kept = best[1]
            if kept != attempts[-1]["attempt"]:  # an earlier attempt was better: restore it
                for k in [k for k in metrics if _call_index(k) > base]:
                    del metrics[k]
                del calls[base:]
                calls.extend(best[2])
                metrics.update(best[4])
                state.image, state.mask, state.detections = best[3]
        final = next(a for a in attempts if a["attempt"] == kept)
        return {"kind": step.kind, "target": step.target, "passed": final["passed"],
                "failures": final["failures"], "kept_attempt": kept, "attempts": attempts}

    @staticmethod
    def _attempt_rank(report) -> tuple:
        v = report.metrics.get("verification") or {}
        eff = report.metrics.get("effect") or {}
        return (report.passed, -float(v.get("best_score") or 0.0),
                float(eff.get("changed_fraction_in_mask") or 0.0))

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
        from imagent.tools.check import finalize_local_edit, is_local_edit

        state = ToolState(image=image, original=image, models=self.models)
        for call in tool_calls:
            before = state.image
            self._apply(state, self.registry.run(ToolCall(**call), state))
            if is_local_edit(call):  # the same rule as _run_call
                state.image, _ = finalize_local_edit(before, state.image, state.mask,
                                                     self.check_config)
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
            # The same path rules as a bundle: nothing inside the store home, a real folder.
            target = self.store.resolve_export_path(path)
            return _atomic_write_text(target, self.store.export_script(self.session))
        return self.store.export_bundle(self.session, path)

    # -- conversation and inspection (used by the TUI, scripts and notebooks) -----------------------
    @property
    def pending_question(self) -> Turn | None:
        """The last turn of ``chat`` when it was a question the user has not answered yet."""
        return getattr(self, "_pending_question", None)

    def chat(self, text: str, *, seed: int | None = None) -> Turn:
        """``ask``, conversation-aware: when the planner's last turn asked a question, ``text`` answers it.

        The answer may be a choice's number ("2"), its text, or a unique word of it
        ("left"); it is resolved by ``resolve_choice`` and composed with the
        request that was asked about (``compose_answer``). The planner also sees
        the question it asked as ``context.last_plan`` while it plans the answer.
        """
        question = self.pending_question
        self._pending_question = None
        if question is not None:
            return self.answer(text, question=question, seed=seed)
        turn = self.ask(text, seed=seed)
        if turn.question:
            self._pending_question = turn
        return turn

    def answer(self, text: str, *, question: Turn, seed: int | None = None) -> Turn:
        """Answer ``question`` (a Turn whose plan asked back) with ``text``; see ``chat``."""
        plan = question.plan
        choice = self.resolve_choice(plan.choices if plan else [], text)
        request = self.compose_answer(question, text, choice)
        previous = self._last_plan
        self._last_plan = plan  # the planner sees its own question as context.last_plan
        try:
            turn = self.ask(request, seed=seed)
        finally:
            if self._last_plan is plan:  # not replaced by a successful plan: restore
                self._last_plan = previous
        if turn.question:
            self._pending_question = turn
        return turn

    _ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "last": -1,
                 "one": 1, "two": 2, "three": 3, "four": 4, "five": 5}

    @staticmethod
    def resolve_choice(choices: list[str], answer: str) -> str | None:
        """The choice an answer picks: its number ("2", "#2", "the second"), its text, or a word
        that only one choice contains ("left"). None when the answer picks no single choice."""
        import re

        if not choices:
            return None
        text = " ".join(answer.strip().lower().rstrip(".!?").split())
        text = re.sub(r"^(?:the|option|choice|number|no\.?|#)\s*", "", text).strip()
        text = re.sub(r"\s+(?:one|option)$", "", text).strip()
        n = None
        if re.fullmatch(r"#?\d+", text):
            n = int(text.lstrip("#"))
        elif text in Assistant._ORDINALS:
            n = Assistant._ORDINALS[text]
        if n is not None:
            if n == -1:
                return choices[-1]
            return choices[n - 1] if 1 <= n <= len(choices) else None
        lowered = [c.lower() for c in choices]
        if text in lowered:
            return choices[lowered.index(text)]
        hits = [c for c, low in zip(choices, lowered) if text and (text in low or low in text)]
        if len(hits) == 1:
            return hits[0]
        # A fragment ("left", "bottom-right"): every word of the answer is in exactly one choice.
        words = set(re.findall(r"[a-z0-9-]+", text)) - {"the", "a", "an", "on", "in", "at", "of", "to", "one"}
        if not words:
            return None
        top = [c for c, low in zip(choices, lowered) if words <= set(re.findall(r"[a-z0-9-]+", low))]
        return top[0] if len(top) == 1 else None

    @staticmethod
    def compose_answer(question: Turn, answer: str, choice: str | None) -> str:
        """The request to plan after a clarifying question.

        A chosen choice replaces the target phrase of the step the question was about
        (the plan of a question may carry that step: "remove the man" + "the man on
        the left" → "remove the man on the left"); a choice with no such step is taken as
        the request itself (or, when it shows one example in double quotes, the example).
        A free answer is planned as it is, with the question in context.
        """
        import re

        if choice is None:
            return answer.strip()
        request = question.request
        plan = question.plan
        for step in (plan.steps if plan else []):
            target = step.target
            if target and target.lower() in request.lower():
                i = request.lower().index(target.lower())
                return request[:i] + choice + request[i + len(target):]
        quoted = re.findall(r'"([^"]+)"', choice)
        return quoted[0] if len(quoted) == 1 else choice

    def version(self, ref: str | int | Version = "head") -> Version:
        """A version of this session by number, id, id prefix, ``"head"`` or ``"root"``."""
        return self.store.get_version(self.session, ref)

    def version_image(self, ref: str | int | Version = "head") -> Image.Image:
        """Any version's image (RGB), e.g. ``a.version_image(0)`` for the original."""
        return self.store.load_image(ref if isinstance(ref, Version) else self.version(ref))

    def version_mask(self, ref: str | int | Version = "head") -> np.ndarray | None:
        """The mask a version's edit used (float32 H×W in [0, 1]), or None for whole-image edits."""
        return self.store.load_mask(ref if isinstance(ref, Version) else self.version(ref))

    @property
    def current_mask(self) -> np.ndarray | None:
        """The current version's edit mask, or None."""
        return self.version_mask(self.head)

    @property
    def parent_image(self) -> Image.Image | None:
        """The image before the current version's edit (None at the root): the "before" of before/after."""
        head = self.head
        return None if head.parent_id is None else self.version_image(head.parent_id)

    def log_tree(self) -> str:
        """The version tree as text; ``@`` marks the current version (what ``imagent log`` prints)."""
        return self.store.log_tree(self.session)

    def configure(self, **overrides: Any) -> Settings:
        """Change settings for the next requests (``planner=``, ``profile=``, ``seed=``...).

        The new settings are validated first, and the planner rebuilt when it may change;
        on an error nothing changes.
        """
        from imagent.assistant.config import with_overrides

        allowed = [k for k in Settings.__dataclass_fields__ if k not in ("sources", "home")]
        unknown = sorted(k for k in overrides if k not in allowed)
        if unknown:
            raise UsageError(f"cannot change the setting {unknown[0]!r} of an open session",
                             hint="settings that can change: " + ", ".join(allowed))
        settings = with_overrides(self.settings, **overrides)
        planner = make_planner(settings) if {"planner", "profile", "llm"} & set(overrides) else self.planner
        self.settings, self.planner = settings, planner
        return settings

    def describe(self) -> dict[str, Any]:
        """What is in use: planner, profile, backends of the current version, the head."""
        head = self.head
        backends = {k: v for k, v in head.backends.items() if k != "models"}
        return {"session": self.session.name, "session_id": self.session.id,
                "planner": getattr(self.planner, "name", type(self.planner).__name__),
                "profile": self.settings.profile,
                "backend": ", ".join(sorted(set(map(str, backends.values())))) or
                           ("embedded" if self.settings.profile == "offline" else "models"),
                "models": dict(head.backends.get("models", {})),
                "version": head.seq, "version_id": head.id, "size": [head.width, head.height]}


def _call_index(key: str) -> int:
    """1-based call number of a per-call metrics key such as "3.remove" (0 for other keys)."""
    head = key.split(".", 1)[0]
    return int(head) if head.isdigit() else 0


def _retry_calls(first: list[dict], attempt: int, cfg) -> list[dict]:
    """A removal's calls for retry ``attempt``: the mask grown (more px, a larger fraction of
    the object, its attached shadow included) and a new seed for the fill."""
    out = []
    for c in first:
        args = dict(c["args"])
        if c["name"] == "build_mask":
            args["dilate"] = min(2048, int(args.get("dilate", 0)) + cfg.retry_dilate_px * attempt)
            args["dilate_frac"] = round(min(2.0, float(args.get("dilate_frac", 0.0)) +
                                            cfg.retry_dilate_frac * attempt), 4)
            args["shadow"] = True
        elif c["name"] == "remove":
            args["seed"] = (int(args.get("seed", 0)) + attempt) % (2**32)
        out.append({"name": c["name"], "args": args})
    return out


def _check_summary(checks: list[dict[str, Any]], cfg) -> dict[str, Any]:
    """The version's ``check`` metrics: every step's attempts, the config, and reply notes
    for anything that failed (never a silent success)."""
    notes = []
    for c in checks:
        if c.get("passed") is False:
            tries = len(c.get("attempts", []))
            what = f"{c['kind']} {c['target']}" if c.get("target") else c["kind"]
            note = f"the result check of \"{what}\" failed: {'; '.join(c['failures'])}"
            if tries > 1:
                note += (f" (after {tries} attempts with larger masks and new seeds; kept the "
                         f"best, attempt {c['kept_attempt'] + 1})")
            notes.append(note)
    return {"passed": all(c.get("passed") is not False for c in checks), "steps": checks,
            "notes": notes, "config": cfg.to_dict()}


def model_manager(settings: Settings):
    """The process-wide model manager for these settings, or None on the ``offline`` profile."""
    if settings.profile != "models":
        return None
    from imagent.tools.models import ROLES, manager_from_settings

    return manager_from_settings({
        **{f"model_{r}": getattr(settings, f"model_{r}", "") or None for r in ROLES},
        "device": settings.device, "dtype": settings.dtype,
        "memory_budget_gb": settings.memory_budget_gb or None,
        "offload": settings.offload, "download": settings.download})


def model_calls(step: Step, request: str, context: PlanContext) -> list[ToolCall]:
    """The tool calls that carry out a step the embedded default cannot, on the models profile.

    Emu Edit routing: style, weather and whole-image changes, and background changes, go to
    the instruction model; object insertion and replacement to the inpainting model (PowerPaint
    task prompts when the checkpoint has them); local attribute changes of a grounded object to
    the instruction model inside the object's mask, or to inpainting for colours and patterns.
    """
    seed = context.seed
    prompt = (step.prompt or "").strip()
    target = step.target
    ground = [ToolCall(name="ground", args={"phrase": target, **({"select": step.select} if step.select else {}),
                                            **({"index": step.index} if step.index else {})})] if target else []
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


class _Ambiguous(Exception):
    """Raised inside a request when grounding cannot tell which candidate is meant."""

    def __init__(self, step: Step, detections: list, size: tuple[int, int]) -> None:
        super().__init__("ambiguous grounding")
        self.step, self.detections, self.size = step, list(detections), size


def _ambiguous_ground(calls: list[dict], metrics: dict[str, Any]) -> bool:
    """Whether the call just run was a ground call that found several equally likely candidates."""
    if not calls or calls[-1].get("name") != "ground":
        return False
    return bool(metrics.get(f"{len(calls)}.ground", {}).get("ambiguous"))


_ORDINAL_WORDS = ["first", "second", "third", "fourth", "fifth", "sixth"]


def _which_one(amb: _Ambiguous) -> tuple[str, list[str]]:
    """The question and its choices, as phrases ground understands ("the second cat from the left")."""
    target = (amb.step.target or "it").strip()
    noun = target[4:] if target.lower().startswith("the ") else target
    dets = amb.detections[:6]
    xs = [(d.box[0] + d.box[2]) / 2 for d in dets]
    ys = [(d.box[1] + d.box[3]) / 2 for d in dets]
    horizontal = (max(xs) - min(xs)) >= (max(ys) - min(ys))
    order = sorted(range(len(dets)), key=lambda i: xs[i] if horizontal else ys[i])
    first, last, axis = ("left", "right", "from the left") if horizontal else ("top", "bottom", "from the top")
    choices, lines = [], []
    for rank, i in enumerate(order):
        if rank == 0:
            phrase = f"the {noun} on the {first}" if horizontal else f"the {noun} at the {first}"
        elif rank == len(order) - 1:
            phrase = f"the {noun} on the {last}" if horizontal else f"the {noun} at the {last}"
        else:
            phrase = f"the {_ORDINAL_WORDS[rank]} {noun} {axis}"
        choices.append(phrase)
        lines.append(f"{rank + 1}. {phrase} (box {list(dets[i].box)}, score {dets[i].score:.2f})")
    question = (f"I found {len(amb.detections)} candidates for \"{target}\". Which one do you mean?\n"
                + "\n".join(lines))
    return question, choices


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
