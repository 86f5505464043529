"""Small real vision models shipped inside the package, run through ``cv2.dnn``.

No extra dependency: the model files sit in ``tools/data`` (see the READMEs there for
their provenance and licences) and OpenCV's dnn module runs them on the CPU.

- **Faces** -- MediaPipe's BlazeFace short-range detector (128x128, 896 SSD anchors,
  6 keypoints). Candidates come from the whole image letterboxed to a square and, on
  larger images, from overlapping square tiles (for small faces); each candidate is
  then re-scored on a close-up crop around it and keeps the lower of the two scores, which
  drops look-alikes (a cat's face scores 0.58 on the whole photo but 0.49 close up).
- **People** -- MediaPipe selfie segmentation (general 256x256 or landscape 144x256
  by aspect ratio) gives a soft person mask; ``people`` splits it between the faces
  found (face-gated: no face, no person) by a watershed seeded at the faces.
- **Text** -- PaddleOCR's PP-OCRv4 text detector (DB head): a probability map,
  thresholded, contours, box score, "unclip" of the minimum-area rectangle.
- **Saliency / main subject** -- OpenCV contrib's spectral-residual saliency, combined
  with the person segmentation and refined with ``cv2.grabCut``.

Every function takes an RGB PIL image of any size, works on a downscaled copy (bounded
time: about a second at most on a 12 MP photo), maps boxes and masks back to the image
size, and is deterministic. Boxes are ``(x0, y0, x1, y1)`` with x1/y1 exclusive, clipped.
``VisionModelMissing`` (a ``ModelUnavailableError``) when a model file is absent.
"""

from __future__ import annotations

import functools
import math
import threading
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from imagent.errors import ModelUnavailableError
from imagent.tools.masks import mask_bbox

DATA = Path(__file__).resolve().parent / "data"

# name -> (path relative to tools/data, sha256)
MODEL_FILES: dict[str, tuple[str, str]] = {
    "face": ("mediapipe/face_detection_short_range.tflite",
             "bbff11cebd1eb27a1e004cae0b0e63ec8c551cbf34a4451148b4908b8db3eca8"),
    "selfie": ("mediapipe/selfie_segmentation.tflite",
               "9ee168ec7c8f2a16c56fe8e1cfbc514974cbbb7e434051b455635f1bd1462f5c"),
    "selfie_landscape": ("mediapipe/selfie_segmentation_landscape.tflite",
                         "a77d03f4659b9f6b6c1f5106947bf40e99d7655094b6527f214ea7d451106edd"),
    "text": ("ppocr/ch_PP-OCRv4_det_infer.onnx",
             "d2a7720d45a54257208b1e13e36a8479894cb74155a5efe29462512d42f49da9"),
}

Box = tuple[int, int, int, int]


class VisionModelMissing(ModelUnavailableError):
    pass


# ----------------------------------------------------------------------------- models
def model_path(name: str) -> Path:
    """The file of model ``name`` (a key of ``MODEL_FILES``); ``VisionModelMissing`` if absent."""
    if name not in MODEL_FILES:
        raise KeyError(f"unknown vision model {name!r}; known: {', '.join(MODEL_FILES)}")
    rel = MODEL_FILES[name][0]
    path = DATA / rel
    if not path.is_file():
        raise VisionModelMissing(
            f"the {name} model file {rel} is missing (looked for {path})",
            hint="reinstall imagent; the file ships with it (tools/data/" + rel + ")",
        )
    return path


_LOCK = threading.Lock()  # a cv2.dnn net is not safe to run from two threads at once


@functools.lru_cache(maxsize=None)
def _load(name: str, path: str) -> cv2.dnn.Net:
    try:
        if path.endswith(".onnx"):
            return cv2.dnn.readNetFromONNX(path)
        engine = getattr(cv2.dnn, "ENGINE_CLASSIC", None)  # OpenCV 5.0's new engine cannot run BlazeFace
        if name == "face" and engine is not None:
            return cv2.dnn.readNetFromTFLite(path, engine=engine)
        return cv2.dnn.readNetFromTFLite(path)
    except (cv2.error, AttributeError) as exc:
        raise ModelUnavailableError(
            f"OpenCV {cv2.__version__} cannot load the {name} model {Path(path).name}: {exc}",
            hint="install opencv-contrib-python-headless>=5.0 (its dnn module reads TFLite and ONNX)",
        ) from exc


def _net(name: str) -> cv2.dnn.Net:
    return _load(name, str(model_path(name)))


def _forward(name: str, blob: np.ndarray, outputs: list[str] | None = None):
    net = _net(name)
    with _LOCK:
        net.setInput(np.ascontiguousarray(blob, dtype=np.float32))
        if outputs:
            return [np.array(o) for o in net.forward(outputs)]
        return np.array(net.forward())


