"""The original SAM checkpoint through ``segment-anything`` (role ``sam_original``; extra
``imagent[sam]``, which needs torchvision).

The role's value is the checkpoint path (``sam_vit_b_01ec64.pth`` ...); the model type
(vit_b / vit_l / vit_h) is read from the file name (default vit_h). Weights are read with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
from PIL import Image

ROLE = "sam_original"


def model_type(path: str) -> str:
    name = Path(path).name.lower()
    for t in ("vit_b", "vit_l", "vit_h"):
        if t in name:
            return t
    return "vit_h"


def load(manager: Any, role: str, path: Path) -> Any:
    import torch
    from segment_anything import SamPredictor, sam_model_registry  # needs torchvision

    sam = sam_model_registry[model_type(str(path))]()
    sam.load_state_dict(torch.load(str(path), map_location="cpu", weights_only=True))
    sam.to(manager.device).eval()
    return SamPredictor(sam)


def segment(manager: Any, image: Image.Image, *, boxes: Sequence[Sequence[float]] | None = None,
            points: Sequence[Sequence[float]] | None = None,
            point_labels: Sequence[int] | None = None, multimask: bool = True,
            info: dict | None = None) -> list[np.ndarray]:
    """Same contract as ``sam.segment`` with the original model (best-of-multimask by IoU)."""
    from imagent.tools.backends.sam import image_digest

    predictor = manager.get(ROLE)
    rgb = np.asarray(image.convert("RGB"))
    digest = image_digest(image)
    if manager.extras.get((ROLE, "digest")) != digest:
        predictor.set_image(rgb)
        manager.extras[(ROLE, "digest")] = digest
    pts = np.asarray(points, np.float32) if points else None
    lbl = (np.asarray(point_labels if point_labels is not None else [1] * len(points), np.int64)
           if points else None)
    out = []
    for box in (boxes or [None]):
        masks, scores, _ = predictor.predict(point_coords=pts, point_labels=lbl,
                                             box=None if box is None else np.asarray(box, np.float32),
                                             multimask_output=multimask)
        out.append(masks[int(np.argmax(scores))].astype(np.float32))
    if info is not None:
        info.update({"backend": "segment-anything-original", "model": manager.model_id(ROLE)})
    return out
