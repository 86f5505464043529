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


def patchmatch(pm, rgb: np.ndarray, hole: np.ndarray, *, seed: int, patch_size: int,
               avoid: np.ndarray | None = None) -> np.ndarray:
    """PatchMatch fill of ``hole``; ``avoid`` (bool) marks pixels no patch may come from
    (the library's ``global_mask``). Falls back to no ``avoid`` when that leaves the hole
    black (too few whole source patches at some pyramid level)."""
    img = np.ascontiguousarray(rgb)
    mask = np.ascontiguousarray(hole.astype(np.uint8) * 255)
    if avoid is not None and (avoid & ~hole).any():
        pm.set_random_seed(int(seed))
        out = pm.inpaint(img, mask, global_mask=np.ascontiguousarray((avoid & ~hole).astype(np.uint8)),
                         patch_size=int(patch_size))
        if not _black_hole(out, hole):
            return out
    pm.set_random_seed(int(seed))
    return pm.inpaint(img, mask, patch_size=int(patch_size))


def _black_hole(filled: np.ndarray, hole: np.ndarray) -> bool:
    if not hole.any():
        return False
    return float((filled[hole] == 0).all(axis=1).mean()) > 0.05


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
                max_gain: float = MAX_TEXTURE_GAIN, avoid: np.ndarray | None = None
                ) -> tuple[np.ndarray, dict]:
    """Fill ``hole`` (bool) of uint8 RGB ``rgb``: smooth+PatchMatch structure, PatchMatch texture.

    Returns (filled uint8, info). Pixels outside the hole are returned unchanged.
    """
    n = int(hole.sum())
    ps = int(patch_size) if patch_size else auto_patch_size(n)
    pmf = patchmatch(pm, rgb, hole, seed=seed, patch_size=ps, avoid=avoid).astype(np.float32)
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
                        check_cancelled: Callable[[], None] | None = None,
                        avoid: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """Fill a large hole at a reduced scale, then restore full-resolution detail."""
    h, w = hole.shape
    n = int(hole.sum())
    s = max(1.0, (n / float(coarse_hole_px)) ** 0.5)
    sw, sh = max(8, int(round(w / s))), max(8, int(round(h / s)))
    small = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA)
    small_hole = cv2.resize(hole.astype(np.float32), (sw, sh), interpolation=cv2.INTER_AREA) > 1e-3
    small_avoid = None
    if avoid is not None:
        small_avoid = cv2.resize(avoid.astype(np.float32), (sw, sh), interpolation=cv2.INTER_AREA) > 1e-3
    filled_small, info = hybrid_fill(small, small_hole, pm, seed=seed,
                                     patch_size=min(int(patch_size or COARSE_PATCH_SIZE),
                                                    COARSE_PATCH_SIZE), avoid=small_avoid)
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
    if small_avoid is not None and (valid_src & ~small_avoid).sum() > 64:
        valid_src &= ~small_avoid
        bad_full = bad_full | avoid
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
         check_cancelled: Callable[[], None] | None = None,
         avoid: np.ndarray | None = None) -> tuple[np.ndarray, dict]:
    """Fill ``hole`` with the hybrid fill, at full resolution or coarse-to-fine by size;
    no patch is copied from ``avoid`` (bool H x W, see :func:`avoid_mask`)."""
    n = int(hole.sum())
    if n > full_res_max:
        return coarse_to_fine_fill(rgb, hole, pm, seed=seed, patch_size=patch_size,
                                   check_cancelled=check_cancelled, avoid=avoid)
    out, info = hybrid_fill(rgb, hole, pm, seed=seed, patch_size=patch_size, avoid=avoid)
    return out, dict(info, scale=1.0)


# ---------------------------------------------------------------- what must not be copied

SALIENT_MAX_SIDE = 256  # saliency is computed at this scale (objects, not texture)
SALIENT_MAX_FRACTION = 0.2  # the salient objects cover at most about this share of an image
SALIENT_MIN_LEVEL = 0.3  # and are at least this salient
AVOID_MAX_FRACTION = 0.5  # the avoided sources leave at least half of the known pixels
# A removal may also exclude the hole grown by AVOID_RING_PX (the object's edge) and the
# salient parts connected to the hole (AVOID_EXTENT); both are off: on the seeded holes of
# bench/tools.py they raised the mean MAE by 10 % (the true content of a hole is usually
# like what touches it). A removal excludes the salient objects *detached* from the hole.
AVOID_RING_PX = 0
AVOID_EXTENT = False
REMOVE_SALIENT_FRACTION = 0.1  # a removal avoids only the most salient tenth


