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


@pytest.mark.parametrize("fmt,kw", [("PNG", {}), ("JPEG", {"quality": 90}), ("WEBP", {"quality": 80})])
def test_exact_original_kept_without_a_second_decode(store, tmp_path, monkeypatch, fmt, kw):
    from imagent.sessions import blobs
    from imagent.tools.imageio import load_image

    path = tmp_path / f"in.{fmt.lower()}"
    path.write_bytes(file_bytes(photo(96, 64, seed=3), fmt, **kw))
    loaded = load_image(path)
    assert loaded.exact_decode and loaded.file_bytes == path.read_bytes()

    def no_decode(*a, **k):
        raise AssertionError("create_session decoded the original again")

    with monkeypatch.context() as m:
        m.setattr(blobs, "_decode_file", no_decode)
        m.setattr(blobs, "_decode_file_cv2", no_decode)
        sess = store.create_session(loaded.image, original=loaded.file_bytes, original_exact=True)
    root = store.head(sess)
    data = store.blobs.read(root.image_hash)
    assert blob_header(data)["codec"] == fmt.lower() and data.endswith(loaded.file_bytes)
    assert root.image_hash == pixel_digest(loaded.image)  # identity unchanged
    # safety: reading the root back on this machine gives the loaded pixels (checked by key)
    assert store.load_image(root).tobytes() == loaded.image.tobytes()
    assert load_image(data[blob_header(data)["offset"]:]).image.tobytes() == loaded.image.tobytes()
    assert store.verify() == [] and store.verify_session(sess)["problems"] == []
    bundle = store.export_bundle(sess, tmp_path / "s.imagent")
    other = store.import_bundle(bundle, name="copy")
    assert store.load_image(store.head(other)).tobytes() == loaded.image.tobytes()


def test_exact_original_refused_when_unsafe(store):
    img = photo()
    png = file_bytes(img, "PNG")
    alpha = Image.new("L", img.size, 200)
    # with an alpha plane: the image blob is encoded (the file would not be the RGB plane)
    sess = store.create_session(img, alpha=alpha, original=png, original_exact=True)
    assert blob_header(store.blobs.read(store.head(sess).image_hash))["codec"] == "updelta-zstd"
    # header facts that disagree: other size, other mode, 16-bit, RGBA, unknown format
    assert blobs_exact(img.resize((32, 24)), png) is None
    assert blobs_exact(img.convert("L"), png) is None
    assert blobs_exact(img, file_bytes(img.convert("RGBA"), "PNG")) is None
    assert blobs_exact(img, file_bytes(img, "BMP")) is None
    assert blobs_exact(img, b"\x89PNG\r\n\x1a\n garbage") is None
    # a path (not bytes) is never taken on the loader's word: today's check, PNG re-encoded
    sess = store.create_session(img, original=png, original_exact=False)
    assert blob_header(store.blobs.read(store.head(sess).image_hash))["codec"] == "updelta-zstd"


def blobs_exact(img, data):
    from imagent.sessions.blobs import encode_exact_original
    return encode_exact_original(img, data)


def test_file_blob_decoder_falls_back_to_pillow_then_says_damaged(store, monkeypatch):
    from imagent.sessions import blobs

    img = photo()
    jpeg = file_bytes(img, "JPEG", quality=90)
    sess = store.create_session(decoded(jpeg), original=jpeg)  # kept after Pillow's check
    root = store.head(sess)
    data = store.blobs.read(root.image_hash)
    assert blob_header(data)["codec"] == "jpeg"

    def off_by_one(*a, **k):  # an OpenCV whose JPEG decoder differs from Pillow's
        arr = np.asarray(decoded(jpeg)).copy()
        arr[0, 0, 0] ^= 1
        return arr

    monkeypatch.setattr(blobs, "_decode_file_cv2", off_by_one)
    assert store.load_image(root).tobytes() == decoded(jpeg).tobytes()  # Pillow matched the key
    monkeypatch.setattr(blobs, "_decode_file", lambda *a, **k: Image.fromarray(off_by_one()))
    with pytest.raises(StoreCorruptError, match="damaged"):
        decode_blob(data, key=root.image_hash, what="root")
    assert store.verify() != []
