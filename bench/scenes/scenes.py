"""The scene suite's scenes: real photos and seeded synthetic scenes, each with natural
requests, the expected outcome and hand-marked targets.

A **scene** is an image and the requests a user could make of it. The image is one of

- a real photo of ``../shared/benchmarks/images/`` (beside the repository; read at run
  time, never copied here), or ``assets/astronaut.png``;
- a real photo with something drawn on it at run time (white text, a watermark, a date
  stamp), the drawn thing's box measured from the drawing itself;
- a synthetic scene drawn by a seeded generator (numpy + PIL, 320-640 px), which also
  returns the box of every object it drew, by name.

A **request** says what the right outcome is:

- ``expect="edit"`` with a ``target``: a tuple of *parts* (boxes ``(x0, y0, x1, y1)`` in
  pixels, x1/y1 exclusive; an ellipse or polygon where a box would take in too much of
  the surroundings, e.g. a round saucer on a table; or object names of a synthetic scene) that the edit must
  change and stay within -- several parts for "the cat's eyes" or "all the yellow dots";
  ``alts`` lists other acceptable targets (e.g. the flag itself, or the whole corner it
  stands in); ``min_cover`` is the fraction of each part's box that must visibly change.
- ``target="whole"``: a whole-image edit.
- ``target="outpaint:<side>"``: the canvas must grow on that side (``left``, ``right``,
  ``top``, ``bottom``, ``horizontal`` = both left and right, ``vertical``), by ``grow``
  (a fraction of the original size) when given, with the original pixels kept.
- ``mode="cutout"`` (``cutout(...)``): the new version must carry transparency: opaque over
  the target's parts, transparent over the rest ("remove the background", "cut out the cat").
- ``mode="background"`` (``background(...)``): the parts are the subject; the edit must change
  what lies around them and leave them alone ("blur the background").
- ``expect="ask"``: ambiguous or vague; the only acceptable outcome is a question or a
  refusal -- an edit is wrong.

The boxes on real photos were marked by looking at the photos on a pixel grid; they are
generous by a few pixels, never by a whole neighbouring object.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Union

import cv2
import numpy as np
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[2]
Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class Shape:
    """A hand-marked region that a box would fit badly: an ``ellipse`` given by its bounding
    box, or a ``polygon`` given by its corners (pixels)."""

    kind: str  # "ellipse" | "polygon"
    points: tuple

    @property
    def bbox(self) -> Box:
        if self.kind == "ellipse":
            return tuple(int(v) for v in self.points)
        xs, ys = [p[0] for p in self.points], [p[1] for p in self.points]
        return int(min(xs)), int(min(ys)), int(max(xs)) + 1, int(max(ys)) + 1

    def mask(self, w: int, h: int) -> np.ndarray:
        m = Image.new("L", (w, h), 0)
        d = ImageDraw.Draw(m)
        if self.kind == "ellipse":
            x0, y0, x1, y1 = self.points
            d.ellipse((x0, y0, x1 - 1, y1 - 1), fill=255)
        else:
            d.polygon([tuple(p) for p in self.points], fill=255)
        return np.asarray(m) > 0


def ellipse(x0: int, y0: int, x1: int, y1: int) -> Shape:
    return Shape("ellipse", (x0, y0, x1, y1))


def polygon(*points: tuple[int, int]) -> Shape:
    return Shape("polygon", tuple(points))


Part = Union[Box, Shape, str]  # a box, a shape, or the name of an object the generator drew


PHOTOS_HERE = REPO / "bench" / "scenes" / "photos"  # photos kept in the repository (README there)


def photos_dir() -> Path:
    """The shared benchmark photos: ``$IMAGENT_SCENE_PHOTOS`` or ``../shared/benchmarks/images``."""
    env = os.environ.get("IMAGENT_SCENE_PHOTOS")
    return Path(env) if env else REPO.parent / "shared" / "benchmarks" / "images"


@dataclass(frozen=True)
class Request:
    text: str
    expect: str  # "edit" | "ask"
    target: tuple[Part, ...] | str | None = None  # parts, "whole", "outpaint:<side>", None (ask)
    alts: tuple[tuple[Part, ...], ...] = ()
    min_cover: float = 0.2
    grow: float | None = None  # outpaint: expected growth as a fraction of the original size
    kind: str | None = None  # overrides the scene's kind in the tables
    note: str = ""
    mode: str = "change"  # "change" | "cutout" | "background" (module docstring)


def edit(text: str, *parts: Part, alts: tuple[tuple[Part, ...], ...] = (), min_cover: float = 0.2,
         kind: str | None = None, note: str = "") -> Request:
    return Request(text, "edit", tuple(parts), alts=alts, min_cover=min_cover, kind=kind, note=note)


def whole(text: str, kind: str | None = "global", note: str = "") -> Request:
    return Request(text, "edit", "whole", kind=kind, note=note)


def outpaint(text: str, side: str, grow: float | None = None, note: str = "") -> Request:
    return Request(text, "edit", f"outpaint:{side}", grow=grow, kind="outpaint", note=note)


def cutout(text: str, *parts: Part, kind: str | None = None, note: str = "") -> Request:
    return Request(text, "edit", tuple(parts), kind=kind, note=note, mode="cutout")


def background(text: str, *parts: Part, kind: str | None = None, note: str = "") -> Request:
    return Request(text, "edit", tuple(parts), kind=kind, note=note, mode="background")


def ask(text: str, kind: str | None = None, note: str = "") -> Request:
    return Request(text, "ask", None, kind=kind, note=note)


@dataclass
class Scene:
    id: str
    kind: str
    source: str  # "photo:<file>", "asset:<file>", "bench:<file>" (bench/scenes/photos) or "synthetic"
    requests: list[Request]
    make: Callable[..., tuple[Image.Image, dict[str, Box]]] | None = None
    description: str = ""
    _cache: tuple[Image.Image, dict[str, Box]] | None = field(default=None, repr=False, compare=False)

    @property
    def needs_photos(self) -> bool:
        return self.source.startswith("photo:")

    def load(self) -> tuple[Image.Image, dict[str, Box]]:
        """The scene's RGB image and its named object boxes (empty for plain photos)."""
        if self._cache is None:
            base = None
            if self.source.startswith("photo:"):
                base = _open_rgb(photos_dir() / self.source.split(":", 1)[1])
            elif self.source.startswith("asset:"):
                base = _open_rgb(REPO / "assets" / self.source.split(":", 1)[1])
            elif self.source.startswith("bench:"):
                base = _open_rgb(PHOTOS_HERE / self.source.split(":", 1)[1])
            if self.make is not None:
                image, objects = self.make(base) if base is not None else self.make()
            else:
                image, objects = base, {}
            self._cache = (image, dict(objects))
        return self._cache

    def resolve(self, parts: tuple[Part, ...]) -> list[Box | Shape]:
        """Parts as boxes or shapes: object names looked up in the scene's objects."""
        objects = self.load()[1]
        return [objects[p] if isinstance(p, str) else p if isinstance(p, Shape) else tuple(p)
                for p in parts]


