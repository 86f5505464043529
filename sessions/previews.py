"""Display previews of versions: each image decoded and scaled once, then read from a small file.

A screen (the chat UI) never needs a 24 MP image to repaint: ``preview(store, version)``
returns the version's image scaled so its longer side is at most ``max_side`` pixels (RGB,
like ``Store.load_image``), and ``mask_preview(store, version, size)`` its edit mask at a
preview's size. The first call decodes the full-resolution blob, scales it and writes the
result under the store home; later calls read that file (a few milliseconds), and the last
few previews are also kept in memory.

Layout::

    HOME/previews/<blob key>-<side>.png        an image preview (RGB PNG, fast compression)
    HOME/previews/<blob key>-<side>-mask.png   a mask preview (8-bit grayscale PNG)

The key is the blob key of the pixels (``Version.image_hash`` / ``mask_hash``): it changes
whenever the pixels change, and versions sharing pixels share a preview. ``side`` is
``max_side``, so previews of several sizes can coexist.

Previews are a cache: written atomically (``imagent.fsio.atomic_write``, no fsync: scratch
data that can always be made again), safe to delete at any time (``prune`` removes those no
version uses), and a missing, unreadable or wrong-sized preview file is made again from the
blob, never an error. A preview that cannot be written (read-only home, full disk) is still
returned. An image that already fits ``max_side`` is its own preview: it is decoded from its
blob, no file is written.

Uses only the Store's public methods (``load_image``, ``load_mask``, ``list_sessions``,
``log``) and its ``home``.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

import numpy as np
from PIL import Image

from imagent.fsio import atomic_write

__all__ = ["PREVIEW_SIDE", "preview", "mask_preview", "preview_size", "preview_path", "prune", "clear_memory"]

PREVIEW_SIDE = 1280  # the longer side of a preview, pixels: ~3 MB of RGB, ~1 MB on disk
PNG_LEVEL = 1  # zlib level 1: several times faster to write than the blobs' level 6, a bit larger
MEMORY_ITEMS = 12  # previews kept decoded in memory (undo/redo back and forth costs no read)
DIRNAME = "previews"
_TMP_PREFIX = ".preview.tmp-"
_KEY_RE = re.compile(r"^[0-9A-Za-z_]{8,128}$")  # no "-": it ends the key in a file name

_memory: OrderedDict[tuple, Any] = OrderedDict()
_memory_lock = threading.Lock()


def preview_size(size: tuple[int, int], max_side: int = PREVIEW_SIDE) -> tuple[int, int]:
    """The size of the preview of an image of ``size``: scaled down (aspect kept, each side at
    least 1) so the longer side is at most ``max_side``; ``size`` itself when it already fits."""
    w, h = int(size[0]), int(size[1])
    if max(w, h) <= max_side:
        return w, h
    s = max_side / max(w, h)
    return max(1, round(w * s)), max(1, round(h * s))


def _folder(store) -> Path:
    return Path(store.home) / DIRNAME


def _safe_key(key: str) -> str:
    """The blob key as a file name part (a blob key is hex; anything else is hashed)."""
    key = str(key)
    if _KEY_RE.match(key):
        return key
    import hashlib

    return "h" + hashlib.sha256(key.encode()).hexdigest()


def preview_path(store, version, max_side: int = PREVIEW_SIDE, *, mask: bool = False) -> Path:
    """Where the preview file of ``version``'s image (or mask) lives."""
    key = version.mask_hash if mask else version.image_hash
    return _folder(store) / f"{_safe_key(key)}-{int(max_side)}{'-mask' if mask else ''}.png"


def clear_memory() -> None:
    """Forget the previews kept in memory (tests; the files stay)."""
    with _memory_lock:
        _memory.clear()


def _remember(key: tuple, value: Any) -> None:
    with _memory_lock:
        _memory[key] = value
        _memory.move_to_end(key)
        while len(_memory) > MEMORY_ITEMS:
            _memory.popitem(last=False)


def _recall(key: tuple) -> Any:
    with _memory_lock:
        value = _memory.get(key)
        if value is not None:
            _memory.move_to_end(key)
        return value


def _read(path: Path, size: tuple[int, int], mode: str) -> Image.Image | None:
    """The preview file at ``path`` if it is a complete image of ``size`` and ``mode``, else None."""
    try:
        with Image.open(path) as im:
            if im.size != size or im.mode != mode:
                return None
            im.load()
            return im.copy()
    except FileNotFoundError:
        return None
    except Exception:  # noqa: BLE001 - a damaged preview is made again, never an error
        return None


