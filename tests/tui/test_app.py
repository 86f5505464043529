"""Pilot-driven flows of the chat UI on the embedded default."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from PIL import Image

from imagent.sessions.store import pixel_digest
from imagent.tui.widgets import ChatLog, ChoiceBar, HistoryPanel, ImagePane

from .helpers import SIZE, AskingPlanner, BlockingPlanner, make_app, settle, type_and_send

pytestmark = pytest.mark.anyio

REMOVE = "remove the red square at box 18,13,56,47"


def _log(app) -> list[str]:
    return [str(m.render()) for m in app.query_one(ChatLog).children]


def _notes(app):
    return list(app._notifications)


def _pane_digest(app) -> str:
    return pixel_digest(app.query_one(ImagePane).shown)


async def test_request_makes_a_version_and_the_image_pane_changes(photo):
    app = make_app(photo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        assert app.snapshot.head_seq == 0
        before = _pane_digest(app)
        await type_and_send(pilot, "make it a bit brighter")
        await settle(pilot, app)
        assert app.snapshot.head_seq == 1 and app.snapshot.versions == 2
        assert _pane_digest(app) != before
        assert _pane_digest(app) == pixel_digest(app.assistant.image)
        assert np.asarray(app.query_one(ImagePane).shown, dtype=float).mean() > \
            np.asarray(app.assistant.version_image(0), dtype=float).mean()
        assert any("you: make it a bit brighter" in t for t in _log(app))
        assert any("→ version 1" in t for t in _log(app))
        rows = [str(o.prompt) for o in app.query_one(HistoryPanel).options]
        assert rows[-1].startswith("@") and "make it a bit brighter" in rows[-1]
        assert "version 1 of 2" in str(app.query_one("#status").render())


async def test_undo_and_redo_keys_and_commands(photo):
    app = make_app(photo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        original = _pane_digest(app)
        await type_and_send(pilot, "make it black and white")
        await settle(pilot, app)
        edited = _pane_digest(app)
        assert edited != original
        await pilot.press("ctrl+z")
        await settle(pilot, app)
        assert app.snapshot.head_seq == 0 and _pane_digest(app) == original
        assert app.assistant.head.seq == 0
        await pilot.press("ctrl+y")
        await settle(pilot, app)
        assert app.snapshot.head_seq == 1 and _pane_digest(app) == edited
        await type_and_send(pilot, "/undo")
        await settle(pilot, app)
        assert app.assistant.head.seq == 0
        # Nothing to undo at the root: an error notification, the session intact.
        await type_and_send(pilot, "/undo")
        await settle(pilot, app)
        assert app.assistant.head.seq == 0 and len(app.assistant.history) == 2
        assert any(n.severity == "error" for n in _notes(app))


async def test_checkout_from_the_history_tree(photo):
    app = make_app(photo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await type_and_send(pilot, REMOVE)
        await settle(pilot, app)
        v1 = _pane_digest(app)
        await type_and_send(pilot, "make it much darker")
        await settle(pilot, app)
        assert app.snapshot.head_seq == 2
        history = app.query_one(HistoryPanel)
        history.focus()
        row = next(i for i, o in enumerate(history.options) if "remove the red square" in str(o.prompt))
        history.highlighted = row
        await pilot.press("enter")
        await settle(pilot, app)
        assert app.assistant.head.seq == 1 and app.snapshot.head_seq == 1
        assert _pane_digest(app) == v1
        assert str(history.options[row].prompt).startswith("@")
        assert "version 1" in app.query_one(ImagePane).caption


async def test_error_path_notifies_and_keeps_the_session(photo):
    app = make_app(photo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        shown = _pane_digest(app)
        await type_and_send(pilot, "remove the dog")
        await settle(pilot, app)
        errors = [n for n in _notes(app) if n.severity == "error"]
        assert errors, "an error notification is shown"
        assert "dog" in errors[-1].message
        assert "hint:" in errors[-1].message
        assert any(t.startswith("✗") and "dog" in t for t in _log(app))
        # The session is intact and the UI keeps working.
        assert len(app.assistant.history) == 1 and app.assistant.head.seq == 0
        assert _pane_digest(app) == shown
        await type_and_send(pilot, "make it a bit brighter")
        await settle(pilot, app)
        assert app.assistant.head.seq == 1


async def test_clarification_round_with_choices(photo):
    planner = AskingPlanner()
    app = make_app(photo, planner=planner)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await type_and_send(pilot, "remove the corner")
        await settle(pilot, app)
        assert app.snapshot.head_seq == 0  # a question commits nothing
        log = _log(app)
        assert any("Which corner do you mean?" in t and "2. the bottom-right corner" in t for t in log)
        bar = app.query_one(ChoiceBar)
        assert bar.has_class("visible") and len(bar.children) == 2
        # The answer is a word of one choice, understood against the question's request.
        await type_and_send(pilot, "bottom-right")
        await settle(pilot, app)
        head = app.assistant.head
        assert head.seq == 1 and head.request == "remove the bottom-right corner"
        assert planner.contexts[-1].last_plan is not None
        assert planner.contexts[-1].last_plan.question == "Which corner do you mean?"
        diff = app.assistant.store.diff(app.assistant.session, 0, 1)
        x0, y0, x1, y1 = diff.bbox
        assert x0 >= 160 // 2 and y0 >= 120 // 2  # the bottom-right corner changed, nothing else
        assert not bar.has_class("visible")


async def test_choice_buttons_answer_the_question(photo):
    app = make_app(photo, planner=AskingPlanner())
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await type_and_send(pilot, "remove the corner")
        await settle(pilot, app)
        await pilot.click("#choice-1")
        await settle(pilot, app)
        assert app.assistant.head.request == "remove the top-left corner"


async def test_long_request_keeps_the_ui_responsive_and_can_be_cancelled(photo):
    planner = BlockingPlanner()
    app = make_app(photo, planner=planner)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await type_and_send(pilot, "make it a bit brighter")
        await asyncio.get_running_loop().run_in_executor(None, planner.entered.wait, 5)
        await pilot.pause()
        assert app.busy and app.query_one("#busy").has_class("visible")
        # The UI answers keys while the request runs...
        await pilot.press("ctrl+b")
        assert "original" in app.query_one(ImagePane).caption
        # ...refuses a second job...
        await pilot.press("ctrl+z")
        assert any("busy" in n.message for n in _notes(app))
        # ...and escape cancels: nothing is committed.
        await pilot.press("escape")
        planner.release.set()
        await settle(pilot, app)
        assert any(n.title == "Cancelled" for n in _notes(app))
        assert len(app.assistant.history) == 1
        assert not app.query_one("#busy").has_class("visible")


async def test_before_after_and_mask_overlay_toggles(photo):
    app = make_app(photo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await pilot.press("ctrl+t")  # the root has no mask: a notice, the view unchanged
        assert any("no mask" in n.message for n in _notes(app))
        await type_and_send(pilot, REMOVE)
        await settle(pilot, app)
        pane = app.query_one(ImagePane)
        after = pixel_digest(pane.shown)
        await pilot.press("ctrl+b")
        assert pixel_digest(pane.shown) == pixel_digest(app.assistant.version_image(0))
        assert pane.caption.endswith("before")
        await pilot.press("ctrl+b")
        assert pixel_digest(pane.shown) == after
        await pilot.press("ctrl+t")
        assert "mask shown" in pane.caption
        tinted = np.asarray(pane.shown, dtype=np.int16)
        plain = np.asarray(app.assistant.image, dtype=np.int16)
        mask = app.assistant.current_mask > 0.5
        assert np.abs(tinted - plain)[mask].mean() > 20 and np.array_equal(tinted[~mask], plain[~mask])


async def test_slash_commands(photo, tmp_path):
    app = make_app(photo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await type_and_send(pilot, "make it a bit brighter")
        await settle(pilot, app)
        await type_and_send(pilot, "/log")
        await settle(pilot, app)
        assert "@" in _log(app)[-1] and "make it a bit brighter" in _log(app)[-1]
        out = tmp_path / "out.png"
        await type_and_send(pilot, f"/export {out}")
        await settle(pilot, app)
        assert pixel_digest(Image.open(out).convert("RGB")) == pixel_digest(app.assistant.image)
        script = tmp_path / "s.yaml"
        await type_and_send(pilot, f"/export {script}")
        await settle(pilot, app)
        assert "make it a bit brighter" in script.read_text()
        await type_and_send(pilot, "/checkout 0")
        await settle(pilot, app)
        assert app.assistant.head.seq == 0
        await type_and_send(pilot, "/planner")
        await settle(pilot, app)
        assert "planner: rules" in _log(app)[-1]
        await type_and_send(pilot, "/planner llm")
        await settle(pilot, app)
        assert app.assistant.settings.planner == "rules"  # the LLM planner is unavailable: unchanged
        await type_and_send(pilot, "/frobnicate")
        await settle(pilot, app)
        assert any("/frobnicate" in n.message for n in _notes(app))
        await type_and_send(pilot, "/help")
        await settle(pilot, app)
        assert "/checkout N" in _log(app)[-1]
        await type_and_send(pilot, "/quit")
        await pilot.pause()
    assert app.return_code in (0, None)


@pytest.mark.parametrize("width,height", [(40, 12), (1, 1)])
def test_half_block_renderer_fits_any_pane(width, height):
    from imagent.tui.widgets import HalfBlockImage

    w = HalfBlockImage()
    w._image = Image.new("RGB", (300, 100), (10, 200, 30))
    w._build(width, height)
    assert w._strips, "something is drawn"
    assert all(s.cell_length == width for s in w._strips)
    assert len(w._strips) <= height
