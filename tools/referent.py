"""The referent: what a request points at, parsed once into typed fields.

A request's target ("the second red car from the left", "the flag in the top-left corner",
"box 10,20,110,220", "the sky") is read here and nowhere else. The planner produces a
``Referent``; ``ground`` resolves it against the image without re-reading words; the result
check re-grounds ``without_instance()`` (the same noun and colour, no ordinal) on the edited
image; GroundingDINO gets ``detector_text()`` and the place and selection as fields.

Fields:

- ``noun``: the words that name a thing ("car", "man", "stripes", "flag"), or None for a pure
  place or box;
- ``colour``: a canonical colour name (``tools/colors.py``), or None;
- ``place``: a region of the frame, one of ``PLACES`` ("corner:top-left", "half:left",
  "third:middle", "side:right", "center", "sky", "whole", "corners", "sides"), or None;
- ``select``: how to order candidates ("left", "right", "top", "bottom", "largest",
  "smallest", "center"), or None;
- ``ordinal``: which one after ordering, 1-based; negative counts from the end (-1 = last,
  -2 = second to last), or None;
- ``box``: explicit corners x0,y0,x1,y1 in pixels (x1/y1 exclusive), or None;
- ``points``: explicit points [[x, y], ...], or None;
- ``region``: an explicit mask region (a user's selection, or the previous edit's mask for
  "the same area"), run-length encoded by ``encode_region`` ("rle:WxH:..."), or None. It
  lives in the stored ground call itself, so a replay needs no outside file; at most
  ``REGION_MAX_CHARS`` characters (``decode_region`` reads it back).

This module also holds the one table of ordinal and number words (``parse_ordinal``,
``parse_number``, ``ordinal_word``) that every other module uses.
"""

from __future__ import annotations

import math
import re
from typing import Literal

import numpy as np

from pydantic import BaseModel, ConfigDict, Field

from imagent.errors import ToolArgumentError

Select = Literal["left", "right", "top", "bottom", "largest", "smallest", "center"]
SELECTS: tuple[str, ...] = ("left", "right", "top", "bottom", "largest", "smallest", "center")
PLACES: tuple[str, ...] = (
    "corner:top-left", "corner:top-right", "corner:bottom-left", "corner:bottom-right",
    "half:left", "half:right", "half:top", "half:bottom",
    "third:left", "third:right", "third:top", "third:bottom", "third:middle",
    "side:left", "side:right", "side:top", "side:bottom",
    "center", "sky", "whole", "corners", "sides")
OPPOSITE = {"left": "right", "right": "left", "top": "bottom", "bottom": "top",
            "largest": "smallest", "smallest": "largest", "center": "center"}

# ----------------------------------------------------------------------------- numbers
_UNITS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
          "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
          "eighteen", "nineteen"]
_TENS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70,
         "eighty": 80, "ninety": 90}
_ORD_UNITS = ["zeroth", "first", "second", "third", "fourth", "fifth", "sixth", "seventh",
              "eighth", "ninth", "tenth", "eleventh", "twelfth", "thirteenth", "fourteenth",
              "fifteenth", "sixteenth", "seventeenth", "eighteenth", "nineteenth"]
_ORD_TENS = {"twentieth": 20, "thirtieth": 30, "fortieth": 40, "fiftieth": 50,
             "sixtieth": 60, "seventieth": 70, "eightieth": 80, "ninetieth": 90}
NUMBER_WORDS: dict[str, int] = {w: i for i, w in enumerate(_UNITS)}
NUMBER_WORDS.update(_TENS)
NUMBER_WORDS.update({"once": 1, "twice": 2, "thrice": 3, "a couple of": 2, "a couple": 2,
                     "a": 1, "an": 1, "single": 1, "a single": 1, "a dozen": 12, "dozen": 12})
ORDINAL_WORDS: dict[str, int] = {w: i for i, w in enumerate(_ORD_UNITS) if i}
ORDINAL_WORDS.update(_ORD_TENS)
ORDINAL_WORDS.update({"last": -1, "final": -1, "penultimate": -2, "next-to-last": -2,
                      "second-to-last": -2, "second-last": -2, "third-to-last": -3,
                      "third-last": -3, "second from last": -2, "second to last": -2,
                      "next to last": -2, "third from last": -3, "third to last": -3})

