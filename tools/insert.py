"""insert (first version): paste an image file or render text into a box.

Placement: ``box`` when given, else the bounding box of the current mask, else the
selected detection's box, else the whole image (centred). The pasted image is
scaled to fit the box (keeping its aspect, times ``scale``) and keeps its own
alpha; text is rendered with the font that ships with Pillow. ``result.mask`` is
where the image changed (the paste's alpha times ``opacity``).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from PIL import Image, ImageColor, ImageDraw, ImageFont, features
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from imagent.errors import ToolArgumentError
from imagent.tools import masks as M
from imagent.tools.imageio import load_image
from imagent.tools.types import ToolResult, ToolState

NAME = "insert"
DESCRIPTION = (
    "Add an image file (kind='image', path=...) or text (kind='text', text=...) into a box: the "
    "'box' argument, else the current mask's or detection's box, else the image centre. The "
    "pasted image keeps its transparency; text uses 'color', 'font_size' and 'outline'.")

MAX_TEXT_CHARS = 2000


def parse_color(color: str, *, what: str = "color") -> tuple[int, int, int]:
    """RGB of a CSS colour name or #hex; ``ToolArgumentError`` quoting the bad value."""
    try:
        rgb = ImageColor.getrgb(str(color).strip())
    except (ValueError, AttributeError):
        raise ToolArgumentError(f"unknown {what} {color!r}",
                                hint="use a colour name like 'white', 'red', 'navy' or a hex "
                                     "code like '#ff8800'") from None
    return tuple(int(v) for v in rgb[:3])  # type: ignore[return-value]


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: Literal["image", "text"] = Field(..., description="'image' to paste a file, 'text' to "
                                                            "write text.")
    path: str | None = Field(None, max_length=4096, description="kind='image': the image file "
                                                                "to paste (PNG transparency kept).")
    text: str | None = Field(None, max_length=MAX_TEXT_CHARS,
                             description="kind='text': the text to write (\\n for new lines).")
    box: list[int] | None = Field(None, min_length=4, max_length=4,
                                  description="Where to put it: x0,y0,x1,y1 in px. Default: the "
                                              "current mask's box, the detection's box, or the "
                                              "whole image.")
    scale: float = Field(1.0, gt=0.0, le=10.0, description="Size relative to fitting the box.")
    opacity: float = Field(1.0, ge=0.0, le=1.0, description="0 = invisible, 1 = opaque.")
    color: str = Field("white", max_length=64, description="Text colour: a name or #hex.")
    font_size: int | None = Field(None, ge=4, le=2000, description="Text size in px; default: "
                                                                   "as large as fits the box.")
    outline: int = Field(0, ge=0, le=50, description="Text outline width in px (contrasting "
                                                     "colour).")
    feather: int = Field(0, ge=0, le=200, description="Soften the pasted edge by this many px.")

    @field_validator("color")
    @classmethod
    def _color_known(cls, v: str) -> str:
        try:
            parse_color(v)
        except ToolArgumentError as exc:
            raise ValueError(f"{exc.message}; {exc.hint}") from None
        return v

    @model_validator(mode="after")
    def _kind_needs(self) -> "Args":
        if self.kind == "image" and not self.path:
            raise ValueError("kind='image' needs path = the image file to paste")
        if self.kind == "text" and not (self.text or "").strip():
            raise ValueError("kind='text' needs a non-empty text")
        return self


def _fit_font(text: str, size: int | None, box_wh: tuple[int, int], scale: float):
    if not features.check("freetype2"):  # pragma: no cover - Pillow wheels ship FreeType
        return ImageFont.load_default(), "Pillow's bitmap font (no FreeType: size ignored)"
    if size is not None:
        return ImageFont.load_default(size=max(1, int(round(size * scale)))), ""
    bw, bh = box_wh
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    lo, hi, best = 4, max(4, int(bh)), 4
    while lo <= hi:  # the largest size whose text fits the box
        mid = (lo + hi) // 2
        x0, y0, x1, y1 = probe.multiline_textbbox((0, 0), text, font=ImageFont.load_default(size=mid))
        if x1 - x0 <= bw and y1 - y0 <= bh:
            best, lo = mid, mid + 1
        else:
            hi = mid - 1
    return ImageFont.load_default(size=max(1, int(round(best * scale)))), ""


def render_text(text: str, color: str, *, font_size: int | None, box_wh: tuple[int, int],
                scale: float = 1.0, outline: int = 0) -> Image.Image:
    """The text as an RGBA image cropped to its ink."""
    rgb = parse_color(color)
    font, _ = _fit_font(text, font_size, box_wh, scale)
    lum = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    stroke = (0, 0, 0, 255) if lum > 127 else (255, 255, 255, 255)
    probe = ImageDraw.Draw(Image.new("L", (1, 1)))
    x0, y0, x1, y1 = probe.multiline_textbbox((0, 0), text, font=font, stroke_width=outline)
    layer = Image.new("RGBA", (max(1, x1 - x0), max(1, y1 - y0)), rgb + (0,))
    ImageDraw.Draw(layer).multiline_text((-x0, -y0), text, font=font, fill=rgb + (255,),
                                         stroke_width=outline, stroke_fill=stroke)
    return layer


