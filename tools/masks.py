"""Small, reusable mask helpers. A mask is float32 H x W in [0, 1]; 1 = change.

Sizes are given as (width, height) like PIL; boxes as (x0, y0, x1, y1) in pixels
with x1/y1 exclusive.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
from PIL import Image

from imagent.errors import MaskError, ToolArgumentError

Box = tuple[int, int, int, int]


def _size_of(image: Image.Image | np.ndarray | Sequence[int]) -> tuple[int, int]:
    if isinstance(image, Image.Image):
        return image.size
    if isinstance(image, np.ndarray):
        return int(image.shape[1]), int(image.shape[0])
    w, h = image
    return int(w), int(h)


def check_mask(mask: np.ndarray | Image.Image | None, image: Image.Image | Sequence[int], *,
               name: str = "mask", allow_empty: bool = False,
               allow_full: bool = True) -> np.ndarray:
    """Validate ``mask`` against ``image`` (a PIL image or a (w, h) size).

    Returns a new float32 C-contiguous H x W array in [0, 1]. bool masks map to 0/1,
    uint8 masks are divided by 255. Raises ``MaskError`` quoting the sizes or values.
    """
    w, h = _size_of(image)
    if mask is None:
        raise MaskError(f"there is no {name}",
                        hint="select a region first (ground, then build_mask), or give a mask file")
    if isinstance(mask, Image.Image):
        mask = np.asarray(mask.convert("L"))
    if not isinstance(mask, np.ndarray):
        raise MaskError(f"{name} must be a numpy array, got {type(mask).__name__}",
                        hint="pass a float32 H x W array in [0, 1]")
    arr = mask
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim != 2:
        raise MaskError(f"{name} must be 2-D (H x W), got shape {tuple(mask.shape)}",
                        hint="pass one channel: a float32 H x W array in [0, 1]")
    if arr.shape != (h, w):
        raise MaskError(f"{name} is {arr.shape[1]}x{arr.shape[0]} but the image is {w}x{h}",
                        hint="the mask must have the size of the image it applies to")
    if arr.dtype == np.bool_:
        out = arr.astype(np.float32)
    elif arr.dtype == np.uint8:
        out = arr.astype(np.float32) / 255.0
    elif np.issubdtype(arr.dtype, np.floating):
        out = arr.astype(np.float32)
        if not np.isfinite(out).all():
            raise MaskError(f"{name} contains NaN or infinite values",
                            hint="masks hold values in [0, 1]")
        lo, hi = float(out.min()), float(out.max())
        if lo < -1e-4 or hi > 1.0 + 1e-4:
            raise MaskError(f"{name} values range from {lo:g} to {hi:g}, outside [0, 1]",
                            hint="scale the mask to [0, 1] (1 = change)")
        out = np.clip(out, 0.0, 1.0)
    elif np.issubdtype(arr.dtype, np.integer):
        lo, hi = int(arr.min()), int(arr.max())
        if lo < 0 or hi > 1:
            raise MaskError(f"{name} of dtype {arr.dtype} has values {lo}..{hi}; only 0/1 "
                            "integers are accepted", hint="use uint8 0..255, bool, or float [0, 1]")
        out = arr.astype(np.float32)
    else:
        raise MaskError(f"{name} has unsupported dtype {arr.dtype}",
                        hint="use float32 in [0, 1], uint8 0..255 or bool")
    if not allow_empty and not (out > 0).any():
        raise MaskError(f"the {name} selects nothing (all {w}x{h} pixels are 0)",
                        hint="select a region first, or check the phrase or box used to build it")
    if not allow_full and (out >= 0.5).all():
        raise MaskError(f"the {name} selects the whole {w}x{h} image",
                        hint="select a smaller region; use global_edit for whole-image changes")
    return np.ascontiguousarray(out)


def check_box(box: Sequence[int], size: Sequence[int], *, name: str = "box",
              clip: bool = True) -> Box:
    """Validate an (x0, y0, x1, y1) box against an image of ``size`` (w, h).

    A box partly outside the image is clipped (``clip=True``) or rejected; a box
    that is empty or entirely outside is a ``ToolArgumentError`` quoting box and size.
    """
    w, h = _size_of(size)
    try:
        x0, y0, x1, y1 = (int(round(float(v))) for v in box)
    except (TypeError, ValueError):
        raise ToolArgumentError(f"{name} must be four numbers x0,y0,x1,y1, got {box!r}",
                                hint="e.g. box=[10, 20, 110, 220] (corners, x1/y1 exclusive)"
                                ) from None
    if x1 <= x0 or y1 <= y0:
        raise ToolArgumentError(f"{name} {[x0, y0, x1, y1]} is empty (needs x1 > x0 and y1 > y0)",
                                hint="boxes are x0,y0,x1,y1 corners; for x,y,width,height use "
                                     "'rect x,y,w,h'")
    cx0, cy0, cx1, cy1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if cx1 <= cx0 or cy1 <= cy0:
        raise ToolArgumentError(f"{name} {[x0, y0, x1, y1]} lies outside the {w}x{h} image",
                                hint=f"coordinates run from 0,0 to {w},{h}")
    if not clip and (cx0, cy0, cx1, cy1) != (x0, y0, x1, y1):
        raise ToolArgumentError(f"{name} {[x0, y0, x1, y1]} extends outside the {w}x{h} image",
                                hint=f"coordinates run from 0,0 to {w},{h}")
    return cx0, cy0, cx1, cy1


def box_mask(size: Sequence[int], box: Sequence[int], *, shape: str = "box") -> np.ndarray:
    """A float32 mask of ``size`` (w, h) that is 1 inside ``box`` (clipped to the image).

    ``shape="ellipse"`` gives the ellipse inscribed in the box.
    """
    w, h = _size_of(size)
    x0, y0, x1, y1 = check_box(box, (w, h))
    m = np.zeros((h, w), np.float32)
    if shape == "box":
        m[y0:y1, x0:x1] = 1.0
    elif shape == "ellipse":
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        cx, cy = (x0 + x1 - 1) / 2.0, (y0 + y1 - 1) / 2.0
        rx, ry = max((x1 - x0) / 2.0, 0.5), max((y1 - y0) / 2.0, 0.5)
        inside = ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0
        m[y0:y1, x0:x1] = inside.astype(np.float32)
    else:
        raise ToolArgumentError(f"unknown mask shape {shape!r}", hint="use 'box' or 'ellipse'")
    return m


def _is_binary(mask: np.ndarray) -> bool:
    return bool(np.all((mask == 0) | (mask == 1)))


def _dist_to_zero(binary: np.ndarray) -> np.ndarray:
    """Euclidean distance of every nonzero pixel to the nearest zero pixel (0 on zeros)."""
    if binary.all():
        return np.full(binary.shape, np.float32(1e9))
    return cv2.distanceTransform(binary.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def dilate(mask: np.ndarray, px: int) -> np.ndarray:
    """Grow the mask by ``px`` pixels (round structuring element). ``px=0`` returns a copy."""
    px = int(px)
    if px < 0:
        raise ToolArgumentError(f"dilate must be >= 0 px, got {px}", hint="use erode to shrink")
    m = np.ascontiguousarray(mask, dtype=np.float32)
    if px == 0 or not (m > 0).any():
        return m.copy()
    if _is_binary(m):
        # exact and fast for any radius: distance to the mask <= px
        d = _dist_to_zero(m == 0)
        return (d <= px).astype(np.float32)
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    return cv2.dilate(m, k, borderType=cv2.BORDER_CONSTANT, borderValue=0)


def erode(mask: np.ndarray, px: int) -> np.ndarray:
    """Shrink the mask by ``px`` pixels; pixels at the image border count as inside."""
    px = int(px)
    if px < 0:
        raise ToolArgumentError(f"erode must be >= 0 px, got {px}", hint="use dilate to grow")
    m = np.ascontiguousarray(mask, dtype=np.float32)
    if px == 0:
        return m.copy()
    return invert(dilate(invert(m), px))


def invert(mask: np.ndarray) -> np.ndarray:
    return (1.0 - np.asarray(mask, dtype=np.float32)).astype(np.float32)


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def feather(mask: np.ndarray, px: int, *, where: str = "both") -> np.ndarray:
    """Soften the mask edge over ``px`` pixels; away from the edge values are unchanged.

    The edge of the mask (threshold 0.5) gets a smooth ramp (smoothstep of the signed
    distance to the edge, a close, finite-support stand-in for a Gaussian blur):

    - ``"both"``: the ramp spans px inside to px outside; pixels deeper than px inside
      stay 1 and pixels farther than px outside stay as they were (0).
    - ``"inside"``: the ramp lies inside the mask only; every pixel outside keeps its
      value (used by remove: pixels where the mask is 0 stay exactly 0).
    - ``"outside"``: the ramp lies outside only; the mask itself is kept.
    """
    px = int(px)
    if px < 0:
        raise ToolArgumentError(f"feather must be >= 0 px, got {px}", hint="use 0 for a hard edge")
    m = np.ascontiguousarray(mask, dtype=np.float32)
    if px == 0:
        return m.copy()
    inside = m >= 0.5
    if inside.all() or not inside.any():
        return m.copy()
    d_in = _dist_to_zero(inside) - 0.5  # > 0 inside, edge pixels at 0.5
    d_out = _dist_to_zero(~inside) - 0.5  # > 0 outside
    signed = np.where(inside, d_in, -d_out).astype(np.float32)
    if where == "both":
        ramp = _smoothstep((signed + px) / (2.0 * px))
        band = np.abs(signed) < px
        out = np.where(band, ramp, m)
    elif where == "inside":
        ramp = _smoothstep(signed / px)
        out = np.where(inside, np.minimum(m, ramp), m)
    elif where == "outside":
        ramp = _smoothstep((signed + px) / px)
        out = np.where(inside, m, np.maximum(m, ramp))
    else:
        raise ToolArgumentError(f"unknown feather side {where!r}",
                                hint="use 'both', 'inside' or 'outside'")
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def mask_bbox(mask: np.ndarray, threshold: float = 0.5) -> Box | None:
    """(x0, y0, x1, y1) of the pixels >= threshold (x1/y1 exclusive), or None if none."""
    sel = np.asarray(mask) >= threshold
    rows = np.flatnonzero(sel.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(sel.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def margin_px(margin: float, box: Sequence[int]) -> int:
    """A context margin in pixels: below 1 it is a fraction of the box's larger side."""
    x0, y0, x1, y1 = box
    if margin < 0:
        raise ToolArgumentError(f"margin must be >= 0, got {margin!r}",
                                hint="below 1 = fraction of the region size, 1 and above = px")
    if margin < 1:
        return int(round(margin * max(x1 - x0, y1 - y0)))
    return int(round(margin))


