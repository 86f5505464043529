"""A selection: where the user points (a box, a point or a mask), checked against the image.

The front ends (``imagent edit/ask --box/--point/--mask``, ``box:``/``point:``/``mask:`` steps
of ``imagent run``, ``Assistant.select``/``ask(box=, point=, mask=)``, the chat UI) make a
``Selection`` with ``make_selection``; it is validated against the image size before any work.
A request then uses it through its referent (``Selection.referent``): a box and a point as
the referent's ``box``/``points``, a mask as its run-length coded ``region``
(``tools/referent.py``), so the stored ground call replays with no outside file.

Every error is a ``SelectionError`` (exit code 2) naming what is wrong and how to fix it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from imagent.errors import ImagentError, SelectionError
from imagent.tools.masks import mask_bbox
from imagent.tools.referent import Referent, decode_region, encode_region

_NUM = r"\s*(-?\d+(?:\.\d+)?)\s*"


@dataclass(frozen=True, eq=False)
class Selection:
    """Where the user points: one of ``box`` (x0, y0, x1, y1; x1/y1 exclusive), ``point``
    (x, y) or ``mask`` (bool H x W). ``source`` is "user", or "previous" for the previous
    version's mask ("the same area")."""

    box: tuple[int, int, int, int] | None = None
    point: tuple[int, int] | None = None
    mask: np.ndarray | None = field(default=None, repr=False)
    source: str = "user"

    @property
    def kind(self) -> str:
        return "mask" if self.mask is not None else "box" if self.box is not None else "point"

    def describe(self) -> str:
        """A short phrase for replies and the UI: "box 10,20,110,220", "point 40,60",
        "a mask of 1234 pixels (box 3,4,50,60)"."""
        if self.mask is not None:
            what = "the previous edit's area" if self.source == "previous" else "a mask"
            return f"{what} of {int(self.mask.sum())} pixels (box {','.join(map(str, mask_bbox(self.mask)))})"
        if self.box is not None:
            return "box " + ",".join(str(v) for v in self.box)
        assert self.point is not None
        return f"point {self.point[0]},{self.point[1]}"

    def referent(self, *, text: str = "the selection", noun: str | None = None) -> Referent:
        """The referent that points here; ``noun`` (e.g. "object", "cup") asks ground for the
        object inside a box rather than the whole box."""
        fields: dict[str, Any] = {"text": text[:500], "noun": noun}
        if self.mask is not None:
            fields["region"] = encode_region(self.mask)
        elif self.box is not None:
            fields["box"] = self.box
        else:
            fields["points"] = [self.point]
        return Referent(**fields)

    def to_dict(self) -> dict[str, Any]:
        """JSON form (stored with the version, read back by ``from_dict``): a mask as its
        run-length code."""
        if self.mask is not None:
            h, w = self.mask.shape
            return {"mask": encode_region(self.mask), "size": [w, h], "source": self.source}
        if self.box is not None:
            return {"box": list(self.box), "source": self.source}
        return {"point": list(self.point or ()), "source": self.source}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Selection":
        if data.get("mask"):
            w, h = data["size"]
            return cls(mask=decode_region(data["mask"], (w, h)), source=data.get("source", "user"))
        if data.get("box"):
            return cls(box=tuple(int(v) for v in data["box"]), source=data.get("source", "user"))  # type: ignore[arg-type]
        return cls(point=tuple(int(v) for v in data["point"]), source=data.get("source", "user"))  # type: ignore[arg-type]


def parse_numbers(value: Any, count: int, what: str, example: str) -> tuple[int, ...]:
    """"10,20,110,220" / "10 20 110 220" / [10, 20, 110, 220] → whole pixel numbers."""
    if isinstance(value, str):
        parts = [p for p in re.split(r"[,\s]+", value.strip().strip("[]()")) if p]
    elif isinstance(value, (list, tuple)):
        parts = list(value)
    else:
        parts = [value]
    nums: list[float] = []
    for p in parts:
        try:
            if isinstance(p, bool):
                raise ValueError
            f = float(p)
        except (TypeError, ValueError):
            nums = []
            break
        nums.append(f)
    if len(nums) != count or not all(math.isfinite(v) for v in nums):
        raise SelectionError(f"the {what} {value!r} is not {count} numbers",
                             hint=f"give whole pixel numbers, e.g. {example}")
    if any(v != int(v) for v in nums):
        raise SelectionError(f"the {what} {value!r} has a fractional coordinate",
                             hint=f"give whole pixel numbers, e.g. {example}")
    return tuple(int(v) for v in nums)


