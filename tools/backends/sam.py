"""SAM through transformers (role ``segmentation``): masks from box and point prompts.

``SamModel`` + ``SamProcessor``. Each box (or the set of points) gives three candidate masks;
the one with the best predicted IoU is kept. The image embedding (the expensive part) is
cached per image digest in the manager, so segmenting several boxes of one image version runs
the vision encoder once.
"""

from __future__ import annotations

import hashlib
from typing import Any, Sequence

import numpy as np
from PIL import Image

from imagent.errors import ToolArgumentError

ROLE = "segmentation"
CACHE_SIZE = 4


def image_digest(image: Image.Image) -> str:
    rgb = image.convert("RGB")
    h = hashlib.sha256(f"{rgb.size}".encode())
    h.update(rgb.tobytes())
    return h.hexdigest()


def _embeddings(manager: Any, model: Any, processor: Any, rgb: Image.Image, info: dict | None):
    import torch

    key = (ROLE, manager.model_id(ROLE), image_digest(rgb))
    cache = manager.extras
    if key in cache:
        cache[key] = cache.pop(key)  # most recent last
        if info is not None:
            info["embedding_cached"] = True
        return cache[key]
    inputs = processor(images=rgb, return_tensors="pt")
    param = next(model.parameters())
    with torch.no_grad():
        emb = model.get_image_embeddings(inputs["pixel_values"].to(param.device, param.dtype))
    value = (emb, inputs["original_sizes"], inputs["reshaped_input_sizes"])
    cache[key] = value
    seg_keys = [k for k in cache if isinstance(k, tuple) and k and k[0] == ROLE]
    for k in seg_keys[:-CACHE_SIZE]:
        cache.pop(k, None)
    if info is not None:
        info["embedding_cached"] = False
    return value


def segment(manager: Any, image: Image.Image, *, boxes: Sequence[Sequence[float]] | None = None,
            points: Sequence[Sequence[float]] | None = None,
            point_labels: Sequence[int] | None = None, multimask: bool = True,
            threshold: float = 0.0, info: dict | None = None) -> list[np.ndarray]:
    """Masks (float32 H x W of 0/1) for each box, or one mask for the points (with or without a
    box). ``point_labels``: 1 = on the object, 0 = background (default all 1)."""
    import torch

    if not boxes and not points:
        raise ToolArgumentError("segment needs boxes or points",
                                hint="give boxes=[[x0, y0, x1, y1]] or points=[[x, y]]")
    model, processor = manager.get(ROLE)
    rgb = image.convert("RGB")
    emb, orig_sizes, reshaped = _embeddings(manager, model, processor, rgb, info)
    kw: dict[str, Any] = {}
    if boxes:
        kw["input_boxes"] = [[[float(v) for v in b] for b in boxes]]
    if points:
        pts = [[float(x), float(y)] for x, y in points]
        labels = list(point_labels) if point_labels is not None else [1] * len(pts)
        if len(labels) != len(pts):
            raise ToolArgumentError(f"{len(pts)} points but {len(labels)} point labels",
                                    hint="give one label (1 object, 0 background) per point")
        n_groups = len(boxes) if boxes else 1
        kw["input_points"] = [[pts] * n_groups]
        kw["input_labels"] = [[labels] * n_groups]
    prompts = processor(images=rgb, return_tensors="pt", **kw)
    param = next(model.parameters())
    feed = {k: v.to(param.device, param.dtype if v.is_floating_point() else v.dtype)
            for k, v in prompts.items() if k in ("input_boxes", "input_points", "input_labels")}
    with torch.no_grad():
        out = model(image_embeddings=emb, multimask_output=bool(multimask), **feed)
    masks = processor.image_processor.post_process_masks(
        out.pred_masks.float().cpu(), orig_sizes.cpu(), reshaped.cpu(), binarize=False)[0]
    iou = out.iou_scores.float().cpu()[0]  # (prompts, candidates)
    result = []
    best_scores = []
    for i in range(masks.shape[0]):
        best = int(torch.argmax(iou[i]))
        best_scores.append(round(float(iou[i, best]), 4))
        result.append((masks[i, best].numpy() > threshold).astype(np.float32))
    if info is not None:
        info.update({"backend": "sam", "model": manager.model_id(ROLE), "iou": best_scores})
    return result
