"""Colour words: names -> a perceptual description, and colour segmentation of an image.

Segmentation works in CIE Lab (OpenCV's 8-bit Lab, rescaled to L in 0..100 and a/b
centred on 0): a chromatic colour is a hue sector (the angle of (a, b)) with a
minimum chroma; white/black/grey/brown/... are bands of lightness and chroma. The
selected pixels are cleaned (open/close), split into connected components and each
component is scored by its size and its saliency (how far its mean colour lies from
the image's mean colour). ``ToolArgumentError`` for a colour word it does not know.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from imagent.errors import ToolArgumentError


@dataclass(frozen=True)
class ColourSpec:
    """A colour class. Hue in degrees of the Lab (a, b) angle; None = achromatic band."""

    name: str
    hue: float | None = None  # centre of the hue sector, degrees
    width: float = 30.0  # half-width of the sector, degrees
    min_chroma: float = 18.0
    l_min: float = 0.0
    l_max: float = 100.0
    max_chroma: float | None = None  # for achromatic classes


# Hue angles of the Lab (a, b) plane measured on sRGB primaries/secondaries:
# red ~36, orange ~64, yellow ~97, green ~138, cyan ~205, sky blue ~260, blue ~300, navy ~306,
# purple ~328, pink ~355.
COLOURS: dict[str, ColourSpec] = {
    "red": ColourSpec("red", 35, 22, 28, 15, 75),
    "orange": ColourSpec("orange", 62, 14, 28, 35, 90),
    "yellow": ColourSpec("yellow", 95, 18, 28, 55, 100),
    "green": ColourSpec("green", 140, 35, 15, 10, 95),
    "cyan": ColourSpec("cyan", 200, 22, 15, 35, 100),
    "blue": ColourSpec("blue", 280, 32, 18, 5, 90),
    "purple": ColourSpec("purple", 326, 14, 20, 5, 80),
    "pink": ColourSpec("pink", 355, 15, 18, 55, 100),
    "brown": ColourSpec("brown", 55, 25, 10, 10, 50),
    "white": ColourSpec("white", None, l_min=85, max_chroma=12),
    "black": ColourSpec("black", None, l_max=20, max_chroma=15),
    "grey": ColourSpec("grey", None, l_min=25, l_max=80, max_chroma=8),
}
ALIASES = {"gray": "grey", "violet": "purple", "magenta": "pink", "turquoise": "cyan",
           "teal": "cyan", "crimson": "red", "scarlet": "red", "navy": "blue", "golden": "yellow",
           "gold": "yellow", "silver": "grey", "beige": "brown", "tan": "brown",
           "reddish": "red", "bluish": "blue", "greenish": "green", "yellowish": "yellow",
           "whitish": "white", "blackish": "black", "greyish": "grey", "grayish": "grey",
           "pinkish": "pink", "purplish": "purple", "orangish": "orange", "brownish": "brown"}
_WORDS = sorted(set(COLOURS) | set(ALIASES), key=len, reverse=True)
RE_COLOUR = re.compile(r"\b(" + "|".join(_WORDS) + r")\b")


def colour_spec(word: str) -> ColourSpec:
    key = word.strip().lower()
    key = ALIASES.get(key, key)
    try:
        return COLOURS[key]
    except KeyError:
        raise ToolArgumentError(f"unknown colour {word!r}",
                                hint="known colours: " + ", ".join(COLOURS)) from None


def find_colour_word(text: str) -> tuple[str, tuple[int, int]] | None:
    """The first colour word in ``text`` (canonical name, span) or None."""
    m = RE_COLOUR.search(text.lower())
    if not m:
        return None
    return ALIASES.get(m.group(1), m.group(1)), m.span()


def lab(image: Image.Image | np.ndarray) -> np.ndarray:
    """float32 H x W x 3 Lab with L in 0..100 and a, b centred on 0 (about -128..127)."""
    arr = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image,
                     dtype=np.uint8)
    out = cv2.cvtColor(np.ascontiguousarray(arr), cv2.COLOR_RGB2LAB).astype(np.float32)
    out[..., 0] *= 100.0 / 255.0
    out[..., 1:] -= 128.0
    return out


def colour_mask(image: Image.Image, spec: ColourSpec) -> np.ndarray:
    """bool H x W: pixels of that colour class."""
    L = lab(image)
    li, a, b = L[..., 0], L[..., 1], L[..., 2]
    chroma = np.hypot(a, b)
    band = (li >= spec.l_min) & (li <= spec.l_max)
    if spec.hue is None:
        return band & (chroma <= float(spec.max_chroma or 10.0))
    hue = np.degrees(np.arctan2(b, a)) % 360.0
    d = np.abs((hue - spec.hue + 180.0) % 360.0 - 180.0)
    return band & (chroma >= spec.min_chroma) & (d <= spec.width)


@dataclass
class ColourRegion:
    box: tuple[int, int, int, int]
    mask: np.ndarray  # float32 H x W
    area: int
    score: float


def colour_regions(image: Image.Image, spec: ColourSpec, *, min_area_frac: float = 0.0008,
                   max_regions: int = 12) -> list[ColourRegion]:
    """Connected regions of the colour, largest/most salient first.

    Components smaller than ``min_area_frac`` of the image (and than 4 px) are noise.
    score = 0.5 * size term + 0.5 * saliency term, both in [0, 1]:
    size = sqrt(area / largest area); saliency = colour distance of the region's
    mean from the image mean, over 60 Lab units (capped at 1).
    """
    w, h = image.size
    sel = colour_mask(image, spec).astype(np.uint8)
    if min(w, h) >= 8:
        k = np.ones((3, 3), np.uint8)
        sel = cv2.morphologyEx(sel, cv2.MORPH_OPEN, k)
        sel = cv2.morphologyEx(sel, cv2.MORPH_CLOSE, k)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(sel, connectivity=8)
    min_area = max(4, int(math.ceil(min_area_frac * w * h))) if w * h >= 64 else 1
    comps = [(i, int(stats[i, cv2.CC_STAT_AREA])) for i in range(1, n)
             if stats[i, cv2.CC_STAT_AREA] >= min_area]
    if not comps:
        return []
    comps.sort(key=lambda t: -t[1])
    comps = comps[: max_regions]
    L = lab(image)
    mean_all = L.reshape(-1, 3).mean(axis=0)
    biggest = comps[0][1]
    out = []
    for i, area in comps:
        m = labels == i
        x, y, bw, bh = (int(stats[i, k]) for k in (cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP,
                                                   cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT))
        mean = L[m].mean(axis=0)
        sal = min(1.0, float(np.linalg.norm(mean - mean_all)) / 60.0)
        size = math.sqrt(area / biggest)
        # fill holes inside the component (a car's windows are not red but are the car)
        filled = _fill_holes(m.astype(np.uint8))
        out.append(ColourRegion(box=(x, y, x + bw, y + bh), mask=filled.astype(np.float32),
                                area=area, score=round(0.5 * size + 0.5 * sal, 4)))
    out.sort(key=lambda r: -r.score)
    return out


def _fill_holes(binary: np.ndarray) -> np.ndarray:
    """Fill the holes of a uint8/bool mask (background not reachable from the border)."""
    b = (np.asarray(binary) > 0).astype(np.uint8)
    h, w = b.shape
    if h < 3 or w < 3 or not b.any():
        return b.astype(bool)
    pad = np.zeros((h + 2, w + 2), np.uint8)
    pad[1:-1, 1:-1] = b
    ff = pad.copy()
    mask = np.zeros((h + 4, w + 4), np.uint8)
    cv2.floodFill(ff, mask, (0, 0), 1)
    holes = ff[1:-1, 1:-1] == 0
    return (b > 0) | holes


def target_lab(color: str) -> tuple[float, float, float]:
    """Lab (L 0..100, a, b) of a CSS colour name or #hex (for recolouring)."""
    from PIL import ImageColor

    try:
        rgb = ImageColor.getrgb(str(color).strip())[:3]
    except (ValueError, AttributeError):
        raise ToolArgumentError(f"unknown colour {color!r}",
                                hint="use a colour name like 'blue', 'red', 'navy' or a hex code "
                                     "like '#2255ff'") from None
    px = lab(np.array([[rgb]], np.uint8))[0, 0]
    return float(px[0]), float(px[1]), float(px[2])
