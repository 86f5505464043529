"""Store semantics: undo/redo/branch/checkout, refs, log tree, bundles, scripts, replay, diff, gc."""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from imagent.errors import (
    BundleError,
    MaskError,
    NothingToRedo,
    NothingToUndo,
    SessionError,
    SessionNotFound,
    UnsafePathError,
    VersionNotFound,
)
from imagent.sessions import DiffResult, EncodedBlob, Session, Store, Version, encode_image, pixel_digest
from imagent.sessions.blobs import blob_problem

W, H = 32, 24


def rand_image(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8), "RGB")


def brighten(img: Image.Image, amount: int) -> Image.Image:
    a = np.asarray(img, dtype=np.int16) + amount
    return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "RGB")


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "home")
    yield s
    s.close()


def make_chain(store: Store, n: int, *, name="s"):
    """Session with root + n edits in a line: returns (session, [root, v1..vn])."""
    sess = store.create_session(rand_image(0), name=name, source="photo.jpg")
    versions = [store.head(sess)]
    for i in range(1, n + 1):
        versions.append(store.commit(sess, parent=versions[-1].id, image=rand_image(i), request=f"edit {i}",
                                     tool_calls=[{"name": "brighten", "args": {"amount": i}}],
                                     metrics={"changed": i / 10}, seed=i))
    return sess, versions


# ---------------------------------------------------------------- basics
def test_create_open_and_list(tmp_path):
    home = tmp_path / "home"
    with Store(home) as s:
        a = s.create_session(rand_image(0), name="first", source="/pics/cat.png")
        b = s.create_session(rand_image(1), source="/pics/dog photo.jpg")
        assert (home / "store.db").is_file() and (home / "blobs").is_dir()
        assert b.name.startswith("dog-photo-")
        root = s.head(a)
        assert root.seq == 0 and root.parent_id is None and root.request == "open /pics/cat.png"
        assert root.kind == "open" and len(root.id) == 32 and root.short_id == root.id[:8]
    with Store(home) as s2:  # reopening works
        names = [x.name for x in s2.list_sessions()]
        assert names == [b.name, "first"]  # most recently used first
        assert s2.latest_session().name == b.name
        s2.commit("first", parent=root.id, image=rand_image(5))
        assert s2.latest_session().name == "first"
        assert s2.get_session(a.id).name == "first"
        assert isinstance(s2.get_session("first"), Session)


def test_name_clash_and_not_found(store):
    store.create_session(rand_image(0), name="x")
    with pytest.raises(SessionError) as ei:
        store.create_session(rand_image(1), name="x")
    assert "already exists" in ei.value.message and ei.value.hint
    with pytest.raises(SessionNotFound) as ei:
        store.get_session("nope")
    assert "nope" in ei.value.message and "imagent sessions" in ei.value.hint


def test_image_mask_alpha_roundtrip_and_dedup(store, tmp_path):
    img = rand_image(3)
    alpha = Image.fromarray(np.arange(W * H, dtype=np.uint8).reshape(H, W), "L")
    sess = store.create_session(img, name="a", alpha=alpha)
    root = store.head(sess)
    assert store.load_image(root).tobytes() == img.tobytes()
    assert store.load_alpha(root).tobytes() == alpha.tobytes()
    assert store.load_mask(root) is None
    mask = np.random.default_rng(1).random((H, W)).astype(np.float32)
    v = store.commit(sess, parent=root.id, image=img, mask=mask)
    got = store.load_mask(v)
    assert got.dtype == np.float32 and got.shape == (H, W)
    assert np.array_equal(got, np.round(mask * 255).astype(np.uint8).astype(np.float32) / 255)
    assert v.image_hash == root.image_hash  # same pixels -> same blob
    blob_files = [p for p in (store.home / "blobs").rglob("*") if p.is_file()]
    assert len(blob_files) == 3  # image, alpha, mask; the second image was deduplicated
    # a blob's key is the digest of its pixels (not of its bytes), at blobs/ab/<rest>
    data = (store.home / "blobs" / v.image_hash[:2] / v.image_hash[2:]).read_bytes()
    assert pixel_digest(img) == v.image_hash != hashlib.sha256(data).hexdigest()
    assert root.alpha_hash == pixel_digest(alpha)
    # deterministic encoding: metadata on the input does not change the bytes
    img2 = img.copy()
    img2.info["icc_profile"] = b"junk"
    img2.info["dpi"] = (300, 300)
    assert encode_image(img2).sha256 == v.image_hash
    with pytest.raises(MaskError):
        store.commit(sess, parent=root.id, image=img, mask=np.zeros((H + 1, W), np.float32))


