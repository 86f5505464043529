"""The chat UI's state, kept outside the widgets.

A ``Snapshot`` is everything the screen shows about the session, computed in a
worker thread (it reads the store and the preview cache) and handed to the app in a
message; widgets only ever receive values from it.

Images on screen are previews (``imagent.sessions.previews``): each version's image is
decoded and scaled once, then read from a small cached file, so undo, redo, checkout and
the before/after view never decode a full-resolution image to repaint. ``size`` and
``before_size`` are the full-resolution sizes: captions show them, and pointing maps cells
to pixels of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
from PIL import Image

from imagent.sessions import previews
from imagent.sessions.previews import mask_preview, preview

PREVIEW_SIDE = previews.PREVIEW_SIDE  # the longer side of the images on screen (read at each snapshot)
OVERLAY_RGB = (255, 40, 90)
OVERLAY_ALPHA = 0.45


@dataclass(frozen=True)
class TreeRow:
    version_id: str
    seq: int
    text: str  # the rendered line: graph, number, request
    is_head: bool


@dataclass(frozen=True)
class Snapshot:
    session_name: str
    session_id: str
    head_id: str
    head_seq: int
    head_request: str
    size: tuple[int, int]  # the head's full-resolution size (``image`` may be a preview of it)
    versions: int
    rows: tuple[TreeRow, ...]
    image: Image.Image  # the head's image, as a preview (at most PREVIEW_SIDE on a side)
    before: Image.Image | None  # the parent's image (a preview); None at the root
    mask: np.ndarray | None  # the head's edit mask at ``image``'s size (float32 in [0, 1]); None when none
    planner: str
    profile: str
    backend: str
    info: dict[str, Any] = field(default_factory=dict)
    selection: Any = None  # Assistant.selection: what the next request points at, or None
    before_size: tuple[int, int] | None = None  # the parent's full-resolution size; None at the root

    @property
    def has_mask(self) -> bool:
        return self.mask is not None and self.mask.shape == (self.image.height, self.image.width)

    @cached_property
    def overlay(self) -> Image.Image | None:
        """``image`` with its edit mask tinted, None without a mask: made when first shown (in
        the UI thread, at the preview's size), not for every snapshot."""
        return overlay_mask(self.image, self.mask)


def tree_rows(versions: list, head_id: str) -> list[TreeRow]:
    """The version graph, oldest first: the newest child continues a line, older siblings branch off.

    Same shape as ``imagent log`` but without ids or timings, so the panel reads
    well and is stable from run to run.
    """
    kids: dict[str | None, list] = {}
    for v in versions:
        kids.setdefault(v.parent_id, []).append(v)
    lines: list[tuple[str, Any]] = []
    stack = [(r, "", "") for r in reversed(kids.get(None, []))]
    while stack:
        v, first, cont = stack.pop()
        lines.append((first + ("@" if v.id == head_id else "o"), v))
        ch = kids.get(v.id, [])
        if ch:
            stack.append((ch[-1], cont, cont))
            for c in reversed(ch[:-1]):
                stack.append((c, cont + "├─", cont + "│ "))
    width = max((len(g) for g, _ in lines), default=1)
    seqw = max((len(str(v.seq)) for v in versions), default=1)
    rows = []
    for graph, v in lines:
        text = " ".join((v.request or f"({v.kind})").split())
        if v.parent_id is None and text.startswith("open ") and ("/" in text or "\\" in text):
            text = "open " + text.replace("\\", "/").rsplit("/", 1)[-1]  # the file name, not its folder
        if len(text) > 44:
            text = text[:41] + "..."
        rows.append(TreeRow(v.id, v.seq, f"{graph.ljust(width)} {str(v.seq).rjust(seqw)}  {text}",
                            v.id == head_id))
    return rows


def overlay_mask(image: Image.Image, mask: np.ndarray | None) -> Image.Image | None:
    """``image`` with the mask's area tinted, or None without a mask of the image's size."""
    if mask is None or mask.shape != (image.height, image.width):
        return None
    a = np.asarray(image, dtype=np.float32)
    m = np.clip(mask, 0.0, 1.0)[..., None] * OVERLAY_ALPHA
    tint = np.array(OVERLAY_RGB, dtype=np.float32)
    out = a * (1.0 - m) + tint * m
    return Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8), "RGB")


def take_snapshot(assistant, *, max_side: int | None = None) -> Snapshot:
    """Read everything the screen shows from the assistant (call from a worker thread).

    Images come from the preview cache: no full-resolution decode once a version's preview
    exists (the first snapshot of a new version makes it). ``max_side``: the previews' longer
    side (default ``PREVIEW_SIDE``)."""
    max_side = int(max_side or PREVIEW_SIDE)
    head = assistant.head
    versions = assistant.history
    store = assistant.store
    image = preview(store, head, max_side)
    parent = None
    if head.parent_id is not None:
        parent = next((v for v in versions if v.id == head.parent_id), None) or assistant.version(head.parent_id)
    before = None if parent is None else preview(store, parent, max_side)
    mask = mask_preview(store, head, max_side)
    info = assistant.describe()
    return Snapshot(session_name=assistant.session.name, session_id=assistant.session.id,
                    head_id=head.id, head_seq=head.seq, head_request=head.request or "",
                    size=(head.width, head.height), versions=len(versions),
                    rows=tuple(tree_rows(versions, head.id)), image=image, before=before, mask=mask,
                    planner=info["planner"], profile=info["profile"], backend=info["backend"], info=info,
                    selection=getattr(assistant, "selection", None),
                    before_size=None if parent is None else (parent.width, parent.height))
