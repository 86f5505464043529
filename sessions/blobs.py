"""Content-addressed blobs: deterministic PNG encoding and an atomic blob directory.

A blob's key is the sha256 hex digest of its stored bytes; it lives at
``<home>/blobs/<key[:2]>/<key[2:]>``. Nothing user-given ever goes into a blob
path: the key is computed here from the bytes.

Writes are atomic and crash-safe (``imagent.fsio.atomic_write``): the bytes go to
``<shard>/.tmp-<pid>-<random>`` (same directory, so same filesystem), are fsynced,
then ``os.replace``d onto the final name, and the shard directory is fsynced. A file under a final
(64-hex) name is therefore always complete; a crash leaves at most a ``.tmp-*``
file, which ``Store.gc`` removes once it is older than its grace period.

Encoding is deterministic (same pixels -> same bytes -> same key, for a given
Pillow/zlib build): images are re-created from raw RGB bytes (so no ICC, EXIF or
text chunk from the input survives) and saved as PNG with ``compress_level=6``
and ``optimize=False``. Masks (float32 H x W in [0, 1]) are stored as 8-bit
grayscale PNG of ``round(mask * 255)``; alpha planes as 8-bit grayscale PNG.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from imagent.errors import InputError, MaskError, StoreCorruptError
from imagent.fsio import atomic_write, fsync_dir

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_COMPRESS_LEVEL = 6
HASH_RE = re.compile(r"^[0-9a-f]{64}$")
TMP_PREFIX = ".tmp-"


@dataclass(frozen=True)
class EncodedBlob:
    """Bytes ready to store: ``data``, its ``sha256`` key, what it is and its size.

    ``Store.commit`` accepts these in place of a PIL image / mask / alpha, which
    lets callers (and ``bench/store.py``) encode outside the timed store work.
    """

    data: bytes
    sha256: str
    kind: str  # "image" | "mask" | "alpha"
    width: int
    height: int

    def __repr__(self) -> str:  # never dump the bytes
        return (f"EncodedBlob(kind={self.kind!r}, {self.width}x{self.height}, "
                f"sha256={self.sha256[:12]}..., {len(self.data)} bytes)")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL, optimize=False)
    return buf.getvalue()


def encode_image(image: Image.Image) -> EncodedBlob:
    """RGB PNG bytes of ``image`` (converted to RGB if needed), no metadata."""
    if not isinstance(image, Image.Image):
        raise InputError(f"Expected a PIL image to store, got {type(image).__name__}.",
                         hint="Pass a PIL.Image.Image (RGB).")
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    clean = Image.frombytes("RGB", rgb.size, rgb.tobytes())  # drops every .info entry
    data = _png_bytes(clean)
    return EncodedBlob(data, sha256_hex(data), "image", clean.width, clean.height)


def encode_alpha(alpha: Image.Image) -> EncodedBlob:
    """8-bit grayscale PNG of an alpha plane (a PIL 'L' image; other modes are converted)."""
    if not isinstance(alpha, Image.Image):
        raise InputError(f"Expected a PIL 'L' image as alpha, got {type(alpha).__name__}.",
                         hint="Pass the alpha plane kept aside by the loader (mode 'L').")
    plane = alpha if alpha.mode == "L" else alpha.convert("L")
    clean = Image.frombytes("L", plane.size, plane.tobytes())
    data = _png_bytes(clean)
    return EncodedBlob(data, sha256_hex(data), "alpha", clean.width, clean.height)


def encode_mask(mask) -> EncodedBlob:
    """8-bit grayscale PNG of ``round(clip(mask, 0, 1) * 255)``."""
    import numpy as np

    arr = np.asarray(mask)
    if arr.ndim != 2:
        raise MaskError(f"A mask must be a 2-D H x W array; got shape {arr.shape}.",
                        hint="Pass a float32 H x W array with values in [0, 1].")
    if arr.dtype == bool:
        arr = arr.astype(np.float32)
    arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        raise MaskError("The mask contains NaN or infinite values.",
                        hint="Pass a float32 H x W array with values in [0, 1].")
    q = np.rint(np.clip(arr, 0.0, 1.0) * 255.0).astype(np.uint8)
    img = Image.frombytes("L", (q.shape[1], q.shape[0]), np.ascontiguousarray(q).tobytes())
    data = _png_bytes(img)
    return EncodedBlob(data, sha256_hex(data), "mask", img.width, img.height)


def decode_png(data: bytes, *, what: str) -> Image.Image:
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except Exception as exc:  # noqa: BLE001 - any decoder failure means a corrupt blob
        raise StoreCorruptError(f"Stored {what} could not be decoded as PNG: {exc}",
                                hint="Run `imagent verify` to list damaged versions.") from exc
    return img


class BlobDir:
    """The ``blobs/`` directory of a store."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path_for(self, key: str) -> Path:
        if not HASH_RE.match(key):  # keys are computed, but never trust a string from the db
            raise StoreCorruptError(f"Invalid blob key {key!r} (expected 64 lowercase hex characters).",
                                    hint="Run `imagent verify`; the store database may be damaged.")
        return self.root / key[:2] / key[2:]

    def exists(self, key: str) -> bool:
        return self.path_for(key).is_file()

    def write(self, data: bytes, key: str | None = None, *, fsync: bool = True) -> str:
        """Store ``data`` under its sha256 key (skipped if already there); return the key."""
        key = key or sha256_hex(data)
        final = self.path_for(key)
        if final.is_file():
            return key
        shard = final.parent
        if not shard.is_dir():
            shard.mkdir(exist_ok=True)
            if fsync:
                fsync_dir(self.root)
        # Temp file named TMP_PREFIX... in the shard (Store.gc removes old leftovers by that
        # name), fsynced, renamed onto the final name, shard fsynced: never a partial blob.
        atomic_write(final, data, fsync=fsync, mode=0o644, tmp_prefix=TMP_PREFIX)
        return key

    def read(self, key: str, *, check: bool = True) -> bytes:
        path = self.path_for(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise StoreCorruptError(f"Blob {key[:12]}... is missing from the store ({path}).",
                                    hint="Run `imagent verify` to list affected versions; "
                                         "restore the store from a bundle or backup.") from None
        if check and sha256_hex(data) != key:
            raise StoreCorruptError(f"Blob {key[:12]}... is damaged: its bytes no longer match its hash.",
                                    hint="Run `imagent verify` to list affected versions; "
                                         "restore the store from a bundle or backup.")
        return data

    def iter_files(self):
        """Yield ``(path, key_or_None, is_temp)`` for every file under blobs/<shard>/."""
        try:
            shards = list(os.scandir(self.root))
        except FileNotFoundError:
            return
        for shard in shards:
            if not shard.is_dir(follow_symlinks=False):
                continue
            for entry in os.scandir(shard.path):
                if not entry.is_file(follow_symlinks=False):
                    continue
                name = entry.name
                if name.startswith(TMP_PREFIX):
                    yield Path(entry.path), None, True
                    continue
                key = shard.name + name
                yield Path(entry.path), (key if HASH_RE.match(key) else None), False
