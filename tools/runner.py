"""The runner: the one way tool calls run against a working state.

Every executor uses it — the assistant's requests, the result check's retries, replay,
``imagent tool`` and the LLM planner's dry runs — so a call always means the same thing:

1. the registry validates and runs the call (``Registry.run``);
2. ``apply_result`` applies what it returned to the ``ToolState`` (the only place that does);
3. a local edit (``is_local_edit``: remove, insert, recolor, a global_edit inside the mask) is
   finalised: composited through its mask (background preservation) and passed through Emu
   Edit's sequential edit thresholding (low-passed change below a threshold reverts to the
   image before the call). This is part of the recorded rule: replay runs it identically, so
   the stored calls reproduce the committed pixels bit for bit;
4. a typed ``CallRecord`` says what ran: the stored call (every default filled in, what the
   tool resolved merged in), the backend, model ids, figures, the finalisation's figures and
   the seconds it took.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterable

import cv2
import numpy as np
from PIL import Image

from imagent.tools import masks as M
from imagent.tools.types import ToolCall, ToolResult, ToolState

# global_edit operations that change the geometry: alpha kept aside cannot follow them
GEOMETRY_OPS = frozenset({"rotate", "flip_horizontal", "flip_vertical", "crop", "resize"})
# Which tool calls are local edits (finalised through their mask after they run).
LOCAL_EDIT_TOOLS = ("remove", "insert", "recolor")


@dataclass
class FinalizeConfig:
    """The thresholds of a local edit's finalisation. Levels are 0..255 per channel."""

    preserve_background: bool = True
    threshold_enabled: bool = True
    threshold_sigma: float = 1.0  # Gaussian low-pass of the change map, px
    threshold_levels: float = 2.0  # smoothed change below this reverts to the previous image

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class CallRecord:
    """One call as it ran."""

    call: dict[str, Any]  # the stored call: {"name", "args"} normalised, resolved values merged
    backend: str = ""
    model_ids: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    message: str = ""
    seconds: float = 0.0
    finalize: dict[str, Any] | None = None  # the local-edit finalisation's figures
    geometry_changed: bool = False
    result: ToolResult | None = field(default=None, repr=False)  # in memory only, never stored

    @property
    def name(self) -> str:
        return str(self.call.get("name"))

    @property
    def args(self) -> dict[str, Any]:
        return dict(self.call.get("args") or {})

    def to_dict(self) -> dict[str, Any]:
        """What a version stores about the call (JSON)."""
        out: dict[str, Any] = {"name": self.name, "backend": self.backend,
                               "seconds": round(self.seconds, 4), "metrics": self.metrics}
        if self.model_ids:
            out["model_ids"] = dict(self.model_ids)
        if self.finalize is not None:
            out["finalize"] = self.finalize
        if self.message:
            out["message"] = self.message
        return out


def is_local_edit(call: dict[str, Any]) -> bool:
    """True for a call whose result is composited through its mask and thresholded: remove,
    insert, recolor, and global_edit limited to the mask (region='mask'). Whole-image global
    edits and outpaint are meant to change everything: not thresholded."""
    name = call.get("name")
    args = call.get("args") or {}
    return name in LOCAL_EDIT_TOOLS or (name == "global_edit" and args.get("region") == "mask")


def _u8(image: Image.Image) -> np.ndarray:
    return np.asarray(image if image.mode == "RGB" else image.convert("RGB"), np.uint8)


def _channel_max(d: np.ndarray) -> np.ndarray:
    c0, c1, c2 = cv2.split(d)
    return cv2.max(cv2.max(c0, c1), c2)


def _preserve(a: np.ndarray, b: np.ndarray, m: np.ndarray) -> tuple[np.ndarray, int]:
    """``preserve_background`` on uint8 arrays: (composite, changed pixels outside)."""
    outside = m <= 0
    d = cv2.absdiff(a, b)
    changed = d.max(axis=2) > 0 if min(m.shape, default=0) < 2 else \
        _channel_max(d) > 0
    leaked = int(np.count_nonzero(outside & changed))
    out = np.array(b)
    if outside.any():
        out = cv2.copyTo(a, outside.view(np.uint8), out)  # mask = 0 keeps `before` exactly
    frac = (m > 0) & (m < 1.0)
    if frac.any():  # the soft edge: the same float32 formula, only where it applies
        mf = m[frac][:, None]
        comp = a[frac].astype(np.float32) * (1.0 - mf) + b[frac].astype(np.float32) * mf
        out[frac] = np.clip(np.round(comp), 0, 255).astype(np.uint8)
    return out, leaked