def _open_rgb(path: Path) -> Image.Image:
    with Image.open(path) as im:
        return im.convert("RGB")


# --- drawing helpers ------------------------------------------------------------------------------

def _background(w: int, h: int, seed: int, top=(232, 228, 218), bottom=(214, 210, 200),
                noise: float = 3.0) -> np.ndarray:
    """A paper-like backdrop: a vertical gradient plus gentle seeded noise (float, H×W×3)."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    img = np.asarray(top, np.float32) * (1 - t) + np.asarray(bottom, np.float32) * t
    img = np.broadcast_to(img, (h, w, 3)).copy()
    img += rng.normal(0, noise, size=img.shape).astype(np.float32)
    return img


def _to_image(arr: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def _mask_box(mask: np.ndarray) -> Box:
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


class _Canvas:
    """Draws shapes with PIL and records each named object's exact box from its own pixels."""

    def __init__(self, arr: np.ndarray) -> None:
        self.image = _to_image(arr)
        self.objects: dict[str, Box] = {}
        self._masks: dict[str, Image.Image] = {}

    def _draw(self, name: str | None, fn: Callable[[ImageDraw.ImageDraw, object], None]) -> None:
        fn(ImageDraw.Draw(self.image), None)
        if name:
            m = self._masks.setdefault(name, Image.new("L", self.image.size, 0))
            fn(ImageDraw.Draw(m), 255)
            self.objects[name] = _mask_box(np.asarray(m) > 0)

    def ellipse(self, name, box, fill):
        self._draw(name, lambda d, v: d.ellipse(box, fill=fill if v is None else v))

    def circle(self, name, cx, cy, r, fill):
        self.ellipse(name, (cx - r, cy - r, cx + r, cy + r), fill)

    def rect(self, name, box, fill, radius: int = 0):
        self._draw(name, lambda d, v: d.rounded_rectangle(box, radius=radius, fill=fill if v is None else v))

    def polygon(self, name, points, fill):
        self._draw(name, lambda d, v: d.polygon(points, fill=fill if v is None else v))

    def line(self, name, points, fill, width):
        self._draw(name, lambda d, v: d.line(points, fill=fill if v is None else v, width=width))

    def done(self) -> tuple[Image.Image, dict[str, Box]]:
        return self.image, dict(self.objects)


def _star(cx: float, cy: float, r_out: float, r_in: float, n: int = 5) -> list[tuple[float, float]]:
    pts = []
    for i in range(2 * n):
        r = r_out if i % 2 == 0 else r_in
        a = -math.pi / 2 + i * math.pi / n
        pts.append((cx + r * math.cos(a), cy + r * math.sin(a)))
    return pts