def _to_rgb_array(image) -> np.ndarray:
    arr = np.asarray(image.convert("RGB") if hasattr(image, "convert") else image)
    return np.ascontiguousarray(arr[..., :3].astype(np.uint8))


def _fallback_saliency(rgb: np.ndarray) -> np.ndarray:
    """Float32 H x W in [0, 1]: OpenCV's spectral residual blended with a centre-surround
    colour contrast (Lab), so a distinct object stands out whatever its size."""
    h, w = rgb.shape[:2]
    s = min(1.0, SALIENT_MAX_SIDE / float(max(h, w)))
    small = cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    lab = cv2.cvtColor(small, cv2.COLOR_RGB2LAB).astype(np.float32)
    side = float(max(small.shape[:2]))
    contrast = np.zeros(small.shape[:2], np.float32)
    for c_sigma, s_sigma in ((1.5, 0.08 * side), (3.0, 0.16 * side)):
        centre = cv2.GaussianBlur(lab, (0, 0), c_sigma)
        surround = cv2.GaussianBlur(lab, (0, 0), s_sigma, borderType=cv2.BORDER_REFLECT)
        contrast = np.maximum(contrast, np.sqrt(((centre - surround) ** 2).sum(axis=2)))
    contrast /= max(float(np.percentile(contrast, 99.5)), 1e-3)
    # structure: an object of edges (a lattice tower, a roofline) in a smooth surround
    grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32)
    edges = np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))
    energy = cv2.GaussianBlur(edges, (0, 0), 2.0)
    structure = np.maximum(energy - cv2.GaussianBlur(energy, (0, 0), 0.12 * side,
                                                     borderType=cv2.BORDER_REFLECT), 0.0)
    structure /= max(float(np.percentile(structure, 99.5)), 1e-3)
    sal = np.clip(np.maximum(contrast, structure), 0.0, 1.0)
    try:
        sr = cv2.saliency.StaticSaliencySpectralResidual_create()
        ok, m = sr.computeSaliency(cv2.cvtColor(small, cv2.COLOR_RGB2BGR))
        if ok:
            m = cv2.GaussianBlur(m.astype(np.float32), (0, 0), 2.0)
            m /= max(float(m.max()), 1e-6)
            sal = 0.7 * sal + 0.3 * m
    except Exception:  # noqa: BLE001 - contrib module missing: the contrast alone
        pass
    return cv2.resize(sal.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)


def saliency(image) -> np.ndarray:
    """Saliency float32 H x W in [0, 1]: ``imagent.tools.vision.saliency`` when it loads,
    else the OpenCV fallback above."""
    rgb = _to_rgb_array(image)
    try:
        from imagent.tools import vision  # noqa: PLC0415 - optional, loaded on first use

        sal = np.asarray(vision.saliency(rgb), np.float32)
        if sal.shape == rgb.shape[:2] and np.isfinite(sal).all():
            return np.clip(sal, 0.0, 1.0)
    except Exception:  # noqa: BLE001 - module or its model files missing: the fallback
        pass
    return _fallback_saliency(rgb)


def salient_regions(image, *, exclude: np.ndarray | None = None, level: float | None = None,
                    max_fraction: float = SALIENT_MAX_FRACTION) -> np.ndarray:
    """Bool H x W: the salient objects of ``image`` (outside ``exclude``).

    Thresholded at ``level`` (default: the saliency's ``1 - max_fraction`` quantile, but
    at least ``SALIENT_MIN_LEVEL`` and at most mean + 1.5 std), so the salient part covers at
    most about ``max_fraction`` of the image: objects, not the whole scene."""
    rgb = _to_rgb_array(image)
    sal = saliency(rgb)
    if exclude is not None:
        sal = np.where(exclude, 0.0, sal)
    if level is None:
        q = float(np.quantile(sal, 1.0 - max_fraction))
        level = max(SALIENT_MIN_LEVEL, min(q, float(sal.mean() + 1.5 * sal.std())))
    return sal > level


