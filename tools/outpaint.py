"""outpaint: extend the canvas and fill the new area from the image's own texture.

The new canvas starts as a mirror of the edge (reflected fill); PatchMatch then
fills each new strip from a band of the image next to it (so the cost follows the
new area); the seam is blended over a few px *inside the new area only*. The
original pixels stay bit-identical at their new offset. Left/right are filled
first (original rows), then top/bottom across the full new width (corners
included). Without the PatchMatch library the reflected fill is kept and the
result says so (backend "reflect").
"""

from __future__ import annotations

import re
import time
from typing import Literal

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from imagent.errors import ToolArgumentError
from imagent.tools import patchfill as PF
from imagent.tools.remove import patchmatch_module
from imagent.tools.types import ToolResult, ToolState

NAME = "outpaint"
DESCRIPTION = (
    "Extend the picture beyond its borders and fill the new area from the image's own texture. "
    "Give pixels per side (left/right/top/bottom), or percent with sides (e.g. percent=25, "
    "sides=['right'] for 'extend to the right by 25%'), or a target aspect like '16:9'.")

Side = Literal["left", "right", "top", "bottom"]
SIDES: tuple[str, ...] = ("left", "right", "top", "bottom")
MAX_FACTOR = 4.0  # one side may add at most 4x the image's width (left/right) or height
MAX_SIDE_PX = 20_000  # and no side of the result may exceed this
DEFAULT_MAX_PIXELS = 40_000_000
SEAM_PX = 6
TILE_PX = 160  # each side is filled outward in tiles at most this deep


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid")

    left: int = Field(0, ge=0, le=MAX_SIDE_PX, description="Pixels to add on the left.")
    right: int = Field(0, ge=0, le=MAX_SIDE_PX, description="Pixels to add on the right.")
    top: int = Field(0, ge=0, le=MAX_SIDE_PX, description="Pixels to add at the top.")
    bottom: int = Field(0, ge=0, le=MAX_SIDE_PX, description="Pixels to add at the bottom.")
    percent: float | None = Field(None, gt=0.0, le=400.0,
                                  description="Grow each side named in 'sides' by this percent of "
                                              "the image width (left/right) or height (top/bottom).")
    aspect: str | None = Field(None, max_length=20,
                               description="Grow to this aspect ratio, e.g. '16:9' (width:height), "
                                           "on the sides named in 'sides' (default: both sides of "
                                           "the axis that grows).")
    sides: list[Side] | None = Field(None, description="Which sides 'percent' or 'aspect' apply to.")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="Random seed of the fill.")
    max_pixels: int = Field(DEFAULT_MAX_PIXELS, ge=1, le=400_000_000,
                            description="Refuse results larger than this many pixels.")


def parse_aspect(text: str) -> float:
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*[:x/]\s*(\d+(?:\.\d+)?)\s*", text or "")
    if not m or float(m.group(1)) <= 0 or float(m.group(2)) <= 0:
        raise ToolArgumentError(f"outpaint: aspect {text!r} is not a ratio like '16:9'",
                                hint="give width:height, e.g. '16:9', '4:3' or '1:1'")
    return float(m.group(1)) / float(m.group(2))


