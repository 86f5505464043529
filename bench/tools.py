"""Benchmark of the embedded tools: removal quality, speed and memory.

    .venv/bin/python bench/tools.py [--quick] [--images DIR] [--only quality|speed|memory|objects]

1. **Removal quality** on the benchmark photos (``../shared/benchmarks/images``,
   scaled to at most 640 px on the long side) with seeded free-form holes -- thick
   brush strokes and object-shaped blobs -- of 5 %, 10 % and 20 % of the image. The
   image given to ``remove`` has the hole painted flat grey (no true pixel leaks
   into the fill, e.g. through the feathered edge); OpenCV Telea
   (``cv2.inpaint(..., INPAINT_TELEA)``, radius 3) fills the same holes. Figures:
   MAE inside the hole (0..255, RGB), texture fidelity = mean Sobel gradient
   magnitude (grey) inside the filled hole / the same of the true pixels, the
   object-copy score (``patchfill.object_copy_score``: best normalised cross-correlation
   of a fill patch with a salient region outside the hole; ~0.9+ = an object was copied),
   and whether every pixel outside the mask is bit-identical. Targets: mean MAE ours <= Telea,
   mean texture fidelity >= 0.85, outside bit-identical for every hole.
2. **Speed**: each tool's time at 1, 4 and 12 megapixels (an upscaled benchmark
   photo); remove/outpaint directly, the other tools through the registry.
   Target: removing a 5 % object at 12 MP <= 1.5 s.
3. **Memory**: peak RSS of a child process that loads a 12 MP photo and removes a
   5 % object (``resource.getrusage(RUSAGE_SELF).ru_maxrss``). Target <= 1.5 GB.

4. **Objects** (``bench/object_copy.py``): object copy, texture and streaks of removals
   and extensions next to salient objects (the scene suite), and the 12 MP extension.

Prints tables and writes ``bench/results/tools.json``. Exits 0 even when a target is
missed, but prints FAIL for that row. ``--quick`` runs a reduced version (3 photos,
10 % holes, 1 and 4 MP) to check that it works.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "tools.json"
DEFAULT_IMAGES = ROOT.parent / "shared" / "benchmarks" / "images"
MAX_SIDE = 640
FRACTIONS = (0.05, 0.10, 0.20)
KINDS = ("stroke", "blob")
TARGET_TEXTURE = 0.85
TARGET_REMOVE_12MP_S = 1.5
TARGET_PEAK_RSS_GB = 1.5


# ------------------------------------------------------------------ holes and metrics

def stroke_hole(h: int, w: int, frac: float, rng: np.random.Generator) -> np.ndarray:
    """Thick brush strokes (random polylines, 4-9 % of the short side wide) until the
    hole covers ``frac`` of the image (the last stroke may overshoot a little)."""
    m = np.zeros((h, w), np.uint8)
    side = min(h, w)
    target = frac * h * w
    while np.count_nonzero(m) < target:
        th = max(2, int(rng.uniform(0.04, 0.09) * side))
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        ang = rng.uniform(0, 2 * np.pi)
        pts = [(x, y)]
        for _ in range(int(rng.integers(3, 7))):
            ang += rng.normal(0, 0.8)
            length = rng.uniform(0.08, 0.25) * side
            x = float(np.clip(x + length * np.cos(ang), 0, w - 1))
            y = float(np.clip(y + length * np.sin(ang), 0, h - 1))
            pts.append((x, y))
        poly = np.round(np.array(pts)).astype(np.int32)
        cv2.polylines(m, [poly], False, 255, th, cv2.LINE_8)
        for px, py in poly:
            cv2.circle(m, (int(px), int(py)), th // 2, 255, -1)
    return m > 0


def blob_hole(h: int, w: int, frac: float, rng: np.random.Generator) -> np.ndarray:
    """One object-shaped blob (a smooth random star-shaped outline) of area ``frac``."""
    n = 96
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    r = np.ones(n)
    for k in range(1, 6):
        r += rng.uniform(0, 0.35 / k) * np.cos(k * t + rng.uniform(0, 2 * np.pi))
    aspect = rng.uniform(0.6, 1.6)
    cx, cy = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h

    def make(scale: float) -> np.ndarray:
        rad = scale * np.sqrt(h * w) * r
        pts = np.stack([cx + rad * np.cos(t) * aspect ** 0.5, cy + rad * np.sin(t) / aspect ** 0.5], 1)
        m = np.zeros((h, w), np.uint8)
        cv2.fillPoly(m, [np.round(pts).astype(np.int32)], 255)
        return m > 0

    lo, hi = 0.01, 1.5
    for _ in range(30):
        mid = (lo + hi) / 2
        if make(mid).mean() < frac:
            lo = mid
        else:
            hi = mid
    return make(hi)


def make_hole(kind: str, h: int, w: int, frac: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng([seed, KINDS.index(kind), int(round(frac * 1000))])
    return (stroke_hole if kind == "stroke" else blob_hole)(h, w, frac, rng)


def gradient_magnitude(rgb: np.ndarray) -> np.ndarray:
    g = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    gx = cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3)
    return np.sqrt(gx * gx + gy * gy)


def hole_metrics(true: np.ndarray, out: np.ndarray, hole: np.ndarray) -> dict:
    mae = float(np.abs(out.astype(np.float32) - true.astype(np.float32))[hole].mean())
    g_true = float(gradient_magnitude(true)[hole].mean())
    g_out = float(gradient_magnitude(out)[hole].mean())
    return {"mae": mae, "texture": g_out / max(g_true, 1e-6)}


def load_photos(folder: Path, limit: int | None = None) -> list[tuple[str, np.ndarray]]:
    manifest = folder / "manifest.jsonl"
    names = ([json.loads(line)["file"] for line in manifest.read_text().splitlines() if line.strip()]
             if manifest.exists() else sorted(p.name for p in folder.iterdir()
                                              if p.suffix.lower() in (".png", ".jpg", ".jpeg")))
    out = []
    for name in names[:limit]:
        im = Image.open(folder / name).convert("RGB")
        w, h = im.size
        s = min(1.0, MAX_SIDE / max(w, h))
        if s < 1:
            im = im.resize((round(w * s), round(h * s)), Image.LANCZOS)
        out.append((name, np.asarray(im)))
    return out


# ------------------------------------------------------------------ 1. quality

def bench_quality(folder: Path, quick: bool) -> dict:
    from imagent.tools.patchfill import object_copy_score
    from imagent.tools.remove import remove_region

    photos = load_photos(folder, 3 if quick else None)
    fractions = (0.10,) if quick else FRACTIONS
    rows = []
    for i, (name, img) in enumerate(photos):
        h, w = img.shape[:2]
        for kind in KINDS:
            for frac in fractions:
                hole = make_hole(kind, h, w, frac, seed=i)
                given = img.copy()
                given[hole] = 128  # the object to remove: nothing of the truth leaks
                t0 = time.perf_counter()
                out, info = remove_region(Image.fromarray(given), hole.astype(np.float32), seed=0)
                t_ours = time.perf_counter() - t0
                out = np.asarray(out)
                t0 = time.perf_counter()
                tel = cv2.inpaint(given, hole.astype(np.uint8) * 255, 3, cv2.INPAINT_TELEA)
                t_tel = time.perf_counter() - t0
                ours, theirs = hole_metrics(img, out, hole), hole_metrics(img, tel, hole)
                copy = object_copy_score(out, hole)
                rows.append({"image": name, "kind": kind, "fraction": frac,
                             "hole_fraction": round(float(hole.mean()), 4),
                             "mae": round(ours["mae"], 3), "texture": round(ours["texture"], 4),
                             "telea_mae": round(theirs["mae"], 3),
                             "telea_texture": round(theirs["texture"], 4),
                             "object_copy": round(copy, 4),
                             "outside_identical": bool(np.array_equal(out[~hole], given[~hole])),
                             "seconds": round(t_ours, 3), "telea_seconds": round(t_tel, 4),
                             "patch_size": info.get("patch_size"), "scale": info.get("scale")})
                print(f"  {name:32s} {kind:6s} {frac:4.0%}  mae {ours['mae']:6.2f} "
                      f"(telea {theirs['mae']:6.2f})  texture {ours['texture']:.3f} "
                      f"(telea {theirs['texture']:.3f})  copy {copy:.3f}  {t_ours:.2f}s", flush=True)

    def summary(sel: list[dict]) -> dict:
        return {"holes": len(sel),
                "mae": round(float(np.mean([r["mae"] for r in sel])), 3),
                "telea_mae": round(float(np.mean([r["telea_mae"] for r in sel])), 3),
                "texture": round(float(np.mean([r["texture"] for r in sel])), 4),
                "telea_texture": round(float(np.mean([r["telea_texture"] for r in sel])), 4),
                "object_copy": round(float(np.mean([r["object_copy"] for r in sel])), 4),
                "mae_ratio": round(float(np.mean([r["mae"] for r in sel]) /
                                         np.mean([r["telea_mae"] for r in sel])), 4),
                "seconds_mean": round(float(np.mean([r["seconds"] for r in sel])), 3)}

    groups = {"all": summary(rows)}
    for frac in fractions:
        groups[f"{frac:.0%}"] = summary([r for r in rows if r["fraction"] == frac])
        for kind in KINDS:
            groups[f"{frac:.0%} {kind}"] = summary([r for r in rows if r["fraction"] == frac
                                                     and r["kind"] == kind])
    for kind in KINDS:
        groups[kind] = summary([r for r in rows if r["kind"] == kind])
    overall = groups["all"]
    checks = {"mae_no_worse_than_telea": overall["mae"] <= overall["telea_mae"],
              "texture_at_least_0.85": overall["texture"] >= TARGET_TEXTURE,
              "outside_bit_identical": all(r["outside_identical"] for r in rows)}
    return {"photos": [n for n, _ in photos], "max_side": MAX_SIDE, "groups": groups,
            "checks": checks, "rows": rows}


# ------------------------------------------------------------------ 2. speed

def upscaled(img: np.ndarray, megapixels: float) -> np.ndarray:
    h, w = img.shape[:2]
    s = (megapixels * 1e6 / (w * h)) ** 0.5
    return cv2.resize(img, (int(round(w * s)), int(round(h * s))), interpolation=cv2.INTER_CUBIC)


def object_mask(h: int, w: int, frac: float = 0.05, seed: int = 0) -> np.ndarray:
    return blob_hole(h, w, frac, np.random.default_rng(seed)).astype(np.float32)


def _timed(fn, repeat: int = 1) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def bench_speed(folder: Path, quick: bool) -> dict:
    from imagent.tools.outpaint import outpaint_image
    from imagent.tools.registry import default_registry
    from imagent.tools.remove import remove_region
    from imagent.tools.types import ToolCall, ToolState

    reg = default_registry()
    base = np.asarray(Image.open(folder / "skimage_astronaut.png").convert("RGB"))
    sizes = (1, 4) if quick else (1, 4, 12)
    table: dict[str, dict[str, float | None]] = {}

    def registry_call(name: str, args: dict, img: Image.Image, mask=None):
        def fn():
            reg.run(ToolCall(name=name, args=args), ToolState(image=img, mask=mask))
        return fn

    for mp in sizes:
        arr = upscaled(base, mp)
        h, w = arr.shape[:2]
        img = Image.fromarray(arr)
        mask = object_mask(h, w)
        col = f"{mp} MP"
        cases = {
            # partial binds this size's image and mask now, not whatever the loop holds later
            "remove (5% object)": partial(remove_region, img, mask, seed=0),
            "outpaint (right +10%)": partial(outpaint_image, img, {"left": 0, "right": w // 10,
                                                                   "top": 0, "bottom": 0}),
            "ground (geometry)": registry_call("ground", {"phrase": "the left third"}, img),
            "build_mask (box)": registry_call("build_mask", {"source": "box",
                                                             "box": [w // 4, h // 4, w // 2, h // 2]},
                                              img),
            "global_edit (brighter)": registry_call("global_edit", {"operation": "brightness",
                                                                   "amount": 0.2}, img),
        }
        for name, fn in cases.items():
            try:
                t = _timed(fn, repeat=1 if mp >= 12 or name.startswith("remove") else 2)
                if name.startswith("remove") and mp >= 12:  # the target row: best of 2
                    t = min(t, _timed(fn))
            except Exception as exc:  # noqa: BLE001 - another tool's API may differ: report it
                print(f"  {name} at {mp} MP: {type(exc).__name__}: {str(exc).splitlines()[0]}")
                t = None
            table.setdefault(name, {})[col] = None if t is None else round(t, 3)
        print(f"  {mp} MP ({w}x{h}) done", flush=True)
    remove_12 = table["remove (5% object)"].get("12 MP")
    return {"table": table, "image": "skimage_astronaut.png (upscaled, bicubic)",
            "remove_12mp_s": remove_12,
            "checks": {} if remove_12 is None else
            {"remove_12mp_within_1.5s": remove_12 <= TARGET_REMOVE_12MP_S}}


# ------------------------------------------------------------------ 3. memory

CHILD = r"""
import resource, sys, time, numpy as np
sys.path.insert(0, {bench!r})
from tools import upscaled, object_mask
from PIL import Image
from imagent.tools.remove import remove_region
base = np.asarray(Image.open({photo!r}).convert("RGB"))
arr = upscaled(base, {mp})
h, w = arr.shape[:2]
mask = object_mask(h, w)
img = Image.fromarray(arr)
del arr
t0 = time.perf_counter()
remove_region(img, mask, seed=0)
dt = time.perf_counter() - t0
print(dt, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def bench_memory(folder: Path, quick: bool) -> dict:
    mp = 4 if quick else 12
    code = CHILD.format(bench=str(ROOT / "bench"), photo=str(folder / "skimage_astronaut.png"), mp=mp)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    dt, kb = out.stdout.split()[-2:]
    gb = int(kb) / 1024 / 1024
    return {"megapixels": mp, "peak_rss_gb": round(gb, 3), "seconds_in_child": round(float(dt), 3),
            "checks": {"peak_rss_within_1.5GB": gb <= TARGET_PEAK_RSS_GB}}


# ------------------------------------------------------------------ main

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a reduced run, to check it works")
    ap.add_argument("--images", type=Path, default=DEFAULT_IMAGES)
    ap.add_argument("--only", choices=("quality", "speed", "memory", "objects"))
    ap.add_argument("--out", type=Path, default=RESULTS)
    a = ap.parse_args(argv)
    if not a.images.is_dir():
        print(f"benchmark photos not found in {a.images} (give --images DIR)")
        return 0
    report: dict = {"quick": a.quick, "machine": {"python": platform.python_version(),
                                                  "cpus": os.cpu_count(),
                                                  "platform": platform.platform()}}
    if a.only in (None, "quality"):
        print("removal quality (ours = remove tool, vs OpenCV Telea on the same holes)")
        report["quality"] = bench_quality(a.images, a.quick)
    if a.only in (None, "speed"):
        print("speed (seconds)")
        report["speed"] = bench_speed(a.images, a.quick)
    if a.only in (None, "memory"):
        report["memory"] = bench_memory(a.images, a.quick)
    if a.only in (None, "objects"):
        print("object copies (bench/object_copy.py)")
        from object_copy import main as objects_main

        objects_main((["--quick"] if a.quick else ["--big"]))

    print()
    if "quality" in report:
        q = report["quality"]
        print(f"{'holes':14s} {'n':>3s} {'MAE ours':>9s} {'MAE Telea':>10s} {'ratio':>6s} "
              f"{'texture ours':>13s} {'texture Telea':>14s} {'copy':>6s} {'s/hole':>7s}")
        for k, g in q["groups"].items():
            print(f"{k:14s} {g['holes']:3d} {g['mae']:9.2f} {g['telea_mae']:10.2f} "
                  f"{g['mae_ratio']:6.3f} {g['texture']:13.3f} {g['telea_texture']:14.3f} "
                  f"{g['object_copy']:6.3f} {g['seconds_mean']:7.2f}")
    if "speed" in report:
        sp = report["speed"]
        cols = sorted({c for row in sp["table"].values() for c in row}, key=lambda c: float(c.split()[0]))
        print("\n" + f"{'tool':26s}" + "".join(f"{c:>10s}" for c in cols))
        for name, row in sp["table"].items():
            print(f"{name:26s}" + "".join(f"{'n/a' if row.get(c) is None else row[c]:>10}"
                                          for c in cols))
    if "memory" in report:
        m = report["memory"]
        print(f"\npeak RSS, remove at {m['megapixels']} MP: {m['peak_rss_gb']:.3f} GB "
              f"({m['seconds_in_child']:.2f} s in the child)")
    print()
    for part in ("quality", "speed", "memory"):
        for k, ok in report.get(part, {}).get("checks", {}).items():
            print(f"{'PASS' if ok else 'FAIL'}  {part}: {k}")
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=1))
    print(f"\nwritten {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