RED, BLUE, GREEN, YELLOW = (208, 32, 38), (36, 78, 214), (40, 150, 60), (240, 200, 30)
ORANGE, PURPLE = (240, 120, 20), (130, 50, 170)


# --- synthetic scenes -----------------------------------------------------------------------------

def red_squares_row():
    """Eight red squares in one row (reading order = left to right)."""
    c = _Canvas(_background(640, 200, seed=1))
    for i in range(8):
        x = 22 + i * 76
        c.rect(f"sq{i + 1}", (x, 75, x + 49, 124), RED)
    c.objects["all"] = (22, 75, 22 + 7 * 76 + 50, 125)
    return c.done()


def blue_circles_row():
    """Five blue circles in a row, and one green square below the middle one."""
    c = _Canvas(_background(640, 260, seed=2))
    for i in range(5):
        c.circle(f"c{i + 1}", 80 + i * 120, 110, 30, BLUE)
    c.rect("green", (300, 190, 340, 230), GREEN)
    return c.done()


def mixed_shapes():
    """One red circle, one blue square, one green triangle, one yellow star."""
    c = _Canvas(_background(480, 360, seed=3))
    c.circle("red_circle", 100, 100, 45, RED)
    c.rect("blue_square", (300, 60, 400, 160), BLUE)
    c.polygon("green_triangle", [(80, 320), (200, 320), (140, 210)], GREEN)
    c.polygon("yellow_star", _star(360, 270, 55, 24), YELLOW)
    return c.done()


def two_green_rects():
    """Two identical green rectangles side by side."""
    c = _Canvas(_background(480, 320, seed=4))
    c.rect("left", (60, 110, 180, 210), GREEN)
    c.rect("right", (300, 110, 420, 210), GREEN)
    return c.done()


def _sky(w, h, seed, horizon=None):
    top, bottom = (90, 150, 225), (175, 210, 240)
    arr = _background(w, h, seed, top=top, bottom=bottom, noise=2.0)
    if horizon is not None:
        rng = np.random.default_rng(seed + 100)
        ground = np.asarray((70, 140, 60), np.float32) + rng.normal(0, 9, size=(h - horizon, w, 3))
        arr[horizon:] = ground
    return arr


def three_balloons():
    """Three red balloons on strings against a blue sky."""
    c = _Canvas(_sky(480, 480, seed=5))
    for name, cx in (("left", 120), ("middle", 240), ("right", 360)):
        c.line(f"{name}_string", [(cx, 232), (cx, 400)], (90, 90, 90), 2)
        c.ellipse(name, (cx - 40, 128, cx + 40, 232), RED)
        c.objects[f"{name}_all"] = (cx - 40, 128, cx + 41, 401)
    return c.done()


def red_ball_on_grass():
    """A single red ball on a textured lawn."""
    rng = np.random.default_rng(6)
    arr = np.asarray((60, 135, 55), np.float32) + rng.normal(0, 12, size=(360, 480, 3))
    arr = cv2.GaussianBlur(arr.astype(np.float32), (0, 0), 0.8)
    c = _Canvas(arr)
    c.circle("ball", 300, 200, 40, RED)
    return c.done()


def orange_car():
    """A simple orange car on a grey road under a sky."""
    arr = _sky(560, 320, seed=7, horizon=180)
    rng = np.random.default_rng(77)
    arr[180:] = np.asarray((105, 105, 110), np.float32) + rng.normal(0, 5, size=(140, 560, 3))
    c = _Canvas(arr)
    c.rect("cabin", (240, 160, 330, 196), ORANGE, radius=10)
    c.rect("body", (200, 190, 360, 250), ORANGE, radius=8)
    c.circle("wheel1", 235, 252, 18, (25, 25, 25))
    c.circle("wheel2", 325, 252, 18, (25, 25, 25))
    xs = [c.objects[k] for k in ("cabin", "body", "wheel1", "wheel2")]
    c.objects["car"] = (min(b[0] for b in xs), min(b[1] for b in xs), max(b[2] for b in xs), max(b[3] for b in xs))
    return c.done()


def logo_corner():
    """A dark-blue badge with a white letter in the top-left corner of a plain backdrop."""
    c = _Canvas(_background(480, 360, seed=8))
    c.rect("logo", (18, 16, 128, 104), (30, 40, 110), radius=14)
    c.polygon("letter", [(50, 90), (73, 30), (96, 90), (84, 90), (73, 58), (62, 90)], (250, 250, 250))
    c.objects["corner"] = (0, 0, 160, 120)
    return c.done()


def landscape():
    """Sky, a yellow sun in the top right, green hills and a small house with a red roof."""
    arr = _sky(560, 360, seed=9, horizon=220)
    c = _Canvas(arr)
    c.circle("sun", 470, 70, 35, YELLOW)
    c.rect("house", (124, 200, 196, 258), (150, 100, 60))
    c.polygon("roof", [(112, 202), (208, 202), (160, 160)], RED)
    return c.done()


