"""remove: erase the masked region and fill it from the surrounding texture (PatchMatch).

Cost follows the region: PatchMatch runs on a crop around the mask with a context
margin, and the fill is pasted back through the mask feathered *inward*, so every
pixel where the mask is 0 is bit-identical to the input. Seeded: the same seed
gives the same output. OpenCV Telea is the fallback when the PatchMatch library
cannot load (``result.backend = "opencv-telea"``, and the message says so).
"""

from __future__ import annotations

import time
from typing import Literal

import cv2
import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from imagent.errors import MaskError, ModelUnavailableError
from imagent.tools import masks as M
from imagent.tools.types import ToolResult, ToolState

NAME = "remove"
DESCRIPTION = (
    "Remove what the current mask covers and fill the hole with the surrounding texture "
    "(PatchMatch). Needs a mask (ground + build_mask; grow it a few px with dilate so the "
    "object's edge is covered). Pixels outside the mask are not changed.")

MIN_CONTEXT_PX = 16


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed: int = Field(0, ge=0, le=2**32 - 1, description="Random seed of the fill; the same seed "
                                                          "gives the same result.")
    backend: Literal["auto", "patchmatch", "telea"] = Field(
        "auto", description="Fill method: 'patchmatch' (texture copy, best), 'telea' (smooth "
                            "diffusion, for thin scratches), 'auto' = patchmatch when available.")
    patch_size: int = Field(5, ge=1, le=32, description="PatchMatch patch radius in px: larger "
                                                        "follows larger structures but is slower.")
    # A tight ring of context: a wide one lets PatchMatch copy salient things (faces,
    # text) from further away into the hole. Tuned properly in the embedded-tools work.
    margin: float = Field(0.25, ge=0.0, le=4096.0,
                          description="Context around the mask used as the texture source: below "
                                      "1 = fraction of the region's larger side, 1 and above = "
                                      "pixels (at least 16 px).")
    feather: int = Field(2, ge=0, le=64, description="Blend the fill over this many px inside "
                                                     "the mask edge (outside stays untouched).")


def patchmatch_module():
    """The ``patch_match`` module when its native library loads, else None."""
    try:
        from patchmatch import patch_match
    except Exception:  # noqa: BLE001 - any import failure means "not available"
        return None
    return patch_match if getattr(patch_match, "patchmatch_available", False) else None


def inpaint_region(rgb: np.ndarray, hole: np.ndarray, *, backend: str = "auto", seed: int = 0,
                   patch_size: int = 5) -> tuple[np.ndarray, str, str]:
    """Fill ``hole`` (bool H x W) of uint8 RGB ``rgb``; returns (filled, backend, note)."""
    pm = patchmatch_module() if backend in ("auto", "patchmatch") else None
    if backend == "patchmatch" and pm is None:
        raise ModelUnavailableError("the PatchMatch library (pypatchmatch) could not be loaded",
                                    hint="reinstall pypatchmatch, or use backend='telea'")
    hole_u8 = np.ascontiguousarray(hole.astype(np.uint8) * 255)
    if pm is not None:
        pm.set_random_seed(int(seed))
        filled = pm.inpaint(np.ascontiguousarray(rgb), hole_u8, patch_size=int(patch_size))
        return filled, "patchmatch", ""
    radius = max(3, int(patch_size))
    filled = cv2.inpaint(np.ascontiguousarray(rgb), hole_u8, radius, cv2.INPAINT_TELEA)
    note = "" if backend == "telea" else " (PatchMatch is unavailable: used the OpenCV Telea fallback)"
    return filled, "opencv-telea", note


