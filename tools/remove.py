"""remove: erase the masked region and fill it: diffusion inpainting or LaMa when a model
manager is configured (``state.models``), else from the surrounding texture (PatchMatch).

Cost follows the region: PatchMatch runs on a crop around the mask with a context
margin, and the fill is pasted back through the mask feathered *inward*, so every
pixel where the mask is 0 is bit-identical to the input. Seeded: the same seed
gives the same output.

Backends (``tools/backends`` ``BACKENDS["remove"]``, resolved by ``resolve_backend``):
``embedded`` (no model), ``diffusion`` (role ``inpaint``: PowerPaint task prompts when the
checkpoint has them, context-fill prompting otherwise), ``lama`` (role ``lama``); ``auto`` =
diffusion when its model is available, else LaMa, else embedded. The embedded engine has two
algorithms (``algorithm``): ``patchmatch`` (texture copy) and ``telea`` (OpenCV's smooth fill,
for thin scratches); ``auto`` = PatchMatch, with Telea as the stated fallback when the PatchMatch
library cannot load (the message says so). The stored call names the backend and the algorithm
that ran (``result.extra["resolved_args"]``), so a replay runs the same one, or fails with
``ModelUnavailableError`` where it is missing. An explicit ``diffusion``/``lama`` without its
model is that error (exit code 3), never a silent fallback. ``result.backend`` is the engine
("embedded", "diffusion", "lama"); ``metrics["algorithm"]`` / ``metrics["pipeline"]`` say which
algorithm or pipeline ran.

``impl`` (``tools/registry.py`` ``IMPLS``) names the embedded PatchMatch fill: 2 (the default)
copies no patch from a face clear of the hole (``patchfill.removal_avoid``); 1 is imagent
0.1.0's, which could copy from anywhere in the crop: the same code path with ``avoid_faces``
off. A call stored without ``impl`` replays with 1. Telea and the model backends are the same in
both.
"""

from __future__ import annotations

import time
from typing import Any, Literal

import cv2
import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, model_validator

from imagent.errors import MaskError, ModelUnavailableError
from imagent.tools import masks as M
from imagent.tools import patchfill as PF
from imagent.tools.backends import (EMBEDDED, backend_for_algorithm, backend_literal, engine_role,
                                    resolve_backend)
from imagent.tools.models import step_reporter
from imagent.tools.registry import impl_arg
from imagent.tools.types import ToolResult, ToolState

NAME = "remove"
Impl = impl_arg(NAME)  # the stored call's implementation (tools/registry.py IMPLS)
DESCRIPTION = (
    "Remove what the current mask covers and fill the hole: with diffusion inpainting (or "
    "LaMa) when the model profile is on, else with the surrounding texture (PatchMatch). Needs "
    "a mask (ground + build_mask; grow it a few px with dilate so the object's edge is "
    "covered). Pixels outside the mask are not changed. 'prompt' (diffusion only) says what "
    "to fill with; empty = continue the surroundings.")

