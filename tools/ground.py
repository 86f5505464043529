"""ground: turn a referent (``tools/referent.py``) into regions (Detections) of the image.

The words were read once, by ``referent.parse``; here the typed fields are resolved against
the pixels. Embedded backend (no model weights):

- ``box``: the given corners, clipped to the image (entirely outside is an error);
- ``place``: a region of the frame — corners (1/3 x 1/3), halves, thirds, sides (outer
  thirds), the center (1/2 x 1/2), the sky (rows above a detected horizon, ``sky_region``),
  the whole image; "a corner" / "the sides" give every such region as candidates;
- ``colour``: colour segmentation in Lab (``tools/colors.py``), connected components ranked
  by size and saliency, each with its own mask; with a box, the colour inside the box;
- ``noun``: the small models shipped in the package (``tools/vision.py``, ``noun_class``):
  people (a BlazeFace face gates the selfie segmentation, one instance per face), faces (the
  face box grown to the head, an elliptical mask), text (PP-OCR lines joined into blocks,
  masks grown with the text height; a mass noun such as "the text" is every block of one line
  height), the main subject / foreground and the background (its inverse). Cats, eyes and
  licence plates: the classical Haar cascades (``tools/detectors.py``), weak evidence.

Instance choice (``select``/``ordinal``) orders the candidates (``referent.pick``). A side
place with an object ("the person on the left") picks the instance; another place filters
the candidates to those inside it.

Every result says how sure it is (``Grounding.confidence``, calibrated per method), how many
plausible candidates there were, and whether the assistant should ask instead of editing
(``Grounding.confirm``: why a person must confirm; ``ambiguous``: several close candidates
and no instance named). The classical detectors and colour regions that look like skin or
that a specific noun cannot be checked against are weak evidence: they never edit on their
own. A referent nothing offline can find is a ``GroundingError`` naming what would find it.

With a model manager holding an available ``grounding`` model, ``backend="auto"`` sends
referents that name an object to GroundingDINO (``backends.grounding_dino``), with the same
instance choice; boxes and pure places stay embedded. The stored call names the backend that
ran and the referent that was grounded (``resolved_args``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, model_validator

from imagent.errors import GroundingError, ToolArgumentError
from imagent.tools import detectors
from imagent.tools import masks as M
from imagent.tools import referent as R
from imagent.tools.build_mask import mask_from_detection
from imagent.tools.colors import colour_mask, colour_regions, colour_spec
from imagent.tools.referent import Referent
from imagent.tools.types import Detection, ToolResult, ToolState

NAME = "ground"
DESCRIPTION = (
    "Find the region of the image a target refers to and return every candidate as detections "
    "(the selected one first). Give 'phrase' (e.g. 'the second red car from the left', 'the "
    "flag in the top-left corner', 'the sky', 'box x0,y0,x1,y1', 'rect x,y,w,h') or a parsed "
    "'referent'. Offline it finds places, boxes, colours, people, faces, text, the main subject "
    "and the background (small shipped models), and cats, eyes and licence plates (classical "
    "detectors, weak: the assistant asks before using them). Follow with build_mask.")

Select = Literal["auto", "left", "right", "top", "bottom", "largest", "smallest", "center",
                 "nearest_center", "score"]


class Args(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phrase: str | None = Field(None, min_length=1, max_length=500,
                               description="What to find, e.g. 'the flag in the top-left corner', "
                                           "'the sky', 'the red car', 'the second face from the "
                                           "left', 'box 10,20,110,220' (x0,y0,x1,y1) or 'rect "
                                           "10,20,100,200' (x,y,w,h).")
    referent: Referent | None = Field(None, description="The target already parsed (noun, "
                                                        "colour, place, select, ordinal, box, "
                                                        "points); wins over 'phrase'.")
    select: Select = Field("auto", description="Override the ordering: 'left'/'right'/'top'/"
                                               "'bottom' = from that side, 'largest'/'smallest' "
                                               "by box area, 'center' = nearest the image centre, "
                                               "'score' = most confident; 'auto' = what the "
                                               "target says.")
    index: int = Field(0, ge=0, le=100, description="Override the instance: the n-th candidate "
                                                    "after ordering (0 = first); 0 lets the "
                                                    "target's ordinal decide.")
    backend: Literal["auto", "embedded", "grounding-dino"] = Field(
        "auto", description="'embedded' = the offline grounding (places, boxes, colours, "
                            "classical detectors); 'grounding-dino' = the GroundingDINO model; "
                            "'auto' = the model for object phrases when it is available, the "
                            "embedded grounding for places and boxes.")
    box_threshold: float = Field(0.35, ge=0.0, le=1.0, description="grounding-dino: minimum "
                                                                   "box confidence.")
    text_threshold: float = Field(0.25, ge=0.0, le=1.0, description="grounding-dino: minimum "
                                                                    "phrase-token confidence.")

    @model_validator(mode="after")
    def _one_target(self) -> "Args":
        if self.phrase is None and self.referent is None:
            raise ValueError("give 'phrase' or 'referent'")
        return self

    def target(self) -> Referent:
        """The referent to ground: the given one, else the phrase parsed; ``select``/``index``
        overrides applied."""
        ref = self.referent if self.referent is not None else R.parse(self.phrase or "")
        if self.select not in ("auto",):
            ref = ref.model_copy(update={"select": {"nearest_center": "center", "score": None}.get(
                self.select, self.select)})
        if self.index:
            ref = ref.model_copy(update={"ordinal": self.index + 1,
                                         "select": ref.select or ("left" if self.select == "auto" else None)})
        return ref


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


_FRACTIONS = {
    "corner:top-left": (0, 0, 1 / 3, 1 / 3), "corner:top-right": (2 / 3, 0, 1, 1 / 3),
    "corner:bottom-left": (0, 2 / 3, 1 / 3, 1), "corner:bottom-right": (2 / 3, 2 / 3, 1, 1),
    "half:left": (0, 0, 0.5, 1), "half:right": (0.5, 0, 1, 1), "half:top": (0, 0, 1, 0.5),
    "half:bottom": (0, 0.5, 1, 1),
    "third:left": (0, 0, 1 / 3, 1), "third:right": (2 / 3, 0, 1, 1), "third:top": (0, 0, 1, 1 / 3),
    "third:bottom": (0, 2 / 3, 1, 1), "third:middle": (1 / 3, 0, 2 / 3, 1),
    "side:left": (0, 0, 1 / 3, 1), "side:right": (2 / 3, 0, 1, 1), "side:top": (0, 0, 1, 1 / 3),
    "side:bottom": (0, 2 / 3, 1, 1), "center": (0.25, 0.25, 0.75, 0.75), "whole": (0, 0, 1, 1),
}
_NOTES = {"corner": "(1/3 x 1/3 of the image)", "side": "(outer third)", "center": "(1/2 x 1/2 of the image)"}


def _ground_place(image: Image.Image, place: str, label: str) -> tuple[list[Detection], str]:
    """Candidates and a note for a place of the frame."""
    size = image.size
    if place == "sky":
        box, smask, score, how = sky_region(image)
        return [_det(box, size, label, score, smask)], how
    if place == "corners":
        keys = [k for k in _FRACTIONS if k.startswith("corner:")]
        return ([_det(_frac_box(size, *_FRACTIONS[k]), size, label, 0.5) for k in keys],
                "one of the four corners (ambiguous: all four are candidates)")
    if place == "sides":
        return ([_det(_frac_box(size, *_FRACTIONS[k]), size, label, 0.5)
                 for k in ("side:left", "side:right")], "the left and right sides (outer thirds)")
    score = 1.0 if place == "whole" else 0.9 if place.split(":")[0] in ("corner", "half", "third") else 0.7
    note = R.place_phrase(place) + (" " + _NOTES[place.split(":")[0]] if place.split(":")[0] in _NOTES else "")
    return [_det(_frac_box(size, *_FRACTIONS[place]), size, label, score)], note


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




# ----------------------------------------------------------------------------- grounding
@dataclass
class Grounding:
    """The outcome of grounding a referent: candidates with the selected one first, and how
    far to trust it."""

    detections: list[Detection]
    note: str
    method: str  # "box", "geometry", "colour", "detector", "person", "face", "text", "subject",
    #              "background", "geometry-fallback", "grounding-dino"
    referent: Referent
    ambiguous: bool = False  # several close candidates and the referent named no instance
    confidence: float = 1.0  # of the selected candidate, calibrated per method (module doc)
    plausible: int = 1  # candidates scoring within 80 % of the best
    confirm: str | None = None  # why a person must confirm the region before an edit uses it
    chosen: int = 0  # the selected candidate's place in the ordering
    figures: dict = field(default_factory=dict)

    @property
    def select(self) -> str:
        return self.referent.select or "auto"


# Calibrated confidence of each method's evidence (what fraction of its picks were the object
# the words named, on the project's scene suite): a box or a named place is what was said; the
# classical detectors and colour regions are often something else.
CONFIDENCE = {"box": 1.0, "geometry": 0.9, "colour": 0.8, "colour-specific": 0.55,
              "detector": 0.45, "geometry-fallback": 0.3}
# The shipped models' own scores are calibrated in tools/vision.py (0.5 = their threshold on the
# benchmark photos); below these an edit asks first.
MODEL_SURE = {"person": 0.6, "face": 0.6, "text": 0.6, "subject": 0.5, "background": 0.5}
SKIN_FRACTION = 0.35  # a colour region with more skin-toned pixels than this may be a person


def skin_fraction(image: Image.Image, det: Detection) -> float:
    """Fraction of a candidate's pixels (its mask, else its box) in the YCrCb skin range."""
    x0, y0, x1, y1 = det.box
    if x1 <= x0 or y1 <= y0:
        return 0.0
    crop = np.asarray(image.convert("RGB").crop((x0, y0, x1, y1)), np.uint8)
    ycc = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2YCrCb)
    cr, cb = ycc[..., 1], ycc[..., 2]
    skin = (cr >= 138) & (cr <= 175) & (cb >= 85) & (cb <= 130) & (ycc[..., 0] >= 60)
    region = np.ones(skin.shape, bool) if det.mask is None else \
        np.asarray(det.mask)[y0:y1, x0:x1] >= 0.5
    n = int(region.sum())
    return float((skin & region).sum()) / n if n else 0.0


