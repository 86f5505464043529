"""The one image loader and saver of imagent.

``load_image`` turns any supported file (or bytes) into an RGB ``PIL.Image`` with
the alpha channel kept aside, EXIF orientation applied and a pixel limit checked
before the pixels are decoded. ``save_image`` writes PNG / JPEG / WebP atomically
(``imagent.fsio.atomic_write``: temp file in the target folder, fsync, ``os.replace``,
fsync of the folder) with provenance metadata.

Mode policy of the loader (``LoadedImage.original_mode`` keeps the source mode):

- RGB: as is.  RGBA / LA / PA / RGBa / La and P, L or RGB with a ``transparency``
  entry: colour to RGB, alpha to ``LoadedImage.alpha`` (mode ``L``).
- P, L, 1, CMYK, YCbCr, LAB, HSV: converted to RGB by Pillow.
- I;16 (all byte orders): 0..65535 mapped linearly onto 0..255 (rounded, not clipped).
- I (32-bit int): values inside 0..65535 are treated as 16-bit samples (as above);
  anything else is stretched from its minimum to its maximum.
- F (float): values inside [0, 1] are scaled by 255; anything else is stretched from
  its minimum to its maximum. NaN becomes 0.
- Multi-frame files (GIF, APNG, TIFF): the first frame.

``LoadedImage.exact_decode`` says that ``image`` is the plain decode of the file's bytes
(an 8-bit RGB PNG, JPEG or WebP without transparency, no EXIF rotation applied, one
frame), and ``LoadedImage.file_bytes`` holds those bytes (the very bytes decoded, read
once). The session store then keeps them as the root blob without decoding them again
(``Store.create_session(..., original=file_bytes, original_exact=True)``).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import struct
import warnings
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import ExifTags, Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from imagent.errors import ImageLoadError, ImagentError, InputError, InternalError, MaskError
from imagent.fsio import atomic_write

log = logging.getLogger(__name__)

DEFAULT_MAX_PIXELS = 80_000_000
SAVE_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
_EXIF_IMAGE_DESCRIPTION = 0x010E
_ALPHA_MODES = {"RGBA", "LA", "PA", "RGBa", "La"}
_EXACT_FORMATS = ("PNG", "JPEG", "WEBP")  # formats whose plain decode exact_decode can vouch for
_MAX_PIXELS_HINT = ("if you trust this file, raise the limit with the setting `max_pixels` "
                    "(or the environment variable IMAGENT_MAX_PIXELS)")


@dataclass
class LoadedImage:
    """An image as the loader returns it: RGB pixels, alpha aside, where it came from."""

    image: Image.Image  # mode RGB
    alpha: Image.Image | None  # mode L, or None when the source had no transparency
    path: str | None
    format: str | None  # e.g. "PNG", "JPEG"
    original_mode: str  # the mode of the source, e.g. "RGBA", "I;16", "CMYK"
    # True only when ``image`` is exactly what decoding ``file_bytes`` gives (8-bit RGB
    # PNG/JPEG/WebP, no transparency, no EXIF rotation, no conversion); else False.
    exact_decode: bool = False
    file_bytes: bytes | None = field(default=None, repr=False)  # set when exact_decode

    @property
    def size(self) -> tuple[int, int]:
        return self.image.size


# --------------------------------------------------------------------------- loading
def load_image(source: str | os.PathLike | bytes, *,
               max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Load an image file (or its bytes) as RGB with alpha kept aside.

    Raises ``ImageLoadError`` naming the file for a missing file, a folder, an empty
    file, a non-image, a corrupt or truncated file, or one over ``max_pixels``.
    """
    if not isinstance(max_pixels, int) or max_pixels < 1:
        raise InputError(f"max_pixels must be a positive integer, got {max_pixels!r}",
                         hint="set `max_pixels` to the largest width*height to accept, "
                              f"e.g. {DEFAULT_MAX_PIXELS}")
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        name = "<bytes>"
        path_str = None
        if not data:
            raise ImageLoadError("the image data is empty (0 bytes)",
                                 hint="pass the bytes of a PNG, JPEG or WebP file")
        return _load_from(io.BytesIO(data), name, path_str, max_pixels)
    if not isinstance(source, (str, os.PathLike)):
        raise ImageLoadError(f"cannot load an image from a {type(source).__name__} "
                             f"({source!r:.60})", hint="pass a file path or the file's bytes")
    path = Path(source).expanduser()
    name = str(source)
    if not path.exists():
        raise ImageLoadError(f"image file {name!r} does not exist",
                             hint="check the path (relative paths start at the current folder)")
    if path.is_dir():
        raise ImageLoadError(f"{name!r} is a folder, not an image file",
                             hint="name an image file inside it, e.g. a .png or .jpg")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise ImageLoadError(f"cannot read image file {name!r}: {exc.strerror or exc}",
                             hint="check that the file is readable") from exc
    if size == 0:
        raise ImageLoadError(f"image file {name!r} is empty (0 bytes)",
                             hint="the file was probably not written completely; "
                                  "export or download it again")
    try:
        fh = open(path, "rb")
    except OSError as exc:
        raise ImageLoadError(f"cannot open image file {name!r}: {exc.strerror or exc}",
                             hint="check that the file is readable") from exc
    with fh:
        return _load_from(fh, name, str(path), max_pixels)