_TENS_ALT = "|".join(_TENS)
_UNIT_ALT = "|".join(sorted(_UNITS[1:10], key=len, reverse=True))
_ORD_UNIT_ALT = "|".join(sorted(_ORD_UNITS[1:10], key=len, reverse=True))
_MULTI = sorted((w for w in ORDINAL_WORDS if not w.isalpha()), key=len, reverse=True)
# one regex alternation of every ordinal token: words, "twenty-first", "6th", "21st", "last"...
ORDINAL_PATTERN = (
    r"(?:" + "|".join(re.escape(w) for w in _MULTI) + r"|(?:" + _TENS_ALT + r")[\s-](?:"
    + _ORD_UNIT_ALT + r")|\d{1,4}(?:st|nd|rd|th)|"
    + "|".join(sorted((w for w in ORDINAL_WORDS if w.isalpha()), key=len, reverse=True)) + r")")

def parse_ordinal(word: str) -> int | None:
    """"sixth"/"6th"/"twenty-first"/"21st" → 6/6/21/21; "last" → -1, "second to last" → -2;
    anything else → None."""
    w = " ".join(str(word).lower().strip().split())
    if w in ORDINAL_WORDS:
        return ORDINAL_WORDS[w]
    m = re.fullmatch(r"(\d{1,4})(?:st|nd|rd|th)", w)
    if m:
        n = int(m.group(1))
        return n if n > 0 else None
    m = re.fullmatch(rf"({_TENS_ALT})[\s-]({_ORD_UNIT_ALT})", w)
    if m:
        return _TENS[m.group(1)] + _ORD_UNITS.index(m.group(2))
    return None


def parse_number(word: str) -> int | None:
    """"6"/"six"/"twenty-one"/"twice" → 6/6/21/2; anything else → None."""
    w = " ".join(str(word).lower().strip().split())
    if re.fullmatch(r"\d{1,6}", w):
        return int(w)
    if w in NUMBER_WORDS:
        return NUMBER_WORDS[w]
    m = re.fullmatch(rf"({_TENS_ALT})[\s-]({_UNIT_ALT})", w)
    if m:
        return _TENS[m.group(1)] + _UNITS.index(m.group(2))
    return None


def ordinal_word(n: int) -> str:
    """1 → "first", 6 → "sixth", 23 → "23rd", -1 → "last", -2 → "second to last"."""
    if n < 0:
        return "last" if n == -1 else f"{ordinal_word(-n)} to last"
    if 0 < n < len(_ORD_UNITS):
        return _ORD_UNITS[n]
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


# ----------------------------------------------------------------------------- phrases
_NUM = r"(-?\d+(?:\.\d+)?(?:e[+-]?\d+)?|nan|inf)"
_SEP = r"\s*[,;\s]\s*"
_FOUR = _NUM + _SEP + _NUM + _SEP + _NUM + _SEP + _NUM
_RE_RECT = re.compile(r"\b(?:rect|xywh)\b\s*[:=]?\s*[\[(]?\s*" + _FOUR)
_RE_BOX = re.compile(r"\b(?:box|bbox|xyxy)\b\s*[:=]?\s*[\[(]?\s*" + _FOUR)
_RE_BARE = re.compile(r"(?<![\w.])" + _NUM + r"\s*,\s*" + _NUM + r"\s*,\s*" + _NUM + r"\s*,\s*"
                      + _NUM + r"(?![\w.])")
_RE_POINT = re.compile(r"\b(?:point|pt|click(?:ed)?(?:\s+at)?)\s*[:=]?\s*[\[(]?\s*" + _NUM
                       + r"\s*,\s*" + _NUM)

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

_VERT = {"top": "top", "upper": "top", "bottom": "bottom", "lower": "bottom"}

_RE_NTH_FROM = re.compile(rf"\b({ORDINAL_PATTERN})\b(?:\s+[a-z]+){{0,3}}?\s+from\s+(?:the\s+)?"
                          r"(left|right|top|bottom)\b")
