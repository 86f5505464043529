"""The result check: "apply with threshold check" (pure functions + ``run_checks``).

- **Background preservation**: outside the mask the output equals the input; the
  output is composited through the (feathered) mask, so pixels where the mask is 0
  are bit-identical to the input.
- **Sequential edit thresholding** (Emu Edit): the per-pixel change is low-pass
  filtered (Gaussian) and pixels whose smoothed change is below a threshold revert to
  the previous image, so small numerical drift does not accumulate over a session.
  Local edits only — global and outpaint edits are meant to change the whole image
  and are not thresholded (``LOCAL_KINDS``).
- **Effect test**: the fraction of the mask that visibly changed must reach a
  minimum, else the edit had "no visible effect".
- **Verification after a removal**: the phrase is grounded again on the result; a
  candidate of the same method (detector/colour) overlapping the removed region above
  a score threshold means the object is still there and the check fails.

``run_checks(before, after, mask, ...) -> CheckReport`` runs them with a
``CheckConfig``. The part that changes pixels (preservation + thresholding) is
``finalize_local_edit``, applied by the runner after every local-edit call
(``is_local_edit``) — in the assistant and identically in replay — so the stored
ToolCalls reproduce the result bit for bit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import cv2
import numpy as np
from PIL import Image

from imagent.tools import masks as M


# Edit kinds (planners.base.EditKind) whose result is checked and thresholded as a local edit.
LOCAL_KINDS = ("remove", "add", "replace", "local")


@dataclass
class CheckConfig:
    """Every threshold of the check, with defaults. Levels are 0..255 per channel."""

    preserve_background: bool = True
    threshold_enabled: bool = True
    threshold_sigma: float = 1.0  # Gaussian low-pass of the change map, px
    threshold_levels: float = 2.0  # smoothed change below this reverts to the previous image
    effect_pixel_levels: float = 8.0  # a pixel "visibly changed" above this
    effect_min_fraction: float = 0.02  # of the mask's pixels (>= 0.5)
    verify_removal: bool = True
    verify_score: float = 0.5  # a re-detected candidate above this = still there
    verify_overlap: float = 0.3  # ...if this fraction of its box lies inside the mask
    max_retries: int = 2  # removal retries after a failed check
    retry_dilate_px: int = 6  # extra dilation per retry
    retry_dilate_frac: float = 0.05  # plus this fraction of the object size per retry

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CheckReport:
    passed: bool
    failures: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    image: Image.Image | None = None  # the image after preservation + thresholding

    def summary(self) -> str:
        return "passed" if self.passed else "; ".join(self.failures)


def _u8(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), np.uint8)


def preserve_background(before: Image.Image, after: Image.Image,
                        mask: np.ndarray) -> tuple[Image.Image, dict[str, Any]]:
    """``after`` composited over ``before`` through ``mask``: where mask = 0 the output is
    ``before`` exactly. Figures: how many pixels outside the mask the tool had changed."""
    a, b = _u8(before), _u8(after)
    m = np.asarray(mask, np.float32)
    outside = m <= 0
    leaked = outside & (np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=2) > 0)
    comp = a.astype(np.float32) * (1.0 - m[..., None]) + b.astype(np.float32) * m[..., None]
    out = np.where(m[..., None] >= 1.0, b, np.clip(np.round(comp), 0, 255).astype(np.uint8))
    out = np.where(outside[..., None], a, out)
    return Image.fromarray(out), {"outside_changed_px_before": int(leaked.sum()),
                                  "outside_identical": True}


def threshold_change(before: Image.Image, after: Image.Image, *, sigma: float = 1.0,
                     levels: float = 2.0, mask: np.ndarray | None = None
                     ) -> tuple[Image.Image, dict[str, Any]]:
    """Emu Edit's sequential edit thresholding: revert pixels whose low-passed change is
    below ``levels``. With ``mask`` only pixels inside it (> 0) are considered (outside
    is the preservation's job). Figures: the fraction reverted."""
    a, b = _u8(before), _u8(after)
    diff = np.abs(a.astype(np.float32) - b.astype(np.float32)).mean(axis=2)
    smooth = cv2.GaussianBlur(diff, (0, 0), sigmaX=float(sigma)) if sigma > 0 else diff
    revert = (smooth < float(levels)) & (diff > 0)
    if mask is not None:
        revert &= np.asarray(mask) > 0
    out = np.where(revert[..., None], a, b)
    changed = int((diff > 0).sum())
    return Image.fromarray(out), {"reverted_px": int(revert.sum()),
                                  "reverted_fraction_of_changed":
                                      round(int(revert.sum()) / max(1, changed), 5)}


def effect(before: Image.Image, after: Image.Image, mask: np.ndarray | None, *,
           pixel_levels: float = 8.0) -> dict[str, Any]:
    """Fraction of the mask (or of the image) whose pixels changed by more than
    ``pixel_levels`` in some channel, and the mean change there."""
    a, b = _u8(before), _u8(after)
    d = np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=2)
    region = np.ones(d.shape, bool) if mask is None else np.asarray(mask) >= 0.5
    if not region.any():
        region = np.asarray(mask) > 0
    n = int(region.sum())
    return {"changed_fraction_in_mask": round(float((d[region] > pixel_levels).sum()) / max(1, n), 5),
            "mean_abs_in_mask": round(float(d[region].mean()) if n else 0.0, 4)}


