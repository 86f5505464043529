"""global_edit: classical whole-image adjustments (embedded backend, deterministic).

``amount`` is the strength; each operation has its own default, range and neutral
value (``OPERATIONS``). ``amount_for(operation, "much")`` turns a strength word into
an amount ("a bit brighter" = the default, "slightly" = half, "much"/"a lot"/"very"
= 2.5x, "extremely" = 4x, clipped to the range); ``SYNONYMS`` maps natural names
("greyscale", "mirror", "defog", "awb"...) onto the operations, and the ``operation``
argument accepts them. Colour operations can be limited to the current mask with
``region="mask"`` (blended through the mask, so "make the sky brighter" works).
Geometric operations (rotate, flip, resize, crop) always act on the whole image.

``operation="instruct"`` is the one model operation: InstructPix2Pix
(``backends.ip2p.instruct_edit``, role ``instruct``) applies ``prompt`` as an instruction
("make it look like winter") to the whole image, or with ``region="mask"`` pastes the edit back
through the mask (pixels outside keep their exact values). It needs ``state.models``; without
a model manager it is ``NeedsModelError`` (exit code 3) naming the model and how to get it.

The operation decides the engine (``tools/backends`` ``BACKENDS["global_edit"]``): ``backend``
is ``embedded`` for the classical operations and ``instruct-pix2pix`` for ``instruct``; "auto"
(the default) is filled in with that when the arguments are validated, so a stored call names
its engine, and ``result.backend`` is the same word.

``impl`` (``tools/registry.py`` ``IMPLS``) names the implementation of the colour operations:
2 (the default) is the uint8 code below; 1 is imagent 0.1.0's float32 code
(``tools/legacy/global_edit_v1.py``), which a call stored without ``impl`` replays with. The
geometric operations and ``instruct`` are the same in both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import cv2
import numpy as np
from PIL import Image, ImageOps
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from imagent.errors import MaskError, ToolArgumentError
from imagent.tools.backends import EMBEDDED, backend_literal, resolve_backend
from imagent.tools import masks as M
from imagent.tools.legacy import global_edit_v1
from imagent.tools.registry import impl_arg
from imagent.tools.types import ToolResult, ToolState

NAME = "global_edit"
Impl = impl_arg(NAME)  # the stored call's implementation (tools/registry.py IMPLS)

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
    auto: bool = False  # measures the image: a well-balanced image may not change


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
    "blur": OpSpec(2.0, 0.0, 100.0, 0.0, "amount = Gaussian sigma in px; value = the short side "
                                         "(px) that sigma is given for: the sigma then scales with "
                                         "the image (a photo 4x larger gets a 4x wider blur)"),
    "pixelate": OpSpec(0.0, 0.0, 256.0, None, "amount = mosaic block size in px (0 = automatic: "
                                             "1/40 of the short side, at least 6)"),
    "autocontrast": OpSpec(1.0, 0.0, 20.0, None, "amount = percent of darkest/brightest pixels "
                                                  "clipped when stretching"),
    "tint": OpSpec(0.15, -1.0, 1.0, 0.0, "amount > 0 towards magenta, < 0 towards green (the "
                                         "axis across warmth)"),
    "vignette": OpSpec(0.4, 0.0, 1.0, 0.0, "amount = how much the corners darken (1 = black "
                                           "corners); value = the radius where it starts, as a "
                                           "fraction of the half-diagonal (default 0.5)"),
    "denoise": OpSpec(6.0, 0.0, 30.0, 0.0, "amount = non-local-means filter strength h in grey "
                                           "levels (3 = light, 6 = normal, 12+ = strong)"),
    "low_light": OpSpec(0.5, 0.0, 1.0, 0.0, "amount = how strongly dark areas are lifted "
                                            "(illumination-map gain, highlights kept)"),
    "dehaze": OpSpec(0.8, 0.0, 1.0, 0.0, "amount = fraction of the haze removed (dark channel "
                                         "prior, omega)"),
    "white_balance": OpSpec(1.0, 0.0, 1.0, 0.0, "automatic white balance (shades-of-grey); amount "
                                                "= how far towards the neutral estimate",
                            auto=True),
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
# The model operation (not in OPERATIONS, which lists the classical ones).
INSTRUCT_DOC = ("prompt = an edit instruction ('make it look like winter') done by the "
                "InstructPix2Pix model (model profile only); image_guidance_scale = how closely "
                "it keeps the input")
INSTRUCT_BACKEND = "instruct-pix2pix"  # the engine of operation instruct
INSTRUCT_ONLY = ("prompt", "image_guidance_scale", "num_inference_steps", "guidance_scale")
INSTRUCT_DEFAULTS = {"image_guidance_scale": 1.5, "num_inference_steps": 20,
                     "guidance_scale": 7.5, "seed": 0}

Operation = Literal["brightness", "contrast", "saturation", "exposure", "gamma", "warmth",
                    "black_and_white", "sepia", "invert", "sharpen", "blur", "pixelate", "autocontrast",
                    "tint", "vignette", "denoise", "low_light", "dehaze", "white_balance",
                    "rotate", "flip_horizontal", "flip_vertical", "resize", "crop", "instruct"]

# Natural names -> operation (the operation argument accepts these; lower case, spaces or
# hyphens as underscores).
SYNONYMS: dict[str, str] = {
    "bright": "brightness", "brighten": "brightness", "lightness": "brightness",
    "darken": "brightness", "saturate": "saturation", "vibrance": "saturation",
    "colourfulness": "saturation", "colorfulness": "saturation", "desaturate": "saturation",
    "warm": "warmth", "warmer": "warmth", "temperature": "warmth", "cool": "warmth",
    "grayscale": "black_and_white", "greyscale": "black_and_white", "monochrome": "black_and_white",
    "black_white": "black_and_white", "bw": "black_and_white", "b&w": "black_and_white",
    "black_&_white": "black_and_white", "negative": "invert", "sharpness": "sharpen",
    "soften": "blur", "gaussian_blur": "blur", "pixelize": "pixelate", "pixelise": "pixelate",
    "mosaic": "pixelate", "auto_contrast": "autocontrast",
    "auto_levels": "autocontrast", "autolevels": "autocontrast", "levels": "autocontrast",
    "normalize": "autocontrast", "noise_reduction": "denoise", "denoising": "denoise",
    "reduce_noise": "denoise", "nlmeans": "denoise", "low_light_enhancement": "low_light",
    "lowlight": "low_light", "night": "low_light", "brighten_shadows": "low_light",
    "shadows": "low_light", "haze_removal": "dehaze", "defog": "dehaze", "remove_haze": "dehaze",
    "auto_white_balance": "white_balance", "awb": "white_balance", "wb": "white_balance",
    "colour_balance": "white_balance", "color_balance": "white_balance",
    "rotation": "rotate", "mirror": "flip_horizontal", "flip": "flip_horizontal",
    "flip_h": "flip_horizontal", "flip_v": "flip_vertical", "upside_down": "flip_vertical",
    "scale": "resize", "rescale": "resize", "trim": "crop", "magenta": "tint",
    "instruction": "instruct", "instruct_pix2pix": "instruct", "instructpix2pix": "instruct",
    "ip2p": "instruct",
}

# Strength words -> multiple of the operation's default amount.
STRENGTH: dict[str, float] = {
    "a tiny bit": 0.33, "a touch": 0.5, "slightly": 0.5, "a little": 0.5, "a little bit": 0.5,
    "a bit": 1.0, "somewhat": 1.0, "": 1.0, "more": 1.0, "noticeably": 1.5,
    "quite": 1.5, "much": 2.5, "a lot": 2.5, "very": 2.5, "way": 3.0, "really": 2.5,
    "strongly": 2.5, "extremely": 4.0, "massively": 4.0,
}


def normalise_operation(name: str) -> str:
    """The operation a natural name stands for (unknown names are returned unchanged)."""
    key = "_".join(str(name).strip().lower().replace("-", " ").split())
    return SYNONYMS.get(key, key)


def amount_for(operation: str, strength: str = "", sign: int = 1) -> float | None:
    """The amount for a strength word: "a bit" = the default, "much" = 2.5x, "slightly"
    = 0.5x ... (``STRENGTH``), signed (``sign=-1`` for darker/cooler/less), clipped to
    the operation's range. None for operations that take no amount."""
    op = normalise_operation(operation)
    spec = OPERATIONS.get(op)
    if spec is None:
        raise ToolArgumentError(f"unknown operation {operation!r}",
                                hint="known operations: " + ", ".join(OPERATIONS))
    if spec.default is None or spec.lo is None:
        return None
    key = " ".join(strength.lower().split())
    if key not in STRENGTH:
        raise ToolArgumentError(f"unknown strength word {strength!r}",
                                hint="known: " + ", ".join(repr(k) for k in STRENGTH if k))
    mult = STRENGTH[key]
    neutral = spec.neutral if spec.neutral is not None else 0.0
    amount = neutral + (spec.default - neutral) * mult * (1 if sign >= 0 else -1)
    return float(min(spec.hi, max(spec.lo, round(amount, 4))))