_RE_NTH = re.compile(rf"\b(?:the\s+)?({ORDINAL_PATTERN})\b(?!\s+(?:from|half|corner|third)\b)")
_RE_MOST = re.compile(r"\b(left|right|top|bottom|upper|lower)[\s-]?most\b")
_RE_SIZE = re.compile(r"\b(largest|biggest|smallest|tiniest|big|large|small|tiny)(?:gest)?\b")
_RE_CENTRAL = re.compile(r"\b(?:(?:nearest|closest)\s+(?:to\s+)?the\s+(?:centre|center|middle)|"
                         r"most\s+central|central)\b")
SELECT_WORDS = {"leftmost": "left", "left-most": "left", "left-hand": "left", "rightmost": "right",
                "right-most": "right", "right-hand": "right", "upper": "top", "left": "left",
                "right": "right", "top": "top", "bottom": "bottom",
                "left-side": "left", "right-side": "right", "topmost": "top",
                "lower": "bottom", "bottommost": "bottom", "middle": "center", "centre": "center",
                "center": "center", "central": "center", "nearest_center": "center",
                "largest": "largest", "biggest": "largest", "bigger": "largest", "big": "largest",
                "large": "largest", "larger": "largest", "tallest": "largest", "taller": "largest",
                "smallest": "smallest", "smaller": "smallest", "tiniest": "smallest",
                "small": "smallest", "tiny": "smallest",
                "shortest": "smallest", "front": "bottom", "frontmost": "bottom",
                "nearest": "largest", "closest": "largest", "foreground": "bottom",
                "farthest": "smallest", "furthest": "smallest", "back": "top", "rear": "top"}

STOP_WORDS = frozenset("""
a an the in on at of to from near by with and or its it this that these those is are be
image picture photo frame corner corners half third side sides edge part border strip area
region hand top upper bottom lower left right middle center centre central whole entire full
everything all box rect xywh bbox xyxy sky skies one ones any both please most nearest closest
largest biggest smallest tiniest big small large tiny thing things object objects point pt
click clicked
""".split())
# nouns that say nothing about what the thing is: a colour region may serve them
GENERIC_NOUNS = frozenset("thing things object objects one ones stuff item items area region "
                          "part spot patch bit blob shape shapes mark marks".split())
# shape words a colour region can stand for on its own ("the red square")
SHAPE_NOUNS = frozenset("square squares circle circles dot dots disc discs disk disks rectangle "
                        "rectangles triangle triangles ball balls star stars block blocks "
                        "oval ovals".split())


REGION_MAX_CHARS = 200_000  # the run-length code of a mask region stored in a ground call


