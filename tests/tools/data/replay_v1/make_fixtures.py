"""Make the impl-1 replay fixtures with imagent 0.1.0's own code (commit 5fa86c6).

Run it with the 0.1.0 tree first on the import path (see README.md), from any directory:

    PYTHONPATH=/path/to/imagent-5fa86c6-path python make_fixtures.py OUT_DIR

Each case runs one call through that tree's ``default_registry().run`` (a ToolState with the
input image and, for masked calls, the mask) and writes the input(s), the output and the call
exactly as 0.1.0 stored it (``result.extra["call"]``, no ``impl``) to ``cases.json``.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

import imagent
from imagent.tools.registry import default_registry
from imagent.tools.types import ToolCall, ToolState

PHOTO = Path(__file__).resolve().parents[4] / "bench" / "scenes" / "photos" / "grace_hopper.jpg"


def digest(img: Image.Image) -> str:
    a = np.ascontiguousarray(np.asarray(img.convert("RGB")))
    return hashlib.sha256(f"{a.shape}".encode() + a.tobytes()).hexdigest()


def main(out: Path) -> None:
    print("imagent from", imagent.__file__, file=sys.stderr)
    out.mkdir(parents=True, exist_ok=True)
    photo = Image.open(PHOTO).convert("RGB")
    small = photo.resize((64, 75), Image.Resampling.LANCZOS)
    medium = photo.resize((128, 150), Image.Resampling.LANCZOS)
    tiny = small.resize((3, 2), Image.Resampling.BOX)
    yy, xx = np.mgrid[0:75, 0:64]
    soft = np.clip(1.4 - np.hypot(yy - 35, xx - 30) / 18.0, 0.0, 1.0).astype(np.float32)
    hole = np.zeros((150, 128), np.float32)
    hole[30:110, 4:20] = 1.0  # the background left of her face, which a wide margin sees
    inputs = {"small.png": small, "medium.png": medium, "tiny.png": tiny,
              "soft_mask.png": Image.fromarray(np.round(soft * 255).astype(np.uint8)),
              "hole_mask.png": Image.fromarray(np.round(hole * 255).astype(np.uint8))}
    for name, img in inputs.items():
        img.save(out / name)
    # the masks as the tests read them back (8-bit PNGs)
    soft = np.asarray(Image.open(out / "soft_mask.png"), np.float32) / 255.0
    hole = np.asarray(Image.open(out / "hole_mask.png"), np.float32) / 255.0

    cases: list[tuple[str, str, str | None, dict]] = [
        (f"global_edit_{op}", "small.png", None, {"operation": op})
        for op in ("saturation", "black_and_white", "sepia", "sharpen", "blur", "vignette",
                   "low_light", "dehaze", "brightness")]
    cases += [
        ("global_edit_blur_value", "small.png", None,
         {"operation": "blur", "amount": 1.5, "value": 30}),  # 0.1.0 ignored value for blur
        ("global_edit_brightness_mask", "small.png", "soft_mask.png",
         {"operation": "brightness", "amount": 0.3, "region": "mask"}),
        # under 4 px a side impl 2 works on a replicated 4 x 4 copy
        ("global_edit_contrast_tiny", "tiny.png", None, {"operation": "contrast", "amount": 0.5}),
        ("global_edit_vignette_tiny", "tiny.png", None, {"operation": "vignette", "amount": 0.8}),
        ("outpaint", "small.png", None, {"right": 24, "top": 10, "seed": 3,
                                         "algorithm": "patchmatch"}),
        ("remove_face", "medium.png", "hole_mask.png", {"seed": 0, "margin": 64,
                                                         "algorithm": "patchmatch"}),
    ]
    reg = default_registry()
    table = {}
    for name, src, mask_file, args in cases:
        name_tool = name.split("_")[0] if not name.startswith("global_edit") else "global_edit"
        image = Image.open(out / src).convert("RGB")
        mask = {"soft_mask.png": soft, "hole_mask.png": hole}.get(mask_file or "")
        state = ToolState(image=image, original=image, mask=mask)
        result = reg.run(ToolCall(name=name_tool, args=args), state)
        box = [0, 0, *result.image.size]
        if name_tool == "remove":  # only the hole changes: its box is enough to look at
            ys, xs = np.nonzero(mask)
            box = [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]
        result.image.crop(tuple(box)).save(out / f"{name}.png")
        table[name] = {"input": src, "mask": mask_file, "call": result.extra["call"],
                       "output": f"{name}.png", "output_box": box,
                       "size": list(result.image.size), "sha256": digest(result.image)}
        print(name, result.image.size, result.message, file=sys.stderr)
    (out / "cases.json").write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
