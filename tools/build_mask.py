"""build_mask: turn a detection (or a box, or the whole image) into the working mask.

Order of operations: base region (a detection's own mask or box/ellipse, the union
of all detections, a box, or the full image) -> refinement (``refine``, by ``backend``: the
embedded GrabCut, or SAM with the box as its prompt, whose mask replaces the box mask) ->
fill holes -> shadow grow (``shadow``, for removal) -> dilate (px + fraction of the
object size) -> erode -> combine with the previous mask (``combine``: union,
intersection, subtract) -> invert -> feather. The result replaces ``state.mask``.

Whether to refine and which engine refines are two arguments: ``refine`` (true / false /
null) says whether, ``backend`` (``tools/backends`` ``BACKENDS["build_mask"]``: ``embedded`` =
GrabCut, ``sam`` = the SAM model; resolved by ``resolve_backend``) says which. "No refinement"
is not an engine, so it is ``refine=false``, not a backend value. The defaults
(``refine=null``, ``backend="auto"``) refine with SAM when ``state.models`` holds an available
``segmentation`` model and the region is a box (a detection without its own mask, or a given
box), else not at all: offline behaviour is unchanged (GrabCut only when asked:
``refine=true`` without SAM, or ``backend="embedded", refine=true``). The stored call names
both what ran (``resolved_args``: ``refine`` true/false and ``backend``). ``result.backend``
is "sam" when SAM refined the mask, else "embedded".

``masks.shrink_schedule`` gives the progressive-shrink list (dilated -> thin) for the
diffusion path's Blended Latent Diffusion.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, model_validator

from imagent.errors import MaskError, ToolArgumentError
from imagent.tools import masks as M
from imagent.tools.backends import EMBEDDED, backend_literal, resolve_backend
from imagent.tools.types import Detection, ToolResult, ToolState

NAME = "build_mask"
DESCRIPTION = (
    "Build the mask (the region to change) from the last ground result, from a box, or the "
    "full image; optionally grow it (dilate), soften its edge (feather) or invert it. Run "
    "after ground and before remove/insert/extract or a local global_edit.")


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source: Literal["detections", "all", "box", "full", "alpha"] = Field(
        "detections", description="Where the region comes from: one detection of the last "
                                  "ground result ('detections', see index), the union of all "
                                  "of them ('all'), the 'box' argument, the 'full' image, or "
                                  "the image's own transparency ('alpha': opaque = 1).")
    index: int = Field(0, ge=0, le=100, description="Which detection to use (0 = the selected one).")
    box: list[int] | None = Field(None, min_length=4, max_length=4,
                                  description="For source='box': x0,y0,x1,y1 in pixels "
                                              "(x1/y1 exclusive).")
    dilate: int = Field(0, ge=0, le=2048, description="Grow the mask by this many pixels.")
    dilate_frac: float = Field(0.0, ge=0.0, le=2.0,
                               description="Grow the mask by this fraction of the object's larger "
                                           "side (added to dilate), e.g. 0.05 = 5%.")
    feather: int = Field(0, ge=0, le=512, description="Soften the mask edge over this many pixels.")
    erode: int = Field(0, ge=0, le=2048, description="Shrink the mask by this many pixels "
                                                     "(after dilate).")
    erode_frac: float = Field(0.0, ge=0.0, le=1.0,
                              description="Shrink by this fraction of the object's larger side "
                                          "(added to erode).")
    refine: bool | None = Field(
        None, description="Refine the box/ellipse to the object's outline (with 'backend'): "
                          "true, false, or null = only when SAM does it (its model is "
                          "available and the region is a box).")
    backend: backend_literal(NAME) = Field(  # type: ignore[valid-type]
        "auto", description="Engine that refines: 'embedded' (GrabCut on a crop around the "
                            "region), 'sam' (the SAM segmentation model, box as prompt; model "
                            "profile); 'auto' = sam when its model is available and the region "
                            "is a box, else embedded.")
    fill_holes: bool = Field(False, description="Fill holes inside the region.")
    shadow: bool = Field(False, description="Also select an attached darker region (the "
                                            "object's shadow), bounded to half the object size; "
                                            "for removal, so no ghost is left.")
    combine: Literal["replace", "union", "intersection", "subtract"] = Field(
        "replace", description="How to combine with the current mask: 'replace' it, or "
                               "'union'/'intersection'/'subtract' (current minus new).")
    invert: bool = Field(False, description="Select everything except the region (for "
                                            "background edits).")
    shape: Literal["box", "ellipse"] = Field(
        "box", description="Shape made from a box: the box itself or the ellipse inside it "
                           "(ignored when the detection carries its own mask).")

    @model_validator(mode="after")
    def _refine_and_backend(self) -> "Args":
        if self.refine is False and self.backend not in ("auto", EMBEDDED):
            raise ValueError(f"backend={self.backend!r} refines the mask, but refine=false; "
                             "drop one of them")
        return self


def mask_from_detection(det: Detection, size: tuple[int, int], *, shape: str = "box") -> np.ndarray:
    """The detection's own mask when it has one, else its box (or inscribed ellipse)."""
    if det.mask is not None:
        return M.check_mask(det.mask, size, name=f"mask of detection {det.label!r}")
    return M.box_mask(size, det.box, shape=shape)