MIN_CONTEXT_PX = 16


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid")

    seed: int = Field(0, ge=0, le=2**32 - 1, description="Random seed of the fill; the same seed "
                                                          "gives the same result.")
    backend: backend_literal(NAME) = Field(  # type: ignore[valid-type]
        "auto", description="Engine: 'embedded' (no model; see algorithm), 'diffusion' "
                            "(diffusion inpainting model), 'lama' (LaMa model); 'auto' = "
                            "diffusion when its model is available, else LaMa, else embedded.")
    algorithm: Literal["auto", "patchmatch", "telea"] = Field(
        "auto", description="backend='embedded' only: 'patchmatch' (texture copy) or 'telea' "
                            "(smooth fill, for thin scratches); 'auto' = patchmatch, telea when "
                            "the PatchMatch library cannot load. Naming one with backend='auto' "
                            "chooses the embedded backend.")
    patch_size: int | None = Field(None, ge=1, le=32,
                                   description="PatchMatch patch radius in px: larger follows "
                                               "larger structures but is slower; None = chosen "
                                               "by the hole size.")
    # A tight ring of context: a wide one lets PatchMatch copy salient things (faces,
    # text) from further away into the hole. Tuned properly in the embedded-tools work.
    margin: float = Field(0.25, ge=0.0, le=4096.0,
                          description="Context around the mask used as the texture source: below "
                                      "1 = fraction of the region's larger side, 1 and above = "
                                      "pixels (at least 16 px).")
    # 0 by default: the fill is computed with the surrounding pixels, so its edge is
    # already continuous, and a ramp inside the mask mixes the removed object's own edge
    # pixels back in (a ghost outline with a tight mask). Soft masks are still honoured.
    feather: int = Field(0, ge=0, le=64, description="Blend the fill with the original over this "
                                                     "many px inside the mask edge (outside stays "
                                                     "untouched); soft mask values always blend. "
                                                     "0 with diffusion/lama = their own default "
                                                     "(4 / 2 px).")
    # --- diffusion only (backend 'diffusion', or 'auto' when it resolves to it)
    prompt: str = Field("", max_length=1000, description="Diffusion: what to fill the hole with; "
                                                         "empty = continue the surroundings "
                                                         "(context fill).")
    negative_prompt: str = Field("", max_length=1000, description="Diffusion: what the fill must "
                                                                  "not show (added to the "
                                                                  "object-removal negatives).")
    num_inference_steps: int = Field(30, ge=1, le=500, description="Diffusion: denoising steps.")
    guidance_scale: float | None = Field(None, ge=0.0, le=50.0,
                                         description="Diffusion: text guidance; None = the "
                                                     "model's default (12 for PowerPaint "
                                                     "removal, 7.5 otherwise).")
    strength: float = Field(1.0, gt=0.0, le=1.0, description="Diffusion: how much of the masked "
                                                              "content is re-generated (1 = all).")
    resample_count: int = Field(0, ge=0, le=20, description="Diffusion: RePaint resampling "
                                                            "passes per jump (0 = off), to "
                                                            "harmonise the fill.")
    jump_length: int = Field(5, ge=1, le=100, description="Diffusion: RePaint jump length in "
                                                          "steps (with resample_count > 0).")
    num_candidates: int = Field(1, ge=1, le=8, description="Diffusion: fills to generate (seeds "
                                                           "seed, seed+1...); the best one by "
                                                           "seam/colour figures is kept.")
    impl: Impl

    @model_validator(mode="after")
    def _algorithm_is_embedded(self) -> "Args":
        self.backend = backend_for_algorithm(self.backend, self.algorithm)
        return self


def patchmatch_module():
    """The ``patch_match`` module when its native library loads, else None."""
    try:
        from patchmatch import patch_match
    except Exception:  # noqa: BLE001 - any import failure means "not available"
        return None
    return patch_match if getattr(patch_match, "patchmatch_available", False) else None


def inpaint_region(rgb: np.ndarray, hole: np.ndarray, *, algorithm: str = "auto", seed: int = 0,
                   patch_size: int | None = None, check_cancelled=None,
                   info: dict | None = None, avoid_faces: bool = True
                   ) -> tuple[np.ndarray, str, str]:
    """Fill ``hole`` (bool H x W) of uint8 RGB ``rgb`` with the embedded engine; returns
    (filled, algorithm that ran: "patchmatch" or "telea", note).

    ``info`` (a dict), when given, receives the fill's figures (patch size, scale...).
    ``avoid_faces=False`` lets PatchMatch copy from faces too (impl 1, 0.1.0's fill).
    """
    pm = patchmatch_module() if algorithm in ("auto", "patchmatch") else None
    if algorithm == "patchmatch" and pm is None:
        raise ModelUnavailableError("the PatchMatch library (pypatchmatch) could not be loaded",
                                    hint="reinstall pypatchmatch, or use algorithm='telea'")
    if pm is not None:
        # no source patch from faces clear of the hole (not textured background)
        avoid = PF.removal_avoid(rgb, hole) if avoid_faces else None
        filled, fi = PF.fill(rgb, hole, pm, seed=seed, patch_size=patch_size,
                             check_cancelled=check_cancelled, avoid=avoid)
        if avoid is not None:
            fi = dict(fi, avoided=round(float((avoid & ~hole).mean()), 4))
        if info is not None:
            info.update(fi)
        return filled, "patchmatch", ""
    radius = max(3, int(patch_size or 3))
    filled = cv2.inpaint(np.ascontiguousarray(rgb), np.ascontiguousarray(hole.astype(np.uint8) * 255),
                         radius, cv2.INPAINT_TELEA)
    note = "" if algorithm == "telea" else " (PatchMatch is unavailable: used the OpenCV Telea fallback)"
    return filled, "telea", note