def _load_from(fh: Any, name: str, path_str: str | None, max_pixels: int) -> LoadedImage:
    try:
        with warnings.catch_warnings():
            # our own limit is checked below; Pillow's warning is only noise here
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(fh)
    except UnidentifiedImageError as exc:
        raise ImageLoadError(f"{name!r} is not an image Pillow can read",
                             hint="use a PNG, JPEG, WebP, TIFF, BMP or GIF file") from exc
    except Image.DecompressionBombError as exc:
        raise ImageLoadError(f"{name!r} is too large to open safely: {exc}",
                             hint=_MAX_PIXELS_HINT) from exc
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a bad file
        raise ImageLoadError(f"{name!r} could not be opened as an image: {exc}",
                             hint="the file is corrupt or not an image") from exc
    with im:
        width, height = im.size
        fmt = im.format
        mode = im.mode
        if width * height > max_pixels:
            raise ImageLoadError(
                f"{name!r} is {width}x{height} = {width * height:,} pixels, over the limit "
                f"of {max_pixels:,} pixels", hint=_MAX_PIXELS_HINT)
        if width < 1 or height < 1:
            raise ImageLoadError(f"{name!r} has no pixels ({width}x{height})",
                                 hint="use a non-empty image")
        fast = _fast_decode(im, fh)
        if fast is not None:
            rgb, data, transposed = fast
            return LoadedImage(image=rgb, alpha=None, path=path_str, format=fmt,
                               original_mode=mode, exact_decode=not transposed,
                               file_bytes=None if transposed else data)
        data = None
        if _exact_candidate(im):
            # read the bytes once and decode exactly those, so they can be kept as they are
            try:
                fh.seek(0)
                data = fh.read()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                    src = Image.open(io.BytesIO(data), formats=[fmt])
            except Exception:  # noqa: BLE001 - fall back to decoding from the file
                data = None
            else:
                if _exact_candidate(src) and src.size == im.size:
                    im = src
                else:
                    data = None
        try:
            im.load()  # full decode: truncated and corrupt files fail here
        except Exception as exc:  # noqa: BLE001
            raise ImageLoadError(f"{name!r} is corrupt or truncated: {exc}",
                                 hint="the file is damaged; export or download it again") from exc
        try:
            oriented, transposed = _exif_transpose(im, name)
            rgb, alpha = _to_rgb(oriented, name)
        except ImagentError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise ImageLoadError(f"{name!r} could not be decoded to RGB (mode {mode}): {exc}",
                                 hint="convert the file to an 8-bit RGB PNG or JPEG") from exc
        # exact: the RGB is Pillow's decode of ``data`` itself (no rotation, no conversion)
        exact = data is not None and not transposed and rgb is oriented and alpha is None
        if rgb is im:
            rgb = im.copy()
    return LoadedImage(image=rgb, alpha=alpha, path=path_str, format=fmt, original_mode=mode,
                       exact_decode=exact, file_bytes=data if exact else None)