def build_mask(image: Image.Image, *, source: str = "detections",
               detections: list[Detection] | None = None, index: int = 0,
               box: list[int] | None = None, dilate: int = 0, dilate_frac: float = 0.0,
               feather: int = 0, invert: bool = False, shape: str = "box",
               erode: int = 0, erode_frac: float = 0.0, refine: str = "none",
               fill_holes: bool = False, shadow: bool = False, combine: str = "replace",
               current: np.ndarray | None = None, info: dict | None = None,
               models: Any = None, alpha: Image.Image | None = None) -> np.ndarray:
    """The mask (float32 H x W in [0, 1]) for ``image``; raises if it would select nothing.

    ``current`` is the mask to combine with; ``info`` (a dict) receives figures such as
    the shadow pixels added. ``refine`` is the refinement that runs: "none", "grabcut" (the
    embedded engine) or "sam" (needs ``models``, the model manager).
    """
    size = image.size
    info = info if info is not None else {}
    if source == "all":
        if not detections:
            raise ToolArgumentError("build_mask: there are no detections to build a mask from",
                                    hint="run ground first, or use source='box' with box=[...]")
        base = np.zeros((size[1], size[0]), np.float32)
        for det in detections:
            base = M.union(base, mask_from_detection(det, size, shape=shape))
    elif source == "detections":
        if not detections:
            raise ToolArgumentError("build_mask: there are no detections to build a mask from",
                                    hint="run ground first (e.g. ground(phrase='the top-left "
                                         "corner')), or use source='box' with box=[x0,y0,x1,y1]")
        if not 0 <= index < len(detections):
            raise ToolArgumentError(f"build_mask: index {index} is out of range: there are "
                                    f"{len(detections)} detection(s)",
                                    hint=f"use index 0..{len(detections) - 1}")
        base = mask_from_detection(detections[index], size, shape=shape)
    elif source == "box":
        if box is None:
            raise ToolArgumentError("build_mask: source='box' needs box=[x0,y0,x1,y1]",
                                    hint="give the box in pixels, x1/y1 exclusive")
        base = M.box_mask(size, box, shape=shape)
    elif source == "full":
        base = np.ones((size[1], size[0]), np.float32)
    elif source == "alpha":
        if alpha is None:
            raise MaskError("build_mask: this image has no transparency (no alpha) to build a "
                            "mask from", hint="cut something out first (\"cut out the dog\", "
                                              "\"remove the background\")")
        base = M.check_mask(np.asarray(alpha.convert("L")), size, name="alpha",
                            allow_empty=True, allow_full=True)
    else:
        raise ToolArgumentError(f"build_mask: unknown source {source!r}",
                                hint="use 'detections', 'box', 'full' or 'alpha'")
    if refine == "grabcut":
        before = float((base >= 0.5).sum())
        base = M.grabcut_refine(image, base)
        info["grabcut_kept_fraction"] = round(float((base >= 0.5).sum()) / max(1.0, before), 4)
    elif refine == "sam":
        base = _sam_refine(image, base, _prompt_boxes(source, detections, index, box, size),
                           models, info)
    if fill_holes:
        base = M.fill_holes(base)
    if shadow:
        base, added = M.shadow_grow(image, base)
        info["shadow_px"] = added
    bb = M.mask_bbox(base)
    side = max(bb[2] - bb[0], bb[3] - bb[1]) if bb is not None else 0
    grow = int(dilate) + (int(round(dilate_frac * side)) if dilate_frac > 0 else 0)
    shrink = int(erode) + (int(round(erode_frac * side)) if erode_frac > 0 else 0)
    m = M.dilate(base, grow) if grow else base
    if shrink:
        m = M.erode(m, shrink)
    if combine != "replace":
        if current is None:
            raise MaskError(f"build_mask: combine={combine!r} needs a current mask, and there "
                            "is none", hint="build the first mask with combine='replace'")
        cur = M.check_mask(current, image, name="current mask", allow_empty=True,
                           allow_full=True)
        m = {"union": M.union, "intersection": M.intersection,
             "subtract": M.subtract}[combine](cur, m)
    if invert:
        m = M.invert(m)
    if feather:
        m = M.feather(m, feather)
    if not (m > 0).any():
        raise MaskError(f"build_mask: the mask selects nothing (source={source!r}, "
                        f"invert={invert}, erode={shrink}, combine={combine!r})",
                        hint="inverting a full-image selection, eroding too far or an empty "
                             "intersection leaves nothing; pick a region")
    return m.astype(np.float32)