def test_commit_accepts_encoded_blob(store):
    sess = store.create_session(rand_image(0), name="e")
    blob = encode_image(rand_image(9))
    assert isinstance(blob, EncodedBlob)
    v = store.commit(sess, parent=store.head(sess).id, image=blob, request="pre-encoded")
    assert v.image_hash == blob.sha256 and (v.width, v.height) == (W, H)
    assert store.load_image(v).tobytes() == rand_image(9).tobytes()


def test_version_record_fields(store):
    sess, vs = make_chain(store, 1)
    v = vs[1]
    assert isinstance(v, Version)
    assert v.seq == 1 and v.parent_id == vs[0].id and v.tool_calls == [{"name": "brighten", "args": {"amount": 1}}]
    assert v.metrics == {"changed": 0.1} and v.seed == 1 and v.kind == "edit" and v.branched is False
    assert v.created_at.endswith("Z")
    d = v.to_dict()
    json.dumps(d)
    assert d["id"] == v.id and d["session_id"] == sess.id
    assert store.get_version(sess, v.id) == v


# ---------------------------------------------------------------- undo / redo / branches
def test_undo_redo_linear(store):
    sess, vs = make_chain(store, 3)
    assert store.head(sess).id == vs[3].id
    assert store.undo(sess).id == vs[2].id
    assert store.undo(sess).id == vs[1].id
    assert store.head(sess).id == vs[1].id
    assert store.redo(sess).id == vs[2].id
    assert store.redo(sess).id == vs[3].id
    with pytest.raises(NothingToRedo) as ei:
        store.redo(sess)
    assert "Nothing to redo" in ei.value.message and "no later edits" in ei.value.message and ei.value.hint
    for _ in range(3):
        store.undo(sess)
    with pytest.raises(NothingToUndo) as ei:
        store.undo(sess)
    assert "Nothing to undo" in ei.value.message and "original image" in ei.value.message and ei.value.hint
    assert store.head(sess).id == vs[0].id


def test_edit_after_undo_branches_and_keeps_history(store):
    sess, vs = make_chain(store, 2)  # root - 1 - 2
    store.undo(sess)  # head at 1
    b = store.commit(sess, parent=vs[1].id, image=rand_image(50), request="other idea")
    assert b.seq == 3 and b.parent_id == vs[1].id and b.branched is False
    assert store.head(sess).id == b.id
    assert [v.id for v in store.log(sess)] == [vs[0].id, vs[1].id, vs[2].id, b.id]  # nothing deleted
    assert [c.id for c in store.children(sess, vs[1].id)] == [vs[2].id, b.id]
    # redo after branching: the new branch is a leaf
    with pytest.raises(NothingToRedo):
        store.redo(sess)
    # undo the branch, redo goes back to the branch we came from (not the older line)
    store.undo(sess)
    assert store.redo(sess).id == b.id
    # checkout the old line, then undo / redo remembers that line
    store.checkout(sess, 2)
    assert store.head(sess).id == vs[2].id
    store.undo(sess)
    assert store.redo(sess).id == vs[2].id
    # after a checkout the redo memory is cleared: redo takes the most recent child
    store.checkout(sess, 1)
    assert store.redo(sess).id == b.id


def test_redo_memory_across_several_undos(store):
    sess, vs = make_chain(store, 1)
    # build: root - 1 - 2 and 1 - 3 (newer), then go down the older line
    v2 = store.commit(sess, parent=vs[1].id, image=rand_image(20))
    v21 = store.commit(sess, parent=v2.id, image=rand_image(21))
    store.checkout(sess, v2.id)
    v3 = store.commit(sess, parent=v2.id, image=rand_image(30))
    store.checkout(sess, v21.id)
    store.undo(sess)
    store.undo(sess)
    store.undo(sess)  # at root; came root <- 1 <- 2 <- 21
    assert store.redo(sess).id == vs[1].id
    assert store.redo(sess).id == v2.id
    assert store.redo(sess).id == v21.id  # not v3, the most recent child of v2
    del v3


