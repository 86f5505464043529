"""Pointing at the image in the chat UI: clicks and drags map cells to image pixels, the
selection is drawn and cleared, "remove this" uses it, and a "which one?" question numbers
its candidates on the image."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from textual.widget import Widget

from imagent import Assistant
from imagent.tui.pointing import (CANDIDATE_RGB, SELECTION_RGB, candidate_at, candidate_boxes, draw_marks,
                                  fit, letterbox)
from imagent.tui.widgets import ChoiceBar, ImagePane

from .helpers import SIZE, Layout, make_app, settle, two_squares, type_and_send

HAS_SELECT = all(hasattr(Assistant, m) for m in ("select", "clear_selection", "selection"))
needs_select = pytest.mark.skipif(
    not HAS_SELECT, reason="Assistant.select / clear_selection / selection are not in assistant/core.py yet")

LEFT, RIGHT = (20, 40, 50, 70), (100, 40, 130, 70)


def _recording(app) -> list[dict]:
    """Replace the app's ``select_region`` with a recorder: the mapping is tested without the assistant."""
    calls: list[dict] = []
    app.select_region = lambda **kw: calls.append(kw)
    return calls


def _caption(app) -> str:
    return str(app.query_one("#pointing").render())


def _square_pixels(image: Image.Image, box) -> np.ndarray:
    x0, y0, x1, y1 = box
    return np.asarray(image.convert("RGB"), dtype=np.int16)[y0:y1, x0:x1]


def _is_red(px: np.ndarray) -> np.ndarray:
    return (px[..., 0] > 180) & (px[..., 1] < 80) & (px[..., 2] < 80)


# ---------------------------------------------------------------------------------- the mapping (no app)
@pytest.mark.parametrize("image_size,cells", [((160, 120), (64, 27)), ((600, 400), (64, 27)),
                                              ((100, 300), (80, 20)), ((37, 11), (50, 30))])
def test_fit_maps_every_cell_to_the_pixels_it_shows(image_size, cells):
    """Each image cell's point lies in the image pixels that cell shows, and a drag over one
    cell gives exactly those pixels; the letterbox maps to nothing."""
    f = fit(image_size, cells)
    iw, ih = image_size
    assert f.left + f.cols <= cells[0] and f.top + f.rows <= cells[1]
    for cy in range(cells[1]):
        for cx in range(cells[0]):
            p = f.pixel_at(cx, cy)
            if not f.contains(cx, cy):
                assert p is None
                continue
            x0, y0, x1, y1 = f.box_between((cx, cy), (cx, cy))
            assert x0 <= p[0] < x1 and y0 <= p[1] < y1
            c = f.cell_of(*p)  # the cell that shows p: this one (or, enlarged, its neighbour)
            bx0, by0, bx1, by1 = f.box_between(c, c)
            assert bx0 <= p[0] < bx1 and by0 <= p[1] < by1
            if f.cols <= iw and f.px_h <= ih:
                assert c == (cx, cy)
    # The whole image rectangle is the whole image; a drag past the edges is clamped.
    assert f.box_between((f.left, f.top), (f.left + f.cols - 1, f.top + f.rows - 1)) == (0, 0, iw, ih)
    assert f.box_between((-5, -5), (cells[0] + 5, cells[1] + 5)) == (0, 0, iw, ih)


def test_half_block_renderer_and_fit_agree():
    """The renderer draws the image in the fit rectangle: blank cells outside, blocks inside."""
    from imagent.tui.widgets import HalfBlockImage

    w = HalfBlockImage()
    w._image = Image.new("RGB", (160, 120), (10, 200, 30))
    w._build(70, 30)
    f = fit((160, 120), (70, 30))
    assert len(w._strips) == f.top + f.rows
    for y, strip in enumerate(w._strips):
        text = strip.text
        inside = f.top <= y < f.top + f.rows
        assert text[f.left:f.left + f.cols] == ("▀" * f.cols if inside else " " * f.cols)
        assert text[:f.left].strip() == "" and text[f.left + f.cols:].strip() == ""


