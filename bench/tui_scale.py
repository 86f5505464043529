"""How fast the chat UI repaints after undo / redo / checkout on a large photo (target: ≤ 0.3 s at 24 MP).

Builds a session of a synthetic 24 MP photo (6000×4000) with a few versions straight through
the Store API (cheap numpy edits, one of them with a mask), opens it in the chat app headless
(Textual's ``App.run_test()`` Pilot, half-block renderer, 120×40 cells) and times, several
times each:

* undo  — ctrl+z from the head (v3 → v2)
* redo  — ctrl+y back (v2 → v3)
* checkout — "/checkout 1" + enter, then "/checkout 3" + enter (both counted)

The first round is reported apart ("first visit"): the versions were committed outside the
app, so their previews are made then (in the app, a version's preview is made by the snapshot
that follows its edit). The medians are over the following ``--reps`` rounds.

A repaint is timed from the key press to the moment the image view has built its cells for
the new version's image at the pane's final size (the last half-block ``_build`` of the image
the pane shows for the new head, once the app is idle and nothing was built for 0.15 s). Reports median / min / max per action, the cost of
the first load, and how many full-resolution decodes (``Store.load_image``) each repaint
needed. Writes bench/results/tui_scale.json (or ``--out``). Not a test: figures are printed,
not asserted.

    .venv/bin/python bench/tui_scale.py [--reps 5] [--size 6000x4000] [--label after]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 0.3
CELLS = (120, 40)
QUIET_S = 0.15  # a repaint is over when the view has built nothing for this long


def synthetic_photo(width: int, height: int) -> Image.Image:
    """A smooth photo-like picture (gradients, soft waves, a few blocks): compresses like a photo
    would in a PNG, much faster to make than noise."""
    y = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None]
    x = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :]
    r = 90 + 80 * x + 20 * np.sin(40 * y + 9 * x)
    g = 110 + 60 * y + 15 * np.sin(55 * x)
    b = 140 + 30 * np.cos(23 * x * y + 7 * y)
    img = np.empty((height, width, 3), np.uint8)
    for i, ch in enumerate((r, g, b)):
        img[..., i] = np.clip(np.broadcast_to(ch, (height, width)), 0, 255)
    h4, w4 = height // 4, width // 4
    img[h4:2 * h4, w4:2 * w4] = (220, 40, 40)
    img[2 * h4:3 * h4, 2 * w4:3 * w4] = (30, 60, 200)
    return Image.fromarray(img, "RGB")


def build_session(home: Path, size: tuple[int, int]) -> tuple[str, float]:
    """A session: root + 3 edits (v2 with a mask). Returns (its name, seconds it took)."""
    from imagent.sessions import Store

    t0 = time.perf_counter()
    w, h = size
    base = synthetic_photo(w, h)
    a = np.asarray(base)
    store = Store(home)
    try:
        sess = store.create_session(base, name="scale", source="synthetic-24mp.png")
        v = store.head(sess)
        brighter = Image.fromarray(np.clip(a.astype(np.int16) + 25, 0, 255).astype(np.uint8), "RGB")
        v = store.commit(sess, parent=v, image=brighter, request="make it a bit brighter", kind="edit")
        mask = np.zeros((h, w), np.float32)
        mask[h // 4:h // 2, w // 4:w // 2] = 1.0
        b = np.asarray(brighter).copy()
        b[h // 4:h // 2, w // 4:w // 2] = (120, 130, 110)
        v = store.commit(sess, parent=v, image=Image.fromarray(b, "RGB"), mask=mask,
                         request="remove the red square", kind="edit")
        warm = b.astype(np.int16)
        warm[..., 0] += 20
        warm[..., 2] -= 20
        store.commit(sess, parent=v, image=Image.fromarray(np.clip(warm, 0, 255).astype(np.uint8), "RGB"),
                     request="make it a bit warmer", kind="edit")
    finally:
        store.close()
    return "scale", time.perf_counter() - t0


class Probe:
    """Times when the image view builds its cells, and counts full-resolution decodes."""

    def __init__(self) -> None:
        from imagent.sessions import Store
        from imagent.tui.widgets import HalfBlockImage

        self.builds: list[tuple[float, int]] = []  # (time, id of the image built)
        self.decodes = 0
        orig_build = HalfBlockImage._build
        orig_load = Store.load_image
        probe = self

        def _build(widget, width, height):
            before = widget._key
            orig_build(widget, width, height)
            if widget._key != before and widget._image is not None:
                probe.builds.append((time.perf_counter(), id(widget._image)))

        def load_image(store, version):
            probe.decodes += 1
            return orig_load(store, version)

        HalfBlockImage._build = _build
        Store.load_image = load_image


async def _wait(pilot, app, probe: Probe, t0: float, head_seq: int, timeout: float = 120.0) -> float:
    """Seconds from ``t0`` to the view's build of the image the pane shows for head ``head_seq``."""
    from imagent.tui.widgets import ImagePane

    pane = app.query_one(ImagePane)
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        await pilot.pause(0.002)
        snap = app.snapshot
        if app.busy or snap is None or snap.head_seq != head_seq:
            continue
        shown = app.query_one("#image-view").image
        if shown is None or pane.displayed is not shown:
            continue
        hits = [t for t, key in probe.builds if t >= t0 and key == id(shown)]
        if hits and time.perf_counter() - probe.builds[-1][0] >= QUIET_S:
            return hits[-1] - t0  # the last build: the image at the pane's final size
    raise TimeoutError(f"no repaint of version {head_seq} within {timeout:.0f} s")


