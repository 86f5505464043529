"""global_edit impl 1: the colour operations as imagent 0.1.0 (commit 5fa86c6) computed them.

0.1.0 worked on the image as float32 in [0, 1]: each colour operation in float, then one
clip and round to uint8, and with ``region="mask"`` the float result blended through the
mask before rounding. Impl 2 (``tools/global_edit.py``) works on the uint8 array (lookup
tables, cv2.transform, filters on uint8, maps estimated on a downscaled copy), so saturation,
black and white, sepia, sharpen, blur, vignette, low light, dehaze and, on images under 4 px
a side, contrast, denoise and white balance come out up to a few levels apart, and every colour
operation differs at a soft mask's edge. This module exists only so that calls stored by
0.1.0 (``impl: 1``, see ``tools/registry.py`` ``IMPLS``) replay bit-identically: the code
below is taken verbatim from ``git show 5fa86c6:tools/global_edit.py`` (``_colour_op`` and its
helpers; ``colour`` is the colour half of that file's ``_apply``). Do not change it; new
behaviour belongs in ``tools/global_edit.py``. ``tests/tools/test_replay_compat.py`` checks it
against images made by the 0.1.0 code itself (``tests/tools/data/replay_v1``).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from PIL import Image, ImageOps

from imagent.errors import ToolArgumentError
from imagent.tools import masks as M

# The colour operations 0.1.0 had (pixelate is new in impl 2).
OPERATIONS = ("brightness", "contrast", "saturation", "exposure", "gamma", "warmth",
              "black_and_white", "sepia", "invert", "sharpen", "blur", "autocontrast", "tint",
              "vignette", "denoise", "low_light", "dehaze", "white_balance")


def colour(img: Image.Image, op: str, a: float, value: float | None,
           mask: np.ndarray | None) -> np.ndarray:
    """The uint8 result of colour operation ``op`` on RGB ``img`` (through ``mask`` when
    given), as 0.1.0's ``_apply`` made it."""
    if op == "autocontrast":
        out = ImageOps.autocontrast(img, cutoff=float(a))
        arr_out = np.asarray(out, dtype=np.float32) / 255.0
    else:
        x = np.asarray(img, dtype=np.float32) / 255.0
        arr_out = _colour_op(x, op, float(a), value)
    arr_out = np.clip(arr_out, 0.0, 1.0)
    m = None
    if mask is not None:
        m = M.check_mask(mask, img, allow_empty=False)[..., None]
        base = np.asarray(img, dtype=np.float32) / 255.0
        arr_out = base * (1.0 - m) + arr_out * m
    out_u8 = np.round(arr_out * 255.0).astype(np.uint8)
    if m is not None:  # outside the mask stays bit-identical
        out_u8 = np.where(m > 0, out_u8, np.asarray(img))
    return out_u8


# ---------------------------------------------------------------- verbatim from 5fa86c6
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
    if op == "tint":
        return x * np.array([1.0 + 0.12 * a, 1.0 - 0.18 * a, 1.0 + 0.12 * a], np.float32)
    if op == "vignette":
        return _vignette(x, a, 0.5 if value is None else float(value))
    if op == "denoise":
        return _denoise(x, a)
    if op == "low_light":
        return _low_light(x, a)
    if op == "dehaze":
        return _dehaze(x, a)
    if op == "white_balance":
        return _white_balance(x, a)
    raise ToolArgumentError(f"global_edit: {op!r} is not a colour operation")


def _vignette(x: np.ndarray, a: float, start: float) -> np.ndarray:
    h, w = x.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    r = np.hypot((yy - cy) / max(cy, 0.5), (xx - cx) / max(cx, 0.5)) / math.sqrt(2.0)
    t = np.clip((r - start) / max(1e-3, 1.0 - start), 0.0, 1.0)
    fall = t * t * (3.0 - 2.0 * t)
    return x * (1.0 - a * fall)[..., None]


def _denoise(x: np.ndarray, h: float) -> np.ndarray:
    if h <= 0 or min(x.shape[:2]) < 3:
        return x
    u8 = np.round(np.clip(x, 0, 1) * 255.0).astype(np.uint8)
    out = cv2.fastNlMeansDenoisingColored(np.ascontiguousarray(u8), None, float(h), float(h), 7, 21)
    return out.astype(np.float32) / 255.0


def _box_blur(x: np.ndarray, r: int) -> np.ndarray:
    return cv2.boxFilter(x, -1, (2 * r + 1, 2 * r + 1), borderType=cv2.BORDER_REFLECT)


def _guided(guide: np.ndarray, src: np.ndarray, r: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter (grey guide), so transmission/illumination maps follow edges."""
    mi, mp = _box_blur(guide, r), _box_blur(src, r)
    cov = _box_blur(guide * src, r) - mi * mp
    var = _box_blur(guide * guide, r) - mi * mi
    aa = cov / (var + eps)
    bb = mp - aa * mi
    return _box_blur(aa, r) * guide + _box_blur(bb, r)


def _low_light(x: np.ndarray, a: float) -> np.ndarray:
    """LIME-style: estimate the illumination (max of RGB, edge-aware smoothed) and divide
    by its power: dark areas gain up to ~8x, bright ones almost nothing."""
    if a <= 0:
        return x
    h, w = x.shape[:2]
    illum = x.max(axis=2).astype(np.float32)
    r = max(1, int(round(min(h, w) * 0.02)))
    illum = np.clip(_guided(x @ _LUMA, illum, r, 1e-3), 1e-3, 1.0)
    gain = np.clip(np.power(illum, -0.75 * a), 1.0, 8.0)
    out = x * gain[..., None]
    return out / max(1.0, float(np.percentile(out, 99.5)))


def _dehaze(x: np.ndarray, omega: float) -> np.ndarray:
    """Dark channel prior (He, Sun, Tang 2009) with a guided-filter transmission map."""
    if omega <= 0:
        return x
    h, w = x.shape[:2]
    patch = max(3, int(round(min(h, w) / 40.0)) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (patch, patch))
    dark = cv2.erode(x.min(axis=2), kernel)
    n = max(1, int(dark.size * 0.001))
    idx = np.argpartition(dark.ravel(), -n)[-n:]
    A = np.maximum(x.reshape(-1, 3)[idx].max(axis=0), 1e-3)
    t = 1.0 - omega * cv2.erode((x / A).min(axis=2), kernel)
    t = _guided(x @ _LUMA, t.astype(np.float32), max(1, patch * 2), 1e-3)
    t = np.clip(t, 0.1, 1.0)[..., None]
    return (x - A) / t + A


def _white_balance(x: np.ndarray, a: float) -> np.ndarray:
    """Shades-of-grey (Minkowski p=6) illuminant estimate; gains normalised to keep
    the mean brightness, applied in linear light, blended by ``a``."""
    if a <= 0:
        return x
    lin = _srgb_to_linear(np.clip(x, 0, 1))
    est = np.power(np.mean(np.power(lin.reshape(-1, 3), 6.0), axis=0), 1.0 / 6.0)
    est = np.maximum(est, 1e-4)
    gain = est.mean() / est
    gain = 1.0 + (gain - 1.0) * a
    return _linear_to_srgb(lin * gain.astype(np.float32))

