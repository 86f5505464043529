"""tools/vision.py: the shipped models on real photos (../shared, skipped when absent) and on
synthetic images (always)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from imagent.tools import vision
from imagent.tools.masks import mask_bbox

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.scenes.scenes import photos_dir  # noqa: E402

PHOTOS = photos_dir()
needs_photos = pytest.mark.skipif(not PHOTOS.is_dir(), reason=f"the shared benchmark photos are missing ({PHOTOS})")


def photo(name: str) -> Image.Image:
    return Image.open(PHOTOS / name).convert("RGB")


def gradient(w: int = 640, h: int = 420) -> Image.Image:
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([60 + 120 * x / w, 80 + 90 * y / h, 150 - 60 * x / w], axis=2)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def draw(image: Image.Image, items) -> tuple[Image.Image, list[tuple[int, int, int, int]]]:
    """Draws (xy, text, size, RGBA fill) items over ``image``; returns it and each text's box."""
    base = image.convert("RGBA")
    layer = Image.new("RGBA", base.size, (0, 0, 0, 0))
    d = ImageDraw.Draw(layer)
    boxes = []
    for xy, text, size, fill in items:
        font = ImageFont.load_default(size=size)
        d.text(xy, text, font=font, fill=fill)
        boxes.append(tuple(int(v) for v in d.textbbox(xy, text, font=font)))
    return Image.alpha_composite(base, layer).convert("RGB"), boxes


def cover(box, found) -> float:
    """Fraction of ``box`` covered by the union of the found boxes."""
    x0, y0, x1, y1 = box
    m = np.zeros((y1 - y0, x1 - x0), dtype=bool)
    for b in found:
        m[max(0, b[1] - y0):max(0, b[3] - y0), max(0, b[0] - x0):max(0, b[2] - x0)] = True
    return float(m.mean())


def inside(inner, outer) -> bool:
    return inner[0] >= outer[0] and inner[1] >= outer[1] and inner[2] <= outer[2] and inner[3] <= outer[3]


# ----------------------------------------------------------------------------- always
def test_a_missing_model_file_names_the_file(monkeypatch, tmp_path):
    monkeypatch.setattr(vision, "DATA", tmp_path)
    with pytest.raises(vision.VisionModelMissing) as err:
        vision.model_path("face")
    assert "face_detection_short_range.tflite" in str(err.value)
    assert "reinstall imagent; the file ships with it" in err.value.hint
    with pytest.raises(vision.VisionModelMissing, match="ch_PP-OCRv4_det_infer.onnx"):
        vision.text_boxes(gradient())
    with pytest.raises(vision.VisionModelMissing, match="selfie_segmentation"):
        vision.person_mask(gradient(300, 400))


def test_no_face_or_person_in_a_plain_gradient():
    img = gradient()
    assert vision.faces(img) == []
    assert vision.people(img) == []
    m = vision.person_mask(img)
    assert m.shape == (420, 640) and m.dtype == np.float32 and 0 <= m.min() and m.max() <= 1


def test_text_on_a_synthetic_gradient_is_found_in_reading_order():
    img, (title, caption, mark) = draw(gradient(), [
        ((40, 30), "Summer sale 2025", 36, (255, 255, 255, 255)),
        ((40, 360), "all prices include tax", 16, (20, 20, 20, 255)),
        ((470, 395), "(c) imagent", 13, (255, 255, 255, 110)),
    ])
    found = vision.text_boxes(img)
    assert 3 <= len(found) <= 5
    for truth in (title, caption, mark):
        assert cover(truth, [b.box for b in found]) > 0.85, truth
    ys = [(b.box[1] + b.box[3]) / 2 for b in found]
    assert ys == sorted(ys) or all(ys[i] <= ys[i + 1] + found[i].height / 2 for i in range(len(ys) - 1))
    first = found[0]
    assert first.quad.shape == (4, 2) and first.quad.dtype == np.float32
    assert 0.5 <= first.score <= 1 and 25 <= first.height <= 70
    assert vision.text_boxes(gradient()) == []