# ----------------------------------------------------------------------------- helpers
def _rgb(image: Image.Image, max_side: int) -> tuple[np.ndarray, float]:
    """The image as an RGB uint8 array no larger than ``max_side``; and the scale (work / original)."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    w, h = image.size
    scale = min(1.0, max_side / max(w, h))
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        image = image.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
        scale = image.size[0] / w
    return np.asarray(image), scale


def _clip_box(box, w: int, h: int) -> Box:
    x0, y0, x1, y1 = box
    x0 = int(min(max(math.floor(x0), 0), w))
    y0 = int(min(max(math.floor(y0), 0), h))
    x1 = int(min(max(math.ceil(x1), x0), w))
    y1 = int(min(max(math.ceil(y1), y0), h))
    return x0, y0, x1, y1


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _upsample(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    w, h = size
    if mask.shape[:2] != (h, w):
        mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.clip(mask, 0.0, 1.0).astype(np.float32)


# ----------------------------------------------------------------------------- faces
@dataclass
class Face:
    box: Box  # x0, y0, x1, y1 (exclusive), clipped to the image
    score: float
    # right eye, left eye, nose tip, mouth, right ear tragion, left ear tragion (the
    # subject's right/left: the right eye is on the viewer's left in a frontal photo)
    keypoints: list[tuple[int, int]] = field(default_factory=list)


FACE_INPUT = 128
FACE_WORK_SIDE = 1024  # faces are found on a copy no larger than this
FACE_NMS_IOU = 0.3
FACE_BATCH = 1  # cv2.dnn (5.0, classic engine) mixes up the anchors of a batch of several
FACE_MIN_TILE = 160  # work-image px
FACE_MAX_CANDIDATES = 16


@functools.lru_cache(maxsize=1)
def _face_anchors() -> np.ndarray:
    """BlazeFace short-range SSD anchors: stride 8 (16x16 cells, 2 anchors) then stride 16
    (three layers merged: 8x8 cells, 6 anchors); fixed anchor size, so only centres matter."""
    out = []
    for stride, per_cell in ((8, 2), (16, 6)):
        cells = FACE_INPUT // stride
        for y in range(cells):
            for x in range(cells):
                out.extend([((x + 0.5) / cells, (y + 0.5) / cells)] * per_cell)
    return np.asarray(out, dtype=np.float32)  # (896, 2)


def _face_raw(squares: list[np.ndarray], thresh: float) -> list[list[tuple[float, np.ndarray]]]:
    """Per RGB uint8 square crop: (score, 16 values in [0, 1] of the square: box x0 y0 x1 y1,
    then the 6 keypoints' x y) for every anchor scoring at least ``thresh``. One batched pass."""
    out: list[list[tuple[float, np.ndarray]]] = []
    anchors = _face_anchors()
    n_anchors = len(anchors)
    for start in range(0, len(squares), FACE_BATCH):
        chunk = squares[start:start + FACE_BATCH]
        blob = np.stack([cv2.resize(sq, (FACE_INPUT, FACE_INPUT), interpolation=cv2.INTER_AREA)
                         for sq in chunk]).astype(np.float32) / 127.5 - 1.0  # RGB in [-1, 1]
        cls, reg = _forward("face", blob.transpose(0, 3, 1, 2), ["classificators", "regressors"])
        logits = np.clip(cls.reshape(len(chunk), n_anchors), -80.0, 80.0)
        scores = 1.0 / (1.0 + np.exp(-logits))
        reg = reg.reshape(len(chunk), n_anchors, 16) / FACE_INPUT
        for k in range(len(chunk)):
            dets = []
            for i in np.nonzero(scores[k] >= thresh)[0]:
                r = reg[k, i]
                ax, ay = anchors[i]
                cx, cy, w, h = r[0] + ax, r[1] + ay, r[2], r[3]
                vals = np.empty(16, dtype=np.float32)
                vals[:4] = (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
                vals[4::2] = r[4::2] + ax
                vals[5::2] = r[5::2] + ay
                dets.append((float(scores[k, i]), vals))
            out.append(dets)
    return out


def _square_view(img: np.ndarray, cx: float, cy: float, side: float):
    """A square crop of ``side`` px centred at (cx, cy), padded with black; and its origin and side."""
    side = max(8, int(round(side)))
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    h, w = img.shape[:2]
    out = np.zeros((side, side, 3), dtype=np.uint8)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x0 + side, w), min(y0 + side, h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = img[sy0:sy1, sx0:sx1]
    return out, x0, y0, side


def _to_image(vals: np.ndarray, x0: int, y0: int, side: int, mirrored: bool = False) -> np.ndarray:
    """Square-relative detection values -> work-image pixels (undoing a mirror)."""
    v = vals.copy()
    if mirrored:
        v[0], v[2] = 1.0 - vals[2], 1.0 - vals[0]
        v[4::2] = 1.0 - vals[4::2]
        # a mirrored face's right eye/ear are the original's left ones
        v[4:6], v[6:8] = v[6:8].copy(), v[4:6].copy()
        v[12:14], v[14:16] = v[14:16].copy(), v[12:14].copy()
    v *= side
    v[0::2] += x0
    v[1::2] += y0
    return v


def _weighted_nms(dets: list[tuple[float, np.ndarray]], iou: float = FACE_NMS_IOU):
    """MediaPipe's weighted NMS: each cluster of overlapping detections becomes their
    score-weighted average, with the best score."""
    dets = sorted(dets, key=lambda d: -d[0])
    out = []
    while dets:
        best = dets[0]
        group = [d for d in dets if _iou(best[1][:4], d[1][:4]) >= iou]
        dets = [d for d in dets if _iou(best[1][:4], d[1][:4]) < iou]
        weights = np.array([d[0] for d in group], dtype=np.float32)
        vals = np.sum([d[1] * wt for d, wt in zip(group, weights, strict=True)], axis=0) / weights.sum()
        out.append((best[0], vals))
    return out


def _face_views(w: int, h: int) -> list[tuple[float, float, float]]:
    """Square views (centre x, centre y, side): the whole image, then tiles of
    the short side, half and a quarter of it (overlapping by 40 %): the model finds faces of 13-90 % of its view, so
    faces down to about 3 % of the image's short side are seen."""
    views = [(w / 2, h / 2, max(w, h))]
    short = min(w, h)
    for side in (short, short / 2, short / 4):
        if side < FACE_MIN_TILE or (side == short and w == h):
            continue
        step = 0.6 * side
        nx = max(1, math.ceil((w - side) / step) + 1)
        ny = max(1, math.ceil((h - side) / step) + 1)
        for j in range(ny):
            for i in range(nx):
                cx = side / 2 + (0 if nx == 1 else i * (w - side) / (nx - 1))
                cy = side / 2 + (0 if ny == 1 else j * (h - side) / (ny - 1))
                views.append((cx, cy, side))
    return views


FACE_CHECK_MARGINS = (1.5, 2.0, 3.0)  # close-up crops: this many times the face's size


def _calibrated(raw: float) -> float:
    """The model's raw score mapped so that 0.5 is a sure enough face: raw 0.4 -> 0, 0.65 -> 0.5,
    0.9 -> 1. Look-alikes (a cat's face, galaxies in a deep-field photo) average raw 0.5-0.6
    over the close-ups, real faces 0.75-0.95."""
    return float(np.clip((raw - 0.4) / 0.5, 0.0, 1.0))


def _close_ups(img: np.ndarray, cands: list[tuple[float, np.ndarray]]):
    """Re-detect each candidate on close-up crops at several margins, mirrored and not: per
    candidate, the mean score of the matching detections (0 where none matches) and their
    score-weighted geometry (from the unmirrored crops)."""
    squares, where = [], []
    for _, vals in cands:
        bw, bh = vals[2] - vals[0], vals[3] - vals[1]
        fx, fy = (vals[0] + vals[2]) / 2, (vals[1] + vals[3]) / 2
        for margin in FACE_CHECK_MARGINS:
            square, x0, y0, side = _square_view(img, fx, fy, margin * max(bw, bh))
            for mirrored in (False, True):
                squares.append(np.ascontiguousarray(square[:, ::-1]) if mirrored else square)
                where.append((x0, y0, side, mirrored))
    raw = _face_raw(squares, 0.3)
    per = 2 * len(FACE_CHECK_MARGINS)
    out = []
    for c, (_, vals) in enumerate(cands):
        scores, geo = [], []
        for k in range(c * per, (c + 1) * per):
            x0, y0, side, mirrored = where[k]
            best = (0.0, None)
            for score, v in raw[k]:
                v = _to_image(v, x0, y0, side, mirrored)
                if score > best[0] and _iou(v[:4], vals[:4]) >= 0.3:
                    best = (score, v)
            scores.append(best[0])
            if best[1] is not None and not mirrored:
                geo.append(best)
        out.append((float(np.mean(scores)), _weighted_nms(geo, iou=0.0)[0][1] if geo else vals))
    return out


def faces(image: Image.Image, *, min_score: float = 0.5) -> list[Face]:
    """Faces in ``image``, best first. A candidate (from the whole image or a tile) is checked on
    close-up crops around it; its score is the lower of the two, calibrated so that 0.5 is the
    threshold that separates real faces from look-alikes on the benchmark photos."""
    img, scale = _rgb(image, FACE_WORK_SIDE)
    h, w = img.shape[:2]
    raw_min = 0.4 + 0.5 * min_score  # the inverse of _calibrated
    views = [_square_view(img, cx, cy, side) for cx, cy, side in _face_views(w, h)]
    cands = []
    for (_, x0, y0, side), dets in zip(views, _face_raw([v[0] for v in views], raw_min), strict=True):
        cands.extend((score, _to_image(vals, x0, y0, side)) for score, vals in dets)
    cands = [c for c in _weighted_nms(cands) if min(c[1][2] - c[1][0], c[1][3] - c[1][1]) >= 4]
    cands = cands[:FACE_MAX_CANDIDATES]
    found = []
    for (score, _), (check, geo) in zip(cands, _close_ups(img, cands), strict=True):
        final = _calibrated(min(score, check))
        if final >= min_score:
            found.append((final, geo))
    out = []
    W, H = image.size
    for score, vals in _weighted_nms(found):
        v = vals / scale
        box = _clip_box(v[:4], W, H)
        if box[2] <= box[0] or box[3] <= box[1]:
            continue
        kps = [(int(min(max(round(float(v[4 + 2 * k])), 0), W - 1)),
                int(min(max(round(float(v[5 + 2 * k])), 0), H - 1))) for k in range(6)]
        out.append(Face(box=box, score=round(float(score), 4), keypoints=kps))
    out.sort(key=lambda f: (-f.score, f.box))
    return out


def head_box(face: Face, size: tuple[int, int]) -> Box:
    """The face box grown to the whole head: hair above, chin below, ears at the sides;
    clipped to ``size`` (width, height)."""
    x0, y0, x1, y1 = face.box
    fw, fh = x1 - x0, y1 - y0
    # BlazeFace's box spans brow to chin and most of the width between the ears (measured on the
    # three portraits): the head adds the hair above and a little at the sides
    return _clip_box((x0 - 0.15 * fw, y0 - 0.45 * fh, x1 + 0.15 * fw, y1 + 0.08 * fh), *size)


# ----------------------------------------------------------------------------- people
SEG_WORK_SIDE = 512


def _person_mask_work(image: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    """(working-size RGB array, soft person mask at that size)."""
    img, _ = _rgb(image, SEG_WORK_SIDE)
    h, w = img.shape[:2]
    landscape = w / h > 1.3
    name, (mw, mh) = ("selfie_landscape", (256, 144)) if landscape else ("selfie", (256, 256))
    x = cv2.resize(img, (mw, mh), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    out = _forward(name, x.transpose(2, 0, 1)[None]).reshape(mh, mw)
    mask = cv2.resize(np.clip(out, 0.0, 1.0).astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    guided = getattr(getattr(cv2, "ximgproc", None), "guidedFilter", None)
    if guided is not None:  # snap the coarse mask to the image's edges
        radius = max(2, round(max(w, h) / 128))
        mask = guided(img, mask, radius, 1e-3)
    return img, np.clip(mask, 0.0, 1.0).astype(np.float32)


def person_mask(image: Image.Image) -> np.ndarray:
    """Soft mask (float32 HxW in [0, 1], image size) of the people in ``image``."""
    _, mask = _person_mask_work(image)
    return _upsample(mask, image.size)


@dataclass
class Person:
    box: Box  # bounding box of the mask (>= 0.5)
    mask: np.ndarray  # float32 HxW in [0, 1], the whole image
    face: Face
    score: float


def people(image: Image.Image) -> list[Person]:
    """One person per face found (none without a face): the person mask split between the
    faces by a watershed seeded at each face, in the order of ``faces``."""
    fs = faces(image)
    if not fs:
        return []
    return _split_people(image, fs, *_people_mask_work(image, fs))


def _people_mask_work(image: Image.Image, fs: list[Face]) -> tuple[np.ndarray, np.ndarray]:
    """The person mask at working size, with each face's own crop (a body's reach around the
    face) segmented again at the model's full resolution: one 256-px pass over a wide photo of
    several people, or of one small person in a large photo, blurs them into the scenery."""
    img, soft = _person_mask_work(image)
    h, w = soft.shape
    W, H = image.size
    scale = w / float(W)
    for f in fs:
        x0, y0, x1, y1 = f.box
        fw, fh = x1 - x0, y1 - y0
        cx = (x0 + x1) / 2.0
        crop = _clip_box((cx - 4.0 * fw, y0 - 1.0 * fh, cx + 4.0 * fw, y0 + 9.0 * fh), W, H)
        cw, ch = crop[2] - crop[0], crop[3] - crop[1]
        if cw < 16 or ch < 16 or cw * ch > 0.6 * W * H:
            continue
        _, part = _person_mask_work(image.crop(crop))
        bx0, by0 = int(round(crop[0] * scale)), int(round(crop[1] * scale))
        bx1, by1 = min(w, max(bx0 + 1, int(round(crop[2] * scale)))), min(h, max(by0 + 1, int(round(crop[3] * scale))))
        part = cv2.resize(part, (bx1 - bx0, by1 - by0), interpolation=cv2.INTER_LINEAR)
        np.maximum(soft[by0:by1, bx0:bx1], part, out=soft[by0:by1, bx0:bx1])
    return img, soft


def _split_people(image: Image.Image, fs: list[Face], img: np.ndarray, soft: np.ndarray) -> list[Person]:
    h, w = soft.shape
    scale = w / image.size[0]
    fg = (soft > 0.5).astype(np.uint8)
    markers = np.zeros((h, w), dtype=np.int32)
    boxes = []
    for i, f in enumerate(fs):
        b = _clip_box([c * scale for c in f.box], w, h)
        boxes.append(b)
        x0, y0, x1, y1 = b
        # the face's inner half, where the segmentation says person
        ix0, iy0 = x0 + (x1 - x0) // 4, y0 + (y1 - y0) // 4
        ix1, iy1 = max(ix0 + 1, x1 - (x1 - x0) // 4), max(iy0 + 1, y1 - (y1 - y0) // 4)
        seed = np.zeros((h, w), dtype=bool)
        seed[iy0:iy1, ix0:ix1] = True
        if not (seed & (fg > 0)).any():
            fg[iy0:iy1, ix0:ix1] = 1  # the segmentation missed this person: keep the face itself
        markers[seed] = i + 1
    labels = cv2.watershed(np.ascontiguousarray(img[:, :, ::-1]), markers.copy())
    # a connected part of the segmentation that holds one face is all that person's: the
    # watershed floods around the outside and once gave the astronaut's suit to the cameraman
    # beside her; it only splits a part that holds several faces
    n_fg, comp_fg = cv2.connectedComponents(fg, connectivity=8)
    for c in range(1, n_fg):
        inside = comp_fg == c
        owners = [i for i in range(len(fs)) if (inside & (markers == i + 1)).any()]
        if len(owners) == 1:
            labels[inside] = owners[0] + 1
    out = []
    for i, f in enumerate(fs):
        part = (labels == i + 1) & (fg > 0)
        # keep the connected parts that hold the face, or lie within a face height of it
        n, comp = cv2.connectedComponents(part.astype(np.uint8), connectivity=8)
        x0, y0, x1, y1 = boxes[i]
        core_ids = set(np.unique(comp[y0:y1, x0:x1][part[y0:y1, x0:x1]]).tolist()) - {0}
        core = np.isin(comp, list(core_ids)) if core_ids else np.zeros_like(part)
        reach = max(3, y1 - y0)
        near = cv2.dilate(core.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1,) * 2))
        near_ids = set(np.unique(comp[(near > 0) & part]).tolist()) - {0}
        keep = np.isin(comp, list(core_ids | near_ids))
        keep = cv2.dilate(keep.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0  # the soft edge
        m = np.where(keep, np.maximum(soft, (labels == i + 1) & (fg > 0)), 0.0).astype(np.float32)
        m[y0:y1, x0:x1] = np.maximum(m[y0:y1, x0:x1], 0.0)
        full = _upsample(m, image.size)
        inside = soft[keep] if keep.any() else np.zeros(1, np.float32)
        score = float(f.score) * float(np.clip(inside.mean(), 0.0, 1.0))
        out.append(Person(box=mask_bbox(full) or (0, 0, 0, 0), mask=full, face=f, score=round(score, 4)))
    return out


# ----------------------------------------------------------------------------- text
@dataclass
class TextBox:
    box: Box  # axis-aligned bounds of the quad, clipped
    quad: np.ndarray  # 4x2 float32, clockwise from the top-left corner
    score: float
    height: float  # text line height in px (the quad's short side)


TEXT_SIDE = 960  # the detector sees the image with this long side (up or down), sides a multiple of 32
TEXT_CONFIRM_SIDE = 640  # the coarser confirming pass
TEXT_CONFIRM_MIN_HEIGHT = 16  # lines at least this tall (px of the coarser map) must be confirmed
TEXT_BIN = 0.3  # probability-map threshold
TEXT_UNCLIP = 1.6
TEXT_MIN_SIDE = 3


def _text_prob(image: Image.Image, side: int) -> tuple[np.ndarray, float, float]:
    """The DB probability map with the image's long side scaled to ``side`` (sides a multiple of
    32) and the (x, y) scale from the map to the image."""
    W, H = image.size
    s = side / max(W, H)
    tw = max(32, int(round(W * s / 32)) * 32)
    th = max(32, int(round(H * s / 32)) * 32)
    img, _ = _rgb(image, 2 * side)
    x = cv2.resize(img, (tw, th), interpolation=cv2.INTER_AREA if tw < img.shape[1] else cv2.INTER_LINEAR)
    x = (x.astype(np.float32) / 255.0 - 0.5) / 0.5  # RGB in [-1, 1] (BGR scores real text lower)
    prob = _forward("text", x.transpose(2, 0, 1)[None]).reshape(th, tw)
    return prob, W / tw, H / th


def _order_quad(pts: np.ndarray) -> np.ndarray:
    """The 4 corners clockwise from the top-left (as PaddleOCR's get_mini_boxes)."""
    pts = pts[np.argsort(pts[:, 0])]
    left, right = pts[:2], pts[2:]
    tl, bl = left[np.argsort(left[:, 1])]
    tr, br = right[np.argsort(right[:, 1])]
    return np.array([tl, tr, br, bl], dtype=np.float32)


def _box_score(prob: np.ndarray, quad: np.ndarray) -> float:
    h, w = prob.shape
    x0 = int(np.clip(np.floor(quad[:, 0].min()), 0, w - 1))
    x1 = int(np.clip(np.ceil(quad[:, 0].max()), 0, w - 1))
    y0 = int(np.clip(np.floor(quad[:, 1].min()), 0, h - 1))
    y1 = int(np.clip(np.ceil(quad[:, 1].max()), 0, h - 1))
    mask = np.zeros((y1 - y0 + 1, x1 - x0 + 1), dtype=np.uint8)
    cv2.fillPoly(mask, [np.round(quad - [x0, y0]).astype(np.int32)], 1)
    return float(cv2.mean(prob[y0:y1 + 1, x0:x1 + 1], mask)[0])


def _db_boxes(prob: np.ndarray, min_score: float, bin_thresh: float = TEXT_BIN):
    """DB post-processing: (quad in map px, score, height in map px) per text region."""
    bitmap = (prob > bin_thresh).astype(np.uint8)
    contours, _ = cv2.findContours(bitmap, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    out = []
    for c in contours[:1000]:
        rect = cv2.minAreaRect(c)
        if min(rect[1]) < TEXT_MIN_SIDE:
            continue
        quad = _order_quad(cv2.boxPoints(rect))
        score = _box_score(prob, quad)
        if score < min_score:
            continue
        # unclip: grow the rectangle by area * ratio / perimeter on every side
        (cx, cy), (rw, rh), angle = rect
        area, perim = rw * rh, 2 * (rw + rh)
        d = area * TEXT_UNCLIP / perim if perim > 0 else 0.0
        grown = ((cx, cy), (rw + 2 * d, rh + 2 * d), angle)
        if min(grown[1]) < TEXT_MIN_SIDE + 2:
            continue
        out.append((_order_quad(cv2.boxPoints(grown)), score, float(min(grown[1]))))
    return out


def _confirmed(prob: np.ndarray, quad: np.ndarray) -> bool:
    """Whether the coarser pass's map also holds text (a pixel over 0.5) inside ``quad``."""
    h, w = prob.shape
    mask = np.zeros((h, w), dtype=np.uint8)
    cv2.fillPoly(mask, [np.round(quad).astype(np.int32)], 1)
    return bool(mask.any() and prob[mask > 0].max() > 0.5)


def text_boxes(image: Image.Image, *, min_score: float = 0.5) -> list[TextBox]:
    """Text lines in ``image`` in reading order (top to bottom, then left to right).

    The detector runs with the long side at ``TEXT_SIDE`` (960: small captions of about 9 px
    on a 600 px photo are found) and again at two thirds of that: a line tall enough for the
    coarser pass must be seen there too -- upscaled textures (a row of coins, an ear, a
    spoon) look like big glyphs at 960 but not at 640, where real text still does."""
    prob, sx, sy = _text_prob(image, TEXT_SIDE)
    coarse = csx = csy = None
    W, H = image.size
    found = []
    for quad, score, height in _db_boxes(prob, min_score):
        q = quad * np.array([sx, sy], dtype=np.float32)
        if height * TEXT_CONFIRM_SIDE / TEXT_SIDE >= TEXT_CONFIRM_MIN_HEIGHT:
            if coarse is None:
                coarse, csx, csy = _text_prob(image, TEXT_CONFIRM_SIDE)
            if not _confirmed(coarse, q / np.array([csx, csy], dtype=np.float32)):
                continue
        q[:, 0] = np.clip(q[:, 0], 0, W)
        q[:, 1] = np.clip(q[:, 1], 0, H)
        box = _clip_box((q[:, 0].min(), q[:, 1].min(), q[:, 0].max(), q[:, 1].max()), W, H)
        if box[2] - box[0] < 2 or box[3] - box[1] < 2:
            continue
        side_a = float(np.linalg.norm(q[1] - q[0]))
        side_b = float(np.linalg.norm(q[3] - q[0]))
        found.append(TextBox(box=box, quad=q.astype(np.float32), score=round(score, 4),
                             height=round(min(side_a, side_b), 2)))
    return _reading_order(found)


def _reading_order(boxes: list[TextBox]) -> list[TextBox]:
    boxes = sorted(boxes, key=lambda b: ((b.box[1] + b.box[3]) / 2, b.box[0]))
    lines: list[list[TextBox]] = []
    for b in boxes:
        cy = (b.box[1] + b.box[3]) / 2
        if lines:
            last = lines[-1]
            ly = sum((t.box[1] + t.box[3]) / 2 for t in last) / len(last)
            if abs(cy - ly) <= 0.5 * min(b.height, min(t.height for t in last)):
                last.append(b)
                continue
        lines.append([b])
    return [b for line in lines for b in sorted(line, key=lambda t: t.box[0])]


def text_mask(size: tuple[int, int], boxes: list[TextBox], *, grow: float = 0.35) -> np.ndarray:
    """Mask (float32 HxW, ``size`` = (width, height)) of the text boxes: each quad filled and
    dilated by ``grow`` x its text height, so big letters get a proportionally wider margin."""
    w, h = size
    mask = np.zeros((h, w), dtype=np.uint8)
    for b in boxes:
        r = max(1, int(round(grow * b.height)))
        q = np.asarray(b.quad, dtype=np.float32)
        x0 = int(max(0, math.floor(q[:, 0].min()) - r - 1))
        y0 = int(max(0, math.floor(q[:, 1].min()) - r - 1))
        x1 = int(min(w, math.ceil(q[:, 0].max()) + r + 2))
        y1 = int(min(h, math.ceil(q[:, 1].max()) + r + 2))
        if x1 <= x0 or y1 <= y0:
            continue
        roi = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
        cv2.fillPoly(roi, [np.round(q - [x0, y0]).astype(np.int32)], 1)
        roi = cv2.dilate(roi, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1)))
        np.maximum(mask[y0:y1, x0:x1], roi, out=mask[y0:y1, x0:x1])
    return mask.astype(np.float32)


# ----------------------------------------------------------------------------- saliency
SALIENCY_SIDE = 256


def _saliency_work(img: np.ndarray) -> np.ndarray:
    """Spectral-residual saliency of an RGB array, smoothed and normalised to [0, 1]."""
    h, w = img.shape[:2]
    sal_mod = getattr(cv2, "saliency", None)
    if sal_mod is None:
        raise ModelUnavailableError(
            f"this OpenCV build ({cv2.__version__}) has no saliency module",
            hint="install opencv-contrib-python-headless (the saliency module is in contrib)",
        )
    algo = sal_mod.StaticSaliencySpectralResidual_create()
    # mirrored margins: the spectrum's wrap-around would otherwise light up the image's edges
    pad = max(2, round(0.1 * max(w, h)))
    padded = cv2.copyMakeBorder(np.ascontiguousarray(img[:, :, ::-1]), pad, pad, pad, pad, cv2.BORDER_REFLECT)
    ok, sal = algo.computeSaliency(padded)
    if not ok:
        return np.zeros((h, w), dtype=np.float32)
    sal = cv2.resize(sal.astype(np.float32), (w + 2 * pad, h + 2 * pad), interpolation=cv2.INTER_LINEAR)
    sal = sal[pad:pad + h, pad:pad + w]
    sigma = max(w, h) / 40.0
    sal = cv2.GaussianBlur(sal, (0, 0), sigma)
    lo, hi = float(sal.min()), float(sal.max())
    if hi - lo < 1e-8:
        return np.zeros((h, w), dtype=np.float32)
    return ((sal - lo) / (hi - lo)).astype(np.float32)


def saliency(image: Image.Image) -> np.ndarray:
    """Where the eye goes first: float32 HxW in [0, 1] at image size (spectral residual,
    OpenCV contrib), smoothed and normalised."""
    img, _ = _rgb(image, SALIENCY_SIDE)
    return _upsample(_saliency_work(img), image.size)


# ----------------------------------------------------------------------------- main subject
SUBJECT_SIDE = 192  # grabCut runs on a copy this large
_LAST_BRANCH = [""]  # which cue the last main_subject call went by (for debugging)


def _largest_parts(binary: np.ndarray, keep: float = 0.25) -> np.ndarray:
    """The connected parts of ``binary`` at least ``keep`` times the size of the largest."""
    n, comp, stats, _ = cv2.connectedComponentsWithStats(binary.astype(np.uint8), connectivity=8)
    if n <= 1:
        return np.zeros(binary.shape, dtype=bool)
    areas = stats[1:, cv2.CC_STAT_AREA]
    ids = [i + 1 for i, a in enumerate(areas) if a >= keep * areas.max()]
    return np.isin(comp, ids)


def _filled(binary: np.ndarray) -> np.ndarray:
    """``binary`` with its holes filled (saliency lights up an object's outline, not its inside)."""
    contours, _ = cv2.findContours(binary.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    out = np.zeros(binary.shape, dtype=np.uint8)
    cv2.drawContours(out, contours, -1, 1, thickness=cv2.FILLED)
    return out > 0


def _iou_masks(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


def main_subject(image: Image.Image) -> tuple[np.ndarray, float]:
    """The photo's main subject: (soft mask float32 HxW in [0, 1] at image size, confidence in
    [0, 1]). People (face-gated) or the person segmentation where it agrees with saliency, else
    the salient region, refined with ``cv2.grabCut``. Confidence is low when the subject is
    unclear: the mask covers under 2 % or over 85 % of the image, or the cues disagree."""
    img, scale = _rgb(image, SUBJECT_SIDE)
    h, w = img.shape[:2]
    sal = _saliency_work(img)
    sal_fg = _filled(_largest_parts(sal > max(0.25, float(np.percentile(sal, 70)))))
    fs = faces(image)
    seg_img, soft = _people_mask_work(image, fs) if fs else _person_mask_work(image)
    persons = _split_people(image, fs, seg_img, soft) if fs else []
    seg = cv2.resize(soft, (w, h), interpolation=cv2.INTER_AREA) > 0.5
    seg_cover = float(seg.mean())
    # how much of the salient region the segmentation holds
    agree = float((seg & sal_fg).sum() / sal_fg.sum()) if sal_fg.any() else 0.0
    rect = None
    if persons:
        prior = np.zeros((h, w), dtype=bool)
        for p in persons:
            prior |= cv2.resize(p.mask, (w, h), interpolation=cv2.INTER_AREA) > 0.5
        cue_conf = max(p.score for p in persons)
        branch = "people"
    elif 0.02 <= seg_cover <= 0.85 and agree >= 0.6:
        prior = seg
        cue_conf = 0.3 + 0.5 * min(1.0, (agree - 0.6) / 0.3)
        branch = "segmentation"
    else:
        # grabCut from the salient region's (grown) bounding box: it takes the whole object
        # whose parts stand out (eyes, rim of a cup), not only those parts
        prior = sal_fg
        x0, y0, x1, y1 = mask_bbox(sal_fg) or (0, 0, 0, 0)
        gx, gy = 0.3 * (x1 - x0) + 2, 0.3 * (y1 - y0) + 2
        rect = _clip_box((x0 - gx, y0 - gy, x1 + gx, y1 + gy), w, h)
        inside = float(sal[sal_fg].mean()) if sal_fg.any() else 0.0
        outside = float(sal[~sal_fg].mean()) if (~sal_fg).any() else 0.0
        cue_conf = float(np.clip((inside - outside) / 0.6, 0.0, 1.0)) * 0.6
        branch = "saliency"
    _LAST_BRANCH[0] = branch
    if not prior.any():
        return np.zeros((image.size[1], image.size[0]), dtype=np.float32), 0.0
    gc = np.full((h, w), cv2.GC_PR_BGD, dtype=np.uint8)
    if rect is not None:
        gc[:] = cv2.GC_BGD
        gc[rect[1]:rect[3], rect[0]:rect[2]] = cv2.GC_PR_FGD
    gc[prior] = cv2.GC_PR_FGD
    core = cv2.erode(prior.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    if persons:
        gc[core] = cv2.GC_FGD
    border = max(2, round(0.02 * max(w, h)))
    edge = np.zeros((h, w), dtype=bool)
    edge[:border, :] = edge[-border:, :] = True
    edge[:, :border] = edge[:, -border:] = True
    gc[edge & ~prior] = cv2.GC_BGD
    fg = prior
    if (gc == cv2.GC_PR_BGD).any() or (gc == cv2.GC_BGD).any():
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        cv2.setRNGSeed(0)
        try:
            smooth = cv2.GaussianBlur(np.ascontiguousarray(img[:, :, ::-1]), (0, 0), 1.5)  # a simpler graph, a faster cut
            cv2.grabCut(smooth, gc, None, bgd, fgd, 3, cv2.GC_INIT_WITH_MASK)
            fg = (gc == cv2.GC_FGD) | (gc == cv2.GC_PR_FGD)
        except cv2.error:
            fg = prior
    fg = _largest_parts(fg, 0.1)
    cover = float(fg.mean())
    soft = cv2.GaussianBlur(fg.astype(np.float32), (0, 0), max(1.0, max(w, h) / 200))
    # the cut should keep what the cue said (what it adds is the object's rest)
    kept = float((fg & prior).sum() / prior.sum())
    conf = cue_conf * (0.5 + 0.5 * kept)
    if cover < 0.02 or cover > 0.85:
        conf *= 0.3
    return _upsample(soft, image.size), float(np.clip(conf, 0.0, 1.0))