def _exact_candidate(im: Image.Image) -> bool:
    """Whether Pillow's plain decode of ``im`` is already the loader's RGB (before EXIF
    rotation): one frame of 8-bit RGB PNG / JPEG / WebP without transparency."""
    try:
        if im.format not in _EXACT_FORMATS or im.mode != "RGB" or "transparency" in im.info:
            return False
        if getattr(im, "n_frames", 1) != 1 or (im.format != "WEBP" and len(im.tile) != 1):
            return False  # (Pillow's WebP reader decodes without tiles)
        return im.format != "PNG" or im.tile[0].args == "RGB"  # "RGB;16B": 16-bit samples
    except Exception:  # noqa: BLE001 - unsure means no
        return False


def _fast_decode(im: Image.Image, fh: Any) -> tuple[Image.Image, bytes, bool] | None:
    """The pixels of a plain 8-bit RGB PNG or an RGB JPEG decoded by OpenCV (faster than
    Pillow's decoders, same pixels), with Pillow's ``info`` (ICC profile, EXIF, dpi...) kept
    and the EXIF orientation applied as ``ImageOps.exif_transpose`` does. None for anything
    else (alpha, palette, 16 bit, animation, a file that does not end where it should, an
    EXIF block Pillow finds only after the pixels): Pillow's own path handles those.
    Returns ``(rgb, the file's bytes, whether the EXIF orientation rotated/flipped it)``."""
    try:
        tile = im.tile[0] if len(im.tile) == 1 else None
        if tile is None or im.mode != "RGB" or getattr(im, "is_animated", False):
            return None
        if im.format == "PNG":
            if tile.codec_name != "zip" or tile.args != "RGB" or "transparency" in im.info:
                return None
        elif im.format != "JPEG" or tile.codec_name != "jpeg":
            return None
        fh.seek(0)
        data = fh.read()
        if im.format == "PNG":
            if not data.endswith(b"IEND\xaeB`\x82") or (
                    "exif" not in im.info and b"eXIf" in data):
                return None
        elif not data.rstrip(b"\0").endswith(b"\xff\xd9"):
            return None  # truncated: Pillow's decoder says so
        arr = cv2.imdecode(np.frombuffer(data, np.uint8),
                           cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION)
    except Exception:  # noqa: BLE001 - anything unusual goes the way Pillow reads it
        return None
    if arr is None or arr.ndim != 3 or arr.shape[:2] != (im.height, im.width):
        return None
    rgb = Image.fromarray(arr)
    rgb.info.update(im.info)
    core = rgb.im
    try:
        ImageOps.exif_transpose(rgb, in_place=True)
    except Exception as exc:  # noqa: BLE001 - a broken EXIF block must not hide the pixels
        log.warning("ignoring unreadable EXIF orientation of %s: %s", im.filename or "image", exc)
    return rgb, data, rgb.im is not core  # in place: a transposition replaces ``rgb.im``


def _exif_transpose(im: Image.Image, name: str) -> tuple[Image.Image, bool]:
    """``im`` turned by its EXIF orientation, and whether it was (2..8: a transposition)."""
    try:
        orientation = im.getexif().get(ExifTags.Base.Orientation, 1)
        out = ImageOps.exif_transpose(im)
    except Exception as exc:  # noqa: BLE001 - a broken EXIF block must not hide the pixels
        log.warning("ignoring unreadable EXIF orientation of %s: %s", name, exc)
        return im, False
    if out is None:
        return im, False
    return out, orientation in range(2, 9)  # as exif_transpose decides (else it returns a copy)