def test_text_mask_grows_with_the_text_height():
    img, _ = draw(gradient(), [((40, 30), "Big title", 48, (255, 255, 255, 255)),
                               ((40, 300), "small print", 12, (255, 255, 255, 255))])
    found = vision.text_boxes(img)
    big = max(found, key=lambda b: b.height)
    small = min(found, key=lambda b: b.height)
    assert big.height > 2 * small.height
    def margin(b):
        m = vision.text_mask(img.size, [b])
        assert m.shape == (420, 640) and m.dtype == np.float32 and set(np.unique(m)) <= {0.0, 1.0}
        ys = np.nonzero(m.any(axis=1))[0]
        return (ys.max() + 1 - ys.min()) - (b.quad[:, 1].max() - b.quad[:, 1].min())
    assert margin(big) > 2 * margin(small) > 0
    assert 0.5 * 0.35 * big.height <= margin(big) / 2 <= 1.5 * 0.35 * big.height + 2
    assert vision.text_mask(img.size, []).sum() == 0
    wide = vision.text_mask(img.size, [big], grow=0.8)
    assert wide.sum() > vision.text_mask(img.size, [big]).sum()


def test_saliency_is_a_normalised_map_at_image_size():
    img = gradient()
    arr = np.asarray(img).copy()
    arr[150:250, 280:380] = (250, 250, 30)
    s = vision.saliency(Image.fromarray(arr))
    assert s.shape == (420, 640) and s.dtype == np.float32
    assert s.min() >= 0 and s.max() <= 1 and s.max() > 0.9
    assert s[150:250, 280:380].mean() > 2 * s.mean()


def test_main_subject_on_a_synthetic_object():
    arr = np.asarray(gradient()).copy()
    yy, xx = np.mgrid[0:420, 0:640]
    disc = (xx - 320) ** 2 + (yy - 210) ** 2 < 90 ** 2
    arr[disc] = (230, 40, 40)
    mask, conf = vision.main_subject(Image.fromarray(arr))
    assert mask.shape == (420, 640) and mask.dtype == np.float32 and 0 <= conf <= 1
    fg = mask > 0.5
    assert (fg & disc).sum() / disc.sum() > 0.7
    assert (fg & ~disc).sum() < 0.5 * disc.sum()


def test_results_are_deterministic_and_any_size_works():
    img, _ = draw(gradient(1500, 900), [((100, 100), "Hello there", 60, (255, 255, 255, 255))])
    a = vision.text_boxes(img)
    b = vision.text_boxes(img)
    assert [t.box for t in a] == [t.box for t in b] and a
    tiny = gradient(40, 30)
    assert vision.faces(tiny) == [] and vision.text_boxes(tiny) == []
    assert vision.person_mask(tiny).shape == (30, 40)
    assert vision.saliency(tiny).shape == (30, 40)


# ----------------------------------------------------------------------------- real photos
@needs_photos
def test_faces_on_real_photos():
    astro = vision.faces(photo("skimage_astronaut.png"))
    assert len(astro) == 1
    f = astro[0]
    # her face (eyebrows to chin, cheek to cheek), marked on the photo
    assert inside((195, 100, 255, 165), f.box) and inside(f.box, (150, 50, 300, 200))
    assert f.score >= 0.8 and len(f.keypoints) == 6
    (rex, rey), (lex, ley), (nx, ny), (mx, my) = f.keypoints[:4]
    assert rex < nx < lex and max(rey, ley) < ny < my  # her right eye is on the viewer's left
    head = vision.head_box(f, (512, 512))
    assert inside((165, 30, 290, 185), head) and inside(head, (120, 0, 330, 230))
    cam = vision.faces(photo("skimage_camera.png"))
    assert len(cam) == 1 and inside((205, 140, 245, 185), cam[0].box) and inside(cam[0].box, (160, 100, 280, 230))
    for name in ("skimage_chelsea.png", "skimage_coffee.png", "skimage_coins.png", "skimage_rocket.jpg",
                 "skimage_hubble_deep_field.jpg"):
        assert vision.faces(photo(name)) == [], name