def _threshold(a: np.ndarray, b: np.ndarray, sigma: float, levels: float,
               mask: np.ndarray | None, *, in_place: bool = False
               ) -> tuple[np.ndarray, int, int]:
    """``threshold_change`` on uint8 arrays: (result, reverted px, changed px); with
    ``in_place`` the reverted pixels are written into ``b`` (which must be writable)."""
    d = cv2.absdiff(a, b)
    # mean over the channels as numpy's float32 mean computes it: (sum of 3) / 3
    total = cv2.transform(d.astype(np.uint16), np.ones((1, 3), np.float32)) if d.size else \
        np.zeros(d.shape[:2], np.uint16)
    diff = total.astype(np.float32) / np.float32(3.0)
    smooth = cv2.GaussianBlur(diff, (0, 0), sigmaX=float(sigma)) if sigma > 0 else diff
    changed_px = total > 0
    revert = (smooth < float(levels)) & changed_px
    if mask is not None:
        revert &= np.asarray(mask) > 0
    n_revert = int(np.count_nonzero(revert))
    out = b if in_place or not n_revert else np.array(b)
    if n_revert:
        out = cv2.copyTo(a, revert.view(np.uint8), out)
    return out, n_revert, int(np.count_nonzero(changed_px))


def preserve_background(before: Image.Image, after: Image.Image,
                        mask: np.ndarray) -> tuple[Image.Image, dict[str, Any]]:
    """``after`` composited over ``before`` through ``mask``: where mask = 0 the output is
    ``before`` exactly. Figures: how many pixels outside the mask the tool had changed."""
    out, leaked = _preserve(_u8(before), _u8(after), np.asarray(mask, np.float32))
    return Image.fromarray(out), {"outside_changed_px_before": leaked,
                                  "outside_identical": True}


def threshold_change(before: Image.Image, after: Image.Image, *, sigma: float = 1.0,
                     levels: float = 2.0, mask: np.ndarray | None = None
                     ) -> tuple[Image.Image, dict[str, Any]]:
    """Emu Edit's sequential edit thresholding: revert pixels whose low-passed change is
    below ``levels``. With ``mask`` only pixels inside it (> 0) are considered (outside
    is the preservation's job). Figures: the fraction reverted."""
    out, n_revert, changed = _threshold(_u8(before), _u8(after), sigma, levels, mask)
    return Image.fromarray(out), {"reverted_px": n_revert,
                                  "reverted_fraction_of_changed":
                                      round(n_revert / max(1, changed), 5)}


def finalize_local_edit(before: Image.Image, after: Image.Image, mask: np.ndarray | None,
                        config: FinalizeConfig | None = None
                        ) -> tuple[Image.Image, dict[str, Any]]:
    """Background preservation then Emu Edit thresholding of one local edit.

    Deterministic (pure numpy/OpenCV on the pixels), so replay reproduces it. Returns
    ``after`` unchanged (and ``{"applied": False}``) when there is no usable mask or the
    size changed. Works on uint8 views of the mask's box (no PIL crops or copies)."""
    cfg = config or FinalizeConfig()
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
    a_full, b_full = _u8(before), _u8(after)
    a_c = np.ascontiguousarray(a_full[y0:y1, x0:x1])
    out_c = np.ascontiguousarray(b_full[y0:y1, x0:x1])
    mc = np.ascontiguousarray(m[y0:y1, x0:x1])
    if cfg.preserve_background:
        out_c, leaked = _preserve(a_c, out_c, mc)
        figures.update({"outside_changed_px_before": leaked, "outside_identical": True})
    if cfg.threshold_enabled:
        out_c, n_revert, changed = _threshold(a_c, out_c, cfg.threshold_sigma,
                                              cfg.threshold_levels, mc,
                                              in_place=cfg.preserve_background)
        figures.update({"reverted_px": n_revert,
                        "reverted_fraction_of_changed": round(n_revert / max(1, changed), 5)})
    if (x0, y0, x1, y1) == (0, 0, W, H):  # the box is the image (a whole-image mask)
        return Image.fromarray(out_c), figures
    out = np.array(a_full if cfg.preserve_background else b_full)
    out[y0:y1, x0:x1] = out_c
    return Image.fromarray(out), figures