def verify_removal(after: Image.Image, phrase: str, method: str, mask: np.ndarray, *,
                   score: float = 0.5, overlap: float = 0.3) -> dict[str, Any]:
    """Ground ``phrase`` again on ``after``; the removal failed if a candidate found the
    same way (detector or colour) lies in the removed region with a score >= ``score``.

    Geometry-grounded phrases ("the top-left corner") always ground again, so they are
    not verifiable this way: the result says ``verified: None``.
    """
    from imagent.errors import GroundingError
    from imagent.tools.ground import ground_full

    if method not in ("detector", "colour"):
        return {"verified": None, "reason": f"grounded by {method}: not re-detectable"}
    m = np.asarray(mask) >= 0.5
    try:
        g = ground_full(after, phrase)
    except GroundingError:
        return {"verified": True, "still_found": 0, "best_score": 0.0}
    best = 0.0
    hits = 0
    for d in g.detections:
        if g.method != method:
            break
        x0, y0, x1, y1 = d.box
        inside = float(m[y0:y1, x0:x1].mean()) if (x1 > x0 and y1 > y0) else 0.0
        if d.mask is not None:  # colour regions: overlap of the region's own pixels
            dm = np.asarray(d.mask) >= 0.5
            inside = float((dm & m).sum()) / max(1, int(dm.sum()))
        if inside >= overlap:
            best = max(best, float(d.score))
            hits += d.score >= score
    return {"verified": hits == 0, "still_found": hits, "best_score": round(best, 4)}


def run_checks(before: Image.Image, after: Image.Image, mask: np.ndarray | None, *,
               kind: str = "local", config: CheckConfig | None = None,
               phrase: str | None = None, ground_method: str | None = None) -> CheckReport:
    """Check one edit step. ``kind`` is the plan step's edit kind; local kinds get
    preservation + thresholding + effect test (+ verification for "remove"); other kinds
    (global, outpaint, extract...) only the effect test over the whole image."""
    cfg = config or CheckConfig()
    metrics: dict[str, Any] = {"kind": kind}
    failures: list[str] = []
    if before.size != after.size:
        metrics["size_changed"] = True
        return CheckReport(True, [], metrics, after)
    local = kind in LOCAL_KINDS and mask is not None and np.asarray(mask).shape == \
        (after.height, after.width)
    out = after
    if local:
        m = np.asarray(mask, np.float32)
        out, f = finalize_local_edit(before, after, m, cfg)
        metrics["preservation"] = {k: f[k] for k in ("outside_changed_px_before",
                                                     "outside_identical") if k in f}
        if "reverted_px" in f:
            metrics["threshold"] = {k: f[k] for k in ("reverted_px",
                                                      "reverted_fraction_of_changed")}
        bb = M.mask_bbox(m, 1e-6)
        if bb is None:
            eff = {"changed_fraction_in_mask": 0.0, "mean_abs_in_mask": 0.0}
        else:
            x0, y0, x1, y1 = bb
            eff = effect(before.crop(bb), out.crop(bb), m[y0:y1, x0:x1],
                         pixel_levels=cfg.effect_pixel_levels)
    else:
        # global/outpaint edits change the whole image on purpose: no thresholding
        eff = effect(before, out, None, pixel_levels=cfg.effect_pixel_levels)
    metrics["effect"] = eff
    if eff["changed_fraction_in_mask"] < cfg.effect_min_fraction and kind != "extract":
        failures.append(f"no visible effect: only {eff['changed_fraction_in_mask']:.1%} of the "
                        f"{'region' if local else 'image'} changed by more than "
                        f"{cfg.effect_pixel_levels:g} levels (minimum "
                        f"{cfg.effect_min_fraction:.0%})")
    if kind == "remove" and cfg.verify_removal and local and phrase:
        v = verify_removal(out, phrase, ground_method or "", np.asarray(mask),
                           score=cfg.verify_score, overlap=cfg.verify_overlap)
        metrics["verification"] = v
        if v.get("verified") is False:
            failures.append(f"{phrase!r} is still found in the removed region (score "
                            f"{v['best_score']:.2f} >= {cfg.verify_score:g})")
    metrics["passed"] = not failures
    return CheckReport(not failures, failures, metrics, out)