def test_checkout_and_refs(store):
    sess, vs = make_chain(store, 4)
    assert store.checkout(sess, 2).id == vs[2].id
    assert store.get_version(sess, "3").id == vs[3].id
    assert store.get_version(sess, 3).id == vs[3].id
    assert store.get_version(sess, vs[1].id).id == vs[1].id
    assert store.get_version(sess, vs[1].id[:6]).id == vs[1].id
    assert store.get_version(sess, vs[1].id[:6].upper()).id == vs[1].id
    assert store.get_version(sess, "root").id == vs[0].id
    assert store.get_version(sess, "head").id == vs[2].id
    assert store.get_version(sess, vs[4]).id == vs[4].id
    for bad in ("99", 99, "zzzz", "abc", vs[1].id[:3], "f" * 32):
        with pytest.raises(VersionNotFound) as ei:
            store.get_version(sess, bad)
        assert ei.value.hint and "imagent log" in ei.value.hint
    with pytest.raises(VersionNotFound):
        store.commit(sess, parent="0" * 32, image=rand_image(1))
    other = store.create_session(rand_image(1), name="other")
    with pytest.raises(VersionNotFound):  # a version of another session is not a valid parent
        store.commit(other, parent=vs[2].id, image=rand_image(1))


def test_ambiguous_prefix(store):
    sess = store.create_session(rand_image(0), name="amb")
    head = store.head(sess).id
    ids = [store.commit(sess, parent=head, image=rand_image(i)).id for i in range(1, 40)]
    firsts = {}
    for i in ids:
        firsts.setdefault(i[0], []).append(i)
    shared = next(v for v in firsts.values() if len(v) > 1)
    common = os.path.commonprefix(shared)
    if len(common) >= 4:
        with pytest.raises(VersionNotFound, match="ambiguous"):
            store.get_version(sess, common)


def test_log_tree_shows_branch_and_head(store):
    sess, vs = make_chain(store, 2)
    store.undo(sess)
    b = store.commit(sess, parent=vs[1].id, image=rand_image(77), request="make it bluer")
    store.checkout(sess, vs[2].id)
    tree = store.log_tree(sess)
    lines = tree.splitlines()
    assert len(lines) == 4
    head_lines = [ln for ln in lines if ln.lstrip("│ ├─").startswith("@")]
    assert len(head_lines) == 1 and vs[2].short_id in head_lines[0] and "edit 2" in head_lines[0]
    branch_line = next(ln for ln in lines if vs[2].short_id in ln)
    assert branch_line.startswith("├─")  # the older child is drawn as an indented branch
    assert any(b.short_id in ln and "make it bluer" in ln and ln.startswith("o") for ln in lines)
    assert "changed=0.1" in next(ln for ln in lines if vs[1].short_id in ln)
    assert lines[0].startswith("o") and " 0 " in lines[0] and "open photo.jpg" in lines[0]


def test_log_tree_long_chain_no_recursion(store):
    sess = store.create_session(rand_image(0), name="long")
    head = store.head(sess)
    blob = encode_image(rand_image(1))
    for _ in range(1200):
        head = store.commit(sess, parent=head.id, image=blob)
    tree = store.log_tree(sess)
    assert len(tree.splitlines()) == 1201 and tree.splitlines()[-1].startswith("@")


def test_delete_session(store):
    sess, vs = make_chain(store, 2)
    store.delete_session("s")
    with pytest.raises(SessionNotFound):
        store.get_session("s")
    assert store.list_sessions() == []
    stats = store.gc()
    assert stats["blobs_removed"] == 3


def test_rename_session(store):
    sess, _ = make_chain(store, 1)
    store.create_session(rand_image(3), name="taken")
    assert store.rename_session(sess, "renamed").name == "renamed"
    with pytest.raises(SessionError):
        store.rename_session("renamed", "taken")
    with pytest.raises(UnsafePathError):
        store.rename_session("renamed", "../x")


