"""The result check: a policy over the runner. It never changes pixels itself.

For one plan step it runs the step's calls through the ``Runner`` (which applies and
finalises each call: preservation and Emu Edit thresholding are part of the recorded rule,
``tools/runner.py``), then judges the pixels that will be committed:

- **Asking first**: after a ``ground`` call, a grounding that is ambiguous (several close
  candidates, no instance named) or weak (``Grounding.confirm``: a classical detector, a
  colour region that looks like skin or that a specific noun cannot be checked against, a
  place standing in for an object it could not find) stops the step with
  ``NeedsClarification``: nothing is edited, the assistant asks.
- **Effect**: the fraction of the mask (or of the image) that visibly changed must reach a
  minimum, else the edit had "no visible effect".
- **Verification of a removal**: for an object found by a detector or by colour, the same
  referent without its instance words (``Referent.without_instance``: "the sixth red square"
  → "red square") is grounded again on the result; a candidate in the removed region means
  the object is still there. For every removal (places and boxes too), the filled region
  must not stand out from its surroundings (``standout``): a fill whose colour statistics
  sit far from the ring around it is a visible patch, not a removal.
- **Retries**: a failed removal is run again through the runner with a larger mask (attached
  shadow included) and a new seed, up to ``max_retries`` times; the best attempt is kept, and
  it counts as passed only if it passed. The figures of every attempt are returned
  (``StepOutcome``), and they describe exactly the pixels of the kept attempt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import cv2
import numpy as np
from PIL import Image

from imagent.tools import masks as M
from imagent.tools.runner import CallRecord, FinalizeConfig, Runner
from imagent.tools.types import ToolCall, ToolState

# Edit kinds (planners.base.EditKind) whose result is judged inside its mask.
LOCAL_KINDS = ("remove", "add", "replace", "local")


@dataclass
class CheckConfig(FinalizeConfig):
    """Every threshold of the check, with defaults (the finalisation's too). Levels 0..255."""

    effect_pixel_levels: float = 8.0  # a pixel "visibly changed" above this
    effect_min_fraction: float = 0.02  # of the mask's pixels (>= 0.5)
    verify_removal: bool = True
    verify_score: float = 0.5  # a re-detected candidate above this = still there
    verify_overlap: float = 0.3  # ...if this fraction of its box lies inside the mask
    standout_max: float = 1.6  # a fill whose colour z-score against its ring exceeds this stands out
    max_retries: int = 2  # removal retries after a failed check
    retry_dilate_px: int = 6  # extra dilation per retry
    retry_dilate_frac: float = 0.05  # plus this fraction of the object size per retry


class NeedsClarification(Exception):
    """A step stopped before editing: the grounding was ambiguous or too weak to act on."""

    def __init__(self, grounding: Any, reason: str) -> None:
        super().__init__(reason)
        self.grounding = grounding
        self.reason = reason


@dataclass
class Attempt:
    """One try at a step: its records, its figures, whether it passed."""

    n: int
    passed: bool
    failures: list[str]
    records: list[CallRecord]
    figures: dict[str, Any]
    state: tuple = field(default=(), repr=False)  # (image, mask, detections) after it

    def to_dict(self) -> dict[str, Any]:
        return {"attempt": self.n, "passed": self.passed, "failures": list(self.failures),
                "calls": [r.args for r in self.records if r.name in ("build_mask", "remove")],
                **self.figures}


@dataclass
class StepOutcome:
    """A checked step: the kept attempt's records and every attempt's figures."""

    kind: str
    target: str | None
    attempts: list[Attempt]
    kept: int = 0

    @property
    def final(self) -> Attempt:
        return next(a for a in self.attempts if a.n == self.kept)

    @property
    def passed(self) -> bool:
        return self.final.passed

    @property
    def failures(self) -> list[str]:
        return self.final.failures

    @property
    def records(self) -> list[CallRecord]:
        return self.final.records

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "target": self.target, "passed": self.passed,
                "failures": self.failures, "kept_attempt": self.kept,
                "attempts": [a.to_dict() for a in self.attempts]}


# ----------------------------------------------------------------------------- figures
def effect(before: Image.Image, after: Image.Image, mask: np.ndarray | None, *,
           pixel_levels: float = 8.0) -> dict[str, Any]:
    """Fraction of the mask (or of the image) whose pixels changed by more than
    ``pixel_levels`` in some channel, and the mean change there."""
    d = max_abs_diff(before, after)
    if mask is None:  # the whole image: no region to index (exact, and fast at 12 MP)
        n = d.size
        over = int(np.count_nonzero(d > pixel_levels))
        return {"changed_fraction_in_mask": round(over / max(1, n), 5),
                "mean_abs_in_mask": round(float(cv2.mean(d)[0]) if n else 0.0, 4)}
    region = np.asarray(mask) >= 0.5
    if not region.any():
        region = np.asarray(mask) > 0
    n = int(region.sum())
    return {"changed_fraction_in_mask": round(float((d[region] > pixel_levels).sum()) / max(1, n), 5),
            "mean_abs_in_mask": round(float(d[region].mean()) if n else 0.0, 4)}


