"""Blob identity (pixel digest), the updelta-zstd codec, and roots kept as the user's original file."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from imagent.errors import StoreCorruptError
from imagent.sessions import Store, encode_alpha, encode_image, encode_mask, pixel_digest
from imagent.sessions.blobs import (
    MAGIC,
    blob_header,
    blob_problem,
    decode_blob,
    encode_original,
)


def photo(w: int = 64, h: int = 48, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    a = np.stack([x * 3, y * 4, 128 + 60 * np.sin(x / 5)], -1) + rng.normal(0, 8, (h, w, 3))
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "RGB")


def file_bytes(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def decoded(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGB")


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "home")
    yield s
    s.close()


@pytest.mark.parametrize("size", [(1, 1), (1, 37), (53, 1), (64, 48), (257, 3)])
def test_codec_roundtrip_and_key_is_the_pixel_digest(size):
    rng = np.random.default_rng(sum(size))
    img = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB")
    b = encode_image(img)
    assert b.data.startswith(MAGIC) and b.key == b.sha256 == pixel_digest(img)
    assert blob_header(b.data)["codec"] == "updelta-zstd"
    back = decode_blob(b.data, key=b.key, what="x")
    assert back.mode == "RGB" and back.tobytes() == img.tobytes()
    alpha = Image.fromarray(rng.integers(0, 256, (size[1], size[0]), dtype=np.uint8), "L")
    a = encode_alpha(alpha)
    assert a.key == pixel_digest(alpha) and decode_blob(a.data, key=a.key, what="a").tobytes() == alpha.tobytes()
    m = encode_mask(np.full((size[1], size[0]), 0.5, np.float32))
    assert decode_blob(m.data, key=m.key, what="m").getextrema() == (128, 128)


def test_key_ignores_metadata_and_mode_of_equal_pixels():
    img = photo()
    other = img.copy()
    other.info.update(icc_profile=b"junk", dpi=(300, 300))
    assert encode_image(other).key == encode_image(img).key
    assert encode_image(img.convert("RGBA")).key == encode_image(img).key  # stored as RGB


def test_damaged_blobs_are_named_damaged():
    b = encode_image(photo())
    for bad in (b.data[:-7],  # truncated
                b.data[:40] + bytes([b.data[40] ^ 1]) + b.data[41:],  # header byte flipped
                b.data[:-9] + bytes([b.data[-9] ^ 1]) + b.data[-8:],  # payload byte flipped
                b"not a blob at all"):
        assert "damaged" in (blob_problem(b.key, bad) or "")
    other = encode_image(photo(seed=1))
    assert "do not match" in blob_problem(b.key, other.data)  # sound bytes, wrong pixels
    fake = MAGIC + b"\x00\x00\x00\x40" + b'{"codec":"heif-99","height":1,"mode":"RGB","width":1}'.ljust(64)
    with pytest.raises(StoreCorruptError, match="unknown blob codec"):
        decode_blob(fake, what="x")


def test_jpeg_root_keeps_the_original_file(store, tmp_path):
    jpeg = file_bytes(photo(), "JPEG", quality=90)
    img = decoded(jpeg)
    path = tmp_path / "in.jpg"
    path.write_bytes(jpeg)
    for original in (jpeg, path, str(path)):
        sess = store.create_session(img, original=original)
        root = store.head(sess)
        data = store.blobs.read(root.image_hash)
        assert blob_header(data)["codec"] == "jpeg" and data.endswith(jpeg)  # the file, byte for byte
        assert root.image_hash == pixel_digest(img)
        assert store.load_image(root).tobytes() == img.tobytes()
    # same pixels committed later: same key, the JPEG blob is reused (dedup by pixels)
    v = store.commit(sess, parent=root.id, image=img.copy())
    assert v.image_hash == root.image_hash
    assert sum(1 for p in (store.home / "blobs").rglob("*") if p.is_file()) == 1
    assert store.verify() == [] and store.verify_session(sess)["problems"] == []


def test_original_not_kept_when_pixels_differ_or_format_is_png(store):
    img = photo()
    jpeg = file_bytes(img, "JPEG", quality=90)
    # JPEG is lossy: ``img`` itself is not what the file decodes to
    sess = store.create_session(img, original=jpeg)
    root = store.head(sess)
    assert blob_header(store.blobs.read(root.image_hash))["codec"] == "updelta-zstd"
    assert store.load_image(root).tobytes() == img.tobytes()
    # EXIF orientation: the loader rotates, the file's own pixels are not the loaded ones
    exif = Image.Exif()
    exif[0x0112] = 6
    rotated = file_bytes(img, "JPEG", quality=90, exif=exif.tobytes())
    assert encode_original(decoded(rotated).transpose(Image.ROTATE_270), rotated) is None
    # PNG: re-encoded by default (checking by decoding costs more than encoding), keepable on request
    png = file_bytes(img, "PNG")
    assert encode_original(img, png) is None
    kept = encode_original(img, png, formats={"PNG"})
    assert blob_header(kept.data)["codec"] == "png" and kept.data.endswith(png)
    assert decode_blob(kept.data, key=kept.key, what="x").tobytes() == img.tobytes()
    # unreadable path or garbage: not kept, no error
    assert encode_original(img, "/no/such/file.jpg") is None
    assert encode_original(img, b"\xff\xd8\xff garbage") is None


def test_webp_roots_lossless_and_lossy(store):
    img = photo()
    for kw in ({"lossless": True}, {"quality": 80}):
        webp = file_bytes(img, "WEBP", **kw)
        loaded = decoded(webp)
        root = store.head(store.create_session(loaded, original=webp))
        assert blob_header(store.blobs.read(root.image_hash))["codec"] == "webp"
        assert store.load_image(root).tobytes() == loaded.tobytes()


def test_bundle_carries_jpeg_roots_reencoded(store, tmp_path):
    jpeg = file_bytes(photo(), "JPEG", quality=85)
    img = decoded(jpeg)
    sess = store.create_session(img, name="j", original=jpeg)
    root = store.head(sess)
    store.commit(sess, parent=root.id, image=photo(seed=3), request="x")
    out = store.export_bundle(sess, tmp_path / "j.zip")
    with zipfile.ZipFile(out) as z:
        data = z.read(f"blobs/{root.image_hash}")
    assert blob_header(data)["codec"] == "updelta-zstd"  # portable: no JPEG decoder involved on import
    with Store(tmp_path / "other") as other:
        other.import_bundle(out)
        got = other.head("j")
        assert other.load_image(other.get_version("j", 0)).tobytes() == img.tobytes()
        assert other.load_image(got).tobytes() == photo(seed=3).tobytes()
        assert other.verify() == []
