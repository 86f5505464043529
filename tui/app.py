"""The chat UI: ``imagent chat``.

State lives in the app (``self.snapshot``, ``self.view``, ``self.busy``), computed
by worker threads and delivered as messages; widgets get values pushed down.
Requests and session moves run in ``@work(thread=True)`` workers, so the UI never
blocks; their progress arrives as ``Progress`` messages (posting a message is
thread-safe), their results as ``Done`` / ``Failed``.
"""

from __future__ import annotations

import os
import shlex
import time
from pathlib import Path
from typing import Any, Callable

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Footer, Input, Label, OptionList, ProgressBar

from imagent.errors import ImagentError, UsageError
from imagent.fsio import atomic_write_text

from .pointing import candidate_at, candidate_boxes, describe_selection
from .state import Snapshot, take_snapshot
from .widgets import ChatLog, ChoiceBar, HistoryPanel, ImagePane, StatusBar

HELP_TEXT = """requests: say what to change, e.g. "remove the top-left corner", "make it a bit brighter",
  "extend the picture to the right by 25%", "cut out the center". Answer a question by its
  number, a word of a choice, or in your own words.
point: click the image to point at a pixel, drag to draw a box; then say "remove this" or
  "make this blue". A "which one?" question numbers its candidates on the image: type the
  number or click inside its box.
/undo [N]  /redo [N]  /checkout N  /log  /export PATH (.png/.jpg/.webp image, .zip bundle, .yaml script)
/select [box X0,Y0,X1,Y1 | point X,Y]  /clear (the selection)
/planner [rules|llm|auto]  /model [offline|models]  /help  /quit
keys: ctrl+z undo · ctrl+y redo · ctrl+b before/after · ctrl+t mask overlay · escape cancel or clear · ctrl+q quit
history: pick a version in the tree (arrows + enter, or click) to check it out."""


MOVE_BAR_AFTER_S = 0.4  # undo/redo/checkout show the busy bar only when they take longer


class Refreshed(Message):
    def __init__(self, snapshot: Snapshot, note: str = "", kind: str = "info") -> None:
        super().__init__()
        self.snapshot, self.note, self.kind = snapshot, note, kind


class TurnDone(Message):
    def __init__(self, turn: Any, snapshot: Snapshot) -> None:
        super().__init__()
        self.turn, self.snapshot = turn, snapshot


class Failed(Message):
    def __init__(self, error: ImagentError, what: str) -> None:
        super().__init__()
        self.error, self.what = error, what


class Selected(Message):
    def __init__(self, selection: Any, note: str = "") -> None:
        super().__init__()
        self.selection, self.note = selection, note


class Progress(Message):
    def __init__(self, event: dict) -> None:
        super().__init__()
        self.event = event


