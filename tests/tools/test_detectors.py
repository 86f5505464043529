"""The classical detectors (Haar cascades for cats, eyes, plates) on the astronaut photo and synthetic images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imagent.tools import detectors as D

ASTRONAUT = Path(__file__).resolve().parents[2] / "assets" / "astronaut.png"


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    return Image.open(ASTRONAUT).convert("RGB")


def test_every_cascade_named_in_the_issue_ships_and_loads():
    assert D.available()
    for kind, (names, _label, _n, _f) in D.CASCADES.items():
        for name in names:
            assert D.cascade_path(name).is_file(), (kind, name)
            assert not D._cascade(name).empty(), (kind, name)


def test_eyes_on_the_astronaut(astronaut):
    x0, y0, x1, y1 = 160, 50, 290, 180  # her face
    eyes = D.detect(astronaut, "eye")
    assert len(eyes) == 2
    for e in eyes:  # both inside the face
        assert x0 <= e.box[0] and e.box[2] <= x1 and y0 <= e.box[1] and e.box[3] <= y1
    assert D.detect(astronaut, "cat") == []


def test_nothing_on_noise_or_tiny_images():
    rng = np.random.default_rng(0)
    noise = Image.fromarray(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8))
    for kind in D.KINDS:
        assert D.detect(noise, kind) == [], kind
    one = Image.new("RGB", (1, 1))
    for kind in D.KINDS:
        assert D.detect(one, kind) == []


def test_nms_and_words():
    a = D.RawDetection((0, 0, 10, 10), 0.9, "face", "x")
    b = D.RawDetection((1, 1, 11, 11), 0.8, "face", "x")
    c = D.RawDetection((50, 50, 60, 60), 0.7, "face", "x")
    assert D.nms([b, a, c]) == [a, c]
    assert D.kind_for_words(["the", "woman"]) is None  # people: the shipped models (tools/vision.py)
    assert "face" not in D.KINDS and "person" not in D.KINDS
    assert D.kind_for_words(["kitten"]) == ("cat", "kitten")
    assert D.kind_for_words(["dog"]) is None
    with pytest.raises(ValueError):
        D.detect(Image.new("RGB", (9, 9)), "dog")