async def drive(session: str, home: Path, reps: int) -> dict:
    from imagent import Assistant
    from imagent.tui.app import ChatApp

    probe = Probe()
    t_open = time.perf_counter()
    assistant = Assistant.open(session=session, home=str(home))
    app = ChatApp(assistant, graphics=False, show_timings=False, ready_file="")
    times: dict[str, list[float]] = {"undo": [], "redo": [], "checkout": []}
    decodes: dict[str, list[int]] = {"undo": [], "redo": [], "checkout": []}
    async with app.run_test(size=CELLS) as pilot:
        load_s = await _wait(pilot, app, probe, t_open, 3, timeout=300.0)
        load_decodes = probe.decodes
        await app.workers.wait_for_complete()
        prompt = app.query_one("#prompt")

        async def step(kind: str, keys, seq: int) -> None:
            await pilot.pause(0.05)
            n0 = probe.decodes
            t0 = time.perf_counter()
            if isinstance(keys, str):
                await pilot.press(keys)
            else:
                prompt.value = keys[0]
                t0 = time.perf_counter()
                await pilot.press("enter")
            dt = await _wait(pilot, app, probe, t0, seq)
            await app.workers.wait_for_complete()
            times[kind].append(dt)
            decodes[kind].append(probe.decodes - n0)
            print(f"  {kind:9s} → v{seq}: {dt * 1000:8.1f} ms  ({probe.decodes - n0} full decodes)", flush=True)

        print("  first visit (previews made now: the versions were committed outside the app):")
        cold_from = {k: len(v) for k, v in times.items()}
        await step("undo", "ctrl+z", 2)
        await step("redo", "ctrl+y", 3)
        await step("checkout", ["/checkout 1"], 1)
        await step("checkout", ["/checkout 3"], 3)
        first = {k: [round(x, 4) for x in v[cold_from[k]:]] for k, v in times.items()}
        for k in times:
            del times[k][:]
            del decodes[k][:]
        print("  repeated (previews cached):")
        for _ in range(reps):
            await step("undo", "ctrl+z", 2)
            await step("redo", "ctrl+y", 3)
            await step("checkout", ["/checkout 1"], 1)
            await step("checkout", ["/checkout 3"], 3)
    assistant.close()

    def summary(xs: list[float]) -> dict:
        return {"median_s": round(statistics.median(xs), 4), "min_s": round(min(xs), 4),
                "max_s": round(max(xs), 4), "n": len(xs), "all_s": [round(x, 4) for x in xs]}

    return {"load_s": round(load_s, 4), "load_full_decodes": load_decodes, "first_visit_s": first,
            **{k: {**summary(v), "full_decodes_median": statistics.median(decodes[k])} for k, v in times.items()}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--size", default="6000x4000")
    ap.add_argument("--label", default="after", help="the key the results go under (before/after)")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "tui_scale.json"))
    args = ap.parse_args(argv)
    w, h = (int(v) for v in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory(prefix="imagent-tui-scale-") as tmp:
        home = Path(tmp) / "home"
        os.environ["IMAGENT_HOME"] = str(home)
        print(f"building a {w}×{h} session ({w * h / 1e6:.1f} MP, 4 versions)…", flush=True)
        name, build_s = build_session(home, (w, h))
        print(f"  built in {build_s:.1f} s", flush=True)
        res = asyncio.run(drive(name, home, args.reps))
    res = {"size": [w, h], "megapixels": round(w * h / 1e6, 1), "cells": list(CELLS), "reps": args.reps,
           "target_s": TARGET_S, "cpu_count": os.cpu_count(), "python": sys.version.split()[0], **res}
    print(f"first load {res['load_s']:.2f} s ({res['load_full_decodes']} full decodes); first visits "
          + ", ".join(f"{k} {v}" for k, v in res["first_visit_s"].items()))
    for k in ("undo", "redo", "checkout"):
        r = res[k]
        ok = "ok" if r["median_s"] <= TARGET_S else "OVER TARGET"
        print(f"{k:9s} median {r['median_s'] * 1000:8.1f} ms  (min {r['min_s'] * 1000:.1f}, "
              f"max {r['max_s'] * 1000:.1f}, n={r['n']}, full decodes {r['full_decodes_median']})  {ok}")
    out = Path(args.out)
    data = {}
    if out.exists():
        try:
            data = json.loads(out.read_text())
        except ValueError:
            data = {}
    data[args.label] = res
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=2) + "\n")
    print(f"wrote {out} [{args.label}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())