def _placement(state: ToolState, box: list[int] | None) -> tuple[tuple[int, int, int, int], str]:
    size = state.image.size
    if box is not None:
        return M.check_box(box, size), "the given box"
    if state.mask is not None:
        m = M.check_mask(state.mask, state.image, allow_empty=True)
        bb = M.mask_bbox(m)
        if bb is not None:
            return bb, "the current mask's box"
    if state.detections:
        return M.check_box(state.detections[0].box, size), \
            f"the box of {state.detections[0].label!r}"
    return (0, 0, size[0], size[1]), "the whole image (centred)"


def paste(image: Image.Image, sticker: Image.Image, box: tuple[int, int, int, int], *,
          scale: float = 1.0, opacity: float = 1.0, feather: int = 0,
          fit: bool = True) -> tuple[Image.Image, np.ndarray]:
    """Composite RGBA ``sticker`` centred in ``box`` (fit to it when ``fit``).

    Returns (new image, float32 mask of where it changed).
    """
    W, H = image.size
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    sw, sh = sticker.size
    f = (min(bw / sw, bh / sh) * scale) if fit else 1.0
    nw, nh = max(1, int(round(sw * f))), max(1, int(round(sh * f)))
    if nw * nh > 100_000_000:
        raise ToolArgumentError(f"insert: the pasted image would be {nw}x{nh}, too large",
                                hint="use a smaller scale")
    st = sticker.convert("RGBA")
    if (nw, nh) != (sw, sh):
        st = st.resize((nw, nh), Image.Resampling.LANCZOS)
    px, py = int(round((x0 + x1) / 2 - nw / 2)), int(round((y0 + y1) / 2 - nh / 2))
    alpha = np.zeros((H, W), np.float32)
    layer = np.zeros((H, W, 3), np.float32)
    # overlap of the sticker with the canvas
    cx0, cy0, cx1, cy1 = max(0, px), max(0, py), min(W, px + nw), min(H, py + nh)
    if cx1 <= cx0 or cy1 <= cy0:
        raise ToolArgumentError(f"insert: the pasted content at {[px, py, px + nw, py + nh]} "
                                f"falls outside the {W}x{H} image", hint="use a box inside the image")
    arr = np.asarray(st, dtype=np.float32)
    sub = arr[cy0 - py:cy1 - py, cx0 - px:cx1 - px]
    layer[cy0:cy1, cx0:cx1] = sub[..., :3]
    alpha[cy0:cy1, cx0:cx1] = sub[..., 3] / 255.0
    if feather:
        alpha = M.feather(alpha, feather, where="inside")
    alpha *= float(opacity)
    base = np.asarray(image.convert("RGB"), dtype=np.float32)
    out = base * (1.0 - alpha[..., None]) + layer * alpha[..., None]
    out_u8 = np.where(alpha[..., None] > 0, np.clip(np.round(out), 0, 255).astype(np.uint8),
                      np.asarray(image.convert("RGB")))
    return Image.fromarray(out_u8), alpha


def run(args: Args, state: ToolState) -> ToolResult:
    box, where = _placement(state, args.box)
    bw, bh = box[2] - box[0], box[3] - box[1]
    if args.kind == "image":
        loaded = load_image(args.path)  # type: ignore[arg-type]
        sticker = loaded.image.convert("RGBA")
        if loaded.alpha is not None:
            sticker.putalpha(loaded.alpha)
        # seam: GrabCut background removal of the pasted photo, a drop shadow and
        # recolouring land with the tools-deepening issue.
        out, changed = paste(state.image, sticker, box, scale=args.scale, opacity=args.opacity,
                             feather=args.feather)
        what = f"image {args.path!r}"
    else:
        layer = render_text(args.text or "", args.color, font_size=args.font_size,
                            box_wh=(bw, bh), scale=args.scale, outline=args.outline)
        out, changed = paste(state.image, layer, box, scale=1.0, opacity=args.opacity,
                             feather=args.feather, fit=False)
        what = f"text {args.text!r}"
    if not (changed > 0).any():
        raise ToolArgumentError(f"insert: {what} changes no pixel (opacity={args.opacity:g})",
                                hint="raise the opacity or check the image's transparency")
    frac = float((changed > 0).mean())
    return ToolResult(image=out, mask=changed, backend="classical",
                      message=f"inserted {what} into {where} {list(box)}",
                      metrics={"changed_fraction": round(frac, 4), "box": list(box)})