def _prompt_boxes(source: str, detections: list[Detection] | None, index: int,
                  box: list[int] | None, size: tuple[int, int]) -> list[tuple[int, int, int, int]]:
    """The boxes SAM is prompted with: the chosen detection's, every detection's, the given
    box, or the whole image."""
    if source == "detections":
        return [tuple(detections[index].box)]  # type: ignore[index]
    if source == "all":
        return [tuple(d.box) for d in detections or []]
    if source == "box":
        return [M.check_box(box, size)]  # type: ignore[arg-type]
    return [(0, 0, size[0], size[1])]


def _sam_refine(image: Image.Image, base: np.ndarray, boxes: list, models: Any,
                info: dict) -> np.ndarray:
    """SAM's mask for the boxes (their union) replaces ``base``; an empty answer keeps it."""
    if models is None:
        from imagent.tools.models import no_manager_error

        raise no_manager_error(NAME, "segmentation", "backend='sam'")
    from imagent.tools.backends.sam import segment

    sinfo: dict = {}
    masks = segment(models, image, boxes=[list(b) for b in boxes], info=sinfo)
    refined = np.zeros_like(base, dtype=np.float32)
    for mk in masks:
        refined = M.union(refined, mk.astype(np.float32))
    before = float((base >= 0.5).sum())
    info["sam_iou"] = sinfo.get("iou")
    if not (refined >= 0.5).any():
        info["sam_empty"] = True  # SAM found nothing in the box: the box mask is kept
        return base
    info["sam_kept_fraction"] = round(float((refined >= 0.5).sum()) / max(1.0, before), 4)
    return refined


def _region_is_a_box(args: Args, state: ToolState) -> bool:
    """Whether the base region is a box SAM can refine: a detection without its own mask, every
    detection without one, or a given box (the full image has nothing to refine)."""
    dets = state.detections or []
    if args.source == "box":
        return args.box is not None
    if args.source == "detections":
        return 0 <= args.index < len(dets) and dets[args.index].mask is None
    if args.source == "all":
        return bool(dets) and all(d.mask is None for d in dets)
    return False


def resolve_refinement(args: Args, state: ToolState) -> tuple[bool, str]:
    """(refine, backend) the call runs. refine=false: no refinement (embedded). Otherwise the
    backend is ``resolve_backend``'s ("auto" = sam when its model is available and the region
    is a box, else embedded); refine=null then refines only when that is sam."""
    if args.refine is False:
        return False, EMBEDDED
    engine = resolve_backend(NAME, args.backend, state, prefer_model=_region_is_a_box(args, state))
    refine = args.refine if args.refine is not None else engine == "sam"
    return bool(refine), engine


_REFINED_BY = {"sam": " refined by SAM", "grabcut": " refined by GrabCut"}


def run(args: Args, state: ToolState) -> ToolResult:
    info: dict = {}
    do_refine, engine = resolve_refinement(args, state)
    refine = ("sam" if engine == "sam" else "grabcut") if do_refine else "none"
    m = build_mask(state.image, source=args.source, detections=state.detections,
                   index=args.index, box=args.box, dilate=args.dilate,
                   dilate_frac=args.dilate_frac, feather=args.feather, invert=args.invert,
                   shape=args.shape, erode=args.erode, erode_frac=args.erode_frac,
                   refine=refine, fill_holes=args.fill_holes, shadow=args.shadow,
                   combine=args.combine, current=state.mask, info=info, models=state.models,
                   alpha=state.alpha)
    bb = M.mask_bbox(m, 1e-6)
    frac = float((m >= 0.5).mean())
    what = (f"detection {args.index}" if args.source == "detections" else
            "all detections" if args.source == "all" else
            f"box {args.box}" if args.source == "box" else
            "the image's transparency" if args.source == "alpha" else "the full image")
    res = ToolResult(mask=m, backend=engine,
                     message=f"mask from {what}" + _REFINED_BY.get(refine, "")
                             + f": {frac:.1%} of the image, bbox {list(bb) if bb else None}",
                     metrics={"area_fraction": round(frac, 4), "refine": do_refine,
                              "refined_by": refine if do_refine else None, "backend": engine,
                              "bbox": list(bb) if bb else None, **info})
    if refine == "sam":
        res.model_ids = {"segmentation": state.models.model_id("segmentation")}
    # the stored call names what ran (whether and with what), so replay is exact
    res.extra["resolved_args"] = {"refine": do_refine, "backend": engine}
    return res