# ----------------------------------------------------------------------------- the recorded rule
# Which tool calls are local edits: after each of them the runner (the assistant, and
# replay through ``Assistant.run_calls``) applies ``finalize_local_edit`` against the image
# before that call, so the stored ToolCalls alone reproduce the result bit for bit.
LOCAL_EDIT_TOOLS = ("remove", "insert", "recolor")


def is_local_edit(call: dict[str, Any]) -> bool:
    """True for a call whose result is composited through its mask and thresholded:
    remove, insert, recolor, and global_edit limited to the mask (region='mask').
    Whole-image global edits and outpaint are meant to change everything: not thresholded."""
    name = call.get("name")
    args = call.get("args") or {}
    return name in LOCAL_EDIT_TOOLS or (name == "global_edit" and args.get("region") == "mask")


def finalize_local_edit(before: Image.Image, after: Image.Image, mask: np.ndarray | None,
                        config: CheckConfig | None = None
                        ) -> tuple[Image.Image, dict[str, Any]]:
    """Background preservation then Emu Edit thresholding of one local edit.

    Deterministic (pure numpy/OpenCV on the pixels), so replay reproduces it. Returns
    ``after`` unchanged (and ``{"applied": False}``) when there is no usable mask or the
    size changed."""
    cfg = config or CheckConfig()
    if mask is None or before.size != after.size or \
            np.asarray(mask).shape != (after.height, after.width):
        return after, {"applied": False}
    m = np.asarray(mask, np.float32)
    figures: dict[str, Any] = {"applied": True}
    bb = M.mask_bbox(m, 1e-6)
    if bb is None:  # an empty mask keeps nothing of the edit
        return before.copy(), {"applied": True, "empty_mask": True}
    # cost follows the region: everything outside the mask's box is `before` exactly (a
    # tool's changes there are dropped; "outside_changed_px_before" counts only the box)
    pad = int(np.ceil(3 * cfg.threshold_sigma)) + 1
    W, H = after.size
    x0, y0, x1, y1 = max(0, bb[0] - pad), max(0, bb[1] - pad), min(W, bb[2] + pad), min(H, bb[3] + pad)
    b_crop = before.crop((x0, y0, x1, y1))
    out_c = after.crop((x0, y0, x1, y1))
    mc = m[y0:y1, x0:x1]
    if cfg.preserve_background:
        out_c, f = preserve_background(b_crop, out_c, mc)
        figures.update(f)
    if cfg.threshold_enabled:
        out_c, f = threshold_change(b_crop, out_c, sigma=cfg.threshold_sigma,
                                    levels=cfg.threshold_levels, mask=mc)
        figures.update(f)
    base = before if cfg.preserve_background else after
    out = np.array(base.convert("RGB"), np.uint8)
    out[y0:y1, x0:x1] = np.asarray(out_c.convert("RGB"), np.uint8)
    return Image.fromarray(out), figures


__all__ = ["CheckConfig", "CheckReport", "LOCAL_EDIT_TOOLS", "LOCAL_KINDS", "effect",
           "finalize_local_edit", "is_local_edit", "preserve_background", "run_checks",
           "threshold_change", "verify_removal"]