def flag_in_corner():
    """A landscape with a small red flag on a pole in the top-left corner."""
    arr = _sky(540, 360, seed=10, horizon=230)
    c = _Canvas(arr)
    c.line("pole", [(60, 28), (60, 110)], (60, 50, 40), 3)
    c.rect("cloth", (62, 28, 110, 60), RED)
    c.objects["flag"] = (58, 28, 111, 111)
    c.objects["corner"] = (0, 0, 180, 120)
    return c.done()


def _text_box(size: tuple[int, int], text: str, org: tuple[int, int], scale: float, thickness: int) -> Box:
    m = np.zeros((size[1], size[0]), np.uint8)
    cv2.putText(m, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, 255, thickness, cv2.LINE_AA)
    return _mask_box(m > 0)


def _put_text(image: Image.Image, text, org, scale, thickness, colour) -> tuple[Image.Image, Box]:
    arr = np.array(image)
    cv2.putText(arr, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, thickness, cv2.LINE_AA)
    return Image.fromarray(arr, "RGB"), _text_box(image.size, text, org, scale, thickness)


def caption_bottom():
    """A colourful backdrop with a black caption along the bottom."""
    arr = _background(520, 360, seed=11, top=(250, 190, 120), bottom=(240, 225, 200))
    c = _Canvas(arr)
    c.circle("sun", 260, 130, 60, (245, 120, 60))
    image, box = _put_text(c.image, "Summer 2021", (150, 320), 1.2, 3, (15, 15, 15))
    return image, {**c.objects, "caption": box, "bottom_third": (0, 240, 520, 360)}


def colour_tiles():
    """A 3×3 grid of tiles, each a different colour; the centre one is purple."""
    c = _Canvas(_background(480, 480, seed=12))
    colours = [(220, 60, 60), (240, 160, 40), (230, 220, 60), (70, 170, 80), PURPLE,
               (60, 160, 200), (40, 60, 150), (230, 130, 170), (120, 80, 50)]
    for i, col in enumerate(colours):
        r, k = divmod(i, 3)
        x, y = 20 + k * 150, 20 + r * 150
        c.rect(f"t{i + 1}", (x, y, x + 139, y + 139), col, radius=6)
    return c.done()


def yellow_dots():
    """Eleven small yellow dots scattered on dark blue, and one big yellow dot."""
    rng = np.random.default_rng(13)
    c = _Canvas(_background(560, 380, seed=13, top=(30, 40, 90), bottom=(20, 30, 70)))
    c.circle("big", 430, 270, 34, YELLOW)
    placed: list[tuple[int, int]] = [(430, 270)]
    n = 0
    while n < 11:
        x, y = int(rng.integers(30, 530)), int(rng.integers(30, 350))
        if all((x - px) ** 2 + (y - py) ** 2 > 70 ** 2 for px, py in placed):
            placed.append((x, y))
            n += 1
            c.circle(f"d{n}", x, y, 11, YELLOW)
    return c.done()


def circle_centre():
    """One grey-blue disc in the middle of a plain backdrop."""
    c = _Canvas(_background(480, 360, seed=14))
    c.circle("disc", 240, 180, 60, (70, 90, 130))
    c.objects["centre"] = (120, 90, 360, 270)
    return c.done()


def purple_heart():
    """A purple heart a little left of centre and a small grey pebble at the bottom right."""
    c = _Canvas(_background(420, 320, seed=15, top=(245, 240, 230), bottom=(230, 225, 215)))
    c.circle(None, 135, 130, 36, PURPLE)
    c.circle(None, 195, 130, 36, PURPLE)
    c.polygon(None, [(101, 142), (229, 142), (165, 225)], PURPLE)
    c.objects["heart"] = (99, 94, 232, 226)
    c.ellipse("pebble", (330, 250, 380, 282), (140, 140, 135))
    return c.done()


def shelf_bottles():
    """Four coloured bottles on a shelf: green, blue, green, brown."""
    c = _Canvas(_background(560, 360, seed=16, top=(225, 215, 195), bottom=(200, 190, 170)))
    c.rect(None, (0, 290, 560, 310), (120, 85, 55))
    for i, (name, col) in enumerate((("g1", GREEN), ("blue", BLUE), ("g2", GREEN), ("brown", (110, 60, 25)))):
        x = 70 + i * 120
        c.rect(name, (x, 150, x + 56, 290), col, radius=10)
        c.rect(f"{name}_neck", (x + 18, 110, x + 38, 152), col, radius=4)
        b, n = c.objects[name], c.objects[f"{name}_neck"]
        c.objects[name] = (b[0], n[1], b[2], b[3])
    return c.done()


# --- real photos with something drawn on them --------------------------------------------------

def camera_with_white_text(photo: Image.Image):
    """The camera-man photo with white text written across the sky at the top right."""
    image, box = _put_text(photo, "SAMPLE TEXT", (285, 92), 1.1, 3, (255, 255, 255))
    return image, {"text": box}


