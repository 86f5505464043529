"""Shared hole-filling machinery of ``remove`` and ``outpaint`` (no model weights).

The fill splits the image into two frequency bands (measured on the ten benchmark
photos by ``bench/tools.py``):

* **structure** (low frequencies): a Gaussian low-pass of a blend of a smooth fill
  (OpenCV Navier-Stokes, ``STRUCTURE_SMOOTH_WEIGHT``) and a PatchMatch fill. The smooth
  fill alone smears, PatchMatch alone copies texture at the wrong phase; the blend has
  a lower error than either (Navier-Stokes: 0.9 % lower than Telea in the blend).
* **texture** (high frequencies): the high-pass band of the PatchMatch fill, scaled
  towards the high-pass energy of the known ring around the hole (PatchMatch's patch
  voting averages overlapping patches and loses some of it). Texture copied from
  elsewhere sits at the wrong phase, so the boost costs error in proportion to its
  amplitude: it matches the ring fully where the ring's texture is faint (mean
  high-band amplitude up to ``TEXTURE_BOOST_LEVEL`` grey levels) and proportionally
  less where it is busier. The gain is measured on known pixels only, in
  [1, ``MAX_TEXTURE_GAIN``].
* **the edge**: within ``EDGE_BLEND_PX`` of the hole's boundary the unsplit blend is
  used (there the smooth fill continues the boundary pixels, texture included, with
  a lower error than the band split), ramping to the band split by
  ``EDGE_BLEND_END_PX``.

Large holes are solved coarse-to-fine: the crop is reduced until the hole has about
``COARSE_HOLE_PX`` pixels, filled there, upsampled, and the full-resolution detail
that the reduced scale cannot hold is copied from known pixels through a
nearest-neighbour field found at the reduced scale (a small vectorised PatchMatch
over patch descriptors). Cost then follows the hole size, not the photo size.
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

TEXTURE_SIGMA = 3.0  # px: split between the structure and the texture band
MAX_TEXTURE_GAIN = 3.0
TEXTURE_BOOST_LEVEL = 5.0  # grey levels: rings with fainter texture get the full boost
STRUCTURE_SMOOTH_WEIGHT = 0.6  # weight of the smooth (Navier-Stokes) fill in the structure
EDGE_BLEND_PX = 1.0  # px from the boundary: the unsplit blend up to here ...
EDGE_BLEND_END_PX = 3.0  # ... ramping to the band split by here
FULL_RES_MAX_HOLE_PX = 100_000  # holes up to this size are filled at full resolution
COARSE_HOLE_PX = 16_000  # larger holes are filled at the scale where they have this many px
COARSE_PATCH_SIZE = 3  # PatchMatch patch radius at that reduced scale
TELEA_RADIUS = 3  # px: neighbourhood of the OpenCV inpainting (Telea and Navier-Stokes)


def auto_patch_size(hole_px: int) -> int:
    """PatchMatch patch radius for a hole of ``hole_px`` pixels (9x9 patches for most)."""
    if hole_px < 400:
        return 2
    if hole_px < 3000:
        return 3
    return 4


def telea(rgb: np.ndarray, hole: np.ndarray, radius: int = TELEA_RADIUS) -> np.ndarray:
    return cv2.inpaint(np.ascontiguousarray(rgb), np.ascontiguousarray(hole.astype(np.uint8) * 255),
                       int(radius), cv2.INPAINT_TELEA)


def navier_stokes(rgb: np.ndarray, hole: np.ndarray, radius: int = TELEA_RADIUS) -> np.ndarray:
    """OpenCV's Navier-Stokes inpainting: the smooth fill of the structure band."""
    return cv2.inpaint(np.ascontiguousarray(rgb), np.ascontiguousarray(hole.astype(np.uint8) * 255),
                       int(radius), cv2.INPAINT_NS)


def patchmatch(pm, rgb: np.ndarray, hole: np.ndarray, *, seed: int, patch_size: int) -> np.ndarray:
    pm.set_random_seed(int(seed))
    return pm.inpaint(np.ascontiguousarray(rgb), np.ascontiguousarray(hole.astype(np.uint8) * 255),
                      patch_size=int(patch_size))


def _ring(hole: np.ndarray, width: int) -> np.ndarray:
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * width + 1, 2 * width + 1))
    return (cv2.dilate(hole.astype(np.uint8), k) > 0) & ~hole


def texture_gain(e_ring: float, e_fill: float, *, max_gain: float = MAX_TEXTURE_GAIN,
                 boost_level: float = TEXTURE_BOOST_LEVEL) -> float:
    """Gain of the fill's texture band, from the mean high-band amplitude of the known
    ring (``e_ring``) and of the fill (``e_fill``).

    The full gain ``e_ring / e_fill`` (bounded to [1, ``max_gain``]) matches the
    ring's texture energy; the boost above 1 is scaled by ``boost_level / e_ring``
    where the ring's texture is busier than ``boost_level`` grey levels, because
    texture copied at the wrong phase costs error in proportion to its amplitude.
    """
    full = float(np.clip(e_ring / max(e_fill, 1e-3), 1.0, max_gain))
    return 1.0 + (full - 1.0) * min(1.0, boost_level / max(e_ring, 1e-3))


