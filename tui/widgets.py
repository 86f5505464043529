"""Widgets of the chat UI. They receive values (attributes down) and post messages up;
none of them talks to the assistant or the store."""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from typing import Iterable

import numpy as np
from PIL import Image
from rich.color import Color as RichColor
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.content import Content
from textual.containers import Horizontal, VerticalScroll
from textual.message import Message
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Button, OptionList, Static
from textual.widgets.option_list import Option

from .pointing import Fit, candidate_rgb, draw_marks, fit, hex_rgb, letterbox
from .state import Snapshot, TreeRow


# ---------------------------------------------------------------------------------- image pane
class HalfBlockImage(Widget):
    """An image drawn with coloured half-cell blocks (two pixels per cell, "▀").

    Works in every terminal with true colour (and degrades with fewer colours),
    needs no graphics protocol, and renders the same in headless tests.

    ``full_size`` is the size of the image ``image`` stands for when it is a preview of a
    larger one: the cells it covers are fitted from that size (``pointing.fit``), so they
    are the cells the mouse maps to full-resolution pixels; None = the image's own size.
    """

    DEFAULT_CSS = "HalfBlockImage { width: 1fr; height: 1fr; }"
    KEEP_BUILDS = 4
    ALLOW_SELECT = False  # a drag on the image draws a box (ImagePane), not a text selection

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._image: Image.Image | None = None
        self._full_size: tuple[int, int] | None = None
        self._strips: list[Strip] = []
        self._key: tuple | None = None
        self._built: list[tuple[tuple, Image.Image | None, list[Strip]]] = []

    @property
    def image(self) -> Image.Image | None:
        return self._image

    @image.setter
    def image(self, value: Image.Image | None) -> None:
        self._image = value
        self._key = None
        self.refresh()

    @property
    def full_size(self) -> tuple[int, int] | None:
        return self._full_size if self._full_size is not None or self._image is None else self._image.size

    @full_size.setter
    def full_size(self, value: tuple[int, int] | None) -> None:
        value = tuple(value) if value is not None else None
        if value != self._full_size:
            self._full_size = value
            self._key = None
            self.refresh()

    def _build(self, width: int, height: int) -> None:
        key = (id(self._image), self._full_size, width, height)
        if key == self._key:
            return
        self._key = key
        # A repaint often comes back to a size or an image of a moment ago (a bar shown and
        # hidden, undo then redo): the last few builds are kept, with their images (so an id
        # is never reused while its key is here).
        for i, (k, image, strips) in enumerate(self._built):
            if k == key and image is self._image:
                self._strips = strips
                self._built.insert(0, self._built.pop(i))
                return
        self._strips = self._make_strips(width, height)
        self._built.insert(0, (key, self._image, self._strips))
        del self._built[self.KEEP_BUILDS:]

    def _make_strips(self, width: int, height: int) -> list[Strip]:
        f = fit(self.full_size, (width, height)) if self._image is not None else None
        if f is None:
            return []
        cw, ph = f.cols, f.px_h
        image = self._image if self._image.mode == "RGB" else self._image.convert("RGB")
        small = np.asarray(image.resize((cw, ph), Image.Resampling.BOX))
        left = " " * f.left
        blank = Strip([Segment(" " * width)], width)
        strips = [blank] * f.top
        right = width - len(left) - cw
        tail = [Segment(" " * right)] if right > 0 else []
        head = [Segment(left)] if left else []
        rgb, style = RichColor.from_rgb, Style.from_color
        for top, bottom in zip(small[0::2].tolist(), small[1::2].tolist(), strict=True):
            segs = [Segment("▀", style(rgb(*t), rgb(*b))) for t, b in zip(top, bottom, strict=True)]
            strips.append(Strip(head + segs + tail, width))
        return strips

    def render_line(self, y: int) -> Strip:
        self._build(self.size.width, self.size.height)
        if y < len(self._strips):
            return self._strips[y]
        return Strip.blank(self.size.width)


def graphics_image_class():
    """textual-image's widget when the terminal speaks Kitty or Sixel graphics, else None.

    ``IMAGENT_TUI_IMAGE``: ``auto`` (default), ``halfcell`` (always the block renderer),
    ``sixel`` or ``tgp`` (force a protocol). Must run before the app starts: the
    terminal is queried on import.
    """
    choice = os.environ.get("IMAGENT_TUI_IMAGE", "auto").lower()
    if choice == "halfcell" or (choice == "auto" and not (sys.__stdout__ and sys.__stdout__.isatty())):
        return None
    try:
        if choice == "sixel":
            from textual_image.widget import SixelImage
            return SixelImage
        if choice == "tgp":
            from textual_image.widget import TGPImage
            return TGPImage
        from textual_image.renderable import Image as Auto
        from textual_image.renderable.sixel import Image as SixelR
        from textual_image.renderable.tgp import Image as TGPR

        if Auto is SixelR:
            from textual_image.widget import SixelImage
            return SixelImage
        if Auto is TGPR:
            from textual_image.widget import TGPImage
            return TGPImage
    except Exception:  # a terminal query that fails must never stop the UI: use the blocks
        return None
    return None