def _colour_candidates(image: Image.Image, ref: Referent, within: tuple[int, int, int, int] | None
                       ) -> list[Detection]:
    size = image.size
    spec = colour_spec(ref.colour or "")
    limit = max(12, (abs(ref.ordinal) + 2) if ref.ordinal else 0)
    label = ref.detector_text()
    if within is None:
        return [_det(r.box, size, label, r.score, r.mask)
                for r in colour_regions(image, spec, max_regions=limit)]
    x0, y0, x1, y1 = within
    out = []
    for r in colour_regions(image.crop(within), spec, max_regions=limit, min_area_frac=0.01):
        m = np.zeros((size[1], size[0]), np.float32)
        m[y0:y1, x0:x1] = r.mask
        bx = (r.box[0] + x0, r.box[1] + y0, r.box[2] + x0, r.box[3] + y0)
        out.append(_det(bx, size, label, r.score, m))
    return out


# Words the small shipped models find (tools/vision.py): a word -> (class, plural). Possessive
# determiners ("her face") are not people; "her" alone is. The classical detectors keep the
# classes no shipped model covers (cats, eyes, licence plates), always asking before an edit.
VISION_WORDS: dict[str, tuple[str, bool]] = {}
for _cls, _plural, _words in (
        ("person", False, "person man woman boy girl child kid human pedestrian guy lady gentleman "
                          "figure body someone somebody individual adult baby toddler teenager "
                          "her him he she"),
        ("person", True, "persons people men women boys girls children kids humans pedestrians "
                         "guys ladies gentlemen figures everyone everybody adults them they"),
        ("face", False, "face head"),
        ("face", True, "faces heads"),
        ("text", False, "caption subtitle title watermark signature stamp timestamp datestamp "
                        "inscription copyright"),
        # mass nouns: "the text" is all of it
        ("text", True, "text writing lettering words letters captions subtitles titles watermarks "
                       "texts"),
        ("subject", False, "subject foreground"),
        ("background", False, "background backdrop bg"),
):
    for _w in _words.split():
        VISION_WORDS[_w] = (_cls, _plural)
