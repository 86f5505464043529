"""Transparency end to end: a cut-out commits an alpha plane, later edits keep it, a colour
background fills it in, and every way out (save, show -o, bundles, replay) keeps or says."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from PIL import Image, ImageDraw

from imagent import Assistant
from imagent.cli import main
from imagent.tools.imageio import alpha_flatten_note

CUT = "cut out the red circle"
CENTRE, FAR = (80, 60), (150, 110)  # (x, y) inside the circle, far outside it
DEBUG_DIR = os.environ.get("IMAGENT_ALPHA_DEBUG")  # e.g. /tmp/alpha_check: write what is seen


@pytest.fixture
def circle(tmp_path):
    """A red circle (centre 80,60, radius 30) and a blue square on a flat grey-beige ground."""
    img = Image.new("RGB", (160, 120), (200, 200, 190))
    d = ImageDraw.Draw(img)
    d.ellipse((50, 30, 110, 90), fill=(220, 30, 30))
    d.rectangle((5, 5, 25, 25), fill=(30, 60, 200))
    path = tmp_path / "circle.png"
    img.save(path)
    return path


def _alpha(a: Assistant, ref="head") -> np.ndarray | None:
    al = a.store.load_alpha(a.version(ref))
    return None if al is None else np.asarray(al)


def _debug(name: str, img: Image.Image) -> None:
    """Composite onto a checkerboard so the alpha is visible (only with IMAGENT_ALPHA_DEBUG)."""
    if not DEBUG_DIR:
        return
    os.makedirs(DEBUG_DIR, exist_ok=True)
    y, x = np.mgrid[0:img.height, 0:img.width]
    board = Image.fromarray(np.repeat((((x // 10 + y // 10) % 2) * 80 + 140)[..., None], 3, 2)
                            .astype(np.uint8))
    if img.mode == "RGBA":
        board.paste(img, (0, 0), img)
        img = board
    img.convert("RGB").save(os.path.join(DEBUG_DIR, name))


def test_cut_out_commits_the_alpha_over_the_original_pixels(circle):
    with Assistant.open(circle) as a:
        root = a.head
        turn = a.ask(CUT)
        assert turn.status == "done" and turn.version.seq == 1
        assert turn.metrics["alpha"] == "cut out"
        assert "cut out the red circle" in turn.reply and "transparent (alpha)" in turn.reply
        assert "PNG or WebP" in turn.reply
        alpha = _alpha(a)
        assert alpha is not None and alpha.shape == (120, 160)
        assert alpha[CENTRE[1], CENTRE[0]] >= 250 and alpha[FAR[1], FAR[0]] <= 5
        assert alpha[15, 15] <= 5  # the blue square is cut away too
        assert (alpha >= 128).mean() == pytest.approx(np.pi * 30 ** 2 / (160 * 120), rel=0.15)
        # The RGB under the transparency is the original: restoring the alpha is lossless.
        assert np.array_equal(np.asarray(a.image), np.asarray(a.version_image(root)))
        assert root.alpha_hash is None


def test_undo_brings_the_opaque_version_back_and_redo_the_cut_out(circle):
    with Assistant.open(circle) as a:
        cut = a.ask(CUT).version
        assert a.undo().alpha_hash is None and _alpha(a) is None
        assert a.redo().id == cut.id and _alpha(a) is not None


@pytest.mark.parametrize("text", ["undo the cut-out", "bring the background back",
                                  "restore the background"])
def test_giving_the_background_back_is_lossless(circle, text):
    """The RGB under the transparency is the original, so a request to give the background
    back is a new opaque version equal to the one before the cut-out."""
    with Assistant.open(circle) as a:
        root = a.head
        a.ask(CUT)
        turn = a.ask(text)
        assert turn.status == "done" and turn.version.seq == 2, turn.reply
        assert turn.version.alpha_hash is None and turn.metrics["alpha"] == "flattened"
        assert turn.version.image_hash == root.image_hash
        assert "opaque again" in turn.reply


def test_later_edits_keep_the_alpha_and_a_white_background_fills_it(circle, tmp_path):
    with Assistant.open(circle) as a:
        cut = a.ask(CUT).version
        bright = a.ask("make it brighter")
        assert bright.status == "done" and bright.metrics["alpha"] == "kept"
        assert bright.version.alpha_hash == cut.alpha_hash  # the very same alpha blob
        assert np.asarray(a.image).mean() > np.asarray(a.version_image(cut)).mean()
        a.save(tmp_path / "bright.png")
        _debug("bright.png", Image.open(tmp_path / "bright.png"))

        flat = a.ask("add a white background")
        assert flat.status == "done", flat.reply
        assert [c["name"] for c in flat.version.tool_calls] == ["build_mask", "extract"]
        assert flat.version.alpha_hash is None and flat.metrics["alpha"] == "flattened"
        assert "opaque again" in flat.reply and "white" in flat.reply
        px = np.asarray(a.image)
        assert tuple(px[FAR[1], FAR[0]]) == (255, 255, 255)
        assert px[CENTRE[1], CENTRE[0], 0] > 200 and px[CENTRE[1], CENTRE[0], 1] < 90
        _debug("flattened.png", a.image)


def test_a_geometry_change_drops_the_alpha_and_says_so(circle):
    with Assistant.open(circle) as a:
        a.ask(CUT)
        turn = a.ask("flip it horizontally")
        assert turn.version.alpha_hash is None and turn.metrics["alpha_dropped"]
        assert "transparency" in turn.reply and "dropped" in turn.reply


def test_save_keeps_alpha_in_png_and_webp_and_flattens_jpeg_with_a_note(circle, tmp_path):
    with Assistant.open(circle) as a:
        a.ask(CUT)
        for ext in ("png", "webp"):
            out = a.save(tmp_path / f"cut.{ext}")
            assert a.last_save["alpha"] and not a.last_save["alpha_flattened"]
            assert a.last_save["note"] is None
            im = Image.open(out)
            assert im.mode == "RGBA"
            got = np.asarray(im.getchannel("A"))
            assert np.array_equal(got, _alpha(a))  # lossless WebP keeps it exactly
            _debug(f"cut_{ext}.png", im)
        notes = []
        a.on_event = notes.append
        out = a.save(tmp_path / "cut.jpg")
        assert a.last_save["alpha_flattened"] and "flattened onto white" in a.last_save["note"]
        assert notes and notes[-1]["kind"] == "note"
        im = Image.open(out)
        assert im.mode == "RGB"
        far = np.asarray(im)[FAR[1], FAR[0]]
        assert far.min() >= 245  # white, not the grey-beige ground
        _debug("cut_jpg.png", im)


def test_cli_show_writes_the_alpha_and_flattens_jpeg_loudly(circle, tmp_path, capsys):
    assert main(["edit", str(circle), CUT, "--session", "alpha"]) == 0
    capsys.readouterr()
    png = tmp_path / "out.png"
    assert main(["show", "-o", str(png), "--session", "alpha"]) == 0
    out = capsys.readouterr().out
    assert "note:" not in out
    im = Image.open(png)
    assert im.mode == "RGBA"
    a = np.asarray(im.getchannel("A"))
    assert a[CENTRE[1], CENTRE[0]] >= 250 and a[FAR[1], FAR[0]] <= 5

    jpg = tmp_path / "out.jpg"
    assert main(["show", "-o", str(jpg), "--session", "alpha"]) == 0
    out = capsys.readouterr().out
    assert "note:" in out and "JPEG cannot hold transparency" in out
    assert main(["show", "-o", str(jpg), "--session", "alpha", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["alpha"] is True and data["alpha_flattened"] is True and data["notes"]
    assert Image.open(jpg).mode == "RGB"

    # the original version has no alpha: nothing to flatten, nothing to say
    assert main(["show", "0", "-o", str(jpg), "--session", "alpha", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["alpha"] is False and data["alpha_flattened"] is False and data["notes"] == []


def test_cli_edit_output_jpeg_says_it_flattened(circle, tmp_path, capsys):
    jpg = tmp_path / "edit.jpg"
    assert main(["edit", str(circle), CUT, "-o", str(jpg), "--session", "e", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["alpha_flattened"] is True and "flattened onto white" in data["notes"][0]
    assert data["turns"][0]["metrics"]["alpha"] == "cut out"


def test_bundle_round_trip_and_replay_verify_keep_the_alpha(circle, tmp_path, capsys):
    assert main(["edit", str(circle), CUT, "make it brighter", "--session", "b"]) == 0
    zip1, zip2, home2 = tmp_path / "b.zip", tmp_path / "b2.zip", tmp_path / "home2"
    assert main(["export", "-o", str(zip1), "--session", "b"]) == 0
    assert main(["import", str(zip1), "--home", str(home2)]) == 0
    capsys.readouterr()
    with Assistant.open(None, session="b") as a, \
            Assistant.open(None, session="b", home=str(home2)) as b:
        va, vb = a.history, b.history
        assert [v.alpha_hash for v in va] == [v.alpha_hash for v in vb]
        assert va[0].alpha_hash is None and va[1].alpha_hash and va[2].alpha_hash == va[1].alpha_hash
        assert np.array_equal(_alpha(a), _alpha(b))
        report = b.replay(verify=True)
        assert report.ok and [r["match"] for r in report] == [True, True]
        for r in report:
            assert r["got_alpha_hash"] and r["got_alpha_hash"] == r["expected_alpha_hash"]
    assert main(["export", "-o", str(zip2), "--session", "b", "--home", str(home2)]) == 0
    assert zip1.read_bytes() == zip2.read_bytes()  # export -> import -> export, alpha included
    assert main(["replay", "--verify", "--session", "b", "--home", str(home2)]) == 0
    assert "bit-identically" in capsys.readouterr().out


def test_replay_verify_catches_a_wrong_alpha(circle):
    with Assistant.open(circle) as a:
        a.ask(CUT)

        def no_alpha(image, version):  # reproduces the pixels but forgets the transparency
            return a.run_calls(image, version.tool_calls, with_alpha=True)[0], None

        report = a.store.replay(a.session, no_alpha, verify=True)
        assert not report.ok and report[0]["got_alpha_hash"] is None
        assert report[0]["got_hash"] == report[0]["expected_hash"]


def test_alpha_flatten_note_only_when_something_is_lost():
    opaque = Image.new("L", (4, 4), 255)
    holey = Image.new("L", (4, 4), 0)
    assert alpha_flatten_note("x.jpg", None) is None
    assert alpha_flatten_note("x.jpg", opaque) is None
    assert alpha_flatten_note("x.png", holey) is None
    assert alpha_flatten_note("x.webp", holey) is None
    assert "x.JPEG" in alpha_flatten_note("x.JPEG", holey)
