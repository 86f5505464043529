"""imagent.fsio: the one atomic-write helper (temp file beside the target, fsync, rename)."""

from __future__ import annotations

import ast
import os
import stat
import sys
from pathlib import Path

import pytest

from imagent import fsio
from imagent.fsio import atomic_write, atomic_write_text, fsync_dir


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_bytes_and_text_are_written(tmp_path):
    p = atomic_write(tmp_path / "a.bin", b"\x00\x01binary\xff")
    assert p == tmp_path / "a.bin" and p.read_bytes() == b"\x00\x01binary\xff"
    t = atomic_write_text(str(tmp_path / "b.txt"), "héllo\nwörld\n")
    assert isinstance(t, Path) and t.read_bytes() == "héllo\nwörld\n".encode()
    assert atomic_write(tmp_path / "empty", b"").read_bytes() == b""
    assert _listing(tmp_path) == ["a.bin", "b.txt", "empty"]  # no temp file left


def test_a_callable_writes_to_the_binary_temp_file(tmp_path):
    seen = {}

    def writer(fh):
        seen["during"] = _listing(tmp_path)
        fh.write(b"part one, ")
        fh.write(bytearray(b"part two"))

    p = atomic_write(tmp_path / "c.dat", writer, fsync=False)
    assert p.read_bytes() == b"part one, part two"
    # the bytes went to a hidden temp file beside the target, not to the target itself
    (name,) = seen["during"]
    assert name.startswith(f".c.dat.tmp-{os.getpid()}-") and _listing(tmp_path) == ["c.dat"]


@pytest.mark.parametrize("exc_type", [ValueError, KeyboardInterrupt])
def test_error_while_writing_removes_the_temp_file_and_keeps_the_old_file(tmp_path, exc_type):
    target = atomic_write(tmp_path / "keep.txt", b"old content")

    def failing(fh):
        fh.write(b"partial garbage")
        raise exc_type("simulated")

    with pytest.raises(exc_type):
        atomic_write(target, failing)
    assert target.read_bytes() == b"old content"
    assert _listing(tmp_path) == ["keep.txt"]


def test_failing_rename_removes_the_temp_file(tmp_path, monkeypatch):
    def no_space(*_a, **_k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", no_space)
    with pytest.raises(OSError, match="No space"):
        atomic_write(tmp_path / "new.bin", b"x" * 1000)
    assert _listing(tmp_path) == []


def test_existing_file_is_replaced_atomically(tmp_path, monkeypatch):
    target = tmp_path / "f.txt"
    target.write_bytes(b"old")
    inode_before = target.stat().st_ino
    calls = []
    real_replace, real_fsync = os.replace, os.fsync

    def spy_replace(src, dst):
        # at the moment of the rename the new bytes are complete in the temp file beside
        # the target, and the target still holds the old bytes
        calls.append(("replace", Path(src).parent, Path(src).read_bytes(), Path(dst).read_bytes()))
        return real_replace(src, dst)

    def spy_fsync(fd):
        calls.append(("fsync", stat.S_ISDIR(os.fstat(fd).st_mode)))
        return real_fsync(fd)

    monkeypatch.setattr(os, "replace", spy_replace)
    monkeypatch.setattr(os, "fsync", spy_fsync)
    atomic_write(target, b"new content")
    assert calls == [("fsync", False), ("replace", tmp_path, b"new content", b"old"), ("fsync", True)]
    assert target.read_bytes() == b"new content"
    assert target.stat().st_ino != inode_before  # a new file was renamed over it, not rewritten
    assert _listing(tmp_path) == ["f.txt"]


def test_fsync_false_skips_every_fsync(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "fsync", lambda fd: pytest.fail("fsync called"))
    assert atomic_write(tmp_path / "x", b"1", fsync=False).read_bytes() == b"1"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_modes_new_file_follows_mode_and_umask_existing_file_keeps_its_mode(tmp_path):
    old_umask = os.umask(0o022)
    try:
        assert stat.S_IMODE(atomic_write(tmp_path / "n", b"1").stat().st_mode) == 0o644
        assert stat.S_IMODE(atomic_write(tmp_path / "m", b"1", mode=0o600).stat().st_mode) == 0o600
        existing = tmp_path / "e"
        existing.write_bytes(b"0")
        existing.chmod(0o640)
        atomic_write(existing, b"1")
        assert stat.S_IMODE(existing.stat().st_mode) == 0o640
    finally:
        os.umask(old_umask)


def test_tmp_prefix_names_the_temp_file(tmp_path, monkeypatch):
    names = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda s, d: (names.append(Path(s).name), real_replace(s, d)))
    atomic_write(tmp_path / "blob", b"x", tmp_prefix=".tmp-")
    assert names[0].startswith(f".tmp-{os.getpid()}-")


def test_missing_folder_is_a_plain_oserror(tmp_path):
    with pytest.raises(FileNotFoundError):
        atomic_write(tmp_path / "no" / "such" / "file", b"x")
    assert _listing(tmp_path) == []


def test_fsync_dir_tolerates_a_missing_folder(tmp_path):
    fsync_dir(tmp_path)
    fsync_dir(tmp_path / "missing")  # no error


def test_fsio_imports_only_the_standard_library():
    tree = ast.parse(Path(fsio.__file__).read_text(encoding="utf-8"))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "no relative imports"
            roots.add(node.module.split(".")[0])
    assert roots <= set(sys.stdlib_module_names) | {"__future__"}, roots
