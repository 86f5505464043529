"""Pointing at the image: where it sits in the pane, terminal cells ↔ image pixels, and the
marks drawn on it (the selection, the numbered candidates of a "which one?" question).

Pure functions of sizes and images, no widgets: the half-block renderer, the graphics
renderer and the mouse all use the same ``Fit``, so a click lands on the pixel it shows.

The fit: a pane of ``W×H`` cells is ``W×2H`` display pixels (a cell is one pixel wide and two
high: the half-block renderer draws the top pixel as the foreground of "▀" and the bottom one
as its background). The image is scaled to fit, keeping its aspect,
``scale = min(W / iw, 2H / ih)``, to ``cols × px_h`` display pixels (``px_h`` even, so whole
cells), and centred: ``left = (W - cols) // 2`` blank columns, ``top = (H - px_h/2) // 2``
blank rows. Display column ``k`` shows image columns ``[k·iw/cols, (k+1)·iw/cols)``; cell row
``r`` shows image rows ``[2r·ih/px_h, (2r+2)·ih/px_h)``.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np
from PIL import Image, ImageDraw

Box = tuple[int, int, int, int]
Point = tuple[int, int]

SELECTION_RGB = (255, 225, 0)  # the user's own selection: yellow
# Candidates of a question, by number (1 = first). Bright, far from each other and from the
# selection's yellow; no pure red (the thing asked about is often red).
CANDIDATE_RGB = ((0, 210, 255), (255, 60, 220), (120, 255, 60), (255, 150, 0), (150, 120, 255),
                 (255, 255, 255))
MASK_ALPHA = 0.35

# 3×5 digits, one string per row, "#" = ink.
_DIGITS = {
    "0": ("###", "#.#", "#.#", "#.#", "###"), "1": (".#.", "##.", ".#.", ".#.", "###"),
    "2": ("###", "..#", "###", "#..", "###"), "3": ("###", "..#", "###", "..#", "###"),
    "4": ("#.#", "#.#", "###", "..#", "..#"), "5": ("###", "#..", "###", "..#", "###"),
    "6": ("###", "#..", "###", "#.#", "###"), "7": ("###", "..#", ".#.", ".#.", ".#."),
    "8": ("###", "#.#", "###", "#.#", "###"), "9": ("###", "#.#", "###", "..#", "###"),
}


def candidate_rgb(number: int) -> tuple[int, int, int]:
    """The colour of candidate ``number`` (1-based) on the image and on its choice button."""
    return CANDIDATE_RGB[(number - 1) % len(CANDIDATE_RGB)]


def hex_rgb(rgb: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*rgb)


# ---------------------------------------------------------------------------------- the fit
@dataclass(frozen=True)
class Fit:
    """Where an ``iw×ih`` image sits in a pane of cells (module docstring).

    ``left``/``top`` are the blank cells before the image; it covers ``cols`` columns and
    ``rows`` (= ``px_h // 2``) rows of cells. Cell coordinates are relative to the pane's
    content region (0, 0 = its top-left cell)."""

    iw: int
    ih: int
    width: int  # the pane, in cells
    height: int
    left: int
    top: int
    cols: int  # display pixels across = cells across
    px_h: int  # display pixels down (two per cell)

    @property
    def rows(self) -> int:
        return self.px_h // 2

    @property
    def scale(self) -> float:
        """Display pixels per image pixel (the smaller of the two axes)."""
        return min(self.cols / self.iw, self.px_h / self.ih)

    def contains(self, cx: int, cy: int) -> bool:
        return self.left <= cx < self.left + self.cols and self.top <= cy < self.top + self.rows

    def clamp(self, cx: int, cy: int) -> tuple[int, int]:
        """The image cell nearest to a cell (for a drag that ends outside the image)."""
        return (min(max(cx, self.left), self.left + self.cols - 1),
                min(max(cy, self.top), self.top + self.rows - 1))

    def pixel_at(self, cx: int, cy: int) -> Point | None:
        """The image pixel at the centre of a cell, or None in the letterbox.

        Column ``k`` covers image x in ``[k·iw/cols, (k+1)·iw/cols)``: its centre is
        ``(2k+1)·iw / (2·cols)``. Row ``r`` covers display rows ``2r`` and ``2r+1``; a mouse
        cannot tell the top half of a cell from the bottom, so its centre is the boundary
        between them, ``(2r+1)·ih / px_h``."""
        if not self.contains(cx, cy):
            return None
        k, r = cx - self.left, cy - self.top
        x = ((2 * k + 1) * self.iw) // (2 * self.cols)
        y = ((2 * r + 1) * self.ih) // self.px_h
        return min(x, self.iw - 1), min(y, self.ih - 1)

    def box_between(self, a: tuple[int, int], b: tuple[int, int]) -> Box:
        """The image box covered by the cells from ``a`` to ``b``, both included (a drag):
        x0,y0 inclusive, x1,y1 exclusive. Cells outside the image are clamped to it."""
        (ax, ay), (bx, by) = self.clamp(*a), self.clamp(*b)
        k0, k1 = min(ax, bx) - self.left, max(ax, bx) - self.left
        r0, r1 = min(ay, by) - self.top, max(ay, by) - self.top
        x0 = (k0 * self.iw) // self.cols
        x1 = -(-((k1 + 1) * self.iw) // self.cols)
        y0 = (2 * r0 * self.ih) // self.px_h
        y1 = -(-((2 * r1 + 2) * self.ih) // self.px_h)
        return x0, y0, min(x1, self.iw), min(y1, self.ih)

    def cell_of(self, x: float, y: float) -> tuple[int, int]:
        """The cell showing image pixel (x, y) (for tests and for placing things on the image)."""
        k = int(x * self.cols // self.iw)
        r = int(y * self.px_h // self.ih) // 2
        return self.left + min(k, self.cols - 1), self.top + min(r, self.rows - 1)


def fit(image_size: tuple[int, int], cells: tuple[int, int]) -> Fit | None:
    """How an image of ``image_size`` pixels fits a pane of ``cells`` (width, height); None
    when either is empty. The one rule the half-block renderer draws by."""
    iw, ih = image_size
    width, height = cells
    if iw < 1 or ih < 1 or width < 1 or height < 1:
        return None
    scale = min(width / iw, (2 * height) / ih)
    cols, px_h = max(1, int(iw * scale)), max(2, int(ih * scale))
    px_h += px_h % 2
    cols, px_h = min(cols, width), min(px_h, 2 * height)
    return Fit(iw, ih, width, height, left=(width - cols) // 2, top=(height - px_h // 2) // 2,
               cols=cols, px_h=px_h)


def letterbox(image: Image.Image, f: Fit, background: tuple[int, int, int]) -> Image.Image:
    """``image`` on a canvas of the whole pane's shape, placed in the fit rectangle.

    For a graphics renderer (Kitty, Sixel) that stretches its image over the whole widget:
    the image then lands in the same cells as the half-block renderer draws it in, so the
    mouse maps the same way, and the aspect is kept. Canvas pixels per cell: ``iw/cols``
    across, ``2·ih/px_h`` down."""
    sx, sy = f.iw / f.cols, 2 * f.ih / f.px_h
    cw, ch = max(f.iw, round(f.width * sx)), max(f.ih, round(f.height * sy))
    if (cw, ch) == image.size:
        return image
    canvas = Image.new("RGB", (cw, ch), background)
    canvas.paste(image.convert("RGB"), (min(round(f.left * sx), cw - f.iw), min(round(f.top * sy), ch - f.ih)))
    return canvas


# ---------------------------------------------------------------------------------- candidates
def candidate_boxes(choices: Iterable[str]) -> list[tuple[int, Box]]:
    """(number, box) for each choice that names a box ("the red square on the left (box
    10,20,60,70)"), read by the project's one target parser; numbers are 1-based positions."""
    from imagent.tools.referent import parse

    out: list[tuple[int, Box]] = []
    for i, choice in enumerate(choices, 1):
        try:
            box = parse(choice).box
        except Exception:  # noqa: BLE001 - a choice that is no target names no box
            box = None
        if box is not None:
            out.append((i, tuple(int(v) for v in box)))
    return out


def candidate_at(candidates: Iterable[tuple[int, Box]], point: Point) -> int | None:
    """The number of the candidate box containing ``point``; the smallest when boxes overlap."""
    x, y = point
    hits = [((b[2] - b[0]) * (b[3] - b[1]), n) for n, b in candidates if b[0] <= x < b[2] and b[1] <= y < b[3]]
    return min(hits)[1] if hits else None


# ---------------------------------------------------------------------------------- drawing
class _Grid:
    """Image pixels ↔ display pixels, for drawing marks that cover whole display pixels.

    ``size`` is the image the marks' coordinates are in (the full-resolution image),
    ``pixels`` the size of the image drawn on (a preview of it; ``size`` by default):
    ``dx``/``dy`` take full-resolution coordinates, ``rect`` gives a rectangle of the
    drawn image's pixels."""

    def __init__(self, size: tuple[int, int], display: tuple[int, int],
                 pixels: tuple[int, int] | None = None) -> None:
        self.iw, self.ih = size
        self.pw, self.ph = pixels if pixels is not None else size
        self.dw, self.dh = max(1, display[0]), max(1, display[1])

    def dx(self, x: float) -> int:
        return min(self.dw - 1, max(0, int(x * self.dw // self.iw)))

    def dy(self, y: float) -> int:
        return min(self.dh - 1, max(0, int(y * self.dh // self.ih)))

    def rect(self, k0: int, r0: int, k1: int, r1: int) -> tuple[int, int, int, int]:
        """Display pixels [k0, k1) × [r0, r1) as an inclusive image rectangle covering them."""
        k0, k1 = max(0, k0), min(self.dw, k1)
        r0, r1 = max(0, r0), min(self.dh, r1)
        x0, x1 = (k0 * self.pw) // self.dw, -(-(k1 * self.pw) // self.dw)
        y0, y1 = (r0 * self.ph) // self.dh, -(-(r1 * self.ph) // self.dh)
        return x0, y0, max(x0, x1 - 1), max(y0, y1 - 1)


def _frame(draw: ImageDraw.ImageDraw, g: _Grid, box: Box, rgb, line: int) -> tuple[int, int]:
    """An outline just outside ``box`` (inside where the image ends), ``line`` display pixels
    wide; returns its top-left display pixel."""
    k0, k1 = g.dx(box[0]) - line, g.dx(max(box[0], box[2] - 1)) + 1 + line
    r0, r1 = g.dy(box[1]) - line, g.dy(max(box[1], box[3] - 1)) + 1 + line
    k0, r0 = max(0, k0), max(0, r0)
    k1, r1 = min(g.dw, k1), min(g.dh, r1)
    for rect in ((k0, r0, k1, r0 + line), (k0, r1 - line, k1, r1),
                 (k0, r0, k0 + line, r1), (k1 - line, r0, k1, r1)):
        draw.rectangle(g.rect(*rect), fill=rgb)
    return k0, r0


def _tag(draw: ImageDraw.ImageDraw, g: _Grid, at: tuple[int, int], text: str, rgb, unit: int) -> None:
    """A filled tag in ``rgb`` with ``text`` (digits) in black, 3×5 glyphs of ``unit``-display-pixel
    dots, its top-left at display pixel ``at`` (moved in to stay on the image)."""
    w, h = (4 * len(text) + 1) * unit, 7 * unit
    k0 = min(max(0, at[0]), max(0, g.dw - w))
    r0 = min(max(0, at[1]), max(0, g.dh - h))
    draw.rectangle(g.rect(k0, r0, k0 + w, r0 + h), fill=rgb)
    for n, ch in enumerate(text):
        glyph = _DIGITS.get(ch)
        if glyph is None:
            continue
        for j, row in enumerate(glyph):
            for i, dot in enumerate(row):
                if dot == "#":
                    k = k0 + (1 + 4 * n + i) * unit
                    r = r0 + (1 + j) * unit
                    draw.rectangle(g.rect(k, r, k + unit, r + unit), fill=(0, 0, 0))


_scaled_mask: list = []  # [(weakref to a mask, (size, pixels), scaled)]: the last one scaled


def _mask_at(mask: Any, size: tuple[int, int], pixels: tuple[int, int]) -> np.ndarray | None:
    """A selection mask of the full-resolution image (``size``) at the drawn image's size
    (``pixels``), float32 in [0, 1]; None for a mask of another size. The last one is kept
    (weakly: a cleared selection's mask is not held): a repaint with the same selection does
    not scale it again."""
    if _scaled_mask and _scaled_mask[0][0]() is mask and _scaled_mask[0][1] == (size, pixels):
        return _scaled_mask[0][2]
    m = np.asarray(mask)
    if m.shape != (size[1], size[0]):
        return None
    if pixels == tuple(size):
        out = np.clip(m.astype(np.float32, copy=False), 0.0, 1.0)
    else:
        m8 = Image.fromarray(np.clip(m.astype(np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
        out = np.asarray(m8.resize(pixels, Image.Resampling.BOX), dtype=np.float32) / np.float32(255.0)
    try:
        _scaled_mask[:] = [(weakref.ref(mask), (size, pixels), out)]
    except TypeError:  # no weak reference to this kind of mask: not kept
        _scaled_mask[:] = []
    return out


def draw_marks(image: Image.Image, display: tuple[int, int], *, selection: Any = None,
               candidates: Iterable[tuple[int, Box]] = (), line: int = 1,
               size: tuple[int, int] | None = None) -> Image.Image:
    """A copy of ``image`` with the selection and the numbered candidates drawn on it, or the
    image itself when there is nothing to draw.

    ``size`` is the full-resolution image's size when ``image`` is a preview of it: the
    marks' coordinates (boxes, points, a mask) are full-resolution pixels either way.

    ``display`` is the size in display pixels the image will be shown at (``(cols, px_h)`` for
    the half-block renderer): every line covers ``line`` whole display pixels, so it stays
    visible, and crisp, at terminal resolution. ``selection`` is anything with ``box``,
    ``point`` and ``mask`` attributes (``Assistant.selection``)."""
    candidates = list(candidates)
    box = getattr(selection, "box", None) if selection is not None else None
    point = getattr(selection, "point", None) if selection is not None else None
    mask = getattr(selection, "mask", None) if selection is not None else None
    if box is None and point is None and mask is None and not candidates:
        return image
    out = image.convert("RGB")
    size = tuple(size) if size is not None else out.size
    if mask is not None:
        m = _mask_at(mask, size, out.size)
        if m is not None:
            a = np.asarray(out, dtype=np.float32)
            k = m[..., None] * MASK_ALPHA
            a = a * (1.0 - k) + np.array(SELECTION_RGB, dtype=np.float32) * k
            out = Image.fromarray(np.clip(a + 0.5, 0, 255).astype(np.uint8), "RGB")
    if out is image:
        out = image.copy()
    draw = ImageDraw.Draw(out)
    g = _Grid(size, display, out.size)
    for n, cbox in candidates:
        rgb = candidate_rgb(n)
        corner = _frame(draw, g, cbox, rgb, line)
        _tag(draw, g, corner, str(n), rgb, line)
    if box is not None:
        _frame(draw, g, tuple(int(v) for v in box), SELECTION_RGB, line)
    if point is not None:
        k, r = g.dx(point[0]), g.dy(point[1])
        arm = 3 * line
        h = line // 2
        for rect in ((k - arm, r - h, k + arm + 1, r - h + line),   # across
                     (k - h, r - arm, k - h + line, r + arm + 1)):  # down
            draw.rectangle(g.rect(*rect), fill=SELECTION_RGB)
    return out


def describe_selection(selection: Any) -> str:
    """The selection in a few words: its own ``describe()`` when it has one."""
    if selection is None:
        return ""
    describe = getattr(selection, "describe", None)
    if callable(describe):
        try:
            text = str(describe())
            if text:
                return text
        except Exception:  # noqa: BLE001 - a description must never break the screen
            pass
    box, point = getattr(selection, "box", None), getattr(selection, "point", None)
    if box is not None:
        return "box " + ",".join(str(int(v)) for v in box)
    if point is not None:
        return "point " + ",".join(str(int(v)) for v in point)
    return "a region"


__all__ = ["CANDIDATE_RGB", "SELECTION_RGB", "Fit", "candidate_at", "candidate_boxes", "candidate_rgb",
           "describe_selection", "draw_marks", "fit", "hex_rgb", "letterbox"]
