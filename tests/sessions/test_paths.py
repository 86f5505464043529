"""Path traversal: unsafe session names, export targets inside the store, zip-slip bundles."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imagent.errors import BundleError, SessionError, UnsafePathError
from imagent.sessions import SESSION_NAME_PATTERN, Store, safe_output_path, validate_session_name


def img(seed=0):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8), "RGB")


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "home")
    yield s
    s.close()


def all_files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


BAD_NAMES = ["../x", "a/b", "..", ".", "/etc/passwd", "x\x00y", "a\\b", ".hidden", "", " ", "a b",
             "x" * 65, "C:evil", "name\n", "\u00e9t\u00e9", "a:b", "~root", "*", "a;rm -rf"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_unsafe_session_names_rejected(store, tmp_path, name):
    before = all_files(tmp_path)
    with pytest.raises(UnsafePathError) as ei:
        store.create_session(img(), name=name)
    assert repr(name) in ei.value.message
    assert SESSION_NAME_PATTERN in ei.value.hint
    assert isinstance(ei.value, SessionError)
    assert store.list_sessions() == []
    # nothing created outside the store, nothing named after the input anywhere
    assert {f for f in all_files(tmp_path) - before if not f.startswith("home")} == set()


def test_unsafe_names_on_rename_and_import(store, tmp_path):
    sess = store.create_session(img(), name="ok")
    bundle = store.export_bundle(sess, tmp_path / "b.zip")
    for name in ("../x", "a/b", "..", "/etc/passwd", "x\x00y"):
        with pytest.raises(UnsafePathError):
            store.rename_session(sess, name)
        with pytest.raises(UnsafePathError):
            store.import_bundle(bundle, name=name)
    assert [s.name for s in store.list_sessions()] == ["ok"]


@pytest.mark.parametrize("name", ["a", "photo-1a2b3c", "my_session.v2", "-x", "A" * 64, "0", "x..y"])
def test_safe_names_accepted(store, name):
    assert validate_session_name(name) == name
    assert store.create_session(img(), name=name).name == name


def test_lookup_with_traversal_names_is_just_not_found(store):
    from imagent.errors import SessionNotFound
    store.create_session(img(), name="ok")
    for name in ("../ok", "/etc/passwd", "ok/..", "x\x00y"):
        with pytest.raises(SessionNotFound):
            store.get_session(name)


def test_blob_paths_come_from_hashes_only(store):
    sess = store.create_session(img(), source="../../../../etc/passwd")
    files = [p for p in (store.home / "blobs").rglob("*") if p.is_file()]
    assert files and all(p.parent.parent == store.home / "blobs" for p in files)
    assert all(len(p.parent.name) == 2 and len(p.name) == 62 for p in files)
    assert sess.name.startswith("passwd-")
    from imagent.errors import StoreCorruptError
    for bad in ("../../etc/passwd", "/etc/passwd", "ab"):
        with pytest.raises(StoreCorruptError):
            store.blobs.path_for(bad)


def test_export_path_into_store_refused(store, tmp_path):
    sess = store.create_session(img(), name="s")
    home = store.home
    snapshot = {p: p.stat().st_size for p in home.rglob("*") if p.is_file() and p.name != "store.db-shm"}
    targets = [home / "blobs" / ".." / "store.db", home / "store.db", home / "new.zip", home / "blobs" / "x",
               tmp_path / "home" / "." / "store.db-wal"]
    link = tmp_path / "link-to-home"
    os.symlink(home, link)
    targets.append(link / "store.db")
    targets.append(str(home) + "/blobs/../../home/store.db")
    for t in targets:
        with pytest.raises(UnsafePathError) as ei:
            store.export_bundle(sess, t)
        assert "inside the session store" in ei.value.message
        with pytest.raises(UnsafePathError):
            store.resolve_export_path(t)
    assert (home / "store.db").is_file()
    assert store.verify() == []
    assert not (home / "new.zip").exists()
    for p, size in snapshot.items():
        if p.name not in ("store.db", "store.db-wal"):
            assert p.stat().st_size == size


def test_safe_output_path_rules(tmp_path):
    (tmp_path / "exists.zip").write_bytes(b"x")
    assert safe_output_path(tmp_path / "new.zip") == (tmp_path / "new.zip").resolve()
    assert safe_output_path(tmp_path / "exists.zip") == (tmp_path / "exists.zip").resolve()
    with pytest.raises(UnsafePathError, match="already exists"):
        safe_output_path(tmp_path / "exists.zip", must_not_exist=True)
    with pytest.raises(UnsafePathError, match="directory"):
        safe_output_path(tmp_path)
    with pytest.raises(UnsafePathError, match="does not exist"):
        safe_output_path(tmp_path / "missing" / "x.zip")
    with pytest.raises(UnsafePathError):
        safe_output_path("x\x00y.zip")
    with pytest.raises(UnsafePathError):
        safe_output_path("")
    with pytest.raises(UnsafePathError, match="inside"):
        safe_output_path(tmp_path / "a" / ".." / "exists.zip", forbidden_roots=[tmp_path])


def _good_bundle(tmp_path) -> tuple[Path, dict]:
    with Store(tmp_path / "src") as s:
        sess = s.create_session(img(1), name="src")
        s.commit(sess, parent=s.head(sess).id, image=img(2), mask=np.ones((24, 32), np.float32))
        path = s.export_bundle(sess, tmp_path / "good.zip")
    with zipfile.ZipFile(path) as z:
        manifest = json.loads(z.read("manifest.json"))
        blobs = {n: z.read(n) for n in z.namelist() if n.startswith("blobs/")}
    return path, {"manifest": manifest, "blobs": blobs}


def _zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name)
            z.writestr(info, data)
    return path


@pytest.mark.parametrize("evil", ["../../evil", "/abs/evil", "blobs/../../evil", "blobs/../evil",
                                  "..\\..\\evil", "C:/evil", "blobs/" + "a" * 63 + "/x", "blobs/ABC",
                                  "manifest.json/../../evil", "./manifest.json"])
def test_zip_slip_member_names_rejected(store, tmp_path, evil):
    _, good = _good_bundle(tmp_path)
    entries = {"manifest.json": json.dumps(good["manifest"]).encode(), **good["blobs"], evil: b"pwned"}
    bundle = _zip(tmp_path / "evil.zip", entries)
    cwd = os.getcwd()
    os.chdir(store.home)
    try:
        with pytest.raises(BundleError) as ei:
            store.import_bundle(bundle)
    finally:
        os.chdir(cwd)
    assert "unsafe" in ei.value.message or "unexpected" in ei.value.message
    assert store.list_sessions() == []
    assert not any(p.is_file() for p in (store.home / "blobs").rglob("*"))
    for root in (tmp_path, tmp_path.parent, store.home, store.home.parent, store.home / "blobs"):
        assert not (root / "evil").exists()


@pytest.mark.parametrize("field,value", [("image_hash", "../../evil"), ("image_hash", "/etc/passwd"),
                                         ("mask_hash", "../" + "a" * 61), ("alpha_hash", "a" * 63 + "/"),
                                         ("id", "../../x"), ("parent_id", "../root")])
def test_manifest_path_values_rejected(store, tmp_path, field, value):
    _, good = _good_bundle(tmp_path)
    m = good["manifest"]
    m["versions"][1][field] = value
    bundle = _zip(tmp_path / "m.zip", {"manifest.json": json.dumps(m).encode(), **good["blobs"]})
    with pytest.raises(BundleError):
        store.import_bundle(bundle)
    assert store.list_sessions() == []
    assert not any(p.is_file() for p in (store.home / "blobs").rglob("*"))


def test_bundle_blob_under_wrong_name_rejected(store, tmp_path):
    _, good = _good_bundle(tmp_path)
    m = good["manifest"]
    names = sorted(good["blobs"])
    swapped = {names[0]: good["blobs"][names[1]], names[1]: good["blobs"][names[0]],
               **{n: good["blobs"][n] for n in names[2:]}}
    bundle = _zip(tmp_path / "swap.zip", {"manifest.json": json.dumps(m).encode(), **swapped})
    with pytest.raises(BundleError, match="does not match its hash"):
        store.import_bundle(bundle)
    assert store.list_sessions() == []