def _write(path: Path, image: Image.Image) -> None:
    """Store a preview atomically; a failure (read-only home, full disk) only loses the cache."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda fh: image.save(fh, format="PNG", compress_level=PNG_LEVEL, optimize=False),
                     fsync=False, tmp_prefix=_TMP_PREFIX)
    except Exception:  # noqa: BLE001 - the preview is still returned; the next call tries again
        pass


def _scaled(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    if image.size == size:
        return image
    # reducing_gap: a fast integer box reduction first, then a Lanczos pass over a small image
    return image.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)


def _cached(store, version, max_side: int, *, mask: bool, make: Callable[[], Image.Image]) -> Image.Image:
    size = preview_size((version.width, version.height), max_side)
    mode = "L" if mask else "RGB"
    path = preview_path(store, version, max_side, mask=mask)
    mem_key = (str(Path(store.home)), path.name)
    hit = _recall(mem_key)
    if hit is not None:
        return hit
    image = _read(path, size, mode)
    if image is None:
        image = _scaled(make(), size)
        if image.mode != mode:
            image = image.convert(mode)
        _write(path, image)
    _remember(mem_key, image)
    return image


def preview(store, version, max_side: int = PREVIEW_SIDE, *, image: Image.Image | None = None) -> Image.Image:
    """``version``'s image (RGB) scaled to fit ``max_side``, from the preview cache.

    The first call for a version's pixels decodes its blob (or uses ``image``, the
    full-resolution image when the caller already has it, e.g. right after a commit) and
    writes the preview file; later calls read the file. An image that already fits is
    returned at full size, decoded from its blob (or ``image``) each time, and never written.
    Treat the result as read-only: it may be shared with other callers."""
    if max(version.width, version.height) <= max_side:
        key = (str(Path(store.home)), f"{_safe_key(version.image_hash)}-full")
        hit = _recall(key)
        if hit is not None:
            return hit
        full = image if image is not None else store.load_image(version)
        full = full if full.mode == "RGB" else full.convert("RGB")
        _remember(key, full)
        return full
    return _cached(store, version, max_side, mask=False,
                   make=lambda: image if image is not None else store.load_image(version))


def mask_preview(store, version, max_side: int = PREVIEW_SIDE) -> np.ndarray | None:
    """``version``'s edit mask (float32 H×W in [0, 1]) at the size of its image's preview, or
    None for a version without a mask. Cached like ``preview``."""
    if not version.mask_hash:
        return None

    def make() -> Image.Image:
        m = store.load_mask(version)
        return Image.fromarray(np.clip(np.asarray(m, np.float32) * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")

    if max(version.width, version.height) <= max_side:
        m = store.load_mask(version)
        return None if m is None else np.asarray(m, dtype=np.float32)
    img = _cached(store, version, max_side, mask=True, make=make)
    return np.asarray(img, dtype=np.float32) / np.float32(255.0)


def prune(store, *, temp_grace_s: float = 15 * 60.0) -> dict:
    """Delete preview files no version of the store uses (and stale temp files); returns counts.

    Safe to run at any time: a preview removed while in use is simply made again."""
    stats = {"removed": 0, "kept": 0, "bytes_freed": 0}
    folder = _folder(store)
    if not folder.is_dir():
        return stats
    used: set[str] = set()
    for session in store.list_sessions():
        for v in store.log(session):
            used.add(_safe_key(v.image_hash))
            if v.mask_hash:
                used.add(_safe_key(v.mask_hash))
    now = time.time()
    for entry in os.scandir(folder):
        if not entry.is_file(follow_symlinks=False):
            continue
        name = entry.name
        try:
            st = entry.stat(follow_symlinks=False)
        except FileNotFoundError:
            continue
        if name.startswith(_TMP_PREFIX):
            stale = now - st.st_mtime >= temp_grace_s
        elif name.endswith(".png") and "-" in name:
            stale = name.split("-", 1)[0] not in used
        else:
            continue  # not ours
        if not stale:
            stats["kept"] += 1
            continue
        try:
            os.unlink(entry.path)
            stats["removed"] += 1
            stats["bytes_freed"] += st.st_size
        except FileNotFoundError:
            pass
    with _memory_lock:
        _memory.clear()
    return stats
