"""Widgets of the chat UI. They receive values (attributes down) and post messages up;
none of them talks to the assistant or the store."""

from __future__ import annotations

import os
import sys

from PIL import Image
from rich.segment import Segment
from rich.style import Style
from textual.containers import Horizontal, VerticalScroll
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Button, OptionList, Static
from textual.widgets.option_list import Option

from .state import Snapshot, TreeRow


# ---------------------------------------------------------------------------------- image pane
class HalfBlockImage(Widget):
    """An image drawn with coloured half-cell blocks (two pixels per cell, "▀").

    Works in every terminal with true colour (and degrades with fewer colours),
    needs no graphics protocol, and renders the same in headless tests.
    """

    DEFAULT_CSS = "HalfBlockImage { width: 1fr; height: 1fr; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._image: Image.Image | None = None
        self._strips: list[Strip] = []
        self._key: tuple | None = None

    @property
    def image(self) -> Image.Image | None:
        return self._image

    @image.setter
    def image(self, value: Image.Image | None) -> None:
        self._image = value
        self._key = None
        self.refresh()

    def _build(self, width: int, height: int) -> None:
        key = (id(self._image), width, height)
        if key == self._key:
            return
        self._key = key
        self._strips = []
        if self._image is None or width < 1 or height < 1:
            return
        iw, ih = self._image.size
        scale = min(width / iw, (2 * height) / ih)
        cw, ph = max(1, int(iw * scale)), max(2, int(ih * scale))
        ph += ph % 2
        small = self._image.convert("RGB").resize((cw, ph), Image.Resampling.BOX)
        px = small.load()
        rows = ph // 2
        top_pad = (height - rows) // 2
        left = " " * ((width - cw) // 2)
        blank = Strip([Segment(" " * width)], width)
        self._strips = [blank] * top_pad
        for r in range(rows):
            segs = [Segment(left)] if left else []
            for x in range(cw):
                t, b = px[x, 2 * r], px[x, 2 * r + 1]
                segs.append(Segment("▀", Style(color=f"rgb({t[0]},{t[1]},{t[2]})",
                                               bgcolor=f"rgb({b[0]},{b[1]},{b[2]})")))
            right = width - len(left) - cw
            if right > 0:
                segs.append(Segment(" " * right))
            self._strips.append(Strip(segs, width))

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
    """The current version's image, with a caption; before/after and mask overlay are views."""

    DEFAULT_CSS = """
    ImagePane { layout: vertical; }
    ImagePane > #image-view { height: 1fr; width: 1fr; }
    ImagePane > #caption { height: 1; width: 1fr; content-align: center middle; color: $text-muted; }
    """

    def __init__(self, graphics_cls=None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._graphics_cls = graphics_cls
        self.shown: Image.Image | None = None
        self.caption = ""

    def compose(self):
        if self._graphics_cls is not None:
            view = self._graphics_cls(id="image-view")
        else:
            view = HalfBlockImage(id="image-view")
        yield view
        yield Static("", id="caption")

    def show(self, image: Image.Image | None, caption: str) -> None:
        if image is self.shown and caption == self.caption:
            return
        self.shown, self.caption = image, caption
        self.query_one("#image-view").image = image
        self.query_one("#caption", Static).update(caption)


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

    def set_choices(self, choices: list[str]) -> None:
        self.remove_children()
        if choices:
            self.mount_all([Button(f"{i}. {c}", id=f"choice-{i}", name=c, compact=True)
                            for i, c in enumerate(choices, 1)])
        self.set_class(bool(choices), "visible")


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
