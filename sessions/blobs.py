"""Content-addressed blobs: a blob is named by its pixels, stored by a fast lossless codec.

Identity
--------
A blob's key is the sha256 of its *decoded pixels*: ``sha256(b"<mode>:<W>x<H>:" + raw
bytes)`` -- exactly ``imagent.sessions.store.pixel_digest`` of the stored image (mode
``RGB`` for images, ``L`` for masks and alpha planes). The key does not depend on the
encoder, its version or its settings: the same pixels give the same key on every machine
(deduplication; ``replay --verify`` compares pixels), and whatever bytes a store holds for
a key, they must decode to exactly those pixels. A blob lives at
``<home>/blobs/<key[:2]>/<key[2:]>``; nothing user-given ever goes into a blob path.

Stored bytes
------------
``MAGIC`` (12 bytes), a 4-byte big-endian header length, a JSON header
``{"codec", "mode", "width", "height"}``, then the payload:

* ``updelta-zstd`` (everything the store encodes itself): the raw pixel rows, each row
  replaced by its byte-wise difference from the row above (PNG's "Up" filter, mod 256),
  compressed with zstd level 1 (frame with content size and checksum).
* ``png`` / ``jpeg`` / ``webp`` (a session's root only): the user's original file, byte
  for byte, kept because it decodes (no EXIF transpose) to exactly the loaded pixels.
  Either the loader vouches for it (``LoadedImage.exact_decode``: those very bytes were
  decoded to the image with nothing done after -- 8-bit RGB, no transparency, no EXIF
  rotation; ``encode_exact_original``, no second decode, PNG included), or, for a
  JPEG/WebP the loader did not vouch for, the store decodes it with Pillow and compares
  (``encode_original``). Reading such a blob decodes a PNG/JPEG as the loader's fast path
  does (OpenCV) and, if that does not match the key, with Pillow; the key is checked.

*Legacy blobs* (stores and bundles written before this format) are plain PNG files whose
key is the sha256 of their bytes. They are read as before (byte hash checked, PNG
decoded); new writes never produce them. The two kinds cannot be confused: a legacy blob
starts with the PNG signature, a new one with ``MAGIC``.

Choice of codec (measured on this machine, 2 shared cores, best of 2-4 runs; 12 MP =
4000x3000 RGB = 36 MB raw; "smooth" = skimage astronaut upscaled bicubically, "noisy" =
the same plus Gaussian noise sigma 6, like a high-ISO photo)::

    codec                        smooth: enc   dec   size  | noisy: enc   dec   size
    PNG, Pillow zlib 6 (before)        3349   637   6.6 MB |       3831   298* 23.0 MB
    PNG, Pillow zlib 1                  981   617   8.3 MB |       3321   814  25.2 MB
    PNG, cv2.imencode level 1          1078   421   8.3 MB |       2732   619  24.5 MB
    WebP lossless, cv2 (q=101)        10175   418   4.1 MB |      17677   892  20.9 MB
    WebP lossless, Pillow method 0     1846   772   6.5 MB |       1911  1010  24.6 MB
    raw + zlib 1                       1026   348  18.0 MB |       2816   451  32.4 MB
    raw + zstd 1                        212    83  19.6 MB |        224   111  32.8 MB
    raw + zstd 3                        824   143  17.6 MB |        763   131  32.5 MB
    Up-filter + zstd 1 (chosen)     27+205 170+32  7.1 MB |     18+174 135+33  23.1 MB
    (times in ms; * an outlier of the shared machine; sha256 of the 36 MB of pixels: 50-80)

Up-filter + zstd 1 encodes ~15x faster than PNG at zlib 6 (and ~5x faster than any PNG
or WebP setting) at the size of PNG zlib 6, and decodes ~2-3x faster; zstd without the
filter is as fast but 1.4-2.8x bigger. The filter's inverse is a running sum over rows
(one vectorised add per row: ~30 ms at 12 MP; ``np.cumsum`` along axis 0 took ~1 s).

Originals: decoding a 12 MP JPEG to check it takes ~0.1-0.15 s (less than encoding it)
and the JPEG is 5-20x smaller than any lossless encoding, so a JPEG root is kept as is;
WebP likewise for size (0.5-2.8 MB vs 7-23 MB). A PNG original is kept only on the
loader's word (``EXACT_ORIGINAL_FORMATS``): checking it by decoding (0.55-0.75 s) costs
more than encoding it (~0.25 s), so without that word it is re-encoded
(``ORIGINAL_FORMATS``). Kept, it saves the encode at open (12 MP rocket PNG:
``Assistant.open`` 0.62 -> 0.36 s) but is as big as the user's file (17.0 MB there vs
13.4 MB updelta-zstd) and the root decodes slower (0.27 vs 0.18 s). Alpha: an image with
an alpha plane never keeps its file (its RGB is a conversion of the file's RGBA and the
alpha would be stored twice). A JPEG/WebP root's pixels depend on the decoder build, so
bundles carry such blobs transcoded to ``updelta-zstd`` (same key); PNG is lossless and
travels as is.

Writes are atomic and crash-safe (``imagent.fsio.atomic_write``): the bytes go to
``<shard>/.tmp-<pid>-<random>`` (same directory, so same filesystem), are fsynced, then
``os.replace``d onto the final name, and the shard directory is fsynced. A file under a
final (64-hex) name is therefore always complete; a crash leaves at most a ``.tmp-*``
file, which ``Store.gc`` removes once it is older than its grace period.

Masks (float32 H x W in [0, 1]) are stored as 8-bit ``round(mask * 255)`` (mode L).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import struct
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from imagent.errors import InputError, MaskError, StoreCorruptError
from imagent.fsio import atomic_write, fsync_dir

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAGIC = b"\x89IMGAGENT\r\n\x1a"  # 12 bytes; never the start of a PNG
HASH_RE = re.compile(r"^[0-9a-f]{64}$")
TMP_PREFIX = ".tmp-"
CODEC = "updelta-zstd"
ZSTD_LEVEL = 1
FILE_CODECS = {"png": "PNG", "jpeg": "JPEG", "webp": "WEBP"}  # codec -> Pillow format
ORIGINAL_FORMATS = frozenset({"JPEG", "WEBP"})  # originals kept as is (module docstring)
EXACT_ORIGINAL_FORMATS = frozenset({"PNG", "JPEG", "WEBP"})  # kept on the loader's word (encode_exact_original)
_CV2_FORMATS = frozenset({"PNG", "JPEG"})  # decoded as the loader's fast path does, Pillow second
PORTABLE_CODECS = frozenset({CODEC, "png", "legacy-png"})  # decode to the same pixels everywhere
_CHANNELS = {"RGB": 3, "L": 1}
_MAX_HEADER = 4096
_THREAD_HASH_BYTES = 1 << 20
_MAX_PIXELS = 1 << 31
_DAMAGED_HINT = ("Run `imagent verify` to list affected versions; "
                 "restore the store from a bundle or backup.")


@dataclass(frozen=True)
class EncodedBlob:
    """Bytes ready to store: ``data``, its key ``sha256`` (of the pixels), what it is, its size.

    ``Store.commit`` accepts these in place of a PIL image / mask / alpha, which
    lets callers (and ``bench/store.py``) encode outside the timed store work.
    """

    data: bytes
    sha256: str  # the blob key: pixel digest (legacy blobs: sha256 of ``data``)
    kind: str  # "image" | "mask" | "alpha"
    width: int
    height: int

    @property
    def key(self) -> str:
        return self.sha256

    def __repr__(self) -> str:  # never dump the bytes
        return (f"EncodedBlob(kind={self.kind!r}, {self.width}x{self.height}, "
                f"key={self.sha256[:12]}..., {len(self.data)} bytes)")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def pixel_key(mode: str, width: int, height: int, raw: bytes | memoryview) -> str:
    """The blob key of pixels: sha256 of ``"<mode>:<W>x<H>:"`` + the raw bytes (= ``pixel_digest``)."""
    h = hashlib.sha256()
    h.update(f"{mode}:{width}x{height}:".encode())
    h.update(raw)
    return h.hexdigest()


# --------------------------------------------------------------------------- the container
def _wrap(codec: str, mode: str, width: int, height: int, payload: bytes) -> bytes:
    header = json.dumps({"codec": codec, "height": height, "mode": mode, "width": width},
                        sort_keys=True, separators=(",", ":")).encode("ascii")
    return b"".join((MAGIC, struct.pack(">I", len(header)), header, payload))


def blob_header(data: bytes) -> dict[str, Any]:
    """``{"codec", "mode", "width", "height", "offset"}`` of stored bytes; ``{"codec": "legacy-png"}``
    for a legacy PNG blob. Raises ``ValueError`` for anything else."""
    if data.startswith(PNG_SIGNATURE):
        return {"codec": "legacy-png"}
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 4:
        raise ValueError("not an imagent blob (unknown leading bytes)")
    (n,) = struct.unpack_from(">I", data, len(MAGIC))
    start = len(MAGIC) + 4
    if n > _MAX_HEADER or start + n > len(data):
        raise ValueError("malformed blob header")
    head = json.loads(data[start:start + n].decode("ascii"))
    if not isinstance(head, dict):
        raise ValueError("malformed blob header")
    codec, mode, w, h = head.get("codec"), head.get("mode"), head.get("width"), head.get("height")
    if codec != CODEC and codec not in FILE_CODECS:
        raise ValueError(f"unknown blob codec {codec!r} (written by a newer imagent?)")
    if mode not in _CHANNELS or not all(type(x) is int and x > 0 for x in (w, h)) or w * h > _MAX_PIXELS:
        raise ValueError("malformed blob header")
    return {"codec": codec, "mode": mode, "width": w, "height": h, "offset": start + n}


# --------------------------------------------------------------------------- encoding
def _encode_raw(raw: bytes, mode: str, width: int, height: int, kind: str) -> EncodedBlob:
    import zstandard

    keys: list[str] = []
    hasher = None
    if len(raw) >= _THREAD_HASH_BYTES:  # sha256 and zstd both release the GIL: hash meanwhile
        hasher = threading.Thread(target=lambda: keys.append(pixel_key(mode, width, height, raw)))
        hasher.start()
    rows = np.frombuffer(raw, np.uint8).reshape(height, width * _CHANNELS[mode])
    up = rows.copy()
    np.subtract(rows[1:], rows[:-1], out=up[1:])  # PNG "Up" filter, wraps mod 256
    payload = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=True,
                                       write_content_size=True).compress(up.data)
    if hasher is None:
        keys.append(pixel_key(mode, width, height, raw))
    else:
        hasher.join()
    return EncodedBlob(_wrap(CODEC, mode, width, height, payload), keys[0], kind, width, height)


def encode_image(image: Image.Image) -> EncodedBlob:
    """The blob of ``image`` as RGB (converted if needed); metadata (ICC, EXIF, text) is dropped."""
    if not isinstance(image, Image.Image):
        raise InputError(f"Expected a PIL image to store, got {type(image).__name__}.",
                         hint="Pass a PIL.Image.Image (RGB).")
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    return _encode_raw(rgb.tobytes(), "RGB", rgb.width, rgb.height, "image")


def encode_alpha(alpha: Image.Image) -> EncodedBlob:
    """The blob of an alpha plane (a PIL 'L' image; other modes are converted)."""
    if not isinstance(alpha, Image.Image):
        raise InputError(f"Expected a PIL 'L' image as alpha, got {type(alpha).__name__}.",
                         hint="Pass the alpha plane kept aside by the loader (mode 'L').")
    plane = alpha if alpha.mode == "L" else alpha.convert("L")
    return _encode_raw(plane.tobytes(), "L", plane.width, plane.height, "alpha")


def encode_mask(mask) -> EncodedBlob:
    """The blob of ``round(clip(mask, 0, 1) * 255)`` as an 8-bit plane (mode L)."""
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
    q = np.ascontiguousarray(np.rint(np.clip(arr, 0.0, 1.0) * 255.0).astype(np.uint8))
    return _encode_raw(q.tobytes(), "L", q.shape[1], q.shape[0], "mask")


def sniff_format(data: bytes) -> str | None:
    """``"PNG"``, ``"JPEG"`` or ``"WEBP"`` from a file's leading bytes, else None."""
    if data.startswith(PNG_SIGNATURE):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


