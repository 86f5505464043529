"""ground: turn a phrase into regions (Detections) of the current image.

Embedded backend, geometry only (no model weights). It understands:

- explicit boxes: ``box 10,20,110,220`` or a bare ``10,20,110,220`` = corners
  x0,y0,x1,y1 (x1/y1 exclusive); ``rect 10,20,100,200`` (also ``xywh``) = x,y,width,height.
  A box partly outside the image is clipped; one entirely outside or empty is an error.
- halves: "the left/right/top/bottom half" (also upper/lower).
- thirds: "the left/right/top/bottom third", "the middle/center third" (the middle
  vertical band).
- corners: "the top-left/top-right/bottom-left/bottom-right corner" (also "upper
  left", "top left", "left top"): a box of 1/3 of the width x 1/3 of the height in
  that corner. "the corner"/"a corner" alone gives all four as candidates.
- sides: "on the left/right", "at the top/bottom", "the left side", "top edge"...: the
  outer third on that side. "the sides" gives left and right as candidates.
- "the center"/"the middle"/"centre": the central box of 1/2 width x 1/2 height.
- "the sky": the rows above a detected horizon (see ``sky_region``).
- "the whole image"/"everything"/"the entire picture"/"all of it".

Objects, offline (no weights):

- colour phrases: "the red car", "the blue thing" -> colour segmentation in Lab
  (``tools/colors.py``), connected components ranked by size and saliency, each
  candidate with its own mask;
- the classical OpenCV detectors (``tools/detectors.py``): "the face", "the eyes",
  "the person"/"man"/"woman"/"people", "the cat", "the licence plate".

Instance selection, from ``select``/``index`` or from the phrase itself: "the second
face from the left", "the left-most person", "the largest red thing", "the face nearest
the centre", "the third cat" (reading order), "the person on the left" (a side picks
the instance), "the face in the top-left corner" (a region filters the instances).
Every call returns all candidates (box, score, label, position words), the selected
one first, and says in its metrics how many there were and whether the choice was
ambiguous, so the assistant can ask "which one?".

Object words beside a place that no detector covers ("the flag in the top-left
corner") are kept as the label while the place defines the region. A phrase it cannot
ground ("the dog") is a ``GroundingError`` naming the phrase and the grounding model
that would handle it — never a silent whole-image region.

With a model manager (``state.models``) holding an available ``grounding`` model,
``backend="auto"`` keeps the embedded result for an explicit box and for pure places ("the
top-left corner", "the left half", "the sky", "the whole image": no object words), and sends
every other phrase to GroundingDINO (``backends.grounding_dino``): the phrase's instance words
("the second dog from the left") give select/index as above, the rest goes to the model, all
candidates come back with the selected one first. The stored call names the backend that ran
(``resolved_args``: "embedded" or "grounding-dino").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from imagent.errors import GroundingError, ToolArgumentError
from imagent.tools import detectors
from imagent.tools.colors import colour_regions, colour_spec, find_colour_word
from imagent.tools.masks import check_box
from imagent.tools.types import Detection, ToolResult, ToolState

NAME = "ground"
DESCRIPTION = (
    "Find the region of the image a phrase refers to and return every candidate as detections "
    "(the selected one first). Offline it understands places ('the top-left corner', 'the left "
    "half', 'the right third', 'the center', 'the sky', 'the whole image'), boxes 'box "
    "x0,y0,x1,y1' (corners) or 'rect x,y,w,h', colours ('the red car', 'the blue thing'), and "
    "faces, eyes, people, cats and licence plates (classical detectors). Instance words work in "
    "the phrase: 'the second face from the left', 'the largest red thing', 'the person on the "
    "right'. Follow with build_mask.")

Select = Literal["auto", "left", "right", "top", "bottom", "largest", "smallest", "center",
                 "nearest_center", "score"]


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phrase: str = Field(..., min_length=1, max_length=500,
                        description="What to find, e.g. 'the flag in the top-left corner', "
                                    "'the sky', 'the red car', 'the second face from the left', "
                                    "'box 10,20,110,220' (x0,y0,x1,y1) or 'rect 10,20,100,200' "
                                    "(x,y,w,h).")
    select: Select = Field("auto", description="Which candidate to put first when several "
                                               "match: 'left'/'right'/'top'/'bottom' = the "
                                               "left-most/right-most/top-most/bottom-most, "
                                               "'largest'/'smallest' by box area, 'center' or "
                                               "'nearest_center' = nearest the image centre, "
                                               "'score' = most confident; 'auto' = what the "
                                               "phrase says ('the second from the left'), else "
                                               "best score then reading order.")
    index: int = Field(0, ge=0, le=100, description="Take the n-th candidate after sorting "
                                                    "by 'select' (0 = first, 1 = second...); "
                                                    "0 lets the phrase's ordinal decide.")
    backend: Literal["auto", "embedded", "grounding-dino"] = Field(
        "auto", description="'embedded' = the offline grounding (places, boxes, colours, "
                            "classical detectors); 'grounding-dino' = the GroundingDINO model; "
                            "'auto' = the model for object phrases when it is available, the "
                            "embedded grounding for places and boxes.")
    box_threshold: float = Field(0.35, ge=0.0, le=1.0, description="grounding-dino: minimum "
                                                                   "box confidence.")
    text_threshold: float = Field(0.25, ge=0.0, le=1.0, description="grounding-dino: minimum "
                                                                    "phrase-token confidence.")


# ----------------------------------------------------------------------------- parsing
_NUM = r"(-?\d+(?:\.\d+)?)"
_SEP = r"\s*[,;\s]\s*"
_FOUR = _NUM + _SEP + _NUM + _SEP + _NUM + _SEP + _NUM
_RE_RECT = re.compile(r"\b(?:rect|xywh)\b\s*[:=]?\s*[\[(]?\s*" + _FOUR)
_RE_BOX = re.compile(r"\b(?:box|bbox|xyxy)\b\s*[:=]?\s*[\[(]?\s*" + _FOUR)
_RE_BARE = re.compile(r"(?<![\w.])" + _NUM + r"\s*,\s*" + _NUM + r"\s*,\s*" + _NUM + r"\s*,\s*"
                      + _NUM + r"(?![\w.])")

_V = r"(top|upper|bottom|lower)"
_H = r"(left|right)"
_RE_CORNER = re.compile(rf"\b{_V}[\s-]*{_H}\b(?:[\s-]*(?:hand\s+)?corner)?|\b{_H}[\s-]*{_V}\b"
                        rf"(?:[\s-]*corner)?")
_RE_ANY_CORNER = re.compile(r"\b(?:a|any|the|one)\s+corners?\b|\bcorners\b")
_RE_HALF = re.compile(r"\b(left|right|top|upper|bottom|lower)\s+half\b")
_RE_THIRD = re.compile(r"\b(left|right|top|upper|bottom|lower|middle|center|centre|central)"
                       r"\s+third\b")
_RE_SIDES = re.compile(r"\b(?:both\s+)?sides\b")
# "left of the car" / "on top of the table" relate to an object, not to the image
_NOT_RELATIONAL = r"(?!\s+of\b(?!\s+(?:the\s+|this\s+)?(?:image|picture|photo|frame)\b))"
_RE_SIDE = re.compile(r"\b(left|right|top|upper|bottom|lower)\b" + _NOT_RELATIONAL +
                      r"(?:[\s-]*(?:hand\s+)?(?:side|edge|part|border|strip|area|region)\b"
                      + _NOT_RELATIONAL + r")?")
_RE_CENTER = re.compile(r"\b(?:center|centre|middle)\b")
_RE_SKY = re.compile(r"\bsky\b|\bskies\b")
_RE_WHOLE = re.compile(r"\b(?:whole|entire|full)\s+(?:image|picture|photo|frame|thing)\b|"
                       r"\beverything\b|\ball\s+of\s+it\b")

_STOP = set("""
a an the in on at of to from near by with and or its it this that these those is are be
image picture photo frame corner corners half third side sides edge part border strip area
region hand top upper bottom lower left right middle center centre central whole entire full
everything all box rect xywh bbox xyxy sky skies one any both please most from nearest closest
largest biggest smallest tiniest big small large tiny first second fourth fifth last thing
things object objects
""".split())

_VERT = {"top": "top", "upper": "top", "bottom": "bottom", "lower": "bottom"}


def _norm_v(word: str) -> str:
    return _VERT.get(word, word)


def _label_from(phrase: str, consumed: list[tuple[int, int]], fallback: str) -> str:
    text = phrase
    for s, e in sorted(consumed, reverse=True):
        text = text[:s] + " " + text[e:]
    words = [w for w in re.findall(r"[a-z][a-z'-]*", text) if w not in _STOP]
    return " ".join(words) if words else fallback


def position_words(box: tuple[int, int, int, int], size: tuple[int, int]) -> list[str]:
    """Where a box sits: e.g. ["top", "left"], ["middle", "center"], or ["whole"]."""
    w, h = size
    x0, y0, x1, y1 = box
    if (x0, y0, x1, y1) == (0, 0, w, h):
        return ["whole"]
    cx, cy = (x0 + x1) / 2.0 / w, (y0 + y1) / 2.0 / h
    vert = "top" if cy < 1 / 3 else "bottom" if cy > 2 / 3 else "middle"
    horiz = "left" if cx < 1 / 3 else "right" if cx > 2 / 3 else "center"
    return [vert, horiz]


def _det(box: tuple[int, int, int, int], size: tuple[int, int], label: str, score: float,
         mask: np.ndarray | None = None) -> Detection:
    return Detection(box=tuple(int(v) for v in box), score=float(score), label=label,  # type: ignore[arg-type]
                     position=position_words(box, size), mask=mask)


def _frac_box(size: tuple[int, int], fx0: float, fy0: float, fx1: float,
              fy1: float) -> tuple[int, int, int, int]:
    w, h = size
    x0, y0 = int(round(fx0 * w)), int(round(fy0 * h))
    x1, y1 = int(round(fx1 * w)), int(round(fy1 * h))
    x1, y1 = max(x1, x0 + 1), max(y1, y0 + 1)  # never empty, even on a 1x1 image
    return min(x0, w - 1), min(y0, h - 1), min(x1, w), min(y1, h)


_CORNER_FRAC = {("top", "left"): (0, 0, 1 / 3, 1 / 3), ("top", "right"): (2 / 3, 0, 1, 1 / 3),
                ("bottom", "left"): (0, 2 / 3, 1 / 3, 1), ("bottom", "right"): (2 / 3, 2 / 3, 1, 1)}
_HALF_FRAC = {"left": (0, 0, 0.5, 1), "right": (0.5, 0, 1, 1), "top": (0, 0, 1, 0.5),
              "bottom": (0, 0.5, 1, 1)}
_THIRD_FRAC = {"left": (0, 0, 1 / 3, 1), "right": (2 / 3, 0, 1, 1), "top": (0, 0, 1, 1 / 3),
               "bottom": (0, 2 / 3, 1, 1), "middle": (1 / 3, 0, 2 / 3, 1)}
_CENTER_FRAC = (0.25, 0.25, 0.75, 0.75)


def _explicit_box(image: Image.Image, text: str, phrase: str
                  ) -> tuple[list[Detection], str] | None:
    """An explicit box or rect in the phrase, or None."""
    size = image.size
    w, h = size
    for regex, kind in ((_RE_RECT, "rect"), (_RE_BOX, "box"), (_RE_BARE, "box")):
        m = regex.search(text)
        if not m:
            continue
        a, b, c, d = (float(v) for v in m.groups())
        raw = [a, b, a + c, b + d] if kind == "rect" else [a, b, c, d]
        shown = f"{kind} {','.join(f'{v:g}' for v in (a, b, c, d))}"
        if c <= (0 if kind == "rect" else a) or d <= (0 if kind == "rect" else b):
            raise ToolArgumentError(
                f"the {shown!r} in {phrase!r} is empty" +
                (" (width and height must be > 0)" if kind == "rect" else " (needs x1 > x0 and y1 > y0)"),
                hint="'box x0,y0,x1,y1' gives two corners; 'rect x,y,w,h' gives corner and size")
        try:
            box = check_box(raw, size)
        except ToolArgumentError:
            raise GroundingError(f"the {shown!r} in {phrase!r} lies outside the {w}x{h} image",
                                 hint=f"coordinates run from 0,0 to {w},{h}") from None
        clipped = list(box) != [int(round(v)) for v in raw]
        label = _label_from(text, [m.span()], "box")
        note = f"explicit {kind}" + (" (clipped to the image)" if clipped else "")
        return [_det(box, size, label, 1.0)], note

    return None


def _ground_place(image: Image.Image, text: str) -> tuple[list[Detection], str, str] | None:
    """A place named in the phrase: (candidates, note, tag) or None. The tag is e.g.
    'corner', 'half', 'third', 'sky', 'corners', 'sides', 'side:left', 'center', 'whole'."""
    size = image.size
    w, h = size
    # 2. places, most specific first
    m = _RE_CORNER.search(text)
    if m:
        g = [x for x in m.groups() if x]
        v = _norm_v(g[0] if g[0] in _VERT else g[1])
        hz = g[1] if g[1] in ("left", "right") else g[0]
        box = _frac_box(size, *_CORNER_FRAC[(v, hz)])
        return [_det(box, size, _label_from(text, [m.span()], f"{v}-{hz} corner"), 0.9)], \
            f"the {v}-{hz} corner (1/3 x 1/3 of the image)", "corner"
    m = _RE_HALF.search(text)
    if m:
        side = _norm_v(m.group(1))
        box = _frac_box(size, *_HALF_FRAC[side])
        return [_det(box, size, _label_from(text, [m.span()], f"{side} half"), 0.9)], \
            f"the {side} half", "half"
    m = _RE_THIRD.search(text)
    if m:
        side = _norm_v(m.group(1))
        side = "middle" if side in ("center", "centre", "central") else side
        box = _frac_box(size, *_THIRD_FRAC[side])
        return [_det(box, size, _label_from(text, [m.span()], f"{side} third"), 0.9)], \
            f"the {side} third", "third"
    m = _RE_SKY.search(text)
    if m:
        box, smask, score, how = sky_region(image)
        return [_det(box, size, _label_from(text, [m.span()], "sky"),
                     score, smask)], how, "sky"
    m = _RE_ANY_CORNER.search(text)
    if m:
        label = _label_from(text, [m.span()], "corner")
        dets = [_det(_frac_box(size, *fr), size, label, 0.5) for fr in _CORNER_FRAC.values()]
        return dets, "one of the four corners (ambiguous: all four are candidates)", "corners"
    m = _RE_SIDES.search(text)
    if m:
        label = _label_from(text, [m.span()], "side")
        dets = [_det(_frac_box(size, *_THIRD_FRAC[s]), size, label, 0.5) for s in ("left", "right")]
        return dets, "the left and right sides (outer thirds)", "sides"
    m = _RE_SIDE.search(text)
    if m:
        side = _norm_v(m.group(1))
        box = _frac_box(size, *_THIRD_FRAC[side])
        return [_det(box, size, _label_from(text, [m.span()], f"{side} side"), 0.7)], \
            f"the {side} side (outer third)", f"side:{side}"
    m = _RE_CENTER.search(text)
    if m:
        box = _frac_box(size, *_CENTER_FRAC)
        return [_det(box, size, _label_from(text, [m.span()], "center"), 0.7)], \
            "the center (1/2 x 1/2 of the image)", "center"
    m = _RE_WHOLE.search(text)
    if m:
        return [_det((0, 0, w, h), size, _label_from(text, [m.span()], "whole image"), 1.0)], \
            "the whole image", "whole"
    return None


def sky_region(image: Image.Image) -> tuple[tuple[int, int, int, int], np.ndarray | None, float, str]:
    """The sky as (box, mask or None, score, note).

    Heuristic: the horizon is the row with the strongest vertical brightness change
    in rows 10%..70% of the height; the sky is everything above it. When the part
    above is mostly bright, low-saturation or blue-ish (sky-coloured), the score is
    high and the mask keeps the sky-coloured pixels connected to the top edge;
    otherwise the score is low. With no clear horizon the top third is returned
    with a low score.
    """
    w, h = image.size
    top_third = (0, 0, w, max(1, int(round(h / 3))))
    if h < 6 or w < 2:
        return top_third, None, 0.2, "the sky: image too small for a horizon, top third"
    rgb = np.asarray(image, dtype=np.float32)
    gray = rgb.mean(axis=2)
    gray = cv2.GaussianBlur(gray, (0, 0), sigmaX=max(1.0, h / 200.0))
    row_mean = gray.mean(axis=1)
    grad = np.abs(np.diff(row_mean))  # grad[i] = change between rows i and i+1
    lo, hi = max(1, int(h * 0.1)), max(2, int(h * 0.7))
    band = grad[lo:hi]
    hsv = cv2.cvtColor(np.asarray(image, dtype=np.uint8), cv2.COLOR_RGB2HSV)
    sat, val = hsv[..., 1].astype(np.float32) / 255.0, hsv[..., 2].astype(np.float32) / 255.0
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    skyish = (val > 0.45) & ((sat < 0.25) | ((b > r + 10) & (b >= g - 10)))
    if band.size == 0 or float(band.max()) < 2.0:
        return top_third, None, 0.2, "the sky: no clear horizon found, using the top third"
    horizon = lo + int(np.argmax(band)) + 1
    box = (0, 0, w, horizon)
    frac = float(skyish[:horizon].mean())
    if frac < 0.5:
        return box, None, 0.3, (f"the sky: rows above the horizon at y={horizon} (the region is "
                                f"not sky-coloured; low confidence)")
    # sky-coloured pixels above the horizon that connect to the top edge
    region = np.zeros((h, w), np.uint8)
    region[:horizon] = skyish[:horizon].astype(np.uint8)
    region = cv2.morphologyEx(region, cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
    n, labels = cv2.connectedComponents(region, connectivity=4)
    top_labels = set(np.unique(labels[0][region[0] > 0]).tolist()) - {0}
    mask = None
    if top_labels and n > 1:
        sel = np.isin(labels, list(top_labels))
        if sel.sum() >= 0.5 * horizon * w:
            mask = sel.astype(np.float32)
    return box, mask, 0.6, f"the sky: sky-coloured rows above the horizon at y={horizon}"


# ----------------------------------------------------------------------------- selection
_ORD = {"first": 1, "1st": 1, "second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4,
        "4th": 4, "fifth": 5, "5th": 5, "sixth": 6, "6th": 6, "last": -1}
_ORD_RE = "|".join(_ORD)
_RE_NTH_FROM = re.compile(rf"\b({_ORD_RE})\b(?:\s+[a-z]+){{0,3}}?\s+from\s+(?:the\s+)?"
                          r"(left|right|top|bottom)\b")
_RE_NTH = re.compile(rf"\bthe\s+({_ORD_RE})\b(?!\s+(?:from|half|corner)\b)")
_RE_MOST = re.compile(r"\b(left|right|top|bottom|upper|lower)[\s-]?most\b")
_RE_SIZE = re.compile(r"\b(largest|biggest|smallest|tiniest|big|large|small|tiny)(?:gest)?\b")
_RE_CENTRAL = re.compile(r"\b(?:(?:nearest|closest)\s+(?:to\s+)?the\s+(?:centre|center|middle)|"
                         r"most\s+central|central)\b")
_SIZE_SEL = {"largest": "largest", "biggest": "largest", "big": "largest", "large": "largest",
             "smallest": "smallest", "tiniest": "smallest", "small": "smallest",
             "tiny": "smallest"}


def parse_selection(text: str) -> tuple[str | None, int | None, list[tuple[int, int]]]:
    """Instance selection named in a phrase: (select or None, index or None, spans).

    "the second face from the left" -> ("left", 1); "the right-most person" -> ("right",
    0); "the largest red thing" -> ("largest", 0); "the face nearest the centre" ->
    ("nearest_center", 0); "the third cat" -> ("left", 2) (reading order); "the last
    face from the left" -> ("right", 0).
    """
    m = _RE_NTH_FROM.search(text)
    if m:
        n, side = _ORD[m.group(1)], m.group(2)
        if n == -1:
            side = {"left": "right", "right": "left", "top": "bottom", "bottom": "top"}[side]
            n = 1
        # keep the noun between ordinal and "from" in the label
        from_at = m.start() + m.group(0).rfind("from")
        return side, n - 1, [m.span(1), (from_at, m.end())]
    spans: list[tuple[int, int]] = []
    select = index = None
    m = _RE_MOST.search(text)
    if m:
        select = _norm_v(m.group(1))
        spans.append(m.span())
    m = _RE_SIZE.search(text)
    if m and select is None:
        select = _SIZE_SEL[m.group(1)]
        spans.append(m.span())
    m = _RE_CENTRAL.search(text)
    if m and select is None:
        select = "nearest_center"
        spans.append(m.span())
    m = _RE_NTH.search(text)
    if m:
        n = _ORD[m.group(1)]
        if n == -1:
            select, index = select or "right", 0
        else:
            select, index = select or "left", n - 1
        spans.append(m.span(1))
    if select is not None and index is None:
        index = 0
    return select, index, spans


def _sort(dets: list[Detection], select: str, size: tuple[int, int]) -> list[Detection]:
    def cx(d: Detection) -> float:
        return (d.box[0] + d.box[2]) / 2.0

    def cy(d: Detection) -> float:
        return (d.box[1] + d.box[3]) / 2.0

    def area(d: Detection) -> int:
        return (d.box[2] - d.box[0]) * (d.box[3] - d.box[1])

    w, h = size
    centre = lambda d: ((cx(d) - w / 2) ** 2 + (cy(d) - h / 2) ** 2, -d.score)  # noqa: E731
    keys = {
        "auto": lambda d: (-d.score, cy(d), cx(d)),
        "score": lambda d: (-d.score, cy(d), cx(d)),
        "left": lambda d: (cx(d), cy(d)),
        "right": lambda d: (-cx(d), cy(d)),
        "top": lambda d: (cy(d), cx(d)),
        "bottom": lambda d: (-cy(d), cx(d)),
        "largest": lambda d: (-area(d), -d.score),
        "smallest": lambda d: (area(d), -d.score),
        "center": centre,
        "nearest_center": centre,
    }
    return sorted(dets, key=keys[select])  # stable: ties keep reading order


# ----------------------------------------------------------------------------- grounding
@dataclass
class Grounding:
    """The outcome of grounding a phrase: candidates with the selected one first."""

    detections: list[Detection]
    note: str
    method: str  # "box", "geometry", "colour", "detector", "geometry-fallback"
    select: str
    index: int
    ambiguous: bool
    phrase_selection: bool = False  # the phrase itself named the instance


def _object_candidates(image: Image.Image, text: str, words: list[str]
                       ) -> tuple[list[Detection], str, str, str] | None:
    """Candidates from the classical detectors or colour segmentation, or None when the
    phrase names neither. Returns (candidates, note, method, what-was-looked-for)."""
    size = image.size
    kind = detectors.kind_for_words(words)
    colour = find_colour_word(text)
    if kind is not None:
        k, word = kind
        if not detectors.available():
            raise GroundingError(
                f"cannot find {text!r}: this OpenCV build has no classical detectors",
                hint="install opencv-contrib-python-headless (imagent's dependency), or use the "
                     "grounding model (GroundingDINO, `--profile models`)")
        raw = detectors.detect(image, k)
        label = detectors.CASCADES[k][1]
        dets = [_det(r.box, size, label, r.score) for r in raw]
        srcs = sorted({r.source for r in raw})
        note = (f"{len(dets)} {label}(s) found by the classical detectors"
                + (f" ({', '.join(srcs)})" if srcs else ""))
        if colour is not None and dets:
            note += f"; the colour {colour[0]!r} is not used to filter detector results"
        return dets, note, "detector", f"a {word}"
    if colour is not None:
        name, _span = colour
        spec = colour_spec(name)
        regions = colour_regions(image, spec)
        dets = [_det(r.box, size, name, r.score, r.mask) for r in regions]
        return dets, (f"{len(dets)} {name} region(s) by colour segmentation (Lab hue/chroma, "
                      f"ranked by size and saliency)"), "colour", f"anything {name}"
    return None


def _in_place(d: Detection, place: Detection) -> bool:
    cx, cy = (d.box[0] + d.box[2]) / 2.0, (d.box[1] + d.box[3]) / 2.0
    x0, y0, x1, y1 = place.box
    return x0 <= cx < x1 and y0 <= cy < y1


def ground_full(image: Image.Image, phrase: str, *, select: str = "auto",
                index: int = 0) -> Grounding:
    """Ground ``phrase``: every candidate, the selected one first, and how.

    An explicit ``select`` (not "auto") or ``index`` (not 0) overrides the selection
    words of the phrase ("the second face from the left").
    """
    size = image.size
    text = " ".join(phrase.lower().split())
    if not text:
        raise ToolArgumentError("the phrase is empty", hint="say what to select, e.g. 'the sky'")
    found = _explicit_box(image, text, phrase)
    if found is not None:
        return _finish(found[0], found[1], "box", select, index, size, phrase, False)

    p_select, p_index, sel_spans = parse_selection(text)
    rest = text
    for s, e in sorted(sel_spans, reverse=True):
        rest = rest[:s] + " " + rest[e:]
    rest = " ".join(rest.split())
    words = re.findall(r"[a-z][a-z'-]*", rest)
    place = _ground_place(image, rest)
    objects = None if (place is not None and place[2] == "sky") else \
        _object_candidates(image, rest, words)
    explicit = p_select is not None or p_index is not None
    use_select = select if select != "auto" else (p_select or "auto")
    use_index = index if index != 0 else (p_index or 0)

    if objects is not None:
        dets, note, method, what = objects
        fallback = dets[0].label if dets else what
        label = place[0][0].label if place is not None and place[2] not in ("corners", "sides") \
            else _label_from(rest, [], fallback)
        if label in ("corner", "side") or label.endswith((" corner", " half", " third", " side")):
            label = fallback  # the phrase had no object word beside the place
        for d in dets:
            d.label = label
        if dets and place is not None:
            pdets, pnote, tag = place
            if tag.startswith("side:") or tag == "sides":
                # "the person on the left": a side picks the instance, it does not crop
                if use_select == "auto":
                    use_select = tag.split(":")[1] if ":" in tag else "auto"
                    explicit = True
                note += f"; {pnote.split(' (')[0]} selects among them"
            elif tag != "whole":
                inside = [d for d in dets if any(_in_place(d, p) for p in pdets)]
                if inside:
                    dets = inside + [d for d in dets if d not in inside]
                    note += f"; {len(inside)} inside {pnote.split(' (')[0]}"
                    if use_select == "auto":
                        # keep the ones in the place first, best score first among them
                        dets = sorted(inside, key=lambda d: -d.score) + \
                            [d for d in dets if d not in inside]
                        use_select = "keep"
                else:
                    pbox = pdets[0].box
                    pc = ((pbox[0] + pbox[2]) / 2.0, (pbox[1] + pbox[3]) / 2.0)
                    dets = sorted(dets, key=lambda d: ((d.box[0] + d.box[2]) / 2 - pc[0]) ** 2 +
                                  ((d.box[1] + d.box[3]) / 2 - pc[1]) ** 2)
                    note += f"; none inside {pnote.split(' (')[0]}, nearest first"
                    use_select = "keep" if use_select == "auto" else use_select
        if dets:
            return _finish(dets, note, method, use_select, use_index, size, phrase, explicit)
        if place is not None:
            pdets, pnote, _tag = place
            for d in pdets:
                d.score = min(d.score, 0.4)
            return _finish(pdets, f"{pnote} — no {what.split(' ', 1)[1]} was found by the "
                                  f"offline detectors, so the place alone defines the region",
                           "geometry-fallback", use_select, use_index, size, phrase, explicit)
        raise GroundingError(
            f"cannot find {phrase!r}: the offline detectors found no "
            f"{what.split(' ', 1)[1]} in the {size[0]}x{size[1]} image",
            hint="the grounding model (GroundingDINO, `--profile models`) finds objects the "
                 "classical detectors (faces, people, cats, eyes, licence plates, colours) "
                 "miss; offline, name a place such as 'the top-left corner' or give a box "
                 "'box x0,y0,x1,y1'")
    if place is not None:
        pdets, pnote, _tag = place
        return _finish(pdets, pnote, "geometry", use_select, use_index, size, phrase, explicit)
    raise GroundingError(
        f"cannot find {phrase!r}: the offline grounding understands places, colours and "
        f"faces/people/cats/eyes/licence plates, not this",
        hint="finding other objects needs the grounding model (GroundingDINO, `--profile "
             "models`); offline, name a place such as 'the top-left corner', 'the left half', "
             "'the sky', a colour ('the red car'), or give a box 'box x0,y0,x1,y1' (corners) "
             "or 'rect x,y,w,h'")


def _finish(dets: list[Detection], note: str, method: str, select: str, index: int,
            size: tuple[int, int], phrase: str, explicit: bool) -> Grounding:
    ordered = dets if select == "keep" else _sort(dets, select, size)
    if not 0 <= index < len(ordered):
        raise ToolArgumentError(f"index {index} is out of range: {phrase!r} gave "
                                f"{len(ordered)} candidate(s)",
                                hint=f"use index 0..{len(ordered) - 1}")
    chosen = ordered[index]
    out = [chosen] + [d for i, d in enumerate(ordered) if i != index]
    ambiguous = False
    if len(out) > 1 and not explicit and select in ("auto", "keep"):
        best = max(d.score for d in out)
        ambiguous = sum(1 for d in out if d.score >= 0.8 * best) > 1
    return Grounding(out, note, method, "auto" if select == "keep" else select, index,
                     ambiguous, explicit)


def ground(image: Image.Image, phrase: str, *, select: str = "auto",
           index: int = 0) -> tuple[list[Detection], str]:
    """Detections for ``phrase`` with the selected one first, and a note."""
    g = ground_full(image, phrase, select=select, index=index)
    return g.detections, g.note


def ground_phrase(image: Image.Image, phrase: str) -> tuple[list[Detection], str]:
    """All candidate regions for ``phrase`` and a note (kept for direct use)."""
    return ground(image, phrase)


def object_words(phrase: str) -> list[str]:
    """The words of ``phrase`` that name a thing, not a place, a box or an instance: [] for
    "the top-left corner", "the left half", "the sky", "box 1,2,3,4"; ["flag"] for "the flag
    in the top-left corner"; ["dog"] for "the second dog from the left"."""
    text = " ".join(phrase.lower().split())
    for regex in (_RE_RECT, _RE_BOX, _RE_BARE):
        text = regex.sub(" ", text)
    _sel, _idx, spans = parse_selection(text)
    for s, e in sorted(spans, reverse=True):
        text = text[:s] + " " + text[e:]
    return [w for w in re.findall(r"[a-z][a-z']*", text)
            if w not in _STOP and w not in _ORD and not w.endswith("most")]