DESCRIPTION = (
    "Adjust the whole image (or, with region='mask', only the current mask) with a classical "
    "operation. Operations and amount: " +
    "; ".join(f"{k}: {v.doc}" + (f" (default {v.default:g})" if v.default is not None and
                                  k != "resize" else "") for k, v in OPERATIONS.items()) +
    f"; instruct: {INSTRUCT_DOC}.")


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid")

    operation: Operation = Field(..., description="The adjustment: " + ", ".join(OPERATIONS) +
                                                  ", or instruct (a model edit from 'prompt').")
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
                             "(colour operations and instruct).")
    backend: backend_literal(NAME) = Field(  # type: ignore[valid-type]
        "auto", description="Engine, decided by the operation: 'embedded' (the classical "
                            "operations) or 'instruct-pix2pix' (operation instruct, a model); "
                            "'auto' = that one.")
    # --- operation='instruct' only (filled with their defaults for it, None otherwise)
    prompt: str | None = Field(None, max_length=1000,
                               description="instruct: the edit instruction, e.g. 'make it look "
                                           "like winter'.")
    image_guidance_scale: float | None = Field(None, ge=0.0, le=20.0,
                                               description="instruct: how closely the result "
                                                           "keeps the input image (default "
                                                           "1.5; higher = closer).")
    num_inference_steps: int | None = Field(None, ge=1, le=500,
                                            description="instruct: denoising steps (default 20).")
    guidance_scale: float | None = Field(None, ge=0.0, le=50.0,
                                         description="instruct: text guidance (default 7.5).")
    seed: int | None = Field(None, ge=0, le=2**32 - 1,
                             description="instruct: random seed (default 0); the same seed "
                                         "gives the same result.")
    impl: Impl

    @field_validator("operation", mode="before")
    @classmethod
    def _synonym(cls, v: object) -> object:
        return normalise_operation(v) if isinstance(v, str) else v

    @model_validator(mode="after")
    def _fill_and_check(self) -> "Args":
        if self.operation == "instruct":
            if self.backend == EMBEDDED:
                raise ValueError("instruct is done by the instruct-pix2pix model; backend="
                                 "'embedded' has no instruction editing (use backend='auto' or "
                                 "'instruct-pix2pix')")
            self.backend = INSTRUCT_BACKEND
            if not (self.prompt or "").strip():
                raise ValueError("instruct needs prompt = the edit instruction, e.g. 'make it "
                                 "look like winter'")
            for name in ("amount", "value", "width", "height", "box"):
                if getattr(self, name) is not None:
                    raise ValueError(f"instruct takes no {name} (got {getattr(self, name)!r}); "
                                     f"{INSTRUCT_DOC}")
            for k, v in INSTRUCT_DEFAULTS.items():
                if getattr(self, k) is None:
                    setattr(self, k, v)
            return self
        if self.backend not in ("auto", EMBEDDED):
            raise ValueError(f"backend={self.backend!r} only does operation='instruct'; "
                             f"{self.operation} is a classical operation (backend='embedded')")
        self.backend = EMBEDDED
        given = [k for k in INSTRUCT_ONLY if getattr(self, k) is not None]
        if given:
            raise ValueError(f"{', '.join(given)} only apply to operation='instruct', not "
                             f"{self.operation!r}")
        spec = OPERATIONS[self.operation]
        if self.impl == 1 and not spec.geometric and \
                self.operation not in global_edit_v1.OPERATIONS:
            raise ValueError(f"{self.operation} is new in global_edit impl 2; impl 1 (0.1.0) "
                             "did not have it")
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
        if self.operation == "vignette":
            if self.value is None:
                self.value = 0.5
            elif not 0.0 <= self.value <= 1.5:
                raise ValueError(f"vignette radius value={self.value:g} is out of range 0..1.5")
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
# Every colour operation works on the uint8 RGB array, in one pass where it can: a
# pointwise tone curve (brightness, contrast, gamma, exposure, warmth, tint, invert, the
# white balance's gains) is a 256-entry lookup table per channel computed with the float
# formula below, so a 12 MP photo costs one cv2.LUT; a channel mix (saturation, black and
# white, sepia) is one cv2.transform; the filters run on uint8 with OpenCV, and the
# measuring operations (low light, dehaze) estimate their maps on a downscaled copy and
# apply them at full resolution (fast guided filter, He & Sun 2015).
def _srgb_to_linear(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def _linear_to_srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * np.power(x, 1 / 2.4) - 0.055)