def encode_original(image: Image.Image, original: bytes | str | os.PathLike, *,
                    formats=ORIGINAL_FORMATS) -> EncodedBlob | None:
    """A blob holding the file ``original`` (bytes or a path) as is, if it decodes to ``image``.

    Only files whose format (sniffed from their bytes) is in ``formats`` are considered;
    the check decodes the file (Pillow, ``convert("RGB")``, no EXIF transpose) and
    compares its pixel digest with ``image``'s. Returns None when the file is not kept
    (other format, unreadable, or other pixels: EXIF rotation, 16-bit samples, a file
    changed since it was loaded...); the caller then encodes ``image``.
    """
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    try:
        if isinstance(original, (bytes, bytearray, memoryview)):
            data = bytes(original)
        else:
            with open(original, "rb") as fh:
                if sniff_format(fh.read(16)) not in formats:
                    return None
                fh.seek(0)
                data = fh.read()
    except OSError:
        return None
    fmt = sniff_format(data)
    if fmt not in formats:
        return None
    codec = {v: k for k, v in FILE_CODECS.items()}[fmt]
    try:
        got = _decode_file(data, fmt)
    except Exception:  # noqa: BLE001 - any failure just means "not kept"
        return None
    if got.size != rgb.size:
        return None
    raw = rgb.tobytes()
    if got.tobytes() != raw:  # the check: the file decodes to exactly these pixels
        return None
    key = pixel_key("RGB", rgb.width, rgb.height, raw)
    return EncodedBlob(_wrap(codec, "RGB", rgb.width, rgb.height, data), key, "image", rgb.width, rgb.height)


