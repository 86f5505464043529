"""GroundingDINO through transformers (role ``grounding``): a phrase -> Detections.

``AutoModelForZeroShotObjectDetection`` + its processor. The phrase is split into the object
words sent to the model ("the flag in the top-left corner" -> "flag.") and the place words that
choose among the instances ("top-left"), the same places the embedded ``ground`` understands;
boxes below ``box_threshold`` (or whose tokens score below ``text_threshold``) are dropped,
overlapping boxes are merged by class-agnostic NMS, and the instances are sorted the way the
embedded grounding sorts them (``select``: auto = best score; left/right/top/bottom/largest/
smallest/center), with the selected one first.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
from PIL import Image

from imagent.errors import GroundingError, ToolArgumentError

ROLE = "grounding"

_PLACE = re.compile(
    r"\b(?:in|on|at|near|towards?|from)?\s*(?:the\s+)?"
    r"(?:(top|upper|bottom|lower)[\s-]*(left|right)|(left|right)[\s-]*(top|upper|bottom|lower)|"
    r"(left|right|top|upper|bottom|lower|center|centre|middle)(?!\s+of\b))"
    r"(?:[\s-]*(?:hand\s+)?(?:corner|side|edge|part|half|third))?(?:\s+of\s+the\s+(?:image|picture|photo))?\b")
_SIZE = re.compile(r"\b(largest|biggest|smallest|tiniest|leftmost|rightmost|topmost|bottommost)\b")
_ARTICLES = re.compile(r"^\s*(?:the|a|an|this|that)\s+")
_VERT = {"top": "top", "upper": "top", "bottom": "bottom", "lower": "bottom"}


def split_phrase(phrase: str) -> tuple[str, str | None]:
    """(object words, place) from a phrase: ("flag", "top-left"), ("dog", "left"), ("cat", None).
    The place may also be a size/extreme word: largest, smallest, leftmost..."""
    text = " ".join(phrase.lower().split())
    place = None
    m = _PLACE.search(text)
    if m:
        g = m.groups()
        if g[0]:
            place = f"{_VERT[g[0]]}-{g[1]}"
        elif g[2]:
            place = f"{_VERT[g[3]]}-{g[2]}"
        else:
            w = g[4]
            place = {"centre": "center", "middle": "center"}.get(w, _VERT.get(w, w))
        text = (text[:m.start()] + " " + text[m.end():]).strip()
    s = _SIZE.search(text)
    if s:
        word = s.group(1)
        place = {"biggest": "largest", "tiniest": "smallest", "leftmost": "left",
                 "rightmost": "right", "topmost": "top", "bottommost": "bottom"}.get(word, word)
        text = (text[:s.start()] + " " + text[s.end():]).strip()
    text = re.sub(r"\s+(?:in|on|at|of)$", "", " ".join(text.split()))
    text = _ARTICLES.sub("", text).strip(" .,")
    return text, place


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


def order_detections(dets: list, select: str, size: tuple[int, int]) -> list:
    """Sort like the embedded ground (``select``), plus corner places ("top-left")."""
    w, h = size

    def cx(d: Any) -> float:
        return (d.box[0] + d.box[2]) / 2.0

    def cy(d: Any) -> float:
        return (d.box[1] + d.box[3]) / 2.0

    def area(d: Any) -> int:
        return (d.box[2] - d.box[0]) * (d.box[3] - d.box[1])

    if "-" in select:  # a corner: nearest to it
        v, hz = select.split("-")
        tx, ty = (0.0 if hz == "left" else w), (0.0 if v == "top" else h)
        return sorted(dets, key=lambda d: ((cx(d) - tx) ** 2 + (cy(d) - ty) ** 2, -d.score))
    keys = {
        "auto": lambda d: (-d.score, cy(d), cx(d)),
        "left": lambda d: (cx(d), cy(d)), "right": lambda d: (-cx(d), cy(d)),
        "top": lambda d: (cy(d), cx(d)), "bottom": lambda d: (-cy(d), cx(d)),
        "largest": lambda d: (-area(d), -d.score), "smallest": lambda d: (area(d), -d.score),
        "center": lambda d: ((cx(d) - w / 2) ** 2 + (cy(d) - h / 2) ** 2, -d.score),
    }
    if select not in keys:
        raise ToolArgumentError(f"unknown select {select!r}", hint=", ".join(keys))
    return sorted(dets, key=keys[select])


def _position_words(box: tuple[int, int, int, int], size: tuple[int, int]) -> list[str]:
    try:  # the embedded grounding's own words, so both backends describe places alike
        from imagent.tools.ground import position_words

        return list(position_words(box, size))
    except ImportError:  # pragma: no cover - ground.py always defines it today
        return []


def ground(manager: Any, image: Image.Image, phrase: str, *, box_threshold: float = 0.35,
           text_threshold: float = 0.25, nms_iou: float = 0.5, select: str = "auto",
           index: int = 0, max_detections: int = 20, info: dict | None = None) -> list:
    """Detections (``imagent.tools.types.Detection``) of ``phrase``, the selected one first.

    ``select="auto"`` uses the place in the phrase when there is one ("the dog on the left")."""
    import torch

    from imagent.tools.types import Detection

    obj, place = split_phrase(phrase)
    if not obj:
        raise GroundingError(f"no object to look for in {phrase!r}",
                             hint="name the object, e.g. 'the dog on the left'")
    model, processor = manager.get(ROLE)
    rgb = image.convert("RGB")
    w, h = rgb.size
    text = obj if obj.endswith(".") else obj + "."
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
    how = place if select == "auto" and place else select
    ordered = order_detections(dets, how, (w, h))
    if not 0 <= index < len(ordered):
        raise ToolArgumentError(f"index {index} is out of range: {phrase!r} gave "
                                f"{len(ordered)} candidate(s)", hint=f"use index 0..{len(ordered) - 1}")
    chosen = ordered[index]
    out = [chosen] + [d for k, d in enumerate(ordered) if k != index]
    if info is not None:
        info.update({"backend": "grounding-dino", "model": manager.model_id(ROLE), "text": text,
                     "place": place, "select": how, "raw_boxes": raw, "after_nms": len(dets)})
    return out