def test_letterbox_puts_the_image_in_the_same_cells_for_a_graphics_renderer():
    """A graphics renderer stretches its image over the whole view: the letterboxed canvas has
    the view's shape and the image at the fit rectangle, so clicks map the same way."""
    f = fit((160, 120), (70, 30))
    img = Image.new("RGB", (160, 120), (200, 10, 10))
    canvas = letterbox(img, f, (0, 0, 0))
    cw, ch = canvas.size
    # canvas pixels per cell: the image's, so the cell → pixel rule is the half-block one
    assert cw / f.width == pytest.approx(160 / f.cols, rel=0.02)
    assert ch / f.height == pytest.approx(2 * 120 / f.px_h, rel=0.02)
    a = np.asarray(canvas)
    red = np.argwhere(a[..., 0] == 200)
    (y0, x0), (y1, x1) = red.min(0), red.max(0) + 1
    assert (x1 - x0, y1 - y0) == (160, 120)
    assert x0 == pytest.approx(f.left * cw / f.width, abs=1) and y0 == pytest.approx(f.top * ch / f.height, abs=1)


def test_marks_are_visible_at_terminal_resolution():
    """A 1-display-pixel frame survives the half-block renderer's downscale as pure colour."""
    img = Image.new("RGB", (600, 400), (90, 90, 90))
    f = fit(img.size, (64, 27))

    class Sel:
        box, point, mask = (200, 100, 400, 300), None, None

    marked = draw_marks(img, (f.cols, f.px_h), selection=Sel(), candidates=[(1, (20, 20, 120, 120))])
    assert marked is not img and np.asarray(img).max() == 90  # drawn on a copy
    small = np.asarray(marked.resize((f.cols, f.px_h), Image.Resampling.BOX))
    assert (small == SELECTION_RGB).all(-1).sum() >= 2 * (200 + 200) * f.cols / 600 - 4
    assert (small == CANDIDATE_RGB[0]).all(-1).sum() > 20
    assert draw_marks(img, (f.cols, f.px_h)) is img  # nothing to draw: the image itself


def test_candidate_boxes_come_from_the_target_parser():
    choices = ["the red square on the left (box 20,40,50,70)", "the red square on the right (box 100,40,130,70)",
               "none of these"]
    assert candidate_boxes(choices) == [(1, LEFT), (2, RIGHT)]
    assert candidate_boxes(["the top-left corner", "the bottom-right corner"]) == []
    assert candidate_at([(1, LEFT), (2, RIGHT)], (110, 50)) == 2
    assert candidate_at([(1, (0, 0, 100, 100)), (2, (10, 10, 20, 20))], (15, 15)) == 2  # the smaller wins
    assert candidate_at([(1, LEFT)], (60, 50)) is None


