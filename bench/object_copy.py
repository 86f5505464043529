"""Benchmark: do the embedded fills copy objects into the hole?

    .venv/bin/python bench/object_copy.py [--quick] [--big] [--pictures DIR] [--out FILE]

Runs the embedded ``outpaint`` and ``remove`` (no model) on scenes where PatchMatch used
to copy a salient object into the fill -- the rocket photo extended 30 % to the left (a
ghost second tower), "make it square" on photos with an object near the edge, white
text removed from the sky of the camera-man photo (a roof pasted into the sky) -- and on
the removals and extensions of the scene suite (``bench/scenes/scenes.py``). For each:

* **object copy** (``imagent.tools.patchfill.object_copy_score``): the best normalised
  cross-correlation between a 24 px patch of the fill (at 512 px on the long side) and a
  salient, textured window outside it. ~0.9 and above = an object was copied.
  ``--rescore DIR`` scores the pictures of an earlier run (the one before a change).
* **texture**: mean Sobel gradient magnitude in the fill / the same in the known band
  next to it (1 = as busy as its surroundings; a blur scores low).
* **streaks**: (mean |d/dx| / mean |d/dy|) in the fill over the same ratio in the known
  image; far below 1 = horizontal streaks (rows smeared along x), far above = vertical.
* seconds.

``--big`` adds the 12 MP extension (an upscaled photo, 4000x3000, extended right by
50 %): time, streaks, texture. ``--pictures DIR`` writes every output as a PNG (look at
them). Results go to ``bench/results/object_copy.json``. Needs the shared photos
(``../shared/benchmarks/images``); synthetic scenes run without them.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.scenes import scenes as S  # noqa: E402

RESULTS = REPO / "bench" / "results" / "object_copy.json"
COPY_LIMIT = 0.9  # at or above: counted as a copied object


# ------------------------------------------------------------------ figures

def _grad(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    g = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return (np.abs(cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)),
            np.abs(cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)))


def fill_figures(out: np.ndarray, hole: np.ndarray) -> dict:
    """Texture and streak figures of the fill ``hole`` of ``out`` against the known part."""
    gx, gy = _grad(out)
    inner = cv2.erode(hole.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    inner = inner if inner.any() else hole
    k = max(9, int(0.1 * min(hole.shape)))
    band = (cv2.dilate(hole.astype(np.uint8), np.ones((2 * k + 1, 2 * k + 1), np.uint8)) > 0) & ~hole
    band = cv2.erode((~hole).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool) & band
    known = ~cv2.dilate(hole.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)

    def ratio(a, b, m):
        return float(a[m].mean()) / max(float(b[m].mean()), 1e-6)

    texture = float(np.hypot(gx, gy)[inner].mean()) / max(float(np.hypot(gx, gy)[band].mean()), 1e-6)
    streaks = ratio(gx, gy, inner) / max(ratio(gx, gy, known), 1e-6)
    return {"texture": round(texture, 3), "streaks": round(streaks, 3)}


# ------------------------------------------------------------------ scenes

def _photo(name: str) -> Image.Image | None:
    p = S.photos_dir() / name
    return S._open_rgb(p) if p.exists() else None


def flower_scene() -> tuple[Image.Image, dict]:
    """A red flower with a yellow heart on a textured lawn, near the top edge (480x320)."""
    rng = np.random.default_rng(11)
    arr = np.asarray((70, 130, 60), np.float32) + rng.normal(0, 10, size=(320, 480, 3))
    arr = cv2.GaussianBlur(arr, (0, 0), 0.9)
    c = S._Canvas(arr)
    cx, cy = 150, 80
    c.line("stem", [(cx, cy), (cx + 6, 250)], (40, 100, 40), 5)
    for i in range(6):
        a = i * np.pi / 3
        px, py = cx + 26 * np.cos(a), cy + 26 * np.sin(a)
        c.circle(f"petal{i}", int(px), int(py), 18, (220, 40, 70))
    c.circle("heart", cx, cy, 14, (245, 205, 40))
    return c.done()


def _box_mask(size: tuple[int, int], box, grow: int = 4) -> np.ndarray:
    w, h = size
    x0, y0, x1, y1 = box
    m = np.zeros((h, w), bool)
    m[max(0, y0 - grow):min(h, y1 + grow), max(0, x0 - grow):min(w, x1 + grow)] = True
    return m


def _text_mask(base: Image.Image, drawn: Image.Image, grow: int = 3) -> np.ndarray:
    d = np.abs(np.asarray(drawn, np.int16) - np.asarray(base, np.int16)).max(axis=2) > 0
    k = np.ones((2 * grow + 1, 2 * grow + 1), np.uint8)
    return cv2.dilate(d.astype(np.uint8), k) > 0


def cases(quick: bool) -> list[dict]:
    """The scenes: ``{"name", "kind": "outpaint"|"remove", "image", "add"|"hole"}``."""
    out: list[dict] = []
    rocket, coffee, camera = _photo("skimage_rocket.jpg"), _photo("skimage_coffee.png"), _photo("skimage_camera.png")
    chelsea, astro = _photo("skimage_chelsea.png"), _photo("skimage_astronaut.png")
    from imagent.tools.outpaint import plan_extension

    def op(name, img, **kw):
        if img is not None:
            out.append({"name": name, "kind": "outpaint", "image": img,
                        "add": plan_extension(img.size, **kw)})

    def rm(name, img, hole):
        if img is not None:
            out.append({"name": name, "kind": "remove", "image": img, "hole": hole})

    flower = flower_scene()[0]
    # the reported failures
    op("rocket: extend left 30%", rocket, percent=30, sides=["left"])
    op("flower: make it square", flower, aspect="1:1")
    op("coffee: make it square", coffee, aspect="1:1")
    if camera is not None:
        drawn, objs = S.camera_with_white_text(camera)
        rm("camera: remove white text (box)", drawn, _box_mask(drawn.size, objs["text"], 4))
        rm("camera: remove white text (glyphs)", drawn, _text_mask(camera, drawn))
    if quick:
        return out
    op("chelsea: make it square", chelsea, aspect="1:1")
    # the scene suite's extensions
    op("astronaut: make it 16:9", astro, aspect="16:9")
    op("camera: right 25%", camera, percent=25, sides=["right"])
    op("rocket: left 100 px", rocket, left=100)
    for sid, text, kw in (("mixed_shapes", "left 100 px", {"left": 100}),
                          ("orange_car", "right 30%", {"percent": 30, "sides": ["right"]}),
                          ("landscape", "right 25%", {"percent": 25, "sides": ["right"]}),
                          ("landscape", "top 20%", {"percent": 20, "sides": ["top"]})):
        img = S.scene(sid).load()[0]
        op(f"{sid}: {text}", img, **kw)
    # the scene suite's removals (its hand-marked boxes, grown 4 px like a built mask)
    for name, file, box in (("astronaut: shuttle", "skimage_astronaut.png", S.ASTRO_SHUTTLE),
                            ("coffee: spoon", "skimage_coffee.png", S.COFFEE_SPOON),
                            ("rocket: rocket", "skimage_rocket.jpg", S.ROCKET),
                            ("coins: top-left coin", "skimage_coins.png", S.COIN_TOP_LEFT),
                            ("clock: clock", "skimage_clock_motion.png", S.CLOCK),
                            ("camera: tripod", "skimage_camera.png", S.CAM_TRIPOD)):
        img = _photo(file)
        if img is not None:
            rm(name, img, _box_mask(img.size, box))
    for sid, obj in (("rocket_title", "title"), ("coffee_watermark", "watermark"),
                     ("chelsea_date", "date")):
        sc = S.scene(sid)
        if sc.needs_photos and not S.photos_dir().is_dir():
            continue
        img, objs = sc.load()
        rm(f"{sid}: {obj} (box)", img, _box_mask(img.size, objs[obj]))
    for sid, obj in (("red_ball", "ball"), ("orange_car", "car"), ("flag_corner", "flag"),
                     ("mixed_shapes", "red_circle"), ("landscape", "sun"), ("purple_heart", "heart"),
                     ("balloons", "middle_all"), ("bottles", "blue"), ("red_squares", "sq6")):
        img, objs = S.scene(sid).load()
        rm(f"{sid}: {obj}", img, _box_mask(img.size, objs[obj]))
    return out


def _slug(name: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in name).strip("_")


def run_case(case: dict, pictures: Path | None, rescore: Path | None = None) -> dict:
    from imagent.tools.outpaint import outpaint_image
    from imagent.tools.patchfill import object_copy_match
    from imagent.tools.remove import remove_region

    img = case["image"]
    t0 = time.perf_counter()
    if rescore is not None:  # score pictures written by an earlier run (e.g. another commit)
        res, info = Image.open(rescore / f"{_slug(case['name'])}.png"), {}
        if case["kind"] == "outpaint":
            a, (w, h) = case["add"], img.size
            hole = np.ones((res.size[1], res.size[0]), bool)
            hole[a["top"]:a["top"] + h, a["left"]:a["left"] + w] = False
        else:
            hole = case["hole"]
    elif case["kind"] == "outpaint":
        res, mask, info = outpaint_image(img, case["add"], seed=0)
        hole = mask > 0
    else:
        hole = case["hole"]
        res, info = remove_region(img, hole.astype(np.float32), seed=0)
    dt = time.perf_counter() - t0
    out = np.asarray(res.convert("RGB"))
    m = object_copy_match(out, hole)
    row = {"name": case["name"], "kind": case["kind"], "size": list(img.size),
           "object_copy": m["score"], "fill_xy": m["fill_xy"], "source_xy": m["source_xy"],
           **fill_figures(out, hole), "seconds": round(dt, 3),
           "algorithm": info.get("algorithm"), "fill": info.get("fill")}
    if pictures is not None:
        pictures.mkdir(parents=True, exist_ok=True)
        Image.fromarray(out).save(pictures / f"{_slug(case['name'])}.png")
    return row


def big_case(pictures: Path | None) -> dict | None:
    from imagent.tools.outpaint import outpaint_image

    base = _photo("skimage_rocket.jpg")
    if base is None:
        return None
    img = base.resize((4000, 3000), Image.BICUBIC)
    add = {"left": 0, "right": 2000, "top": 0, "bottom": 0}
    t0 = time.perf_counter()
    res, mask, info = outpaint_image(img, add, seed=0)
    dt = time.perf_counter() - t0
    out = np.asarray(res)
    hole = mask > 0
    same = bool(np.array_equal(out[:, :4000], np.asarray(img)))
    small = cv2.resize(out, (1500, 750), interpolation=cv2.INTER_AREA)
    hs = cv2.resize(hole.astype(np.uint8), (1500, 750), interpolation=cv2.INTER_NEAREST) > 0
    row = {"name": "rocket 4000x3000: right +50%", "kind": "outpaint", "seconds": round(dt, 2),
           "original_identical": same, **fill_figures(small, hs),
           "full_res_streaks": fill_figures(out[1000:2000, 3000:6000], hole[1000:2000, 3000:6000])["streaks"],
           "algorithm": info.get("algorithm"), "fill": info.get("fill")}
    if pictures is not None:
        pictures.mkdir(parents=True, exist_ok=True)
        Image.fromarray(small).save(pictures / "big_rocket_right_50.png")
        Image.fromarray(out[1200:2200, 3500:5000]).save(pictures / "big_rocket_right_50_detail.png")
    return row


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="only the four reported failures")
    ap.add_argument("--big", action="store_true", help="add the 12 MP extension (slow)")
    ap.add_argument("--pictures", type=Path, help="write every output PNG here")
    ap.add_argument("--rescore", type=Path, help="score the PNGs of an earlier --pictures run")
    ap.add_argument("--out", type=Path, default=RESULTS)
    a = ap.parse_args(argv)
    rows = []
    print(f"{'scene':42s} {'copy':>6s} {'texture':>8s} {'streaks':>8s} {'s':>6s}")
    for case in cases(a.quick):
        r = run_case(case, a.pictures, a.rescore)
        rows.append(r)
        flag = "  COPY" if r["object_copy"] >= COPY_LIMIT else ""
        print(f"{r['name']:42s} {r['object_copy']:6.3f} {r['texture']:8.3f} {r['streaks']:8.3f} "
              f"{r['seconds']:6.2f}{flag}", flush=True)
    report: dict = {"rows": rows}
    for kind in ("outpaint", "remove"):
        sel = [r for r in rows if r["kind"] == kind]
        if sel:
            report[kind] = {"n": len(sel),
                            "object_copy_mean": round(float(np.mean([r["object_copy"] for r in sel])), 4),
                            "object_copy_max": round(float(np.max([r["object_copy"] for r in sel])), 4),
                            "copies": sum(r["object_copy"] >= COPY_LIMIT for r in sel)}
            print(f"{kind}: {report[kind]}")
    if a.big:
        b = big_case(a.pictures)
        if b is not None:
            report["big"] = b
            print(f"{b['name']}: {b['seconds']:.1f} s, texture {b['texture']}, streaks {b['streaks']} "
                  f"(full res {b['full_res_streaks']}), original identical {b['original_identical']}")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=1, default=str))
    print(f"written {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