def hybrid_fill(rgb: np.ndarray, hole: np.ndarray, pm, *, seed: int = 0,
                patch_size: int | None = None, sigma: float = TEXTURE_SIGMA,
                max_gain: float = MAX_TEXTURE_GAIN) -> tuple[np.ndarray, dict]:
    """Fill ``hole`` (bool) of uint8 RGB ``rgb``: smooth+PatchMatch structure, PatchMatch texture.

    Returns (filled uint8, info). Pixels outside the hole are returned unchanged.
    """
    n = int(hole.sum())
    ps = int(patch_size) if patch_size else auto_patch_size(n)
    pmf = patchmatch(pm, rgb, hole, seed=seed, patch_size=ps).astype(np.float32)
    smooth = navier_stokes(rgb, hole).astype(np.float32)
    blend = STRUCTURE_SMOOTH_WEIGHT * smooth + (1.0 - STRUCTURE_SMOOTH_WEIGHT) * pmf
    low = cv2.GaussianBlur(blend, (0, 0), sigma)
    high = pmf - cv2.GaussianBlur(pmf, (0, 0), sigma)
    ring = _ring(hole, max(4, 2 * ps))
    gain = 1.0
    if ring.any():  # measured on the filled image: the hole's old content must not count
        gain = texture_gain(float(np.abs(high[ring]).mean()), float(np.abs(high[hole]).mean()),
                            max_gain=max_gain)
    out = low + gain * high
    # next to the boundary the unsplit blend (it continues the boundary pixels)
    dist = cv2.distanceTransform(hole.astype(np.uint8), cv2.DIST_L2, 5)
    edge = np.clip((EDGE_BLEND_END_PX - dist) / (EDGE_BLEND_END_PX - EDGE_BLEND_PX), 0.0, 1.0)
    out += edge[..., None] * (blend - out)
    out = np.clip(np.round(out), 0, 255).astype(np.uint8)
    out = np.where(hole[..., None], out, rgb)
    return out, {"patch_size": ps, "texture_gain": round(gain, 3)}


# ---------------------------------------------------------------- coarse-to-fine

def _descriptors(img: np.ndarray, step: int = 2) -> np.ndarray:
    """Per-pixel patch descriptor: the 3x3 grid (spacing ``step``) of a lightly blurred image."""
    b = cv2.GaussianBlur(img.astype(np.float32), (0, 0), 1.0)
    pad = cv2.copyMakeBorder(b, step, step, step, step, cv2.BORDER_REFLECT)
    h, w = img.shape[:2]
    parts = [pad[step + dy:step + dy + h, step + dx:step + dx + w]
             for dy in (-step, 0, step) for dx in (-step, 0, step)]
    return np.concatenate(parts, axis=2)  # H x W x 27