def plan_extension(size: tuple[int, int], *, left: int = 0, right: int = 0, top: int = 0,
                   bottom: int = 0, percent: float | None = None, aspect: str | None = None,
                   sides: list[str] | None = None,
                   max_pixels: int = DEFAULT_MAX_PIXELS) -> dict[str, int]:
    """Pixels to add per side, checked against the limits."""
    w, h = size
    add = {"left": int(left), "right": int(right), "top": int(top), "bottom": int(bottom)}
    for k, v in add.items():
        if v < 0:
            raise ToolArgumentError(f"outpaint: {k}={v} is negative", hint="give pixels >= 0")
    if sides is not None:
        bad = [s for s in sides if s not in SIDES]
        if bad:
            raise ToolArgumentError(f"outpaint: unknown side(s) {bad}", hint="use " + ", ".join(SIDES))
    if percent is not None and aspect is not None:
        raise ToolArgumentError(f"outpaint: give percent ({percent}) or aspect ({aspect!r}), "
                                "not both", hint="drop one of them")
    if percent is not None:
        if not sides:
            raise ToolArgumentError(f"outpaint: percent={percent} needs sides, e.g. ['right']",
                                    hint="say which sides grow: sides=['left','right'] ...")
        for s in sides:
            if add[s]:
                raise ToolArgumentError(f"outpaint: side {s!r} has both {s}={add[s]} px and "
                                        f"percent={percent}", hint="give pixels or percent")
            add[s] = int(round(percent / 100.0 * (w if s in ("left", "right") else h)))
    elif aspect is not None:
        if any(add.values()):
            raise ToolArgumentError(f"outpaint: give aspect ({aspect!r}) or pixels "
                                    f"({ {k: v for k, v in add.items() if v} }), not both",
                                    hint="drop one of them")
        ratio = parse_aspect(aspect)
        if abs(w / h - ratio) < 1e-3 or round(h * ratio) == w:
            raise ToolArgumentError(f"outpaint: the {w}x{h} image already has aspect {aspect!r}",
                                    hint="nothing to extend")
        if w / h < ratio:  # too narrow: add width
            extra, axis = int(round(h * ratio)) - w, ("left", "right")
        else:  # too wide: add height
            extra, axis = int(round(w / ratio)) - h, ("top", "bottom")
        chosen = [s for s in (sides or axis) if s in axis]
        if not chosen:
            raise ToolArgumentError(f"outpaint: aspect {aspect!r} needs the image to grow on "
                                    f"{' or '.join(axis)}, but sides={sides}",
                                    hint=f"use sides among {list(axis)} or leave sides out")
        share = extra // len(chosen)
        for i, s in enumerate(chosen):
            add[s] = share + (extra - share * len(chosen) if i == 0 else 0)
    elif sides:
        raise ToolArgumentError(f"outpaint: sides={sides} needs percent or aspect",
                                hint="e.g. percent=25, sides=['right']")
    if not any(add.values()):
        raise ToolArgumentError("outpaint: nothing to extend (all sides are 0)",
                                hint="give pixels per side, percent with sides, or an aspect")
    for s, v in add.items():
        dim, dname = (w, "width") if s in ("left", "right") else (h, "height")
        limit = int(max(MAX_FACTOR * dim, 64))
        if v > limit:
            raise ToolArgumentError(f"outpaint: {s}={v} px is too much: at most "
                                    f"{MAX_FACTOR:g}x the image {dname} ({limit} px) per side",
                                    hint="extend in smaller steps, or upscale first")
    nw, nh = w + add["left"] + add["right"], h + add["top"] + add["bottom"]
    if nw > MAX_SIDE_PX or nh > MAX_SIDE_PX:
        raise ToolArgumentError(f"outpaint: the result would be {nw}x{nh}; each side is limited "
                                f"to {MAX_SIDE_PX} px", hint="request a smaller extension")
    if nw * nh > max_pixels:
        raise ToolArgumentError(f"outpaint: the result would be {nw}x{nh} = {nw * nh:,} pixels, "
                                f"over max_pixels={max_pixels:,}",
                                hint="request a smaller extension or raise max_pixels")
    return add


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
                   check_cancelled=None) -> tuple[Image.Image, np.ndarray, dict]:
    """Extend ``image`` by ``add`` px per side. Returns (image, new-area mask, info)."""
    t0 = time.perf_counter()
    rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    h, w = rgb.shape[:2]
    L, R, T, B = add["left"], add["right"], add["top"], add["bottom"]
    nw, nh = w + L + R, h + T + B
    reflected = np.pad(rgb, ((T, B), (L, R), (0, 0)), mode="symmetric")
    new_area = np.ones((nh, nw), bool)
    new_area[T:T + h, L:L + w] = False
    pm = patchmatch_module()
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
    else:
        backend, note = "reflect", " (PatchMatch is unavailable: the new area is a mirror of the edge)"
    canvas[T:T + h, L:L + w] = rgb  # the original, bit-identical at its offset
    info = {"backend": backend, "note": note, "new_size": [nw, nh], "added": dict(add),
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


def run(args: Args, state: ToolState) -> ToolResult:
    add = plan_extension(state.image.size, left=args.left, right=args.right, top=args.top,
                         bottom=args.bottom, percent=args.percent, aspect=args.aspect,
                         sides=list(args.sides) if args.sides else None,
                         max_pixels=args.max_pixels)
    state.emit(kind="progress", tool=NAME, message="filling the new area")
    out, new_mask, info = outpaint_image(state.image, add, seed=args.seed,
                                         check_cancelled=state.check_cancelled)
    grown = ", ".join(f"{k} +{v}px" for k, v in add.items() if v)
    w, h = state.image.size
    metrics = {k: v for k, v in info.items() if k != "note"}
    return ToolResult(image=out, mask=new_mask, backend=info["backend"], metrics=metrics,
                      message=f"extended {w}x{h} to {out.size[0]}x{out.size[1]} ({grown}) with "
                              f"{info['backend']}{info['note']}")