class Referent(BaseModel):
    """What a request points at (module docstring). JSON-serialisable; stored in ground calls."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    text: str = Field("", max_length=500, description="the words as written")
    noun: str | None = Field(None, max_length=200, description="the words naming the thing")
    colour: str | None = Field(None, max_length=40, description="a colour name")
    place: str | None = Field(None, description="a region of the frame: " + ", ".join(PLACES))
    select: Select | None = Field(None, description="how candidates are ordered")
    ordinal: int | None = Field(None, ge=-100, le=1000,
                                description="which one after ordering, 1-based; -1 = last")
    box: tuple[int, int, int, int] | None = Field(None, description="x0,y0,x1,y1 in pixels")
    points: list[tuple[int, int]] | None = Field(None, max_length=64,
                                                 description="[[x, y], ...] in pixels")
    region: str | None = Field(None, max_length=REGION_MAX_CHARS,
                               description="an explicit mask region, run-length encoded "
                                           "('rle:WxH:...', encode_region)")

    def model_post_init(self, __context: object) -> None:
        if self.place is not None and self.place not in PLACES:
            raise ValueError(f"unknown place {self.place!r}; known: {', '.join(PLACES)}")
        if self.ordinal == 0:
            raise ValueError("ordinal 0 does not exist: ordinals start at 1 (-1 = last)")

    # -- views -------------------------------------------------------------------------------
    @property
    def has_instance(self) -> bool:
        """The referent names which instance (an ordinal or an ordering)."""
        return self.ordinal is not None or self.select is not None

    @property
    def names_object(self) -> bool:
        """It names a thing (a noun or a colour), not only a place or a box."""
        return bool(self.noun or self.colour)

    @property
    def generic_noun(self) -> bool:
        """The noun (if any) says nothing a colour region could contradict."""
        if not self.noun:
            return True
        return all(w in GENERIC_NOUNS or w in SHAPE_NOUNS for w in self.noun.split())

    def without_instance(self) -> "Referent":
        """The same thing with no instance words: what the check looks for after a removal."""
        return self.model_copy(update={"select": None, "ordinal": None,
                                       "text": self.describe(instance=False)})

    def detector_text(self) -> str:
        """The words an open-vocabulary detector is given: colour and noun ("red car")."""
        return " ".join(w for w in (self.colour, self.noun) if w) or self.label

    @property
    def label(self) -> str:
        if self.noun or self.colour:
            return " ".join(w for w in (self.colour, self.noun) if w)
        if self.place:
            return place_phrase(self.place).removeprefix("the ")
        if self.region:
            return "selection"
        if self.box:
            return "box"
        if self.points:
            return "point"
        return "region"

    def describe(self, *, instance: bool = True) -> str:
        """A canonical English phrase that ``parse`` reads back to the same referent."""
        if self.box is not None and not self.names_object:
            return "box " + ",".join(str(v) for v in self.box)
        words = " ".join(w for w in (self.colour, self.noun or ("one" if self.colour else None)) if w)
        parts = ["the"]
        sel = self.select if instance else None
        ordn = self.ordinal if instance else None
        tail = ""
        if ordn is not None:
            if ordn == -1 and sel in (None, "left", "top"):
                parts.append("last")
            else:
                parts.append(ordinal_word(ordn))
            if sel in ("left", "right", "top", "bottom"):
                tail = f" from the {sel}"
            elif sel in ("largest", "smallest"):
                parts.append({"largest": "largest", "smallest": "smallest"}[sel])
        elif sel in ("left", "right", "top", "bottom"):
            parts.append(f"{sel}most")
        elif sel in ("largest", "smallest"):
            parts.append(sel)
        elif sel == "center":
            tail = " nearest the center"
        phrase = " ".join(parts + ([words] if words else ["one"])) + tail
        if self.place:
            where = place_phrase(self.place)
            if not words:
                phrase = where
            elif self.place.startswith("side:"):
                phrase = f"{phrase} on the {self.place[5:]}"
            else:
                phrase = f"{phrase} in {where}"
        if self.box is not None:
            phrase += " at box " + ",".join(str(v) for v in self.box)
        if self.points:
            phrase += " at point " + ",".join(f"{x},{y}" for x, y in self.points[:1])
        if self.region:
            phrase = "the selected region" if phrase == "the one" else phrase + " in the selected region"
        return phrase

    def to_args(self) -> dict:
        """The referent as a ground call's ``referent`` argument (JSON, no Nones)."""
        return self.model_dump(mode="json", exclude_none=True, exclude_defaults=True)


def place_phrase(place: str) -> str:
    kind, _, where = place.partition(":")
    if kind == "corner":
        return f"the {where} corner"
    if kind in ("half", "third"):
        return f"the {where} {kind}"
    if kind == "side":
        return f"the {where} side"
    return {"center": "the center", "sky": "the sky", "whole": "the whole image",
            "corners": "a corner", "sides": "the sides"}.get(place, place)


def _norm_v(word: str) -> str:
    return _VERT.get(word, word)


def _finite_box(values: list[float], kind: str, phrase: str) -> tuple[int, int, int, int]:
    if not all(math.isfinite(v) for v in values):
        raise ToolArgumentError(f"the {kind} in {phrase[:80]!r} has a coordinate that is not a "
                                "finite number", hint="give whole pixel numbers, e.g. 'box 10,20,110,220'")
    a, b, c, d = values
    x0, y0, x1, y1 = (a, b, a + c, b + d) if kind == "rect" else (a, b, c, d)
    if c <= (0 if kind == "rect" else a) or d <= (0 if kind == "rect" else b):
        shown = f"{kind} {','.join(f'{v:g}' for v in values)}"
        raise ToolArgumentError(
            f"the {shown!r} in {phrase[:80]!r} is empty" +
            (" (width and height must be > 0)" if kind == "rect" else " (needs x1 > x0 and y1 > y0)"),
            hint="'box x0,y0,x1,y1' gives two corners; 'rect x,y,w,h' gives corner and size")
    limit = 10 ** 7
    if max(abs(x0), abs(y0), abs(x1), abs(y1)) > limit:
        raise ToolArgumentError(f"the {kind} in {phrase[:80]!r} is far outside any image",
                                hint="coordinates are pixels of the image")
    return (int(math.floor(x0)), int(math.floor(y0)), int(math.ceil(x1)), int(math.ceil(y1)))