# ---------------------------------------------------------------------------------- clicks and drags
@pytest.mark.anyio
async def test_click_on_the_pane_points_at_the_image_pixel(photo):
    app = make_app(photo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        calls = _recording(app)
        lay = Layout(app, (160, 120))
        cell = lay.cell(36, 30)  # the red square of the test photo: x 20..51, y 15..44
        await pilot.click("#image-view", offset=cell)
        await pilot.pause()
        assert calls == [{"point": lay.point(cell)}]
        x, y = calls[0]["point"]
        assert 20 <= x < 52 and 15 <= y < 45
        # another cell, far from the first: the bottom-right pixel area
        cell = (lay.left + lay.cols - 1, lay.top + lay.px_h // 2 - 1)
        await pilot.click("#image-view", offset=cell)
        await pilot.pause()
        assert calls[-1] == {"point": lay.point(cell)}
        assert calls[-1]["point"][0] >= 160 - 160 / lay.cols and calls[-1]["point"][1] >= 120 - 2 * 120 / lay.px_h
        # the letterbox is no image: nothing is pointed at
        if lay.top > 0:
            await pilot.click("#image-view", offset=(lay.left + 3, lay.top - 1))
            await pilot.pause()
            assert len(calls) == 2


@pytest.mark.anyio
async def test_drag_on_the_pane_draws_the_box_it_covers(photo):
    app = make_app(photo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        calls = _recording(app)
        lay = Layout(app, (160, 120))
        a, b = lay.cell(18, 13), lay.cell(56, 47)
        await pilot.mouse_down("#image-view", offset=a)
        await pilot.hover("#image-view", offset=((a[0] + b[0]) // 2, (a[1] + b[1]) // 2))
        pane = app.query_one(ImagePane)
        assert pane.displayed is not pane.shown  # the box being drawn is shown while dragging
        await pilot.hover("#image-view", offset=b)
        await pilot.mouse_up("#image-view", offset=b)
        await pilot.pause()
        assert calls == [{"box": lay.box(a, b)}]
        x0, y0, x1, y1 = calls[0]["box"]
        assert x0 <= 18 and y0 <= 13 and x1 >= 57 and y1 >= 48  # it covers what was dragged over
        assert x1 - 1 <= 56 + 160 / lay.cols and y1 - 1 <= 47 + 2 * 120 / lay.px_h
        # dragged the other way round: the same box
        await pilot.mouse_down("#image-view", offset=b)
        await pilot.hover("#image-view", offset=a)
        await pilot.mouse_up("#image-view", offset=a)
        await pilot.pause()
        assert calls[-1] == {"box": lay.box(a, b)}
        assert pane.displayed is pane.shown  # no selection was made (recorded): nothing drawn


# ---------------------------------------------------------------------------------- the selection
@needs_select
@pytest.mark.anyio
async def test_selection_is_drawn_captioned_and_cleared_with_escape(photo):
    app = make_app(photo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        lay = Layout(app, (160, 120))
        a, b = lay.cell(18, 13), lay.cell(56, 47)
        await pilot.mouse_down("#image-view", offset=a)
        await pilot.hover("#image-view", offset=b)
        await pilot.mouse_up("#image-view", offset=b)
        await settle(pilot, app)
        box = lay.box(a, b)
        assert app.assistant.selection is not None and tuple(app.assistant.selection.box) == box
        pane = app.query_one(ImagePane)
        assert pane.displayed is not pane.shown
        shown = np.asarray(pane.displayed, dtype=np.int16)
        assert (shown == SELECTION_RGB).all(-1).any()  # the frame is on the image
        assert "selected:" in _caption(app) and "Esc to clear" in _caption(app)
        await pilot.press("escape")
        await settle(pilot, app)
        assert app.assistant.selection is None
        assert pane.displayed is pane.shown and "selected" not in _caption(app)
        # a click selects a point; /clear clears it too
        cell = lay.cell(80, 90)
        await pilot.click("#image-view", offset=cell)
        await settle(pilot, app)
        assert tuple(app.assistant.selection.point) == lay.point(cell)
        assert (np.asarray(pane.displayed, dtype=np.int16) == SELECTION_RGB).all(-1).any()
        await type_and_send(pilot, "/clear")
        await settle(pilot, app)
        assert app.assistant.selection is None
        await type_and_send(pilot, "/select box 10,20,60,70")
        await settle(pilot, app)
        assert tuple(app.assistant.selection.box) == (10, 20, 60, 70)


@needs_select
@pytest.mark.anyio
async def test_remove_this_after_a_drag_removes_what_is_in_the_box(tmp_path):
    photo = two_squares(tmp_path / "two.png", left=LEFT, right=RIGHT)
    app = make_app(photo)
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        lay = Layout(app, (160, 120))
        # from just outside the left square's top-left corner to just outside its bottom-right one
        a, b = lay.cell(LEFT[0] - 4, LEFT[1] - 4), lay.cell(LEFT[2] + 3, LEFT[3] + 3)
        await pilot.mouse_down("#image-view", offset=a)
        await pilot.hover("#image-view", offset=b)
        await pilot.mouse_up("#image-view", offset=b)
        await settle(pilot, app)
        x0, y0, x1, y1 = app.assistant.selection.box
        assert x0 <= LEFT[0] and y0 <= LEFT[1] and x1 >= LEFT[2] and y1 >= LEFT[3] and x1 < RIGHT[0]
        before = app.assistant.image
        await type_and_send(pilot, "remove this")
        await settle(pilot, app)
        assert app.assistant.head.seq == 1, [str(m.render()) for m in app.query("ChatMessage")]
        after = app.assistant.image
        assert _is_red(_square_pixels(after, LEFT)).mean() < 0.05  # the selected square is gone
        assert np.array_equal(_square_pixels(after, RIGHT), _square_pixels(before, RIGHT))  # the other untouched
        assert _is_red(_square_pixels(after, RIGHT)).all()


# ---------------------------------------------------------------------------------- "which one?"
async def _ask_which_red_square(pilot, app):
    await settle(pilot, app)
    await type_and_send(pilot, "remove the red square")
    await settle(pilot, app)
    assert app.assistant.head.seq == 0 and app.candidates, "the request is asked back with boxes"


@pytest.mark.anyio
async def test_which_one_numbers_the_candidates_and_typing_2_picks_the_second(tmp_path):
    photo = two_squares(tmp_path / "two.png", left=LEFT, right=RIGHT)
    app = make_app(photo)
    async with app.run_test(size=SIZE) as pilot:
        await _ask_which_red_square(pilot, app)
        assert app.candidates == ((1, LEFT), (2, RIGHT))  # numbered as the question lists them
        pane = app.query_one(ImagePane)
        assert pane.candidates == app.candidates
        shown = np.asarray(pane.displayed, dtype=np.int16)
        for n, box in app.candidates:  # each box framed in its own colour, near its box
            hits = np.argwhere((shown == CANDIDATE_RGB[n - 1]).all(-1))
            assert len(hits), f"candidate {n} is drawn"
            (hy0, hx0), (hy1, hx1) = hits.min(0), hits.max(0)
            assert box[0] - 8 <= hx0 and hx1 <= box[2] + 8 and box[1] - 8 <= hy0 and hy1 <= box[3] + 8
        buttons = list(app.query_one(ChoiceBar).query("Button"))
        assert [str(b.label).split()[0] for b in buttons] == ["1", "2"]
        assert "which one?" in _caption(app)
        before = app.assistant.image
        await type_and_send(pilot, "2")
        await settle(pilot, app)
        assert app.assistant.head.seq == 1 and "right" in app.assistant.head.request
        after = app.assistant.image
        assert _is_red(_square_pixels(after, RIGHT)).mean() < 0.05
        assert np.array_equal(_square_pixels(after, LEFT), _square_pixels(before, LEFT))
        assert app.candidates == () and pane.candidates == () and pane.displayed is pane.shown
        assert "which one?" not in _caption(app)


@pytest.mark.anyio
async def test_clicking_inside_a_numbered_box_answers_the_question(tmp_path):
    photo = two_squares(tmp_path / "two.png", left=LEFT, right=RIGHT)
    app = make_app(photo)
    async with app.run_test(size=SIZE) as pilot:
        await _ask_which_red_square(pilot, app)
        lay = Layout(app, (160, 120))
        await pilot.click("#image-view", offset=lay.cell(35, 62))  # inside box 1, away from its tag
        await settle(pilot, app)
        assert app.assistant.head.seq == 1 and "left" in app.assistant.head.request
        assert _is_red(_square_pixels(app.assistant.image, LEFT)).mean() < 0.05
        assert _is_red(_square_pixels(app.assistant.image, RIGHT)).all()
        assert app.candidates == ()


@pytest.mark.anyio
async def test_escape_dismisses_the_numbered_candidates(tmp_path):
    photo = two_squares(tmp_path / "two.png", left=LEFT, right=RIGHT)
    app = make_app(photo)
    async with app.run_test(size=SIZE) as pilot:
        await _ask_which_red_square(pilot, app)
        await pilot.press("escape")
        await pilot.pause()
        pane = app.query_one(ImagePane)
        assert app.candidates == () and pane.displayed is pane.shown
        assert not app.query_one(ChoiceBar).has_class("visible")


class _FakeGraphics(Widget):
    """Stands in for textual-image's widget: takes ``image`` and stretches it over itself."""

    image = None


@pytest.mark.anyio
async def test_graphics_renderer_gets_the_image_letterboxed_into_the_same_cells(photo):
    from imagent.tui.app import ChatApp

    app = ChatApp(Assistant.open(photo, session="gfx"), graphics_cls=_FakeGraphics, show_timings=False,
                  ready_file="")
    async with app.run_test(size=SIZE) as pilot:
        await settle(pilot, app)
        calls = _recording(app)
        view = app.query_one("#image-view", _FakeGraphics)
        lay = Layout(app, (160, 120))
        canvas = view.image
        assert canvas is app.query_one(ImagePane).displayed
        # the canvas covers the whole view at the photo's pixels per cell (one across, two down
        # per display pixel), and the photo sits where the fit puts it
        assert canvas.width / lay.width == pytest.approx(160 / lay.cols, rel=0.03)
        assert canvas.height / lay.height == pytest.approx(2 * 120 / lay.px_h, rel=0.03)
        x0 = round(lay.left * canvas.width / lay.width)
        y0 = round(lay.top * canvas.height / lay.height)
        assert np.array_equal(np.asarray(canvas)[y0:y0 + 120, x0:x0 + 160], np.asarray(app.assistant.image))
        cell = lay.cell(36, 30)
        await pilot.click("#image-view", offset=cell)
        await pilot.pause()
        assert calls == [{"point": lay.point(cell)}]