def coffee_watermark(photo: Image.Image):
    """The coffee photo with a white watermark in the bottom-left corner, on the wooden table."""
    image, box = _put_text(photo, "(c) imagent", (12, 385), 0.8, 2, (255, 255, 255))
    return image, {"watermark": box}


def chelsea_date_stamp(photo: Image.Image):
    """Chelsea the cat with an orange camera date stamp in the bottom-right corner."""
    image, box = _put_text(photo, "2019 08 14", (310, 288), 0.6, 2, (255, 140, 0))
    return image, {"date": box}


def rocket_with_title(photo: Image.Image):
    """The rocket photo with a white title at the top left, in the dark sky."""
    image, box = _put_text(photo, "LAUNCH DAY", (110, 60), 1.0, 2, (255, 255, 255))
    return image, {"title": box}


def two_people(photo: Image.Image):
    """The astronaut (left) and the cameraman (right) side by side, 1024x512."""
    other = _open_rgb(photos_dir() / "skimage_camera.png")
    image = Image.new("RGB", (1024, 512))
    image.paste(photo, (0, 0))
    image.paste(other, (512, 0))
    return image, {}


def _shift(box: Box, dx: int) -> Box:
    return box[0] + dx, box[1], box[2] + dx, box[3]


# --- the hand-marked boxes of the real photos ------------------------------------------------------

# skimage_astronaut.png (512×512)
# the US flag behind her: the canton and stripes top left, then a strip beside her arm
ASTRO_FLAG = polygon((0, 0), (64, 0), (68, 90), (99, 212), (99, 228), (62, 236), (47, 252),
                     (35, 300), (22, 400), (16, 511), (0, 511))
ASTRO_FACE = (182, 66, 276, 178)       # skin of her face, forehead to chin
ASTRO_HEAD = (150, 10, 304, 180)       # face and hair
ASTRO_PERSON = (15, 10, 372, 512)      # her, hair to the bottom edge, without the helmet she holds
ASTRO_PERSON_HELMET = (15, 10, 510, 512)  # her and the helmet in her hands
ASTRO_SHUTTLE = (350, 0, 478, 292)     # the shuttle model on the right
ASTRO_SUBJECT = polygon((150, 12), (300, 12), (305, 150), (330, 200), (370, 260), (380, 340), (450, 335),
                        (511, 380), (511, 511), (15, 511), (25, 380), (60, 290), (120, 240), (150, 180))
                                       # her outline with the helmet she holds
# skimage_camera.png (512×512)
CAM_MAN = (0, 58, 336, 512)            # the man, hair to the bottom edge, hand on the camera included
CAM_TRIPOD = (228, 135, 412, 512)      # the camera on its tripod
CAM_SKY = (0, 0, 512, 200)             # the sky, above the buildings (his head stands in it)
CAM_FACE = (178, 92, 262, 200)         # his face in profile, eye to chin
CAM_HEAD = (150, 60, 265, 202)         # face and hair
CAM_SUBJECT = polygon((150, 62), (265, 62), (330, 140), (330, 230), (412, 512), (0, 512), (0, 200),
                      (100, 118))       # the man with his camera and tripod
CAM_MAN_CAMERA = polygon((150, 62), (265, 62), (330, 140), (330, 230), (290, 240), (235, 262), (200, 300),
                         (150, 512), (0, 512), (0, 200), (100, 118))  # the man and the camera in his hands
# grace_hopper.jpg (512×600, bench/scenes/photos)
GH_FACE = (170, 125, 365, 335)         # her face, cap brim to chin
GH_HEAD = (148, 15, 380, 345)          # with the cap
GH_PERSON = polygon((150, 60), (230, 18), (350, 38), (378, 110), (372, 330), (470, 372), (512, 400),
                    (512, 600), (15, 600), (30, 420), (120, 350), (165, 330), (150, 150))
GH_BADGE_TEXT = (106, 492, 164, 510)   # "COMD HOPPER" on her name badge
GH_BADGE = (78, 483, 168, 517)
# skimage_chelsea.png (451×300)
CAT_EYE_LEFT = (133, 86, 211, 150)
CAT_EYE_RIGHT = (293, 108, 345, 165)
CAT_NOSE = (236, 222, 295, 267)
# skimage_coffee.png (600×400)
COFFEE_SPOON = (314, 64, 425, 329)
COFFEE_CUP = (170, 15, 418, 305)
COFFEE_SAUCER = ellipse(72, 64, 484, 392)  # the red saucer (the red cup stands inside it)
# skimage_rocket.jpg (640×427)
ROCKET = (300, 122, 346, 410)          # the Falcon 9 in the middle
# skimage_coins.png (384×303)
COIN_TOP_LEFT = (17, 29, 75, 84)
# skimage_clock_motion.png (400×300)
CLOCK = (142, 88, 302, 222)