def encode_exact_original(image: Image.Image, data: bytes, *,
                          formats=EXACT_ORIGINAL_FORMATS) -> EncodedBlob | None:
    """A blob holding the file bytes ``data`` as is, on the caller's word that they decode to ``image``.

    For the loader's ``exact_decode`` (``LoadedImage.file_bytes`` are the bytes it decoded
    to ``image``, nothing done to the pixels after): no second decode. Only the cheap
    facts are checked -- ``image`` is RGB, the format (sniffed) is in ``formats`` and
    the file's header (Pillow, no pixel decoding) says one frame of 8-bit RGB of
    ``image``'s size, no transparency. The key is ``image``'s pixel digest as always.
    Returns None when any of that does not hold; the caller then does what it did before.
    """
    if not isinstance(image, Image.Image) or image.mode != "RGB":
        return None
    if not isinstance(data, (bytes, bytearray, memoryview)):
        return None
    data = bytes(data)
    fmt = sniff_format(data)
    if fmt not in formats:
        return None
    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as head:
            if (head.size != image.size or head.mode != "RGB" or "transparency" in head.info
                    or getattr(head, "n_frames", 1) != 1
                    or (fmt == "PNG" and [t.args for t in head.tile] != ["RGB"])):
                return None
    except Exception:  # noqa: BLE001 - unreadable header: not kept
        return None
    codec = {v: k for k, v in FILE_CODECS.items()}[fmt]
    key = pixel_key("RGB", image.width, image.height, image.tobytes())
    return EncodedBlob(_wrap(codec, "RGB", image.width, image.height, data), key, "image",
                       image.width, image.height)


