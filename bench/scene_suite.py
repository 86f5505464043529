"""The scene suite: every request of ``bench/scenes/scenes.py`` through the public API,
each outcome classified **right**, **asked** or **wrong** (= wrong but reported done).

    .venv/bin/python bench/scene_suite.py [--only ID[,ID...]] [--save-images DIR] [--json PATH | --no-json]

Each request runs in a fresh session (``Assistant.open(image, home=<temporary store>)``)
opened on the scene's image, so requests never see each other's edits. Outcomes:

- **asked**: the turn is a question (``turn.question``, or ``turn.status == "asked"``), or
  an ``ImagentError`` other than ``InternalError`` was raised (a refusal with a message),
  or the turn's status is ``"failed"`` (the result check failed and the reply says so).
- **right**: the turn reports the edit done and the pixels agree with the target:
  * boxes (or hand-marked ellipses/polygons): the changed-pixel map between
    ``a.parent_image`` and ``a.image`` is "max channel |Δ| > 12"; at least 80 % of the
    changed pixels lie inside the target's parts, each grown by 10 % of its size plus 4 px on
    every side, and every part of the target has at least ``min_cover`` (default 20 %) of
    its own pixels changed -- an edit of "the man" that
    touches only his hand, or "the cat's eyes" that touches only one eye, is not right.
    Any one of the request's alternative targets may satisfy this instead.
  * ``whole``: the size is unchanged and at least 30 % of the pixels changed. Here the map
    is "max channel |Δ| > 2": a gentle global adjustment ("a bit brighter", black and white
    of an almost grey backdrop) moves nearly every pixel, but by little.
  * ``mode="cutout"``: the new version carries an alpha channel; at least 80 % of the
    subject's own pixels are opaque (alpha >= 128) and at least 80 % of the pixels outside
    the grown subject are transparent (alpha < 128).
  * ``mode="background"``: the subject's parts stay as they were (at most 10 % of the
    changed pixels, "max channel |Δ| > 2", inside the subject shrunk by the margin) and at
    least 30 % of the pixels outside the grown subject changed.
  * ``outpaint:<side>``: the canvas grew on that side only (``horizontal`` = both left and
    right), by the asked fraction ±5 % of the original size when the request names one, and
    the original pixels are still there (mean |Δ| < 6 over the original's area).
- **wrong**: reported done but not right -- including any edit of a request that should
  have been asked back (``expect="ask"``) and a "done" turn that changed nothing.
- **error**: an exception that is no clear refusal (a crash, an ``InternalError``).

``turn.status`` is read with a fallback (a question -> "asked", a new version -> "done"),
so this runs against an assistant with or without it. Prints a table per kind and totals,
and writes ``bench/results/scenes.json`` (per request: scene, request, expected, outcome,
reply, seconds, the figures behind the verdict). ``--save-images DIR`` writes each
request's before/after PNGs. The scenes on real photos need ``../shared/benchmarks/images``;
without it they are skipped (and said so).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.scenes.scenes import PHOTOS_HERE, SCENES, Request, Scene, Shape, photos_dir  # noqa: E402

CHANGE_LEVEL = 12   # a pixel changed: max channel |Δ| above this
WHOLE_LEVEL = 2     # for whole-image edits
INSIDE_MIN = 0.8    # fraction of the changed pixels that must lie inside the (grown) target
WHOLE_MIN = 0.3     # fraction of the image a whole-image edit must change
GROW_FRAC, GROW_PX = 0.10, 4
OUTCOMES = ("right", "asked", "wrong", "error")


# --- the verdict on pixels ---------------------------------------------------------------------

def changed_map(before: Image.Image, after: Image.Image, level: int = CHANGE_LEVEL) -> np.ndarray:
    a = np.asarray(before.convert("RGB"), dtype=np.int16)
    b = np.asarray(after.convert("RGB"), dtype=np.int16)
    return np.abs(a - b).max(axis=2) > level


def grown(box, w: int, h: int) -> tuple[int, int, int, int]:
    """A box grown by 10 % of its size plus 4 px on every side, clipped to the image."""
    x0, y0, x1, y1 = box
    gx, gy = GROW_FRAC * (x1 - x0) + GROW_PX, GROW_FRAC * (y1 - y0) + GROW_PX
    return (max(0, int(x0 - gx)), max(0, int(y0 - gy)), min(w, int(np.ceil(x1 + gx))),
            min(h, int(np.ceil(y1 + gy))))


def part_masks(part, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """(the part's own pixels, the part grown by the margin) as boolean H×W maps. A shape
    (ellipse, polygon) grows by the margins of its bounding box (a rectangular dilation)."""
    own = np.zeros((h, w), bool)
    if isinstance(part, Shape):
        own = part.mask(w, h)
        x0, y0, x1, y1 = part.bbox
        gx = int(np.ceil(GROW_FRAC * (x1 - x0) + GROW_PX))
        gy = int(np.ceil(GROW_FRAC * (y1 - y0) + GROW_PX))
        kernel = np.ones((2 * gy + 1, 2 * gx + 1), np.uint8)
        return own, cv2.dilate(own.astype(np.uint8), kernel) > 0
    x0, y0, x1, y1 = part
    own[max(0, y0):y1, max(0, x0):x1] = True
    big = np.zeros((h, w), bool)
    gx0, gy0, gx1, gy1 = grown(part, w, h)
    big[gy0:gy1, gx0:gx1] = True
    return own, big


def judge_boxes(changed: np.ndarray, parts: list, min_cover: float) -> dict[str, Any]:
    """Whether a change map is an edit of exactly these parts (see the module docstring)."""
    h, w = changed.shape
    n = int(changed.sum())
    inside = np.zeros_like(changed)
    covers = []
    for part in parts:
        own, big = part_masks(part, w, h)
        inside |= big
        covers.append(round(float((changed & own).sum() / max(1, own.sum())), 3))
    frac_in = float((changed & inside).sum() / n) if n else 0.0
    ok = n > 0 and frac_in >= INSIDE_MIN and all(c >= min_cover for c in covers)
    return {"ok": ok, "changed_px": n, "inside": round(frac_in, 3), "cover": covers}


def judge_outpaint(before: Image.Image, after: Image.Image, side: str, grow: float | None) -> dict[str, Any]:
    w, h = before.size
    W, H = after.size
    dw, dh = W - w, H - h
    want_w = side in ("left", "right", "horizontal")
    sizes_ok = (dw > 0 and dh == 0) if want_w else (dh > 0 and dw == 0)
    if grow is not None and sizes_ok:
        got = (dw / w) if want_w else (dh / h)
        sizes_ok = abs(got - grow) <= 0.05
    offsets = {"right": [(0, 0)], "bottom": [(0, 0)], "left": [(dw, 0)], "top": [(0, dh)],
               "horizontal": [(dw // 2, 0), ((dw + 1) // 2, 0)],
               "vertical": [(0, dh // 2), (0, (dh + 1) // 2)]}[side]
    kept = None
    if dw >= 0 and dh >= 0:
        a = np.asarray(before.convert("RGB"), dtype=np.int16)
        b = np.asarray(after.convert("RGB"), dtype=np.int16)
        kept = min(float(np.abs(b[y:y + h, x:x + w] - a).mean()) for x, y in offsets)
    if side == "horizontal" and sizes_ok:  # both sides grew: the original is not at an edge
        sizes_ok = kept is not None and kept < 6
    ok = bool(sizes_ok and kept is not None and kept < 6)
    return {"ok": ok, "size_before": [w, h], "size_after": [W, H],
            "kept_mean_abs": None if kept is None else round(kept, 2)}


def _subject(scene: Scene, parts, w: int, h: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(own, grown, shrunk) maps of a cut-out's or background edit's subject parts."""
    own = np.zeros((h, w), bool)
    big = np.zeros((h, w), bool)
    for part in scene.resolve(parts):
        o, b = part_masks(part, w, h)
        own |= o
        big |= b
    k = max(3, int(0.05 * min(w, h)) | 1)
    shrunk = cv2.erode(own.astype(np.uint8), np.ones((k, k), np.uint8)) > 0
    return own, big, shrunk


def judge_cutout(scene: Scene, req: Request, alpha: Image.Image | None, w: int, h: int) -> dict[str, Any]:
    if alpha is None:
        return {"ok": False, "why": "the new version has no transparency"}
    a = np.asarray(alpha.convert("L")) >= 128
    tried = []
    for i, parts in enumerate((req.target, *req.alts)):
        own, big, _ = _subject(scene, parts, w, h)
        opaque_in = float(a[own].mean()) if own.any() else 0.0
        clear_out = float((~a[~big]).mean()) if (~big).any() else 1.0
        v = {"ok": opaque_in >= 0.8 and clear_out >= 0.8, "opaque_inside": round(opaque_in, 3),
             "transparent_outside": round(clear_out, 3)}
        if v["ok"]:
            return {**v, "alternative": i}
        tried.append(v)
    return {**tried[0], "alternatives_tried": tried[1:]}


def judge_background(scene: Scene, req: Request, before: Image.Image, after: Image.Image) -> dict[str, Any]:
    w, h = before.size
    changed = changed_map(before, after, WHOLE_LEVEL)
    _, big, shrunk = _subject(scene, req.target, w, h)
    n = int(changed.sum())
    in_subject = float((changed & shrunk).sum() / n) if n else 0.0
    outside = float(changed[~big].mean()) if (~big).any() else 0.0
    return {"ok": n > 0 and in_subject <= 0.1 and outside >= WHOLE_MIN,
            "changed_px": n, "in_subject": round(in_subject, 3), "outside_changed": round(outside, 3)}


def judge(req: Request, scene: Scene, before: Image.Image | None, after: Image.Image,
          alpha: Image.Image | None = None) -> dict[str, Any]:
    """Whether a done edit is the right one, with the figures behind the verdict. ``alpha``:
    the new version's transparency, if it has one."""
    if req.expect == "ask":
        return {"ok": False, "why": "an ambiguous or vague request was carried out instead of asked"}
    if before is None:
        return {"ok": False, "why": "reported done, but there is no new version"}
    target = req.target
    if isinstance(target, str) and target.startswith("outpaint:"):
        return judge_outpaint(before, after, target.split(":", 1)[1], req.grow)
    if before.size != after.size:
        return {"ok": False, "why": f"the size changed {before.size} -> {after.size}"}
    if req.mode == "cutout":
        return judge_cutout(scene, req, alpha, *after.size)
    if req.mode == "background":
        return judge_background(scene, req, before, after)
    if target == "whole":
        frac = float(changed_map(before, after, WHOLE_LEVEL).mean())
        return {"ok": frac >= WHOLE_MIN, "changed_fraction": round(frac, 3)}
    changed = changed_map(before, after)
    tried = []
    for parts in (target, *req.alts):
        v = judge_boxes(changed, scene.resolve(parts), req.min_cover)
        v["parts"] = [_part_repr(b) for b in scene.resolve(parts)]
        tried.append(v)
        if v["ok"]:
            return {**v, "alternative": len(tried) - 1}
    return {**tried[0], "ok": False, "alternatives_tried": tried[1:]}


def turn_status(turn) -> str:
    """The turn's status, with fallbacks for an assistant that does not set ``Turn.status``."""
    status = getattr(turn, "status", None)
    if status:
        return str(status)
    if getattr(turn, "question", None):
        return "asked"
    return "done" if getattr(turn, "version", None) is not None else "asked"


def classify(status: str, verdict: dict[str, Any] | None) -> str:
    if status in ("asked", "failed"):
        return "asked"
    if status == "done":
        return "right" if verdict and verdict.get("ok") else "wrong"
    return "wrong"  # "moved"/"looked" or anything else for an editing request: not what was asked


# --- running ----------------------------------------------------------------------------------------

def scene_image_path(scene: Scene, folder: Path) -> Path:
    """The scene's image as a file the assistant can open (real photos are used in place)."""
    if scene.source.startswith("photo:") and scene.make is None:
        return photos_dir() / scene.source.split(":", 1)[1]
    if scene.source.startswith("asset:") and scene.make is None:
        return REPO / "assets" / scene.source.split(":", 1)[1]
    if scene.source.startswith("bench:") and scene.make is None:
        return PHOTOS_HERE / scene.source.split(":", 1)[1]
    path = folder / f"{scene.id}.png"
    if not path.exists():
        scene.load()[0].save(path)
    return path


def run_request(scene: Scene, req: Request, *, workdir: Path | None = None,
                save_images: Path | None = None, index: int = 0,
                overrides: dict[str, Any] | None = None, keep_images: bool = False) -> dict[str, Any]:
    """Run one request in a fresh session and classify it; returns the result record.

    ``keep_images=True`` adds ``rec["images"] = (before, after)`` for a done turn (PIL
    images, for callers that check more than the verdict; not JSON)."""
    from imagent import Assistant
    from imagent.errors import ImagentError, InternalError

    rec: dict[str, Any] = {"scene": scene.id, "kind": req.kind or scene.kind, "request": req.text,
                           "expected": req.expect, "target": _target_repr(scene, req)}
    with tempfile.TemporaryDirectory(prefix="imagent-scene-") as tmp:
        folder = Path(workdir) if workdir else Path(tmp)
        image_path = scene_image_path(scene, folder)
        t0 = time.perf_counter()
        a = None
        try:
            a = Assistant.open(image_path, home=str(Path(tmp) / "home"), **(overrides or {}))
            turn = a.ask(req.text)
            status = turn_status(turn)
            rec.update(status=status, raw_status=getattr(turn, "status", None), reply=turn.reply,
                       question=bool(getattr(turn, "question", None)))
            check = (getattr(turn, "metrics", None) or {}).get("check") or {}
            rec["check_passed"] = check.get("passed")
            verdict = None
            if status == "done":
                before, after = a.parent_image, a.image
                head = a.head
                alpha = a.store.load_alpha(head) if getattr(head, "alpha_hash", None) else None
                verdict = judge(req, scene, before, after, alpha)
                if save_images is not None:
                    _save_pair(save_images, index, scene, req, before if before is not None else after, after)
                if keep_images:
                    rec["images"] = (before, after)
            rec["verdict"] = verdict
            rec["outcome"] = classify(status, verdict)
        except InternalError as e:
            rec.update(outcome="error", status="error", reply=f"{type(e).__name__}: {e}")
        except ImagentError as e:
            hint = getattr(e, "hint", None)
            rec.update(outcome="asked", status="refused", reply=f"{type(e).__name__}: {e}"
                       + (f" (hint: {hint})" if hint else ""))
        except Exception as e:  # noqa: BLE001 - a crash is recorded, not raised
            rec.update(outcome="error", status="error", reply=f"{type(e).__name__}: {e}")
        finally:
            if a is not None:
                a.close()
        rec["seconds"] = round(time.perf_counter() - t0, 3)
    return rec


def _part_repr(part):
    if isinstance(part, Shape):
        return {part.kind: [list(p) if isinstance(p, tuple) else p for p in part.points]}
    return list(part)


def _target_repr(scene: Scene, req: Request):
    if isinstance(req.target, tuple):
        try:
            return [_part_repr(b) for b in scene.resolve(req.target)]
        except Exception:  # noqa: BLE001
            return list(req.target)
    return req.target


def _save_pair(folder: Path, index: int, scene: Scene, req: Request, before, after) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{index:03d}_{scene.id}_" + "".join(c if c.isalnum() else "_" for c in req.text)[:40]
    before.save(folder / f"{stem}_before.png")
    after.save(folder / f"{stem}_after.png")


def selected_scenes(only: list[str] | None = None) -> tuple[list[Scene], list[str]]:
    """The scenes to run and the ids skipped (real photos missing)."""
    have_photos = photos_dir().is_dir()
    chosen, skipped = [], []
    for s in SCENES:
        if only and s.id not in only:
            continue
        if s.needs_photos and not have_photos:
            skipped.append(s.id)
            continue
        chosen.append(s)
    return chosen, skipped


def run_suite(only: list[str] | None = None, *, save_images: Path | None = None,
              progress: Callable[[str], None] | None = None,
              overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run the suite; returns {"results": [...], "skipped": [...], "summary": {...}}."""
    if only:
        unknown = set(only) - {s.id for s in SCENES}
        if unknown:
            raise KeyError(f"unknown scene id(s): {', '.join(sorted(unknown))}")
    scenes, skipped = selected_scenes(only)
    results = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="imagent-scenes-") as work:
        i = 0
        for s in scenes:
            for req in s.requests:
                rec = run_request(s, req, workdir=Path(work), save_images=save_images, index=i,
                                  overrides=overrides)
                results.append(rec)
                i += 1
                if progress:
                    progress(f"{rec['outcome']:<6} {rec['seconds']:6.2f}s  {s.id:<16} {req.text!r}"
                             + ("" if rec["outcome"] != "wrong" else f"  <- {_why(rec)}"))
    return {"results": results, "skipped": skipped, "summary": summarize(results, scenes),
            "seconds": round(time.perf_counter() - t0, 2)}


def _why(rec: dict[str, Any]) -> str:
    v = rec.get("verdict") or {}
    if "why" in v:
        return v["why"]
    keys = ("changed_px", "inside", "cover", "changed_fraction", "size_after", "kept_mean_abs",
            "opaque_inside", "transparent_outside", "in_subject", "outside_changed")
    return ", ".join(f"{k}={v[k]}" for k in keys if k in v)


def summarize(results: list[dict[str, Any]], scenes: list[Scene] | None = None) -> dict[str, Any]:
    by_kind: dict[str, Counter] = defaultdict(Counter)
    for r in results:
        by_kind[r["kind"]][r["outcome"]] += 1
    totals = Counter(r["outcome"] for r in results)
    return {
        "scenes": len({r["scene"] for r in results}),
        "requests": len(results),
        "totals": {o: totals.get(o, 0) for o in OUTCOMES},
        "by_kind": {k: {o: c.get(o, 0) for o in OUTCOMES} for k, c in sorted(by_kind.items())},
        "expected_ask": sum(r["expected"] == "ask" for r in results),
        "scene_kinds": dict(Counter(s.kind for s in scenes)) if scenes else None,
    }


def table(summary: dict[str, Any]) -> str:
    rows = [f"{'kind':<16} {'right':>6} {'asked':>6} {'wrong':>6} {'error':>6}"]
    for kind, c in summary["by_kind"].items():
        rows.append(f"{kind:<16} {c['right']:>6} {c['asked']:>6} {c['wrong']:>6} {c['error']:>6}")
    t = summary["totals"]
    rows.append(f"{'total':<16} {t['right']:>6} {t['asked']:>6} {t['wrong']:>6} {t['error']:>6}"
                f"   ({summary['requests']} requests, {summary['scenes']} scenes)")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", help="scene id(s), comma-separated")
    p.add_argument("--save-images", type=Path, metavar="DIR", help="write before/after PNGs here")
    p.add_argument("--json", type=Path, default=REPO / "bench" / "results" / "scenes.json",
                   help="where to write the results (default: bench/results/scenes.json)")
    p.add_argument("--no-json", action="store_true", help="write no results file")
    p.add_argument("--profile", help="settings profile (default: as configured)")
    p.add_argument("--quiet", action="store_true", help="no line per request")
    args = p.parse_args(argv)
    only = [s.strip() for s in args.only.split(",")] if args.only else None
    overrides = {"profile": args.profile} if args.profile else None
    out = run_suite(only, save_images=args.save_images, overrides=overrides,
                    progress=None if args.quiet else (lambda line: print(line, flush=True)))
    if out["skipped"]:
        print(f"skipped (no photos at {photos_dir()}): {', '.join(out['skipped'])}")
    print()
    print(table(out["summary"]))
    print(f"{out['seconds']:.1f} s")
    if not args.no_json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        doc = {"machine": {"python": platform.python_version(), "platform": platform.platform()},
               "thresholds": {"change_level": CHANGE_LEVEL, "whole_level": WHOLE_LEVEL,
                              "inside_min": INSIDE_MIN, "whole_min": WHOLE_MIN,
                              "grow": [GROW_FRAC, GROW_PX]},
               **out}
        args.json.write_text(json.dumps(doc, indent=1, default=str) + "\n")
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