def crop_box_around(mask: np.ndarray, image_size: Sequence[int], margin: float,
                    *, threshold: float = 1e-6, min_margin: int = 0) -> Box:
    """The bbox of the mask grown by ``margin`` (see ``margin_px``), clipped to the image.

    ``threshold`` defaults to "any nonzero pixel" so soft edges are inside the box.
    """
    w, h = _size_of(image_size)
    bb = mask_bbox(mask, threshold)
    if bb is None:
        raise MaskError("the mask selects nothing", hint="select a region first")
    m = max(int(min_margin), margin_px(margin, bb))
    x0, y0, x1, y1 = bb
    return max(0, x0 - m), max(0, y0 - m), min(w, x1 + m), min(h, y1 + m)


# ----------------------------------------------------------------------------- set operations
def fill_holes(mask: np.ndarray) -> np.ndarray:
    """The mask with its holes filled (regions of 0 not connected to the image border)."""
    m = np.ascontiguousarray(mask, dtype=np.float32)
    b = (m >= 0.5).astype(np.uint8)
    h, w = b.shape
    if h < 3 or w < 3 or not b.any():
        return m.copy()
    pad = np.zeros((h + 2, w + 2), np.uint8)
    pad[1:-1, 1:-1] = b
    ff_mask = np.zeros((h + 4, w + 4), np.uint8)
    cv2.floodFill(pad, ff_mask, (0, 0), 2)
    holes = pad[1:-1, 1:-1] == 0
    return np.where(holes, np.float32(1.0), m).astype(np.float32)