def portable_blob(data: bytes, key: str, *, what: str) -> bytes:
    """``data`` checked against ``key``; re-encoded unless its codec decodes the same everywhere.

    Used by bundle export: a JPEG/WebP original is decoded here and carried as
    ``updelta-zstd`` (same key), so the importing machine's decoder does not matter.
    Raises ``StoreCorruptError`` when ``data`` does not match ``key``.
    """
    img = decode_blob(data, key=key, what=what)
    if blob_header(data)["codec"] in PORTABLE_CODECS:
        return data
    return _encode_raw(img.tobytes(), img.mode, img.width, img.height, "image").data


# --------------------------------------------------------------------------- decoding
def _decode_file(data: bytes, fmt: str) -> Image.Image:
    img = Image.open(io.BytesIO(data), formats=[fmt])
    img.load()
    return img if img.mode == "RGB" else img.convert("RGB")


def _decode_file_cv2(data: bytes, width: int, height: int) -> np.ndarray | None:
    """A PNG/JPEG decoded as ``tools.imageio``'s fast path does (OpenCV, RGB, no EXIF
    rotation), or None when OpenCV cannot or gives another shape."""
    import cv2

    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION)
    if arr is None or arr.shape != (height, width, 3) or arr.dtype != np.uint8:
        return None
    return np.ascontiguousarray(arr)


def _decode_original(data: bytes, codec: str, mode: str, width: int, height: int,
                     key: str | None) -> tuple[Image.Image, bool]:
    """A file blob's pixels: PNG/JPEG first as the loader's fast path decodes them (OpenCV:
    what an ``exact_decode`` root was loaded with, and faster), then by Pillow (what
    ``encode_original`` checked), the first that matches ``key``; the last tried when none does.
    Returns the image and whether it was already checked against ``key``."""
    fmt = FILE_CODECS[codec]
    if mode == "RGB" and fmt in _CV2_FORMATS:
        try:
            arr = _decode_file_cv2(data, width, height)
        except Exception:  # noqa: BLE001 - Pillow's turn
            arr = None
        if arr is not None and (key is None or pixel_key(mode, width, height, arr.data) == key):
            return Image.fromarray(arr), key is not None
    img = _decode_file(data, fmt)
    return (img.convert("L") if mode == "L" else img), False