def remove_region(image: Image.Image, mask: np.ndarray, *, seed: int = 0, algorithm: str = "auto",
                  patch_size: int | None = None, margin: float = 0.25, feather: int = 0,
                  check_cancelled=None, avoid_faces: bool = True) -> tuple[Image.Image, dict]:
    """Remove the masked region of ``image`` with the embedded engine (``algorithm``: auto,
    patchmatch, telea). Returns (new image, info dict; ``info["algorithm"]`` names what ran).
    ``avoid_faces=False`` is impl 1 (0.1.0): PatchMatch may copy from faces too."""
    t0 = time.perf_counter()
    m = M.check_mask(mask, image, allow_empty=False, allow_full=False)
    hole_full = m > 0
    if hole_full.all():
        raise MaskError("the mask covers every pixel, so there is nothing to copy texture from",
                        hint="select a smaller region; use global_edit for whole-image changes")
    w, h = image.size
    n_hole = int(np.count_nonzero(hole_full))
    ps = int(patch_size) if patch_size else PF.auto_patch_size(n_hole)
    # PatchMatch needs whole patches of known pixels around the hole at every pyramid
    # level; with a thin ring of context it leaves the hole black. Keep >= 4 patches.
    min_ctx = max(MIN_CONTEXT_PX, 4 * (2 * ps + 1))
    x0, y0, x1, y1 = M.crop_box_around(m, (w, h), margin, min_margin=min_ctx)
    if hole_full[y0:y1, x0:x1].all():  # no source pixels in the crop: use the whole image
        x0, y0, x1, y1 = 0, 0, w, h
    # only the crop goes to numpy: on a large photo the cost follows the region
    crop = np.ascontiguousarray(np.asarray(image.crop((x0, y0, x1, y1)).convert("RGB"),
                                           dtype=np.uint8))
    cm = m[y0:y1, x0:x1]
    hole = cm > 0
    fill_info: dict = {}
    filled, used, note = inpaint_region(crop, hole, algorithm=algorithm, seed=seed, patch_size=ps,
                                        check_cancelled=check_cancelled, info=fill_info,
                                        avoid_faces=avoid_faces)
    if used == "patchmatch" and _left_black(crop, filled, hole) and (x1 - x0, y1 - y0) != (w, h):
        # too little context in the crop: retry once with the whole image as the source
        x0, y0, x1, y1 = 0, 0, w, h
        crop, cm = np.ascontiguousarray(np.asarray(image.convert("RGB"), dtype=np.uint8)), m
        hole = cm > 0
        filled, used, note = inpaint_region(crop, hole, algorithm=algorithm, seed=seed, patch_size=ps,
                                            check_cancelled=check_cancelled, info=fill_info,
                                            avoid_faces=avoid_faces)
    if used == "patchmatch" and _left_black(crop, filled, hole):
        raise MaskError(f"PatchMatch found no source texture for the {int(hole.sum())} px hole "
                        f"(patch_size={ps}); the mask leaves too little of the image",
                        hint="use a smaller mask or a smaller patch_size, or algorithm='telea'")
    alpha = M.feather(cm, feather, where="inside") if feather else cm
    alpha = np.where(hole, alpha, 0.0).astype(np.float32)[..., None]
    blended = np.round(crop.astype(np.float32) * (1.0 - alpha) + filled.astype(np.float32) * alpha)
    blended = np.clip(blended, 0, 255).astype(np.uint8)
    out = image.convert("RGB") if image.mode != "RGB" else image.copy()
    out.paste(Image.fromarray(np.where(hole[..., None], blended, crop)), (x0, y0))
    info = {"backend": EMBEDDED, "algorithm": used, "note": note,
            "hole_fraction": round(float(hole_full.mean()), 4),
            "crop": [x0, y0, x1, y1], "crop_size": [x1 - x0, y1 - y0],
            "patch_size": fill_info.get("patch_size", ps), "seed": int(seed),
            "scale": fill_info.get("scale", 1.0), "texture_gain": fill_info.get("texture_gain"),
            "elapsed_ms": round((time.perf_counter() - t0) * 1000.0, 1)}
    return out, info