def find_place(text: str) -> tuple[str, tuple[int, int]] | None:
    """The place a phrase names, most specific first: (place, span) or None."""
    m = _RE_CORNER.search(text)
    if m:
        g = [x for x in m.groups() if x]
        v = _norm_v(g[0] if g[0] in _VERT else g[1])
        hz = g[1] if g[1] in ("left", "right") else g[0]
        return f"corner:{v}-{hz}", m.span()
    m = _RE_HALF.search(text)
    if m:
        return f"half:{_norm_v(m.group(1))}", m.span()
    m = _RE_THIRD.search(text)
    if m:
        side = _norm_v(m.group(1))
        side = "middle" if side in ("center", "centre", "central") else side
        return f"third:{side}", m.span()
    m = _RE_SKY.search(text)
    if m:
        return "sky", m.span()
    m = _RE_ANY_CORNER.search(text)
    if m:
        return "corners", m.span()
    m = _RE_SIDES.search(text)
    if m:
        return "sides", m.span()
    m = _RE_SIDE.search(text)
    if m:
        return f"side:{_norm_v(m.group(1))}", m.span()
    m = _RE_CENTER.search(text)
    if m:
        return "center", m.span()
    m = _RE_WHOLE.search(text)
    if m:
        return "whole", m.span()
    return None


def find_selection(text: str) -> tuple[str | None, int | None, list[tuple[int, int]]]:
    """Instance words in a phrase: (select, ordinal, spans).

    "the second face from the left" → ("left", 2); "the right-most person" → ("right", None);
    "the largest red thing" → ("largest", None); "the face nearest the centre" → ("center",
    None); "the sixth red square" → (None, 6) (reading order: left to right); "the last face
    from the left" → ("left", -1).
    """
    m = _RE_NTH_FROM.search(text)
    if m:
        n = parse_ordinal(m.group(1))
        from_at = m.start() + m.group(0).rfind("from")
        return m.group(2), n, [m.span(1), (from_at, m.end())]
    spans: list[tuple[int, int]] = []
    select = ordinal = None
    m = _RE_MOST.search(text)
    if m:
        select = _norm_v(m.group(1))
        spans.append(m.span())
    m = _RE_SIZE.search(text)
    if m and select is None:
        select = SELECT_WORDS[m.group(1)]
        spans.append(m.span())
    m = _RE_CENTRAL.search(text)
    if m and select is None:
        select = "center"
        spans.append(m.span())
    m = _RE_NTH.search(text)
    if m and m.group(1) == "third" and re.search(
            r"\b(?:left|right|top|upper|bottom|lower|middle|center|centre|central)\s+$", text[:m.start(1)]):
        m = None  # "the middle third" is a place, not an ordinal
    if m and not re.match(r"\s*(?:time|step|version|edit|undo)s?\b", text[m.end():]):
        ordinal = parse_ordinal(m.group(1))
        spans.append(m.span(1))
    return select, ordinal, spans


def _blank(text: str, spans: list[tuple[int, int]]) -> str:
    for s, e in sorted(spans, reverse=True):
        text = text[:s] + " " + text[e:]
    return text


