"""Crash safety: SIGKILL a writer at random moments; the store must always open and verify clean.

``IMAGENT_CRASH_ITERATIONS`` sets how many kills the main test does (default 200).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from PIL import Image

from imagent.sessions import Store
from imagent.sessions.blobs import HASH_RE, TMP_PREFIX, blob_problem

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")

ITERATIONS = int(os.environ.get("IMAGENT_CRASH_ITERATIONS", "200"))

# The writer: opens the store, signals readiness, then commits in a loop until killed (the
# store is open before "ready", so the kill delay measures time spent committing, however
# slowly a loaded machine starts Python).
# Mostly commits (image + alpha blob), sometimes undo, sometimes a new session. PIL only,
# no numpy, so it starts fast.
WRITER = textwrap.dedent("""
    import os, random, sys
    from PIL import Image
    from imagent.sessions import Store

    home, seed = sys.argv[1], int(sys.argv[2])
    rng = random.Random(seed)
    store = Store(home)
    print("ready", flush=True)
    i = 0
    while True:
        i += 1
        img = Image.frombytes("RGB", (32, 24), os.urandom(32 * 24 * 3))
        r = rng.random()
        if r < 0.04:
            store.create_session(img, source=f"crash{seed}.png")
        elif r < 0.12:
            try:
                store.undo("crash")
            except Exception:
                pass
        else:
            alpha = Image.frombytes("L", (32, 24), os.urandom(32 * 24)) if r < 0.5 else None
            head = store.head("crash")
            store.commit("crash", parent=head.id, image=img, alpha=alpha, request=f"w{seed} {i}",
                         tool_calls=[{"name": "noise", "args": {"i": i}}], metrics={"i": i}, seed=i)
""")

# Writes large blobs (8 MB of noise pixels: incompressible) so that a kill very likely
# lands in the middle of a file write.
BIG_WRITER = textwrap.dedent("""
    import os, sys
    from PIL import Image
    from imagent.sessions import Store, encode_image

    def big():
        return encode_image(Image.frombytes("RGB", (2048, 1366), os.urandom(2048 * 1366 * 3)))

    store = Store(sys.argv[1])
    # One complete blob before "ready": however loaded the machine, every run has
    # something on disk, and the kill lands in one of the later writes.
    b = big()
    store.blobs.write(b.data, b.sha256)
    print("ready", flush=True)
    while True:
        b = big()
        store.blobs.write(b.data, b.sha256)
