"""Scripted multi-turn sessions: the logic behind ``imagent run SCRIPT``.

A script is YAML. The smallest one is what ``imagent export --script`` writes::

    image: /photos/street.jpg
    seed: 0
    steps:
    - remove the top-left corner
    - make it a bit brighter

The full format::

    image: street.jpg            # required; relative paths are read from the script's folder
    output: out/final.png        # optional: the final image (.png/.jpg/.webp)
    session: street-cleanup      # optional: a name for the new session
    seed: 7                      # optional: the seed of every request (default: settings)
    planner: rules               # optional: rules | llm | auto
    profile: offline             # optional: offline | models
    steps:
    - make it a bit brighter                   # a request
    - request: remove the top-left corner      # a request with its own seed or settings
      seed: 3
      settings: {planner: rules}
    - request: remove this                     # pointing: one of box: x0,y0,x1,y1 /
      box: 10,20,110,220                       #   point: x,y / mask: FILE (white = the area)
    - undo                                     # control words: undo, redo (or `undo: 2`)
    - redo
    - checkout: 1                              # a version number, id prefix, root or head
    - export: out/v1.png                       # the current image; .zip: a bundle; .yaml: a script

Every script runs in a new session. ``run_script`` stops at the first failing step
(an error; a question back, exit code 6; an edit that failed its check, exit code 5)
unless ``keep_going``. Output
paths are relative to the script's folder too.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from imagent.errors import EXIT_CHECK_FAILED, EXIT_QUESTION, ImagentError, InputError

CONTROL_WORDS = ("undo", "redo")
STEP_KEYS = {"request", "seed", "settings", "undo", "redo", "checkout", "export", "box", "point", "mask"}
POINTING_KEYS = ("box", "point", "mask")
TOP_KEYS = {"image", "output", "session", "seed", "planner", "profile", "steps"}
STEP_SETTINGS = {"planner", "profile", "llm", "seed", "device"}
_IMAGE_EXT = {".png", ".jpg", ".jpeg", ".webp"}
_SCRIPT_EXT = {".yaml", ".yml"}


@dataclass
class ScriptStep:
    """One parsed step: ``kind`` is request, undo, redo, checkout or export."""

    index: int  # 1-based, as shown to the user
    kind: str
    text: str = ""  # the request; the version ref for checkout; the path for export
    count: int = 1  # undo/redo steps
    seed: int | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    # where the request points (tools/selection.py): "x0,y0,x1,y1", "x,y", a mask file path
    pointing: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        if self.kind == "request":
            return self.text
        if self.kind in CONTROL_WORDS:
            return self.kind if self.count == 1 else f"{self.kind} {self.count}"
        return f"{self.kind} {self.text}"


@dataclass
class Script:
    image: Path
    steps: list[ScriptStep]
    output: Path | None = None
    session: str | None = None
    seed: int | None = None
    planner: str | None = None
    profile: str | None = None
    source: Path | None = None  # the script file, when read from one


@dataclass
class StepResult:
    index: int
    kind: str
    label: str
    ok: bool
    version_seq: int | None = None
    version_id: str | None = None
    seconds: float = 0.0
    reply: str = ""
    figures: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None  # ImagentError.to_dict(), or a question
    output: str | None = None
    skipped: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "kind": self.kind, "step": self.label, "ok": self.ok,
                "skipped": self.skipped, "version": self.version_seq, "version_id": self.version_id,
                "seconds": round(self.seconds, 4), "reply": self.reply, "figures": self.figures,
                "error": self.error, "output": self.output}


@dataclass
class ScriptResult:
    session_id: str
    session_name: str
    steps: list[StepResult]
    head_seq: int
    head_id: str
    image_hash: str  # sha256 of the final image's PNG blob (the store's content hash)
    pixel_digest: str  # mode + size + raw pixels, independent of encoding
    output: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.steps if not s.skipped) and not any(s.skipped for s in self.steps)

    @property
    def failures(self) -> list[StepResult]:
        return [s for s in self.steps if not s.ok and not s.skipped]

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "session": {"id": self.session_id, "name": self.session_name},
                "head": {"seq": self.head_seq, "id": self.head_id}, "image_hash": self.image_hash,
                "pixel_digest": self.pixel_digest, "output": self.output,
                "seconds": round(self.seconds, 4), "steps": [s.to_dict() for s in self.steps]}


# ------------------------------------------------------------------------------------- parsing
def _where(source: Path | None) -> str:
    return f" in {source}" if source else ""


def _int(value: Any, what: str, source: Path | None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"{what} must be a whole number, not {value!r}{_where(source)}",
                         hint="write it without quotes, e.g. seed: 7")
    return value


def parse_script(data: Any, *, base: Path | None = None, source: Path | None = None) -> Script:
    """Validate a loaded YAML document into a ``Script``; every error quotes the bad value."""
    if not isinstance(data, dict):
        raise InputError(f"a script is a mapping with image: and steps:, not {type(data).__name__}{_where(source)}",
                         hint="see `imagent run --help` for the format")
    unknown = sorted(set(map(str, data)) - TOP_KEYS)
    if unknown:
        raise InputError(f"unknown key {unknown[0]!r} in the script{_where(source)}",
                         hint="the keys are: " + ", ".join(sorted(TOP_KEYS)))
    if not data.get("image") or not isinstance(data["image"], str):
        raise InputError(f"the script names no input image (image: {data.get('image')!r}){_where(source)}",
                         hint="add a line `image: photo.jpg`")
    base = base or Path.cwd()

    def path(value: Any, what: str) -> Path:
        if not isinstance(value, str) or not value.strip():
            raise InputError(f"{what} must be a file path, not {value!r}{_where(source)}")
        p = Path(value).expanduser()
        return p if p.is_absolute() else base / p

    raw_steps = data.get("steps")
    if raw_steps is None:
        raw_steps = []
    if not isinstance(raw_steps, list):
        raise InputError(f"steps: must be a list, not {raw_steps!r}{_where(source)}",
                         hint="write each step on its own line starting with '- '")
    steps = [_parse_step(i, raw, path, source) for i, raw in enumerate(raw_steps, 1)]
    for key in ("planner", "profile", "session"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise InputError(f"{key}: must be a word, not {data[key]!r}{_where(source)}")
    return Script(image=path(data["image"], "image"), steps=steps,
                  output=path(data["output"], "output") if data.get("output") else None,
                  session=data.get("session"),
                  seed=_int(data["seed"], "seed", source) if data.get("seed") is not None else None,
                  planner=data.get("planner"), profile=data.get("profile"), source=source)


def _parse_step(i: int, raw: Any, path: Callable[[Any, str], Path], source: Path | None) -> ScriptStep:
    where = f"step {i}"
    if isinstance(raw, str):
        text = " ".join(raw.split())
        if not text:
            raise InputError(f"{where} is empty{_where(source)}", hint="write a request or a control word")
        if text.lower() in CONTROL_WORDS:
            return ScriptStep(i, text.lower())
        return ScriptStep(i, "request", text)
    if not isinstance(raw, dict) or not raw:
        raise InputError(f"{where} must be a request or a mapping, not {raw!r}{_where(source)}")
    unknown = sorted(set(map(str, raw)) - STEP_KEYS)
    if unknown:
        raise InputError(f"{where}: unknown key {unknown[0]!r}{_where(source)}",
                         hint="a step is a request, `request:` with `seed:`/`settings:`, "
                              "`undo`, `redo`, `checkout: N` or `export: PATH`")
    kinds = [k for k in ("request", "undo", "redo", "checkout", "export") if k in raw]
    if len(kinds) != 1:
        raise InputError(f"{where} must have exactly one of request/undo/redo/checkout/export, "
                         f"has {kinds or 'none'}{_where(source)}")
    kind = kinds[0]
    seed = _int(raw["seed"], f"{where}: seed", source) if raw.get("seed") is not None else None
    settings = raw.get("settings") or {}
    if not isinstance(settings, dict):
        raise InputError(f"{where}: settings must be a mapping, not {settings!r}{_where(source)}")
    bad = sorted(set(map(str, settings)) - STEP_SETTINGS)
    if bad:
        raise InputError(f"{where}: the setting {bad[0]!r} cannot change per step{_where(source)}",
                         hint="per-step settings: " + ", ".join(sorted(STEP_SETTINGS)))
    if (seed is not None or settings) and kind != "request":
        raise InputError(f"{where}: seed/settings apply to requests only, not to {kind}{_where(source)}")
    pointing = _parse_pointing(raw, kind, where, path, source)
    value = raw[kind]
    if kind == "request":
        if not isinstance(value, str) or not value.strip():
            raise InputError(f"{where}: request must be text, not {value!r}{_where(source)}")
        return ScriptStep(i, "request", " ".join(value.split()), seed=seed, settings=dict(settings),
                          pointing=pointing)
    if kind in CONTROL_WORDS:
        count = 1 if value is None else _int(value, f"{where}: {kind}", source)
        if count < 1:
            raise InputError(f"{where}: {kind} {count!r} must be at least 1{_where(source)}")
        return ScriptStep(i, kind, count=count)
    if kind == "checkout":
        if value is None or isinstance(value, bool) or not isinstance(value, (int, str)):
            raise InputError(f"{where}: checkout needs a version (number, id prefix, root, head), "
                             f"not {value!r}{_where(source)}")
        return ScriptStep(i, "checkout", str(value))
    target = path(value, f"{where}: export")
    if target.suffix.lower() not in _IMAGE_EXT | _SCRIPT_EXT | {".zip"}:
        raise InputError(f"{where}: cannot export to {str(target)!r}: unknown file type {target.suffix!r}"
                         f"{_where(source)}", hint="use .png/.jpg/.webp (image), .zip (bundle) or .yaml (script)")
    return ScriptStep(i, "export", str(target))


def _parse_pointing(raw: dict, kind: str, where: str, path: Callable[[Any, str], Path],
                    source: Path | None) -> dict[str, Any]:
    """A step's box:/point:/mask: (one of them, requests only), numbers checked, the mask path
    made absolute (relative to the script's folder). Errors are ``SelectionError`` (exit 2)."""
    from imagent.errors import SelectionError
    from imagent.tools.selection import parse_box, parse_point

    given = [k for k in POINTING_KEYS if raw.get(k) is not None]
    if not given:
        return {}
    if kind != "request":
        raise SelectionError(f"{where}: {given[0]}: applies to requests only, not to {kind}{_where(source)}")
    if len(given) > 1:
        raise SelectionError(f"{where}: give one of box:, point: and mask:, not {' and '.join(given)}"
                             f"{_where(source)}")
    key, value = given[0], raw[given[0]]
    try:
        if key == "box":
            return {"box": parse_box(value)}
        if key == "point":
            return {"point": parse_point(value)}
    except SelectionError as exc:
        raise SelectionError(f"{where}: {exc.message}{_where(source)}", hint=exc.hint) from None
    return {"mask": str(path(value, f"{where}: mask"))}


def check_pointing(script: Script, size: tuple[int, int]) -> None:
    """Check every step's box/point/mask against the script's image size before any work
    (``SelectionError`` naming the step)."""
    from imagent.errors import SelectionError
    from imagent.tools.selection import make_selection

    for step in script.steps:
        if step.pointing:
            try:
                make_selection(size, **step.pointing)
            except SelectionError as exc:
                raise SelectionError(f"step {step.index}: {exc.message}{_where(script.source)}",
                                     hint=exc.hint) from None


def load_script(path: str | Path) -> Script:
    """Read and validate a script file."""
    import yaml

    p = Path(path).expanduser()
    if not p.is_file():
        raise InputError(f"cannot read the script {str(p)!r}: no such file",
                         hint="check the path; `imagent export --script -o FILE` writes one from a session")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise InputError(f"the script {str(p)!r} is not valid YAML: {exc}".strip(),
                         hint="check the indentation; steps are lines starting with '- '") from None
    return parse_script(data, base=p.resolve().parent, source=p)


# ------------------------------------------------------------------------------------- running
def _figures(metrics: dict[str, Any]) -> dict[str, Any]:
    """The check figures worth a table column: the change figures and any check results."""
    out: dict[str, Any] = {}
    change = metrics.get("change") or {}
    if "changed_fraction" in change:
        out["changed"] = change["changed_fraction"]
    if "size_after" in change:
        out["size"] = "x".join(map(str, change["size_after"]))
    check = metrics.get("check")
    if isinstance(check, dict):
        for k in ("passed", "ok", "background_preserved", "effect", "tries", "retries"):
            if k in check:
                out[f"check.{k}"] = check[k]
    return out


def run_script(script: Script, *, settings=None, keep_going: bool = False,
               output: str | Path | None = None, session: str | None = None,
               on_step: Callable[[str, ScriptStep, StepResult | None], None] | None = None,
               on_event: Callable[[dict], None] | None = None, **overrides: Any) -> ScriptResult:
    """Run ``script`` in a new session; return every step's result.

    Without ``settings`` they are loaded with the script's seed, planner and profile
    over the usual layers, and ``overrides`` (``home=``, ``seed=``...) over those;
    given ``settings`` are used as they are (plus ``overrides``). ``on_step("start"|"end", step, result)`` reports
    progress; ``on_event`` receives the assistant's tool events.
    """
    from imagent.assistant.config import load_settings, with_overrides
    from imagent.assistant.core import Assistant
    from imagent.sessions.store import pixel_digest

    if settings is None:
        layered = {k: getattr(script, k) for k in ("seed", "planner", "profile") if getattr(script, k) is not None}
        layered.update({k: v for k, v in overrides.items() if v is not None})
        settings = load_settings(layered)
    elif overrides:
        settings = with_overrides(settings, **{k: v for k, v in overrides.items() if v is not None})
    t0 = time.perf_counter()
    results: list[StepResult] = []
    if any(step.pointing for step in script.steps):  # before the session exists
        from imagent.tools.imageio import load_image

        check_pointing(script, load_image(script.image, max_pixels=settings.max_pixels).image.size)
    with Assistant.open(script.image, session=session or script.session, settings=settings) as a:
        a.on_event = on_event
        failed = False
        for step in script.steps:
            if failed:
                results.append(StepResult(step.index, step.kind, step.label, ok=False, skipped=True))
                continue
            if on_step:
                on_step("start", step, None)
            result = _run_step(a, step)
            results.append(result)
            if on_step:
                on_step("end", step, result)
            if not result.ok and not keep_going:
                failed = True
        out = output if output is not None else script.output
        out_path = None
        if out is not None and (keep_going or not failed):
            out_path = str(a.save(out))
        head = a.head
        digest = pixel_digest(a.image)
        return ScriptResult(session_id=a.session.id, session_name=a.session.name, steps=results,
                            head_seq=head.seq, head_id=head.id, image_hash=head.image_hash,
                            pixel_digest=digest, output=out_path, seconds=time.perf_counter() - t0)


def _run_step(a, step: ScriptStep) -> StepResult:
    res = StepResult(step.index, step.kind, step.label, ok=True)
    t = time.perf_counter()
    try:
        if step.kind == "request":
            previous = (a.settings, a.planner)
            if step.settings:
                a.configure(**step.settings)
            try:
                turn = a.ask(step.text, seed=step.seed, **step.pointing)
            finally:
                a.settings, a.planner = previous
                a.clear_selection()  # a step's box/point/mask is its own
            res.reply = turn.reply
            status = turn.status
            if status == "asked":
                res.ok = False
                res.error = {"error": "Question", "message": f"the planner asked: {turn.question or turn.reply}",
                             "hint": ("answer by rewriting the step"
                                      + (": " + " / ".join(turn.plan.choices) if turn.plan and turn.plan.choices else "")),
                             "exit_code": EXIT_QUESTION}
            elif status == "failed":
                res.ok = False
                res.error = {"error": "CheckFailed",
                             "message": f"the edit failed its check; nothing was reported done: {turn.reply}",
                             "hint": "rewrite the step (a clearer target or a different wording)",
                             "exit_code": EXIT_CHECK_FAILED}
            elif turn.version is not None:
                res.figures = _figures(turn.metrics)
        elif step.kind == "undo":
            a.undo(step.count)
        elif step.kind == "redo":
            a.redo(step.count)
        elif step.kind == "checkout":
            ref: str | int = int(step.text) if step.text.isdigit() and len(step.text) < 4 else step.text
            a.checkout(ref)
        elif step.kind == "export":
            res.output = str(_export(a, Path(step.text)))
    except ImagentError as exc:
        res.ok = False
        res.error = exc.to_dict()
    res.seconds = time.perf_counter() - t
    if res.ok or step.kind != "request":
        head = a.head
        res.version_seq, res.version_id = head.seq, head.id
    return res


def _export(a, target: Path) -> Path:
    suffix = target.suffix.lower()
    if suffix == ".zip":
        return a.export(target)
    if suffix in _SCRIPT_EXT:
        return a.export(target, script=True)
    return a.save(target)


__all__ = ["Script", "ScriptStep", "ScriptResult", "StepResult", "load_script", "parse_script", "run_script"]
