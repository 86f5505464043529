"""Classical object detectors that need no downloaded weights: Haar cascades (Viola-Jones,
OpenCV) for cat faces, eyes and licence plates -- the classes the shipped models
(``tools/vision.py``) do not cover. Their evidence is weak: grounding always asks before an
edit uses it.

Faces and people are found by the shipped models (BlazeFace, selfie segmentation). The Haar
face/body cascades and the HOG people detector were removed after measuring them on the
benchmark photos: Haar faces found 3 "faces" on the coins photo and 1 on the retina, HOG/Haar
bodies 8 "people" on photos of coins, galaxies, a retina and a tissue slide, and missed the
Grace Hopper portrait; BlazeFace found the three real faces and nothing else.

OpenCV 5 no longer ships the cascade XML files (``cv2.data`` is empty in
opencv-python-headless 5.0), and moved ``CascadeClassifier`` to the contrib build, so the
project depends on opencv-contrib-python-headless and keeps the cascades it uses, gzipped, in
``tools/data/haarcascades/`` (from OpenCV's data folder; Intel licence text inside each file).

``detect(image, kind)`` returns ``RawDetection``s (box, score in [0, 1], label) after
non-maximum suppression. Scores map the cascade's final-stage weight or the SVM
margin through a logistic curve; 0.5 is "just above the detector's own threshold".
``DetectorUnavailable`` (a ``ModelUnavailableError``) when OpenCV lacks the classes.
"""

from __future__ import annotations

import functools
import gzip
import math
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from imagent.errors import ModelUnavailableError

DATA = Path(__file__).resolve().parent / "data" / "haarcascades"

# kind -> (cascade files, label, min neighbours, min size as a fraction of the short side)
CASCADES: dict[str, tuple[tuple[str, ...], str, int, float]] = {
    "eye": (("eye",), "eye", 6, 0.015),
    "cat": (("frontalcatface",), "cat", 4, 0.05),
    "plate": (("russian_plate_number",), "licence plate", 4, 0.03),
}
KINDS = tuple(CASCADES)

# phrase words -> detector kind
WORDS: dict[str, str] = {}
for _kind, _words in {
    "eye": "eye eyes",
    "cat": "cat cats kitten kittens kitty",
    "plate": "plate plates licence license registration numberplate",
}.items():
    for _w in _words.split():
        WORDS[_w] = _kind


@dataclass
class RawDetection:
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive)
    score: float
    label: str
    source: str  # which detector found it


class DetectorUnavailable(ModelUnavailableError):
    pass


def available() -> bool:
    return hasattr(cv2, "CascadeClassifier")


def _require() -> None:
    if not available():
        raise DetectorUnavailable(
            f"this OpenCV build ({cv2.__version__}) has no Haar cascade detectors",
            hint="OpenCV 5 keeps them in the contrib build: pip install "
                 "opencv-contrib-python-headless (imagent's dependency)")


def cascade_path(name: str) -> Path:
    return DATA / f"haarcascade_{name}.xml.gz"


@functools.lru_cache(maxsize=None)
def _cascade(name: str):
    _require()
    path = cascade_path(name)
    if not path.is_file():
        raise DetectorUnavailable(f"the Haar cascade file {path.name!r} is missing from {DATA}",
                                  hint="reinstall imagent; the cascades ship with it")
    text = gzip.decompress(path.read_bytes()).decode("utf-8")
    fs = cv2.FileStorage(text, cv2.FILE_STORAGE_READ | cv2.FILE_STORAGE_MEMORY)
    clf = cv2.CascadeClassifier()
    if not clf.read(fs.getFirstTopLevelNode()) or clf.empty():
        raise DetectorUnavailable(f"the Haar cascade {path.name!r} could not be read",
                                  hint="reinstall imagent; the file may be damaged")
    return clf


def _logistic(x: float, centre: float, scale: float) -> float:
    return 1.0 / (1.0 + math.exp(-(x - centre) / scale))


def _gray(image: Image.Image, max_side: int) -> tuple[np.ndarray, float]:
    """Equalised grey image, downscaled so its long side is at most ``max_side``."""
    g = np.asarray(image.convert("L"), dtype=np.uint8)
    h, w = g.shape
    f = min(1.0, max_side / float(max(w, h)))
    if f < 1.0:
        g = cv2.resize(g, (max(1, round(w * f)), max(1, round(h * f))),
                       interpolation=cv2.INTER_AREA)
    return cv2.equalizeHist(g), f


def _run_cascade(gray: np.ndarray, name: str, neighbours: int, min_frac: float
                 ) -> list[tuple[tuple[int, int, int, int], float]]:
    clf = _cascade(name)
    ww, wh = clf.getOriginalWindowSize()
    h, w = gray.shape
    if w < ww or h < wh:
        return []
    side = max(ww, wh, int(min(w, h) * min_frac))
    boxes, _levels, weights = clf.detectMultiScale3(
        gray, scaleFactor=1.1, minNeighbors=neighbours,
        minSize=(max(ww, side * ww // max(ww, wh)), max(wh, side * wh // max(ww, wh))),
        outputRejectLevels=True)
    out = []
    for (x, y, bw, bh), wgt in zip(np.asarray(boxes).reshape(-1, 4), np.asarray(weights).ravel(), strict=True):
        x, y, bw, bh = int(x), int(y), int(bw), int(bh)
        out.append(((x, y, x + bw, y + bh), _logistic(float(wgt), 0.0, 2.0)))
    return out


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    if inter == 0:
        return 0.0
    ua = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / float(ua)


def _contained(a, b) -> float:
    """Fraction of box a inside box b."""
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    return ix * iy / float(max(1, (a[2] - a[0]) * (a[3] - a[1])))


def nms(dets: list[RawDetection], threshold: float = 0.3) -> list[RawDetection]:
    """Greedy non-maximum suppression (also drops a box mostly inside a better one)."""
    kept: list[RawDetection] = []
    for d in sorted(dets, key=lambda d: -d.score):
        if all(iou(d.box, k.box) < threshold and _contained(d.box, k.box) < 0.7 for k in kept):
            kept.append(d)
    return kept


def detect(image: Image.Image, kind: str, *, max_side: int = 1024) -> list[RawDetection]:
    """Every ``kind`` object the classical detectors find, best first."""
    if kind not in CASCADES:
        raise ValueError(f"unknown detector kind {kind!r}; known: {', '.join(KINDS)}")
    names, label, neighbours, min_frac = CASCADES[kind]
    gray, f = _gray(image, max_side)
    found: list[RawDetection] = []
    for name in names:
        for box, score in _run_cascade(gray, name, neighbours, min_frac):
            found.append(RawDetection(box, score, label, f"haar:{name}"))
    W, H = image.size
    out = []
    for d in nms(found):
        x0, y0, x1, y1 = (int(round(v / f)) for v in d.box)
        box = (max(0, x0), max(0, y0), min(W, max(x0 + 1, x1)), min(H, max(y0 + 1, y1)))
        out.append(RawDetection(box, round(float(d.score), 4), d.label, d.source))
    return out


def kind_for_words(words: list[str]) -> tuple[str, str] | None:
    """(detector kind, the word that named it) for the first word a detector covers."""
    for w in words:
        if w in WORDS:
            return WORDS[w], w
    return None