@needs_photos
def test_small_faces_are_found_in_a_big_photo():
    canvas = photo("skimage_coffee.png").resize((1600, 1200))
    canvas.paste(photo("skimage_astronaut.png").resize((300, 300)), (320, 400))
    found = vision.faces(canvas)
    assert len(found) >= 1
    x0, y0 = 320 + 300 * 195 // 512, 400 + 300 * 100 // 512
    assert inside((x0, y0, x0 + 300 * 60 // 512, y0 + 300 * 65 // 512), found[0].box)


@needs_photos
def test_one_person_on_the_astronaut_photo():
    img = photo("skimage_astronaut.png")
    ps = vision.people(img)
    assert len(ps) == 1
    p = ps[0]
    assert p.mask.shape == (512, 512) and p.mask.dtype == np.float32
    fg = p.mask > 0.5
    assert fg[30:180, 170:290].mean() > 0.8  # hair and face
    assert fg[300:500, 60:260].mean() > 0.8  # the orange suit
    assert fg[0:220, 0:80].mean() < 0.1  # the flag
    assert fg[0:200, 360:470].mean() < 0.1  # the shuttle model
    assert p.box == mask_bbox(p.mask) and p.face.box == vision.faces(img)[0].box
    assert 0.5 <= p.score <= 1
    assert vision.people(photo("skimage_chelsea.png")) == []


@needs_photos
def test_two_people_split_the_mask():
    a = photo("skimage_astronaut.png")
    c = photo("skimage_camera.png")
    both = Image.new("RGB", (1024, 512))
    both.paste(a, (0, 0))
    both.paste(c, (512, 0))
    ps = vision.people(both)
    assert len(ps) == 2
    left, right = sorted(ps, key=lambda p: p.face.box[0])
    assert (left.mask[:, 512:] > 0.5).mean() < 0.05 and (right.mask[:, :512] > 0.5).mean() < 0.05


@needs_photos
def test_text_drawn_on_photos_is_found():
    for name in ("skimage_coffee.png", "skimage_rocket.jpg"):
        img = photo(name)
        w, h = img.size
        drawn, truths = draw(img, [
            ((20, h - 50), "Good morning, world!", 28, (255, 255, 255, 255)),
            ((w - 170, 12), "(c) imagent 2025", 14, (255, 255, 255, 90)),  # a faint watermark
            ((w - 200, h - 24), "small caption here", 11, (255, 255, 0, 255)),
        ])
        found = vision.text_boxes(drawn)
        assert len(found) <= 4, name
        for truth in truths:
            assert cover(truth, [b.box for b in found]) > 0.85, (name, truth)
            best = max(found, key=lambda b: cover(truth, [b.box]))
            area = (best.box[2] - best.box[0]) * (best.box[3] - best.box[1])
            assert area < 2.5 * (truth[2] - truth[0]) * (truth[3] - truth[1]), (name, truth, best.box)


@needs_photos
def test_no_text_on_plain_photos():
    for name in ("skimage_coffee.png", "skimage_rocket.jpg", "skimage_coins.png", "skimage_camera.png",
                 "skimage_hubble_deep_field.jpg"):
        assert vision.text_boxes(photo(name)) == [], name
    # known false positives: the cat's two eyes look like glyphs to the detector
    assert len(vision.text_boxes(photo("skimage_chelsea.png"))) <= 2
    # the name badge on the astronaut's suit is real (tiny) text
    assert all(inside(b.box, (270, 340, 340, 390)) for b in vision.text_boxes(photo("skimage_astronaut.png")))


@needs_photos
def test_main_subject_on_the_cat_and_the_astronaut():
    mask, conf = vision.main_subject(photo("skimage_chelsea.png"))
    fg = mask > 0.5
    assert conf >= 0.4
    assert fg[90:230, 120:330].mean() > 0.6  # the cat's face
    assert 0.1 < fg.mean() < 0.85
    mask, conf = vision.main_subject(photo("skimage_astronaut.png"))
    fg = mask > 0.5
    assert conf >= 0.7 and fg[30:180, 170:290].mean() > 0.8 and fg[0:220, 0:80].mean() < 0.1
    _, unclear = vision.main_subject(photo("skimage_hubble_deep_field.jpg"))
    assert unclear < 0.3