def _left_black(src: np.ndarray, filled: np.ndarray, hole: np.ndarray) -> bool:
    """PatchMatch's failure mode: hole pixels left (0, 0, 0) where the source has no black."""
    n = int(hole.sum())
    if n == 0:
        return False
    step = max(1, int((hole.size / 250_000) ** 0.5))  # a sample is enough on large crops
    hole, src, filled = hole[::step, ::step], src[::step, ::step], filled[::step, ::step]
    if not hole.any():
        return False
    black_fill = float((filled[hole] == 0).all(axis=1).mean())
    known = ~hole
    black_src = float((src[known] == 0).all(axis=1).mean()) if known.any() else 0.0
    return black_fill > 0.05 and black_fill > 4 * black_src


def run(args: Args, state: ToolState) -> ToolResult:
    if state.mask is None:
        raise MaskError("remove needs a mask, and there is none",
                        hint="select the object first: ground(phrase=...) then build_mask()")
    chosen = resolve_backend(NAME, args.backend, state)
    if chosen != EMBEDDED:
        return _run_model(args, state, chosen)
    state.emit(kind="progress", tool=NAME, message="filling the region")
    out, info = remove_region(state.image, state.mask, seed=args.seed, algorithm=args.algorithm,
                              patch_size=args.patch_size, margin=args.margin, feather=args.feather,
                              check_cancelled=state.check_cancelled,
                              avoid_faces=args.impl != 1)  # impl 1: 0.1.0's fill
    metrics = {k: v for k, v in info.items() if k != "note"}
    cw, ch = info["crop_size"]
    res = ToolResult(image=out, backend=EMBEDDED, metrics=metrics,
                     message=f"removed {info['hole_fraction']:.1%} of the image with "
                             f"{_ALGORITHM_NAMES[info['algorithm']]} on a {cw}x{ch} crop"
                             f"{info['note']}")
    # the stored call names what ran (engine and algorithm), so replay is exact
    res.extra["resolved_args"] = {"backend": EMBEDDED, "algorithm": info["algorithm"]}
    return res


_ALGORITHM_NAMES = {"patchmatch": "PatchMatch", "telea": "OpenCV Telea"}


def _run_model(args: Args, state: ToolState, chosen: str) -> ToolResult:
    """remove with a model backend: 'diffusion' (role inpaint) or 'lama' (role lama)."""
    role = engine_role(NAME, chosen)
    mgr = state.models
    m = M.check_mask(state.mask, state.image, allow_empty=False, allow_full=False)
    if (m > 0).all():
        raise MaskError("the mask covers every pixel, so there is nothing to fill from",
                        hint="select a smaller region; use global_edit for whole-image changes")
    state.emit(kind="progress", tool=NAME, message=f"filling the region ({chosen})")
    info: dict[str, Any] = {}
    t0 = time.perf_counter()
    if chosen == "diffusion":
        from imagent.tools.backends.inpaint import inpaint_remove

        out = inpaint_remove(mgr, state.image, m, seed=args.seed,
                             num_inference_steps=args.num_inference_steps,
                             guidance_scale=args.guidance_scale, strength=args.strength,
                             prompt=args.prompt, negative_prompt=args.negative_prompt,
                             num_candidates=args.num_candidates, feather=args.feather or 4,
                             resample_count=args.resample_count, jump_length=args.jump_length,
                             on_step=step_reporter(state, NAME), cancel=state.cancel, info=info)
    else:
        from imagent.tools.backends.lama import lama_remove

        out = lama_remove(mgr, state.image, m, feather=args.feather or 2,
                          on_step=step_reporter(state, NAME), cancel=state.cancel, info=info)
    pipeline = str(info.get("backend", chosen))  # e.g. powerpaint, repaint, diffusers-inpaint
    metrics: dict[str, Any] = {k: v for k, v in info.items() if k not in ("model", "backend")}
    metrics.update(backend=chosen, pipeline=pipeline,
                   hole_fraction=round(float((m > 0).mean()), 4),
                   seed=int(args.seed), elapsed_ms=round((time.perf_counter() - t0) * 1000.0, 1))
    size = "x".join(str(v) for v in info.get("model_size", []))
    res = ToolResult(image=out, backend=chosen, metrics=metrics,
                     model_ids={role: mgr.model_id(role)},
                     message=f"removed {metrics['hole_fraction']:.1%} of the image with {pipeline} "
                             f"({mgr.model_id(role)})" + (f" at {size} px" if size else ""))
    res.extra["resolved_args"] = {"backend": chosen}
    return res


# ------------------------------------------------------------------ model-backend helpers