POSSESSIVES = frozenset("her his their its my your our".split())
# the head noun comes before these: "the guy with the camera" is a guy, "the cup on the table" a cup
PREPOSITIONS = frozenset("with on in of at near by from holding wearing behind under over next "
                         "beside inside above below carrying".split())
CLASS_WHAT = {"person": "person", "face": "face", "text": "text", "subject": "main subject",
              "background": "background"}


def noun_class(noun: str | None) -> tuple[str, str, bool] | None:
    """(class, the word that named it, plural) for a noun phrase: a class of the shipped models
    (VISION_WORDS) or a classical detector kind; None when neither covers it. The head word wins
    ("the woman's face" is a face, "her face" too); possessive words own, they don't name."""
    if not noun:
        return None
    words = [w.lower().strip(".,!?;:") for w in noun.split()]
    words = [w[:-2] if w.endswith("'s") else w for w in words]
    cut = next((i for i, w in enumerate(words) if w in PREPOSITIONS and i > 0), len(words))
    words = words[:cut]
    heads = [w for i, w in enumerate(words) if not (w in POSSESSIVES and i < len(words) - 1)]
    # a possessor ("the woman's face") names whose; the last class word is the thing itself
    for w in reversed(heads):
        if w in VISION_WORDS:
            cls, plural = VISION_WORDS[w]
            return cls, w, plural
        kind = detectors.WORDS.get(w)
        if kind in ("cat", "eye", "plate"):
            return kind, w, False
    return None


def _union(dets: list[Detection], size: tuple[int, int], label: str) -> Detection:
    """One detection covering several (their masks, or their boxes, joined)."""
    m = np.zeros((size[1], size[0]), np.float32)
    for d in dets:
        m = M.union(m, mask_from_detection(d, size))
    return _det(M.mask_bbox(m) or (0, 0, *size), size, label, min(d.score for d in dets), m)


TEXT_MIN_ASPECT = 1.8  # a line of several characters is wider than tall; eyes, stars, knobs are not


def _text_blocks(image: Image.Image, label: str) -> tuple[list[tuple[Detection, float]], int]:
    """Text lines from the PP-OCR detector, joined into blocks (lines a line-height apart), each
    with its mask grown in proportion to the text height. Returns ((block, line height) pairs,
    shapes dropped):
    a single box that is not wider than tall is dropped as a likely non-text blob."""
    from imagent.tools import vision as V

    size = image.size
    boxes = V.text_boxes(image)
    lines = [b for b in boxes if (b.box[2] - b.box[0]) >= TEXT_MIN_ASPECT * max(1.0, b.height)]
    dropped = len(boxes) - len(lines)
    groups: list[list] = []
    for b in lines:
        for g in groups:
            if any(_near_line(b, o) for o in g):
                g.append(b)
                break
        else:
            groups.append([b])
    out = []
    for g in groups:
        m = V.text_mask(size, g)
        box = M.mask_bbox(m)
        if box is None:
            continue
        out.append((_det(box, size, label, float(np.mean([b.score for b in g])), m),
                    float(np.median([b.height for b in g]))))
    out.sort(key=lambda dh: -dh[0].score)
    return out, dropped


def _colour_share(colour: np.ndarray, det: Detection) -> float:
    """Fraction of a text block's pixels in the colour: strokes are a minority of the block."""
    m = np.asarray(det.mask) >= 0.5 if det.mask is not None else None
    if m is None or not m.any():
        return 0.0
    return float((np.asarray(colour) > 0)[m].mean())


