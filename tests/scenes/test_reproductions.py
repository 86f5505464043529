"""Six reported failures, each a request of the scene suite: the outcome must be the right
edit, or a question / refusal -- never a wrong edit reported as done."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import scene_suite  # noqa: E402
from bench.scenes import scenes  # noqa: E402


def run(scene_id: str, text: str) -> dict:
    scene, req = scenes.request(scene_id, text)
    if scene.needs_photos and not scenes.photos_dir().is_dir():
        pytest.skip(f"the shared benchmark photos are missing ({scenes.photos_dir()})")
    rec = scene_suite.run_request(scene, req, keep_images=True)
    assert rec["outcome"] != "error", rec["reply"]
    return rec


def explain(rec: dict) -> str:
    return (f"{rec['request']!r} on {rec['scene']}: {rec['outcome']} ({scene_suite._why(rec)}); "
            f"reply: {rec['reply'][:200]}")


def changed_fraction(rec: dict, box) -> float:
    before, after = rec["images"]
    x0, y0, x1, y1 = box
    return float(scene_suite.changed_map(before, after)[y0:y1, x0:x1].mean())


def test_red_stripes_on_the_astronaut_leave_her_face_alone():
    rec = run("astronaut", "remove the red stripes")
    if rec["status"] == "done":
        assert changed_fraction(rec, scenes.ASTRO_FACE) < 0.05, explain(rec)
    assert rec["outcome"] in ("right", "asked"), explain(rec)


def test_removing_the_astronaut_covers_the_person_or_is_not_done():
    rec = run("astronaut", "remove the person")
    assert rec["outcome"] in ("right", "asked"), explain(rec)


def test_removing_the_camera_man_removes_him_not_a_smear_of_his_hand():
    rec = run("camera", "remove the man")
    assert rec["outcome"] in ("right", "asked"), explain(rec)


def test_blue_cat_eyes_are_painted_on_the_eyes_not_the_cheek():
    rec = run("chelsea", "make the cat's eyes blue")
    assert rec["outcome"] in ("right", "asked"), explain(rec)


def test_removing_white_text_never_reports_a_failed_check_as_done():
    rec = run("camera_text", "remove the white text")
    # A result check that failed ("... failed ... kept the best") must not be reported as done.
    assert not (rec.get("check_passed") is False and rec["status"] == "done"), explain(rec)
    assert rec["outcome"] in ("right", "asked"), explain(rec)


def test_the_sixth_red_square_goes_and_the_others_stay():
    rec = run("red_squares", "remove the sixth red square")
    if rec["status"] == "done":
        scene = scenes.scene("red_squares")
        objects = scene.load()[1]
        for i in (1, 2, 3, 4, 5, 7, 8):
            assert changed_fraction(rec, objects[f"sq{i}"]) < 0.05, f"square {i} changed: {explain(rec)}"
        before, after = rec["images"]
        x0, y0, x1, y1 = objects["sq6"]
        red = np.asarray(after)[y0:y1, x0:x1].astype(int)
        still_red = ((red[..., 0] > 150) & (red[..., 1] < 90) & (red[..., 2] < 90)).mean()
        assert still_red < 0.05, f"the sixth square is still there: {explain(rec)}"
    assert rec["outcome"] in ("right", "asked"), explain(rec)