def _vision_boxes(rgb: np.ndarray, kinds: tuple[str, ...] = ("faces", "text_boxes")
                  ) -> list[tuple[int, int, int, int]]:
    """Face and/or text boxes from ``imagent.tools.vision`` (grown), or none without it."""
    boxes: list[tuple[int, int, int, int]] = []
    try:
        from imagent.tools import vision  # noqa: PLC0415 - optional, loaded on first use
    except Exception:  # noqa: BLE001 - not there (yet): saliency alone
        return boxes
    from PIL import Image  # noqa: PLC0415

    pil = Image.fromarray(rgb)
    for fn, grow in (("faces", 0.25), ("text_boxes", 0.15)):
        if fn not in kinds:
            continue
        try:
            found = getattr(vision, fn)(pil)
        except Exception:  # noqa: BLE001 - a model file missing: skip that detector
            continue
        for item in found or []:
            x0, y0, x1, y1 = (float(v) for v in getattr(item, "box", item))
            gx, gy = grow * (x1 - x0) + 2, grow * (y1 - y0) + 2
            boxes.append((int(x0 - gx), int(y0 - gy), int(np.ceil(x1 + gx)), int(np.ceil(y1 + gy))))
    return boxes


def _detached(mask: np.ndarray, hole: np.ndarray, grow: int) -> np.ndarray:
    """The parts (connected components) of ``mask`` that stay ``grow`` px clear of ``hole``."""
    if not mask.any():
        return mask
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    near = cv2.dilate(hole.astype(np.uint8), k) > 0
    n, lab = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
    touching = np.unique(lab[near & mask])
    return mask & ~np.isin(lab, touching[touching > 0])


def removal_avoid(image, hole: np.ndarray, *, max_fraction: float = AVOID_MAX_FRACTION
                  ) -> np.ndarray:
    """Bool H x W: what a removal's fill must not copy -- only what is clearly an object
    and stays clear of the hole: faces (``imagent.tools.vision``). Textured background,
    text (the detector also marks coin lettering and the like) and whatever touches the hole
    stay sources (the true content of a hole is usually like its surroundings: excluding
    salient background or text raised the MAE of ``bench/tools.py``). Pixels of ``hole`` are
    included."""
    rgb = _to_rgb_array(image)
    hole = np.asarray(hole) > 0
    h, w = hole.shape
    out = hole.copy()
    boxes = np.zeros((h, w), bool)
    for x0, y0, x1, y1 in _vision_boxes(rgb, ("faces",)):
        boxes[max(0, y0):max(0, y1), max(0, x0):max(0, x1)] = True
    boxes = _detached(boxes, hole, max(2, int(round(0.01 * max(h, w)))))
    if (boxes & ~hole).sum() <= max_fraction * max(1, int((~hole).sum())):
        out |= boxes
    return out


def avoid_mask(image, hole: np.ndarray, *, removed: bool = True, vision: bool = True,
               salient_fraction: float | None = None,
               max_fraction: float = AVOID_MAX_FRACTION) -> np.ndarray:
    """Bool H x W: the pixels a fill of ``hole`` must not copy from -- the one rule that
    ``remove`` and ``outpaint`` share.

    * salient objects (:func:`salient_regions`, grown a few px so no patch straddles one);
    * faces and text (``imagent.tools.vision`` when it loads);
    * with ``removed`` (a removal): only the salient objects detached from the hole (the
      most salient ``REMOVE_SALIENT_FRACTION``); with ``AVOID_RING_PX`` / ``AVOID_EXTENT``
      also the removed object itself (its edge, its connected extent).

    Pixels of ``hole`` are included (they are no source either). When the avoided part
    would leave less than ``1 - max_fraction`` of the known pixels, the salient part
    is thinned (highest saliency kept) so the fill always has sources."""
    rgb = _to_rgb_array(image)
    hole = np.asarray(hole) > 0
    h, w = hole.shape
    known_n = max(1, int((~hole).sum()))
    sal = saliency(rgb)
    sal = np.where(hole, 0.0, sal)
    frac = salient_fraction or (REMOVE_SALIENT_FRACTION if removed else SALIENT_MAX_FRACTION)
    q = float(np.quantile(sal[~hole], 1.0 - frac)) if (~hole).any() else 1.0
    level = max(SALIENT_MIN_LEVEL, min(q, float(sal.mean() + 1.5 * sal.std())))
    grow = max(2, int(round(0.01 * max(h, w))))
    kern = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    out = hole.copy()
    if removed and AVOID_RING_PX:
        ring = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * AVOID_RING_PX + 1,) * 2)
        out |= cv2.dilate(hole.astype(np.uint8), ring) > 0
    for _ in range(8):
        sal_m = sal > level
        avoid = out.copy()
        if sal_m.any():
            n, lab = cv2.connectedComponents((sal_m | out).astype(np.uint8), connectivity=8)
            touching = np.unique(lab[out])
            attached = np.isin(lab, touching[touching > 0]) & sal_m
            if removed and AVOID_EXTENT:  # the removed object's connected extent
                avoid |= attached
            elif removed:  # objects elsewhere only: what continues into the hole stays a source
                sal_m = sal_m & ~attached
        avoid |= cv2.dilate(sal_m.astype(np.uint8), kern) > 0
        if vision:
            for x0, y0, x1, y1 in _vision_boxes(rgb):
                avoid[max(0, y0):max(0, y1), max(0, x0):max(0, x1)] = True
        if (avoid & ~hole).sum() <= max_fraction * known_n or level >= 0.95:
            return avoid
        level = min(0.95, level + 0.1)
        vision = False  # boxes do not shrink: drop them before thinning further
    return out