def _near_line(a, b) -> bool:
    """Two text lines of one block: overlapping or within a line height of each other."""
    hgt = max(a.height, b.height, 1.0)
    ax0, ay0, ax1, ay1 = a.box
    bx0, by0, bx1, by1 = b.box
    gap_x = max(0, max(ax0, bx0) - min(ax1, bx1))
    gap_y = max(0, max(ay0, by0) - min(ay1, by1))
    return gap_x <= 1.5 * hgt and gap_y <= 1.0 * hgt


def _vision_candidates(image: Image.Image, ref: Referent, cls: str, word: str, plural: bool
                       ) -> tuple[list[Detection], str, str, str]:
    """Candidates of a class the shipped models find (tools/vision.py)."""
    from imagent.tools import vision as V

    size = image.size
    label = ref.detector_text()
    if cls == "person":
        found = V.people(image)
        dets = [_det(p.box, size, label, p.score, p.mask) for p in found]
        note = (f"{len(dets)} person(s): a face found by BlazeFace, the person's outline by "
                "selfie segmentation")
    elif cls == "face":
        found = V.faces(image)
        dets = []
        for f in found:
            hb = V.head_box(f, size)
            dets.append(_det(hb, size, label, f.score, M.box_mask(size, hb, shape="ellipse")))
        note = f"{len(dets)} face(s) found by BlazeFace, grown to the head"
    elif cls == "text":
        blocks, dropped = _text_blocks(image, label)
        dets = [d for d, _ in blocks]
        heights = {id(d): hgt for d, hgt in blocks}
        note = (f"{len(dets)} block(s) of text found by the PP-OCR text detector"
                + (f" ({dropped} blob(s) not shaped like a line of text left out)" if dropped else ""))
        found = dets
        if ref.colour is not None and dets:
            spec = colour_spec(ref.colour)
            cm = colour_mask(image, spec)
            coloured = [d for d in dets if _colour_share(cm, d) >= 0.08]
            note += f"; {len(coloured)} of them {ref.colour}"
            dets = found = coloured
    else:  # subject / background
        mask, conf = V.main_subject(image)
        if cls == "background":
            mask = 1.0 - mask
        box = M.mask_bbox(mask)
        dets = [] if box is None else [_det(box, size, label, float(conf), mask.astype(np.float32))]
        note = (f"the {CLASS_WHAT[cls]}: person/subject segmentation and saliency, refined by GrabCut"
                f" (confidence {conf:.2f})")
    # a caption and a title, or a line of text and a row of flag stars, are not one "the text":
    # text blocks join only when their line heights are within a factor of two
    if plural and len(dets) > 1 and (cls != "text" or max(heights[id(d)] for d in dets)
                                     <= 2.0 * min(heights[id(d)] for d in dets)):
        dets = [_union(dets, size, label)]
        note += f"; all {len(found) if cls != 'text' else 'of them'} together"
    return dets, note, cls, f"a {word}"


def _object_candidates(image: Image.Image, ref: Referent
                       ) -> tuple[list[Detection], str, str, str] | None:
    """Candidates from the shipped models, the classical detectors or colour segmentation, or
    None when the referent names none of them. Returns (candidates, note, method,
    what-was-looked-for)."""
    size = image.size
    named = noun_class(ref.noun)
    if named is not None and named[0] in CLASS_WHAT:
        return _vision_candidates(image, ref, *named)
    if named is not None:
        k, word, _ = named
        if not detectors.available():
            raise GroundingError(
                f"cannot find {ref.text or ref.describe()!r}: this OpenCV build has no classical "
                "detectors", hint="install opencv-contrib-python-headless (imagent's dependency), "
                                  "or use the grounding model (GroundingDINO, `--profile models`)")
        raw = detectors.detect(image, k)
        label = ref.detector_text()
        dets = [_det(r.box, size, label, r.score) for r in raw]
        srcs = sorted({r.source for r in raw})
        note = (f"{len(dets)} {detectors.CASCADES[k][1]}(s) found by the classical detectors"
                + (f" ({', '.join(srcs)})" if srcs else ""))
        if ref.colour is not None and dets:
            note += f"; the colour {ref.colour!r} is not used to filter detector results"
        return dets, note, "detector", f"a {word}"
    if ref.colour is not None:
        dets = _colour_candidates(image, ref, None)
        return dets, (f"{len(dets)} {ref.colour} region(s) by colour segmentation (Lab hue/chroma, "
                      f"ranked by size and saliency)"), "colour", f"anything {ref.colour}"
    return None


def _in_place(d: Detection, place: Detection) -> bool:
    cx, cy = (d.box[0] + d.box[2]) / 2.0, (d.box[1] + d.box[3]) / 2.0
    x0, y0, x1, y1 = place.box
    return x0 <= cx < x1 and y0 <= cy < y1


def _plausible(dets: list[Detection], share: float = 0.8) -> int:
    """Candidates scoring within ``share`` of the best."""
    if not dets:
        return 0
    best = max(d.score for d in dets)
    return sum(1 for d in dets if d.score >= share * best)


# ----------------------------------------------------------------------------- pointing
# The explicit branch of ground_full (a user's box, point or mask selection, tools/selection.py):
# a region is used as given; a box is refined to the object inside it when the referent names
# one ("this" read as "object", "the cup"); a point becomes the region under it. GrabCut runs
# with a fixed RNG seed (masks.grabcut_refine), so a replay reproduces it bit for bit.
AREA_NOUNS = frozenset("selection selected area region part spot patch place bit box zone "
                       "pixels".split())