_GDINO_SELECT = {"nearest_center": "center", "score": "auto"}


def ground_with_model(manager, image: Image.Image, phrase: str, *, select: str = "auto",
                      index: int = 0, box_threshold: float = 0.35, text_threshold: float = 0.25,
                      info: dict | None = None) -> Grounding:
    """Ground ``phrase`` with GroundingDINO, with the same instance selection as the embedded
    grounding: the phrase's instance words (or ``select``/``index``) pick the instance."""
    from imagent.tools.backends import grounding_dino as GD

    text = " ".join(phrase.lower().split())
    p_select, p_index, spans = parse_selection(text)
    rest = text
    for s, e in sorted(spans, reverse=True):
        rest = rest[:s] + " " + rest[e:]
    rest = " ".join(rest.split()) or text
    use_select = select if select != "auto" else (p_select or "auto")
    use_index = index if index != 0 else (p_index or 0)
    info = info if info is not None else {}
    dets = GD.ground(manager, image, rest, box_threshold=box_threshold,
                     text_threshold=text_threshold, select=_GDINO_SELECT.get(use_select, use_select),
                     index=use_index, info=info)
    explicit = p_select is not None or p_index is not None or bool(info.get("place")) or \
        select != "auto" or index != 0
    ambiguous = False
    if len(dets) > 1 and not explicit:
        best = max(d.score for d in dets)
        ambiguous = sum(1 for d in dets if d.score >= 0.8 * best) > 1
    note = (f"GroundingDINO ({info.get('text', rest)!r}: {len(dets)} candidate(s) after NMS"
            + (f", place {info['place']!r}" if info.get("place") else "") + ")")
    return Grounding(dets, note, "grounding-dino", str(info.get("select", use_select)),
                     use_index, ambiguous, explicit)


