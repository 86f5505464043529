"""`imagent tool NAME IMAGE`: one tool run directly, validated, with exit codes and no partial output."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image

from imagent.cli import main


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    return code, capsys.readouterr()


@pytest.fixture
def scene(tmp_path):
    rng = np.random.default_rng(0)
    arr = np.clip(rng.normal(128, 5, (90, 120, 3)), 0, 255).astype(np.uint8)
    arr[30:60, 40:80] = (220, 30, 30)
    p = tmp_path / "scene.png"
    Image.fromarray(arr).save(p)
    return p


def test_ground_json_lists_every_candidate(capsys, scene):
    code, out = _run(capsys, "tool", "ground", scene, "--args", '{"phrase": "the red car"}',
                     "--json")
    assert code == 0
    data = json.loads(out.out)
    assert data["tool"] == "ground" and data["metrics"]["method"] == "colour"
    assert data["detections"][0]["box"] == [40, 30, 80, 60]
    assert data["metrics"]["candidates"] == len(data["detections"])


def test_remove_recolor_extract_write_outputs(capsys, scene, tmp_path):
    out = tmp_path / "out.png"
    code, res = _run(capsys, "tool", "remove", scene, "--ground", "the red car", "-o", out)
    assert code == 0 and out.is_file() and "wrote" in res.out
    arr = np.asarray(Image.open(out).convert("RGB")).astype(int)
    assert ((arr[..., 0] > 200) & (arr[..., 1] < 60)).sum() == 0
    rec = tmp_path / "blue.png"
    code, _ = _run(capsys, "tool", "recolor", scene, "--ground", "the red car", "--args",
                   '{"color": "blue"}', "-o", rec, "--mask-out", tmp_path / "m.png")
    assert code == 0
    b = np.asarray(Image.open(rec).convert("RGB")).astype(int)[35:55, 45:75]
    assert b[..., 2].mean() > b[..., 0].mean() + 40
    m = np.asarray(Image.open(tmp_path / "m.png").convert("L"))
    assert m[45, 60] == 255 and m[5, 5] == 0
    cut = tmp_path / "cut.png"
    code, _ = _run(capsys, "tool", "extract", scene, "--mask", tmp_path / "m.png", "-o", cut)
    rgba = Image.open(cut)
    assert code == 0 and rgba.mode == "RGBA" and np.asarray(rgba)[5, 5, 3] == 0
    code, _ = _run(capsys, "tool", "global_edit", scene, "--args", '{"operation": "dehaze"}',
                   "-o", tmp_path / "d.jpg")
    assert code == 0 and (tmp_path / "d.jpg").is_file()


def test_bad_input_exit_codes_and_nothing_written(capsys, scene, tmp_path):
    out = tmp_path / "never.png"
    before = sorted(os.listdir(tmp_path))
    small = tmp_path / "small_mask.png"
    Image.new("L", (5, 5), 255).save(small)
    empty = tmp_path / "empty_mask.png"
    Image.new("L", (120, 90), 0).save(empty)
    full = tmp_path / "full_mask.png"
    Image.new("L", (120, 90), 255).save(full)
    one = tmp_path / "one.png"
    Image.new("RGB", (1, 1), (9, 9, 9)).save(one)
    before = sorted(os.listdir(tmp_path))
    cases = [
        (("tool", "paint", scene, "-o", out), 1, "'paint'"),
        (("tool", "global_edit", scene, "--args", "{not json", "-o", out), 2, "not valid JSON"),
        (("tool", "global_edit", scene, "--args", '{"operation": "winterize"}', "-o", out), 1,
         "'winterize'"),
        (("tool", "remove", scene, "--mask", small, "-o", out), 1, "5x5"),
        (("tool", "remove", scene, "--mask", empty, "-o", out), 1, "selects nothing"),
        (("tool", "recolor", scene, "--mask", full, "--args", '{"color": "blue"}', "-o", out), 1,
         "whole"),
        (("tool", "build_mask", scene, "--args", '{"source": "box", "box": [500, 500, 600, 600]}',
          "--mask-out", out), 1, "outside the 120x90 image"),
        (("tool", "recolor", scene, "--ground", "the red car", "--args", '{"color": "octarine"}',
          "-o", out), 1, "'octarine'"),
        (("tool", "insert", scene, "--args", f'{{"kind": "image", "path": "{tmp_path}/nope.png"}}',
          "-o", out), 1, "nope.png"),
        (("tool", "ground", scene, "--args", '{"phrase": "the dog"}', "-o", out), 1, "GroundingDINO"),
        (("tool", "ground", scene, "--args", '{"phrase": "the red car"}', "-o", out), 2,
         "no image to write"),
        (("tool", "recolor", one, "--ground", "the whole image", "--args", '{"color": "red"}',
          "-o", out), 1, "whole"),
        (("tool", "global_edit", scene, "--args", '{"operation": "blur"}', "-o",
          tmp_path / "x.gif"), 1, "'.gif'"),
        (("tool", "global_edit", tmp_path / "missing.png", "--args", '{"operation": "blur"}',
          "-o", out), 1, "missing.png"),
    ]
    for argv, want, text in cases:
        code, res = _run(capsys, *argv)
        assert code == want, (argv, res.err)
        assert text in res.err, (argv, res.err)
    assert sorted(os.listdir(tmp_path)) == before  # nothing written by any failure


def test_list_and_one_pixel_image(capsys, tmp_path):
    code, res = _run(capsys, "tool", "list")
    assert code == 0 and "recolor(" in res.out and "undo" not in res.out
    one = tmp_path / "one.png"
    Image.new("RGB", (1, 1), (9, 9, 9)).save(one)
    code, _ = _run(capsys, "tool", "global_edit", one, "--args", '{"operation": "denoise"}',
                   "-o", tmp_path / "o.png")
    assert code == 0