# ---------------------------------------------------------------- diff / gc / verify
def test_diff_known_change(store):
    base = np.full((H, W, 3), 100, np.uint8)
    sess = store.create_session(Image.fromarray(base, "RGB"), name="d")
    changed = base.copy()
    changed[5:10, 4:12, 0] = 120  # 8x5 block, +20 in red
    changed[20, 30, 2] = 105  # one pixel, +5 in blue
    v = store.commit(sess, parent=store.head(sess).id, image=Image.fromarray(changed, "RGB"))
    d = store.diff(sess, 0, v.id)
    assert isinstance(d, DiffResult)
    assert d.changed_fraction == pytest.approx(41 / (W * H))
    assert d.changed_fraction_over_8 == pytest.approx(40 / (W * H))
    assert d.max_abs == 20
    assert d.mean_abs == pytest.approx((40 * 20 + 5) / (W * H * 3))
    assert d.bbox == (4, 5, 31, 21)
    assert d.size_changed is False and d.image.mode == "RGB" and d.image.size == (W, H)
    assert d.image.getpixel((4, 5)) == (80, 0, 0)
    same = store.diff(sess, v.id, "head")
    assert same.changed_fraction == 0 and same.bbox is None and same.max_abs == 0


def test_diff_size_changed(store):
    sess = store.create_session(rand_image(0), name="sz")
    bigger = Image.new("RGB", (W + 8, H), (0, 0, 0))
    bigger.paste(rand_image(0), (0, 0))
    v = store.commit(sess, parent=store.head(sess).id, image=bigger)
    d = store.diff(sess, "root", v.id)
    assert d.size_changed and d.changed_fraction == 0 and "common" in d.note and d.image.size == (W, H)


def test_gc_removes_only_orphans(store):
    sess, vs = make_chain(store, 3)
    keep = store.create_session(rand_image(100), name="keep")
    orphan = store.blobs.write(b"not referenced by anything")
    tmp = store.home / "blobs" / "ab" / ".tmp-123-deadbeef"
    tmp.parent.mkdir(exist_ok=True)
    tmp.write_bytes(b"half a blob")
    stats = store.gc(temp_grace_s=3600)
    assert stats["blobs_removed"] == 1 and stats["temp_kept"] == 1 and tmp.exists()
    assert not store.blobs.exists(orphan)
    stats = store.gc(temp_grace_s=0)
    assert stats["temp_removed"] == 1 and not tmp.exists()
    store.delete_session(sess)
    stats = store.gc()
    assert stats["blobs_removed"] == 4
    assert store.verify() == []
    assert store.load_image(store.head(keep)).tobytes() == rand_image(100).tobytes()


def test_verify_reports_problems(store):
    sess, vs = make_chain(store, 2)
    assert store.verify() == []
    p = store.home / "blobs" / vs[1].image_hash[:2] / vs[1].image_hash[2:]
    data = bytearray(p.read_bytes())
    data[-5] ^= 0xFF
    p.write_bytes(bytes(data))
    p2 = store.home / "blobs" / vs[2].image_hash[:2] / vs[2].image_hash[2:]
    p2.unlink()
    problems = store.verify()
    assert any("damaged" in x and "match" in x for x in problems) and any("missing" in x for x in problems)
    from imagent.errors import StoreCorruptError
    with pytest.raises(StoreCorruptError):
        store.load_image(vs[1])


# ---------------------------------------------------------------- bundles
def _store_snapshot(store: Store):
    files = sorted(str(p.relative_to(store.home)) for p in store.home.rglob("*") if p.is_file()
                   and "blobs" in p.parts)
    sessions = [s.to_dict() for s in store.list_sessions()]
    versions = [v.to_dict() for s in store.list_sessions() for v in store.log(s)]
    return files, sessions, versions


