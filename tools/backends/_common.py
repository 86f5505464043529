"""Shared pieces of the diffusion backends: crop to the mask, paste back, progress and cancel.

Crop and paste: the model sees a padded crop around the mask, resized to its native resolution
(``native`` px on the long side, sides a multiple of 8); its output is resized back to the crop
and blended into the full-resolution image through the mask, so every pixel where the mask is 0
keeps its exact input value, whatever the image size.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from PIL import Image

from imagent.errors import Cancelled, MaskError
from imagent.tools import masks as M

OnStep = Callable[[int, int], None]


def check_cancel(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("the request was cancelled; nothing was committed",
                        hint="the session is unchanged; send the request again to redo it")


@dataclass
class Crop:
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 in the full image
    size: tuple[int, int]  # (w, h) the model works at
    image: Image.Image  # the crop resized to ``size``
    mask: np.ndarray  # float32 h x w of the crop resized to ``size``


def _round8(v: float) -> int:
    return max(8, int(round(v / 8.0)) * 8)


def crop_for_model(image: Image.Image, mask: np.ndarray, *, native: int = 512,
                   margin: float = 0.5, min_side: int = 64) -> Crop:
    """A padded crop around the mask, at the model's native resolution.

    The crop is the mask's box grown by ``margin`` (fraction of its larger side) and then to
    at least ``native`` px (or the image size) on each side where the image allows, so a small
    object gets enough context; it is resized so its long side is ``native`` and both sides are
    multiples of 8.
    """
    w, h = image.size
    m = M.check_mask(mask, image, allow_empty=False)
    x0, y0, x1, y1 = M.crop_box_around(m, (w, h), margin)
    # grow towards a square of at least min(native, image side) px
    want_w = min(w, max(x1 - x0, min(native, w), y1 - y0))
    want_h = min(h, max(y1 - y0, min(native, h), x1 - x0))
    x0, x1 = _grow(x0, x1, want_w, w)
    y0, y1 = _grow(y0, y1, want_h, h)
    cw, ch = x1 - x0, y1 - y0
    scale = native / float(max(cw, ch))
    size = (_round8(max(min_side, cw * scale)), _round8(max(min_side, ch * scale)))
    crop = image.convert("RGB").crop((x0, y0, x1, y1)).resize(size, Image.Resampling.LANCZOS)
    cm = Image.fromarray(np.round(m[y0:y1, x0:x1] * 255).astype(np.uint8)).resize(
        size, Image.Resampling.BILINEAR)
    return Crop((x0, y0, x1, y1), size, crop, np.asarray(cm, np.float32) / 255.0)


def _grow(a: int, b: int, want: int, limit: int) -> tuple[int, int]:
    extra = max(0, want - (b - a))
    a -= extra // 2
    b += extra - extra // 2
    if a < 0:
        b, a = min(limit, b - a), 0
    if b > limit:
        a, b = max(0, a - (b - limit)), limit
    return a, b


def paste_back(image: Image.Image, mask: np.ndarray, result: Image.Image,
               box: tuple[int, int, int, int], *, feather: int = 0) -> Image.Image:
    """Blend ``result`` (the model's output for ``box``) into ``image`` through ``mask``.

    ``feather`` softens the edge inside the mask only: pixels where the mask is 0 are the
    input's exact values.
    """
    x0, y0, x1, y1 = box
    m = M.check_mask(mask, image, allow_empty=True)
    cm = m[y0:y1, x0:x1]
    if feather:
        cm = M.feather(cm, feather, where="inside")
    rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    crop = rgb[y0:y1, x0:x1].astype(np.float32)
    gen = np.asarray(result.convert("RGB").resize((x1 - x0, y1 - y0), Image.Resampling.LANCZOS),
                     dtype=np.float32)
    a = cm[..., None]
    blended = np.clip(np.round(crop * (1.0 - a) + gen * a), 0, 255).astype(np.uint8)
    out = rgb.copy()
    out[y0:y1, x0:x1] = np.where(a > 0, blended, rgb[y0:y1, x0:x1])
    return Image.fromarray(out)


def make_generator(seed: int):
    """A CPU torch generator: the same seed gives the same noise on every device."""
    import torch

    return torch.Generator(device="cpu").manual_seed(int(seed))


def step_callback(on_step: OnStep | None, cancel: threading.Event | None, total: int,
                  extra: Callable[[Any, int, Any, dict], dict] | None = None):
    """A diffusers ``callback_on_step_end``: progress, cancellation, and an optional hook."""

    def callback(pipe: Any, i: int, t: Any, kwargs: dict) -> dict:
        if extra is not None:
            kwargs = extra(pipe, i, t, kwargs) or kwargs
        if on_step is not None:
            on_step(i + 1, total)
        check_cancel(cancel)
        return kwargs

    return callback


def steps_run(num_inference_steps: int, strength: float) -> int:
    """How many denoising steps an img2img/inpaint pipeline runs for ``strength``."""
    return max(1, min(int(num_inference_steps), int(int(num_inference_steps) * float(strength))))


def mask_image(mask: np.ndarray) -> Image.Image:
    return Image.fromarray(np.round(np.clip(mask, 0, 1) * 255).astype(np.uint8), "L")


def require_mask(mask: np.ndarray | None, image: Image.Image) -> np.ndarray:
    if mask is None:
        raise MaskError("this edit needs a mask, and there is none",
                        hint="select a region first: ground(phrase=...) then build_mask()")
    return M.check_mask(mask, image, allow_empty=False)


def simple_figures(image: Image.Image, candidate: Image.Image, mask: np.ndarray) -> float:
    """A model-free score of a candidate (higher is better): how well the fill matches the
    colour statistics of a ring around the mask (seam and colour consistency)."""
    c = np.asarray(candidate.convert("RGB"), np.float32)
    o = np.asarray(image.convert("RGB"), np.float32)
    inside = mask >= 0.5
    ring = (M.dilate(inside.astype(np.float32), 8) > 0) & ~inside
    if not inside.any() or not ring.any():
        return 0.0
    d_mean = np.abs(c[inside].mean(0) - o[ring].mean(0)).mean()
    d_std = np.abs(c[inside].std(0) - o[ring].std(0)).mean()
    edge = (M.dilate(inside.astype(np.float32), 2) > 0) & ~(M.erode(inside.astype(np.float32), 2) > 0)
    seam = float(np.abs(np.diff(c, axis=1)).mean(-1)[edge[:, 1:]].mean()) if edge[:, 1:].any() else 0.0
    return -float(d_mean + 0.5 * d_std + 0.25 * seam)
