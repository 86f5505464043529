"""The chat UI shows previews (sessions/previews.py), not full-resolution images: undo, redo,
checkout and the before/after view repaint without decoding a full image, and pointing still
maps cells to full-resolution pixels when the preview is smaller than the image."""

from __future__ import annotations

import numpy as np
import pytest

from imagent.sessions import Store
from imagent.sessions import previews as P
from imagent.tui import state
from imagent.tui.pointing import fit
from imagent.tui.widgets import HalfBlockImage, ImagePane

from .helpers import SIZE, Layout, make_app, settle, type_and_send

pytestmark = pytest.mark.anyio

SIDE = 64  # the test photo is 160×120: its previews are 64×48
REMOVE = "remove the red square at box 18,13,56,47"


@pytest.fixture(autouse=True)
def small_previews(monkeypatch):
    monkeypatch.setattr(state, "PREVIEW_SIDE", SIDE)
    P.clear_memory()
    yield
    P.clear_memory()


@pytest.fixture
def decodes(monkeypatch):
    calls = []
    load_image = Store.load_image

    def counted(self, version):
        calls.append(version.seq)
        return load_image(self, version)

    monkeypatch.setattr(Store, "load_image", counted)
    return calls


def _same(a, b) -> bool:
    return a.size == b.size and np.array_equal(np.asarray(a), np.asarray(b))


