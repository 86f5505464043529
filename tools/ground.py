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

Object words beside a place ("the flag in the top-left corner") are kept as the
label while the place defines the region. A phrase without a place it can ground
("the dog") is a ``GroundingError``: finding objects needs the grounding model.
"""

from __future__ import annotations

import re
from typing import Literal

import cv2
import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from imagent.errors import GroundingError, ToolArgumentError
from imagent.tools.masks import check_box
from imagent.tools.types import Detection, ToolResult, ToolState

NAME = "ground"
DESCRIPTION = (
    "Find the region of the image a phrase refers to and return it as detections (the selected "
    "one first). Offline it understands places: 'the top-left corner', 'the left half', 'the "
    "right third', 'the center', 'the sky', 'the whole image', and boxes 'box x0,y0,x1,y1' "
    "(corners) or 'rect x,y,w,h'. Object words next to a place ('the flag in the top-left "
    "corner') are kept as the label. Follow with build_mask.")

Select = Literal["auto", "left", "right", "top", "bottom", "largest", "smallest", "center"]


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phrase: str = Field(..., min_length=1, max_length=500,
                        description="What to find, e.g. 'the flag in the top-left corner', "
                                    "'the sky', 'box 10,20,110,220' (x0,y0,x1,y1) or "
                                    "'rect 10,20,100,200' (x,y,w,h).")
    select: Select = Field("auto", description="Which candidate to put first when several "
                                               "match: by position, by size, or 'auto' (best "
                                               "score, then reading order).")
    index: int = Field(0, ge=0, le=100, description="Take the n-th candidate after sorting "
                                                    "by 'select' (0 = first).")


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
everything all box rect xywh bbox xyxy sky skies one any both please
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


def ground_phrase(image: Image.Image, phrase: str) -> tuple[list[Detection], str]:
    """All candidate regions for ``phrase`` (unsorted) and a note on how they were found."""
    size = image.size
    w, h = size
    text = " ".join(phrase.lower().split())
    if not text:
        raise ToolArgumentError("the phrase is empty", hint="say what to select, e.g. 'the sky'")

    # 1. explicit boxes
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

    # 2. places, most specific first
    m = _RE_CORNER.search(text)
    if m:
        g = [x for x in m.groups() if x]
        v = _norm_v(g[0] if g[0] in _VERT else g[1])
        hz = g[1] if g[1] in ("left", "right") else g[0]
        box = _frac_box(size, *_CORNER_FRAC[(v, hz)])
        return [_det(box, size, _label_from(text, [m.span()], f"{v}-{hz} corner"), 0.9)], \
            f"the {v}-{hz} corner (1/3 x 1/3 of the image)"
    m = _RE_HALF.search(text)
    if m:
        side = _norm_v(m.group(1))
        box = _frac_box(size, *_HALF_FRAC[side])
        return [_det(box, size, _label_from(text, [m.span()], f"{side} half"), 0.9)], \
            f"the {side} half"
    m = _RE_THIRD.search(text)
    if m:
        side = _norm_v(m.group(1))
        side = "middle" if side in ("center", "centre", "central") else side
        box = _frac_box(size, *_THIRD_FRAC[side])
        return [_det(box, size, _label_from(text, [m.span()], f"{side} third"), 0.9)], \
            f"the {side} third"
    m = _RE_SKY.search(text)
    if m:
        box, smask, score, how = sky_region(image)
        return [_det(box, size, _label_from(text, [m.span()], "sky"),
                     score, smask)], how
    m = _RE_ANY_CORNER.search(text)
    if m:
        label = _label_from(text, [m.span()], "corner")
        dets = [_det(_frac_box(size, *fr), size, label, 0.5) for fr in _CORNER_FRAC.values()]
        return dets, "one of the four corners (ambiguous: all four are candidates)"
    m = _RE_SIDES.search(text)
    if m:
        label = _label_from(text, [m.span()], "side")
        dets = [_det(_frac_box(size, *_THIRD_FRAC[s]), size, label, 0.5) for s in ("left", "right")]
        return dets, "the left and right sides (outer thirds)"
    m = _RE_SIDE.search(text)
    if m:
        side = _norm_v(m.group(1))
        box = _frac_box(size, *_THIRD_FRAC[side])
        return [_det(box, size, _label_from(text, [m.span()], f"{side} side"), 0.7)], \
            f"the {side} side (outer third)"
    m = _RE_CENTER.search(text)
    if m:
        box = _frac_box(size, *_CENTER_FRAC)
        return [_det(box, size, _label_from(text, [m.span()], "center"), 0.7)], \
            "the center (1/2 x 1/2 of the image)"
    m = _RE_WHOLE.search(text)
    if m:
        return [_det((0, 0, w, h), size, _label_from(text, [m.span()], "whole image"), 1.0)], \
            "the whole image"
    # seam: colour words ("the red car") and classical detectors (Haar faces, HOG people)
    # come with the tools-deepening issue; the grounding model handles everything else.
    raise GroundingError(
        f"cannot find {phrase!r}: the offline grounding understands places, not objects",
        hint="finding objects needs the grounding model (GroundingDINO, `--profile models`); "
             "offline, name a place such as 'the top-left corner', 'the left half', 'the sky', "
             "or give a box 'box x0,y0,x1,y1' (corners) or 'rect x,y,w,h'")


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


def _sort(dets: list[Detection], select: str, size: tuple[int, int]) -> list[Detection]:
    def cx(d: Detection) -> float:
        return (d.box[0] + d.box[2]) / 2.0

    def cy(d: Detection) -> float:
        return (d.box[1] + d.box[3]) / 2.0

    def area(d: Detection) -> int:
        return (d.box[2] - d.box[0]) * (d.box[3] - d.box[1])

    w, h = size
    keys = {
        "auto": lambda d: (-d.score, cy(d), cx(d)),
        "left": lambda d: (cx(d), cy(d)),
        "right": lambda d: (-cx(d), cy(d)),
        "top": lambda d: (cy(d), cx(d)),
        "bottom": lambda d: (-cy(d), cx(d)),
        "largest": lambda d: (-area(d), -d.score),
        "smallest": lambda d: (area(d), -d.score),
        "center": lambda d: ((cx(d) - w / 2) ** 2 + (cy(d) - h / 2) ** 2, -d.score),
    }
    return sorted(dets, key=keys[select])  # stable: ties keep reading order


def ground(image: Image.Image, phrase: str, *, select: str = "auto",
           index: int = 0) -> tuple[list[Detection], str]:
    """Detections for ``phrase`` with the selected one first, and a note."""
    dets, note = ground_phrase(image, phrase)
    ordered = _sort(dets, select, image.size)
    if not 0 <= index < len(ordered):
        raise ToolArgumentError(f"index {index} is out of range: {phrase!r} gave "
                                f"{len(ordered)} candidate(s)",
                                hint=f"use index 0..{len(ordered) - 1}")
    chosen = ordered[index]
    return [chosen] + [d for i, d in enumerate(ordered) if i != index], note


def run(args: Args, state: ToolState) -> ToolResult:
    dets, note = ground(state.image, args.phrase, select=args.select, index=args.index)
    first = dets[0]
    w, h = state.image.size
    x0, y0, x1, y1 = first.box
    msg = f"found {first.label!r} as {note}: box {list(first.box)}"
    if len(dets) > 1:
        msg += f" ({len(dets)} candidates, selected by {args.select!r})"
    return ToolResult(detections=dets, message=msg, backend="geometry",
                      metrics={"candidates": len(dets), "score": round(first.score, 3),
                               "area_fraction": round((x1 - x0) * (y1 - y0) / float(w * h), 4)})