def _corner(w: int, h: int, which: str) -> Box:
    x = 0 if "left" in which else w - w // 3
    y = 0 if "top" in which else h - h // 3
    return x, y, x + w // 3, y + h // 3


SCENES: list[Scene] = [
    # --- real photos -----------------------------------------------------------------------------
    Scene("astronaut", "people", "photo:skimage_astronaut.png", [
        edit("remove the red stripes", ASTRO_FLAG, kind="colour objects",
             note="reproduction: colour grounding picked her skin and erased her face"),
        edit("remove the person", ASTRO_PERSON, alts=((ASTRO_PERSON_HELMET,),), min_cover=0.4,
             note="reproduction: a HOG box filled a strip of the helmet"),
        edit("could you take the woman out of this photo?", ASTRO_PERSON, alts=((ASTRO_PERSON_HELMET,),),
             min_cover=0.4),
        edit("blur her face", ASTRO_FACE, alts=((ASTRO_HEAD,),), kind="faces"),
        edit("remove the flag on the left", ASTRO_FLAG, kind="places/boxes"),
        edit("get rid of the space shuttle model on the right", ASTRO_SHUTTLE, kind="main subject"),
        background("blur the background", ASTRO_SUBJECT, kind="main subject"),
    ], description="Eileen Collins in an orange suit, a US flag behind her on the left, a shuttle model on the right"),
    Scene("astronaut_asset", "global", "asset:astronaut.png", [
        whole("make it a bit brighter"),
        whole("turn this into a black and white photo"),
        outpaint("make it 16:9", "horizontal"),
    ], description="the shipped demo photo (the same astronaut)"),
    Scene("camera", "people", "photo:skimage_camera.png", [
        edit("remove the man", CAM_MAN, min_cover=0.4, note="reproduction: smeared his hand"),
        edit("get the guy with the camera out of the shot", CAM_MAN, min_cover=0.4),
        edit("remove the tripod", CAM_TRIPOD, kind="main subject"),
        edit("make the sky a little lighter", CAM_SKY, kind="places/boxes"),
        outpaint("extend the picture to the right by 25%", "right", grow=0.25),
        edit("blur the man's face", CAM_FACE, alts=((CAM_HEAD,),), kind="faces"),
        Request("remove the background", "edit", (CAM_SUBJECT,), alts=((CAM_MAN_CAMERA,),),
                kind="main subject", mode="cutout",
                note="whether the tripod's thin legs belong to the subject is a judgment call: the man "
                     "with the camera in his hands is accepted too"),
    ], description="a man with a film camera on a tripod, grass, buildings and sky behind"),
    Scene("chelsea", "cats", "photo:skimage_chelsea.png", [
        ask("remove the man", kind="people", note="there is no person in the photo"),
        edit("make the cat's eyes blue", CAT_EYE_LEFT, CAT_EYE_RIGHT,
             note="reproduction: a Haar false positive painted a blue square on the cheek"),
        edit("give the cat a pink nose", CAT_NOSE),
        whole("warm it up a little"),
        ask("can you make this look better?", kind="ambiguous"),
    ], description="close-up of a tabby cat's face"),
    Scene("coffee", "main subject", "photo:skimage_coffee.png", [
        edit("remove the spoon", COFFEE_SPOON),
        edit("take the coffee cup away", COFFEE_CUP),
        edit("make the red saucer blue", COFFEE_SAUCER, kind="colour objects"),
        edit("remove the top-left corner", _corner(600, 400, "top-left"), kind="places/boxes"),
        edit("clear out the bottom right corner", _corner(600, 400, "bottom-right"), kind="places/boxes"),
        ask("fix this", kind="ambiguous"),
        whole("make it black and white"),
        background("blur the background", COFFEE_SAUCER, kind="main subject"),
    ], description="an espresso cup on a red saucer with a spoon, on a wooden table"),
    Scene("rocket", "main subject", "photo:skimage_rocket.jpg", [
        edit("remove the rocket", ROCKET),
        edit("erase whatever is inside 300,120,350,410", (300, 120, 350, 410), kind="places/boxes"),
        whole("make it darker"),
        outpaint("extend the canvas 100 px to the left", "left", grow=100 / 640),
    ], description="a Falcon 9 on the launch pad at dusk between lightning towers"),
    Scene("coins", "ambiguous", "photo:skimage_coins.png", [
        ask("remove the coin", note="24 coins: which one?"),
        edit("remove the coin in the top-left corner", COIN_TOP_LEFT, kind="places/boxes"),
        edit("delete the area 17,29,75,84", COIN_TOP_LEFT, kind="places/boxes"),
        whole("brighten the image slightly"),
    ], description="four rows of Greek coins on a dark background"),
    Scene("clock", "main subject", "photo:skimage_clock_motion.png", [
        edit("remove the clock", CLOCK),
        whole("increase the contrast"),
    ], description="a motion-blurred clock on a grey wall"),
    Scene("grace_hopper", "people", "bench:grace_hopper.jpg", [
        edit("blur her face", GH_FACE, alts=((GH_HEAD,),), kind="faces"),
        edit("pixelate the woman's face", GH_FACE, alts=((GH_HEAD,),), kind="faces"),
        edit("remove the woman", GH_PERSON, min_cover=0.4),
        edit("remove the text", GH_BADGE_TEXT, alts=((GH_BADGE,),), kind="text", min_cover=0.15),
        cutout("remove the background", GH_PERSON, kind="main subject"),
        cutout("cut out the person", GH_PERSON),
        background("blur the background", GH_PERSON, kind="main subject"),
        whole("make it warmer"),
    ], description="Grace Hopper's official portrait: cap, glasses, a name badge; a flag and blue backdrop"),
    Scene("two_people", "people", "photo:skimage_astronaut.png", [
        edit("remove the person on the right", _shift(CAM_MAN, 512), min_cover=0.4),
        edit("blur the faces", ASTRO_HEAD, _shift(CAM_HEAD, 512), kind="faces"),
        edit("pixelate the face on the left", ASTRO_FACE, alts=((ASTRO_HEAD,),), kind="faces"),
        ask("remove the woman", kind="ambiguous", note="two people, and the offline models cannot tell a woman from a man"),
        ask("blur the face", kind="ambiguous", note="two faces"),
    ], make=two_people, description="the astronaut and the cameraman side by side"),
    Scene("hubble", "ambiguous", "photo:skimage_hubble_deep_field.jpg", [
        ask("remove the galaxy", note="hundreds of galaxies"),
        whole("give it a sepia tone"),
    ], description="the Hubble eXtreme Deep Field"),
    Scene("ihc", "global", "photo:skimage_ihc.png", [
        whole("invert the colours"),
        ask("do the usual", kind="ambiguous"),
    ], description="an immunohistochemistry slide"),
    # --- real photos with text drawn on them -------------------------------------------------------
    Scene("camera_text", "text", "photo:skimage_camera.png", [
        edit("remove the white text", "text", min_cover=0.15,
             note="reproduction: pasted a roof into the sky, the check failed and it still said done"),
        edit("can you get rid of the writing in the sky?", "text", min_cover=0.15),
    ], make=camera_with_white_text, description="camera man with SAMPLE TEXT written in white in the sky"),
    Scene("coffee_watermark", "text", "photo:skimage_coffee.png", [
        edit("remove the watermark", "watermark", min_cover=0.15),
        edit("please erase the white text in the bottom left", "watermark", min_cover=0.15),
    ], make=coffee_watermark, description="coffee photo with a white '(c) imagent' watermark bottom left"),
    Scene("chelsea_date", "text", "photo:skimage_chelsea.png", [
        edit("remove the date stamp in the bottom-right corner", "date", min_cover=0.15),
    ], make=chelsea_date_stamp, description="cat photo with an orange date stamp bottom right"),
    Scene("rocket_title", "text", "photo:skimage_rocket.jpg", [
        edit("remove the title text", "title", min_cover=0.15),
    ], make=rocket_with_title, description="rocket photo with a white title LAUNCH DAY top left"),
    # --- synthetic scenes ----------------------------------------------------------------------
    Scene("red_squares", "ordinals", "synthetic", [
        edit("remove the sixth red square", "sq6",
             note="reproduction: removed it, then the check re-read 'sixth' on the edited image"),
        edit("delete the last red square", "sq8"),
        edit("get rid of the 3rd red square from the right", "sq6"),
        edit("remove the first red square", "sq1"),
        ask("remove the red square", kind="ambiguous", note="eight of them"),
        edit("remove all the red squares", *[f"sq{i}" for i in range(1, 9)], kind="colour objects"),
    ], make=red_squares_row, description="eight red squares in a row"),
    Scene("blue_circles", "ordinals", "synthetic", [
        edit("remove the third blue circle from the left", "c3"),
        edit("take away the second blue circle from the right", "c4"),
        ask("remove the blue circle", kind="ambiguous", note="five of them"),
        edit("remove the green square", "green", kind="colour objects"),
        ask("delete the last one", kind="ambiguous", note="the last what? a fresh session has no context"),
    ], make=blue_circles_row, description="five blue circles in a row and a green square"),
    Scene("mixed_shapes", "colour objects", "synthetic", [
        edit("remove the red circle", "red_circle"),
        edit("delete the blue square", "blue_square"),
        edit("get rid of the green triangle", "green_triangle"),
        edit("make the yellow star purple", "yellow_star"),
        edit("turn the blue square orange", "blue_square"),
        ask("remove it", kind="ambiguous"),
        outpaint("add 100 pixels on the left", "left", grow=100 / 480),
    ], make=mixed_shapes, description="a red circle, a blue square, a green triangle and a yellow star"),
    Scene("green_rects", "ambiguous", "synthetic", [
        ask("remove the green rectangle", note="two identical ones"),
        edit("remove the green rectangle on the right", "right", kind="colour objects"),
        edit("erase the left green box", "left", kind="colour objects"),
    ], make=two_green_rects, description="two identical green rectangles"),
    Scene("balloons", "colour objects", "synthetic", [
        ask("remove the red balloon", kind="ambiguous", note="three of them"),
        edit("remove the balloon in the middle", "middle", alts=(("middle_all",),), kind="ordinals"),
        edit("get rid of the rightmost red balloon", "right", alts=(("right_all",),), kind="ordinals"),
    ], make=three_balloons, description="three red balloons on strings in a blue sky"),
    Scene("red_ball", "colour objects", "synthetic", [
        edit("remove the red ball", "ball"),
        edit("change the red ball to yellow", "ball"),
        whole("make the whole thing more saturated"),
    ], make=red_ball_on_grass, description="one red ball on a lawn"),
    Scene("orange_car", "colour objects", "synthetic", [
        edit("remove the orange car", "car", alts=(("body", "cabin"),)),
        edit("paint the orange car green", "car", alts=(("body", "cabin"),)),
        outpaint("extend the road to the right by 30%", "right", grow=0.3),
    ], make=orange_car, description="an orange car on a road"),
    Scene("logo_corner", "places/boxes", "synthetic", [
        edit("remove the top-left corner", "logo", alts=(("corner",),)),
        edit("remove the logo in the upper left corner", "logo", alts=(("corner",),)),
        ask("remove the corner", kind="ambiguous", note="four corners"),
    ], make=logo_corner, description="a dark-blue badge in the top-left corner"),
    Scene("landscape", "places/boxes", "synthetic", [
        edit("remove the yellow sun", "sun", kind="colour objects"),
        edit("remove the sun", "sun", kind="main subject"),
        whole("make it a bit brighter"),
        outpaint("extend the picture to the right by 25%", "right", grow=0.25),
        outpaint("add 20% more sky at the top", "top", grow=0.2),
        ask("make it nicer", kind="ambiguous"),
    ], make=landscape, description="sky, sun, hills and a small house"),
    Scene("flag_corner", "places/boxes", "synthetic", [
        edit("remove the flag in the top-left corner", "flag", alts=(("corner",),)),
        edit("erase rect 50,20,70,100", (50, 20, 120, 120), min_cover=0.1,
             note="x,y,w,h: the flag and some sky; most of it is plain sky, so a low cover"),
    ], make=flag_in_corner, description="a small red flag on a pole in the top-left corner of a landscape"),
    Scene("caption", "text", "synthetic", [
        edit("remove the caption at the bottom", "caption", alts=(("bottom_third",),), min_cover=0.15),
        edit("delete the text", "caption", min_cover=0.15),
    ], make=caption_bottom, description="a warm backdrop with a black caption 'Summer 2021'"),
    Scene("tiles", "colour objects", "synthetic", [
        edit("delete the purple tile", "t5"),
        edit("remove the tile in the center", "t5", kind="places/boxes"),
        ask("remove a tile", kind="ambiguous"),
    ], make=colour_tiles, description="a 3×3 grid of tiles of different colours"),
    Scene("yellow_dots", "colour objects", "synthetic", [
        ask("remove the yellow dot", kind="ambiguous", note="twelve of them"),
        edit("remove the biggest yellow dot", "big", kind="ordinals"),
        edit("remove all the yellow dots", "big", *[f"d{i}" for i in range(1, 12)]),
    ], make=yellow_dots, description="yellow dots on dark blue, one of them big"),
    Scene("circle_centre", "places/boxes", "synthetic", [
        edit("remove the circle in the middle", "disc", alts=(("centre",),)),
        edit("erase the center of the image", "disc", alts=(("centre",),)),
    ], make=circle_centre, description="one disc in the middle of a plain backdrop"),
    Scene("purple_heart", "colour objects", "synthetic", [
        edit("remove the purple heart", "heart"),
        edit("make the purple thing red", "heart"),
        whole("rotate it 180 degrees"),
    ], make=purple_heart, description="a purple heart and a grey pebble"),
    Scene("bottles", "ambiguous", "synthetic", [
        ask("remove the green bottle", note="two green bottles"),
        edit("remove the blue bottle", "blue", kind="colour objects"),
        edit("remove the second green bottle from the left", "g2", kind="ordinals"),
        edit("take the brown bottle off the shelf", "brown", kind="colour objects"),
    ], make=shelf_bottles, description="green, blue, green and brown bottles on a shelf"),
]


def scene(scene_id: str) -> Scene:
    for s in SCENES:
        if s.id == scene_id:
            return s
    raise KeyError(scene_id)


def request(scene_id: str, text: str) -> tuple[Scene, Request]:
    s = scene(scene_id)
    for r in s.requests:
        if r.text == text:
            return s, r
    raise KeyError(f"{scene_id}: {text!r}")
