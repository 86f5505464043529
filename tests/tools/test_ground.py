from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from imagent.errors import GroundingError, ToolArgumentError
from imagent.tools import ground as G
from imagent.tools.registry import default_registry
from imagent.tools.types import ToolCall, ToolState

W, H = 96, 64


def _img(w=W, h=H, seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def _box(phrase, img=None, **kw):
    dets, _ = G.ground(img or _img(), phrase, **kw)
    return dets[0]


@pytest.mark.parametrize("phrase,box,pos", [
    ("the top-left corner", (0, 0, 32, 21), ["top", "left"]),
    ("the flag in the top-left corner", (0, 0, 32, 21), ["top", "left"]),
    ("upper right corner", (64, 0, 96, 21), ["top", "right"]),
    ("bottom left", (0, 43, 32, 64), ["bottom", "left"]),
    ("the bottom-right corner", (64, 43, 96, 64), ["bottom", "right"]),
    ("the left half", (0, 0, 48, 64), ["middle", "left"]),
    ("the right half", (48, 0, 96, 64), ["middle", "right"]),
    ("the upper half", (0, 0, 96, 32), ["top", "center"]),
    ("the bottom half", (0, 32, 96, 64), ["bottom", "center"]),
    ("the left third", (0, 0, 32, 64), ["middle", "left"]),
    ("the middle third", (32, 0, 64, 64), ["middle", "center"]),
    ("the right third", (64, 0, 96, 64), ["middle", "right"]),
    ("the center", (24, 16, 72, 48), ["middle", "center"]),
    ("the man in the middle", (24, 16, 72, 48), ["middle", "center"]),
    ("the tree on the left", (0, 0, 32, 64), ["middle", "left"]),
    ("the whole image", (0, 0, 96, 64), ["whole"]),
    ("everything", (0, 0, 96, 64), ["whole"]),
])
def test_geometry_phrases(phrase, box, pos):
    d = _box(phrase)
    assert d.box == box
    assert d.position == pos


def test_object_word_is_kept_as_label():
    assert _box("the flag in the top-left corner").label == "flag"
    assert _box("the top-left corner").label == "top-left corner"
    assert _box("the red car on the left half").label == "red car"


def test_explicit_boxes():
    assert _box("box 10,20,50,60").box == (10, 20, 50, 60)  # corners
    assert _box("rect 10,20,30,40").box == (10, 20, 40, 60)  # x,y,w,h
    assert _box("the logo at 5, 6, 25, 26").box == (5, 6, 25, 26)  # bare = corners
    d = _box("the logo box 80,50,200,200")  # partly outside: clipped
    assert d.box == (80, 50, 96, 64) and d.label == "logo"


def test_box_outside_or_empty():
    with pytest.raises(GroundingError) as ei:
        _box("box 200,200,300,300")
    assert "200,200,300,300" in str(ei.value) and "96x64" in str(ei.value)
    with pytest.raises(ToolArgumentError, match="empty"):
        _box("box 50,50,10,10")
    with pytest.raises(ToolArgumentError, match="empty"):
        _box("rect 10,10,0,5")


def test_ungroundable_phrase_is_a_clear_error_not_the_whole_image():
    with pytest.raises(GroundingError) as ei:
        G.ground(_img(), "the dog")
    assert "'the dog'" in str(ei.value)
    assert "GroundingDINO" in ei.value.hint and "--profile models" in ei.value.hint
    assert "top-left corner" in ei.value.hint and "box x0,y0,x1,y1" in ei.value.hint
    with pytest.raises(GroundingError):
        G.ground(_img(), "remove the dog from the picture")
    with pytest.raises(GroundingError):
        G.ground(_img(), "make it brighter")  # 'brighter' is not 'right'
    for relational in ("the cup on top of the table", "the tree to the left of the house"):
        with pytest.raises(GroundingError):  # relative to an object, not to the image
            G.ground(_img(), relational)
    assert _box("the top of the image").box == (0, 0, 96, 21)


def test_candidates_and_select():
    dets, _ = G.ground(_img(), "the corner")
    assert len(dets) == 4
    assert _box("the corner", select="right").position[1] == "right"
    assert _box("the corner", select="bottom").position[0] == "bottom"
    d = _box("the corner", select="left", index=1)
    assert d.position[1] == "left"
    assert _box("the sides", select="right").box == (64, 0, 96, 64)
    with pytest.raises(ToolArgumentError, match="no tenth"):
        G.ground(_img(), "the corner", index=9)


def test_sky_with_a_clear_horizon():
    arr = np.zeros((60, 80, 3), np.uint8)
    arr[:25] = (135, 190, 240)  # blue sky
    arr[25:] = (60, 110, 40)  # green field
    rng = np.random.default_rng(1)
    arr = np.clip(arr.astype(int) + rng.integers(-4, 5, arr.shape), 0, 255).astype(np.uint8)
    d = _box("the sky", img=Image.fromarray(arr))
    assert d.label == "sky"
    assert d.box[3] == pytest.approx(25, abs=2)
    assert d.score >= 0.5
    assert d.mask is not None and d.mask.shape == (60, 80)
    assert d.mask[:20].mean() > 0.9 and d.mask[30:].max() == 0


def test_sky_falls_back_to_top_third_on_flat_image():
    img = Image.new("RGB", (90, 60), (128, 128, 128))
    dets, note = G.ground(img, "the sky")
    assert dets[0].box == (0, 0, 90, 20) and dets[0].score < 0.5
    assert "top third" in note


def test_tiny_images():
    one = Image.new("RGB", (1, 1), (10, 20, 30))
    for phrase in ("the top-left corner", "the left half", "the center", "the sky",
                   "the middle third", "box 0,0,1,1", "the whole image"):
        d = _box(phrase, img=one)
        assert d.box == (0, 0, 1, 1), phrase


def test_run_through_registry():
    st = ToolState(image=_img())
    res = default_registry().run(ToolCall(name="ground",
                                          args={"phrase": "the flag in the top-left corner"}), st)
    assert res.detections and res.detections[0].box == (0, 0, 32, 21)
    assert "flag" in res.message and res.backend == "embedded"
    assert res.image is None and res.mask is None


# ----------------------------------------------------------------------------- objects
def _blobs() -> Image.Image:
    """Grey textured background; a big red blob right, a small red blob left, a blue one."""
    rng = np.random.default_rng(2)
    arr = np.clip(rng.normal(128, 6, (120, 200, 3)), 0, 255).astype(np.uint8)
    arr[30:90, 120:190] = (210, 30, 35)  # large red, right
    arr[50:70, 10:30] = (200, 25, 30)  # small red, left
    arr[10:30, 60:100] = (40, 60, 210)  # blue, top
    return Image.fromarray(arr)


def test_colour_phrases_segment_and_rank():
    g = G.ground_full(_blobs(), "the red car")
    assert g.method == "colour" and len(g.detections) == 2
    first = g.detections[0]
    assert first.label == "red car" and first.box == (120, 30, 190, 90)
    assert first.mask is not None and first.mask[40:80, 130:180].min() == 1.0
    assert first.mask[:, :100].max() == 0  # its own pixels only
    # a smaller region of the same colour is still a plausible "red car": ask, never guess
    assert g.ambiguous is True and g.plausible == 2
    assert _box("the blue thing", img=_blobs()).box == (60, 10, 100, 30)
    assert _box("the smallest red thing", img=_blobs()).box == (10, 50, 30, 70)
    assert _box("the red thing on the left", img=_blobs()).box == (10, 50, 30, 70)
    assert _box("the second red thing from the right", img=_blobs()).box == (10, 50, 30, 70)
    with pytest.raises(GroundingError) as ei:
        G.ground(_blobs(), "the green car")
    assert "'the green car'" in str(ei.value) and "GroundingDINO" in ei.value.hint


def test_unknown_colour_word_is_not_silently_grounded():
    with pytest.raises(GroundingError) as ei:
        G.ground(_blobs(), "the octarine car")
    assert "'the octarine car'" in str(ei.value)


@pytest.mark.parametrize("phrase,select,ordinal", [
    ("the second face from the left", "left", 2),
    ("the third eye from the right", "right", 3),
    ("the last face from the left", "left", -1),
    ("the left-most person", "left", None),
    ("the rightmost cat", "right", None),
    ("the biggest red thing", "largest", None),
    ("the face nearest the centre", "center", None),
    ("the second face", "left", 2),
    ("the sixth red square", "left", 6),
    ("the 6th one", "left", 6),
    ("the twenty-first dot", "left", 21),
    ("the second to last cat", "left", -2),
    ("the face", None, None),
    ("the left third", None, None),
    ("the middle third", None, None),
])
def test_selection_words(phrase, select, ordinal):
    from imagent.tools.referent import parse

    ref = parse(phrase)
    assert (ref.select, ref.ordinal) == (select, ordinal)


def test_faces_on_the_astronaut_and_metrics():
    from pathlib import Path

    img = Image.open(Path(__file__).resolve().parents[2] / "assets" / "astronaut.png").convert("RGB")
    st = ToolState(image=img)
    res = default_registry().run(ToolCall(name="ground", args={"phrase": "the face"}), st)
    assert res.metrics["method"] == "face" and res.metrics["candidates"] == 1
    assert res.metrics["ambiguous"] is False and res.backend == "embedded"
    assert 150 < res.detections[0].box[0] < 190  # the face grown to the head
    res = default_registry().run(ToolCall(name="ground", args={"phrase": "the eyes"}), st)
    assert res.metrics["candidates"] == 2 and res.metrics["ambiguous"] is True
    assert "which one" in res.message
    left = G.ground(img, "the second eye from the left")[0]
    right = G.ground(img, "the eye", select="right")[0]
    assert left[0].box == right[0].box and len(left) == 2
    # an explicit select/index overrides the phrase
    assert G.ground(img, "the second eye from the left", select="right")[0][0].box == \
        left[1].box
    with pytest.raises(GroundingError) as ei:
        G.ground(img, "the cat")
    assert "no cat" in str(ei.value) and "GroundingDINO" in ei.value.hint


def test_object_with_place_falls_back_to_the_place_and_says_so():
    g = G.ground_full(_img(), "the man in the middle")
    assert g.method == "geometry-fallback" and "no man" in g.note
    assert g.detections[0].box == (24, 16, 72, 48) and g.detections[0].score <= 0.4


# ----------------------------------------------------------------------------- pointing
from imagent.tools.referent import Referent  # noqa: E402
def _two_squares():
    from tests.assistant.test_pointing import two_squares

    return two_squares()


def test_a_box_with_an_object_word_is_refined_to_the_object_by_grabcut():
    img = _two_squares()
    g = G.ground_full(img, Referent(text="the selection", noun="object", box=(15, 25, 85, 95)))
    assert g.method == "grabcut" and g.confirm is None
    x0, y0, x1, y1 = g.detections[0].box
    assert abs(x0 - 30) <= 2 and abs(y0 - 40) <= 2 and abs(x1 - 70) <= 2 and abs(y1 - 80) <= 2
    # area words keep the whole box
    g = G.ground_full(img, Referent(text="the selection", box=(15, 25, 85, 95)))
    assert g.method == "box" and g.detections[0].box == (15, 25, 85, 95)
    # deterministic: the same mask every time (replay)
    a = G.ground_full(img, Referent(text="x", noun="cup", box=(15, 25, 85, 95))).detections[0].mask
    b = G.ground_full(img, Referent(text="x", noun="cup", box=(15, 25, 85, 95))).detections[0].mask
    assert (a == b).all()


def test_a_point_on_a_flat_region_is_that_region_and_an_unclear_one_must_be_confirmed():
    img = _two_squares()
    g = G.ground_full(img, Referent(text="x", points=[(180, 70)]))
    assert g.method == "point" and g.confirm is None and g.detections[0].box == (160, 50, 200, 90)
    g = G.ground_full(img, Referent(text="x", points=[(120, 125)]))  # textured background
    assert g.confirm and "unclear" in g.confirm and g.confidence < 0.5


def test_an_explicit_region_is_used_as_given_and_replays_from_its_code():
    from imagent.tools.referent import REGION_MAX_CHARS, decode_region, encode_region

    img = _two_squares()
    m = np.zeros((140, 240), bool)
    m[10:30, 100:150] = True
    code = encode_region(m)
    assert (decode_region(code, (240, 140)) == m).all() and code.startswith("rle:240x140:")
    g = G.ground_full(img, Referent(text="the selection", region=code))
    assert g.method == "region" and g.detections[0].box == (100, 10, 150, 30)
    assert ((g.detections[0].mask >= 0.5) == m).all()
    with pytest.raises(GroundingError, match="does not fit"):
        G.ground_full(img.resize((120, 70)), Referent(text="x", region=code))
    noisy = np.random.default_rng(0).random((800, 800)) > 0.5
    with pytest.raises(ToolArgumentError, match="too detailed"):
        encode_region(noisy)
    assert REGION_MAX_CHARS >= 100_000