REFINE_RANGE = (0.05, 0.95)  # a refined box mask is kept when it covers this share of the box
POINT_AREA = (0.0005, 0.5)  # a clear region under a point covers this share of the image
POINT_TOLERANCE = 12  # Lab units from the clicked colour (fixed-range flood fill)
POINT_EDGE, POINT_EDGE_SUPPORT = 80.0, 0.9  # a clear region's outline: Sobel magnitude, share


def _refines(ref: Referent) -> bool:
    """A box with an object word (not only area words) is refined to the object inside it."""
    return bool(ref.noun) and not all(w in AREA_NOUNS for w in ref.noun.split())


def _component_at(mask: np.ndarray, x: int | None = None, y: int | None = None) -> np.ndarray:
    """The connected part of ``mask`` containing (x, y), else its largest part."""
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return mask.astype(bool)
    if x is not None and y is not None and labels[y, x] > 0:
        return labels == labels[y, x]
    return labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))


def refine_box(image: Image.Image, box: tuple[int, int, int, int]) -> tuple[np.ndarray | None, float]:
    """The object inside ``box`` by GrabCut: (bool mask, its share of the box), or (None,
    share) when the result is no sensible object (outside ``REFINE_RANGE``)."""
    x0, y0, x1, y1 = box
    area = max(1, (x1 - x0) * (y1 - y0))
    fg = M.grabcut_refine(image, M.box_mask(image.size, box), iterations=5) >= 0.5
    fg = _component_at(fg)
    share = float(fg[y0:y1, x0:x1].sum()) / area
    if not fg.any() or not REFINE_RANGE[0] <= share <= REFINE_RANGE[1]:
        return None, share
    return fg, share


