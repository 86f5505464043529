"""global_edit: classical whole-image adjustments (embedded backend, deterministic).

``amount`` is the strength; each operation has its own default, range and neutral
value (``OPERATIONS``). Colour operations can be limited to the current mask with
``region="mask"`` (blended through the mask, so "make the sky brighter" works).
Geometric operations (rotate, flip, resize, crop) always act on the whole image.
An instruction no classical operation can do is not this tool's concern: the
planner raises ``NeedsModelError`` for it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from PIL import Image, ImageOps
from pydantic import BaseModel, ConfigDict, Field, model_validator

from imagent.errors import MaskError, ToolArgumentError
from imagent.tools import masks as M
from imagent.tools.types import ToolResult, ToolState

NAME = "global_edit"

MAX_RESULT_PIXELS = 80_000_000
MAX_SIDE_PX = 20_000


@dataclass(frozen=True)
class OpSpec:
    default: float | None  # amount when none is given
    lo: float | None
    hi: float | None
    neutral: float | None  # amount that changes nothing
    doc: str
    geometric: bool = False


OPERATIONS: dict[str, OpSpec] = {
    "brightness": OpSpec(0.15, -1.0, 1.0, 0.0, "amount = relative change, +0.15 = a bit brighter, "
                                                "-0.15 = a bit darker"),
    "contrast": OpSpec(0.15, -1.0, 1.0, 0.0, "amount = relative change around mid-grey"),
    "saturation": OpSpec(0.2, -1.0, 1.0, 0.0, "amount = relative change, -1 = grey"),
    "exposure": OpSpec(0.5, -5.0, 5.0, 0.0, "amount = stops (x2 light per stop), in linear light"),
    "gamma": OpSpec(1.2, 0.1, 10.0, 1.0, "amount = gamma, >1 lifts mid-tones, <1 darkens them"),
    "warmth": OpSpec(0.15, -1.0, 1.0, 0.0, "amount > 0 warmer (more red, less blue), < 0 cooler"),
    "black_and_white": OpSpec(1.0, 0.0, 1.0, 0.0, "amount = how far towards grey (1 = fully)"),
    "sepia": OpSpec(1.0, 0.0, 1.0, 0.0, "amount = how far towards sepia (1 = fully)"),
    "invert": OpSpec(1.0, 0.0, 1.0, 0.0, "amount = how far towards the negative (1 = fully)"),
    "sharpen": OpSpec(1.0, 0.0, 5.0, 0.0, "amount = unsharp-mask strength; value = radius "
                                           "(sigma px, default 1)"),
    "blur": OpSpec(2.0, 0.0, 100.0, 0.0, "amount = Gaussian sigma in px"),
    "autocontrast": OpSpec(1.0, 0.0, 20.0, None, "amount = percent of darkest/brightest pixels "
                                                  "clipped when stretching"),
    "rotate": OpSpec(None, None, None, None, "value = angle in degrees, counter-clockwise "
                                             "(negative = clockwise); 90/180/270 are lossless, "
                                             "other angles grow the canvas and fill the corners "
                                             "black", geometric=True),
    "flip_horizontal": OpSpec(None, None, None, None, "mirror left-right", geometric=True),
    "flip_vertical": OpSpec(None, None, None, None, "mirror top-bottom", geometric=True),
    "resize": OpSpec(1.0, 0.01, 8.0, 1.0, "width and/or height in px (one keeps the aspect), "
                                          "or amount = scale factor", geometric=True),
    "crop": OpSpec(None, None, None, None, "box = x0,y0,x1,y1 to keep", geometric=True),
}

Operation = Literal["brightness", "contrast", "saturation", "exposure", "gamma", "warmth",
                    "black_and_white", "sepia", "invert", "sharpen", "blur", "autocontrast",
                    "rotate", "flip_horizontal", "flip_vertical", "resize", "crop"]

DESCRIPTION = (
    "Adjust the whole image (or, with region='mask', only the current mask) with a classical "
    "operation. Operations and amount: " +
    "; ".join(f"{k}: {v.doc}" + (f" (default {v.default:g})" if v.default is not None and
                                  k != "resize" else "") for k, v in OPERATIONS.items()) + ".")


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid")

    operation: Operation = Field(..., description="The adjustment: " + ", ".join(OPERATIONS) + ".")
    amount: float | None = Field(None, ge=-100.0, le=100.0,
                                 description="Strength; its meaning, range and default depend on "
                                             "the operation (see the tool description).")
    value: float | None = Field(None, ge=-3600.0, le=3600.0,
                                description="Extra number: the angle in degrees for rotate "
                                            "(counter-clockwise), the radius for sharpen.")
    width: int | None = Field(None, ge=1, le=MAX_SIDE_PX, description="resize: target width px.")
    height: int | None = Field(None, ge=1, le=MAX_SIDE_PX, description="resize: target height px.")
    box: list[int] | None = Field(None, min_length=4, max_length=4,
                                  description="crop: x0,y0,x1,y1 to keep (x1/y1 exclusive).")
    region: Literal["image", "mask"] = Field(
        "image", description="'image' = everywhere; 'mask' = only where the current mask is "
                             "(colour operations only).")

    @model_validator(mode="after")
    def _fill_and_check(self) -> "Args":
        spec = OPERATIONS[self.operation]
        if self.amount is None:
            self.amount = spec.default
        elif spec.lo is None:
            raise ValueError(f"{self.operation} takes no amount (got {self.amount:g}); "
                             f"{spec.doc}")
        elif not spec.lo <= self.amount <= spec.hi:
            raise ValueError(f"amount {self.amount:g} is out of range for {self.operation}: "
                             f"{spec.lo:g}..{spec.hi:g} ({spec.doc})")
        if self.operation == "rotate" and self.value is None:
            raise ValueError("rotate needs value = the angle in degrees (counter-clockwise, "
                             "e.g. 90, or -90 for clockwise)")
        if self.operation == "sharpen":
            if self.value is None:
                self.value = 1.0
            elif not 0.3 <= self.value <= 20.0:
                raise ValueError(f"sharpen radius value={self.value:g} is out of range 0.3..20")
        if self.operation == "crop" and self.box is None:
            raise ValueError("crop needs box = [x0, y0, x1, y1]")
        if spec.geometric and self.region == "mask":
            raise ValueError(f"{self.operation} changes the geometry and cannot be limited to "
                             "the mask; use region='image'")
        return self


# ------------------------------------------------------------------------- colour ops
def _srgb_to_linear(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * np.power(x, 1 / 2.4) - 0.055)


_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
_SEPIA = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]],
                  np.float32)


def _colour_op(x: np.ndarray, op: str, a: float, value: float | None) -> np.ndarray:
    """x: float32 H x W x 3 in [0, 1]; returns the adjusted array (not clipped)."""
    luma = (x @ _LUMA)[..., None]
    if op == "brightness":
        return x * (1.0 + a)
    if op == "contrast":
        return (x - float(luma.mean())) * (1.0 + a) + float(luma.mean())
    if op == "saturation":
        return luma + (x - luma) * (1.0 + a)
    if op == "exposure":
        return _linear_to_srgb(_srgb_to_linear(x) * (2.0 ** a))
    if op == "gamma":
        return np.power(np.clip(x, 0.0, 1.0), 1.0 / a)
    if op == "warmth":
        return x * np.array([1.0 + 0.2 * a, 1.0 + 0.03 * a, 1.0 - 0.2 * a], np.float32)
    if op == "black_and_white":
        return x + (luma - x) * a
    if op == "sepia":
        return x + (x @ _SEPIA.T - x) * a
    if op == "invert":
        return x + ((1.0 - x) - x) * a
    if op == "sharpen":
        sigma = float(value or 1.0)
        return x + a * (x - cv2.GaussianBlur(x, (0, 0), sigmaX=sigma, borderType=cv2.BORDER_REFLECT))
    if op == "blur":
        if a <= 0:
            return x
        return cv2.GaussianBlur(x, (0, 0), sigmaX=float(a), borderType=cv2.BORDER_REFLECT)
    raise ToolArgumentError(f"global_edit: {op!r} is not a colour operation")


def adjust(image: Image.Image, operation: str, amount: float | None = None, *,
           value: float | None = None, width: int | None = None, height: int | None = None,
           box: list[int] | None = None, mask: np.ndarray | None = None
           ) -> tuple[Image.Image, np.ndarray | None, str]:
    """Apply one operation. Returns (new image, mask of filled/new pixels or None, note).

    Arguments are validated through ``Args`` (same rules as a tool call).
    """
    args = Args(operation=operation, amount=amount, value=value, width=width, height=height,
                box=box, region="mask" if mask is not None else "image")
    return _apply(image, args, mask)


def _apply(image: Image.Image, args: Args, mask: np.ndarray | None
           ) -> tuple[Image.Image, np.ndarray | None, str]:
    op, a = args.operation, args.amount
    img = image.convert("RGB")
    w, h = img.size
    if op == "flip_horizontal":
        return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT), None, "mirrored left-right"
    if op == "flip_vertical":
        return img.transpose(Image.Transpose.FLIP_TOP_BOTTOM), None, "mirrored top-bottom"
    if op == "rotate":
        return _rotate(img, float(args.value))
    if op == "resize":
        return _resize(img, args)
    if op == "crop":
        x0, y0, x1, y1 = M.check_box(args.box, (w, h))
        return img.crop((x0, y0, x1, y1)), None, f"cropped to {[x0, y0, x1, y1]}"
    if op == "autocontrast":
        out = ImageOps.autocontrast(img, cutoff=float(a))
        note = f"stretched levels (cutoff {a:g}%)"
        arr_out = np.asarray(out, dtype=np.float32) / 255.0
    else:
        x = np.asarray(img, dtype=np.float32) / 255.0
        arr_out = _colour_op(x, op, float(a), args.value)
        note = f"{op} {a:+g}" if op not in ("black_and_white", "sepia", "invert") else f"{op} {a:g}"
    arr_out = np.clip(arr_out, 0.0, 1.0)
    m = None
    if mask is not None:
        m = M.check_mask(mask, img, allow_empty=False)[..., None]
        base = np.asarray(img, dtype=np.float32) / 255.0
        arr_out = base * (1.0 - m) + arr_out * m
        note += " inside the mask"
    out_u8 = np.round(arr_out * 255.0).astype(np.uint8)
    if m is not None:  # outside the mask stays bit-identical
        out_u8 = np.where(m > 0, out_u8, np.asarray(img))
    return Image.fromarray(out_u8), None, note


def _rotate(img: Image.Image, angle: float) -> tuple[Image.Image, np.ndarray | None, str]:
    a = angle % 360.0
    exact = {0: None, 90: Image.Transpose.ROTATE_90, 180: Image.Transpose.ROTATE_180,
             270: Image.Transpose.ROTATE_270, 360: None}
    for k, t in exact.items():
        if math.isclose(a, k, abs_tol=1e-9):
            if t is None:
                return img.copy(), None, f"rotated by {angle:g} degrees (no change)"
            return img.transpose(t), None, f"rotated {angle:g} degrees (lossless)"
    w, h = img.size
    rad = math.radians(a)
    nw = int(math.ceil(abs(w * math.cos(rad)) + abs(h * math.sin(rad))))
    nh = int(math.ceil(abs(w * math.sin(rad)) + abs(h * math.cos(rad))))
    if nw * nh > MAX_RESULT_PIXELS:
        raise ToolArgumentError(f"global_edit: rotating the {w}x{h} image by {angle:g} degrees "
                                f"gives {nw}x{nh}, over {MAX_RESULT_PIXELS:,} pixels",
                                hint="downscale first")
    out = img.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=(0, 0, 0))
    cover = Image.new("L", img.size, 255).rotate(angle, resample=Image.Resampling.BILINEAR,
                                                 expand=True, fillcolor=0)
    filled = 1.0 - np.asarray(cover, dtype=np.float32) / 255.0
    return out, filled, (f"rotated {angle:g} degrees counter-clockwise; the canvas grew to "
                         f"{out.size[0]}x{out.size[1]} and the new corners are black (the "
                         f"result mask marks them; crop or outpaint can deal with them)")


def _resize(img: Image.Image, args: Args) -> tuple[Image.Image, None, str]:
    w, h = img.size
    if args.width is None and args.height is None:
        if args.amount is None or math.isclose(args.amount, 1.0):
            raise ToolArgumentError("global_edit: resize needs width, height, or amount (a scale "
                                    "factor other than 1)", hint="e.g. width=1024, or amount=0.5")
        nw, nh = round(w * args.amount), round(h * args.amount)
    elif args.width is not None and args.height is not None:
        nw, nh = args.width, args.height
    elif args.width is not None:
        nw, nh = args.width, round(h * args.width / w)
    else:
        nw, nh = round(w * args.height / h), args.height
    nw, nh = max(1, int(nw)), max(1, int(nh))
    if nw > MAX_SIDE_PX or nh > MAX_SIDE_PX or nw * nh > MAX_RESULT_PIXELS:
        raise ToolArgumentError(f"global_edit: resize to {nw}x{nh} is too large (limit "
                                f"{MAX_SIDE_PX} px per side, {MAX_RESULT_PIXELS:,} pixels)",
                                hint="choose a smaller size")
    return img.resize((nw, nh), Image.Resampling.LANCZOS), None, f"resized {w}x{h} to {nw}x{nh}"


def run(args: Args, state: ToolState) -> ToolResult:
    mask = None
    if args.region == "mask":
        if state.mask is None:
            raise MaskError("global_edit with region='mask' needs a mask, and there is none",
                            hint="select the region first (ground + build_mask), or use "
                                 "region='image'")
        mask = M.check_mask(state.mask, state.image)
    out, filled, note = _apply(state.image, args, mask)
    metrics: dict = {"operation": args.operation, "amount": args.amount}
    if out.size == state.image.size:
        diff = np.abs(np.asarray(out, dtype=np.int16) -
                      np.asarray(state.image.convert("RGB"), dtype=np.int16))
        metrics["mean_abs_change"] = round(float(diff.mean()), 3)
    else:
        metrics["mean_abs_change"] = None
        metrics["new_size"] = list(out.size)
    res = ToolResult(image=out, mask=filled, backend="classical", metrics=metrics,
                     message=note)
    if out.size != state.image.size:
        res.extra["size_changed"] = True  # the old mask and detections no longer fit
    return res