def apply_result(state: ToolState, result: ToolResult) -> None:
    """Apply a tool's result to the working state (the only place this happens)."""
    if result.image is not None:
        if result.image.size != state.image.size and result.mask is None:
            state.mask = None  # an old mask no longer fits the new geometry
        state.image = result.image
    if result.mask is not None:
        state.mask = result.mask
    if result.detections is not None:
        state.detections = result.detections
    rgba = result.extra.get("rgba")
    if isinstance(rgba, Image.Image) and rgba.mode == "RGBA":
        # A cut-out: when the image is left as it was, its alpha is the new transparency (the
        # pixels under it are kept, so restoring the alpha undoes it losslessly); a cut-out
        # flattened onto a colour (``result.image`` set) is opaque.
        alpha = rgba.getchannel("A")
        opaque = alpha.getextrema()[0] == 255  # a full cut-out is no transparency at all
        state.alpha = alpha if result.image is None and not opaque else None
    if state.alpha is not None and state.alpha.size != state.image.size:
        state.alpha = None


class Runner:
    """Runs calls through a registry against a ToolState and records them (module doc)."""

    def __init__(self, registry=None, finalize: FinalizeConfig | None = None) -> None:
        if registry is None:
            from imagent.tools.registry import default_registry

            registry = default_registry()
        self.registry = registry
        self.finalize = finalize or FinalizeConfig()

    def run_call(self, call: ToolCall | dict, state: ToolState) -> CallRecord:
        call = call if isinstance(call, ToolCall) else ToolCall(**call)
        t = time.perf_counter()
        before = state.image
        result = self.registry.run(call, state)
        apply_result(state, result)
        stored = result.extra.get("call", call.to_json_dict())
        finalize = None
        if is_local_edit(stored):
            state.image, finalize = finalize_local_edit(before, state.image, state.mask, self.finalize)
        geometry = stored["name"] == "outpaint" or (
            stored["name"] == "global_edit" and (stored.get("args") or {}).get("operation") in GEOMETRY_OPS)
        if geometry:
            state.alpha = None  # the transparency cannot follow a geometry change
        record = CallRecord(call=stored, backend=result.backend, model_ids=dict(result.model_ids),
                            metrics=result.metrics, message=result.message,
                            seconds=time.perf_counter() - t, finalize=finalize,
                            geometry_changed=geometry, result=result)
        state.emit(kind="tool", name=call.name, message=result.message,
                   seconds=round(record.seconds, 4))
        return record

    def run(self, calls: Iterable[ToolCall | dict], state: ToolState, *,
            after: Callable[[CallRecord, ToolState], None] | None = None) -> list[CallRecord]:
        """Run ``calls`` in order; ``after(record, state)`` sees each record (it may raise to
        stop the run, e.g. to ask which candidate was meant)."""
        records = []
        for call in calls:
            record = self.run_call(call, state)
            records.append(record)
            if after is not None:
                after(record, state)
        return records

    def replay(self, image: Image.Image, calls: Iterable[dict], *, models: Any = None,
               alpha: Image.Image | None = None, with_alpha: bool = False
               ) -> Image.Image | tuple[Image.Image, Image.Image | None]:
        """Re-run stored calls on ``image`` (what replay does for each version). ``alpha`` is
        the parent's transparency; ``with_alpha=True`` returns ``(image, alpha)``."""
        from imagent.tools.registry import upgrade_call

        state = ToolState(image=image, original=image, models=models, alpha=alpha)
        # stored calls: a call without ``impl`` was made by 0.1.0 (tools/registry.py IMPLS)
        self.run([upgrade_call(c.to_json_dict() if isinstance(c, ToolCall) else dict(c))
                  for c in calls], state)
        return (state.image, state.alpha) if with_alpha else state.image


__all__ = ["CallRecord", "FinalizeConfig", "GEOMETRY_OPS", "LOCAL_EDIT_TOOLS", "Runner",
           "apply_result", "finalize_local_edit", "is_local_edit", "preserve_background",
           "threshold_change"]