def _to_rgb(im: Image.Image, name: str) -> tuple[Image.Image, Image.Image | None]:
    mode = im.mode
    if mode == "RGB" and "transparency" not in im.info:
        return im, None
    if mode in _ALPHA_MODES or (mode in ("P", "L", "RGB") and "transparency" in im.info):
        rgba = im.convert("RGBA")
        return rgba.convert("RGB"), rgba.getchannel("A")
    if mode.startswith("I;16"):
        arr = np.asarray(im).astype(np.uint32)
        return Image.fromarray(_u16_to_u8(arr)).convert("RGB"), None
    if mode == "I":
        arr = np.asarray(im).astype(np.int64)
        if arr.min() >= 0 and arr.max() <= 65535:
            return Image.fromarray(_u16_to_u8(arr)).convert("RGB"), None
        return Image.fromarray(_stretch(arr.astype(np.float64))).convert("RGB"), None
    if mode == "F":
        arr = np.nan_to_num(np.asarray(im).astype(np.float64), nan=0.0)
        if arr.min() >= 0.0 and arr.max() <= 1.0:
            u8 = np.round(arr * 255.0).astype(np.uint8)
        else:
            u8 = _stretch(arr)
        return Image.fromarray(u8).convert("RGB"), None
    if mode == "1":
        return im.convert("L").convert("RGB"), None
    try:
        return im.convert("RGB"), None
    except ValueError as exc:
        raise ImageLoadError(f"{name!r} has colour mode {mode!r}, which cannot be converted to RGB",
                             hint="convert the file to an 8-bit RGB PNG or JPEG") from exc


def _u16_to_u8(arr: np.ndarray) -> np.ndarray:
    # round(v * 255 / 65535): 0 -> 0, 65535 -> 255, linear in between
    return ((arr.astype(np.uint64) * 255 + 32767) // 65535).astype(np.uint8)


def _stretch(arr: np.ndarray) -> np.ndarray:
    lo, hi = float(arr.min()), float(arr.max())
    if hi <= lo:
        return np.zeros(arr.shape, np.uint8)
    return np.round((arr - lo) * (255.0 / (hi - lo))).astype(np.uint8)


# --------------------------------------------------------------------------- saving
def save_image(image: Image.Image | np.ndarray, path: str | os.PathLike, *,
               alpha: Image.Image | np.ndarray | None = None,
               provenance: dict[str, str] | None = None, quality: int = 95) -> Path:
    """Write ``image`` to ``path`` atomically; the format follows the extension.

    ``.png`` and ``.webp`` keep ``alpha``; ``.jpg``/``.jpeg`` composite it on white.
    ``provenance`` goes into PNG text chunks, or into EXIF ImageDescription as JSON
    for JPEG and WebP. On any failure the temp file is removed and an existing file
    at ``path`` is left untouched.
    """
    target = Path(path).expanduser()
    ext = target.suffix.lower()
    if ext not in SAVE_FORMATS:
        raise InputError(f"cannot save as {ext or '(no extension)'!r} ({str(path)!r})",
                         hint="use one of the extensions " + ", ".join(SAVE_FORMATS))
    fmt = SAVE_FORMATS[ext]
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"cannot save {str(path)!r}: the folder {str(parent)!r} does not exist",
                         hint="create the folder first or choose another output path")
    if target.is_dir():
        raise InputError(f"cannot save to {str(path)!r}: it is a folder",
                         hint="give a file name with an extension such as .png")
    if not 1 <= int(quality) <= 100:
        raise InputError(f"quality must be between 1 and 100, got {quality!r}",
                         hint="95 is a good default for JPEG and WebP")
    rgb, alpha_img = _prepare_for_save(image, alpha)
    prov = {str(k): str(v) for k, v in (provenance or {}).items()}

    if fmt == "JPEG" and alpha_img is not None:
        white = Image.new("RGB", rgb.size, (255, 255, 255))
        rgb = Image.composite(rgb, white, alpha_img)
        alpha_img = None
    out = rgb
    if alpha_img is not None and fmt != "PNG":
        out = rgb.copy()
        out.putalpha(alpha_img)

    kwargs: dict[str, Any] = {}
    if fmt == "PNG":
        if prov:
            info = PngImagePlugin.PngInfo()
            for k, v in prov.items():
                info.add_itxt(k, v) if not v.isascii() else info.add_text(k, v)
            kwargs["pnginfo"] = info
    else:
        kwargs["quality"] = int(quality)
        if prov:
            exif = Image.Exif()
            exif[_EXIF_IMAGE_DESCRIPTION] = json.dumps(prov, ensure_ascii=True, sort_keys=True)
            kwargs["exif"] = exif.tobytes()
        if fmt == "WEBP" and alpha_img is not None:
            kwargs["exact"] = True  # keep the colour under transparent pixels

    def write(fh: Any) -> None:
        if fmt == "PNG":
            fh.write(_encode_png(rgb, alpha_img, kwargs.get("pnginfo")))
        else:
            out.save(fh, format=fmt, **kwargs)

    # On any failure atomic_write removes its temp file; an existing file is left untouched.
    try:
        atomic_write(target, write)
    except ImagentError:
        raise
    except OSError as exc:
        raise InputError(f"could not write {str(path)!r}: {exc}",
                         hint="check free disk space and write permission of the folder") from exc
    except Exception as exc:  # noqa: BLE001 - an encoder failure of any kind
        raise InternalError(f"saving {str(path)!r} as {fmt} failed: {type(exc).__name__}: {exc}",
                            hint="this is a bug; the existing file (if any) is unchanged") from exc
    return target


