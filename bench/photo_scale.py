"""Photo scale: what a whole `imagent edit` costs on a 1, 12 and 24 MP photo, as a ratio
to a plain OpenCV script doing the same kind of edit in the same run.

    .venv/bin/python bench/photo_scale.py [--quick] [--sizes 12[,24...]] [--runs N]

**Photos** (made once into the cache dir, default ``/tmp/imagent-photo-scale``; never in
the repository): ``skimage_rocket.jpg`` from ``../shared/benchmarks/images`` (a 3:2 photo
with a sky next to a tower: the hard case for an extension), or a synthetic textured
image when that folder is absent, upscaled bicubically to 1, 12 and 24 MP (3:2) with a
seeded sensor-like grain (Gaussian, sigma 2 grey levels) so the big photos are not
unnaturally smooth, saved as PNG; the 12 MP one also as JPEG (quality 92).

**Requests**, each a whole CLI process ``imagent edit PHOTO "REQUEST" -o OUT.png --home
<fresh empty store>`` (offline profile, no config file, a fresh store for every run):

* ``brighter``  "make it brighter"; at 12 MP also with the JPEG as input.
* ``remove 5%`` "remove the object at box X0,Y0,X1,Y1" (the rules planner maps it to
  ground -> build_mask -> remove; checked with ``imagent plan``), a box of 5 % of the
  image, 3:2, centred at (60 %, 40 %).
* ``extend 25%`` "extend the picture to the right by 25%".

**Baselines**, each a separate ``python -c`` process importing only cv2 and numpy (so
interpreter start-up counts on both sides): brighter = ``cv2.imread`` ->
``cv2.convertScaleAbs(alpha=1, beta=25)`` -> ``cv2.imwrite`` PNG; remove = imread ->
``cv2.inpaint`` Telea (radius 3) on the same box -> imwrite; extend = imread ->
``cv2.copyMakeBorder`` (BORDER_REFLECT, right +25 %) -> imwrite. Also an ``io`` row:
imread -> imwrite alone (what "reading and writing the photo costs").

**Timing**: wall time from spawning the process to reaping it; ``--runs`` runs (default
3) alternate baseline and imagent so a neighbour's load hits both sides alike; the
median of each side; ratio = imagent median / baseline median.

**Peak RSS**: the child is reaped with ``os.wait4(pid)``, whose rusage is that one
child's own (plus any descendants it waited for) -- unlike ``getrusage(RUSAGE_CHILDREN)``,
whose ``ru_maxrss`` is the max over all children so far. Linux reports KiB. The
largest of the runs is kept.

**Targets** (the ratio ones at 12 MP and above; 1 MP is start-up dominated and shown
for information): brighter <= 2x, remove 5 % <= 3x, extend 25 % <= 6x; peak RSS <= 2 GB
for every edit at 24 MP. The 12 MP (else the largest) extension is saved downscaled to
``bench/results/photo_scale_extend_<N>mp.jpg`` for a person to look at, with a streak
index: (mean |d/dy| / mean |d/dx|) of the grey new strip over the same of the
original's right 25 % (about 1 = no more horizontal structure than the photo has;
horizontal streaks push it up, well above ~1.5 is worth a look).

Prints a table and writes ``bench/results/photo_scale.json``. Exits 0 even when a target
is missed (the row says FAIL). ``--quick``: 1 MP only (PNG and JPEG), 1 run each;
``--requests brighter,remove,extend`` picks requests.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "photo_scale.json"
PHOTOS = ROOT.parent / "shared" / "benchmarks" / "images"
SOURCE = "skimage_rocket.jpg"
CACHE = Path(tempfile.gettempdir()) / "imagent-photo-scale"
ASPECT = 1.5
GRAIN_SIGMA = 2.0
JPEG_QUALITY = 92
BOX_FRACTION = 0.05
BOX_CENTRE = (0.60, 0.40)
EXTEND = 0.25
TARGET_RATIO = {"brighter": 2.0, "remove 5%": 3.0, "extend 25%": 6.0}
TARGET_RATIO_MIN_MP = 12
TARGET_RSS_MB = 2048
TARGET_RSS_MIN_MP = 24
PREVIEW_WIDTH = 1600

# ------------------------------------------------------------------ photos


def synthetic(h: int = 427, w: int = 640) -> np.ndarray:
    """A textured stand-in photo (BGR): sky gradient, a hill of noise, a few shapes."""
    rng = np.random.default_rng(0)
    y = np.linspace(0, 1, h)[:, None, None]
    img = (np.array([235, 190, 120]) * (1 - y) + np.array([200, 160, 110]) * y) * np.ones((1, w, 1))
    hill = (0.6 + 0.1 * np.sin(np.linspace(0, 7, w)))[None, :] * h
    ground = np.arange(h)[:, None] > hill
    tex = cv2.GaussianBlur(rng.normal(0, 40, (h, w)).astype(np.float32), (0, 0), 2)
    img[ground] = np.array([60, 130, 80]) + tex[ground][:, None]
    img = np.clip(img, 0, 255).astype(np.uint8)
    cv2.rectangle(img, (int(w * .55), int(h * .2)), (int(w * .65), int(h * .7)), (90, 90, 100), -1)
    cv2.circle(img, (int(w * .2), int(h * .25)), int(h * .08), (80, 220, 250), -1)
    return img


def photo_size(mp: float) -> tuple[int, int]:
    w = int(round((mp * 1e6 * ASPECT) ** 0.5 / 2)) * 2
    return w, int(round(w / ASPECT / 2)) * 2


def make_photos(cache: Path, sizes: list[float], jpeg_sizes: set[float]) -> tuple[dict, str]:
    """{mp: {"png": path, "jpg": path?}}, made once per size into ``cache``."""
    cache.mkdir(parents=True, exist_ok=True)
    src = PHOTOS / SOURCE
    name = SOURCE if src.is_file() else "synthetic"
    stem = Path(name).stem
    base = None
    out: dict = {}
    for mp in sizes:
        w, h = photo_size(mp)
        png = cache / f"{stem}_{w}x{h}.png"
        jpg = png.with_suffix(".jpg")
        need_jpg = mp in jpeg_sizes and not jpg.is_file()
        if not png.is_file() or need_jpg:
            if base is None:
                base = cv2.imread(str(src)) if src.is_file() else synthetic()
                bh, bw = base.shape[:2]  # crop to 3:2 before scaling
                cw, ch = min(bw, int(bh * ASPECT)), min(bh, int(bw / ASPECT))
                base = base[(bh - ch) // 2:(bh - ch) // 2 + ch, (bw - cw) // 2:(bw - cw) // 2 + cw]
            big = cv2.resize(base, (w, h), interpolation=cv2.INTER_CUBIC).astype(np.float32)
            big += np.random.default_rng(int(mp * 10)).normal(0, GRAIN_SIGMA, (h, w, 1)).astype(np.float32)
            big = np.clip(big, 0, 255).astype(np.uint8)
            cv2.imwrite(str(png), big)
            if mp in jpeg_sizes:
                cv2.imwrite(str(jpg), big, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
            del big
        out[mp] = {"png": png, "size": (w, h)}
        if mp in jpeg_sizes:
            out[mp]["jpg"] = jpg
    return out, name


def removal_box(w: int, h: int) -> tuple[int, int, int, int]:
    s = BOX_FRACTION ** 0.5
    bw, bh = round(w * s), round(h * s)
    x0, y0 = round(w * BOX_CENTRE[0] - bw / 2), round(h * BOX_CENTRE[1] - bh / 2)
    return x0, y0, x0 + bw, y0 + bh


# ------------------------------------------------------------------ commands

BASELINE = {
    "io": "img = cv2.imread(src)\n",
    "brighter": "img = cv2.convertScaleAbs(cv2.imread(src), alpha=1, beta=25)\n",
    "remove 5%": ("img = cv2.imread(src)\nx0, y0, x1, y1 = {box}\n"
                  "m = np.zeros(img.shape[:2], np.uint8)\nm[y0:y1, x0:x1] = 255\n"
                  "img = cv2.inpaint(img, m, 3, cv2.INPAINT_TELEA)\n"),
    "extend 25%": ("img = cv2.imread(src)\n"
                   "img = cv2.copyMakeBorder(img, 0, 0, 0, round(img.shape[1] * {extend}), "
                   "cv2.BORDER_REFLECT)\n"),
}


def baseline_cmd(kind: str, src: Path, out: Path, box) -> list[str]:
    body = BASELINE[kind].format(box=tuple(box), extend=EXTEND)
    code = f"import cv2, numpy as np\nsrc = {str(src)!r}\n{body}cv2.imwrite({str(out)!r}, img)\n"
    return [sys.executable, "-c", code]


def request_text(kind: str, box) -> str:
    if kind == "brighter":
        return "make it brighter"
    if kind == "remove 5%":
        return "remove the object at box {},{},{},{}".format(*box)
    return f"extend the picture to the right by {EXTEND:.0%}"


def imagent_exe() -> str:
    return shutil.which("imagent", path=str(Path(sys.executable).parent)) or "imagent"


def child_env(tmp: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMAGENT_")}
    env["IMAGENT_CONFIG"] = str(tmp / "absent-config.toml")
    env["IMAGENT_PROFILE"] = "offline"
    return env


def run_child(cmd: list[str], env: dict, errfile: Path) -> tuple[float, float, int]:
    """(wall s, peak RSS MB, exit code) of one child process, reaped with wait4."""
    with open(errfile, "wb") as err:
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=err, env=env)
        _, status, ru = os.wait4(p.pid, 0)
        dt = time.perf_counter() - t0
    p.returncode = os.waitstatus_to_exitcode(status)  # reaped here: keep Popen from waiting
    return dt, ru.ru_maxrss / 1024, p.returncode


# ------------------------------------------------------------------ streaks


def streak_index(out_path: Path, w0: int) -> float | None:
    """mean|dy|/mean|dx| of the new strip (right of w0) over the same of the original's right
    25 %: horizontal streaks (rows smeared sideways) raise |dy| relative to |dx|."""
    img = cv2.imread(str(out_path), cv2.IMREAD_GRAYSCALE)
    if img is None or img.shape[1] <= w0:
        return None
    g = img.astype(np.float32)

    def aniso(a: np.ndarray) -> float:
        dx = np.abs(np.diff(a, axis=1)).mean()
        dy = np.abs(np.diff(a, axis=0)).mean()
        return float(dy / max(dx, 1e-6))

    new = aniso(g[:, w0:])
    ref = aniso(g[:, w0 - (g.shape[1] - w0):w0])
    return round(new / max(ref, 1e-6), 3)


def save_preview(src: Path, dst: Path) -> None:
    img = cv2.imread(str(src))
    h, w = img.shape[:2]
    s = PREVIEW_WIDTH / w
    dst.parent.mkdir(parents=True, exist_ok=True)
    small = cv2.resize(img, (PREVIEW_WIDTH, round(h * s)), interpolation=cv2.INTER_AREA)
    cv2.imwrite(str(dst), small, [cv2.IMWRITE_JPEG_QUALITY, 88])  # to look at; small enough to keep


# ------------------------------------------------------------------ main


def bench_case(mp: float, kind: str, fmt: str, photo: Path, size, runs: int, work: Path,
               keep: Path) -> dict:
    w, h = size
    box = removal_box(w, h)
    label = f"{mp:g}MP_{kind.split()[0]}_{fmt}"
    exe = imagent_exe()
    req = None if kind == "io" else request_text(kind, box)
    env = child_env(work)
    t_base, t_ours, rss_base, rss_ours, errors = [], [], [], [], []
    out_ours = keep / f"{label}.png"
    for i in range(runs):
        out_b = work / f"{label}_base.png"
        dt, rss, rc = run_child(baseline_cmd(kind, photo, out_b, box), env, work / "err_base.txt")
        if rc != 0:
            errors.append(f"baseline exit {rc}: {(work / 'err_base.txt').read_text()[-300:]}")
        t_base.append(dt)
        rss_base.append(rss)
        out_b.unlink(missing_ok=True)
        if req is None:
            continue
        home = Path(tempfile.mkdtemp(prefix="store-", dir=work))
        out_o = work / f"{label}_ours.png"
        cmd = [exe, "edit", str(photo), req, "-o", str(out_o), "--home", str(home)]
        dt, rss, rc = run_child(cmd, env, work / "err_ours.txt")
        if rc != 0:
            errors.append(f"imagent exit {rc}: {(work / 'err_ours.txt').read_text()[-300:]}")
        t_ours.append(dt)
        rss_ours.append(rss)
        if i == runs - 1 and out_o.is_file():
            shutil.move(str(out_o), out_ours)
        out_o.unlink(missing_ok=True)
        shutil.rmtree(home, ignore_errors=True)
    row = {"megapixels": mp, "size": [w, h], "request": kind, "input": fmt,
           "text": req, "baseline_s": [round(t, 3) for t in t_base],
           "baseline_median_s": round(statistics.median(t_base), 3),
           "baseline_peak_rss_mb": round(max(rss_base), 1), "errors": errors}
    if req is None:
        return row
    med_o, med_b = statistics.median(t_ours), statistics.median(t_base)
    row.update({"imagent_s": [round(t, 3) for t in t_ours], "imagent_median_s": round(med_o, 3),
                "ratio": round(med_o / med_b, 2), "peak_rss_mb": round(max(rss_ours), 1)})
    if out_ours.is_file():
        row["output"] = str(out_ours)
        row["output_size"] = list(_png_size(out_ours))
    checks = {}
    if mp >= TARGET_RATIO_MIN_MP:
        row["target_ratio"] = TARGET_RATIO[kind]
        checks[f"ratio_within_{TARGET_RATIO[kind]:g}x"] = row["ratio"] <= TARGET_RATIO[kind]
    if mp >= TARGET_RSS_MIN_MP:
        checks[f"peak_rss_within_{TARGET_RSS_MB}MB"] = row["peak_rss_mb"] <= TARGET_RSS_MB
    if errors:
        checks["exit_0"] = False
    row["checks"] = checks
    return row


def _png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR (no decode of a huge image)."""
    with open(path, "rb") as f:
        head = f.read(24)
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 MP only, 1 run each, to check it works")
    ap.add_argument("--sizes", default="1,12,24", help="megapixels, comma-separated (default 1,12,24)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--requests", default="brighter,remove,extend",
                    help="which requests, comma-separated (default brighter,remove,extend)")
    ap.add_argument("--cache", type=Path, default=CACHE, help=f"photos and outputs (default {CACHE})")
    ap.add_argument("--out", type=Path, default=RESULTS)
    a = ap.parse_args(argv)
    sizes = [1.0] if a.quick else sorted({float(s) for s in a.sizes.split(",") if s.strip()})
    runs = 1 if a.quick else max(1, a.runs)
    wanted = {r.strip() for r in a.requests.split(",") if r.strip()}
    jpeg_sizes = {1.0} if a.quick else {s for s in sizes if s == 12}
    load0 = os.getloadavg()
    photos, source = make_photos(a.cache, sizes, jpeg_sizes)
    keep = a.cache / "out"
    keep.mkdir(parents=True, exist_ok=True)
    print(f"photo scale: {source} upscaled, {runs} run(s) each, {os.cpu_count()} CPUs, "
          f"load average {load0[0]:.1f}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="photo-scale-") as tmp:
        work = Path(tmp)
        for mp in sizes:
            ph = photos[mp]
            cases = [("io", "png"), ("brighter", "png")]
            if "jpg" in ph:
                cases += [("io", "jpg"), ("brighter", "jpg")]
            cases += [("remove 5%", "png"), ("extend 25%", "png")]
            cases = [(k, f) for k, f in cases if k == "io" or k.split()[0] in wanted]
            for kind, fmt in cases:
                row = bench_case(mp, kind, fmt, ph[fmt], ph["size"], runs, work, keep)
                rows.append(row)
                if kind == "io":
                    print(f"  {mp:g} MP {fmt} read+write (cv2): {row['baseline_median_s']:.2f} s",
                          flush=True)
                else:
                    print(f"  {mp:g} MP {kind:10s} {fmt}: imagent {row['imagent_median_s']:.2f} s, "
                          f"cv2 {row['baseline_median_s']:.2f} s, x{row['ratio']:.2f}, "
                          f"{row['peak_rss_mb']:.0f} MB" + (f"  ERRORS: {row['errors']}"
                                                             if row["errors"] else ""), flush=True)
    ext = [r for r in rows if r["request"] == "extend 25%" and r.get("output")]
    preview = None
    if ext:
        r = next((r for r in ext if r["megapixels"] == 12), ext[-1])
        r["streak_index"] = streak_index(Path(r["output"]), r["size"][0])
        preview = a.out.parent / f"photo_scale_extend_{r['megapixels']:g}mp.jpg"
        save_preview(Path(r["output"]), preview)
        r["preview"] = str(preview.relative_to(ROOT) if preview.is_relative_to(ROOT) else preview)

    io = {(r["megapixels"], r["input"]): r["baseline_median_s"] for r in rows if r["request"] == "io"}
    print()
    print(f"{'size':>6s} {'request':11s} {'in':3s} {'imagent s':>9s} {'cv2 s':>7s} {'ratio':>6s} "
          f"{'x io':>6s} {'RSS MB':>7s} {'target':>7s}  result")
    for r in rows:
        if r["request"] == "io":
            continue
        r["ratio_to_io"] = round(r["imagent_median_s"] / io[(r["megapixels"], r["input"])], 2)
        c = r["checks"]
        verdict = "-" if not c else ("PASS" if all(c.values()) else
                                     "FAIL " + ",".join(k for k, ok in c.items() if not ok))
        tgt = f"<={r['target_ratio']:g}x" if "target_ratio" in r else "-"
        print(f"{r['megapixels']:>4g}MP {r['request']:11s} {r['input']:3s} {r['imagent_median_s']:9.2f} "
              f"{r['baseline_median_s']:7.2f} {r['ratio']:6.2f} {r['ratio_to_io']:6.2f} "
              f"{r['peak_rss_mb']:7.0f} {tgt:>7s}  {verdict}")
    for r in ext:
        if "streak_index" in r:
            print(f"\nextension at {r['megapixels']:g} MP: streak index {r['streak_index']} "
                  f"(~1 none; >1.5 look), preview {r['preview']}, full size {r['output']}")
    load1 = os.getloadavg()
    report = {"quick": a.quick, "runs": runs, "source": source, "grain_sigma": GRAIN_SIGMA,
              "rss_method": "os.wait4 rusage of each child (ru_maxrss, KiB on Linux), max over runs",
              "timing": "wall time spawn->reap, whole process, median of runs; ratio = imagent/cv2",
              "targets": {"ratio": TARGET_RATIO, "ratio_from_mp": TARGET_RATIO_MIN_MP,
                          "peak_rss_mb": TARGET_RSS_MB, "rss_from_mp": TARGET_RSS_MIN_MP},
              "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                          "platform": platform.platform(),
                          "loadavg_start": [round(x, 2) for x in load0],
                          "loadavg_end": [round(x, 2) for x in load1]},
              "rows": rows}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"\nwritten {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