def test_bundle_roundtrip_bit_identical(tmp_path):
    a = Store(tmp_path / "a")
    sess, vs = make_chain(a, 3)
    a.undo(sess)
    a.commit(sess, parent=vs[2].id, image=rand_image(40), mask=np.ones((H, W), np.float32),
             alpha=Image.new("L", (W, H), 200), request="branch", backends={"remove": "lama@1"},
             timings={"total_s": 0.5})
    b1 = a.export_bundle(sess, tmp_path / "one.zip")
    assert b1 == (tmp_path / "one.zip").resolve() and zipfile.is_zipfile(b1)
    b = Store(tmp_path / "b")
    imported = b.import_bundle(b1)
    assert imported.name == sess.name and imported.id == sess.id
    got = b.get_session(imported.name)
    orig = a.get_session(sess.name)
    assert (got.head_id, got.root_id, got.created_at, got.source) == (orig.head_id, orig.root_id,
                                                                      orig.created_at, orig.source)
    assert [v.to_dict() for v in b.log(imported)] == [v.to_dict() for v in a.log(sess)]
    b2 = b.export_bundle(imported, tmp_path / "two.zip")
    assert b1.read_bytes() == b2.read_bytes()  # export -> import -> export is bit-identical
    with zipfile.ZipFile(b1) as z1, zipfile.ZipFile(b2) as z2:
        names = z1.namelist()
        assert names[0] == "manifest.json" and all(n.startswith("blobs/") for n in names[1:])
        for n in names:
            assert z1.read(n) == z2.read(n)
            if n.startswith("blobs/"):
                assert blob_problem(n.split("/")[1], z1.read(n)) is None  # decodes to its name's pixels
    for v in b.log(imported):
        assert b.load_image(v).tobytes() == a.load_image(v).tobytes()
    assert b.verify() == []
    # import again into the same store: the name is suffixed, a new session id, same version ids
    again = b.import_bundle(b1)
    assert again.name == sess.name + "-2" and again.id != imported.id
    assert [v.id for v in b.log(again)] == [v.id for v in b.log(imported)]
    b.undo(again)  # the copies are independent
    assert b.head(imported).id == orig.head_id
    before = _store_snapshot(b)
    with pytest.raises(SessionError) as ei:
        b.import_bundle(b1, name=sess.name)
    assert "already exists" in ei.value.message
    assert _store_snapshot(b) == before
    assert b.import_bundle(b1, name="explicit").name == "explicit"
    a.close()
    b.close()


def _rewrite_zip(src: Path, dst: Path, *, drop=None, replace=None, extra=None):
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            if drop and info.filename == drop:
                continue
            data = zin.read(info)
            if replace and info.filename in replace:
                data = replace[info.filename]
            zout.writestr(info.filename, data)
        for name, data in (extra or {}).items():
            zout.writestr(name, data)
    return dst


@pytest.fixture
def bundle_pair(tmp_path):
    a = Store(tmp_path / "a")
    sess, vs = make_chain(a, 2)
    path = a.export_bundle(sess, tmp_path / "good.zip")
    a.close()
    b = Store(tmp_path / "b")
    b.create_session(rand_image(123), name="existing")
    yield b, path, vs
    b.close()