def _encode_png(rgb: Image.Image, alpha: Image.Image | None,
                info: PngImagePlugin.PngInfo | None) -> bytes:
    """PNG bytes by OpenCV's encoder (zlib level 1: several times faster than Pillow's
    default at 12 MP, for a file a little larger), RGB or RGBA, with the text chunks of
    ``info`` (the provenance, as Pillow writes them: tEXt, or iTXt for non-ASCII) placed
    right after IHDR."""
    arr = np.asarray(rgb)
    if alpha is not None:
        pixels = cv2.cvtColor(arr, cv2.COLOR_RGB2BGRA)
        pixels[..., 3] = np.asarray(alpha)
    else:
        pixels = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR)
    ok, buf = cv2.imencode(".png", pixels)
    if not ok:
        raise OSError("the PNG encoder failed")
    data = buf.tobytes()
    chunks = getattr(info, "chunks", None) or []
    if not chunks:
        return data
    ihdr_end = 8 + 8 + 13 + 4  # signature, then IHDR (length, type, 13 bytes, CRC)
    if data[12:16] != b"IHDR":
        raise OSError("the PNG encoder wrote no IHDR first")
    extra = b"".join(struct.pack(">I", len(body)) + cid + body +
                     struct.pack(">I", zlib.crc32(cid + body) & 0xFFFFFFFF)
                     for cid, body, *_ in chunks)
    return data[:ihdr_end] + extra + data[ihdr_end:]


def alpha_flatten_note(path: str | os.PathLike, alpha: Image.Image | np.ndarray | None) -> str | None:
    """The note to show when saving ``alpha`` to ``path`` loses it (JPEG holds no alpha: the
    image is flattened onto white), else None. Never silent: the CLI prints it and puts
    ``"alpha_flattened": true`` in its JSON."""
    if alpha is None or SAVE_FORMATS.get(Path(path).suffix.lower()) != "JPEG":
        return None
    a = np.asarray(alpha.convert("L") if isinstance(alpha, Image.Image) else alpha)
    opaque = 255 if a.dtype == np.uint8 else 1.0
    if a.size == 0 or float(a.min()) >= opaque:
        return None  # fully opaque: nothing is lost
    return (f"{Path(path).name}: JPEG cannot hold transparency, so the transparent part was "
            "flattened onto white; write .png or .webp to keep it")