def nearest_known_field(img: np.ndarray, hole: np.ndarray, valid_src: np.ndarray, *, seed: int,
                        iters: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """For each hole pixel of ``img`` the known pixel with the most similar patch.

    A vectorised PatchMatch (random init, jump-flood propagation, random search) over
    27-D patch descriptors. Returns (ys, xs) of the hole pixels' sources, in the order
    of ``np.nonzero(hole)``.
    """
    h, w = hole.shape
    desc = _descriptors(img)
    hy, hx = np.nonzero(hole)
    sy, sx = np.nonzero(valid_src)
    rng = np.random.default_rng(seed)
    pick = rng.integers(0, sy.size, hy.size)
    ny, nx = sy[pick].astype(np.int32), sx[pick].astype(np.int32)
    target = desc[hy, hx]

    def cost(cy, cx):
        d = desc[cy, cx] - target
        return np.einsum("ij,ij->i", d, d)

    best = cost(ny, nx)
    index = np.full((h, w), -1, np.int32)
    index[hy, hx] = np.arange(hy.size, dtype=np.int32)

    def try_cand(cy, cx, ok):
        nonlocal best
        cy = np.clip(cy, 0, h - 1)
        cx = np.clip(cx, 0, w - 1)
        ok = ok & valid_src[cy, cx]
        if not ok.any():
            return
        c = np.where(ok, cost(cy, cx), np.inf)
        better = c < best
        ny[better], nx[better], best[better] = cy[better], cx[better], c[better]

    radius0 = max(4, max(h, w) // 4)
    for it in range(iters):
        for step in ((8, 2, 1) if it == 0 else (2, 1)):
            for dy, dx in ((0, step), (0, -step), (step, 0), (-step, 0)):
                qy, qx = hy + dy, hx + dx
                inb = (qy >= 0) & (qy < h) & (qx >= 0) & (qx < w)
                qy, qx = np.clip(qy, 0, h - 1), np.clip(qx, 0, w - 1)
                j = index[qy, qx]
                has = inb & (j >= 0)
                jj = np.where(has, j, 0)
                try_cand(ny[jj] - dy, nx[jj] - dx, has)
        r = radius0
        while r >= 1:
            oy = rng.integers(-r, r + 1, hy.size)
            ox = rng.integers(-r, r + 1, hy.size)
            try_cand(ny + oy, nx + ox, np.ones(hy.size, bool))
            r //= 2
    return ny, nx


def coarse_to_fine_fill(rgb: np.ndarray, hole: np.ndarray, pm, *, seed: int = 0,
                        patch_size: int | None = None, coarse_hole_px: int = COARSE_HOLE_PX,
                        check_cancelled: Callable[[], None] | None = None
                        ) -> tuple[np.ndarray, dict]:
    """Fill a large hole at a reduced scale, then restore full-resolution detail."""
    h, w = hole.shape
    n = int(hole.sum())
    s = max(1.0, (n / float(coarse_hole_px)) ** 0.5)
    sw, sh = max(8, int(round(w / s))), max(8, int(round(h / s)))
    small = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA)
    small_hole = cv2.resize(hole.astype(np.float32), (sw, sh), interpolation=cv2.INTER_AREA) > 1e-3
    filled_small, info = hybrid_fill(small, small_hole, pm, seed=seed,
                                     patch_size=min(int(patch_size or COARSE_PATCH_SIZE),
                                                    COARSE_PATCH_SIZE))
    if check_cancelled:
        check_cancelled()
    # structure: the coarse fill, upsampled; detail: the band the reduced scale cannot
    # hold (full-res pixels minus the upsampled reduced image), copied from known pixels
    base = cv2.resize(filled_small, (w, h), interpolation=cv2.INTER_CUBIC)
    up_small = cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
    grow = int(np.ceil(2 * s)) + 1
    bad_full = cv2.dilate(hole.astype(np.uint8),
                          cv2.getStructuringElement(cv2.MORPH_RECT, (2 * grow + 1, 2 * grow + 1))) > 0
    bad_small = cv2.resize(bad_full.astype(np.float32), (sw, sh), interpolation=cv2.INTER_AREA) > 1e-3
    valid_src = ~bad_small
    valid_src[:2], valid_src[-2:], valid_src[:, :2], valid_src[:, -2:] = False, False, False, False
    out = rgb.copy()
    hy, hx = np.nonzero(hole)
    added = base[hy, hx].astype(np.float32)
    if valid_src.any():
        ny, nx = nearest_known_field(filled_small, small_hole, valid_src, seed=seed)
        if check_cancelled:
            check_cancelled()
        field_y = np.zeros((sh, sw), np.float32)
        field_x = np.zeros((sh, sw), np.float32)
        shy, shx = np.nonzero(small_hole)
        field_y[shy, shx] = ny - shy
        field_x[shy, shx] = nx - shx
        # nearest (not interpolated) offsets, scaled to full resolution
        cy = np.minimum((hy / s).astype(np.int32), sh - 1)
        cx = np.minimum((hx / s).astype(np.int32), sw - 1)
        qy = np.round(hy + field_y[cy, cx] * s).astype(np.int64)
        qx = np.round(hx + field_x[cy, cx] * s).astype(np.int64)
        ok = (qy >= 0) & (qy < h) & (qx >= 0) & (qx < w) & small_hole[cy, cx]
        qy, qx = np.clip(qy, 0, h - 1), np.clip(qx, 0, w - 1)
        ok &= ~bad_full[qy, qx]
        detail = rgb[qy, qx].astype(np.float32) - up_small[qy, qx].astype(np.float32)
        added += np.where(ok[:, None], detail, 0.0)
    out[hy, hx] = np.clip(np.round(added), 0, 255).astype(np.uint8)
    info = dict(info, scale=round(s, 3), coarse_size=[sw, sh])
    return out, info


def fill(rgb: np.ndarray, hole: np.ndarray, pm, *, seed: int = 0, patch_size: int | None = None,
         full_res_max: int = FULL_RES_MAX_HOLE_PX,
         check_cancelled: Callable[[], None] | None = None) -> tuple[np.ndarray, dict]:
    """Fill ``hole`` with the hybrid fill, at full resolution or coarse-to-fine by size."""
    n = int(hole.sum())
    if n > full_res_max:
        return coarse_to_fine_fill(rgb, hole, pm, seed=seed, patch_size=patch_size,
                                   check_cancelled=check_cancelled)
    out, info = hybrid_fill(rgb, hole, pm, seed=seed, patch_size=patch_size)
    return out, dict(info, scale=1.0)
