"""extract: cut the masked region out.

``result.extra["rgba"]`` is always the cut-out: a full-size RGBA image whose alpha
is mask * 255 (save it as PNG or WebP to keep the transparency).
With ``background="transparent"`` (the default) ``result.image`` is None: the
working image is unchanged. With a colour (``"white"``, ``"#00ff00"``...) the
working image becomes the cut-out flattened onto that colour.
"""

from __future__ import annotations

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, field_validator

from imagent.errors import MaskError, ToolArgumentError
from imagent.tools import masks as M
from imagent.tools.backends import EMBEDDED
from imagent.tools.insert import parse_color
from imagent.tools.types import ToolResult, ToolState

NAME = "extract"
DESCRIPTION = (
    "Cut out what the current mask covers. background='transparent' keeps the image and "
    "returns the cut-out with transparency; a colour name or #hex replaces everything outside "
    "the mask with that colour.")


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid")

    background: str = Field("transparent", max_length=64,
                            description="'transparent', or a colour name / #hex to put behind "
                                        "the cut-out.")

    @field_validator("background")
    @classmethod
    def _known(cls, v: str) -> str:
        if v.strip().lower() == "transparent":
            return "transparent"
        try:
            parse_color(v, what="background colour")
        except ToolArgumentError as exc:
            raise ValueError(f"{exc.message}; use 'transparent' or {exc.hint}") from None
        return v


def extract(image: Image.Image, mask: np.ndarray,
            background: str = "transparent") -> tuple[Image.Image, Image.Image | None]:
    """(RGBA cut-out, flattened RGB image or None for a transparent background)."""
    m = M.check_mask(mask, image, allow_empty=False)
    rgb = image.convert("RGB")
    alpha = Image.fromarray(np.round(m * 255.0).astype(np.uint8))
    rgba = rgb.copy()
    rgba.putalpha(alpha)
    if background.strip().lower() == "transparent":
        return rgba, None
    colour = parse_color(background, what="background colour")
    flat = Image.composite(rgb, Image.new("RGB", rgb.size, colour), alpha)
    return rgba, flat


def run(args: Args, state: ToolState) -> ToolResult:
    if state.mask is None:
        raise MaskError("extract needs a mask, and there is none",
                        hint="select what to cut out first: ground(phrase=...) then build_mask()")
    rgba, flat = extract(state.image, state.mask, args.background)
    m = np.asarray(rgba.getchannel("A"))
    bb = M.mask_bbox(m.astype(np.float32) / 255.0, 1e-6)
    area = float((m >= 128).mean())
    where = ("kept the image; the cut-out has a transparent background" if flat is None
             else f"put it on a {args.background} background")
    res = ToolResult(image=flat, backend=EMBEDDED,
                     message=f"cut out {area:.1%} of the image ({where})",
                     metrics={"area_fraction": round(area, 4), "bbox": list(bb) if bb else None})
    res.extra["rgba"] = rgba
    res.extra["bbox"] = list(bb) if bb else None
    return res
