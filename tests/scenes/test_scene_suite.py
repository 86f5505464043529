"""The scene suite (bench/scene_suite.py): no request may end wrong-but-reported-done.

The suite runs every request of bench/scenes/scenes.py through ``Assistant`` in a fresh
store; the scenes on real photos read ``../shared/benchmarks/images`` beside the repository.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import scene_suite  # noqa: E402
from bench.scenes.scenes import SCENES, ellipse, photos_dir  # noqa: E402

needs_photos = pytest.mark.skipif(not photos_dir().is_dir(),
                                  reason=f"the shared benchmark photos are missing ({photos_dir()})")


def test_the_suite_is_big_and_varied_enough():
    requests = [r for s in SCENES for r in s.requests]
    assert len(SCENES) >= 30
    assert len(requests) >= 60
    assert len({s.id for s in SCENES}) == len(SCENES)
    assert sum(r.expect == "ask" for r in requests) >= 10
    real = [s for s in SCENES if s.source != "synthetic"]
    synthetic = [s for s in SCENES if s.source == "synthetic"]
    assert len(real) >= 10 and len(synthetic) >= 10
    for s in SCENES:
        for r in s.requests:
            assert r.expect in ("edit", "ask"), (s.id, r.text)
            if r.expect == "edit":
                assert r.target, (s.id, r.text)


def test_synthetic_scenes_are_deterministic_and_their_targets_lie_inside():
    for s in SCENES:
        if s.source != "synthetic":
            continue
        a, objects = s.make()
        b, _ = s.make()
        assert np.array_equal(np.asarray(a), np.asarray(b)), s.id
        w, h = a.size
        assert 320 <= max(w, h) <= 640, s.id
        for r in s.requests:
            if isinstance(r.target, tuple):
                for x0, y0, x1, y1 in s.resolve(r.target):
                    assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h, (s.id, r.text)


def test_the_verdict_on_pixels():
    changed = np.zeros((100, 200), bool)
    changed[20:40, 30:60] = True  # exactly the box
    v = scene_suite.judge_boxes(changed, [(30, 20, 60, 40)], 0.2)
    assert v["ok"] and v["inside"] == 1.0 and v["cover"] == [1.0]
    changed[80:100, 150:200] = True  # and as much again far away
    assert not scene_suite.judge_boxes(changed, [(30, 20, 60, 40)], 0.2)["ok"]
    only_one = np.zeros((100, 200), bool)
    only_one[20:40, 30:60] = True
    v = scene_suite.judge_boxes(only_one, [(30, 20, 60, 40), (120, 20, 150, 40)], 0.2)
    assert not v["ok"] and v["cover"] == [1.0, 0.0]  # "the eyes": both must change
    corner = np.zeros((300, 300), bool)
    corner[0:5, 0:5] = True  # the corner of an ellipse's box is outside the (grown) ellipse
    assert not scene_suite.judge_boxes(corner, [ellipse(0, 0, 200, 200)], 0.0)["ok"]
    assert scene_suite.judge_boxes(corner, [(0, 0, 200, 200)], 0.0)["ok"]
    assert not scene_suite.judge_boxes(np.zeros((10, 10), bool), [(0, 0, 5, 5)], 0.0)["ok"]
    assert scene_suite.classify("failed", None) == "asked"
    assert scene_suite.classify("asked", None) == "asked"
    assert scene_suite.classify("done", {"ok": False}) == "wrong"
    assert scene_suite.classify("done", {"ok": True}) == "right"


@pytest.fixture(scope="module")
def suite():
    return scene_suite.run_suite()


@needs_photos
def test_no_request_ends_wrong_but_reported_done(suite):
    summary = suite["summary"]
    print("\n" + scene_suite.table(summary))
    assert summary["scenes"] >= 30 and summary["requests"] >= 60, summary
    errors = [f"{r['scene']}: {r['request']!r}: {r['reply']}" for r in suite["results"] if r["outcome"] == "error"]
    assert not errors, "requests that crashed:\n" + "\n".join(errors)
    wrong = [f"{r['scene']}: {r['request']!r} (expected {r['expected']}): {scene_suite._why(r)}; "
             f"reply: {r['reply'][:160]}" for r in suite["results"] if r["outcome"] == "wrong"]
    assert not wrong, f"{len(wrong)} wrong but reported done:\n" + "\n".join(wrong)