def max_abs_diff(before: Image.Image, after: Image.Image) -> np.ndarray:
    """max over the channels of |before - after| per pixel (uint8 H x W; RGB images of one
    size), by OpenCV: a few ms at 12 MP where int16 numpy took most of a second."""
    a = np.asarray(before if before.mode == "RGB" else before.convert("RGB"))
    b = np.asarray(after if after.mode == "RGB" else after.convert("RGB"))
    d = cv2.absdiff(a, b)
    if d.size == 0:
        return np.zeros(d.shape[:2], np.uint8)
    c0, c1, c2 = cv2.split(d)
    return cv2.max(cv2.max(c0, c1), c2)


def standout(image: Image.Image, mask: np.ndarray) -> dict[str, Any]:
    """How far the masked region's colour sits from the ring around it: the largest per-channel
    |mean(fill) - mean(ring)| / (std(ring) + 4) in Lab. A seamless fill scores well under 1;
    a pasted roof in a clear sky, or an object left in place, scores several."""
    m = np.asarray(mask) >= 0.5
    area = int(m.sum())
    if area == 0:
        return {"standout": 0.0}
    bb = M.mask_bbox(m.astype(np.float32), 0.5)
    r = int(max(6, min(64, 0.2 * np.sqrt(area))))
    H, W = m.shape
    x0, y0, x1, y1 = max(0, bb[0] - r), max(0, bb[1] - r), min(W, bb[2] + r), min(H, bb[3] + r)
    mc = m[y0:y1, x0:x1].astype(np.uint8)
    ring = cv2.dilate(mc, np.ones((2 * r + 1, 2 * r + 1), np.uint8)) > 0
    ring &= mc == 0
    if int(ring.sum()) < 16:
        return {"standout": 0.0, "ring_px": int(ring.sum())}
    lab = cv2.cvtColor(np.ascontiguousarray(np.asarray(image.convert("RGB"))[y0:y1, x0:x1]),
                       cv2.COLOR_RGB2LAB).astype(np.float32)
    fill, around = lab[mc > 0], lab[ring]
    z = np.abs(fill.mean(axis=0) - around.mean(axis=0)) / (around.std(axis=0) + 4.0)
    return {"standout": round(float(z.max()), 3), "ring_px": int(ring.sum())}


def verify_removal(after: Image.Image, grounding: Any, mask: np.ndarray, *,
                   score: float = 0.5, overlap: float = 0.3, models: Any = None) -> dict[str, Any]:
    """Ground the removed referent again, without its instance words, on ``after``; the removal
    failed if a candidate found the same way lies in the removed region with a score >=
    ``score``. Places and boxes cannot be re-found this way (``verified: None``)."""
    from imagent.errors import GroundingError
    from imagent.tools.ground import ground_full, ground_with_model

    method = getattr(grounding, "method", None)
    if method not in ("detector", "colour", "grounding-dino", "person", "face", "text"):
        return {"verified": None, "reason": f"grounded by {method}: not re-detectable"}
    ref = grounding.referent.without_instance()
    if ref.box is not None and ref.names_object:
        ref = ref.model_copy(update={"box": None})
    m = np.asarray(mask) >= 0.5
    try:
        if method == "grounding-dino":
            g = ground_with_model(models, after, ref)
        else:
            g = ground_full(after, ref)
    except GroundingError:
        return {"verified": True, "still_found": 0, "best_score": 0.0, "looked_for": ref.describe()}
    best, hits = 0.0, 0
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
    return {"verified": hits == 0, "still_found": hits, "best_score": round(best, 4),
            "looked_for": ref.describe()}


def judge(before: Image.Image, after: Image.Image, mask: np.ndarray | None, *, kind: str,
          config: CheckConfig, grounding: Any = None, models: Any = None
          ) -> tuple[list[str], dict[str, Any]]:
    """The failures and figures of a step's committed pixels (no pixel is changed)."""
    cfg = config
    figures: dict[str, Any] = {}
    failures: list[str] = []
    if before.size != after.size:
        figures["size_changed"] = True
        return failures, figures
    local = kind in LOCAL_KINDS and mask is not None and np.asarray(mask).shape == \
        (after.height, after.width)
    if local:
        m = np.asarray(mask, np.float32)
        bb = M.mask_bbox(m, 1e-6)
        if bb is None:
            eff = {"changed_fraction_in_mask": 0.0, "mean_abs_in_mask": 0.0}
        else:
            x0, y0, x1, y1 = bb
            eff = effect(before.crop(bb), after.crop(bb), m[y0:y1, x0:x1],
                         pixel_levels=cfg.effect_pixel_levels)
    else:
        # a whole-image adjustment may be subtle on purpose ("a bit warmer"): any real change
        # of a few levels counts; "rotate by 360 degrees" changes nothing and fails
        eff = effect(before, after, None, pixel_levels=min(cfg.effect_pixel_levels, 2.0))
    figures["effect"] = eff
    levels = cfg.effect_pixel_levels if local else min(cfg.effect_pixel_levels, 2.0)
    if eff["changed_fraction_in_mask"] < cfg.effect_min_fraction and kind != "extract":
        failures.append(f"no visible effect: only {eff['changed_fraction_in_mask']:.1%} of the "
                        f"{'region' if local else 'image'} changed by more than "
                        f"{levels:g} levels (minimum {cfg.effect_min_fraction:.0%})")
    if kind == "remove" and cfg.verify_removal and local:
        if grounding is not None:
            v = verify_removal(after, grounding, mask, score=cfg.verify_score,
                               overlap=cfg.verify_overlap, models=models)
            figures["verification"] = v
            if v.get("verified") is False:
                failures.append(f"{v.get('looked_for')!r} is still found in the removed region "
                                f"(score {v['best_score']:.2f} >= {cfg.verify_score:g})")
        s = standout(after, mask)
        s["before"] = standout(before, mask)["standout"]
        figures["standout"] = s
        if s["standout"] > cfg.standout_max:
            failures.append(f"the filled region stands out from its surroundings (colour score "
                            f"{s['standout']:.2f} > {cfg.standout_max:g}; before the removal "
                            f"{s['before']:.2f})")
    return failures, figures