def parse(phrase: str, *, select: str | None = None, ordinal: int | None = None) -> Referent:
    """Read a target phrase into a ``Referent``. ``select``/``ordinal`` given here win over the
    phrase's own instance words (a planner that read them elsewhere in the request passes them).

    Raises ``ToolArgumentError`` for an empty phrase or a box that is empty or not finite.
    """
    from imagent.tools.colors import find_colour_word

    raw = " ".join(str(phrase).split())
    text = raw.lower()
    if not text:
        raise ToolArgumentError("the target phrase is empty", hint="say what to select, e.g. 'the sky'")
    spans: list[tuple[int, int]] = []
    box = None
    for regex, kind in ((_RE_RECT, "rect"), (_RE_BOX, "box"), (_RE_BARE, "box")):
        m = regex.search(text)
        if m:
            box = _finite_box([float(v) for v in m.groups()], kind, raw)
            spans.append(m.span())
            break
    points = None
    m = _RE_POINT.search(text)
    if m:
        x, y = float(m.group(1)), float(m.group(2))
        if not (math.isfinite(x) and math.isfinite(y)):
            raise ToolArgumentError(f"the point in {raw[:80]!r} is not a finite number",
                                    hint="give pixel numbers, e.g. 'point 120,40'")
        points = [(int(round(x)), int(round(y)))]
        spans.append(m.span())
    rest = _blank(text, spans)
    p_select, p_ordinal, sel_spans = find_selection(rest)
    rest = " ".join(_blank(rest, sel_spans).split())
    place = None
    if box is None:
        found = find_place(rest)
        if found:
            place = found[0]
            rest = _blank(rest, [found[1]])
    colour = None
    found_c = find_colour_word(rest)
    if found_c:
        colour = found_c[0]
        rest = _blank(rest, [found_c[1]])
    words = [w for w in re.findall(r"[a-z][a-z'-]*", rest)
             if w not in STOP_WORDS and parse_ordinal(w) is None and not w.endswith("most")]
    noun = " ".join(words) or None
    if select is not None:
        select = SELECT_WORDS.get(select, select)
        if select not in SELECTS:
            select = None
    sel = select if select is not None else p_select
    ordn = ordinal if ordinal is not None else p_ordinal
    if ordn is not None and sel is None:
        sel = "left"  # "the third cat": reading order
    if place == "whole" and (noun or colour):
        place = None  # "the red car in the whole image": the image is no constraint
    return Referent(text=raw[:500], noun=noun[:200] if noun else None, colour=colour, place=place,
                    select=sel, ordinal=ordn, box=box, points=points)


# ----------------------------------------------------------------------------- ordering
def order_candidates(dets: list, select: str | None, size: tuple[int, int]) -> list:
    """Candidates (anything with ``box`` and ``score``) sorted the way ``select`` says:
    left/right/top/bottom = from that side, largest/smallest by box area, center = nearest
    the image centre, a corner place ("corner:top-left") = nearest that corner, None or
    "score" = best score first, then reading order. Stable: ties keep reading order."""
    w, h = size

    def cx(d) -> float:
        return (d.box[0] + d.box[2]) / 2.0

    def cy(d) -> float:
        return (d.box[1] + d.box[3]) / 2.0

    def area(d) -> int:
        return (d.box[2] - d.box[0]) * (d.box[3] - d.box[1])

    if select and select.startswith("corner:"):
        v, hz = select[7:].split("-")
        tx, ty = (0.0 if hz == "left" else w), (0.0 if v == "top" else h)
        return sorted(dets, key=lambda d: ((cx(d) - tx) ** 2 + (cy(d) - ty) ** 2, -d.score))
    keys = {
        None: lambda d: (-d.score, cy(d), cx(d)),
        "left": lambda d: (cx(d), cy(d)),
        "right": lambda d: (-cx(d), cy(d)),
        "top": lambda d: (cy(d), cx(d)),
        "bottom": lambda d: (-cy(d), cx(d)),
        "largest": lambda d: (-area(d), -d.score),
        "smallest": lambda d: (area(d), -d.score),
        "center": lambda d: ((cx(d) - w / 2) ** 2 + (cy(d) - h / 2) ** 2, -d.score),
    }
    key = keys.get(None if select in (None, "score", "auto") else SELECT_WORDS.get(select, select))
    if key is None:
        raise ToolArgumentError(f"unknown ordering {select!r}",
                                hint="one of: " + ", ".join(SELECTS) + ", score")
    return sorted(dets, key=key)