OBJECT_TYPICAL_PERCENTILE = 30  # "typical" edge density: the quieter part of the image (a sky), so
# that a scene of many structures (towers on a launch pad) does not raise the bar over them
OBJECT_EDGE_FACTOR = 2.5  # edge density this many times the image's typical: a structure
OBJECT_SALIENT_QUANTILE = 0.9  # the most salient tenth (and above SALIENT_MIN_LEVEL) ...
OBJECT_MAX_BLOB = 0.08  # ... in compact parts of at most this share of the image


def object_mask(image, *, subject: bool = True) -> np.ndarray:
    """Bool H x W: what an outpaint must not copy into the new area -- objects, not
    background texture: structures of edges denser than the image's typical texture (a
    lattice tower in the sky), compact strongly salient blobs, the main subject and people
    (``imagent.tools.vision``, when confident), faces and text. Grown a little so that no
    patch straddles an object's edge."""
    rgb = _to_rgb_array(image)
    h, w = rgb.shape[:2]
    s = min(1.0, SALIENT_MAX_SIDE / float(max(h, w)))
    sw, sh = max(1, round(w * s)), max(1, round(h * s))
    small = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA)
    grey = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32)
    mag = np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1))
    dens = cv2.GaussianBlur(mag, (0, 0), max(1.5, 0.015 * max(sw, sh)))
    typical = max(float(np.percentile(dens, OBJECT_TYPICAL_PERCENTILE)), 4.0)
    obj = dens > OBJECT_EDGE_FACTOR * typical
    # a long flat run of edges across the image (a horizon, a table's edge) is scenery
    run = cv2.getStructuringElement(cv2.MORPH_RECT, (max(3, int(0.4 * sw)) | 1, 1))
    obj &= ~(cv2.morphologyEx(obj.astype(np.uint8), cv2.MORPH_OPEN, run) > 0)
    sal = cv2.resize(saliency(rgb), (sw, sh), interpolation=cv2.INTER_AREA)
    level = max(SALIENT_MIN_LEVEL, float(np.quantile(sal, OBJECT_SALIENT_QUANTILE)))
    blobs = sal > level
    n, lab, stats, _ = cv2.connectedComponentsWithStats(blobs.astype(np.uint8), connectivity=8)
    small_parts = np.flatnonzero(stats[:, cv2.CC_STAT_AREA] <= OBJECT_MAX_BLOB * sw * sh)
    obj |= np.isin(lab, small_parts[small_parts > 0])
    if subject:
        try:
            from PIL import Image  # noqa: PLC0415

            from imagent.tools import vision  # noqa: PLC0415 - optional, loaded on first use

            pil = Image.fromarray(small)
            m, conf = vision.main_subject(pil)
            if conf >= 0.5 and 0.005 < float((np.asarray(m) > 0.5).mean()) < 0.5:
                obj |= cv2.resize(np.asarray(m, np.float32), (sw, sh)) > 0.5
            obj |= cv2.resize(np.asarray(vision.person_mask(pil), np.float32), (sw, sh)) > 0.5
        except Exception:  # noqa: BLE001 - module or model files missing: the cues above
            pass
    grow = max(1, int(round(0.01 * max(sw, sh))))
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    obj = cv2.dilate(obj.astype(np.uint8), k) > 0
    out = cv2.resize(obj.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST) > 0
    for x0, y0, x1, y1 in _vision_boxes(rgb):
        out[max(0, y0):max(0, y1), max(0, x0):max(0, x1)] = True
    return out