# ----------------------------------------------------------------------------- the policy
def _gate(ask: bool) -> Callable[[CallRecord, ToolState], None]:
    def after(record: CallRecord, state: ToolState) -> None:
        if not ask or record.name != "ground" or record.result is None:
            return
        g = record.result.extra.get("grounding")
        if g is None:
            return
        if g.ambiguous:
            raise NeedsClarification(g, f"{len(g.detections)} candidates are about equally likely")
        if g.confirm:
            raise NeedsClarification(g, g.confirm)
    return after


def retry_calls(first: list[dict], attempt: int, cfg: CheckConfig) -> list[dict]:
    """A removal's calls for retry ``attempt``: the mask grown (more px, a larger fraction of
    the object, its attached shadow included) and a new seed for the fill. The ground call
    keeps the referent it resolved, so the same instance is grown."""
    out = []
    for c in first:
        args = dict(c["args"])
        if c["name"] == "build_mask":
            args["dilate"] = min(2048, int(args.get("dilate", 0)) + cfg.retry_dilate_px * attempt)
            args["dilate_frac"] = round(min(2.0, float(args.get("dilate_frac", 0.0)) +
                                            cfg.retry_dilate_frac * attempt), 4)
            args["shadow"] = True
        elif c["name"] == "remove":
            args["seed"] = (int(args.get("seed", 0)) + attempt) % (2**32)
        out.append({"name": c["name"], "args": args})
    return out


def _rank(a: Attempt) -> tuple:
    v = a.figures.get("verification") or {}
    s = a.figures.get("standout") or {}
    eff = a.figures.get("effect") or {}
    return (a.passed, -float(v.get("best_score") or 0.0), -float(s.get("standout") or 0.0),
            float(eff.get("changed_fraction_in_mask") or 0.0))


def run_step(runner: Runner, state: ToolState, calls: list[ToolCall | dict], *, kind: str,
             target: str | None = None, config: CheckConfig | None = None, ask: bool = True,
             emit: Callable[..., None] | None = None) -> StepOutcome:
    """Run one step's calls, judge the result, retry a failed removal, keep the best attempt.

    Raises ``NeedsClarification`` (nothing edited) when a ground call's result is ambiguous or
    weak and ``ask`` is true. On return ``state`` holds the kept attempt's pixels, and the
    outcome's records are exactly the calls that reproduce them."""
    cfg = config or CheckConfig()
    snapshot = (state.image, state.mask, state.detections)
    before = snapshot[0]

    def attempt(n: int, step_calls: list) -> Attempt:
        state.image, state.mask, state.detections = snapshot
        records = runner.run(step_calls, state, after=_gate(ask and n == 0))
        grounding = next((r.result.extra.get("grounding") for r in records
                          if r.name == "ground" and r.result is not None), None)
        failures, figures = judge(before, state.image, state.mask, kind=kind, config=cfg,
                                  grounding=grounding, models=state.models)
        return Attempt(n, not failures, failures, records, figures,
                       (state.image, state.mask, state.detections))

    first = attempt(0, list(calls))
    attempts = [first]
    best = first
    if not first.passed and kind == "remove" and cfg.max_retries > 0:
        stored = [r.call for r in first.records]
        for n in range(1, cfg.max_retries + 1):
            if emit is not None:
                emit(kind="retry", step=kind, attempt=n, reason="; ".join(attempts[-1].failures))
            a = attempt(n, retry_calls(stored, n, cfg))
            attempts.append(a)
            if _rank(a) > _rank(best):
                best = a
            if a.passed:
                break
    state.image, state.mask, state.detections = best.state
    return StepOutcome(kind=kind, target=target, attempts=attempts, kept=best.n)


__all__ = ["Attempt", "CheckConfig", "LOCAL_KINDS", "NeedsClarification", "StepOutcome",
           "effect", "judge", "max_abs_diff", "retry_calls", "run_step", "standout", "verify_removal"]
