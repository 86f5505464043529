"""Benchmark of the session store on a large session.

    .venv/bin/python bench/store.py [--versions 10000] [--ops 200] [--home DIR]
    .venv/bin/python bench/store.py --photo [--repeat 3]     # 12 MP commit/load, before vs after

Setup (not timed): a session of ``--versions`` versions (tiny 16x16 images, each
different so every blob differs) is built through the public
``Store.import_bundle``: the bench writes a bundle (manifest + blobs) and
imports it, so the bulk lands in one transaction instead of 10,000 commits.
The graph is mostly a line, with a side branch every 50 versions.

Timed, each over ``--ops`` operations, all through the public API:

* ``undo``     -- ``--ops`` undos from the head, one after another (fewer if the
  session is shallower);
* ``redo``     -- as many redos back;
* ``checkout`` -- random versions (alternately by sequence number and full id);
* ``commit``   -- ``Store.commit`` with a pre-encoded ``EncodedBlob``
  (``encode_image`` runs before the clock starts), so the time is the store's
  own work: blob write (temp file, fsync, rename, dir fsync), the
  ``BEGIN IMMEDIATE`` transaction with its WAL fsync. Blob encoding is reported
  separately as ``encode (info)``.
* ``head``, ``get_version (prefix)`` -- for information.

Prints a table and writes ``bench/results/store.json``. Exits 0 even when a
target is missed, but prints FAIL for that row.

``--photo``: the cost of one version of a 12 MP photo (4000x3000: the skimage astronaut
from shared/benchmarks upscaled, or a synthetic one if absent, and the same plus noise of
sigma 6), median of ``--repeat`` runs, through the public API:

* ``commit before`` -- the old blob: PNG at zlib 6 keyed by the sha256 of its bytes (the
  encoder is kept here), then ``Store.commit`` of that ``EncodedBlob``;
* ``commit after`` -- ``Store.commit(image=PIL image)``: pixel key + updelta-zstd + write;
* ``load before/after`` -- ``Store.load_image`` of each (decode + check against the key);
* ``open JPEG root`` -- ``create_session(image, original=<JPEG bytes>)`` (kept as is after a
  decoding check) vs ``create_session(image)`` (encoded).

Every commit includes the blob's fsync and the transaction's: durable when it returns.
Writes ``bench/results/store_photo.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
import zipfile
from pathlib import Path

from PIL import Image

from imagent.sessions import EncodedBlob, Store, encode_image
from imagent.sessions import bundle as _bundle

TARGETS_MS = {"undo": 5.0, "redo": 5.0, "checkout": 5.0, "commit": 20.0}
RESULTS = Path(__file__).resolve().parent / "results" / "store.json"


def tiny_image(i: int) -> Image.Image:
    """A 16x16 RGB image unique to ``i``."""
    raw = bytearray(16 * 16 * 3)
    for k in range(0, len(raw), 3):
        raw[k], raw[k + 1], raw[k + 2] = (i >> 16) & 255, (i >> 8) & 255, i & 255
    raw[(i * 7) % len(raw)] ^= 0x55
    return Image.frombytes("RGB", (16, 16), bytes(raw))


def build_bundle(path: Path, n: int) -> None:
    ids = [uuid.uuid4().hex for _ in range(n)]
    versions, blobs = [], {}
    for i in range(n):
        blob = encode_image(tiny_image(i))
        blobs[blob.sha256] = blob.data
        if i == 0:
            parent = None
        elif i % 50 == 0 and i > 10:
            parent = ids[i - 10]  # a side branch
        else:
            parent = ids[i - 1] if (i - 1) % 50 != 0 or i - 1 <= 10 else ids[i - 2]
        versions.append({
            "id": ids[i], "seq": i, "parent_id": parent, "request": "open bench.png" if i == 0 else f"edit {i}",
            "tool_calls": [] if i == 0 else [{"name": "bench", "args": {"i": i}}],
            "image_hash": blob.sha256, "mask_hash": None, "alpha_hash": None, "width": 16, "height": 16,
            "metrics": {} if i == 0 else {"changed": round((i % 97) / 97, 4)}, "backends": {}, "seed": i,
            "timings": {}, "created_at": "2025-01-01T00:00:00.000000Z", "kind": "open" if i == 0 else "edit",
            "branched": False,
        })
    manifest = {"format": _bundle.FORMAT, "format_version": _bundle.FORMAT_VERSION,
                "session": {"id": uuid.uuid4().hex, "name": "bench", "head_id": ids[-1], "root_id": ids[0],
                            "created_at": "2025-01-01T00:00:00.000000Z",
                            "updated_at": "2025-01-01T00:00:00.000000Z", "source": "bench.png"},
                "versions": versions}
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("manifest.json", json.dumps(manifest))
        for key, data in blobs.items():
            z.writestr(f"blobs/{key}", data)


def timed(fn, n: int) -> list[float]:
    out = []
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        out.append((time.perf_counter() - t) * 1000.0)
    return out


def summary(samples: list[float]) -> dict:
    s = sorted(samples)
    return {"median_ms": round(statistics.median(s), 4), "p90_ms": round(s[min(len(s) - 1, int(0.9 * len(s)))], 4),
            "max_ms": round(s[-1], 4), "n": len(s)}


PHOTO = Path(__file__).resolve().parents[1] / "shared" / "benchmarks" / "images" / "skimage_astronaut.png"
PHOTO_RESULTS = RESULTS.parent / "store_photo.json"


def legacy_png_blob(image: Image.Image) -> EncodedBlob:
    """The blob as the store wrote it before pixel keys: PNG, zlib 6, keyed by its bytes."""
    import hashlib
    import io

    buf = io.BytesIO()
    Image.frombytes("RGB", image.size, image.tobytes()).save(buf, format="PNG", compress_level=6,
                                                             optimize=False)
    data = buf.getvalue()
    return EncodedBlob(data, hashlib.sha256(data).hexdigest(), "image", image.width, image.height)


def photo_images() -> dict[str, Image.Image]:
    import numpy as np

    for base in (PHOTO, Path("/work/shared/benchmarks/images/skimage_astronaut.png")):
        if base.is_file():
            src = Image.open(base).convert("RGB")
            break
    else:  # a smooth synthetic stand-in
        y, x = np.mgrid[0:512, 0:512].astype(np.float32)
        src = Image.fromarray(np.stack([x / 2, y / 2, 128 + 100 * np.sin(x / 40) * np.cos(y / 30)], -1)
                              .astype(np.uint8), "RGB")
    smooth = src.resize((4000, 3000), Image.BICUBIC)
    rng = np.random.default_rng(0)
    a = np.asarray(smooth).astype(np.int16) + np.rint(rng.normal(0, 6, (3000, 4000, 3))).astype(np.int16)
    return {"smooth": smooth, "noisy": Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "RGB")}


def photo_main(repeat: int, out: Path) -> int:
    import io

    def med(xs: list[float]) -> float:
        return round(statistics.median(xs), 3)

    tmp = Path(tempfile.mkdtemp(prefix="imagent-bench-photo-"))
    results: dict[str, dict] = {}
    try:
        for name, img in photo_images().items():
            row: dict[str, list[float]] = {k: [] for k in (
                "commit_before_s", "commit_after_s", "load_before_s", "load_after_s",
                "open_jpeg_original_s", "open_encoded_s")}
            sizes: dict[str, int] = {}
            buf = io.BytesIO()
            img.save(buf, "JPEG", quality=92)
            jpeg = buf.getvalue()
            jimg = Image.open(io.BytesIO(jpeg)).convert("RGB")
            for r in range(repeat):
                with Store(tmp / f"{name}-{r}") as s:
                    sess = s.create_session(Image.new("RGB", (8, 8)), name="p")
                    root = s.head(sess)
                    t = time.perf_counter()
                    old = s.commit(sess, parent=root.id, image=legacy_png_blob(img), request="before")
                    row["commit_before_s"].append(time.perf_counter() - t)
                    # a different image for "after" (one pixel changed) so nothing is deduplicated
                    img2 = img.copy()
                    img2.putpixel((0, 0), (r, 1, 2))
                    t = time.perf_counter()
                    new = s.commit(sess, parent=old.id, image=img2, request="after")
                    row["commit_after_s"].append(time.perf_counter() - t)
                    t = time.perf_counter()
                    s.load_image(old)
                    row["load_before_s"].append(time.perf_counter() - t)
                    t = time.perf_counter()
                    s.load_image(new)
                    row["load_after_s"].append(time.perf_counter() - t)
                    sizes = {"before_bytes": s.blobs.path_for(old.image_hash).stat().st_size,
                             "after_bytes": s.blobs.path_for(new.image_hash).stat().st_size}
                    t = time.perf_counter()
                    j = s.create_session(jimg, name="j", original=jpeg)
                    row["open_jpeg_original_s"].append(time.perf_counter() - t)
                    jimg2 = jimg.copy()  # one pixel changed: same pixels would reuse the JPEG blob
                    jimg2.putpixel((0, 0), (r, 7, 7))
                    t = time.perf_counter()
                    s.create_session(jimg2, name="e")
                    row["open_encoded_s"].append(time.perf_counter() - t)
                    sizes["jpeg_root_bytes"] = s.blobs.path_for(s.head(j).image_hash).stat().st_size
                    sizes["encoded_root_bytes"] = s.blobs.path_for(s.head("e").image_hash).stat().st_size
                shutil.rmtree(tmp / f"{name}-{r}", ignore_errors=True)
            results[name] = {**{k: med(v) for k, v in row.items()}, **sizes}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n12 MP (4000x3000), median of {repeat}; seconds, durable on return")
    print(f"{'image':<8}{'commit before':>14}{'after':>8}{'load before':>13}{'after':>8}"
          f"{'open JPEG kept':>16}{'encoded':>9}   blob MB before/after, JPEG root/encoded")
    for name, r in results.items():
        print(f"{name:<8}{r['commit_before_s']:>14.2f}{r['commit_after_s']:>8.2f}{r['load_before_s']:>13.2f}"
              f"{r['load_after_s']:>8.2f}{r['open_jpeg_original_s']:>16.2f}{r['open_encoded_s']:>9.2f}   "
              f"{r['before_bytes'] / 1e6:.1f}/{r['after_bytes'] / 1e6:.1f}, "
              f"{r['jpeg_root_bytes'] / 1e6:.1f}/{r['encoded_root_bytes'] / 1e6:.1f}")
    doc = {"benchmark": "sessions.store photo", "size": [4000, 3000], "repeat": repeat, "rows": results,
           "machine": {"python": sys.version.split()[0], "platform": platform.platform(),
                       "cpus": os.cpu_count()},
           "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--versions", type=int, default=10_000)
    ap.add_argument("--ops", type=int, default=200)
    ap.add_argument("--home", help="store folder to use (default: a temp folder, removed afterwards)")
    ap.add_argument("--out", default=None, help=f"results file (default {RESULTS}, or {PHOTO_RESULTS} with --photo)")
    ap.add_argument("--photo", action="store_true", help="measure 12 MP commits and loads, before vs after")
    ap.add_argument("--repeat", type=int, default=3, help="runs per figure with --photo")
    args = ap.parse_args(argv)
    if args.photo:
        return photo_main(max(1, args.repeat), Path(args.out or PHOTO_RESULTS))
    args.out = args.out or str(RESULTS)
    n, ops = max(args.versions, 2), args.ops
    tmp = Path(tempfile.mkdtemp(prefix="imagent-bench-"))
    home = Path(args.home) if args.home else tmp / "home"
    rng = random.Random(0)
    try:
        t0 = time.perf_counter()
        bundle = tmp / "bulk.zip"
        build_bundle(bundle, n)
        store = Store(home)
        sess = store.import_bundle(bundle, name=f"bench-{uuid.uuid4().hex[:6]}")
        setup_s = time.perf_counter() - t0
        assert len(store.log(sess)) == n
        print(f"setup: {n} versions built via import_bundle in {setup_s:.1f}s (home {home})")

        rows: dict[str, dict] = {}
        depth = len(store.path(sess)) - 1  # undos possible from the head
        steps = max(1, min(ops, depth))
        rows["undo"] = summary(timed(lambda i: store.undo(sess), steps))
        rows["redo"] = summary(timed(lambda i: store.redo(sess), steps))
        all_ids = [v.id for v in store.log(sess)]
        picks = [rng.randrange(n) for _ in range(ops)]
        rows["checkout"] = summary(timed(
            lambda i: store.checkout(sess, picks[i] if i % 2 else all_ids[picks[i]]), ops))
        store.checkout(sess, "head")
        store.checkout(sess, all_ids[-1])
        te = time.perf_counter()
        encoded = [encode_image(tiny_image(n + 10 + i)) for i in range(ops)]
        encode_ms = (time.perf_counter() - te) * 1000.0 / ops

        def do_commit(i: int) -> None:
            head = store.head(sess)
            t = time.perf_counter()
            store.commit(sess, parent=head.id, image=encoded[i], request=f"bench commit {i}",
                         tool_calls=[{"name": "bench", "args": {"i": i}}], metrics={"changed": 0.01}, seed=i)
            commit_times.append((time.perf_counter() - t) * 1000.0)

        commit_times: list[float] = []
        for i in range(ops):
            do_commit(i)
        rows["commit"] = summary(commit_times)
        rows["head (info)"] = summary(timed(lambda i: store.head(sess), ops))
        rows["get_version prefix (info)"] = summary(timed(
            lambda i: store.get_version(sess, all_ids[picks[i]][:8]), ops))
        rows["encode 16x16 (info)"] = {"median_ms": round(encode_ms, 4), "p90_ms": None, "max_ms": None,
                                           "n": ops}
        problems = store.verify() if n <= 20_000 else []
        store.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # --home, if given, is kept

    print(f"\n{'operation':<28}{'median ms':>11}{'p90 ms':>10}{'target ms':>11}  result")
    print("-" * 68)
    any_fail = False
    for name, r in rows.items():
        target = TARGETS_MS.get(name)
        if target is not None:
            ok = r["median_ms"] <= target
            r["target_ms"], r["pass"] = target, ok
            any_fail |= not ok
            verdict = "ok" if ok else "FAIL"
        else:
            verdict = "-"
        p90 = f"{r['p90_ms']:.3f}" if r.get("p90_ms") is not None else "-"
        tgt = f"{target:.1f}" if target is not None else "-"
        print(f"{name:<28}{r['median_ms']:>11.3f}{p90:>10}{tgt:>11}  {verdict}")
    if problems:
        print(f"verify() found problems: {problems[:5]}")
    print("\nALL TARGETS MET" if not any_fail else "\nFAIL: at least one target missed")
    result = {
        "benchmark": "sessions.store", "versions": n, "ops": ops, "setup_s": round(setup_s, 2),
        "commit_timing": "store work only: EncodedBlob pre-encoded; includes blob fsync + SQLite transaction",
        "rows": rows, "all_pass": not any_fail, "verify_problems": problems,
        "machine": {"python": sys.version.split()[0], "platform": platform.platform(),
                    "cpus": os.cpu_count()},
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
