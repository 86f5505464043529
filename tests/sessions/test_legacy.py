"""Stores and bundles written before pixel keys (PNG blobs keyed by the sha256 of their bytes).

``data/legacy-v1-store`` and ``data/legacy-v1-bundle.zip`` were written by the store code
of commit 8377469 (schema 1, bundle format 1): session "legacy", root 12x8 with an alpha
plane, v1 = invert, v2 = mirror of v1 with a mask, v3 = flip of v1 (a branch); head = v2.
They must open, show, replay --verify, verify, export and import with the current code.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from imagent.errors import StoreCorruptError
from imagent.sessions import Store, pixel_digest
from imagent.sessions.blobs import PNG_SIGNATURE, blob_header

DATA = Path(__file__).resolve().parent / "data"


def _root() -> Image.Image:
    y, x = np.mgrid[0:8, 0:12]
    return Image.fromarray(np.stack([x * 20, y * 30, (x * y) % 256], -1).astype(np.uint8), "RGB")


def _alpha() -> Image.Image:
    y, x = np.mgrid[0:8, 0:12]
    return Image.fromarray((255 - x * 10 - y * 5).astype(np.uint8), "L")


def _mask() -> np.ndarray:
    m = np.zeros((8, 12), np.float32)
    m[2:6, 3:9] = 1.0
    m[0, 0] = 0.5
    return m


EXPECTED = {0: _root(), 1: ImageOps.invert(_root()), 2: ImageOps.mirror(ImageOps.invert(_root())),
            3: ImageOps.flip(ImageOps.invert(_root()))}
OPS = {"invert": ImageOps.invert, "mirror": ImageOps.mirror, "flip": ImageOps.flip}


def _legacy_png(img: Image.Image) -> bytes:
    """The encoder of the old store (PNG, zlib 6), kept here to make legacy blobs."""
    import io

    buf = io.BytesIO()
    Image.frombytes(img.mode, img.size, img.tobytes()).save(buf, format="PNG", compress_level=6, optimize=False)
    return buf.getvalue()


@pytest.fixture
def legacy_home(tmp_path):
    home = tmp_path / "old-home"
    shutil.copytree(DATA / "legacy-v1-store", home)
    with sqlite3.connect(home / "store.db") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 1
    return home


def _check_session(store: Store, name: str = "legacy") -> None:
    versions = store.log(name)
    assert [v.request for v in versions] == ["open /pics/old.png", "invert", "mirror", "flip"]
    assert store.head(name).seq == 2
    for v in versions:
        assert blob_header(store.blobs.read(v.image_hash))["codec"] == "legacy-png"
        assert hashlib.sha256(store.blobs.read(v.image_hash)).hexdigest() == v.image_hash  # old identity
        img = store.load_image(v)
        assert img.mode == "RGB" and img.tobytes() == EXPECTED[v.seq].tobytes()
    assert store.load_alpha(versions[0]).tobytes() == _alpha().tobytes()
    got = store.load_mask(versions[2])
    assert np.array_equal(got, np.round(_mask() * 255).astype(np.uint8).astype(np.float32) / 255)
    assert store.verify() == []
    assert store.verify_session(name)["problems"] == []
    # replay --verify compares pixels, so it holds for blobs keyed by their PNG bytes too
    report = store.replay(name, lambda img, v: OPS[v.request](img), verify=True)
    assert report.ok and len(report) == 2 and all(s["match"] for s in report)
    assert report.image.tobytes() == EXPECTED[2].tobytes()
    assert store.diff(name, 0, 1).changed_fraction > 0.5


def test_legacy_store_opens_shows_replays_and_verifies(legacy_home):
    with Store(legacy_home) as s:
        _check_session(s)
        # a new edit on top is written in the new format; both kinds live side by side
        head = s.head("legacy")
        new = s.commit("legacy", parent=head.id, image=ImageOps.flip(s.load_image(head)), request="flip")
        assert new.image_hash == pixel_digest(EXPECTED[2].transpose(Image.FLIP_TOP_BOTTOM))
        assert blob_header(s.blobs.read(new.image_hash))["codec"] == "updelta-zstd"
        assert s.verify() == [] and s.verify_session("legacy")["problems"] == []
        stats = s.gc(temp_grace_s=0)
        assert stats["blobs_removed"] == 0 and stats["blobs_kept"] == 7  # 4 images, mask, alpha, new one
    with sqlite3.connect(legacy_home / "store.db") as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == 2  # upgraded in place


def test_damaged_legacy_blob_is_still_found(legacy_home):
    with Store(legacy_home) as s:
        v1 = s.get_version("legacy", 1)
        p = s.blobs.path_for(v1.image_hash)
        data = bytearray(p.read_bytes())
        data[-20] ^= 0x40
        p.chmod(0o644)
        p.write_bytes(bytes(data))
        assert any("damaged" in x for x in s.verify())
        assert [p["version"] for p in s.verify_session("legacy")["problems"]] == [1]
        with pytest.raises(StoreCorruptError, match="damaged"):
            s.load_image(v1)


def test_legacy_bundle_imports_and_reexports(tmp_path):
    with zipfile.ZipFile(DATA / "legacy-v1-bundle.zip") as z:
        assert b'"format_version": 1' in z.read("manifest.json")
        assert all(z.read(n).startswith(PNG_SIGNATURE) for n in z.namelist() if n.startswith("blobs/"))
    with Store(tmp_path / "a") as a:
        sess = a.import_bundle(DATA / "legacy-v1-bundle.zip")
        assert sess.name == "legacy"
        _check_session(a)
        out = a.export_bundle(sess, tmp_path / "again.zip")  # format 2, legacy blobs carried as they are
    with zipfile.ZipFile(out) as z:
        assert b'"format_version": 2' in z.read("manifest.json")
    with Store(tmp_path / "b") as b:
        b.import_bundle(out)
        _check_session(b)
        assert b.export_bundle("legacy", tmp_path / "third.zip").read_bytes() == out.read_bytes()


def test_legacy_and_new_blobs_in_one_bundle(tmp_path):
    """A blob written by the old encoder (kept in this test) imports beside new ones."""
    with Store(tmp_path / "a") as a:
        sess = a.create_session(_root(), name="mixed")
        old = _legacy_png(EXPECTED[1])
        key = a.blobs.write(old)  # legacy key: sha256 of the PNG bytes
        with sqlite3.connect(a.db_path) as db:  # what a schema-1 writer would have recorded
            db.execute("INSERT INTO versions (id, session_id, seq, parent_id, request, tool_calls, image_hash, "
                       "width, height, metrics, backends, timings, created_at, kind) "
                       "SELECT 'f' || substr(id, 2), session_id, 1, id, 'invert', '[]', ?, 12, 8, '{}', '{}', "
                       "'{}', created_at, 'edit' FROM versions WHERE session_id = ?", (key, sess.id))
        v1 = a.get_version("mixed", 1)
        assert a.load_image(v1).tobytes() == EXPECTED[1].tobytes() and a.verify() == []
        out = a.export_bundle("mixed", tmp_path / "mixed.zip")
    with Store(tmp_path / "b") as b:
        b.import_bundle(out)
        assert [b.load_image(v).tobytes() for v in b.log("mixed")] == [EXPECTED[0].tobytes(),
                                                                       EXPECTED[1].tobytes()]
        assert b.verify() == []
