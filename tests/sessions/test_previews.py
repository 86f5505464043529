"""Display previews (sessions/previews.py): made once per pixels, read back from a small file,
made again when missing or damaged, keyed by the pixels."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from imagent.sessions import Store
from imagent.sessions import previews as P
from tests.conftest import textured_image

SIDE = 64


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "home")
    P.clear_memory()
    yield s
    P.clear_memory()
    s.close()


@pytest.fixture
def decodes(monkeypatch):
    """Counts full-resolution decodes (Store.load_image / load_mask calls)."""
    counts = {"image": 0, "mask": 0}
    load_image, load_mask = Store.load_image, Store.load_mask

    def counted_image(self, version):
        counts["image"] += 1
        return load_image(self, version)

    def counted_mask(self, version):
        counts["mask"] += 1
        return load_mask(self, version)

    monkeypatch.setattr(Store, "load_image", counted_image)
    monkeypatch.setattr(Store, "load_mask", counted_mask)
    return counts


def _session(store, size=(200, 150)):
    sess = store.create_session(textured_image(*size), name="p")
    return sess, store.head(sess)


def test_preview_size_keeps_the_aspect_and_never_upscales():
    assert P.preview_size((6000, 4000), 1280) == (1280, 853)
    assert P.preview_size((4000, 6000), 1280) == (853, 1280)
    assert P.preview_size((800, 600), 1280) == (800, 600)
    assert P.preview_size((10000, 3), 100) == (100, 1)


def test_preview_is_scaled_cached_on_disk_and_not_decoded_again(store, decodes):
    _, v = _session(store)
    first = P.preview(store, v, SIDE)
    assert first.size == (64, 48) and first.mode == "RGB"
    assert decodes["image"] == 1
    path = P.preview_path(store, v, SIDE)
    assert path.is_file() and path.parent == store.home / "previews"
    # close to the full image scaled down (it is a preview of it)
    ref = np.asarray(store.load_image(v).resize((64, 48), Image.Resampling.BOX), dtype=np.int16)
    decodes["image"] = 0
    assert np.abs(np.asarray(first, dtype=np.int16) - ref).mean() < 6
    # memory, then the file: neither decodes the full image
    assert P.preview(store, v, SIDE) is first
    P.clear_memory()
    again = P.preview(store, v, SIDE)
    assert decodes["image"] == 0
    assert np.array_equal(np.asarray(again), np.asarray(first))
    # another side is another preview
    assert P.preview(store, v, 100).size == (100, 75) and decodes["image"] == 1


@pytest.mark.parametrize("damage", ["missing", "truncated", "garbage", "wrong size"])
def test_missing_or_damaged_preview_is_made_again(store, decodes, damage):
    _, v = _session(store)
    good = np.asarray(P.preview(store, v, SIDE)).copy()
    path = P.preview_path(store, v, SIDE)
    if damage == "missing":
        path.unlink()
    elif damage == "truncated":
        path.write_bytes(path.read_bytes()[:60])
    elif damage == "garbage":
        path.write_bytes(b"not a png at all")
    else:
        Image.new("RGB", (10, 10)).save(path)
    P.clear_memory()
    decodes["image"] = 0
    img = P.preview(store, v, SIDE)  # never an error
    assert decodes["image"] == 1 and np.array_equal(np.asarray(img), good)
    P.clear_memory()
    with Image.open(path) as fixed:  # and the file is good again
        assert fixed.size == (64, 48)
    assert np.array_equal(np.asarray(P.preview(store, v, SIDE)), good) and decodes["image"] == 1


def test_key_follows_the_pixels(store):
    sess, v0 = _session(store)
    a = np.asarray(store.load_image(v0)).copy()
    a[:10, :10] = 0
    v1 = store.commit(sess, parent=v0, image=Image.fromarray(a, "RGB"), request="change")
    same = store.commit(sess, parent=v1, image=Image.fromarray(a, "RGB"), request="same pixels")
    p0, p1, p2 = (P.preview_path(store, v, SIDE) for v in (v0, v1, same))
    assert p0 != p1  # pixels changed: another preview
    assert p1 == p2  # same pixels: one preview for both versions
    assert not np.array_equal(np.asarray(P.preview(store, v0, SIDE)), np.asarray(P.preview(store, v1, SIDE)))


def test_an_image_that_fits_is_its_own_preview(store, decodes):
    _, v = _session(store, size=(60, 40))
    img = P.preview(store, v, SIDE)
    assert img.size == (60, 40)
    assert np.array_equal(np.asarray(img), np.asarray(store.load_image(v)))
    assert not (store.home / "previews").exists()  # nothing written


def test_mask_preview_is_the_mask_at_the_preview_size(store, decodes):
    sess, v0 = _session(store)
    mask = np.zeros((150, 200), np.float32)
    mask[30:90, 50:150] = 1.0
    v1 = store.commit(sess, parent=v0, image=store.load_image(v0), mask=mask, request="masked")
    assert P.mask_preview(store, v0, SIDE) is None
    m = P.mask_preview(store, v1, SIDE)
    assert m.shape == (48, 64) and m.dtype == np.float32
    assert m[20, 32] == pytest.approx(1.0) and m[2, 2] == 0.0
    assert P.preview_path(store, v1, SIDE, mask=True).is_file()
    P.clear_memory()
    decodes["mask"] = 0
    assert np.array_equal(P.mask_preview(store, v1, SIDE), m) and decodes["mask"] == 0


def test_an_unwritable_preview_folder_still_gives_the_preview(store, decodes):
    _, v = _session(store)
    (store.home / "previews").write_text("a file where the folder should be")
    img = P.preview(store, v, SIDE)
    assert img.size == (64, 48)


def test_prune_removes_previews_no_version_uses(store):
    sess, v = _session(store)
    P.preview(store, v, SIDE)
    stray = store.home / "previews" / ("ab" * 32 + "-64.png")
    Image.new("RGB", (4, 4)).save(stray)
    other = store.home / "previews" / "README"
    other.write_text("not ours")
    stats = P.prune(store)
    assert stats["removed"] == 1 and not stray.exists()
    assert P.preview_path(store, v, SIDE).exists() and other.exists()
    store.delete_session(sess)
    assert P.prune(store)["removed"] == 1 and not P.preview_path(store, v, SIDE).exists()


def test_store_gc_prunes_the_previews_of_deleted_sessions(store):
    sess, v = _session(store)
    P.preview(store, v, SIDE)
    assert store.gc()["previews_removed"] == 0 and P.preview_path(store, v, SIDE).exists()
    store.delete_session(sess)
    stats = store.gc()
    assert stats["previews_removed"] == 1 and not P.preview_path(store, v, SIDE).exists()