def remove_region(image: Image.Image, mask: np.ndarray, *, seed: int = 0, backend: str = "auto",
                  patch_size: int = 5, margin: float = 0.25,
                  feather: int = 2) -> tuple[Image.Image, dict]:
    """Remove the masked region of ``image``. Returns (new image, info dict)."""
    t0 = time.perf_counter()
    m = M.check_mask(mask, image, allow_empty=False, allow_full=False)
    hole_full = m > 0
    if hole_full.all():
        raise MaskError("the mask covers every pixel, so there is nothing to copy texture from",
                        hint="select a smaller region; use global_edit for whole-image changes")
    w, h = image.size
    # PatchMatch needs whole patches of known pixels around the hole at every pyramid
    # level; with a thin ring of context it leaves the hole black. Keep >= 4 patches.
    min_ctx = max(MIN_CONTEXT_PX, 4 * (2 * int(patch_size) + 1))
    x0, y0, x1, y1 = M.crop_box_around(m, (w, h), margin, min_margin=min_ctx)
    if hole_full[y0:y1, x0:x1].all():  # no source pixels in the crop: use the whole image
        x0, y0, x1, y1 = 0, 0, w, h
    rgb = np.asarray(image.convert("RGB"), dtype=np.uint8)
    crop = np.ascontiguousarray(rgb[y0:y1, x0:x1])
    cm = m[y0:y1, x0:x1]
    hole = cm > 0
    filled, used, note = inpaint_region(crop, hole, backend=backend, seed=seed,
                                        patch_size=patch_size)
    if used == "patchmatch" and _left_black(crop, filled, hole) and (x1 - x0, y1 - y0) != (w, h):
        # too little context in the crop: retry once with the whole image as the source
        x0, y0, x1, y1 = 0, 0, w, h
        crop, cm = rgb, m
        hole = cm > 0
        filled, used, note = inpaint_region(crop, hole, backend=backend, seed=seed,
                                            patch_size=patch_size)
    if used == "patchmatch" and _left_black(crop, filled, hole):
        raise MaskError(f"PatchMatch found no source texture for the {hole.sum()} px hole "
                        f"(patch_size={patch_size}); the mask leaves too little of the image",
                        hint="use a smaller mask or a smaller patch_size, or backend='telea'")
    alpha = M.feather(cm, feather, where="inside") if feather else cm
    alpha = np.where(hole, alpha, 0.0).astype(np.float32)[..., None]
    blended = np.round(crop.astype(np.float32) * (1.0 - alpha) + filled.astype(np.float32) * alpha)
    blended = np.clip(blended, 0, 255).astype(np.uint8)
    out = rgb.copy()
    out[y0:y1, x0:x1] = np.where(hole[..., None], blended, crop)
    info = {"backend": used, "note": note, "hole_fraction": round(float(hole_full.mean()), 4),
            "crop": [x0, y0, x1, y1], "crop_size": [x1 - x0, y1 - y0],
            "patch_size": int(patch_size), "seed": int(seed),
            "elapsed_ms": round((time.perf_counter() - t0) * 1000.0, 1)}
    return Image.fromarray(out), info


def _left_black(src: np.ndarray, filled: np.ndarray, hole: np.ndarray) -> bool:
    """PatchMatch's failure mode: hole pixels left (0, 0, 0) where the source has no black."""
    n = int(hole.sum())
    if n == 0:
        return False
    black_fill = float((filled[hole] == 0).all(axis=1).mean())
    known = ~hole
    black_src = float((src[known] == 0).all(axis=1).mean()) if known.any() else 0.0
    return black_fill > 0.05 and black_fill > 4 * black_src


def run(args: Args, state: ToolState) -> ToolResult:
    if state.mask is None:
        raise MaskError("remove needs a mask, and there is none",
                        hint="select the object first: ground(phrase=...) then build_mask()")
    state.emit(kind="progress", tool=NAME, message="filling the region")
    out, info = remove_region(state.image, state.mask, seed=args.seed, backend=args.backend,
                              patch_size=args.patch_size, margin=args.margin, feather=args.feather)
    metrics = {k: v for k, v in info.items() if k not in ("note", "backend")}
    metrics["backend"] = info["backend"]
    cw, ch = info["crop_size"]
    return ToolResult(image=out, backend=info["backend"], metrics=metrics,
                      message=f"removed {info['hole_fraction']:.1%} of the image with "
                              f"{info['backend']} on a {cw}x{ch} crop{info['note']}")