def _bad_bundles(tmp_path, good: Path, vs):
    blob_name = f"blobs/{vs[1].image_hash}"
    with zipfile.ZipFile(good) as z:
        manifest = json.loads(z.read("manifest.json"))
        blob = z.read(blob_name)
    flipped = bytearray(blob)
    flipped[len(flipped) // 2] ^= 0x01
    out = {}
    # flip a byte inside a blob (written as a fresh, CRC-consistent zip so only the hash check catches it)
    out["flipped"] = _rewrite_zip(good, tmp_path / "flipped.zip", replace={blob_name: bytes(flipped)})
    # flip a byte in the raw zip file
    raw = bytearray(good.read_bytes())
    pos = raw.find(blob[40:60])
    assert pos > 0
    raw[pos + 5] ^= 0x01
    (tmp_path / "rawflip.zip").write_bytes(bytes(raw))
    out["rawflip"] = tmp_path / "rawflip.zip"
    out["missing"] = _rewrite_zip(good, tmp_path / "missing.zip", drop=blob_name)
    out["badjson"] = _rewrite_zip(good, tmp_path / "badjson.zip", replace={"manifest.json": b"{not json"})
    out["nomanifest"] = _rewrite_zip(good, tmp_path / "nomanifest.zip", drop="manifest.json")
    out["slip"] = _rewrite_zip(good, tmp_path / "slip.zip", extra={"../../evil": b"x"})
    out["abs"] = _rewrite_zip(good, tmp_path / "abs.zip", extra={"/tmp/evil": b"x"})
    out["slipblob"] = _rewrite_zip(good, tmp_path / "slipblob.zip", extra={"blobs/../../evil": b"x"})
    m = json.loads(json.dumps(manifest))
    m["versions"][1]["image_hash"] = "../../evil"
    out["manifest_slip"] = _rewrite_zip(good, tmp_path / "mslip.zip",
                                        replace={"manifest.json": json.dumps(m).encode()})
    m = json.loads(json.dumps(manifest))
    m["versions"][1]["mask_hash"] = "/etc/passwd"
    out["manifest_abs"] = _rewrite_zip(good, tmp_path / "mabs.zip",
                                       replace={"manifest.json": json.dumps(m).encode()})
    m = json.loads(json.dumps(manifest))
    m["versions"][2]["parent_id"] = "e" * 32
    out["dangling"] = _rewrite_zip(good, tmp_path / "dangling.zip",
                                   replace={"manifest.json": json.dumps(m).encode()})
    m = json.loads(json.dumps(manifest))
    m["session"]["name"] = "../evil"
    out["badname"] = _rewrite_zip(good, tmp_path / "badname.zip",
                                  replace={"manifest.json": json.dumps(m).encode()})
    m = json.loads(json.dumps(manifest))
    del m["versions"][0]["seq"]
    out["noseq"] = _rewrite_zip(good, tmp_path / "noseq.zip", replace={"manifest.json": json.dumps(m).encode()})
    (tmp_path / "notzip.zip").write_bytes(b"PK\x03\x04 nope")
    out["notzip"] = tmp_path / "notzip.zip"
    out["absent"] = tmp_path / "absent.zip"
    return out


def test_corrupted_bundles_rejected_store_unchanged(bundle_pair, tmp_path):
    b, good, vs = bundle_pair
    before = _store_snapshot(b)
    outside_before = sorted(p.name for p in tmp_path.iterdir())
    for label, path in _bad_bundles(tmp_path, good, vs).items():
        with pytest.raises(BundleError) as ei:
            b.import_bundle(path)
        assert ei.value.hint, label
        assert _store_snapshot(b) == before, label
    # nothing was extracted anywhere (no "evil" file next to or above the store)
    for root in (tmp_path, tmp_path.parent, b.home, b.home.parent):
        assert not (root / "evil").exists()
    assert {p.name for p in tmp_path.iterdir()} - set(outside_before) <= {
        "flipped.zip", "rawflip.zip", "missing.zip", "badjson.zip", "nomanifest.zip", "slip.zip", "abs.zip",
        "slipblob.zip", "mslip.zip", "mabs.zip", "dangling.zip", "badname.zip", "noseq.zip", "notzip.zip"}
    # the bad-name bundle imports fine under an explicit name; the good one imports
    assert b.import_bundle(tmp_path / "badname.zip", name="fixed").name == "fixed"
    assert b.import_bundle(good).name == "s"


def test_export_refuses_paths_in_store(store, tmp_path):
    sess, _ = make_chain(store, 1)
    db_before = (store.home / "store.db").stat().st_size
    for bad in (store.home / "blobs" / ".." / "store.db", store.home / "x.zip", store.home,
                store.home / "blobs" / "ab" / "cd"):
        with pytest.raises(UnsafePathError):
            store.export_bundle(sess, bad)
    with pytest.raises(UnsafePathError):
        store.export_bundle(sess, tmp_path / "no" / "such" / "dir.zip")
    with pytest.raises(UnsafePathError):
        store.export_bundle(sess, tmp_path)  # a directory
    assert (store.home / "store.db").stat().st_size >= db_before
    assert store.verify() == []
    out = store.export_bundle(sess, tmp_path / "ok.zip")
    assert out.is_file()
    assert not [p for p in tmp_path.iterdir() if ".tmp-" in p.name]


# ---------------------------------------------------------------- scripts and replay
def test_export_script(store):
    sess, vs = make_chain(store, 3)
    store.undo(sess)
    store.commit(sess, parent=vs[2].id, image=rand_image(60), request="make it: warmer")
    doc = yaml.safe_load(store.export_script(sess))
    assert doc == {"image": "photo.jpg", "steps": ["edit 1", "edit 2", "make it: warmer"]}
    assert yaml.safe_load(store.export_script(sess, 3))["steps"] == ["edit 1", "edit 2", "edit 3"]
    store.checkout(sess, 1)
    assert yaml.safe_load(store.export_script(sess))["steps"] == ["edit 1"]  # the path to the head
    seeded = store.create_session(rand_image(0), name="seeded", source="a b.png", seed=42)
    doc = yaml.safe_load(store.export_script(seeded))
    assert doc == {"image": "a b.png", "seed": 42, "steps": []}


def _brighten_session(store: Store):
    sess = store.create_session(rand_image(7), name="r", source="r.png")
    cur = store.head(sess)
    img = rand_image(7)
    for amount in (10, 20, -5):
        img = brighten(img, amount)
        cur = store.commit(sess, parent=cur.id, image=img, request=f"brighten {amount}",
                           tool_calls=[{"name": "brighten", "args": {"amount": amount}}], seed=amount)
    return sess


def toy_runner(image: Image.Image, version: Version) -> Image.Image:
    for call in version.tool_calls:
        assert call["name"] == "brighten"
        image = brighten(image, call["args"]["amount"])
    return image


def test_replay_verify_matches(store):
    sess = _brighten_session(store)
    head_before = store.head(sess)
    n_before = len(store.log(sess))
    seen = []

    def runner(img, v):
        seen.append(v.seq)
        return toy_runner(img, v)

    rep = store.replay(sess, runner, verify=True)
    assert seen == [1, 2, 3]
    assert rep.ok and len(rep.steps) == 3 and all(s["match"] for s in rep.steps)
    for s, v in zip(rep.steps, store.log(sess)[1:], strict=True):
        assert s["id"] == v.id and s["seq"] == v.seq
        assert s["expected_hash"] == s["got_hash"] == pixel_digest(store.load_image(v))
    assert rep.image.tobytes() == store.load_image(head_before).tobytes()
    assert store.head(sess) == head_before and len(store.log(sess)) == n_before  # never modifies


def test_replay_mismatch_reported(store):
    sess = _brighten_session(store)

    def off_by_one(img, v):
        out = toy_runner(img, v)
        return brighten(out, 1) if v.seq == 2 else out

    rep = store.replay(sess, off_by_one, verify=True)
    assert not rep.ok
    assert [s["match"] for s in rep.steps] == [True, False, False]  # later steps see the replayed parent
    assert rep.mismatches[0]["seq"] == 2
    plain = store.replay(sess, toy_runner)
    assert plain.steps[0]["match"] is None and plain.steps[0]["got_hash"]


def test_all_digit_short_id_falls_back_to_prefix(store, monkeypatch):
    import uuid as _uuid

    import imagent.sessions.store as store_mod

    sess = store.create_session(rand_image(0), name="digits")
    monkeypatch.setattr(store_mod.uuid, "uuid4", lambda: _uuid.UUID("01118711" + "ab" * 12))
    v = store.commit(sess, parent=store.head(sess).id, image=rand_image(1))
    monkeypatch.undo()
    assert v.short_id == "01118711"
    assert store.get_version(sess, "01118711").id == v.id  # no version 1118711: read as an id prefix
    assert store.get_version(sess, "1").id == v.id  # a number when that version exists
    assert store.get_version(sess, "0").seq == 0


def test_replay_report_is_list_like(store):
    sess = _brighten_session(store)
    rep = store.replay(sess, toy_runner, verify=True)
    assert list(rep) == rep.steps == rep.rows and len(rep) == 3 and rep[0]["seq"] == 1
    assert rep.to_dict()["ok"] is True and len(rep.to_dict()["steps"]) == 3


def test_log_tree_key_metrics_nested(store):
    sess = store.create_session(rand_image(0), name="m")
    store.commit(sess, parent=store.head(sess).id, image=rand_image(1), request="x",
                 metrics={"1.remove": {"area": 12, "note": "text"},
                          "change": {"changed_fraction": 0.0421, "mean_abs": 1.5}})
    line = store.log_tree(sess).splitlines()[-1]
    assert line.startswith("@") and "changed=4.2%" in line and "area=12" in line and "note" not in line
