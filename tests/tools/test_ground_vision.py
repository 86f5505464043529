"""Grounding people, faces, text and the main subject with the shipped models (tools/vision.py),
on the Grace Hopper portrait kept in the repository (bench/scenes/photos) and synthetic images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from imagent.errors import GroundingError
from imagent.tools import ground as G

PORTRAIT = Path(__file__).resolve().parents[2] / "bench" / "scenes" / "photos" / "grace_hopper.jpg"
FACE = (170, 125, 365, 335)  # her face, cap brim to chin (hand-marked)
HEAD = (148, 15, 380, 345)
BADGE_TEXT = (106, 492, 164, 510)


@pytest.fixture(scope="module")
def portrait() -> Image.Image:
    return Image.open(PORTRAIT).convert("RGB")


def _inside(box, outer, slack=12) -> bool:
    return (box[0] >= outer[0] - slack and box[1] >= outer[1] - slack and box[2] <= outer[2] + slack
            and box[3] <= outer[3] + slack)


def _landscape(w=480, h=320, seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    y = np.linspace(0, 1, h)[:, None, None]
    sky = np.array([120, 170, 230], np.float32) * (1 - y) + np.array([60, 120, 60], np.float32) * y
    arr = np.broadcast_to(sky, (h, w, 3)) + rng.normal(0, 4, (h, w, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def _with_caption(img: Image.Image, text="SUMMER HOLIDAY 2024", xy=(60, 250), size=28):
    img = img.copy()
    d = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=size)
    d.text(xy, text, fill=(255, 255, 255), font=font)
    return img, d.textbbox(xy, text, font=font)


@pytest.mark.parametrize("noun,expected", [
    ("woman", ("person", "woman", False)),
    ("her", ("person", "her", False)),
    ("her face", ("face", "face", False)),
    ("woman's face", ("face", "face", False)),
    ("guy with the camera", ("person", "guy", False)),
    ("camera on the man", None),
    ("people", ("person", "people", True)),
    ("faces", ("face", "faces", True)),
    ("text", ("text", "text", True)),
    ("watermark", ("text", "watermark", False)),
    ("main subject", ("subject", "subject", False)),
    ("background", ("background", "background", False)),
    ("cat's eyes", ("eye", "eyes", False)),
    ("tripod", None),
    (None, None),
])
def test_noun_class_reads_the_head_word(noun, expected):
    assert G.noun_class(noun) == expected


def test_her_face_is_the_blazeface_box_grown_to_the_head(portrait):
    g = G.ground_full(portrait, "her face")
    assert g.method == "face" and len(g.detections) == 1
    d = g.detections[0]
    assert _inside(d.box, HEAD, slack=20) and _inside(FACE, d.box, slack=20)
    assert g.confidence >= G.MODEL_SURE["face"] and g.confirm is None and not g.ambiguous
    m = np.asarray(d.mask) >= 0.5  # an ellipse in the head box, not the box itself
    x0, y0, x1, y1 = d.box
    assert m[(y0 + y1) // 2, (x0 + x1) // 2] and not m[y0, x0]


def test_the_woman_is_her_outline_not_the_flag(portrait):
    g = G.ground_full(portrait, "the woman")
    assert g.method == "person" and g.confirm is None and len(g.detections) == 1
    m = np.asarray(g.detections[0].mask) >= 0.5
    assert m[200:330, 200:340].mean() > 0.9  # her face
    assert m[450:600, 100:450].mean() > 0.9  # her jacket
    assert m[40:140, 0:120].mean() < 0.1     # the flag's stars behind her


def test_two_kinds_of_text_ask_which(portrait):
    """The badge text and a row of flag stars that the detector takes for letters: different
    line heights, so "the text" is not both at once; the badge is one of the candidates."""
    g = G.ground_full(portrait, "the text")
    assert g.method == "text" and g.ambiguous
    assert any(_inside(d.box, BADGE_TEXT, slack=8) for d in g.detections)


def test_a_caption_on_a_landscape_is_one_confident_text_block():
    img, tb = _with_caption(_landscape())
    g = G.ground_full(img, "the text")
    assert g.method == "text" and not g.ambiguous and g.confirm is None
    d = g.detections[0]
    assert _inside(tb, d.box, slack=2) and _inside(d.box, tb, slack=16)
    g2 = G.ground_full(img, "the white text")
    assert g2.detections[0].box == d.box
    with pytest.raises(GroundingError):
        G.ground_full(img, "the red text")


def test_no_face_no_person():
    img = _landscape()
    for phrase in ("the man", "her face", "the people"):
        with pytest.raises(GroundingError):
            G.ground_full(img, phrase)