def region_at_point(image: Image.Image, x: int, y: int) -> tuple[np.ndarray | None, str, bool]:
    """The region under a point: (bool mask or None, note, clear).

    First the colour-homogeneous segment containing it (a fixed-range flood fill in Lab);
    when that is a clear region (``POINT_AREA`` of the image) it is the answer. Otherwise
    GrabCut seeded with a square around the point gives a best guess, marked unclear (the
    caller asks before using it)."""
    w, h = image.size
    rgb = np.ascontiguousarray(np.asarray(image.convert("RGB"), np.uint8))
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)
    ff = np.zeros((h + 2, w + 2), np.uint8)
    tol = (POINT_TOLERANCE,) * 3
    cv2.floodFill(lab, ff, (int(x), int(y)), (0, 0, 0), tol, tol,
                  4 | cv2.FLOODFILL_FIXED_RANGE | cv2.FLOODFILL_MASK_ONLY | (1 << 8))
    seg = ff[1:-1, 1:-1] > 0
    seg = cv2.morphologyEx(seg.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8)) > 0
    seg = _component_at(seg, x, y)
    share = float(seg.mean())
    support = _edge_support(lab, seg)
    if POINT_AREA[0] <= share <= POINT_AREA[1] and support >= POINT_EDGE_SUPPORT:
        return seg, f"the colour-homogeneous region under the point {x},{y} ({share:.1%} of the image)", True
    side = max(8, int(round(min(w, h) * 0.35)))
    bx0, by0 = max(0, x - side // 2), max(0, y - side // 2)
    rough = np.zeros((h, w), np.float32)
    rough[by0:min(h, by0 + side), bx0:min(w, bx0 + side)] = 1.0
    fg = M.grabcut_refine(image, rough, iterations=5) >= 0.5
    if not fg[y, x]:  # GrabCut left the point out: the colour region is the best guess
        if POINT_AREA[0] <= share <= POINT_AREA[1]:
            return seg, (f"the colour region under the point {x},{y} ({share:.1%} of the image, "
                         f"{support:.0%} of its outline on a clear edge: unclear)"), False
        return None, f"no region found under the point {x},{y}", False
    fg = _component_at(fg, x, y)
    return fg, (f"GrabCut around the point {x},{y} (the colour region under it covers "
                f"{share:.1%} of the image, {support:.0%} of its outline on a clear edge: "
                f"unclear)"), False


def _edge_support(lab: np.ndarray, seg: np.ndarray) -> float:
    """The share of a region's outline (inside the image) that lies on a strong colour edge:
    near 1 for a flat-coloured shape, lower where a flood fill stopped inside shading."""
    grad = np.zeros(seg.shape, np.float32)
    smooth = cv2.GaussianBlur(lab, (3, 3), 0).astype(np.float32)
    for c in range(3):
        grad = np.maximum(grad, np.hypot(cv2.Sobel(smooth[..., c], cv2.CV_32F, 1, 0, ksize=3),
                                         cv2.Sobel(smooth[..., c], cv2.CV_32F, 0, 1, ksize=3)))
    grad = cv2.dilate(grad, np.ones((5, 5), np.uint8))
    ring = (cv2.dilate(seg.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0) & ~seg
    ring[0, :] = ring[-1, :] = False
    ring[:, 0] = ring[:, -1] = False
    if not ring.any():
        return 0.0
    return float((grad[ring] > POINT_EDGE).mean())


def _ground_region(image: Image.Image, ref: Referent) -> Grounding:
    """An explicit mask region (a user's mask, or the previous edit's for "the same area"):
    used as given; with a colour, that colour's part of it."""
    size = image.size
    try:
        region = R.decode_region(ref.region or "", size)
    except ToolArgumentError as exc:
        raise GroundingError(f"the selected region does not fit this image: {exc.message}",
                             hint="select again on the current image") from None
    if not region.any():
        raise GroundingError("the selected region is empty", hint="select an area with something in it")
    box = M.mask_bbox(region)
    if ref.colour is not None:
        dets = []
        for d in _colour_candidates(image, ref, box):
            m = (np.asarray(d.mask) >= 0.5) & region
            if m.any():
                dets.append(_det(M.mask_bbox(m), size, d.label, d.score, m.astype(np.float32)))
        if dets:
            dets, i = R.pick(dets, ref.model_copy(update={"select": "largest", "ordinal": None}), size)
            return Grounding(dets, f"{len(dets)} {ref.colour} region(s) inside the selected region",
                             "colour", ref, confidence=CONFIDENCE["box"], chosen=i)
    return Grounding([_det(box, size, ref.label, 1.0, region.astype(np.float32))],
                     f"the selected region ({int(region.sum())} pixels)", "region", ref)


def ground_full(image: Image.Image, target: Referent | str, *, select: str = "auto",
                index: int = 0) -> Grounding:
    """Ground a referent (or a phrase, parsed once here): every candidate, the selected one
    first, how, and how sure. ``select``/``index`` override the referent's instance choice."""
    ref = target if isinstance(target, Referent) else R.parse(target)
    if select != "auto" or index:
        ref = Args(referent=ref, select=select, index=index).target()
    size = image.size
    w, h = size
    shown = ref.text or ref.describe()
    if ref.region is not None:
        return _ground_region(image, ref)
    if ref.box is not None:
        try:
            box = M.check_box(list(ref.box), size)
        except ToolArgumentError:
            raise GroundingError(f"the box {list(ref.box)} in {shown[:80]!r} lies outside the "
                                 f"{w}x{h} image", hint=f"coordinates run from 0,0 to {w},{h}") from None
        clipped = tuple(box) != tuple(ref.box)
        note = "explicit box" + (" (clipped to the image)" if clipped else "")
        if ref.colour is not None:
            dets = _colour_candidates(image, ref, box)
            if dets:
                # the box is the instance: the largest region of the colour inside it
                dets, i = R.pick(dets, ref.model_copy(update={"select": "largest", "ordinal": None}), size)
                return Grounding(dets, f"{len(dets)} {ref.colour} region(s) inside the {note}",
                                 "colour", ref, confidence=CONFIDENCE["box"], chosen=i)
            note += f"; no {ref.colour} region inside it, so the whole box"
        elif _refines(ref):  # "remove this" on a box: the object inside it, when GrabCut finds one
            fg, share = refine_box(image, box)
            if fg is not None:
                return Grounding([_det(M.mask_bbox(fg), size, ref.label, 1.0, fg.astype(np.float32))],
                                 f"the object inside the {note} (GrabCut: {share:.0%} of the box)",
                                 "grabcut", ref, confidence=CONFIDENCE["box"],
                                 figures={"refined_share": round(share, 3)})
            note += f"; GrabCut found no clear object in it ({share:.0%}), so the whole box"
        return Grounding([_det(box, size, ref.label, 1.0)], note, "box", ref)
    if ref.points:
        x, y = ref.points[0]
        if not (0 <= x < w and 0 <= y < h):
            raise GroundingError(f"the point {x},{y} lies outside the {w}x{h} image",
                                 hint=f"coordinates run from 0,0 to {w - 1},{h - 1}")
        if ref.colour is not None:
            hits = [d for d in _colour_candidates(image, ref, None)
                    if d.mask is not None and d.mask[y, x] >= 0.5]
            if hits:
                return Grounding(hits[:1], f"the {ref.colour} region under the point {x},{y}",
                                 "colour", ref, confidence=CONFIDENCE["box"])
        seg, how, clear = region_at_point(image, x, y)
        if seg is None:
            raise GroundingError(
                f"cannot tell which region the point {x},{y} is on offline",
                hint="give a box around the object ('box x0,y0,x1,y1'), or a colour with the point "
                     "('the red region at point x,y'); the segmentation model (SAM, `--profile "
                     "models`) turns a point into an object mask")
        g = Grounding([_det(M.mask_bbox(seg), size, ref.label, 1.0 if clear else 0.4,
                            seg.astype(np.float32))], how, "point", ref,
                      confidence=CONFIDENCE["box"] if clear else 0.4)
        if not clear:
            g.confirm = f"the region under the point {x},{y} is unclear; this is my best guess"
        return g

    place = ref.place
    # "the writing in the sky" is text, looked for inside the sky; "the sky" alone is a place
    objects = None if place == "sky" and noun_class(ref.noun) is None else _object_candidates(image, ref)
    if objects is not None:
        dets, note, method, what = objects
        keep_order = False
        pick_ref = ref
        if dets and place is not None and place != "whole":
            pdets, pnote = _ground_place(image, place, ref.label)
            if place.startswith("side:") or place == "sides":
                # "the person on the left": a side picks the instance, it does not crop
                if ref.select is None and place.startswith("side:"):
                    pick_ref = ref.model_copy(update={"select": place[5:]})
                note += f"; {pnote.split(' (')[0]} selects among them"
            else:
                inside = [d for d in dets if any(_in_place(d, p) for p in pdets)]
                if inside:
                    note += f"; {len(inside)} inside {pnote.split(' (')[0]}"
                    dets = sorted(inside, key=lambda d: -d.score) + [d for d in dets if d not in inside]
                    if ref.select is None and ref.ordinal is None:
                        keep_order = True
                else:
                    pc = ((pdets[0].box[0] + pdets[0].box[2]) / 2.0, (pdets[0].box[1] + pdets[0].box[3]) / 2.0)
                    dets = sorted(dets, key=lambda d: ((d.box[0] + d.box[2]) / 2 - pc[0]) ** 2 +
                                  ((d.box[1] + d.box[3]) / 2 - pc[1]) ** 2)
                    note += f"; none inside {pnote.split(' (')[0]}, nearest first"
                    keep_order = ref.select is None and ref.ordinal is None
        if dets:
            if keep_order:
                ordered, chosen = dets, 0
            else:
                ordered, chosen = R.pick(dets, pick_ref, size)
            return _calibrate(image, ordered, note, method, pick_ref, chosen,
                              named_instance=pick_ref.has_instance or keep_order)
        if place is not None:
            return _place_fallback(image, ref, place, what.split(" ", 1)[1])
        raise GroundingError(
            f"cannot find {shown!r}: the offline detectors found no "
            f"{what.split(' ', 1)[1]} in the {w}x{h} image",
            hint="the grounding model (GroundingDINO, `--profile models`) finds objects the "
                 "offline models (people, faces, text, cats, eyes, licence plates, colours) "
                 "miss; offline, name a place such as 'the top-left corner', point at it "
                 "(--box x0,y0,x1,y1 or --point x,y) or give a box 'box x0,y0,x1,y1'")
    if place is not None:
        if ref.noun:  # "the flag in the top-left corner": no offline grounding knows flags
            return _place_fallback(image, ref, place, ref.noun)
        pdets, pnote = _ground_place(image, place, ref.label)
        ordered, chosen = R.pick(pdets, ref, size) if len(pdets) > 1 else (pdets, 0)
        g = Grounding(ordered, pnote, "geometry", ref, confidence=min(1.0, ordered[0].score + 0.1),
                      plausible=_plausible(ordered), chosen=chosen)
        g.ambiguous = g.plausible > 1 and not ref.has_instance
        if place == "sky" and ordered[0].score <= 0.3:
            g.confirm = "no sky-coloured region above a clear horizon was found"
        return g
    raise GroundingError(
        f"cannot find {shown!r}: the offline grounding understands places, colours, people, "
        f"faces, text, the main subject and the background, cats, eyes and licence plates, "
        f"not this",
        hint="point at it: --box x0,y0,x1,y1 or --point x,y (in the chat, drag a box or click "
             "on the image) with 'remove this'; or name a place ('the top-left corner', 'the "
             "left half', 'the sky') or a colour ('the red car'); finding other objects by name "
             "needs the grounding model (GroundingDINO, `--profile models`)")


def _place_fallback(image: Image.Image, ref: Referent, place: str, missing: str) -> Grounding:
    """A place standing in for an object the offline grounding cannot find: low scores, and a
    person must confirm before the whole place changes."""
    pdets, pnote = _ground_place(image, place, ref.label)
    for d in pdets:
        d.score = min(d.score, 0.4)
    return Grounding(pdets, f"{pnote} — no {missing} was found offline", "geometry-fallback", ref,
                     confidence=CONFIDENCE["geometry-fallback"], plausible=len(pdets),
                     confirm=f"I cannot find the {missing} offline, only the place "
                             f"{R.place_phrase(place)!r}; the whole of it would change")


def _calibrate(image: Image.Image, ordered: list[Detection], note: str, method: str,
               ref: Referent, chosen: int, *, named_instance: bool) -> Grounding:
    """Confidence, plausible count, ambiguity and the reason to confirm, for object evidence."""
    # colour scores mix size and saliency: a smaller region of the same colour is still a
    # plausible referent ("the yellow dot" among dots of several sizes)
    plausible = _plausible(ordered, 0.5 if method in ("colour", "person", "face", "text") else 0.8)
    ambiguous = len(ordered) > 1 and plausible > 1 and not named_instance
    first = ordered[0]
    figures: dict = {}
    confirm = None
    if method == "detector":
        confidence = min(CONFIDENCE["detector"], first.score)
        confirm = (f"the classical {first.label} detector is often wrong"
                   + (f" ({len(ordered)} candidates)" if len(ordered) > 1 else ""))
    elif method == "colour":
        skin = round(skin_fraction(image, first), 3)
        figures["skin_fraction"] = skin
        specific = not ref.generic_noun
        confidence = CONFIDENCE["colour-specific" if specific else "colour"]
        x0, y0, x1, y1 = first.box
        box_area = max(1, (x1 - x0) * (y1 - y0))
        fill = float((np.asarray(first.mask)[y0:y1, x0:x1] >= 0.5).sum()) / box_area \
            if first.mask is not None else 1.0
        area = box_area / float(image.width * image.height)
        figures.update(fill=round(fill, 3), area_fraction_box=round(area, 4))
        if skin > SKIN_FRACTION:
            confirm = f"the {ref.colour} region I found looks like skin"
            confidence = min(confidence, 0.3)
        elif fill < 0.4 or area > 0.3:
            confirm = (f"the {ref.colour} region I found is " +
                       (f"large ({area:.0%} of the image)" if area > 0.3 else
                        f"irregular ({fill:.0%} of its box)") + ", not one compact object")
            confidence = min(confidence, 0.4)
        elif specific and len(ordered) > 1:
            confirm = (f"colour alone cannot tell which of {len(ordered)} {ref.colour} regions is "
                       f"the {ref.noun}")
    elif method in MODEL_SURE:
        confidence = float(first.score)
        if confidence < MODEL_SURE[method]:
            confirm = (f"the {CLASS_WHAT[method]} I found is uncertain (score {confidence:.2f})"
                       if method not in ("subject", "background") else
                       f"the photo has no clear main subject (confidence {confidence:.2f})")
    else:
        confidence = float(first.score)
    return Grounding(ordered, note, method, ref, ambiguous=ambiguous, confidence=round(confidence, 3),
                     plausible=plausible, confirm=confirm, chosen=chosen, figures=figures)


def ground(image: Image.Image, phrase: str | Referent, *, select: str = "auto",
           index: int = 0) -> tuple[list[Detection], str]:
    """Detections for ``phrase`` with the selected one first, and a note."""
    g = ground_full(image, phrase, select=select, index=index)
    return g.detections, g.note


def ground_with_model(manager, image: Image.Image, ref: Referent, *, box_threshold: float = 0.35,
                      text_threshold: float = 0.25, info: dict | None = None) -> Grounding:
    """Ground a referent with GroundingDINO: the model gets ``ref.detector_text()``; the
    referent's place and instance words choose among its boxes, as in the embedded grounding."""
    from imagent.tools.backends import grounding_dino as GD

    info = info if info is not None else {}
    size = image.size
    dets = GD.ground(manager, image, ref.detector_text(), box_threshold=box_threshold,
                     text_threshold=text_threshold, info=info)
    pick_ref = ref
    if ref.place and ref.select is None:
        if ref.place.startswith("side:"):
            pick_ref = ref.model_copy(update={"select": ref.place[5:]})
        elif ref.place.startswith("corner:"):
            pick_ref = ref.model_copy(update={"select": ref.place})
        elif ref.place == "center":
            pick_ref = ref.model_copy(update={"select": "center"})
    ordered, chosen = R.pick(dets, pick_ref, size)
    if ref.place:
        info["place"] = ref.place
    info["select"] = pick_ref.select or "auto"
    explicit = pick_ref.has_instance or bool(ref.place)
    plausible = _plausible(ordered)
    note = (f"GroundingDINO ({info.get('text', ref.detector_text())!r}: {len(ordered)} candidate(s) "
            f"after NMS" + (f", place {ref.place!r}" if ref.place else "") + ")")
    return Grounding(ordered, note, "grounding-dino", pick_ref,
                     ambiguous=len(ordered) > 1 and plausible > 1 and not explicit,
                     confidence=round(float(ordered[0].score), 3), plausible=plausible, chosen=chosen)


def _use_model(args: Args, ref: Referent, state: ToolState) -> bool:
    from imagent.tools.backends import resolve_backend

    return resolve_backend(NAME, args.backend, state, prefer_model=ref.box is None and ref.names_object,
                           what=f"backend={args.backend!r} ({ref.describe()!r})") != "embedded"


def run(args: Args, state: ToolState) -> ToolResult:
    ref = args.target()
    if _use_model(args, ref, state):
        return _run_model(args, ref, state)
    res = _result(ground_full(state.image, ref), state)
    res.extra["resolved_args"] = {"referent": ref.to_args(), "backend": "embedded"}
    return res


def _run_model(args: Args, ref: Referent, state: ToolState) -> ToolResult:
    mgr = state.models
    info: dict = {}
    g = ground_with_model(mgr, state.image, ref, box_threshold=args.box_threshold,
                          text_threshold=args.text_threshold, info=info)
    res = _result(g, state)
    res.model_ids = {"grounding": mgr.model_id("grounding")}
    res.metrics.update({k: v for k, v in info.items() if k in ("text", "place", "raw_boxes",
                                                               "after_nms")})
    res.extra["resolved_args"] = {"backend": "grounding-dino", "referent": ref.to_args()}
    return res


def _result(g: Grounding, state: ToolState) -> ToolResult:
    dets = g.detections
    first = dets[0]
    w, h = state.image.size
    x0, y0, x1, y1 = first.box
    msg = f"found {first.label!r} as {g.note}: box {list(first.box)}"
    if len(dets) > 1:
        msg += f" ({len(dets)} candidates, selected by {g.select!r}" + \
               (f", the {R.ordinal_word(g.chosen + 1)}" if g.chosen else "") + ")"
        if g.ambiguous:
            msg += "; ambiguous: say which one (e.g. 'the one on the left', 'the largest')"
    if g.confirm:
        msg += f"; unsure: {g.confirm}"
    backend = "grounding-dino" if g.method == "grounding-dino" else "embedded"  # detail: method
    res = ToolResult(detections=dets, message=msg, backend=backend,
                     metrics={"candidates": len(dets), "ambiguous": g.ambiguous,
                              "method": g.method, "select": g.select, "index": g.chosen,
                              "score": round(first.score, 3), "confidence": g.confidence,
                              "plausible": g.plausible, "confirm": g.confirm,
                              "area_fraction": round((x1 - x0) * (y1 - y0) / float(w * h), 4),
                              **g.figures})
    res.extra["grounding"] = g
    return res