class ImagePane(Widget):
    """The current version's image, with a caption; before/after and mask overlay are views.

    Pointing: a click on the image posts ``ImagePane.Picked`` with the image pixel under it
    (``point``), a drag posts it with the box the drag covered (``box``, both end cells
    included, x1/y1 exclusive). Cells map to pixels through ``pointing.fit``, the rule the
    half-block renderer draws by; a graphics renderer gets the image letterboxed into the
    same rectangle. Marks (the selection, numbered candidates) are drawn on a copy of the
    image before it goes to the renderer; ``shown`` stays the plain image, ``displayed`` is
    what the renderer got.

    ``shown`` is usually a preview (``sessions/previews.py``) of a larger image whose size is
    ``shown_size``: the fit, the cells ↔ pixels mapping and the marks' coordinates all use
    ``shown_size``, so a click gives a full-resolution pixel whatever the preview's size."""

    ALLOW_SELECT = False  # a drag here draws a box, not a text selection
    DEFAULT_CSS = """
    ImagePane { layout: vertical; }
    ImagePane > #image-view { height: 1fr; width: 1fr; }
    ImagePane > #caption { height: 1; width: 1fr; content-align: center middle; color: $text-muted; }
    ImagePane > #pointing { height: auto; width: 1fr; content-align: center middle; color: $warning;
                            display: none; }
    ImagePane > #pointing.visible { display: block; }
    """

    class Picked(Message):
        """The user pointed at the image: ``point`` (x, y) or ``box`` (x0, y0, x1, y1), pixels."""

        def __init__(self, point: tuple[int, int] | None = None,
                     box: tuple[int, int, int, int] | None = None) -> None:
            super().__init__()
            self.point, self.box = point, box

    def __init__(self, graphics_cls=None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._graphics_cls = graphics_cls
        self.shown: Image.Image | None = None  # the image shown (a preview of the version's image)
        self.shown_size: tuple[int, int] | None = None  # the full-resolution size it stands for
        self.displayed: Image.Image | None = None
        self.caption = ""
        self.hint = ""
        self.selection = None
        self.candidates: tuple = ()
        self._drag: tuple[int, int] | None = None  # the cell a drag started on
        self._drag_end: tuple[int, int] | None = None
        self._drawn_key: tuple | None = None

    def compose(self):
        if self._graphics_cls is not None:
            view = self._graphics_cls(id="image-view")
            view.ALLOW_SELECT = False  # a drag draws a box, not a text selection
        else:
            view = HalfBlockImage(id="image-view")
        yield view
        yield Static("", id="caption")
        yield Static("", id="pointing", markup=False)

    def show(self, image: Image.Image | None, caption: str, *, size: tuple[int, int] | None = None,
             selection=None, candidates=(), hint: str = "") -> None:
        """Show ``image`` with ``caption``; ``selection`` (``Assistant.selection``) and
        ``candidates`` ((number, box), ...) are drawn on it, ``hint`` goes under the caption.

        ``size``: the full-resolution size when ``image`` is a preview (default: its own
        size). Pointing maps cells to pixels of that size, and the marks are in them."""
        candidates = tuple(candidates)
        size = tuple(size) if size is not None else (image.size if image is not None else None)
        if (image is self.shown and size == self.shown_size and caption == self.caption
                and selection is self.selection and candidates == self.candidates and hint == self.hint):
            return
        self.shown, self.shown_size = image, size
        self.caption, self.selection, self.candidates = caption, selection, candidates
        self.query_one("#caption", Static).update(caption)
        if hint != self.hint:
            self.hint = hint
            self.query_one("#pointing", Static).update(hint)
            self.query_one("#pointing").set_class(bool(hint), "visible")
        self._redraw()

    # -- drawing -------------------------------------------------------------------------------
    @property
    def view_cells(self) -> tuple[int, int]:
        size = self.query_one("#image-view").content_size
        return size.width, size.height

    def fit(self) -> Fit | None:
        """Where the shown image sits in the view (cells relative to the view's content), in
        full-resolution pixels (``shown_size``)."""
        return fit(self.shown_size, self.view_cells) if self.shown is not None else None

    def _redraw(self) -> None:
        image, f = self.shown, self.fit()
        drag = self._drag_box(f)
        key = (id(image), f, id(self.selection), self.candidates, drag)
        if key == self._drawn_key:
            return
        self._drawn_key = key
        out = image
        if image is not None and f is not None:
            graphics = self._graphics_cls is not None
            display = (f.cols * 10, f.rows * 20) if graphics else (f.cols, f.px_h)
            line = 3 if graphics else 1
            if drag is not None:
                out = draw_marks(image, display, selection=_Box(drag), line=line, size=(f.iw, f.ih))
            else:
                out = draw_marks(image, display, selection=self.selection, candidates=self.candidates,
                                 line=line, size=(f.iw, f.ih))
            if graphics:
                bg = self.styles.background
                # the same cells as the full-size fit, at the preview's pixels per cell
                out = letterbox(out, replace(f, iw=out.width, ih=out.height),
                                (bg.r, bg.g, bg.b) if bg.a > 0 else (0, 0, 0))
        self.displayed = out
        view = self.query_one("#image-view")
        if isinstance(view, HalfBlockImage):
            view.full_size = self.shown_size
        view.image = out

    def on_resize(self) -> None:
        self.call_after_refresh(self._redraw)  # the view's new size is known after layout

    def _drag_box(self, f: Fit | None) -> tuple[int, int, int, int] | None:
        if f is None or self._drag is None or self._drag_end is None or self._drag_end == self._drag:
            return None
        return f.box_between(self._drag, self._drag_end)

    # -- the mouse -----------------------------------------------------------------------------
    def _cell(self, event: events.MouseEvent) -> tuple[int, int]:
        region = self.query_one("#image-view").content_region
        return event.screen_x - region.x, event.screen_y - region.y

    def on_mouse_down(self, event: events.MouseDown) -> None:
        f = self.fit()
        cell = self._cell(event)
        if event.button not in (0, 1) or f is None or not f.contains(*cell):
            return
        event.stop()
        self._drag, self._drag_end = cell, cell
        self.capture_mouse()

    def on_mouse_move(self, event: events.MouseMove) -> None:
        if self._drag is None:
            return
        f = self.fit()
        end = f.clamp(*self._cell(event)) if f is not None else None
        if end != self._drag_end:
            self._drag_end = end
            self._redraw()  # the box being drawn

    def on_mouse_up(self, event: events.MouseUp) -> None:
        if self._drag is None:
            return
        event.stop()
        start, self._drag, self._drag_end = self._drag, None, None
        self.release_mouse()
        f = self.fit()
        if f is None:
            return
        end = f.clamp(*self._cell(event))
        if end == start:
            point = f.pixel_at(*start)
            if point is not None:
                self.post_message(self.Picked(point=point))
        else:
            self.post_message(self.Picked(box=f.box_between(start, end)))
        self._redraw()


class _Box:
    """A box being dragged, drawn like a selection."""

    point = mask = None

    def __init__(self, box) -> None:
        self.box = box


# ---------------------------------------------------------------------------------- history
class HistoryPanel(OptionList):
    """The version tree; choosing a row posts ``OptionList.OptionSelected`` (the app checks it out)."""

    def set_rows(self, rows: tuple[TreeRow, ...]) -> None:
        self.clear_options()
        self.add_options([Option(r.text, id=r.version_id) for r in rows])
        for i, r in enumerate(rows):
            if r.is_head:
                self.highlighted = i


# ---------------------------------------------------------------------------------- chat
class ChatMessage(Static):
    pass


class ChatLog(VerticalScroll):
    """The conversation: user lines, replies, questions, errors."""

    def add(self, text: str, kind: str) -> ChatMessage:
        msg = ChatMessage(text, classes=kind, markup=False)
        self.mount(msg)
        self.scroll_end(animate=False)
        return msg


class ChoiceBar(Horizontal):
    """The choices of a clarifying question, as buttons (``Button.Pressed`` goes up)."""

    def set_choices(self, choices: list[str], marked: Iterable[int] = ()) -> None:
        """One button per choice, numbered from 1; a number in ``marked`` (a candidate drawn
        on the image) is shown in its candidate colour, matching the box on the image."""
        marked = set(marked)
        self.remove_children()
        if choices:
            self.mount_all([Button(_choice_label(i, c, i in marked), id=f"choice-{i}", name=c, compact=True)
                            for i, c in enumerate(choices, 1)])
        self.set_class(bool(choices), "visible")


def _choice_label(number: int, choice: str, marked: bool) -> Content:
    if not marked:
        return Content(f"{number}. {choice}")
    colour = hex_rgb(candidate_rgb(number))
    return Content.assemble((f" {number} ", f"bold #000000 on {colour}"), f" {choice}")


class StatusBar(Static):
    """Planner, backend and current version."""

    def show(self, snap: Snapshot | None, *, busy: str = "") -> None:
        if snap is None:
            self.update("loading…")
            return
        text = (f" planner {snap.planner} │ backend {snap.backend} ({snap.profile}) │ "
                f"version {snap.head_seq} of {snap.versions} │ {snap.size[0]}×{snap.size[1]} │ "
                f"session {snap.session_name}")
        if busy:
            text += f" │ {busy}"
        self.update(text)
