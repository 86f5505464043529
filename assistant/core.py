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

import cv2
import numpy as np
from PIL import Image

from imagent.assistant import replies
from imagent.assistant.config import Settings, load_settings
from imagent.errors import SessionNotFound, UsageError
from imagent.planners import clarify, routing
from imagent.planners.base import Plan, PlanContext, Step
from imagent.sessions import Session, Store, Version
from imagent.tools.check import CheckConfig, NeedsClarification, run_step
from imagent.tools.registry import Registry, default_registry
from imagent.tools.runner import Runner
from imagent.tools.selection import Selection, make_selection
from imagent.tools.types import ToolState

# What a Turn reports: an edit committed ("done"), a question back ("asked"), a result check
# that failed so nothing was committed ("failed"), a move in history ("moved"), a read-only
# answer ("looked").
STATUSES = ("done", "asked", "failed", "moved", "looked")


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
    status: str = "done"  # one of STATUSES

    @property
    def ok(self) -> bool:
        """True when the request did what was asked (an edit, a move or an answer)."""
        return self.status in ("done", "moved", "looked")

    def to_dict(self) -> dict[str, Any]:
        return {
            "request": self.request, "reply": self.reply, "question": self.question,
            "version": self.version.to_dict() if self.version else None,
            "plan": self.plan.to_json_dict() if self.plan else None,
            "metrics": self.metrics, "timings": self.timings, "branched": self.branched,
            "status": self.status,
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
        self.check_config = CheckConfig()
        self.on_event = on_event
        self._last_plan: Plan | None = None
        self._cancel = threading.Event()
        # Ask "which one?" / "is it this one?" when grounding is ambiguous or weak (tools/check.py);
        # False acts on the best candidate without asking (for scripted use that accepts guesses).
        self.ask_which_one = True
        self._selection: Selection | None = None  # where the user points (select())
        self._request_selection: Selection | None = None  # the one the running request uses
        # What the last ``save`` wrote: path, version, alpha, alpha_flattened (JPEG), note.
        self.last_save: dict[str, Any] = {}
        # The pixels of the versions this object just stored or read (version id -> RGB
        # image; the last two), so an edit does not decode its parent's blob again and
        # ``save`` does not decode the version it just committed. The store is lossless.
        self._pixels: dict[str, Image.Image] = {}

    def _remember(self, version_id: str, image: Image.Image) -> None:
        self._pixels.pop(version_id, None)
        if image.mode != "RGB":  # the store keeps RGB: only an RGB image is those pixels
            return
        self._pixels[version_id] = image
        while len(self._pixels) > 2:
            self._pixels.pop(next(iter(self._pixels)))

    def _version_pixels(self, version: Version) -> Image.Image:
        """A version's RGB image, from the memory of this object when it has it (a copy, so
        no caller can change the remembered one), else from the store."""
        image = self._pixels.get(version.id)
        if image is None or image.size != (version.width, version.height):
            image = self.store.load_image(version)
            self._remember(version.id, image)
        return image.copy()

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
                # original: the root keeps the file's bytes as is when they decode to these
                # pixels -- on the loader's word (exact_decode: PNG/JPEG/WebP, no second
                # decode), else a JPEG/WebP checked by decoding it
                exact = loaded.exact_decode and loaded.file_bytes is not None
                sess = store.create_session(loaded.image, name=session, alpha=loaded.alpha,
                                            source=str(Path(source).resolve()), seed=settings.seed,
                                            original=loaded.file_bytes if exact else loaded.path,
                                            original_exact=exact)
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
        assistant = cls(store, sess, settings=settings)
        if loaded is not None:
            assistant._remember(store.head(sess).id, loaded.image)
        return assistant

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
                           last_plan=self._last_plan, has_alpha=bool(head.alpha_hash))

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

    # -- pointing ---------------------------------------------------------------------------------
    def select(self, *, box: Any = None, point: Any = None, mask: Any = None) -> Selection:
        """Point at part of the current image for the next request: a ``box`` (x0, y0, x1, y1;
        x1/y1 exclusive), a ``point`` (x, y) or a ``mask`` (a path, a PIL image or a numpy
        array; white/True = the area). "remove this", "make this blue", "brighten here" then
        mean it; "remove the cup" looks for the cup inside it; a whole-image adjustment is
        limited to it. The request that uses it clears it once its edit is done (a question
        back keeps it). Raises ``SelectionError`` (exit code 2) for a box or point outside the
        image, a mask of another size, or a mask that selects nothing."""
        head = self.head
        sel = make_selection((head.width, head.height), box=box, point=point, mask=mask)
        if sel is None:
            from imagent.errors import SelectionError

            raise SelectionError("select() needs a box, a point or a mask",
                                 hint="e.g. a.select(box=(10, 20, 110, 220)); clear_selection() clears it")
        self._selection = sel
        return sel

    def clear_selection(self) -> None:
        """Forget the pending selection."""
        self._selection = None

    @property
    def selection(self) -> Selection | None:
        """The pending selection (``select``), or None."""
        return self._selection

    def _pointing(self, request: str) -> tuple[Selection | None, str | None]:
        """The selection this request uses (the pending one, or the previous edit's mask for
        "the same area"/"there"), or a question when it points at an area there is none of."""
        from imagent.planners import pointing

        sel = self._selection
        if not pointing.wants_previous(request, has_selection=sel is not None):
            return sel, None
        prev = self.current_mask
        if prev is None or not (np.asarray(prev) >= 0.5).any():
            return None, ("Which area? The current version has no earlier edit of an area to "
                          "reuse. Point at it (a box, a point or a mask) or describe it "
                          "(\"the top-left corner\").")
        return Selection(mask=np.asarray(prev) >= 0.5, source="previous"), None

    # -- the request loop -----------------------------------------------------------------------
    @property
    def runner(self) -> Runner:
        """The one runner (tools/runner.py), with the check's finalisation thresholds."""
        return Runner(self.registry, self.check_config)

    def plan(self, request: str) -> Plan:
        return self.planner.plan(request, self.context())

    def ask(self, request: str, *, seed: int | None = None, box: Any = None, point: Any = None,
            mask: Any = None) -> Turn:
        """Plan and carry out one request; commit the result as one new version.

        ``box``/``point``/``mask`` are ``select(...)`` then the request ("remove this" with a
        box). The Turn's ``status`` says what happened (``STATUSES``); a failed result check
        commits nothing and says why."""
        if not isinstance(request, str):
            raise UsageError(f"a request is text, not {type(request).__name__}",
                             hint='pass a string, e.g. a.ask("make it a bit brighter")')
        if box is not None or point is not None or mask is not None:
            self.select(box=box, point=point, mask=mask)
        t0 = time.perf_counter()
        self._cancel.clear()
        events: list[dict] = []
        context = self.context()
        if seed is not None:
            context.seed = seed
        selection, asked_where = self._pointing(request)
        if asked_where is not None:
            return Turn(request=request, reply=asked_where, question=asked_where,
                        plan=Plan(question=asked_where), events=events, status="asked")
        context.selection = selection
        plan = self.planner.plan(request, context)
        self._request_seed = context.seed  # recorded per version so a script can re-run it
        t_plan = round(time.perf_counter() - t0, 4)
        self._emit(events, kind="plan", planner=plan.planner, steps=[s.kind for s in plan.steps])
        if plan.is_question:
            return Turn(request=request, reply=plan.question or "", plan=plan, question=plan.question,
                        events=events, timings={"plan_s": t_plan}, status="asked")
        if plan.action:
            return self._look(request, plan, events, t_plan)
        from imagent.planners import pointing

        used = False
        if selection is None and (where := pointing.needs_selection(plan)):
            plan = Plan(question=where, planner=plan.planner)
        elif selection is not None:
            plan, used = pointing.bind(plan, selection, request)
        if plan.is_question:
            return Turn(request=request, reply=plan.question or "", plan=plan,
                        question=plan.question, events=events, timings={"plan_s": t_plan},
                        status="asked")
        plan = routing.route(plan, request, context, models=self.models is not None)
        self._request_selection = selection if used and selection.source == "user" else None
        try:
            turn = self._carry_out(request, plan, events, t0, t_plan)
            if used and turn.status == "done" and selection is self._selection:
                self._selection = None  # consumed by the edit that used it
            return turn
        except NeedsClarification as nc:  # nothing was committed for this request
            asked = clarify.question(nc.step, nc.grounding, nc.reason, planner=plan.planner)
            return Turn(request=request, reply=asked.question or "", plan=asked,
                        question=asked.question, events=events, timings={"plan_s": t_plan},
                        status="asked")

    def _carry_out(self, request: str, plan: Plan, events: list[dict], t0: float,
                   t_plan: float) -> Turn:
        replies_: list[str] = []
        pending: list[Step] = []
        version: Version | None = None
        metrics: dict[str, Any] = {}
        branched = False
        timings: dict[str, float] = {"plan_s": t_plan}
        status = "done"

        def flush() -> None:
            nonlocal version, branched, status, pending
            edit = self._edit(request, pending, events, timings)
            metrics.update(edit["metrics"])
            if edit["version"] is None:
                status = "failed"
                replies_.append(replies.failed(edit["outcomes"]))
            else:
                version = edit["version"]
                branched |= version.branched
                replies_.extend(replies.edit_done(pending, version, branched=version.branched,
                                                  alpha_dropped=bool(metrics.get("alpha_dropped")),
                                                  alpha=metrics.get("alpha")))
            pending = []

        for step in plan.steps:
            if step.is_session:
                if pending:
                    flush()
                    if status == "failed":
                        break
                version = self._session_step(step)
                replies_.append(replies.moved(step, version))
            else:
                pending.append(step)
        if pending and status != "failed":
            flush()
        if status == "done" and all(s.is_session for s in plan.steps):
            status = "moved"
        if status != "failed":
            self._last_plan = plan
        if self.settings.planner == "auto" and plan.planner:  # auto: say which planner planned
            replies_.append(replies.planned_by(plan.planner))
        timings["total_s"] = round(time.perf_counter() - t0, 4)
        return Turn(request=request, reply=replies.join(replies_), version=version, plan=plan,
                    metrics=metrics, events=events, timings=timings, branched=branched,
                    status=status)

    def _look(self, request: str, plan: Plan, events: list[dict], t_plan: float) -> Turn:
        """Read-only requests ("show the history", "compare with the original"): no new version."""
        if plan.action == "history":
            reply = replies.history(self.session.name, self.store.log_tree(self.session))
            metrics: dict[str, Any] = {"versions": len(self.history)}
        elif plan.action == "compare":
            a, b = plan.action_args.get("a", "0"), plan.action_args.get("b", "head")
            d = self.store.diff(self.session, a, b)
            metrics = {k: getattr(d, k) for k in ("changed_fraction", "changed_fraction_over_8",
                                                  "mean_abs", "max_abs", "bbox", "size_changed")}
            reply = replies.compare(a, b, d)
        else:
            raise UsageError(f"the planner asked for an unknown action {plan.action!r}",
                             hint="this is a planner bug; rephrase the request")
        return Turn(request=request, reply=reply, version=self.head, plan=plan, metrics=metrics,
                    events=events, timings={"plan_s": t_plan}, status="looked")

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

    def _edit(self, request: str, steps: list[Step], events: list[dict],
              timings: dict[str, float]) -> dict[str, Any]:
        """Run and check the steps on the head's image; commit only if every check passed."""
        parent = self.head
        image = self._version_pixels(parent)
        parent_alpha = self.store.load_alpha(parent)
        # The alpha flows through the calls (tools/runner.py apply_result): kept by edits that
        # keep the geometry, set by a transparent cut-out, cleared by a flattening one.
        state = ToolState(image=image, original=image, cancel=self._cancel, models=self.models,
                          events=lambda e: self._emit(events, **e), alpha=parent_alpha)
        runner = self.runner
        outcomes = []
        t_run = time.perf_counter()
        for step in steps:
            try:
                outcomes.append(run_step(runner, state, step.calls, kind=step.kind,
                                         target=step.target, config=self.check_config,
                                         ask=self.ask_which_one,
                                         emit=lambda **e: self._emit(events, **e)))
            except NeedsClarification as nc:
                nc.step = step
                raise
        timings["run_s"] = round(time.perf_counter() - t_run, 4)
        records = [r for o in outcomes for r in o.records]
        metrics: dict[str, Any] = {
            "calls": [r.to_dict() for r in records],
            "check": replies.check_summary(outcomes, self.check_config),
            "change": change_figures(image, state.image),
            "request_seed": getattr(self, "_request_seed", self.settings.seed)}
        if self._request_selection is not None:  # for `export --script` (box:/point:/mask:)
            metrics["selection"] = self._request_selection.to_dict()
        if not all(o.passed for o in outcomes):
            return {"version": None, "metrics": metrics, "outcomes": outcomes}
        alpha = state.alpha
        cutouts = [r for r in records if r.result is not None and "rgba" in r.result.extra]
        if alpha is not None and cutouts:  # the last cut-out decides: transparent...
            metrics["alpha"] = "cut out"
        elif cutouts and (parent_alpha is not None or len(cutouts) > 1):
            metrics["alpha"] = "flattened"  # ...or a transparency filled with a colour
        elif alpha is not None:
            metrics["alpha"] = "kept"
        elif parent_alpha is not None:
            metrics["alpha"] = "dropped"
            metrics["alpha_dropped"] = True  # it could not follow a geometry change
        mask = state.mask if state.mask is not None and \
            state.mask.shape == (state.image.height, state.image.width) else None
        backends: dict[str, Any] = {}
        for r in records:
            if r.backend:
                backends[r.name] = r.backend
            if r.model_ids:
                backends.setdefault("models", {}).update(r.model_ids)
        calls = [r.call for r in records]
        seeds = [c["args"]["seed"] for c in calls if "seed" in c.get("args", {})]
        state.check_cancelled()  # last chance: a cancel before the commit commits nothing
        t_commit = time.perf_counter()
        version = self.store.commit(
            self.session, parent=parent.id, image=state.image, mask=mask, alpha=alpha,
            request=request, tool_calls=calls, metrics=metrics, backends=backends,
            seed=seeds[0] if seeds else None, timings=dict(timings),
        )
        timings["commit_s"] = round(time.perf_counter() - t_commit, 4)
        self._remember(version.id, state.image)
        self._refresh()
        self._emit(events, kind="commit", version=version.id, seq=version.seq)
        return {"version": version, "metrics": metrics, "outcomes": outcomes}

    # -- replay and export -------------------------------------------------------------------------
    def run_calls(self, image: Image.Image, tool_calls: list[dict], *,
                  alpha: Image.Image | None = None, with_alpha: bool = False):
        """Re-run stored ToolCalls on an image (what replay does for each version); with
        ``with_alpha=True`` from the parent's ``alpha``, returning ``(image, alpha)``."""
        return self.runner.replay(image, tool_calls, models=self.models, alpha=alpha,
                                  with_alpha=with_alpha)

    def replay(self, *, verify: bool = False):
        """Re-run every version's calls root → head from the replayed parent image (and the
        parent's stored alpha); ``verify`` compares the pixels and the alpha bit for bit."""
        def one(image: Image.Image, version: Version):
            parent = self.store.get_version(self.session, version.parent_id) if version.parent_id else None
            alpha = self.store.load_alpha(parent) if parent is not None else None
            return self.run_calls(image, version.tool_calls, alpha=alpha, with_alpha=True)

        return self.store.replay(self.session, one, verify=verify)

    def save(self, path: str | Path, *, version: str | int | None = None) -> Path:
        """Write a version's image (default: the current one) with provenance; alpha restored.

        PNG and WebP keep the transparency; JPEG cannot, so it is flattened onto white and
        ``last_save`` says so (``alpha_flattened``, ``note``), as does an ``on_event`` note."""
        from imagent.tools.imageio import alpha_flatten_note, save_image

        v = self.head if version is None else self.store.get_version(self.session, version)
        alpha = self.store.load_alpha(v)
        out = save_image(self._version_pixels(v), path, alpha=alpha,
                         provenance={"imagent:session": self.session.id, "imagent:version": v.id,
                                     "imagent:request": v.request})
        note = alpha_flatten_note(out, alpha)
        self.last_save = {"path": str(out), "version": v.id, "alpha": alpha is not None,
                          "alpha_flattened": note is not None, "note": note}
        if note and self.on_event is not None:
            self.on_event({"kind": "note", "message": note})
        return out

    def export(self, path: str | Path, *, script: bool = False) -> Path:
        """Export the session as a bundle (zip) or, with ``script=True``, as a YAML request script."""
        if script:
            from imagent.fsio import atomic_write_text

            # The same path rules as a bundle: nothing inside the store home, a real folder.
            target = self.store.resolve_export_path(path)
            atomic_write_text(target, self._script_with_selections(
                self.store.export_script(self.session), target))
            return target
        return self.store.export_bundle(self.session, path)

    def _script_with_selections(self, text: str, target: Path) -> str:
        """The exported script with each request's selection as its ``box:``/``point:``/
        ``mask:`` keys; a mask is written as a PNG beside the script (``<name>.v<N>.mask.png``)."""
        import yaml

        from imagent.tools.imageio import save_image

        doc = yaml.safe_load(text)
        steps = doc.get("steps") or []
        path = self.store.path(self.session, "head")[1:]
        if len(steps) != len(path) or not any(
                isinstance(v.metrics, dict) and v.metrics.get("selection") for v in path):
            return text
        for i, v in enumerate(path):
            data = v.metrics.get("selection") if isinstance(v.metrics, dict) else None
            if not data:
                continue
            step = steps[i] if isinstance(steps[i], dict) else {"request": steps[i]}
            sel = Selection.from_dict(data)
            if sel.mask is not None:
                name = f"{target.stem}.v{v.seq}.mask.png"
                m8 = Image.fromarray(sel.mask.astype(np.uint8) * 255, "L").convert("RGB")
                save_image(m8, target.parent / name)
                step["mask"] = name
            elif sel.box is not None:
                step["box"] = ",".join(map(str, sel.box))
            else:
                step["point"] = ",".join(map(str, sel.point or ()))
            steps[i] = step
        return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, default_flow_style=False)

    # -- conversation ---------------------------------------------------------------------------------
    @property
    def pending_question(self) -> Turn | None:
        """The last turn of ``chat`` when it was a question the user has not answered yet."""
        return getattr(self, "_pending_question", None)

    def chat(self, text: str, *, seed: int | None = None, box: Any = None, point: Any = None,
             mask: Any = None) -> Turn:
        """``ask``, conversation-aware: when the last turn asked a question, ``text`` answers it
        (planners/clarify.py reads the answer and composes it with the request asked about).
        ``box``/``point``/``mask`` select first (``select``)."""
        if box is not None or point is not None or mask is not None:
            self.select(box=box, point=point, mask=mask)
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
        choice = clarify.resolve_choice(plan.choices if plan else [], text)
        asked_about = question.request
        if plan and any("the selection" in (s.target or "") for s in plan.steps):
            from imagent.planners.pointing import rewrite  # "remove this" was read as the selection

            asked_about = rewrite(asked_about.lower())
        request = clarify.compose_answer(asked_about, plan, text, choice)
        previous = self._last_plan
        self._last_plan = plan  # the planner sees its own question as context.last_plan
        kept = self._selection if choice is not None and "(box " in choice else None
        if kept is not None:
            self._selection = None  # the chosen candidate (its box) stands in for the selection
        turn = None
        try:
            turn = self.ask(request, seed=seed)
        finally:
            if self._last_plan is plan:  # not replaced by a successful plan: restore
                self._last_plan = previous
            if kept is not None and (turn is None or turn.status != "done"):
                self._selection = kept
        if turn.question:
            self._pending_question = turn
        return turn

    @staticmethod
    def resolve_choice(choices: list[str], answer: str) -> str | None:
        """The choice an answer picks (``planners.clarify.resolve_choice``)."""
        return clarify.resolve_choice(choices, answer)

    @staticmethod
    def compose_answer(question: Turn, answer: str, choice: str | None) -> str:
        """The request to plan after a question (``planners.clarify.compose_answer``)."""
        return clarify.compose_answer(question.request, question.plan, answer, choice)

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




def change_figures(before: Image.Image, after: Image.Image) -> dict[str, Any]:
    """How much of the image a request changed (stored as the version's ``change``)."""
    if before.size != after.size:
        return {"size_before": list(before.size), "size_after": list(after.size)}
    from imagent.tools.check import max_abs_diff

    diff = max_abs_diff(before, after)  # uint8, exact
    n = max(1, diff.size)
    return {"changed_fraction": round(int(np.count_nonzero(diff)) / n, 5),
            "changed_fraction_over_8": round(int(np.count_nonzero(diff > 8)) / n, 5),
            "mean_abs": round(float(cv2.mean(diff)[0]) if diff.size else float("nan"), 4)}


__all__ = ["Assistant", "STATUSES", "Turn", "make_planner", "model_manager"]