def union(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.maximum(np.asarray(a, np.float32), np.asarray(b, np.float32))


def intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.minimum(np.asarray(a, np.float32), np.asarray(b, np.float32))


def subtract(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.clip(np.asarray(a, np.float32) - np.asarray(b, np.float32), 0.0, 1.0)


def shrink_schedule(mask: np.ndarray, steps: int = 5, *, grow: float = 0.1,
                    min_px: int = 1) -> list[np.ndarray]:
    """Masks from dilated to thin, for Blended Latent Diffusion's progressive shrinking.

    The first mask is ``mask`` dilated by ``grow`` x its larger bbox side (at least
    ``min_px``); the last is ``mask`` itself (binarised at 0.5); the ones between
    shrink linearly in dilation radius. Pure numpy/OpenCV, deterministic.
    """
    steps = int(steps)
    if steps < 1:
        raise ToolArgumentError(f"shrink schedule needs steps >= 1, got {steps}")
    if grow < 0:
        raise ToolArgumentError(f"shrink schedule grow must be >= 0, got {grow!r}")
    base = (np.asarray(mask, np.float32) >= 0.5).astype(np.float32)
    bb = mask_bbox(base)
    if bb is None:
        raise MaskError("the mask selects nothing", hint="select a region first")
    r0 = max(int(min_px), int(round(grow * max(bb[2] - bb[0], bb[3] - bb[1]))))
    if steps == 1:
        return [base]
    radii = [int(round(r0 * (steps - 1 - i) / (steps - 1))) for i in range(steps)]
    return [dilate(base, r) for r in radii]


# ----------------------------------------------------------------------------- image-aware
def grabcut_refine(image: Image.Image, mask: np.ndarray, *, iterations: int = 4,
                   seed: int = 0) -> np.ndarray:
    """Refine a rough mask (a box, an ellipse) to the object's outline with GrabCut.

    Works on a crop around the mask (with a margin) so the cost follows the region.
    Pixels outside the rough mask stay background; its inner core (eroded) is
    "probably foreground", the rest "probably background"... GrabCut decides.
    Falls back to the rough mask when GrabCut keeps (almost) nothing.
    """
    w, h = image.size
    rough = np.asarray(mask, np.float32) >= 0.5
    bb = mask_bbox(rough.astype(np.float32))
    if bb is None:
        raise MaskError("the mask selects nothing", hint="select a region first")
    x0, y0, x1, y1 = bb
    if min(x1 - x0, y1 - y0) < 8:
        return rough.astype(np.float32)
    m = max(8, int(0.1 * max(x1 - x0, y1 - y0)))
    cx0, cy0, cx1, cy1 = max(0, x0 - m), max(0, y0 - m), min(w, x1 + m), min(h, y1 + m)
    crop = np.ascontiguousarray(np.asarray(image.convert("RGB"), np.uint8)[cy0:cy1, cx0:cx1, ::-1])
    r = rough[cy0:cy1, cx0:cx1]
    gc = np.full(r.shape, cv2.GC_BGD, np.uint8)
    gc[r] = cv2.GC_PR_FGD
    if not (gc == cv2.GC_BGD).any():  # the rough mask fills the crop: nothing is "outside"
        return rough.astype(np.float32)
    bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.setRNGSeed(int(seed))
    try:
        cv2.grabCut(crop, gc, None, bgd, fgd, int(iterations), cv2.GC_INIT_WITH_MASK)
    except cv2.error:
        return rough.astype(np.float32)
    fg = (gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)
    if fg.sum() < 0.05 * r.sum():
        return rough.astype(np.float32)
    out = np.zeros((h, w), np.float32)
    out[cy0:cy1, cx0:cx1] = fg.astype(np.float32)
    return fill_holes(out)


def shadow_grow(image: Image.Image, mask: np.ndarray, *, max_extent: float = 0.5,
                darker: float = 0.18) -> tuple[np.ndarray, int]:
    """Extend the mask over an attached shadow: a darker region touching the object.

    Candidate pixels lie within ``max_extent`` x the object's larger side of the mask
    (the bound), outside it, and are darker than the surroundings by ``darker``
    (relative luminance below the median of the ring around the object, times
    1 - darker). Only the connected parts that touch the mask are added. Returns
    (new mask, number of pixels added).
    """
    w, h = image.size
    m = np.asarray(mask, np.float32)
    obj = m >= 0.5
    bb = mask_bbox(obj.astype(np.float32))
    if bb is None:
        raise MaskError("the mask selects nothing", hint="select a region first")
    size = max(bb[2] - bb[0], bb[3] - bb[1])
    reach = max(2, int(round(max_extent * size)))
    x0, y0 = max(0, bb[0] - reach - 2), max(0, bb[1] - reach - 2)
    x1, y1 = min(w, bb[2] + reach + 2), min(h, bb[3] + reach + 2)
    lum = cv2.cvtColor(np.asarray(image.convert("RGB"), np.uint8)[y0:y1, x0:x1],
                       cv2.COLOR_RGB2LAB)[..., 0].astype(np.float32)
    o = obj[y0:y1, x0:x1]
    near = dilate(o.astype(np.float32), reach) >= 0.5
    ring = near & ~o
    if not ring.any():
        return m.copy(), 0
    ref = float(np.median(lum[ring]))
    dark = ring & (lum < ref * (1.0 - darker))
    if not dark.any():
        return m.copy(), 0
    dark_u8 = cv2.morphologyEx(dark.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)) \
        if min(dark.shape) >= 3 else dark.astype(np.uint8)
    n, labels = cv2.connectedComponents(dark_u8, connectivity=8)
    touch = dilate(o.astype(np.float32), 2) >= 0.5
    keep = set(np.unique(labels[touch & (dark_u8 > 0)]).tolist()) - {0}
    if not keep:
        return m.copy(), 0
    add = np.isin(labels, list(keep))
    out = m.copy()
    sub = out[y0:y1, x0:x1]
    sub[add] = 1.0
    return out, int(add.sum())
