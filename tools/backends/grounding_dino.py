"""GroundingDINO through transformers (role ``grounding``): detector text -> Detections.

``AutoModelForZeroShotObjectDetection`` + its processor. The caller (``tools/ground.py``) gives
the words the model looks for (``Referent.detector_text()``: "flag", "red car"); the place and
instance words were read by ``tools/referent.py`` and choose among the boxes there
(``referent.pick``), the same way as for the embedded grounding. Boxes below ``box_threshold``
(or whose tokens score below ``text_threshold``) are dropped, overlapping boxes are merged by
class-agnostic NMS, and the detections come back best score first.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from PIL import Image

from imagent.errors import GroundingError

ROLE = "grounding"

def clean_label(label: Any) -> str:
    """A model's phrase label without special tokens and separators ("cat. [SEP]" -> "cat")."""
    text = re.sub(r"\[(?:CLS|SEP|PAD|UNK|MASK)\]|<[^>]+>", " ", str(label))
    return " ".join(text.replace(".", " ").split())


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> list[int]:
    """Indices kept by greedy non-maximum suppression (class-agnostic)."""
    order = list(np.argsort(-scores, kind="stable"))
    keep: list[int] = []
    area = (boxes[:, 2] - boxes[:, 0]).clip(0) * (boxes[:, 3] - boxes[:, 1]).clip(0)
    while order:
        i = order.pop(0)
        keep.append(int(i))
        rest = []
        for j in order:
            xx0, yy0 = max(boxes[i, 0], boxes[j, 0]), max(boxes[i, 1], boxes[j, 1])
            xx1, yy1 = min(boxes[i, 2], boxes[j, 2]), min(boxes[i, 3], boxes[j, 3])
            inter = max(0.0, xx1 - xx0) * max(0.0, yy1 - yy0)
            union = area[i] + area[j] - inter
            if union <= 0 or inter / union <= iou:
                rest.append(j)
        order = rest
    return keep


def _position_words(box: tuple[int, int, int, int], size: tuple[int, int]) -> list[str]:
    try:  # the embedded grounding's own words, so both backends describe places alike
        from imagent.tools.ground import position_words

        return list(position_words(box, size))
    except ImportError:  # pragma: no cover - ground.py always defines it today
        return []


def ground(manager: Any, image: Image.Image, text: str, *, box_threshold: float = 0.35,
           text_threshold: float = 0.25, nms_iou: float = 0.5, max_detections: int = 20,
           info: dict | None = None) -> list:
    """Detections (``imagent.tools.types.Detection``) of the object words ``text``, best score
    first."""
    import torch

    from imagent.tools.types import Detection

    obj = " ".join(str(text).split()).strip(" .,")
    if not obj:
        raise GroundingError("no object to look for", hint="name the object, e.g. 'the dog on the left'")
    model, processor = manager.get(ROLE)
    rgb = image.convert("RGB")
    w, h = rgb.size
    text = obj + "."
    inputs = processor(images=rgb, text=text, return_tensors="pt")
    device = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    inputs = {k: (v.to(device=device, dtype=dtype) if v.is_floating_point() else v.to(device))
              if hasattr(v, "to") else v for k, v in inputs.items()}
    with torch.no_grad():
        outputs = model(**inputs)
    res = processor.post_process_grounded_object_detection(
        outputs, inputs["input_ids"], threshold=float(box_threshold),
        text_threshold=float(text_threshold), target_sizes=[(h, w)])[0]
    boxes = res["boxes"].float().cpu().numpy().reshape(-1, 4)
    scores = res["scores"].float().cpu().numpy().reshape(-1)
    labels = list(res.get("text_labels", res.get("labels", [])))
    raw = len(scores)
    keep = nms(boxes, scores, float(nms_iou))[:int(max_detections)] if raw else []
    dets = []
    for i in keep:
        x0, y0, x1, y1 = boxes[i]
        box = (max(0, int(np.floor(x0))), max(0, int(np.floor(y0))),
               min(w, int(np.ceil(x1))), min(h, int(np.ceil(y1))))
        if box[2] <= box[0] or box[3] <= box[1]:
            continue
        label = clean_label(labels[i]) if i < len(labels) else ""
        label = label or obj
        dets.append(Detection(box=box, score=float(scores[i]), label=label,
                              position=_position_words(box, (w, h))))
    if not dets:
        raise GroundingError(
            f"found no {obj!r} in the image (box_threshold={box_threshold}, "
            f"text_threshold={text_threshold})",
            hint="rephrase the object, lower the thresholds, or give a box 'box x0,y0,x1,y1'")
    if info is not None:
        info.update({"backend": "grounding-dino", "model": manager.model_id(ROLE), "text": text,
                     "raw_boxes": raw, "after_nms": len(dets)})
    return sorted(dets, key=lambda d: -d.score)