# ---------------------------------------------------------------- the object-copy score

def object_copy_match(result, hole: np.ndarray, *, salient: np.ndarray | None = None,
                      patch: int = 24, stride: int = 12, max_side: int = 512,
                      min_std: float = 8.0, min_salient: float = 0.3) -> dict:
    """The best normalised cross-correlation between a patch of the fill and a salient
    region elsewhere in the image (see :func:`object_copy_score`); with where they are.

    Returns ``{"score", "fill_xy", "source_xy", "patches"}`` (positions in the full-size
    image, top-left corners; ``None`` when no textured fill patch or no salient source)."""
    rgb = _to_rgb_array(result)
    hole = np.asarray(hole) > 0
    h, w = hole.shape
    if salient is None:
        salient = salient_regions(rgb, exclude=hole)
    s = min(1.0, max_side / float(max(h, w)))
    sw, sh = max(1, round(w * s)), max(1, round(h * s))
    img = cv2.resize(rgb, (sw, sh), interpolation=cv2.INTER_AREA).astype(np.float32)
    hs = cv2.resize(hole.astype(np.float32), (sw, sh), interpolation=cv2.INTER_AREA)
    ss = cv2.resize(np.asarray(salient, np.float32), (sw, sh), interpolation=cv2.INTER_AREA)
    none = {"score": 0.0, "fill_xy": None, "source_xy": None, "patches": 0}
    p = int(patch)
    if sh < p or sw < p:
        return none
    grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)

    def box_mean(a):  # mean over the p x p window with top-left corner (y, x)
        return cv2.boxFilter(a, -1, (p, p), anchor=(0, 0), normalize=True,
                             borderType=cv2.BORDER_CONSTANT)[:sh - p + 1, :sw - p + 1]

    m1, m2 = box_mean(grey), box_mean(grey * grey)
    std = np.sqrt(np.maximum(m2 - m1 * m1, 0.0))
    in_hole, in_sal = box_mean(hs), box_mean(ss)
    # sources: windows wholly outside the hole, mostly salient, textured
    src_ok = (in_hole <= 1e-3) & (in_sal >= min_salient) & (std >= min_std)
    if not src_ok.any():
        return none
    ys, xs = np.nonzero(src_ok)
    y0, y1, x0, x1 = ys.min(), ys.max() + p, xs.min(), xs.max() + p
    search = np.ascontiguousarray(img[y0:y1, x0:x1])
    ok_crop = src_ok[y0:y1 - p + 1, x0:x1 - p + 1]
    best = none
    n = 0
    for fy in range(0, sh - p + 1, stride):
        for fx in range(0, sw - p + 1, stride):
            if in_hole[fy, fx] < 0.9 or std[fy, fx] < min_std:
                continue
            n += 1
            tpl = np.ascontiguousarray(img[fy:fy + p, fx:fx + p])
            r = cv2.matchTemplate(search, tpl, cv2.TM_CCOEFF_NORMED)
            r = np.where(ok_crop, r, -1.0)
            k = int(np.argmax(r))
            v = float(r.flat[k])
            if v > best["score"]:
                ry, rx = divmod(k, r.shape[1])
                best = {"score": v, "fill_xy": (round(fx / s), round(fy / s)),
                        "source_xy": (round((rx + x0) / s), round((ry + y0) / s))}
    return dict(best, score=round(max(0.0, best["score"]), 4), patches=n)


def object_copy_score(result, hole: np.ndarray, *, salient: np.ndarray | None = None,
                      **kw) -> float:
    """How much the fill of ``hole`` copied an object: the best normalised cross-correlation
    (0..1) between any textured fill patch (24 px at a working scale of 512 px on the long
    side, on a 12 px grid) and any salient, textured window wholly outside the hole.

    ``salient`` (bool H x W) marks the objects; default :func:`salient_regions` of the
    result outside the hole. About 0.9 and above means a patch of the fill is a copy of
    an object; natural texture continuations score lower."""
    return float(object_copy_match(result, hole, salient=salient, **kw)["score"])
