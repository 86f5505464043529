"""recolor: change the colour of the masked object, keeping its shading and texture.

"Make the car blue" = ground("the car") -> build_mask -> recolor(color="blue").
Works in CIE Lab on a crop around the mask: the lightness channel L keeps its
texture (its deviations from the region's mean are untouched; only the mean moves
part of the way to the target's lightness), and the chroma (a, b) is replaced by the
target's hue with the original's relative chroma variation. The result is blended
through the mask (times ``strength``); every pixel where the mask is 0 is
bit-identical to the input.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, field_validator

from imagent.errors import MaskError, ToolArgumentError
from imagent.tools import masks as M
from imagent.tools.backends import EMBEDDED
from imagent.tools.colors import lab, target_lab
from imagent.tools.types import ToolResult, ToolState

NAME = "recolor"
DESCRIPTION = (
    "Change the colour of what the current mask covers to 'color' (a name or #hex), keeping "
    "its shading and texture (hue/chroma replaced in Lab, lightness detail kept). Use after "
    "ground + build_mask, e.g. 'make the car blue'.")


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid")

    color: str = Field(..., min_length=1, max_length=64,
                       description="The new colour: a name ('blue', 'dark red', 'navy') or #hex.")
    strength: float = Field(1.0, ge=0.0, le=1.0,
                            description="How far towards the new colour (1 = fully).")
    lightness: float | None = Field(None, ge=0.0, le=1.0,
                                    description="How far the region's mean lightness moves to "
                                                "the target's (0 = keep it); default: 1 for "
                                                "black/white/grey targets, 0.35 otherwise.")

    @field_validator("color")
    @classmethod
    def _known(cls, v: str) -> str:
        try:
            target_lab(_css(v))
        except ToolArgumentError as exc:
            raise ValueError(f"{exc.message}; {exc.hint}") from None
        return v


_MODIFIERS = {"dark": -22.0, "deep": -15.0, "light": 20.0, "pale": 25.0, "bright": 8.0}


def _css(color: str) -> str:
    """'dark red' -> 'red' (the modifier is applied by ``target``)."""
    words = color.strip().lower().split()
    return words[-1] if len(words) == 2 and words[0] in _MODIFIERS else color.strip()


def target(color: str) -> tuple[float, float, float]:
    """Lab of a colour name, #hex, or 'dark/light/pale/deep/bright NAME'."""
    L, a, b = target_lab(_css(color))
    words = color.strip().lower().split()
    if len(words) == 2 and words[0] in _MODIFIERS:
        L = float(np.clip(L + _MODIFIERS[words[0]], 5.0, 97.0))
        if words[0] == "pale":
            a, b = a * 0.5, b * 0.5
    return L, a, b


def recolor(image: Image.Image, mask: np.ndarray, color: str, *, strength: float = 1.0,
            lightness: float | None = None) -> tuple[Image.Image, dict]:
    """The recoloured image and its figures (mean hue error, texture kept)."""
    m = M.check_mask(mask, image, allow_full=False)
    W, H = image.size
    x0, y0, x1, y1 = M.crop_box_around(m, (W, H), 0)
    rgb = np.asarray(image.convert("RGB"), np.uint8)
    crop = rgb[y0:y1, x0:x1]
    mk = m[y0:y1, x0:x1]
    sel = mk >= 0.5
    if not sel.any():
        sel = mk > 0
    Lt, at, bt = target(color)
    ct = math.hypot(at, bt)
    src = lab(crop)
    L, a, b = src[..., 0], src[..., 1], src[..., 2]
    chroma = np.hypot(a, b)
    mean_c = float(chroma[sel].mean())
    mean_L = float(L[sel].mean())
    achromatic = ct < 12.0
    k = (1.0 if achromatic else 0.35) if lightness is None else float(lightness)
    if achromatic and Lt > 80:  # towards white: compress the darks, keep the detail
        newL = Lt + (L - mean_L) * 0.6
    elif achromatic and Lt < 20:
        newL = Lt + (L - mean_L) * 0.6
    else:
        newL = L + (Lt - mean_L) * k
    rel = np.clip(chroma / mean_c, 0.5, 1.4) if mean_c > 8.0 else np.ones_like(chroma)
    if achromatic:
        na, nb = at * rel, bt * rel
    else:
        # less chroma where the new lightness is near black or white (stays in gamut)
        room = np.clip(np.minimum(newL, 100.0 - newL) / 25.0, 0.2, 1.0)
        na, nb = at * rel * room, bt * rel * room
    new = np.stack([np.clip(newL, 0, 100) * 255.0 / 100.0, np.clip(na + 128.0, 0, 255),
                    np.clip(nb + 128.0, 0, 255)], axis=2)
    out_rgb = cv2.cvtColor(np.round(new).astype(np.uint8), cv2.COLOR_LAB2RGB).astype(np.float32)
    alpha = (mk * float(strength))[..., None]
    blended = crop.astype(np.float32) * (1.0 - alpha) + out_rgb * alpha
    res_crop = np.where(alpha > 0, np.clip(np.round(blended), 0, 255).astype(np.uint8), crop)
    out = rgb.copy()
    out[y0:y1, x0:x1] = res_crop
    # figures: hue reached and texture kept (correlation of lightness detail)
    got = lab(res_crop)
    hue_t = math.degrees(math.atan2(bt, at)) % 360.0
    hue_g = math.degrees(math.atan2(float(got[..., 2][sel].mean()),
                                    float(got[..., 1][sel].mean()))) % 360.0
    dl0 = L[sel] - L[sel].mean()
    dl1 = got[..., 0][sel] - got[..., 0][sel].mean()
    corr = float(np.corrcoef(dl0, dl1)[0, 1]) if dl0.std() > 0.5 and dl1.std() > 0.5 else 1.0
    figures = {"target_lab": [round(Lt, 1), round(at, 1), round(bt, 1)],
               "hue_error_deg": None if achromatic else
               round(abs((hue_g - hue_t + 180.0) % 360.0 - 180.0), 2),
               "texture_correlation": round(corr, 4),
               "area_fraction": round(float((m >= 0.5).mean()), 4)}
    return Image.fromarray(out), figures


def run(args: Args, state: ToolState) -> ToolResult:
    if state.mask is None:
        raise MaskError("recolor needs a mask, and there is none",
                        hint="select the object first: ground(phrase=...) then build_mask()")
    out, figures = recolor(state.image, state.mask, args.color, strength=args.strength,
                           lightness=args.lightness)
    return ToolResult(image=out, backend=EMBEDDED, metrics=figures,
                      message=f"recoloured {figures['area_fraction']:.1%} of the image to "
                              f"{args.color} (shading kept)")
