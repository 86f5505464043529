"""imagent's overhead over calling the same diffusers pipeline directly (target: <= 3 %).

Builds a tiny random-weight SD inpainting model (the tests' builder), loads it through the
ModelManager, and times, interleaved, (a) ``imagent.tools.backends.inpaint.inpaint_remove`` on
a 64x64 image and (b) the same pipeline called directly with the same prompts, size, steps,
seed and guidance. The ratio is the median over the interleaved pairs of one run of
t(imagent) / t(direct) (the ratio of the two medians is written beside it); writes bench/results/models.json. Not a test: the figure is printed, not asserted.

``IMAGENT_BENCH_DEVICE`` (default cpu) picks the device; ``--steps``/``--reps`` tune the run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET = 1.03


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--reps", type=int, default=31)
    ap.add_argument("--size", type=int, default=64)
    a = ap.parse_args()

    import numpy as np
    import torch
    from PIL import Image

    from imagent.tools.backends import _common as C
    from imagent.tools.backends import inpaint as I
    from imagent.tools.models import ModelManager
    from tests.tools.backends.conftest import tiny_sd

    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    device = os.environ.get("IMAGENT_BENCH_DEVICE", "cpu")
    with tempfile.TemporaryDirectory() as tmp:
        folder = tiny_sd(Path(tmp) / "inpaint", in_channels=9, kind="inpaint")
        mgr = ModelManager({"inpaint": str(folder)}, device=device)
        pipe = mgr.get("inpaint")
        s = a.size
        rng = np.random.default_rng(0)
        img = Image.fromarray(rng.integers(0, 255, (s, s, 3), dtype=np.uint8))
        mask = np.zeros((s, s), np.float32)
        mask[s // 4: 3 * s // 4, s // 4: 3 * s // 4] = 1.0
        mask_img = C.mask_image(mask)
        kw = dict(num_inference_steps=a.steps, guidance_scale=I.DEFAULT_GUIDANCE, strength=1.0)

        def ours() -> None:
            I.inpaint_remove(mgr, img, mask, seed=0, **kw)

        def direct() -> None:
            with torch.no_grad():
                pipe(prompt=I.CONTEXT_PROMPT, negative_prompt=I.OBJECT_NEGATIVE, image=img,
                     mask_image=mask_img, height=s, width=s, generator=torch.Generator("cpu").manual_seed(0),
                     output_type="pil", **kw)

        for f in (ours, direct):  # warm-up
            f()
        t_ours, t_direct, ratios = [], [], []
        for i in range(a.reps):
            for f, store in ((ours, t_ours), (direct, t_direct)) if i % 2 == 0 else \
                    ((direct, t_direct), (ours, t_ours)):
                if device.startswith("cuda"):
                    torch.cuda.synchronize()
                t = time.perf_counter()
                f()
                if device.startswith("cuda"):
                    torch.cuda.synchronize()
                store.append(time.perf_counter() - t)
            ratios.append(t_ours[-1] / t_direct[-1])
    # headline: the median of the interleaved pairs' ratios (each pair ran back to back, so
    # load changes on a shared machine cancel); the ratio of the medians is reported beside it
    ratio = statistics.median(ratios)
    ratio_of_medians = statistics.median(t_ours) / statistics.median(t_direct)
    result = {
        "what": "inpaint_remove vs the same diffusers pipeline called directly",
        "model": "tiny random SD inpainting (tests' builder)", "device": device,
        "size_px": a.size, "steps": a.steps, "reps": a.reps,
        "median_imagent_s": round(statistics.median(t_ours), 5),
        "median_direct_s": round(statistics.median(t_direct), 5),
        "ratio": round(ratio, 4), "ratio_of_medians": round(ratio_of_medians, 4),
        "target_ratio": TARGET, "pass": ratio <= TARGET,
        "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(), "torch": torch.__version__,
    }
    print(f"imagent/direct = {ratio:.4f} (median of paired ratios; ratio of medians "
          f"{result['ratio_of_medians']:.4f}; "
          f"{result['median_imagent_s'] * 1000:.1f} ms vs {result['median_direct_s'] * 1000:.1f} ms, "
          f"{a.steps} steps at {a.size}px on {device}, {a.reps} interleaved reps) — target <= {TARGET} — "
          f"{'PASS' if result['pass'] else 'FAIL'}")
    out = Path(__file__).parent / "results" / "models.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