def _use_model(args: Args, state: ToolState) -> bool:
    from imagent.tools.models import model_available, no_manager_error

    if args.backend == "embedded":
        return False
    if args.backend == "grounding-dino":
        if state.models is None:
            raise no_manager_error(NAME, "grounding", f"backend='grounding-dino' ({args.phrase!r})")
        return True
    if not model_available(state, "grounding"):
        return False
    text = " ".join(args.phrase.lower().split())
    if _explicit_box(state.image, text, args.phrase) is not None:
        return False
    return bool(object_words(text))


def run(args: Args, state: ToolState) -> ToolResult:
    if _use_model(args, state):
        return _run_model(args, state)
    res = _result(ground_full(state.image, args.phrase, select=args.select, index=args.index),
                  state)
    if args.backend == "auto":
        res.extra["resolved_args"] = {"backend": "embedded"}
    return res


def _run_model(args: Args, state: ToolState) -> ToolResult:
    mgr = state.models
    info: dict = {}
    g = ground_with_model(mgr, state.image, args.phrase, select=args.select, index=args.index,
                          box_threshold=args.box_threshold, text_threshold=args.text_threshold,
                          info=info)
    res = _result(g, state)
    res.model_ids = {"grounding": mgr.model_id("grounding")}
    res.metrics.update({k: v for k, v in info.items() if k in ("text", "place", "raw_boxes",
                                                               "after_nms")})
    res.extra["resolved_args"] = {"backend": "grounding-dino"}
    return res


def _result(g: Grounding, state: ToolState) -> ToolResult:
    dets = g.detections
    first = dets[0]
    w, h = state.image.size
    x0, y0, x1, y1 = first.box
    msg = f"found {first.label!r} as {g.note}: box {list(first.box)}"
    if len(dets) > 1:
        msg += f" ({len(dets)} candidates, selected by {g.select!r}" + \
               (f", index {g.index}" if g.index else "") + ")"
        if g.ambiguous:
            msg += "; ambiguous: say which one (e.g. 'the one on the left', 'the largest')"
    backend = {"box": "geometry", "geometry": "geometry", "geometry-fallback": "geometry",
               "colour": "colour-segmentation", "detector": "opencv-classical",
               "grounding-dino": "grounding-dino"}[g.method]
    return ToolResult(detections=dets, message=msg, backend=backend,
                      metrics={"candidates": len(dets), "ambiguous": g.ambiguous,
                               "method": g.method, "select": g.select, "index": g.index,
                               "score": round(first.score, 3),
                               "area_fraction": round((x1 - x0) * (y1 - y0) / float(w * h), 4)})