""")


def _kill_after(cmd: list[str], delay_s: float) -> None:
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = p.stdout.readline()
        if line.strip() != b"ready":
            p.kill()
            _, err = p.communicate()
            raise AssertionError(f"writer did not start: {line!r} {err.decode(errors='replace')}")
        time.sleep(delay_s)
        if p.poll() is not None:  # it died on its own: that is a bug in the writer
            _, err = p.communicate()
            raise AssertionError(f"writer exited early ({p.returncode}): {err.decode(errors='replace')}")
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()
        p.stderr.close()


def _blob_files(home: Path):
    finals, temps = [], []
    for shard in (home / "blobs").iterdir():
        assert shard.is_dir() and len(shard.name) == 2, shard
        for f in shard.iterdir():
            if f.name.startswith(TMP_PREFIX):
                temps.append(f)
            else:
                finals.append(f)
    return finals, temps


def _check_final_blobs(home: Path) -> int:
    """Every file under a final name is complete: it decodes to the pixels its name is the digest of."""
    finals, temps = _blob_files(home)
    for f in finals:
        key = f.parent.name + f.name
        assert HASH_RE.match(key), f"unexpected file under a blob name: {f}"
        problem = blob_problem(key, f.read_bytes())
        assert problem is None, f"partially written blob under its final name: {f}: {problem}"
    return len(temps)


def _check_store(home: Path) -> int:
    with Store(home) as s:
        problems = s.verify()
        assert problems == [], problems
        total = 0
        referenced = set()
        for sess in s.list_sessions():
            head = s.head(sess)  # every head points at an existing version
            assert head.session_id == sess.id
            log = s.log(sess)
            total += len(log)
            for v in log:
                for key in (v.image_hash, v.mask_hash, v.alpha_hash):
                    if key:
                        assert s.blobs.exists(key)
                        referenced.add(key)
        assert not any(k.startswith(".") for k in referenced)  # temp files are never referenced
    _check_final_blobs(home)
    return total


def test_sigkill_during_commits(tmp_path):
    home = tmp_path / "home"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    with Store(home) as s:
        s.create_session(Image.new("RGB", (32, 24), (9, 9, 9)), name="crash", source="crash.png")
    rng = random.Random(1234)
    counts = [_check_store(home)]
    t0 = time.monotonic()
    for i in range(ITERATIONS):
        _kill_after([sys.executable, str(script), str(home), str(i)], rng.uniform(0.0, 0.040))
        counts.append(_check_store(home))
        assert counts[-1] >= counts[-2], "versions were lost"
    assert counts[-1] > counts[0], "the writers never committed anything"
    with Store(home) as s:
        n_temp_before = _check_final_blobs(home)
        stats = s.gc(temp_grace_s=0)
        assert stats["temp_removed"] == n_temp_before
        assert s.verify() == []
        assert _blob_files(home)[1] == []
        assert sum(len(s.log(x)) for x in s.list_sessions()) == counts[-1]  # gc removed no live blob
        s.log_tree("crash")
    print(f"\n{ITERATIONS} kills in {time.monotonic() - t0:.1f}s; versions {counts[0]} -> {counts[-1]}; "
          f"gc {stats}")


def test_sigkill_mid_blob_write_leaves_no_partial_blob(tmp_path):
    home = tmp_path / "home"
    Store(home).close()
    script = tmp_path / "big.py"
    script.write_text(BIG_WRITER)
    rng = random.Random(99)
    for _ in range(12):
        _kill_after([sys.executable, str(script), str(home)], rng.uniform(0.0, 0.08))
        _check_final_blobs(home)
    with Store(home) as s:
        assert s.verify() == []
        stats = s.gc(temp_grace_s=0)
        finals, temps = _blob_files(home)
        assert temps == [] and finals == []  # every complete blob was an orphan; gc removed all of them
        assert stats["blobs_removed"] + stats["temp_removed"] >= 1


def test_failure_between_blob_and_transaction_leaves_only_orphans(tmp_path, monkeypatch):
    s = Store(tmp_path / "home")
    sess = s.create_session(Image.new("RGB", (8, 8), (1, 1, 1)), name="x")
    root = s.head(sess)

    class Boom(Exception):
        pass

    real_write = s._write

    def failing_write():
        raise Boom()

    monkeypatch.setattr(s, "_write", failing_write)
    with pytest.raises(Boom):
        s.commit(sess, parent=root.id, image=Image.new("RGB", (8, 8), (2, 2, 2)))
    monkeypatch.setattr(s, "_write", real_write)
    assert len(s.log(sess)) == 1 and s.head(sess).id == root.id
    assert s.verify() == []
    assert s.gc()["blobs_removed"] == 1  # the written blob was an orphan
    # a failing rename leaves no file under the final name and cleans its temp file
    monkeypatch.setattr(os, "replace", lambda *a, **k: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        s.commit(sess, parent=root.id, image=Image.new("RGB", (8, 8), (3, 3, 3)))
    monkeypatch.undo()
    finals, temps = _blob_files(s.home)
    assert temps == [] and len(finals) == 1
    assert s.verify() == [] and len(s.log(sess)) == 1
    s.close()


def test_gc_concurrent_with_commit_never_loses_a_referenced_blob(tmp_path):
    """A commit whose deduplicated blob is removed by gc before its transaction rewrites it."""
    s = Store(tmp_path / "home")
    img = Image.new("RGB", (8, 8), (5, 6, 7))
    sess = s.create_session(Image.new("RGB", (8, 8)), name="g")
    v = s.commit(sess, parent=s.head(sess).id, image=img)
    s.undo(sess)
    s.delete_session(sess)  # the blob of v is now an orphan
    sess = s.create_session(Image.new("RGB", (8, 8)), name="g2")
    real_check = s._check_blobs
    calls = {"n": 0}

    def gc_then_check(*blobs):
        calls["n"] += 1
        if calls["n"] == 1:  # a gc in another process ran between blob write and BEGIN IMMEDIATE
            for b in blobs:
                if b is not None and s.blobs.exists(b.sha256):
                    s.blobs.path_for(b.sha256).unlink()
        return real_check(*blobs)

    s._check_blobs = gc_then_check
    v2 = s.commit(sess, parent=s.head(sess).id, image=img)
    assert v2.image_hash == v.image_hash and calls["n"] == 2
    assert s.verify() == []
    assert s.load_image(v2).tobytes() == img.tobytes()
    s.close()