def _decode_updelta(payload: memoryview, mode: str, width: int, height: int) -> tuple[Image.Image, np.ndarray]:
    """The image and its raw pixel rows (hashing these skips an ``Image.tobytes`` copy)."""
    import zstandard

    row = width * _CHANNELS[mode]
    size = row * height
    raw = zstandard.ZstdDecompressor().decompress(payload, max_output_size=size)
    if len(raw) != size:
        raise ValueError(f"payload holds {len(raw)} bytes, expected {size}")
    rows = np.frombuffer(raw, np.uint8).reshape(height, row).copy()
    for i in range(1, height):  # undo the Up filter: a running sum down the rows
        np.add(rows[i], rows[i - 1], out=rows[i])
    return Image.frombytes(mode, (width, height), rows.data), rows


def decode_blob(data: bytes, *, key: str | None = None, what: str) -> Image.Image:
    """The image stored in ``data`` (mode RGB or L); with ``key``, checked against it.

    Raises ``StoreCorruptError`` (the message says "damaged") for bytes that do not
    parse or decode, or whose pixels (legacy blobs: bytes) do not match ``key``.
    """
    try:
        head = blob_header(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise StoreCorruptError(f"Stored {what} is damaged: {exc}.", hint=_DAMAGED_HINT) from None
    codec = head["codec"]
    if codec == "legacy-png":
        if key is not None and sha256_hex(data) != key:
            raise StoreCorruptError(f"Stored {what} is damaged: its bytes no longer match its hash.",
                                    hint=_DAMAGED_HINT)
        try:
            img = Image.open(io.BytesIO(data), formats=["PNG"])
            img.load()
        except Exception as exc:  # noqa: BLE001 - any decoder failure means a corrupt blob
            raise StoreCorruptError(f"Stored {what} is damaged: it could not be decoded as PNG: {exc}",
                                    hint=_DAMAGED_HINT) from exc
        return img
    mode, w, h = head["mode"], head["width"], head["height"]
    payload = memoryview(data)[head["offset"]:]
    raw = None
    checked = False
    try:
        if codec == CODEC:
            img, rows = _decode_updelta(payload, mode, w, h)
            raw = rows.data
        else:
            img, checked = _decode_original(bytes(payload), codec, mode, w, h, key)
    except Exception as exc:  # noqa: BLE001
        raise StoreCorruptError(f"Stored {what} is damaged: it could not be decoded ({codec}): {exc}",
                                hint=_DAMAGED_HINT) from exc
    if img.size != (w, h) or img.mode != mode:
        raise StoreCorruptError(f"Stored {what} is damaged: it decodes to {img.mode} {img.width}x{img.height}, "
                                f"its header says {mode} {w}x{h}.", hint=_DAMAGED_HINT)
    if key is not None and not checked and pixel_key(mode, w, h, img.tobytes() if raw is None else raw) != key:
        extra = ("" if codec in PORTABLE_CODECS else
                 f" (a {codec.upper()} original: this machine's decoder may differ from the one that stored it)")
        raise StoreCorruptError(f"Stored {what} is damaged: its pixels do not match its hash{extra}.",
                                hint=_DAMAGED_HINT)
    return img


def blob_problem(key: str, data: bytes) -> str | None:
    """None when ``data`` is a sound blob for ``key`` (decoded and checked), else what is wrong."""
    try:
        decode_blob(data, key=key, what=f"blob {key[:12]}...")
    except StoreCorruptError as exc:
        return exc.message
    return None


def decode_png(data: bytes, *, what: str) -> Image.Image:  # pre-pixel-key name, kept for callers
    return decode_blob(data, what=what)


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
        """Store ``data`` under ``key`` (default: the sha256 of ``data``), skipped if already there.

        Returns only once the file and its directory entry are durable (fsync).
        """
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

    def read(self, key: str, *, check: bool = False) -> bytes:
        """The stored bytes of ``key``; ``check`` decodes them and checks them against the key."""
        path = self.path_for(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise StoreCorruptError(f"Blob {key[:12]}... is missing from the store ({path}).",
                                    hint=_DAMAGED_HINT) from None
        if check:
            problem = blob_problem(key, data)
            if problem:
                raise StoreCorruptError(problem, hint=_DAMAGED_HINT)
        return data

    def load(self, key: str, *, what: str) -> Image.Image:
        """Read, decode and check the blob ``key`` (pixels against the key)."""
        return decode_blob(self.read(key), key=key, what=what)

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
