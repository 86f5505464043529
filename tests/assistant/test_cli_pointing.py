"""Pointing on the command line: --box/--point/--mask on edit and ask, box:/point:/mask: steps in
`imagent run` scripts, `export --script` writing them back, and exit code 2 for bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from PIL import Image

from imagent.cli import main
from tests.assistant.test_pointing import LEFT, LEFT_BOX, RIGHT, red_share, two_squares


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    return code, capsys.readouterr()


@pytest.fixture
def files(tmp_path):
    two_squares().save(tmp_path / "two.png")
    m = np.zeros((140, 240), np.uint8)
    m[RIGHT] = 255
    Image.fromarray(m).save(tmp_path / "right.png")
    Image.fromarray(m[:70]).save(tmp_path / "small.png")
    (tmp_path / "notimage.png").write_text("not an image")
    return tmp_path


def test_edit_box_ask_point_ask_mask_replay_export_run(files, capsys):
    out = files / "out.png"
    code, io = run(capsys, "edit", files / "two.png", "remove this", "--box", ",".join(map(str, LEFT_BOX)),
                   "-o", out, "--session", "pt")
    assert code == 0, io.err
    img = Image.open(out).convert("RGB")
    assert red_share(img, LEFT) < 0.05 and red_share(img, RIGHT) == 1.0
    code, io = run(capsys, "ask", "make this blue", "--point", "180,70", "-s", "pt")
    assert code == 0, io.err
    code, io = run(capsys, "ask", "make this darker", "--mask", files / "right.png", "-s", "pt",
                   "-o", files / "final.png")
    assert code == 0, io.err
    final = np.asarray(Image.open(files / "final.png").convert("RGB"), np.int16)
    assert (final[RIGHT][..., 2] > final[RIGHT][..., 0]).mean() > 0.9
    code, io = run(capsys, "replay", "--verify", "-s", "pt")
    assert code == 0 and "bit-identically" in io.out
    script = files / "out" / "s.yaml"
    script.parent.mkdir()
    code, io = run(capsys, "export", "--script", "-o", script, "-s", "pt")
    assert code == 0, io.err
    doc = yaml.safe_load(script.read_text())
    assert doc["steps"][0] == {"request": "remove this", "box": "15,25,85,95"}
    assert doc["steps"][1] == {"request": "make this blue", "point": "180,70"}
    assert doc["steps"][2]["mask"] == "s.v3.mask.png" and (script.parent / "s.v3.mask.png").is_file()
    code, io = run(capsys, "run", script, "--json", "-o", files / "again.png")
    assert code == 0, io.err
    again = np.asarray(Image.open(files / "again.png").convert("RGB"), np.int16)
    assert (again == final).all()  # the script reproduces the session pixel for pixel


def test_the_selection_applies_to_the_first_request_only(files, capsys):
    code, io = run(capsys, "edit", files / "two.png", "remove this", "make it darker",
                   "--box", ",".join(map(str, LEFT_BOX)), "--json")
    assert code == 0, io.err
    turns = json.loads(io.out)["turns"]
    assert turns[0]["plan"]["steps"][0]["kind"] == "remove"
    assert turns[1]["plan"]["steps"][0]["kind"] == "global"


def test_run_script_steps_with_box_point_and_relative_mask(files, capsys):
    (files / "s.yaml").write_text(
        "image: two.png\nsteps:\n"
        "- request: remove this\n  box: [15, 25, 85, 95]\n"
        "- request: brighten here\n  mask: right.png\n"
        "- request: remove this\n  point: 180,70\n")
    code, io = run(capsys, "run", files / "s.yaml", "-o", files / "r.png")
    assert code == 0, io.err + io.out
    img = Image.open(files / "r.png").convert("RGB")
    assert red_share(img, LEFT) < 0.05 and red_share(img, RIGHT) < 0.05


@pytest.mark.parametrize("args, words", [
    (["--box", "1,2,3"], "not 4 numbers"),
    (["--box", "x,y,z,w"], "not 4 numbers"),
    (["--box", "10,10,400,50"], "not inside the 240x140 image"),
    (["--point=-1,5"], "not inside"),
    (["--mask", "small.png"], "is 240x70 but the image is 240x140"),
    (["--mask", "notimage.png"], "cannot read the mask"),
    (["--mask", "missing.png"], "cannot read the mask"),
])
def test_bad_pointing_is_exit_code_2_before_any_work(files, capsys, monkeypatch, args, words):
    monkeypatch.chdir(files)
    code, io = run(capsys, "edit", "two.png", "remove this", *args)
    assert code == 2 and words in io.err and "hint:" in io.err
    code, io = run(capsys, "sessions")
    assert "no sessions yet" in io.out  # nothing was created


def test_bad_pointing_on_ask_and_in_scripts_is_exit_code_2(files, capsys):
    assert run(capsys, "edit", files / "two.png", "make it brighter", "-s", "b")[0] == 0
    code, io = run(capsys, "ask", "remove this", "--point", "500,5", "-s", "b")
    assert code == 2 and "not inside" in io.err
    (files / "bad.yaml").write_text("image: two.png\nsteps:\n- request: remove this\n  mask: small.png\n")
    code, io = run(capsys, "run", files / "bad.yaml")
    assert code == 2 and "step 1" in io.err and "240x70" in io.err
    (files / "bad2.yaml").write_text("image: two.png\nsteps:\n- request: remove this\n  box: 1,2\n")
    code, io = run(capsys, "run", files / "bad2.yaml")
    assert code == 2 and "step 1" in io.err and "not 4 numbers" in io.err
    (files / "bad3.yaml").write_text("image: two.png\nsteps:\n- undo: 1\n  box: 1,2,3,4\n")
    code, io = run(capsys, "run", files / "bad3.yaml")
    assert code == 2 and "requests only" in io.err


def test_remove_this_with_no_selection_asks_on_the_cli(files, capsys):
    code, io = run(capsys, "edit", files / "two.png", "remove this")
    assert code == 6 and "What should I remove" in io.out
