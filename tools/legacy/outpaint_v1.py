"""outpaint impl 1: the embedded outpaint as imagent 0.1.0 (commit 5fa86c6) made it.

0.1.0 filled each new side outward in PatchMatch tiles at most ``TILE_PX`` deep, each copying
from a band of the known image three times the tile's depth, and blended the seam with the
mirrored edge over ``SEAM_PX``. Impl 2 (``tools/outpaint.py``) copies only from a band next to
the border minus its objects, synthesizes structure and texture past PatchMatch's reach and
works at <= 1.5 MP, so its pixels are entirely different. This module exists only so that
calls stored by 0.1.0 (``impl: 1``, see ``tools/registry.py`` ``IMPLS``) replay
bit-identically: the code below is taken verbatim from ``git show 5fa86c6:tools/outpaint.py``
(``outpaint_image`` and its helpers). It uses today's ``patchfill.fill`` without ``avoid``,
which runs exactly 0.1.0's fill (the avoid mask is the only change to those functions since),
and ``remove.patchmatch_module``, unchanged. The reflect fill (also the canvas of the diffusion
backend) is the same in both implementations. Do not change this code; new behaviour belongs in
``tools/outpaint.py``. ``tests/tools/test_replay_compat.py`` checks it against images made by
the 0.1.0 code itself (``tests/tools/data/replay_v1``).
"""

from __future__ import annotations

import time

import numpy as np
from PIL import Image

from imagent.errors import ModelUnavailableError
from imagent.tools import patchfill as PF
from imagent.tools.backends import EMBEDDED
from imagent.tools.remove import patchmatch_module

SIDES: tuple[str, ...] = ("left", "right", "top", "bottom")
SEAM_PX = 6
TILE_PX = 160  # each side is filled outward in tiles at most this deep


def _fill_box(canvas: np.ndarray, known: np.ndarray, box: tuple[int, int, int, int],
              pm, seed: int, check_cancelled=None) -> dict:
    """Fill the unknown pixels of canvas[box] in place from its known ones (hybrid fill)."""
    x0, y0, x1, y1 = box
    crop = np.ascontiguousarray(canvas[y0:y1, x0:x1])
    hole = ~known[y0:y1, x0:x1]
    if not hole.any() or hole.all():
        return {}
    filled, info = PF.fill(crop, hole, pm, seed=seed, check_cancelled=check_cancelled)
    canvas[y0:y1, x0:x1][hole] = filled[hole]
    known[y0:y1, x0:x1] = True
    return info


def _side_tiles(side: str, depth: int, rect: tuple[int, int, int, int], size: tuple[int, int],
                tile: int) -> list[tuple[int, int, int, int]]:
    """The boxes that fill one side outward, each ``<= tile`` px of new area deep.

    Each box also holds a band of already-known pixels next to it (three times the
    tile depth, at least 48 px), the texture source. ``rect`` is the known rectangle
    when the side starts. Left/right tiles span its rows; top/bottom tiles span the
    full new width (corners included).
    """
    x0, y0, x1, y1 = rect
    nw, nh = size
    out = []
    done = 0
    while done < depth:
        step = min(tile, depth - done)
        band = max(48, 3 * step)
        if side == "left":
            edge = x0 - done
            out.append((edge - step, y0, min(x1, edge + band), y1))
        elif side == "right":
            edge = x1 + done
            out.append((max(x0, edge - band), y0, edge + step, y1))
        elif side == "top":
            edge = y0 - done
            out.append((0, edge - step, nw, min(y1, edge + band)))
        else:
            edge = y1 + done
            out.append((0, max(y0, edge - band), nw, edge + step))
        done += step
    return out


def outpaint_image(image: Image.Image, add: dict[str, int], *, seed: int = 0,
                   check_cancelled=None, fill: str = "auto"
                   ) -> tuple[Image.Image, np.ndarray, dict]:
    """Extend ``image`` by ``add`` px per side. Returns (image, new-area mask, info).

    ``fill`` is the embedded algorithm: ``"reflect"`` skips PatchMatch and keeps the mirrored
    edge (also the canvas a generative fill starts from); ``"patchmatch"`` needs the library
    (``ModelUnavailableError`` without it); ``"auto"`` = PatchMatch when it loads, else reflect.
    ``info["algorithm"]`` names what ran."""
    t0 = time.perf_counter()
    rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    h, w = rgb.shape[:2]
    L, R, T, B = add["left"], add["right"], add["top"], add["bottom"]
    nw, nh = w + L + R, h + T + B
    reflected = np.pad(rgb, ((T, B), (L, R), (0, 0)), mode="symmetric")
    new_area = np.ones((nh, nw), bool)
    new_area[T:T + h, L:L + w] = False
    pm = patchmatch_module() if fill != "reflect" else None
    if fill == "patchmatch" and pm is None:
        raise ModelUnavailableError("the PatchMatch library (pypatchmatch) could not be loaded",
                                    hint="reinstall pypatchmatch, or use algorithm='reflect'")
    canvas = reflected.copy()
    if pm is not None:
        known = ~new_area
        tiles = 0
        # left/right on the original rows, then top/bottom on the full new width; each
        # side outward in tiles at most TILE_PX deep, so a large extension stays bounded
        rect = [L, T, L + w, T + h]
        for k, side in enumerate(SIDES):
            if not add[side]:
                continue
            for box in _side_tiles(side, add[side], tuple(rect), (nw, nh), TILE_PX):
                if check_cancelled:
                    check_cancelled()
                _fill_box(canvas, known, box, pm, seed + 7 * k + tiles, check_cancelled)
                tiles += 1
            if side == "left":
                rect[0] = 0
            elif side == "right":
                rect[2] = nw
        backend, note = "patchmatch", ""
        # seam: blend from the mirrored edge (continuous with the original) to the fill,
        # over SEAM_PX inside the new area only
        dist = _distance_from_original(nw, nh, (L, T, L + w, T + h))
        wgt = np.clip(dist / float(SEAM_PX), 0.0, 1.0)[..., None]
        wgt = wgt * wgt * (3 - 2 * wgt)
        mixed = np.round(reflected.astype(np.float32) * (1 - wgt) + canvas.astype(np.float32) * wgt)
        canvas = np.where(new_area[..., None], np.clip(mixed, 0, 255).astype(np.uint8), canvas)
    elif fill == "reflect":
        backend, note = "reflect", ""
    else:
        backend, note = "reflect", " (PatchMatch is unavailable: the new area is a mirror of the edge)"
    canvas[T:T + h, L:L + w] = rgb  # the original, bit-identical at its offset
    info = {"backend": EMBEDDED, "algorithm": backend, "note": note, "new_size": [nw, nh], "added": dict(add),
            "tiles": tiles if pm is not None else 0,
            "offset": [L, T], "new_area_fraction": round(float(new_area.mean()), 4),
            "seed": int(seed), "elapsed_ms": round((time.perf_counter() - t0) * 1000.0, 1)}
    return Image.fromarray(canvas), new_area.astype(np.float32), info


def _distance_from_original(nw: int, nh: int, box: tuple[int, int, int, int]) -> np.ndarray:
    """L-infinity (Chebyshev) distance in px of each pixel from the original rectangle."""
    x0, y0, x1, y1 = box
    xs = np.arange(nw, dtype=np.float32)
    ys = np.arange(nh, dtype=np.float32)
    dx = np.maximum(np.maximum(x0 - xs, xs - (x1 - 1)), 0.0)
    dy = np.maximum(np.maximum(y0 - ys, ys - (y1 - 1)), 0.0)
    return np.maximum(dx[None, :], dy[:, None])


