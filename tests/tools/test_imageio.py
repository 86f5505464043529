from __future__ import annotations

import io
import os

import numpy as np
import pytest
from PIL import Image

from imagent.errors import ImageLoadError, InputError, MaskError
from imagent.tools import imageio
from imagent.tools.imageio import (image_digest, load_image, load_mask, read_provenance,
                                   save_image)


def _rgb(w=96, h=64, seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def _png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _jpeg_bytes(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", **kw)
    return buf.getvalue()


def _listing(folder):
    return sorted(os.listdir(folder))


# ----------------------------------------------------------------------------- bad inputs
def _bad_inputs(tmp_path):
    good_png = _png_bytes(_rgb())
    good_jpg = _jpeg_bytes(_rgb(seed=1))
    corrupt = bytearray(good_png)
    mid = len(corrupt) // 2
    corrupt[mid:mid + 64] = bytes(64)  # zero a stretch in the middle of the IDAT data
    files = {
        "empty.png": b"",
        "text.png": b"this is not an image, just some text\n" * 10,
        "trunc.png": good_png[: len(good_png) // 2],
        "trunc.jpg": good_jpg[: len(good_jpg) // 2],
        "corrupt.png": bytes(corrupt),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return list(files)


@pytest.mark.parametrize("name", ["empty.png", "text.png", "trunc.png", "trunc.jpg",
                                  "corrupt.png"])
def test_bad_files_raise_imageloaderror_naming_the_file(tmp_path, name):
    _bad_inputs(tmp_path)
    before = _listing(tmp_path)
    with pytest.raises(ImageLoadError) as ei:
        load_image(tmp_path / name)
    assert name in str(ei.value)
    assert ei.value.hint
    assert _listing(tmp_path) == before  # nothing written


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ImageLoadError, match="nope.png") as ei:
        load_image(tmp_path / "nope.png")
    assert "does not exist" in str(ei.value)
    (tmp_path / "adir").mkdir()
    with pytest.raises(ImageLoadError, match="adir") as ei:
        load_image(tmp_path / "adir")
    assert "folder" in str(ei.value)


def test_empty_bytes_and_garbage_bytes():
    with pytest.raises(ImageLoadError, match="empty"):
        load_image(b"")
    with pytest.raises(ImageLoadError, match="not an image"):
        load_image(b"garbage" * 20)


def test_over_max_pixels_checked_before_decoding(tmp_path, monkeypatch):
    p = tmp_path / "big.png"
    _rgb(96, 64).save(p)
    called = []
    monkeypatch.setattr(Image.Image, "load", lambda self: called.append(1))
    with pytest.raises(ImageLoadError) as ei:
        load_image(p, max_pixels=1000)
    msg = str(ei.value)
    assert "big.png" in msg and "96x64" in msg and "1,000" in msg
    assert "max_pixels" in ei.value.hint and "IMAGENT_MAX_PIXELS" in ei.value.hint
    assert not called  # the pixels were never decoded


def test_files_are_closed_after_load(tmp_path):
    p = tmp_path / "a.png"
    _rgb().save(p)
    (tmp_path / "bad.png").write_bytes(b"not an image")

    def open_fds():
        return len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else 0

    n = open_fds()
    li = load_image(p)
    with pytest.raises(ImageLoadError):
        load_image(tmp_path / "bad.png")
    assert open_fds() == n
    assert li.image.mode == "RGB" and li.alpha is None and li.format == "PNG"
    assert li.path == str(p)


# ----------------------------------------------------------------------------- modes
def test_exif_orientation_applied(tmp_path):
    img = Image.new("RGB", (40, 20), (255, 0, 0))
    img.paste((0, 0, 255), (0, 0, 10, 20))  # blue stripe on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW to display
    p = tmp_path / "rot.jpg"
    img.save(p, "JPEG", exif=exif.tobytes(), quality=95)
    li = load_image(p)
    assert li.image.size == (20, 40)
    r, g, b = li.image.getpixel((10, 2))  # the stripe is now at the top
    assert b > 200 and r < 60


def test_rgba_round_trip_keeps_alpha_bit_identical(tmp_path):
    rng = np.random.default_rng(3)
    arr = rng.integers(0, 256, (64, 96, 4), dtype=np.uint8)
    src = tmp_path / "rgba.png"
    Image.fromarray(arr).save(src)
    li = load_image(src)
    assert li.original_mode == "RGBA" and li.alpha is not None
    out = save_image(li.image, tmp_path / "out.png", alpha=li.alpha)
    back = np.asarray(Image.open(out))
    assert back.shape == (64, 96, 4)
    np.testing.assert_array_equal(back, arr)


def test_16bit_gray_maps_full_range(tmp_path):
    arr = np.zeros((4, 4), np.uint16)
    arr[0, 0], arr[0, 1], arr[0, 2] = 65535, 32768, 257
    p = tmp_path / "g16.png"
    Image.fromarray(arr).save(p)
    li = load_image(p)
    assert li.original_mode.startswith("I")
    px = np.asarray(li.image)[..., 0]
    assert px[0, 0] == 255 and px[0, 1] == 128 and px[0, 2] == 1 and px[1, 1] == 0


def test_cmyk_jpeg_loads_rgb(tmp_path):
    p = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (16, 16), (0, 255, 255, 0)).save(p, "JPEG")  # red in CMYK
    li = load_image(p)
    assert li.original_mode == "CMYK" and li.image.mode == "RGB"
    r, g, b = li.image.getpixel((8, 8))
    assert r > 200 and g < 60 and b < 60


def test_palette_with_transparency_keeps_alpha(tmp_path):
    img = Image.new("P", (8, 8), 0)
    img.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    img.paste(1, (0, 0, 4, 8))
    img.info["transparency"] = 0
    p = tmp_path / "p.png"
    img.save(p, transparency=0)
    li = load_image(p)
    assert li.alpha is not None
    a = np.asarray(li.alpha)
    assert a[0, 0] == 255 and a[0, 7] == 0
    assert li.image.getpixel((0, 0)) == (0, 255, 0)


@pytest.mark.parametrize("mode", ["L", "1", "LA", "P", "I", "F", "YCbCr"])
def test_other_modes_load_as_rgb(tmp_path, mode):
    base = Image.fromarray(np.tile(np.arange(64, dtype=np.uint8) * 4, (16, 1)))
    img = base.convert(mode) if mode != "YCbCr" else _rgb(16, 16).convert("YCbCr")
    li = load_image(_png_bytes(img) if mode not in ("I", "F", "YCbCr") else _tiff(img))
    assert li.image.mode == "RGB" and li.image.size == img.size
    assert li.original_mode == mode


def _tiff(img):
    buf = io.BytesIO()
    img.save(buf, "TIFF")
    return buf.getvalue()


# ----------------------------------------------------------------------------- saving
def test_save_formats_and_unknown_extension(tmp_path):
    img = _rgb()
    for ext in (".png", ".jpg", ".jpeg", ".webp"):
        p = save_image(img, tmp_path / f"x{ext}")
        assert p.exists() and Image.open(p).size == img.size
    with pytest.raises(InputError) as ei:
        save_image(img, tmp_path / "x.gif")
    assert "'.gif'" in str(ei.value) and ".png" in ei.value.hint
    assert not (tmp_path / "x.gif").exists()


def test_save_missing_parent_dir(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        save_image(_rgb(), tmp_path / "no" / "such" / "x.png")


def test_jpeg_with_alpha_composites_on_white(tmp_path):
    img = Image.new("RGB", (8, 8), (0, 0, 0))
    alpha = Image.new("L", (8, 8), 0)
    p = save_image(img, tmp_path / "a.jpg", alpha=alpha)
    r, g, b = Image.open(p).convert("RGB").getpixel((4, 4))
    assert min(r, g, b) > 245


def test_webp_keeps_alpha(tmp_path):
    arr = np.zeros((8, 8), np.uint8)
    arr[:, 4:] = 255
    p = save_image(_rgb(8, 8), tmp_path / "a.webp", alpha=Image.fromarray(arr))
    li = load_image(p)
    assert li.alpha is not None
    np.testing.assert_array_equal(np.asarray(li.alpha), arr)


@pytest.mark.parametrize("ext", [".png", ".jpg"])
def test_atomic_save_leaves_no_temp_and_keeps_existing(tmp_path, monkeypatch, ext):
    target = tmp_path / f"keep{ext}"
    original = _rgb(seed=5)
    save_image(original, target)
    before = target.read_bytes()

    def boom(self, fp, format=None, **params):
        fp.write(b"partial garbage")
        raise OSError("disk full (simulated)")

    def boom_png(*args, **kwargs):  # PNG goes through OpenCV's encoder
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(Image.Image, "save", boom)
    monkeypatch.setattr(imageio, "_encode_png", boom_png)
    with pytest.raises(InputError, match=f"keep{ext}"):
        save_image(_rgb(seed=6), target)
    assert target.read_bytes() == before
    assert _listing(tmp_path) == [f"keep{ext}"]


def test_png_save_is_lossless_with_alpha_and_text(tmp_path):
    rng = np.random.default_rng(7)
    arr = rng.integers(0, 256, (30, 50, 3), dtype=np.uint8)
    alpha = rng.integers(0, 256, (30, 50), dtype=np.uint8)
    prov = {"imagent:request": "make it brighter", "note": "caf\u00e9 \u2713"}
    p = save_image(Image.fromarray(arr), tmp_path / "a.png", alpha=alpha, provenance=prov)
    with Image.open(p) as im:
        im.load()
        assert im.mode == "RGBA"
        np.testing.assert_array_equal(np.asarray(im)[..., :3], arr)
        np.testing.assert_array_equal(np.asarray(im)[..., 3], alpha)
    assert read_provenance(p) == prov
    li = load_image(save_image(Image.fromarray(arr), tmp_path / "b.png"))
    np.testing.assert_array_equal(np.asarray(li.image), arr)


def test_fast_decode_matches_pillow(tmp_path):
    rng = np.random.default_rng(8)
    img = Image.fromarray(rng.integers(0, 256, (24, 40, 3), dtype=np.uint8))
    for fmt in ("PNG", "JPEG"):
        for orientation in (1, 3, 6, 8):
            exif = Image.Exif()
            exif[0x0112] = orientation
            buf = io.BytesIO()
            img.save(buf, fmt, exif=exif.tobytes())
            data = buf.getvalue()
            with Image.open(io.BytesIO(data)) as im:
                assert imageio._fast_decode(im, io.BytesIO(data)) is not None
                ref = imageio.ImageOps.exif_transpose(im.convert("RGB"))
            np.testing.assert_array_equal(np.asarray(load_image(data).image), np.asarray(ref))


def test_successful_save_leaves_no_temp(tmp_path):
    save_image(_rgb(), tmp_path / "a.png")
    save_image(_rgb(seed=2), tmp_path / "a.png")  # overwrite
    assert _listing(tmp_path) == ["a.png"]
    assert image_digest(load_image(tmp_path / "a.png").image) == image_digest(_rgb(seed=2))


@pytest.mark.parametrize("ext", [".png", ".jpg", ".webp"])
def test_provenance_round_trip(tmp_path, ext):
    prov = {"imagent:session": "s-123", "imagent:version": "v-abc", "imagent:request": "remove it"}
    p = save_image(_rgb(), tmp_path / f"p{ext}", provenance=prov)
    assert read_provenance(p) == prov
    assert read_provenance(save_image(_rgb(), tmp_path / f"q{ext}")) == {}


# ----------------------------------------------------------------------------- masks
def test_load_mask(tmp_path):
    arr = np.zeros((64, 96), np.uint8)
    arr[10:20, 10:30] = 255
    p = tmp_path / "m.png"
    Image.fromarray(arr).save(p)
    m = load_mask(p, (96, 64))
    assert m.dtype == np.float32 and m.shape == (64, 96)
    assert m[15, 15] == 1.0 and m[0, 0] == 0.0
    with pytest.raises(MaskError) as ei:
        load_mask(p, (100, 50))
    assert "96x64" in str(ei.value) and "100x50" in str(ei.value)


def test_load_mask_uses_alpha_when_transparent(tmp_path):
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[:, :4, 3] = 255
    p = tmp_path / "am.png"
    Image.fromarray(rgba).save(p)
    m = load_mask(p, (8, 8))
    assert m[:, :4].min() == 1.0 and m[:, 4:].max() == 0.0


def test_image_digest_depends_on_pixels_mode_and_size():
    a = _rgb()
    assert image_digest(a) == image_digest(a.copy())
    b = a.copy()
    b.putpixel((0, 0), (1, 2, 3) if a.getpixel((0, 0)) != (1, 2, 3) else (4, 5, 6))
    assert image_digest(a) != image_digest(b)
    assert image_digest(a) != image_digest(a.convert("RGBA"))


def test_module_has_no_truncated_images_flag():
    from PIL import ImageFile

    assert not ImageFile.LOAD_TRUNCATED_IMAGES
    assert imageio.DEFAULT_MAX_PIXELS == 80_000_000


# ----------------------------------------------------------------------------- exact_decode
def _file(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize("fmt,kw", [("PNG", {}), ("JPEG", {"quality": 90}),
                                    ("WEBP", {"quality": 80}), ("WEBP", {"lossless": True}),
                                    ("JPEG", {"exif": b"orientation 1"})])
def test_exact_decode_plain_rgb_files_keep_their_bytes(tmp_path, fmt, kw):
    img = _rgb(seed=5)
    if kw.get("exif"):
        exif = Image.Exif()
        exif[0x0112] = 1  # "as stored": no transposition
        kw = {"exif": exif.tobytes()}
    data = _file(img, fmt, **kw)
    path = tmp_path / f"a.{fmt.lower()}"
    path.write_bytes(data)
    for source in (path, data):
        li = load_image(source)
        assert li.exact_decode is True and li.file_bytes == data
        # the claim: those bytes decode (plainly, no rotation) to exactly the loaded pixels
        with Image.open(io.BytesIO(data)) as im:
            assert im.convert("RGB").tobytes() == li.image.tobytes()


def test_exact_decode_false_for_any_transformation(tmp_path):
    rng = np.random.default_rng(9)
    img = _rgb(seed=6)
    exif = Image.Exif()
    exif[0x0112] = 6
    rgba = Image.fromarray(rng.integers(0, 256, (64, 96, 4), dtype=np.uint8), "RGBA")
    trns = img.copy()
    trns.info["transparency"] = (0, 0, 0)
    cases = {
        "rotated.jpg": _file(img, "JPEG", exif=exif.tobytes()),  # fast path, EXIF rotation
        "rotated.png": _file(img, "PNG", exif=exif.tobytes()),
        "rotated.webp": _file(img, "WEBP", exif=exif.tobytes()),  # Pillow path, EXIF rotation
        "rgba.png": _file(rgba, "PNG"),  # alpha split
        "rgba.webp": _file(rgba, "WEBP", lossless=True),
        "trns.png": _file(trns, "PNG", transparency=(0, 0, 0)),
        "gray.png": _file(img.convert("L"), "PNG"),  # mode conversion
        "palette.png": _file(img.convert("P"), "PNG"),
        "rgb16.png": None,  # 16-bit samples reduced
        "bmp.bmp": _file(img, "BMP"),  # not a format the store keeps
    }
    arr16 = (rng.integers(0, 65536, (16, 20, 3), dtype=np.uint16))
    import cv2
    cases["rgb16.png"] = cv2.imencode(".png", arr16)[1].tobytes()
    for name, data in cases.items():
        li = load_image(data)
        assert li.exact_decode is False and li.file_bytes is None, name
        (tmp_path / name).write_bytes(data)
        li = load_image(tmp_path / name)
        assert li.exact_decode is False and li.file_bytes is None, name