def parse_box(value: Any) -> tuple[int, int, int, int]:
    box = parse_numbers(value, 4, "box", "--box 10,20,110,220 (x0,y0,x1,y1)")
    x0, y0, x1, y1 = box
    if x1 <= x0 or y1 <= y0:
        raise SelectionError(f"the box {','.join(map(str, box))} is empty (needs x1 > x0 and y1 > y0)",
                             hint="a box is two corners x0,y0,x1,y1 (x1/y1 exclusive)")
    return box  # type: ignore[return-value]


def parse_point(value: Any) -> tuple[int, int]:
    return parse_numbers(value, 2, "point", "--point 120,40 (x,y)")  # type: ignore[return-value]


def load_selection_mask(value: Any, size: tuple[int, int]) -> np.ndarray:
    """A mask given as a path, a PIL image or an array → bool H x W for an image of ``size``.

    A file or image with real transparency gives its alpha, else its luminance (white = set);
    a float array is set where >= 0.5, an integer one where >= 128 (0/1 arrays: where 1)."""
    w, h = int(size[0]), int(size[1])
    where = "the mask"
    if isinstance(value, (str, Path)):
        from imagent.tools.imageio import load_image

        where = f"the mask {str(value)!r}"
        try:
            loaded = load_image(value)
        except ImagentError as exc:
            raise SelectionError(f"cannot read {where}: {exc.message}",
                                 hint="give an image file (PNG) of the image's size: white = the area") from None
        img = loaded.alpha if loaded.alpha is not None and np.asarray(loaded.alpha).min() < 255 \
            else loaded.image.convert("L")
        arr = np.asarray(img) >= 128
    elif isinstance(value, Image.Image):
        img = value.getchannel("A") if value.mode in ("RGBA", "LA") and \
            np.asarray(value.getchannel("A")).min() < 255 else value.convert("L")
        arr = np.asarray(img) >= 128
    elif isinstance(value, np.ndarray):
        a = value[..., 0] if value.ndim == 3 and value.shape[2] in (1, 3, 4) else value
        if a.ndim != 2:
            raise SelectionError(f"the mask must be 2-D (H x W), got shape {tuple(value.shape)}",
                                 hint="pass one channel: a bool H x W array")
        if a.dtype == bool:
            arr = a
        elif np.issubdtype(a.dtype, np.integer):
            arr = a >= (128 if a.max(initial=0) > 1 else 1)
        elif np.issubdtype(a.dtype, np.floating):
            arr = np.nan_to_num(a) >= 0.5
        else:
            raise SelectionError(f"the mask has dtype {a.dtype}, not bool or numbers",
                                 hint="pass a bool H x W array")
    else:
        raise SelectionError(f"the mask must be a file path, a PIL image or a numpy array, not "
                             f"{type(value).__name__}", hint="e.g. mask='area.png'")
    mh, mw = arr.shape
    if (mw, mh) != (w, h):
        raise SelectionError(f"{where} is {mw}x{mh} but the image is {w}x{h}",
                             hint=f"make the mask {w}x{h}, the size of the image (e.g. paint it on "
                                  "a copy of the image, white = the area)")
    if not arr.any():
        raise SelectionError(f"{where} selects nothing (no pixel is set)",
                             hint="paint the area to change in white on black")
    return np.ascontiguousarray(arr, dtype=bool)


def make_selection(size: tuple[int, int], *, box: Any = None, point: Any = None,
                   mask: Any = None) -> Selection | None:
    """A checked ``Selection`` for an image of ``size`` (w, h), or None when nothing is given.
    Exactly one of ``box``, ``point`` and ``mask``; a box or point inside the image; a mask of
    the image's size with something set."""
    given = [k for k, v in (("box", box), ("point", point), ("mask", mask)) if v is not None]
    if not given:
        return None
    if len(given) > 1:
        raise SelectionError(f"give one of box, point and mask, not {' and '.join(given)}",
                             hint="point with one: a box around the thing, a point on it, or a mask of it")
    w, h = int(size[0]), int(size[1])
    if box is not None:
        b = parse_box(box)
        x0, y0, x1, y1 = b
        if x0 < 0 or y0 < 0 or x1 > w or y1 > h:
            raise SelectionError(f"the box {','.join(map(str, b))} is not inside the {w}x{h} image",
                                 hint=f"coordinates run from 0,0 to {w},{h} (x1/y1 exclusive)")
        return Selection(box=b)
    if point is not None:
        x, y = parse_point(point)
        if not (0 <= x < w and 0 <= y < h):
            raise SelectionError(f"the point {x},{y} is not inside the {w}x{h} image",
                                 hint=f"coordinates run from 0,0 to {w - 1},{h - 1}")
        return Selection(point=(x, y))
    return Selection(mask=load_selection_mask(mask, (w, h)))


__all__ = ["Selection", "load_selection_mask", "make_selection", "parse_box",
           "parse_point"]