def _prepare_for_save(image: Image.Image | np.ndarray,
                      alpha: Image.Image | np.ndarray | None
                      ) -> tuple[Image.Image, Image.Image | None]:
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8:
            raise InputError(f"cannot save an array of dtype {image.dtype}",
                             hint="pass a PIL image or a uint8 H x W x 3 array")
        image = Image.fromarray(image)
    if not isinstance(image, Image.Image):
        raise InputError(f"cannot save a {type(image).__name__}", hint="pass a PIL image")
    if image.mode in _ALPHA_MODES and alpha is None:
        rgba = image.convert("RGBA")
        alpha = rgba.getchannel("A")
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    alpha_img: Image.Image | None = None
    if alpha is not None:
        if isinstance(alpha, np.ndarray):
            a = alpha
            if a.dtype != np.uint8:
                a = np.round(np.clip(a.astype(np.float64), 0.0, 1.0) * 255.0).astype(np.uint8)
            if a.ndim != 2:
                raise MaskError(f"alpha must be a 2-D array, got shape {alpha.shape}",
                                hint="pass an H x W array or a PIL 'L' image")
            alpha_img = Image.fromarray(np.ascontiguousarray(a))
        else:
            alpha_img = alpha if alpha.mode == "L" else alpha.convert("L")
        if alpha_img.size != rgb.size:
            raise MaskError(f"alpha is {alpha_img.size[0]}x{alpha_img.size[1]} but the image is "
                            f"{rgb.size[0]}x{rgb.size[1]}",
                            hint="the alpha channel must have the size of the image")
    return rgb, alpha_img


# --------------------------------------------------------------------------- metadata
def read_provenance(path: str | os.PathLike) -> dict[str, str]:
    """The provenance ``save_image`` wrote (PNG text chunks, or EXIF JSON); {} if none."""
    p = Path(path)
    if not p.is_file():
        raise ImageLoadError(f"image file {str(path)!r} does not exist",
                             hint="check the path")
    try:
        with Image.open(p) as im:
            if im.format == "PNG":
                im.load()
                return {str(k): str(v) for k, v in getattr(im, "text", {}).items()}
            raw = im.getexif().get(_EXIF_IMAGE_DESCRIPTION)
    except ImagentError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise ImageLoadError(f"cannot read metadata of {str(path)!r}: {exc}",
                             hint="the file is corrupt or not an image") from exc
    if not raw:
        return {}
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    try:
        data = json.loads(raw)
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


# --------------------------------------------------------------------------- masks
def load_mask(path: str | os.PathLike, size: tuple[int, int]) -> np.ndarray:
    """Load a mask file as float32 H x W in [0, 1] (1 = change) for an image of ``size`` (w, h).

    A file with real transparency gives its alpha; otherwise its luminance.
    """
    loaded = load_image(path)
    if loaded.alpha is not None and np.asarray(loaded.alpha).min() < 255:
        gray = loaded.alpha
    else:
        gray = loaded.image.convert("L")
    w, h = int(size[0]), int(size[1])
    if gray.size != (w, h):
        raise MaskError(f"mask {str(path)!r} is {gray.size[0]}x{gray.size[1]} but the image is "
                        f"{w}x{h}", hint="make the mask the same size as the image")
    return np.asarray(gray, dtype=np.float32) / 255.0


def image_digest(image: Image.Image) -> str:
    """sha256 of mode, size and raw pixel bytes (independent of file encoding)."""
    h = hashlib.sha256()
    h.update(f"{image.mode}:{image.size[0]}x{image.size[1]}:".encode())
    h.update(image.tobytes())
    return h.hexdigest()