_LUMA = np.array([0.299, 0.587, 0.114], np.float32)
_SEPIA = np.array([[0.393, 0.769, 0.189], [0.349, 0.686, 0.168], [0.272, 0.534, 0.131]],
                  np.float32)
_LEVELS = (np.arange(256, dtype=np.float32) / 255.0).astype(np.float32)  # a uint8 level in [0, 1]
_WORK_SIDE = 768  # short side of the copy the measuring operations estimate their maps on


def _lut(values: np.ndarray) -> np.ndarray:
    """A tone curve's results for the 256 levels ((256,) or (256, 3), in [0, 1]) as a uint8
    table for cv2.LUT: round(clip(v) * 255), the rounding the float pipeline used."""
    v = np.round(np.clip(values, 0.0, 1.0) * 255.0).astype(np.uint8)
    return np.ascontiguousarray(v.reshape(1, 256, 3) if v.ndim == 2 else v)


def _apply_lut(u8: np.ndarray, table: np.ndarray) -> np.ndarray:
    return cv2.LUT(np.ascontiguousarray(u8), table)


def _mix(u8: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """out = matrix @ rgb per pixel, rounded and saturated to uint8 (one cv2.transform)."""
    return cv2.transform(np.ascontiguousarray(u8), np.asarray(matrix, np.float32))


def _channel_means(u8: np.ndarray) -> np.ndarray:
    """Mean of each channel in [0, 1] (float64)."""
    return np.array(cv2.mean(np.ascontiguousarray(u8))[:3], np.float64) / 255.0


def _scale_by(u8: np.ndarray, gain: np.ndarray) -> np.ndarray:
    """u8 * gain (gain: float32 H x W), rounded and saturated."""
    g3 = cv2.cvtColor(np.ascontiguousarray(gain, np.float32), cv2.COLOR_GRAY2RGB)
    return cv2.multiply(np.ascontiguousarray(u8), g3, dtype=cv2.CV_8U)


def _work_scale(h: int, w: int) -> int:
    """The integer downscale factor of the estimation copy (1 for small images)."""
    return max(1, min(h, w) // _WORK_SIDE)


def _shrink(arr: np.ndarray, s: int) -> np.ndarray:
    if s <= 1:
        return arr
    h, w = arr.shape[:2]
    return cv2.resize(arr, (max(1, w // s), max(1, h // s)), interpolation=cv2.INTER_AREA)


def _grow(arr: np.ndarray, w: int, h: int) -> np.ndarray:
    if arr.shape[1] == w and arr.shape[0] == h:
        return arr
    return cv2.resize(arr, (w, h), interpolation=cv2.INTER_LINEAR)


def _gaussian_u8(u8: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of a uint8 image; a wide one is done on a downscaled copy (the result
    has no detail finer than sigma) so its cost does not grow with sigma."""
    h, w = u8.shape[:2]
    s = int(sigma // 4)
    if s < 2 or min(h, w) // s < 8:
        return cv2.GaussianBlur(u8, (0, 0), sigmaX=float(sigma), borderType=cv2.BORDER_REFLECT)
    small = cv2.resize(u8, (max(1, w // s), max(1, h // s)), interpolation=cv2.INTER_AREA)
    # INTER_AREA already averaged a box of s px (variance s^2/12); the rest is the blur
    rest = math.sqrt(max(0.25, sigma * sigma - s * s / 12.0)) / s
    small = cv2.GaussianBlur(small, (0, 0), sigmaX=rest, borderType=cv2.BORDER_REFLECT)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _colour_op(u8: np.ndarray, op: str, a: float, value: float | None) -> np.ndarray:
    """u8: H x W x 3 RGB uint8; returns the adjusted uint8 array (a new one)."""
    h, w = u8.shape[:2]
    if min(h, w) < 4:  # OpenCV reads a 1 x 1 array as a scalar: work on a replicated 4 x 4
        py, px = max(0, 4 - h), max(0, 4 - w)
        big = cv2.copyMakeBorder(np.ascontiguousarray(u8), 0, py, 0, px, cv2.BORDER_REPLICATE)
        return np.ascontiguousarray(_colour_op(big, op, a, value)[:h, :w])
    x = _LEVELS
    if op == "brightness":
        return _apply_lut(u8, _lut(x * (1.0 + a)))
    if op == "contrast":
        m = float(_channel_means(u8) @ _LUMA.astype(np.float64))
        return _apply_lut(u8, _lut((x - m) * (1.0 + a) + m))
    if op == "saturation":
        return _mix(u8, (1.0 + a) * np.eye(3) - a * np.outer(np.ones(3), _LUMA))
    if op == "exposure":
        return _apply_lut(u8, _lut(_linear_to_srgb(_srgb_to_linear(x) * (2.0 ** a))))
    if op == "gamma":
        return _apply_lut(u8, _lut(np.power(x, 1.0 / a)))
    if op == "warmth":
        return _apply_lut(u8, _lut(x[:, None] * np.array([1.0 + 0.2 * a, 1.0 + 0.03 * a,
                                                          1.0 - 0.2 * a], np.float32)))
    if op == "black_and_white":
        return _mix(u8, (1.0 - a) * np.eye(3) + a * np.outer(np.ones(3), _LUMA))
    if op == "sepia":
        return _mix(u8, (1.0 - a) * np.eye(3) + a * _SEPIA)
    if op == "invert":
        return _apply_lut(u8, _lut(x + ((1.0 - x) - x) * a))
    if op == "sharpen":
        blurred = cv2.GaussianBlur(u8, (0, 0), sigmaX=float(value or 1.0),
                                   borderType=cv2.BORDER_REFLECT)
        return cv2.addWeighted(u8, 1.0 + a, blurred, -a, 0.0)
    if op == "blur":
        if a <= 0:
            return u8.copy()
        sigma = float(a) * (min(u8.shape[:2]) / float(value) if value else 1.0)
        return _gaussian_u8(u8, sigma)
    if op == "pixelate":
        h, w = u8.shape[:2]
        block = int(round(a)) if a >= 1 else max(6, round(min(w, h) / 40))
        small = cv2.resize(u8, (max(1, w // block), max(1, h // block)),
                           interpolation=cv2.INTER_AREA)
        return cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST)
    if op == "tint":
        return _apply_lut(u8, _lut(x[:, None] * np.array([1.0 + 0.12 * a, 1.0 - 0.18 * a,
                                                          1.0 + 0.12 * a], np.float32)))
    if op == "vignette":
        return _vignette(u8, a, 0.5 if value is None else float(value))
    if op == "denoise":
        return _denoise(u8, a)
    if op == "low_light":
        return _low_light(u8, a)
    if op == "dehaze":
        return _dehaze(u8, a)
    if op == "white_balance":
        return _white_balance(u8, a)
    raise ToolArgumentError(f"global_edit: {op!r} is not a colour operation")


def _vignette(u8: np.ndarray, a: float, start: float) -> np.ndarray:
    h, w = u8.shape[:2]
    # the fall-off is smooth: computed on a grid of at most ~1024 px, interpolated up (grid
    # node j sits where cv2.resize samples it: pixel (j + 0.5) * w / gw - 0.5)
    gw, gh = min(w, 1024), min(h, 1024)
    xx = ((np.arange(gw, dtype=np.float32) + 0.5) * (w / gw) - 0.5)[None, :]
    yy = ((np.arange(gh, dtype=np.float32) + 0.5) * (h / gh) - 0.5)[:, None]
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    r = np.hypot((yy - cy) / max(cy, 0.5), (xx - cx) / max(cx, 0.5)) / math.sqrt(2.0)
    t = np.clip((r - start) / max(1e-3, 1.0 - start), 0.0, 1.0)
    gain = (1.0 - a * (t * t * (3.0 - 2.0 * t))).astype(np.float32)
    return _scale_by(u8, _grow(gain, w, h))


def _denoise(u8: np.ndarray, h: float) -> np.ndarray:
    if h <= 0 or min(u8.shape[:2]) < 3:
        return u8.copy()
    return cv2.fastNlMeansDenoisingColored(np.ascontiguousarray(u8), None, float(h), float(h),
                                           7, 21)


def _box_blur(x: np.ndarray, r: int) -> np.ndarray:
    return cv2.boxFilter(x, -1, (2 * r + 1, 2 * r + 1), borderType=cv2.BORDER_REFLECT)


def _guided_coeffs(guide: np.ndarray, src: np.ndarray, r: int, eps: float
                   ) -> tuple[np.ndarray, np.ndarray]:
    """He et al.'s guided filter (grey guide): the smoothed linear coefficients (a, b) with
    output = a * guide + b, so transmission/illumination maps follow edges."""
    mi, mp = _box_blur(guide, r), _box_blur(src, r)
    cov = _box_blur(guide * src, r) - mi * mp
    var = _box_blur(guide * guide, r) - mi * mi
    aa = cov / (var + eps)
    bb = mp - aa * mi
    return _box_blur(aa, r), _box_blur(bb, r)


_STRIP_ROWS = 64  # full-resolution passes go in strips of rows that stay in the cache


def _rows_of(small: np.ndarray, w: int, h: int, y0: int, y1: int) -> np.ndarray:
    """Rows y0..y1 of ``small`` bilinearly upscaled to w x h (cv2.resize's pixel mapping)."""
    sx, sy = small.shape[1] / w, small.shape[0] / h
    m = np.float32([[sx, 0.0, 0.5 * sx - 0.5], [0.0, sy, (y0 + 0.5) * sy - 0.5]])
    return cv2.warpAffine(small, m, (w, y1 - y0), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


def _guided_rows(u8_rows: np.ndarray, aa: np.ndarray, bb: np.ndarray, w: int, h: int,
                 y0: int) -> np.ndarray:
    """The guided filter's output a * luma + b on rows y0.. of the full image, from the
    coefficients estimated on the downscaled copy."""
    y1 = y0 + u8_rows.shape[0]
    grey = cv2.cvtColor(u8_rows, cv2.COLOR_RGB2GRAY)
    q = cv2.multiply(_rows_of(aa, w, h, y0, y1), grey, scale=1.0 / 255.0, dtype=cv2.CV_32F)
    return cv2.add(q, _rows_of(bb, w, h, y0, y1))


def _channel_max(arr: np.ndarray) -> np.ndarray:
    c0, c1, c2 = cv2.split(np.ascontiguousarray(arr))
    return cv2.max(cv2.max(c0, c1), c2)


def _channel_min(arr: np.ndarray) -> np.ndarray:
    c0, c1, c2 = cv2.split(np.ascontiguousarray(arr))
    return cv2.min(cv2.min(c0, c1), c2)


def _min_pool(plane: np.ndarray, s: int, shape: tuple) -> np.ndarray:
    """The minimum of each s x s block of ``plane``, at the size of ``shape`` (the copy
    _shrink made)."""
    if s <= 1:
        return plane
    hs, ws = shape[:2]
    pooled = cv2.erode(plane, np.ones((s, s), np.uint8), anchor=(0, 0),
                       borderType=cv2.BORDER_REPLICATE)
    return np.ascontiguousarray(pooled[:hs * s:s, :ws * s:s])


def _luma01(u8: np.ndarray) -> np.ndarray:
    """The luma (0.299 R + 0.587 G + 0.114 B, rounded to a level) in [0, 1], float32."""
    grey = cv2.cvtColor(np.ascontiguousarray(u8), cv2.COLOR_RGB2GRAY)
    return cv2.multiply(grey, 1.0 / 255.0, dtype=cv2.CV_32F)


def _low_light(u8: np.ndarray, a: float) -> np.ndarray:
    """LIME-style: estimate the illumination (max of RGB, edge-aware smoothed) and divide
    by its power: dark areas gain up to ~8x, bright ones almost nothing. The illumination's
    guided filter is estimated on a downscaled copy and applied against the full-resolution
    luma (fast guided filter)."""
    if a <= 0:
        return u8.copy()
    u8 = np.ascontiguousarray(u8)
    h, w = u8.shape[:2]
    s = _work_scale(h, w)
    small = _shrink(u8, s)
    illum = cv2.multiply(_channel_max(small), 1.0 / 255.0, dtype=cv2.CV_32F)
    r = max(1, int(round(min(h, w) * 0.02)))
    aa, bb = _guided_coeffs(_luma01(small), illum, max(1, int(round(r / s))), 1e-3)
    gain = np.empty((h, w), np.float32)
    for y0 in range(0, h, _STRIP_ROWS):
        q = _guided_rows(u8[y0:y0 + _STRIP_ROWS], aa, bb, w, h, y0)
        g = cv2.pow(cv2.max(cv2.min(q, 1.0), 1e-3), -0.75 * a)
        gain[y0:y0 + _STRIP_ROWS] = cv2.min(cv2.max(g, 1.0), 8.0)
    # normalise by the 99.5th percentile of the lifted image (estimated on a subsample)
    st = max(1, int(math.sqrt(h * w / 1_000_000)))
    sample = u8[::st, ::st].astype(np.float32) * gain[::st, ::st, None] / 255.0
    norm = np.float32(1.0 / max(1.0, float(np.percentile(sample, 99.5))))
    out = np.empty_like(u8)
    for y0 in range(0, h, _STRIP_ROWS):
        g3 = cv2.cvtColor(cv2.multiply(gain[y0:y0 + _STRIP_ROWS], float(norm)),
                          cv2.COLOR_GRAY2RGB)
        out[y0:y0 + _STRIP_ROWS] = cv2.multiply(u8[y0:y0 + _STRIP_ROWS], g3, dtype=cv2.CV_8U)
    return out


def _dehaze(u8: np.ndarray, omega: float) -> np.ndarray:
    """Dark channel prior (He, Sun, Tang 2009) with a guided-filter transmission map; the
    dark channel, airlight and transmission are estimated on a downscaled copy, the
    transmission follows the full-resolution luma (fast guided filter)."""
    if omega <= 0:
        return u8.copy()
    u8 = np.ascontiguousarray(u8)
    h, w = u8.shape[:2]
    s = _work_scale(h, w)
    small_u8 = _shrink(u8, s)
    patch = max(3, int(round(min(h, w) / 40.0)) | 1)
    ps = max(3, int(round(patch / s)) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (ps, ps))
    # the dark channel from the full-resolution minimum (min-pooled by s, then eroded at
    # the estimation scale), its brightest 0.1% giving the airlight
    dark = cv2.erode(_min_pool(_channel_min(u8), s, small_u8.shape), kernel)
    n = max(1, int(dark.size * 0.001))
    idx = np.argpartition(dark.ravel(), -n)[-n:]
    yi, xi = np.unravel_index(idx, dark.shape)
    off = np.arange(s)
    ys = np.minimum(yi[:, None] * s + off, h - 1)[:, :, None]
    xs = np.minimum(xi[:, None] * s + off, w - 1)[:, None, :]
    A = np.maximum(u8[ys, xs].reshape(-1, 3).max(axis=0) / 255.0, 1e-3).astype(np.float32)
    # min over channels of x / A (clipped at 1), as levels: one lookup table per channel
    scaled = _apply_lut(u8, _lut(_LEVELS[:, None] / A[None, :]))
    dark_a = cv2.erode(_min_pool(_channel_min(scaled), s, small_u8.shape), kernel)
    t = (1.0 - omega * dark_a.astype(np.float32) / 255.0).astype(np.float32)
    aa, bb = _guided_coeffs(_luma01(small_u8), t, max(1, ps * 2), 1e-3)
    # (x - A) / t + A per channel, in 0..255 levels, rounded and saturated
    a255 = tuple(float(v) * 255.0 for v in A) + (0.0,)
    out = np.empty_like(u8)
    for y0 in range(0, h, _STRIP_ROWS):
        rows = u8[y0:y0 + _STRIP_ROWS]
        k = 1.0 / cv2.max(cv2.min(_guided_rows(rows, aa, bb, w, h, y0), 1.0), 0.1)
        d = cv2.multiply(cv2.subtract(rows, a255, dtype=cv2.CV_32F),
                         cv2.cvtColor(k, cv2.COLOR_GRAY2RGB))
        out[y0:y0 + _STRIP_ROWS] = cv2.add(d, a255, dtype=cv2.CV_8U)
    return out


def _white_balance(u8: np.ndarray, a: float) -> np.ndarray:
    """Shades-of-grey (Minkowski p=6) illuminant estimate; gains normalised to keep
    the mean brightness, applied in linear light, blended by ``a``. The estimate is
    exact from the channel histograms; the gains are one lookup table per channel."""
    if a <= 0:
        return u8.copy()
    lin = _srgb_to_linear(_LEVELS).astype(np.float64)
    u8c = np.ascontiguousarray(u8)
    est = np.empty(3)
    for c in range(3):
        hist = cv2.calcHist([u8c], [c], None, [256], [0, 256]).ravel().astype(np.float64)
        est[c] = (hist @ lin ** 6.0 / max(1.0, hist.sum())) ** (1.0 / 6.0)
    est = np.maximum(est, 1e-4)
    gain = est.mean() / est
    gain = (1.0 + (gain - 1.0) * a).astype(np.float32)
    return _apply_lut(u8, _lut(_linear_to_srgb(_srgb_to_linear(_LEVELS)[:, None] * gain)))


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
    out, filled, note, _ = _apply_arrays(image, args, mask)
    return out, filled, note


def _apply_arrays(image: Image.Image, args: Args, mask: np.ndarray | None
                  ) -> tuple[Image.Image, np.ndarray | None, str, tuple | None]:
    """``_apply`` plus, for a colour operation, the (input, output) uint8 arrays (so the
    caller's figures need no second conversion); None for a geometric one."""
    op, a = args.operation, args.amount
    img = image if image.mode == "RGB" else image.convert("RGB")
    w, h = img.size
    if op == "flip_horizontal":
        return img.transpose(Image.Transpose.FLIP_LEFT_RIGHT), None, "mirrored left-right", None
    if op == "flip_vertical":
        return img.transpose(Image.Transpose.FLIP_TOP_BOTTOM), None, "mirrored top-bottom", None
    if op == "rotate":
        return (*_rotate(img, float(args.value)), None)
    if op == "resize":
        return (*_resize(img, args), None)
    if op == "crop":
        x0, y0, x1, y1 = M.check_box(args.box, (w, h))
        return img.crop((x0, y0, x1, y1)), None, f"cropped to {[x0, y0, x1, y1]}", None
    src = np.asarray(img)
    if args.impl == 1:  # 0.1.0's float32 code, for stored calls (mask blend included)
        out_u8 = global_edit_v1.colour(img, op, float(a), args.value, mask)
        note = f"{op} {a:+g}" if op not in ("black_and_white", "sepia", "invert") else f"{op} {a:g}"
        if op == "autocontrast":
            note = f"stretched levels (cutoff {a:g}%)"
        if mask is not None:
            note += " inside the mask"
        return Image.fromarray(out_u8), None, note, (src, out_u8)
    if op == "autocontrast":
        out_u8 = np.asarray(ImageOps.autocontrast(img, cutoff=float(a)))
        note = f"stretched levels (cutoff {a:g}%)"
    else:
        out_u8 = _colour_op(src, op, float(a), args.value)
        note = f"{op} {a:+g}" if op not in ("black_and_white", "sepia", "invert") else f"{op} {a:g}"
    if mask is not None:
        m = M.check_mask(mask, img, allow_empty=False)
        out_u8 = _blend_in_mask(src, out_u8, m)
        note += " inside the mask"
    return Image.fromarray(out_u8), None, note, (src, out_u8)


def _blend_in_mask(src: np.ndarray, out: np.ndarray, m: np.ndarray) -> np.ndarray:
    """``out`` where m = 1, ``src`` where m = 0 (bit-identical), round(src (1 - m) + out m)
    between; only the mask's box is touched."""
    res = np.array(src)
    bb = M.mask_bbox(m, 1e-6)
    if bb is None:
        return res
    x0, y0, x1, y1 = bb
    mc = m[y0:y1, x0:x1, None]
    s, o = src[y0:y1, x0:x1], out[y0:y1, x0:x1]
    blend = np.round(s * (1.0 - mc) + o.astype(np.float32) * mc).astype(np.uint8)
    res[y0:y1, x0:x1] = np.where(mc > 0, blend, s)
    return res


def _mean_abs_change(a: np.ndarray, b: np.ndarray) -> float:
    """mean |a - b| over every pixel and channel (uint8 arrays of one shape)."""
    d = cv2.absdiff(np.ascontiguousarray(a), np.ascontiguousarray(b))
    return float(np.mean(cv2.mean(d)[:d.shape[2] if d.ndim == 3 else 1]))


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


def _run_instruct(args: Args, state: ToolState, mask: np.ndarray | None) -> ToolResult:
    from imagent.tools.models import step_reporter

    engine = resolve_backend(NAME, args.backend, state, allowed=(INSTRUCT_BACKEND,),
                             what=f"operation='instruct' ({args.prompt!r}, InstructPix2Pix)")
    mgr = state.models
    from imagent.tools.backends.ip2p import instruct_edit

    state.emit(kind="progress", tool=NAME, message=f"editing: {args.prompt!r}")
    info: dict[str, Any] = {}
    out = instruct_edit(mgr, state.image, (args.prompt or "").strip(), seed=int(args.seed or 0),
                        num_inference_steps=int(args.num_inference_steps or 20),
                        guidance_scale=float(args.guidance_scale if args.guidance_scale
                                             is not None else 7.5),
                        image_guidance_scale=float(args.image_guidance_scale
                                                   if args.image_guidance_scale is not None
                                                   else 1.5),
                        mask=mask, on_step=step_reporter(state, NAME), cancel=state.cancel,
                        info=info)
    diff = np.abs(np.asarray(out.convert("RGB"), dtype=np.int16) -
                  np.asarray(state.image.convert("RGB"), dtype=np.int16))
    pipeline = str(info.get("backend", engine))
    metrics: dict[str, Any] = {k: v for k, v in info.items() if k not in ("model", "backend")}
    metrics.update(operation="instruct", amount=None, mean_abs_change=round(float(diff.mean()), 3),
                   seed=int(args.seed or 0), backend=engine, pipeline=pipeline)
    return ToolResult(image=out.convert("RGB"), backend=engine, metrics=metrics,
                      model_ids={"instruct": mgr.model_id("instruct")},
                      message=f"{args.prompt!r} with {pipeline} ({mgr.model_id('instruct')})"
                              + (" inside the mask" if mask is not None else ""))


def run(args: Args, state: ToolState) -> ToolResult:
    mask = None
    if args.region == "mask":
        if state.mask is None:
            raise MaskError("global_edit with region='mask' needs a mask, and there is none",
                            hint="select the region first (ground + build_mask), or use "
                                 "region='image'")
        mask = M.check_mask(state.mask, state.image)
    if args.operation == "instruct":
        return _run_instruct(args, state, mask)
    out, filled, note, arrays = _apply_arrays(state.image, args, mask)
    metrics: dict = {"operation": args.operation, "amount": args.amount}
    if out.size == state.image.size:
        if arrays is None:
            arrays = (np.asarray(state.image.convert("RGB")), np.asarray(out))
        metrics["mean_abs_change"] = round(_mean_abs_change(*arrays), 3)
    else:
        metrics["mean_abs_change"] = None
        metrics["new_size"] = list(out.size)
    res = ToolResult(image=out, mask=filled, backend=EMBEDDED, metrics=metrics,
                     message=note)
    if out.size != state.image.size:
        res.extra["size_changed"] = True  # the old mask and detections no longer fit
    return res
