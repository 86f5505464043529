"""Pointing from Python: Assistant.select / ask(box=, point=, mask=) / chat, how "this", "here",
"the same area" use it, replay, and the errors."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from imagent.assistant.core import Assistant
from imagent.errors import SelectionError
from imagent.planners.base import PlanContext
from imagent.planners.rules import RulesPlanner
from imagent.tools.selection import Selection

RED = (220, 30, 30)
LEFT = (slice(40, 80), slice(30, 70))  # rows, cols of the left square
RIGHT = (slice(50, 90), slice(160, 200))
LEFT_BOX = (15, 25, 85, 95)  # a loose drag box around the left square
RIGHT_BOX = (145, 35, 215, 105)


def two_squares(width: int = 240, height: int = 140) -> Image.Image:
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([150 + 40 * x / width, 160 + 30 * y / height, 170 + 10 * np.sin(x / 9.0)], axis=2)
    img = np.clip(base + rng.normal(0, 4, size=base.shape), 0, 255).astype(np.uint8)
    img[LEFT] = RED
    img[RIGHT] = RED
    return Image.fromarray(img, "RGB")


def red_share(img: Image.Image, where) -> float:
    a = np.asarray(img, np.int16)[where]
    return float(((a[..., 0] > 180) & (a[..., 1] < 80) & (a[..., 2] < 80)).mean())


@pytest.fixture
def a(tmp_path):
    path = tmp_path / "two.png"
    two_squares().save(path)
    with Assistant.open(path) as assistant:
        yield assistant


def test_remove_this_with_a_box_removes_that_square_only(a):
    turn = a.ask("remove this", box=LEFT_BOX)
    assert turn.status == "done", turn.reply
    assert red_share(a.image, LEFT) < 0.05 and red_share(a.image, RIGHT) == 1.0
    ground = a.head.tool_calls[0]
    assert ground["name"] == "ground" and ground["args"]["referent"]["box"] == list(LEFT_BOX)
    assert a.selection is None  # consumed by the done edit
    assert a.head.metrics["selection"] == {"box": list(LEFT_BOX), "source": "user"}
    assert a.replay(verify=True).ok


def test_select_then_ask_and_the_box_is_refined_to_the_object(a):
    sel = a.select(box=RIGHT_BOX)
    assert isinstance(sel, Selection) and a.selection is sel and sel.describe() == "box 145,35,215,105"
    turn = a.ask("delete that one")
    assert turn.status == "done", turn.reply
    assert red_share(a.image, RIGHT) < 0.05 and red_share(a.image, LEFT) == 1.0
    mask = a.current_mask >= 0.5
    # GrabCut kept the square (plus the removal's few pixels of dilation), not the whole box
    assert mask.sum() < 0.6 * (RIGHT_BOX[2] - RIGHT_BOX[0]) * (RIGHT_BOX[3] - RIGHT_BOX[1])


def test_point_removes_the_square_under_it(a):
    turn = a.ask("remove this", point=(50, 60))
    assert turn.status == "done", turn.reply
    assert red_share(a.image, LEFT) < 0.05 and red_share(a.image, RIGHT) == 1.0
    assert a.head.tool_calls[0]["args"]["referent"]["points"] == [[50, 60]]


def test_mask_make_this_blue_recolours_inside_the_mask_only(a, tmp_path):
    m = np.zeros((140, 240), np.uint8)
    m[RIGHT] = 255
    Image.fromarray(m).save(tmp_path / "m.png")
    turn = a.ask("make this blue", mask=tmp_path / "m.png")
    assert turn.status == "done", turn.reply
    out = np.asarray(a.image, np.int16)
    right = out[RIGHT]
    assert (right[..., 2] > right[..., 0]).mean() > 0.9  # blue now
    assert red_share(a.image, LEFT) == 1.0
    assert a.head.tool_calls[0]["args"]["referent"]["region"].startswith("rle:240x140:")
    assert a.replay(verify=True).ok  # the region is in the stored call: no outside file


def test_global_request_with_a_box_applies_to_the_box(a):
    before = np.asarray(a.image, np.int16)
    turn = a.ask("make it darker", box=(100, 10, 140, 60))
    assert turn.status == "done" and turn.plan.steps[0].kind == "local", turn.reply
    diff = np.abs(np.asarray(a.image, np.int16) - before).max(axis=2)
    assert diff[20:50, 110:130].mean() > 8  # inside changed
    assert diff[:, 160:].max() == 0 and diff[100:, :].max() == 0  # far outside untouched


def test_chat_takes_a_box_and_a_mask_array(a):
    turn = a.chat("make this darker", box=RIGHT_BOX)
    assert turn.status == "done" and turn.plan.steps[0].kind == "local", turn.reply
    turn = a.chat("brighten here", mask=np.pad(np.ones((20, 20), bool), ((0, 120), (0, 220))))
    assert turn.status == "done", turn.reply
    assert a.replay(verify=True).ok


def test_the_same_area_reuses_the_previous_mask(a):
    a.ask("remove this", box=LEFT_BOX)
    previous = a.current_mask >= 0.5
    before = np.asarray(a.image, np.int16)
    turn = a.ask("make the same area darker")
    assert turn.status == "done", turn.reply
    ref = a.head.tool_calls[0]["args"]["referent"]
    assert ref["region"].startswith("rle:")
    diff = np.abs(np.asarray(a.image, np.int16) - before).max(axis=2) > 0
    assert diff[previous].mean() > 0.9
    near = cv2.dilate(previous.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
    assert not diff[~near].any()  # only the previous area (and its feathered edge)
    assert "selection" not in a.head.metrics  # re-derived from the words, not a user selection
    assert a.replay(verify=True).ok


def test_there_and_the_same_area_with_no_previous_mask_ask(a):
    turn = a.ask("blur the same area")
    assert turn.status == "asked" and "Which area" in turn.question
    assert a.head.seq == 0


def test_remove_this_without_a_selection_asks(a):
    turn = a.ask("remove this")
    assert turn.status == "asked" and a.head.seq == 0
    a.ask("remove this", box=LEFT_BOX)
    turn = a.ask("remove this")  # the last target was the (now used) selection
    assert turn.status == "asked" and a.head.seq == 1


def test_an_unclear_point_asks_keeps_the_selection_and_yes_uses_the_guess(a):
    turn = a.chat("remove this", point=(120, 125))  # on the textured background: no clear region
    assert turn.status == "asked" and "unclear" in turn.question, turn.reply
    assert a.selection is not None and a.head.seq == 0
    turn = a.chat("yes")
    assert turn.status == "done", turn.reply
    assert a.selection is None and red_share(a.image, LEFT) == 1.0 and red_share(a.image, RIGHT) == 1.0


def test_a_whole_image_operation_with_a_selection_says_so(a):
    turn = a.ask("rotate it 90 degrees", box=LEFT_BOX)
    assert turn.status == "asked" and "cannot be limited to the selection" in turn.question
    assert a.selection is not None and a.head.seq == 0
    a.clear_selection()
    assert a.selection is None


def test_undo_does_not_use_the_selection(a):
    a.ask("remove this", box=LEFT_BOX)
    a.select(point=(170, 60))
    turn = a.ask("undo")
    assert turn.status == "moved" and a.selection is not None


@pytest.mark.parametrize("kw, words", [
    ({"box": (10, 10, 300, 50)}, "not inside the 240x140 image"),
    ({"box": (50, 10, 20, 40)}, "empty"),
    ({"box": "1,2,3"}, "not 4 numbers"),
    ({"point": (240, 5)}, "not inside"),
    ({"point": (1.5, 3)}, "fractional"),
    ({"mask": np.zeros((140, 240), bool)}, "selects nothing"),
    ({"mask": np.ones((10, 10), bool)}, "10x10 but the image is 240x140"),
    ({"mask": "/nonexistent/m.png"}, "cannot read the mask"),
    ({"box": LEFT_BOX, "point": (1, 1)}, "one of box, point and mask"),
])
def test_bad_selections_are_clear_usage_errors(a, kw, words):
    with pytest.raises(SelectionError) as ei:
        a.ask("remove this", **kw)
    assert words in ei.value.message and ei.value.hint and ei.value.exit_code == 2
    assert a.head.seq == 0 and a.selection is None


@pytest.mark.parametrize("request_, kind, tool", [
    ("remove this", "remove", "remove"),
    ("make this blue", "local", "recolor"),
    ("blur this", "local", "global_edit"),
    ("brighten here", "local", "global_edit"),
    ("remove this area", "remove", "remove"),
    ("make the selected area darker", "local", "global_edit"),
    ("cut this out", "extract", "extract"),
])
def test_rules_planner_reads_deictic_words_as_the_selection(request_, kind, tool):
    ctx = PlanContext(image_size=(240, 140), selection=Selection(box=LEFT_BOX))
    plan = RulesPlanner().plan(request_, ctx)
    assert not plan.is_question, plan.question
    step = plan.steps[0]
    assert step.kind == kind and step.target == "the selection"
    assert step.calls[-1].name == tool


def test_without_a_selection_this_keeps_meaning_the_image():
    plan = RulesPlanner().plan("make this look like winter", PlanContext(image_size=(240, 140)))
    assert plan.steps[0].kind == "global"
    assert RulesPlanner().plan("remove this", PlanContext(image_size=(240, 140))).is_question