def pick(dets: list, ref: Referent, size: tuple[int, int]) -> tuple[list, int]:
    """(candidates in order, the chosen one first; its index in the order) for ``ref``'s
    ordering and ordinal. An ordinal past the number of candidates is a ToolArgumentError."""
    ordered = order_candidates(dets, ref.select, size)
    n = len(ordered)
    i = 0
    if ref.ordinal is not None:
        i = ref.ordinal - 1 if ref.ordinal > 0 else n + ref.ordinal
        if not 0 <= i < n:
            what = ref.describe()
            raise ToolArgumentError(
                f"there is no {ordinal_word(ref.ordinal)} one: {what!r} has {n} candidate(s)",
                hint=f"choose 1..{n} ({', '.join(ordinal_word(k) for k in range(1, min(n, 6) + 1))})")
    return [ordered[i]] + [d for k, d in enumerate(ordered) if k != i], i


# ----------------------------------------------------------------------------- mask regions
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def _b36(n: int) -> str:
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = _B36[r] + out
        if not n:
            return out


def encode_region(mask: np.ndarray) -> str:
    """A mask (bool, or numbers where >= 0.5 is set) as compact text: ``"rle:WxH:"`` then the
    lengths of alternating unset/set runs in row-major order, base 36, ``.``-separated (the
    first run is unset, possibly 0 long). JSON-safe and deterministic; ``decode_region``
    reads it back. Raises ``ToolArgumentError`` beyond ``REGION_MAX_CHARS`` characters."""
    arr = np.asarray(mask)
    if arr.ndim != 2 or arr.size == 0:
        raise ToolArgumentError(f"a region mask must be 2-D (H x W), got shape {tuple(arr.shape)}",
                                hint="pass one channel: a bool H x W array")
    flat = (arr >= 0.5 if arr.dtype != bool else arr).ravel()
    change = np.flatnonzero(np.diff(flat.view(np.uint8))) + 1
    bounds = np.concatenate(([0], change, [flat.size]))
    runs = np.diff(bounds).tolist()
    if flat[0]:
        runs = [0] + runs
    h, w = arr.shape
    text = f"rle:{w}x{h}:" + ".".join(_b36(int(r)) for r in runs)
    if len(text) > REGION_MAX_CHARS:
        raise ToolArgumentError(
            f"the mask region is too detailed to store: {len(text)} characters of run-length "
            f"code, the limit is {REGION_MAX_CHARS}",
            hint="use a smoother mask (fewer separate pieces and holes), or a box")
    return text


def decode_region(text: str, size: tuple[int, int]) -> np.ndarray:
    """The bool H x W mask of ``encode_region``'s text for an image of ``size`` (w, h).
    Raises ``ToolArgumentError`` for malformed text, a size that differs, or too long a code."""
    w, h = int(size[0]), int(size[1])
    if not isinstance(text, str) or len(text) > REGION_MAX_CHARS:
        raise ToolArgumentError("the region code is not text within "
                                f"{REGION_MAX_CHARS} characters", hint="encode it with encode_region")
    m = re.fullmatch(r"rle:(\d{1,6})x(\d{1,6}):([0-9a-z.]*)", text)
    if not m:
        raise ToolArgumentError(f"the region code {text[:40]!r} is malformed (expected 'rle:WxH:...')",
                                hint="encode the mask with encode_region")
    rw, rh = int(m.group(1)), int(m.group(2))
    if (rw, rh) != (w, h):
        raise ToolArgumentError(f"the region is {rw}x{rh} but the image is {w}x{h}",
                                hint="a region applies to an image of its own size")
    try:
        runs = [int(r, 36) for r in m.group(3).split(".")] if m.group(3) else []
    except ValueError:
        raise ToolArgumentError(f"the region code {text[:40]!r} has an empty run",
                                hint="encode the mask with encode_region") from None
    if sum(runs) != w * h:
        raise ToolArgumentError(f"the region code covers {sum(runs)} pixels, not {w}x{h} = {w * h}",
                                hint="encode the mask with encode_region")
    values = np.zeros(len(runs), bool)
    values[1::2] = True
    return np.repeat(values, runs).reshape(h, w)


__all__ = ["ORDINAL_PATTERN", "OPPOSITE", "PLACES", "REGION_MAX_CHARS", "Referent", "SELECTS",
           "SELECT_WORDS", "decode_region", "encode_region", "find_place", "find_selection",
           "order_candidates", "ordinal_word", "parse", "parse_number", "parse_ordinal", "pick",
           "place_phrase"]
