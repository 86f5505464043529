"""GroundingDINO and SAM with tiny random models, and the optional original backends."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from imagent.errors import GroundingError, ToolArgumentError
from imagent.tools.backends.grounding_dino import clean_label, ground, nms
from imagent.tools.ground import ground_with_model
from imagent.tools.referent import parse
from imagent.tools.backends.sam import segment
from imagent.tools.types import Detection

from .conftest import big_image, make_manager, small_case


@pytest.fixture(scope="module")
def mgr(tiny_gdino, tiny_sam_dir):
    return make_manager(grounding=tiny_gdino, segmentation=tiny_sam_dir)


def test_detector_text_place_and_labels():
    # the model gets the referent's object words; place and instance words stay fields
    ref = parse("the flag in the top-left corner")
    assert (ref.detector_text(), ref.place) == ("flag", "corner:top-left")
    ref = parse("the dog on the left")
    assert (ref.detector_text(), ref.place) == ("dog", "side:left")
    ref = parse("the largest red car")
    assert (ref.detector_text(), ref.select) == ("red car", "largest")
    ref = parse("a cat")
    assert (ref.detector_text(), ref.place, ref.select) == ("cat", None, None)
    assert clean_label("cat. [SEP]") == "cat"


def test_nms_drops_overlaps():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [20, 20, 30, 30]], np.float32)
    assert nms(boxes, np.array([0.9, 0.8, 0.5], np.float32), 0.5) == [0, 2]


def test_ground_returns_detections_selected_by_place(mgr):
    img, _ = small_case()
    info = {}
    dets = ground_with_model(mgr, img, parse("the cat on the left"), box_threshold=0.0,
                             text_threshold=0.0, info=info).detections
    assert dets and all(isinstance(d, Detection) for d in dets)
    assert info["text"] == "cat." and info["place"] == "side:left"
    centers = [(d.box[0] + d.box[2]) / 2 for d in dets]
    assert centers[0] == min(centers)  # "on the left" puts the leftmost first
    w, h = img.size
    for d in dets:
        x0, y0, x1, y1 = d.box
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h and d.label == "cat" and d.position
    again = ground_with_model(mgr, img, parse("the cat on the left"), box_threshold=0.0,
                              text_threshold=0.0).detections
    assert [d.box for d in again] == [d.box for d in dets]
    best = ground(mgr, img, "cat", box_threshold=0.0, text_threshold=0.0)
    assert best[0].score == max(d.score for d in best)
    assert mgr.loads["grounding"] == 1


def test_ground_nothing_found_is_a_grounding_error(mgr):
    img, _ = small_case()
    with pytest.raises(GroundingError, match="found no 'cat'"):
        ground(mgr, img, "cat", box_threshold=1.01)


def test_sam_boxes_points_and_cached_embedding(mgr, monkeypatch):
    img = big_image(300, 200)
    model, _ = mgr.get("segmentation")
    calls = []
    real = model.get_image_embeddings
    monkeypatch.setattr(model, "get_image_embeddings", lambda *a, **k: calls.append(1) or real(*a, **k))
    info = {}
    masks = segment(mgr, img, boxes=[[10, 10, 120, 90], [150, 50, 290, 190]], info=info)
    assert len(masks) == 2 and all(mk.shape == (200, 300) and mk.dtype == np.float32 for mk in masks)
    assert set(np.unique(masks[0])) <= {0.0, 1.0} and len(info["iou"]) == 2
    assert info["embedding_cached"] is False
    pts = segment(mgr, img, points=[[50, 50], [60, 40]], point_labels=[1, 0], info=info)
    assert len(pts) == 1 and info["embedding_cached"] is True
    assert calls == [1]  # the vision encoder ran once for this image version
    segment(mgr, big_image(300, 201), boxes=[[0, 0, 50, 50]])
    assert calls == [1, 1]  # a new image version computes a new embedding
    again = segment(mgr, img, boxes=[[10, 10, 120, 90]])
    assert np.array_equal(again[0], masks[0])


def test_sam_needs_a_prompt(mgr):
    img, _ = small_case()
    with pytest.raises(ToolArgumentError):
        segment(mgr, img)
    with pytest.raises(ToolArgumentError):
        segment(mgr, img, points=[[1, 1]], point_labels=[1, 0])


def _torchvision_missing() -> str | None:
    try:
        import torchvision  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - absent or broken: the original backends cannot run
        return f"torchvision cannot be imported ({type(exc).__name__}); the original checkpoints need it"
    return None


def _original_skip(module: str, dist: str, extra: str):
    """Skip with the torchvision reason first (the original backends cannot run without it)."""
    why = _torchvision_missing()
    if why is None and importlib.util.find_spec(module) is None:
        why = f"{dist} is not installed (pip install 'imagent[{extra}]')"
    return pytest.mark.skipif(why is not None, reason=why or "")


@_original_skip("groundingdino", "groundingdino-py", "groundingdino")
def test_original_groundingdino_reports_missing_checkpoint(tmp_path):
    from imagent.errors import ModelUnavailableError
    from imagent.tools.models import ModelManager

    mgr = ModelManager({"gdino_original": str(tmp_path / "groundingdino_swint_ogc.pth")}, device="cpu")
    with pytest.raises(ModelUnavailableError):
        mgr.get("gdino_original")


@_original_skip("segment_anything", "segment-anything", "sam")
def test_original_sam_tiny_state_dict(tmp_path):
    import torch
    from segment_anything import sam_model_registry

    from imagent.tools.backends.original_sam import segment as seg
    from imagent.tools.models import ModelManager

    path = tmp_path / "sam_vit_b_test.pth"
    torch.save(sam_model_registry["vit_b"]().state_dict(), path)
    mgr = ModelManager({"sam_original": str(path)}, device="cpu")
    masks = seg(mgr, big_image(128, 96), boxes=[[10, 10, 60, 60]])
    assert masks[0].shape == (96, 128)