class ChatApp(App):
    """Chat with the editor: image pane, history tree, chat log, input line."""

    CSS_PATH = "app.tcss"
    TITLE = "imagent"
    BINDINGS = [
        Binding("ctrl+z", "undo", "Undo", priority=True),
        Binding("ctrl+y", "redo", "Redo", priority=True),
        Binding("ctrl+b", "toggle_before", "Before/after", priority=True),
        Binding("ctrl+t", "toggle_mask", "Mask", priority=True),
        Binding("escape", "cancel", "Cancel", priority=True),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(self, assistant, *, graphics: bool | None = None, graphics_cls: Any = ...,
                 show_timings: bool = True, ready_file: str | None = None) -> None:
        super().__init__()
        self.assistant = assistant
        self.snapshot: Snapshot | None = None
        self.view = {"before": False, "mask": False}
        self.busy = ""  # what is running, "" when idle
        self._busy_job = 0  # counts jobs started: a late busy bar belongs to one of them
        self.selection: Any = None  # Assistant.selection as last read: what the next request points at
        self.candidates: tuple[tuple[int, tuple[int, int, int, int]], ...] = ()  # numbered boxes of a question
        self.show_timings = show_timings
        self.ready_file = ready_file if ready_file is not None else os.environ.get("IMAGENT_TUI_READY_FILE")
        self._t_start = time.perf_counter()
        if graphics is False:
            self._graphics_cls = None
        elif graphics_cls is not ...:  # detected by the caller (cmd_chat overlaps it with opening)
            self._graphics_cls = graphics_cls
        else:
            from .widgets import graphics_image_class

            self._graphics_cls = graphics_image_class()
        assistant.on_event = lambda event: self.post_message(Progress(dict(event)))

    # -- layout --------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            yield ImagePane(self._graphics_cls, id="image")
            with Vertical(id="side"):
                yield HistoryPanel(id="history")
                yield ChatLog(id="chat")
        yield ChoiceBar(id="choices")
        with Horizontal(id="busy"):
            yield Label("", id="busy-label")
            yield ProgressBar(id="progress", show_eta=False)
        yield Input(placeholder="say what to change, or /help", id="prompt")
        yield StatusBar("loading…", id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#history").border_title = "history"
        self.query_one("#chat").border_title = "chat"
        self.query_one("#image").border_title = "image"
        self.query_one("#prompt", Input).focus()
        self.query_one(ChatLog).add("imagent: say what to change in the image, or /help for commands.", "assistant")
        self._load()

    # -- workers (never touch widgets here) -------------------------------------------------
    @work(thread=True, exclusive=True, group="assistant")
    def _load(self, note: str = "") -> None:
        try:
            self.post_message(Refreshed(take_snapshot(self.assistant), note))
        except Exception as exc:  # noqa: BLE001 - reported, never swallowed
            self.post_message(Failed(_as_error(exc), "loading the session"))

    @work(thread=True, exclusive=True, group="assistant")
    def _request(self, text: str) -> None:
        try:
            turn = self.assistant.chat(text)
            self.post_message(TurnDone(turn, take_snapshot(self.assistant)))
        except Exception as exc:  # noqa: BLE001
            self.post_message(Failed(_as_error(exc), f'"{text}"'))

    @work(thread=True, exclusive=True, group="assistant")
    def _move(self, what: str, action: Callable[[], str]) -> None:
        try:
            note = action()
            self.post_message(Refreshed(take_snapshot(self.assistant), note, "move"))
        except Exception as exc:  # noqa: BLE001
            self.post_message(Failed(_as_error(exc), what))

    @work(thread=True, exclusive=True, group="assistant")
    def _run_select(self, kwargs: dict | None) -> None:
        """``Assistant.select(**kwargs)``, or ``clear_selection()`` for None (selecting may ground
        a point to a region: a worker, like every call into the assistant that may take time)."""
        try:
            if kwargs is None:
                self.assistant.clear_selection()
                note = "selection cleared"
            else:
                self.assistant.select(**kwargs)
                note = ""
            self.post_message(Selected(self.assistant.selection, note))
        except Exception as exc:  # noqa: BLE001
            self.post_message(Failed(_as_error(exc), "selecting" if kwargs is not None else "clearing the selection"))

    def _start(self, label: str, *, bar_after: float = 0.0) -> bool:
        """Mark the app busy with ``label``. ``bar_after``: show the busy bar only when the job
        still runs after that many seconds (a quick move — undo, redo, checkout — then repaints
        without the layout changing twice under the image); the status bar says it at once."""
        if self.busy:
            self.notify(f"busy with {self.busy} — wait, or press escape to cancel it", severity="warning")
            return False
        self.busy = label
        self._busy_job += 1
        if bar_after > 0:
            job = self._busy_job
            self.query_one(StatusBar).show(self.snapshot, busy=label)
            self.set_timer(bar_after, lambda: self._late_bar(job))
        else:
            self._show_busy(label)
        return True

    def _late_bar(self, job: int) -> None:
        if self.busy and job == self._busy_job:
            self._show_busy(self.busy)

    def _idle(self) -> None:
        self.busy = ""
        self._show_busy("")

    def _show_busy(self, label: str) -> None:
        bar = self.query_one("#busy")
        bar.set_class(bool(label), "visible")
        self.query_one("#busy-label", Label).update(label)
        progress = self.query_one(ProgressBar)
        progress.update(total=None, progress=0)
        self.query_one(StatusBar).show(self.snapshot, busy=label)

    # -- messages up from workers ----------------------------------------------------------------
    def on_refreshed(self, message: Refreshed) -> None:
        self._idle()
        self._apply(message.snapshot)
        if message.note:
            self.query_one(ChatLog).add(f"imagent: {message.note}", "assistant")
        if self.ready_file:
            # atomic: the bench polls for the file and reads it as soon as it exists
            atomic_write_text(self.ready_file, f"{time.perf_counter() - self._t_start:.4f}\n", fsync=False)
            self.ready_file = None

    def on_turn_done(self, message: TurnDone) -> None:
        self._idle()
        turn = message.turn
        log = self.query_one(ChatLog)
        choices = list(turn.plan.choices) if turn.plan is not None and turn.question else []
        if turn.question:
            text = f"imagent asks: {turn.question}"
            if choices:
                text += "\n" + "\n".join(f"  {i}. {c}" for i, c in enumerate(choices, 1))
            log.add(text, "question")
        else:
            timing = f"  ({turn.timings.get('total_s', 0):.2f} s)" if self.show_timings else ""
            log.add(f"imagent: {turn.reply}{timing}", "assistant")
        self.candidates = tuple(candidate_boxes(choices)) if choices else ()
        self.query_one(ChoiceBar).set_choices(choices, marked=[n for n, _ in self.candidates])
        self.view["before"] = False
        self._apply(message.snapshot)

    def on_selected(self, message: Selected) -> None:
        self._idle()
        self.selection = message.selection
        if message.note:
            self.notify(message.note, severity="information", timeout=3)
        self._show_image()

    def on_failed(self, message: Failed) -> None:
        self._idle()
        err = message.error
        body = err.message + (f"\nhint: {err.hint}" if err.hint else "")
        severity = "warning" if type(err).__name__ == "Cancelled" else "error"
        self.notify(body, title=type(err).__name__, severity=severity, timeout=8)
        self.query_one(ChatLog).add(f"✗ {message.what}: {err.message}", "error")
        if self.snapshot is not None:
            self.query_one(StatusBar).show(self.snapshot)

    def on_progress(self, message: Progress) -> None:
        event = message.event
        kind = event.get("kind")
        label = self.query_one("#busy-label", Label)
        bar = self.query_one(ProgressBar)
        if kind == "plan":
            label.update(f"planned: {', '.join(event.get('steps') or []) or 'nothing'}")
        elif kind == "tool_start":
            label.update(f"running {event.get('tool')}…")
        elif kind == "progress":
            label.update(str(event.get("message") or event.get("tool") or ""))
        elif kind == "step" and event.get("total"):
            bar.update(total=int(event["total"]), progress=int(event.get("step", 0)))
            label.update(f"{event.get('tool', 'step')} {event.get('step')}/{event['total']}")

    # -- the view -----------------------------------------------------------------------------------
    def _apply(self, snap: Snapshot) -> None:
        self.snapshot = snap
        self.selection = snap.selection
        self.query_one(HistoryPanel).set_rows(snap.rows)
        self.query_one(StatusBar).show(snap, busy=self.busy)
        self._show_image()

    def _show_image(self) -> None:
        snap = self.snapshot
        if snap is None:
            return
        image, size, what = snap.image, tuple(snap.size), "after"
        if self.view["before"]:
            if snap.before is not None:
                image, size, what = snap.before, tuple(snap.before_size or snap.before.size), "before"
            else:
                what = "original"
        elif self.view["mask"] and snap.overlay is not None:
            image, what = snap.overlay, "after, mask shown"
        w, h = size  # full-resolution pixels: the image shown is a preview of them
        same = size == tuple(snap.size)  # marks are in the current version's pixels
        hints = []
        if self.candidates:
            hints.append("which one? type its number or click inside its box")
        if self.selection is not None:
            hints.append(f"selected: {describe_selection(self.selection)} — type 'remove this', Esc to clear")
        self.query_one(ImagePane).show(image, f"version {snap.head_seq} · {w}×{h} · {what}", size=size,
                                       selection=self.selection if same else None,
                                       candidates=self.candidates if same else (), hint="\n".join(hints))

    # -- pointing ---------------------------------------------------------------------------------
    @on(ImagePane.Picked)
    def _picked_on_image(self, event: ImagePane.Picked) -> None:
        """A click or a drag on the image: answer a question by its numbered box, or select."""
        snap = self.snapshot
        pane = self.query_one(ImagePane)
        if snap is None or pane.shown is None:
            return
        if pane.shown_size != tuple(snap.size):
            self.notify("this view is another size than the current version: press ctrl+b to go back "
                        "to it, then point", severity="warning")
            return
        if event.point is not None and self.candidates:
            number = candidate_at(self.candidates, event.point)
            if number is not None:
                self.send(str(number))
                return
        if event.box is not None:
            self.select_region(box=event.box)
        elif event.point is not None:
            self.select_region(point=event.point)

    def select_region(self, *, point: tuple[int, int] | None = None, box: tuple[int, int, int, int] | None = None) -> None:
        """Make ``point`` or ``box`` (image pixels) the selection for the next request."""
        if not hasattr(self.assistant, "select"):
            self.notify("this assistant cannot take a selection", severity="error")
            return
        kwargs = {"point": tuple(point)} if point is not None else {"box": tuple(box)}
        if self._start("selecting…"):
            self._run_select(kwargs)

    def clear_region(self) -> None:
        if not hasattr(self.assistant, "clear_selection"):
            return
        if self._start("clearing the selection…"):
            self._run_select(None)

    # -- input ------------------------------------------------------------------------------------------
    @on(Input.Submitted, "#prompt")
    def _submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if not text:
            return
        event.input.value = ""
        if text.startswith("/"):
            self.run_command(text)
        else:
            self.send(text)

    def send(self, text: str) -> None:
        """Send a request (or the answer to a pending question)."""
        if not self._start("thinking…"):
            return
        self.query_one(ChatLog).add(f"you: {text}", "user")
        self.query_one(ChoiceBar).set_choices([])
        if self.candidates:  # the question is being answered: its numbers go
            self.candidates = ()
            self._show_image()
        self._request(text)

    @on(Button.Pressed, "#choices Button")
    def _choice(self, event: Button.Pressed) -> None:
        self.send(event.button.name or "")

    @on(OptionList.OptionSelected, "#history")
    def _picked(self, event: OptionList.OptionSelected) -> None:
        vid = event.option.id
        if self.snapshot is None or vid == self.snapshot.head_id:
            return
        self._session_move("checkout", vid)

    def run_command(self, line: str) -> None:
        try:
            parts = shlex.split(line[1:])
        except ValueError as exc:
            self.notify(f"cannot read the command {line!r}: {exc}", severity="error")
            return
        name, args = (parts[0].lower(), parts[1:]) if parts else ("help", [])
        if name in ("undo", "redo"):
            n = _count(args, self)
            if n is not None:
                self._session_move(name, n)
        elif name == "checkout":
            if len(args) != 1:
                self.notify("/checkout needs one version: a number, an id prefix, root or head",
                            title="UsageError", severity="error")
            else:
                self._session_move("checkout", args[0])
        elif name == "log":
            self.query_one(ChatLog).add(self.assistant.log_tree(), "log")
        elif name == "export":
            if len(args) != 1:
                self.notify("/export needs one path (.png/.jpg/.webp, .zip or .yaml)", title="UsageError",
                            severity="error")
            else:
                self._export(args[0])
        elif name == "planner":
            self._setting("planner", args)
        elif name in ("model", "models", "profile"):
            self._setting("profile", args)
        elif name == "select":
            self._select_command(args)
        elif name in ("clear", "deselect", "unselect"):
            if self.selection is None:
                self.notify("nothing is selected", severity="information")
            else:
                self.clear_region()
        elif name == "help":
            self.query_one(ChatLog).add(HELP_TEXT, "log")
        elif name in ("quit", "exit", "q"):
            self.exit()
        else:
            self.notify(f"unknown command /{name}", title="UsageError", severity="error")
            self.query_one(ChatLog).add(HELP_TEXT, "log")

    def _select_command(self, args: list[str]) -> None:
        """``/select box X0,Y0,X1,Y1`` or ``/select point X,Y`` (read by the project's target
        parser); ``/select`` alone says what is selected."""
        if not args:
            text = (f"selected: {describe_selection(self.selection)}" if self.selection is not None else
                    "nothing is selected: click the image, drag a box, or /select box X0,Y0,X1,Y1")
            self.query_one(ChatLog).add(text, "log")
            return
        from imagent.tools.referent import parse

        usage = "/select box X0,Y0,X1,Y1 or /select point X,Y (image pixels)"
        try:
            ref = parse(" ".join(args))
        except ImagentError as exc:
            self.notify(f"{exc.message}\nusage: {usage}", title="UsageError", severity="error")
            return
        if ref.box is not None:
            self.select_region(box=ref.box)
        elif ref.points:
            self.select_region(point=ref.points[0])
        else:
            self.notify(f"no box or point in {' '.join(args)!r}; usage: {usage}", title="UsageError",
                        severity="error")

    def _session_move(self, kind: str, arg: Any) -> None:
        a = self.assistant

        def action() -> str:
            if kind == "undo":
                v = a.undo(arg)
            elif kind == "redo":
                v = a.redo(arg)
            else:
                ref = int(arg) if isinstance(arg, str) and arg.isdigit() and len(arg) < 4 else arg
                v = a.checkout(ref)
            return f"{kind} → version {v.seq}: {v.request}"

        if self._start(f"{kind}…", bar_after=MOVE_BAR_AFTER_S):
            self._move(kind, action)

    def _export(self, target: str) -> None:
        a = self.assistant
        path = Path(target).expanduser()

        def action() -> str:
            suffix = path.suffix.lower()
            if suffix == ".zip":
                out = a.export(path)
            elif suffix in (".yaml", ".yml"):
                out = a.export(path, script=True)
            else:
                out = a.save(path)
            return f"exported to {out}"

        if self._start("export…"):
            self._move(f"export {target}", action)

    def _setting(self, key: str, args: list[str]) -> None:
        if not args:
            snap = self.snapshot
            info = self.assistant.describe()
            if key == "planner":
                text = f"planner: {info['planner']} (choose with /planner rules|llm|auto)"
            else:
                models = ", ".join(f"{k}={v}" for k, v in info["models"].items()) or "none"
                text = (f"profile: {info['profile']}; backend: {info['backend']}; models of this version: "
                        f"{models} (choose with /model offline|models)")
            self.query_one(ChatLog).add(text, "log")
            if snap is not None:
                self.query_one(StatusBar).show(snap)
            return
        value = args[0]

        def action() -> str:
            self.assistant.configure(**{key: value})
            return f"{key} is now {value}"

        if self._start(f"{key}…"):
            self._move(f"/{key} {value}", action)

    # -- actions (keys) --------------------------------------------------------------------------------
    def action_undo(self) -> None:
        self._session_move("undo", 1)

    def action_redo(self) -> None:
        self._session_move("redo", 1)

    def action_toggle_before(self) -> None:
        self.view["before"] = not self.view["before"]
        self._show_image()

    def action_toggle_mask(self) -> None:
        if self.snapshot is not None and not self.snapshot.has_mask and not self.view["mask"]:
            self.notify("this version has no mask (a whole-image edit or the original)", severity="information")
            return
        self.view["mask"] = not self.view["mask"]
        self.view["before"] = False
        self._show_image()

    def action_cancel(self) -> None:
        """Escape: cancel what runs; else clear the selection; else dismiss a question's choices."""
        if self.busy:
            self.assistant.cancel()
            self.query_one("#busy-label", Label).update("cancelling…")
        elif self.selection is not None:
            self.clear_region()
        elif self.query_one(ChoiceBar).has_class("visible") or self.candidates:
            self.query_one(ChoiceBar).set_choices([])
            self.candidates = ()
            self._show_image()


def _count(args: list[str], app: ChatApp) -> int | None:
    if not args:
        return 1
    if len(args) == 1 and args[0].isdigit() and int(args[0]) >= 1:
        return int(args[0])
    app.notify(f"expected a number of steps, not {' '.join(args)!r}", title="UsageError", severity="error")
    return None


def _as_error(exc: BaseException) -> ImagentError:
    if isinstance(exc, ImagentError):
        return exc
    from imagent.assistant.errors import as_imagent_error

    try:
        return as_imagent_error(exc)
    except Exception:  # noqa: BLE001
        return UsageError(str(exc))


__all__ = ["ChatApp", "HELP_TEXT"]