async def test_undo_redo_and_checkout_show_previews_without_full_decodes(photo, decodes):
    app = make_app(photo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        pane = app.query_one(ImagePane)
        store = app.assistant.store
        assert pane.shown.size == (64, 48) and pane.shown_size == (160, 120)
        assert "160×120" in pane.caption
        await type_and_send(pilot, REMOVE)
        await settle(pilot, app)
        await type_and_send(pilot, "make it a bit warmer")
        await settle(pilot, app)
        v1, v2 = app.assistant.version(1), app.assistant.version(2)
        assert _same(pane.shown, P.preview(store, v2, SIDE))
        P.clear_memory()  # from the preview files on disk, not memory
        decodes.clear()
        await pilot.press("ctrl+z")
        await settle(pilot, app)
        assert app.assistant.head.seq == 1
        assert _same(pane.shown, P.preview(store, v1, SIDE))  # the previous version's preview
        assert pane.shown_size == (160, 120) and "version 1 · 160×120" in pane.caption
        await pilot.press("ctrl+y")
        await settle(pilot, app)
        assert _same(pane.shown, P.preview(store, v2, SIDE))
        await type_and_send(pilot, "/checkout 0")
        await settle(pilot, app)
        assert _same(pane.shown, P.preview(store, app.assistant.version(0), SIDE))
        assert decodes == []  # no full-resolution image was decoded to repaint


async def test_before_after_and_mask_overlay_use_previews(photo, decodes):
    app = make_app(photo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await type_and_send(pilot, REMOVE)
        await settle(pilot, app)
        pane = app.query_one(ImagePane)
        store = app.assistant.store
        decodes.clear()
        await pilot.press("ctrl+b")
        assert _same(pane.shown, P.preview(store, app.assistant.version(0), SIDE))
        assert pane.caption.endswith("before") and "160×120" in pane.caption
        await pilot.press("ctrl+b")
        await pilot.press("ctrl+t")
        assert "mask shown" in pane.caption and pane.shown.size == (64, 48)
        tinted = np.asarray(pane.shown, dtype=np.int16)
        plain = np.asarray(app.snapshot.image, dtype=np.int16)
        mask = P.mask_preview(store, app.assistant.head, SIDE) > 0.5
        assert mask.shape == (48, 64) and mask.any()
        assert np.abs(tinted - plain)[mask].mean() > 20
        assert decodes == []


async def test_history_selection_shows_the_chosen_versions_preview(photo, decodes):
    app = make_app(photo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        await type_and_send(pilot, "make it a bit brighter")
        await settle(pilot, app)
        decodes.clear()
        history = app.query_one("#history")
        history.focus()
        history.highlighted = 0
        await pilot.press("enter")
        await settle(pilot, app)
        assert app.assistant.head.seq == 0
        assert _same(app.query_one(ImagePane).shown, P.preview(app.assistant.store, app.assistant.version(0), SIDE))
        assert decodes == []


async def test_click_maps_to_full_resolution_pixels_when_the_preview_is_smaller(photo):
    app = make_app(photo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        calls: list[dict] = []
        app.select_region = lambda **kw: calls.append(kw)
        pane = app.query_one(ImagePane)
        assert pane.shown.size == (64, 48) and pane.shown_size == (160, 120)
        full, small = Layout(app, (160, 120)), Layout(app, (64, 48))
        view = app.query_one("#image-view", HalfBlockImage)
        assert view.full_size == (160, 120)
        # the renderer puts the preview in the cells the full-size fit gives
        f = fit((160, 120), (full.width, full.height))
        assert (f.left, f.top, f.cols, f.rows) == (full.left, full.top, full.cols, full.px_h // 2)
        assert len(view._strips) == full.top + full.px_h // 2
        cell = full.cell(36, 30)  # inside the red square of the test photo: x 20..51, y 15..44
        await pilot.click("#image-view", offset=cell)
        await pilot.pause()
        assert calls == [{"point": full.point(cell)}]
        x, y = calls[0]["point"]
        assert 20 <= x < 52 and 15 <= y < 45
        far = (full.left + full.cols - 1, full.top + full.px_h // 2 - 1)
        await pilot.click("#image-view", offset=far)
        await pilot.pause()
        assert calls[-1] == {"point": full.point(far)}
        assert full.point(far) != small.point(far)  # the preview's own size would map elsewhere
        assert calls[-1]["point"][0] >= 160 - 160 / full.cols
        # a drag gives a full-resolution box
        a, b = full.cell(20, 15), full.cell(100, 80)
        await pilot.mouse_down("#image-view", offset=a)
        await pilot.hover("#image-view", offset=b)
        await pilot.mouse_up("#image-view", offset=b)
        await pilot.pause()
        assert calls[-1] == {"box": full.box(a, b)}
        assert calls[-1]["box"][2] > 64  # beyond the preview's width: full-resolution pixels


async def test_selection_marks_are_drawn_on_the_preview_at_full_resolution_places(photo):
    from imagent.tui.pointing import SELECTION_RGB

    app = make_app(photo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        if not hasattr(app.assistant, "select"):
            pytest.skip("no Assistant.select")
        app.select_region(box=(100, 60, 150, 110))  # lower right, in full-resolution pixels
        await settle(pilot, app)
        pane = app.query_one(ImagePane)
        shown = np.asarray(pane.displayed, dtype=np.int16)
        assert pane.displayed.size == (64, 48)
        ys, xs = np.nonzero((shown == SELECTION_RGB).all(-1))
        assert len(xs) and xs.min() >= 100 * 64 // 160 - 2 and ys.min() >= 60 * 48 // 120 - 2


async def test_graphics_renderer_gets_the_preview_in_the_full_size_fits_cells(photo):
    from textual.widget import Widget

    from imagent import Assistant
    from imagent.tui.app import ChatApp

    class FakeGraphics(Widget):
        image = None

    app = ChatApp(Assistant.open(photo, session="gfx"), graphics_cls=FakeGraphics, show_timings=False,
                  ready_file="")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        calls: list[dict] = []
        app.select_region = lambda **kw: calls.append(kw)
        lay = Layout(app, (160, 120))
        canvas = app.query_one("#image-view", FakeGraphics).image
        preview = app.snapshot.image
        assert preview.size == (64, 48)
        # the canvas is at the preview's pixels per cell; the preview sits in the full-size fit's cells
        assert canvas.width / lay.width == pytest.approx(64 / lay.cols, rel=0.05)
        assert canvas.height / lay.height == pytest.approx(2 * 48 / lay.px_h, rel=0.05)
        x0 = round(lay.left * 64 / lay.cols)
        y0 = round(lay.top * 2 * 48 / lay.px_h)
        assert np.array_equal(np.asarray(canvas)[y0:y0 + 48, x0:x0 + 64], np.asarray(preview))
        cell = lay.cell(120, 90)
        await pilot.click("#image-view", offset=cell)
        await pilot.pause()
        assert calls == [{"point": lay.point(cell)}]


def test_draw_marks_on_a_preview_takes_full_resolution_marks():
    from PIL import Image

    from imagent.tui.pointing import SELECTION_RGB, draw_marks

    preview = Image.new("RGB", (64, 48), (0, 0, 0))
    mask = np.zeros((120, 160), np.float32)
    mask[60:120, 80:160] = 1.0  # the lower-right quarter, in full-resolution pixels

    class Sel:
        box = point = None

    sel = Sel()
    sel.mask = mask
    out = np.asarray(draw_marks(preview, (64, 48), selection=sel, size=(160, 120)), dtype=np.int16)
    tinted = out.sum(-1) > 0
    assert tinted[24:, 32:].all() and not tinted[:24].any() and not tinted[:, :32].any()
    sel.mask, sel.box = None, (80, 60, 160, 120)
    out = np.asarray(draw_marks(preview, (64, 48), selection=sel, size=(160, 120)), dtype=np.int16)
    ys, xs = np.nonzero((out == SELECTION_RGB).all(-1))
    assert xs.min() == 31 and ys.min() == 23  # the frame just outside the box's preview cells
