"""bench/photo_scale.py: its --quick mode runs whole `imagent edit` processes and cv2
baselines on a 1 MP photo and writes the table's figures (a smoke test, not the targets)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "bench") not in sys.path:
    sys.path.insert(0, str(REPO / "bench"))

import photo_scale  # noqa: E402


def test_box_is_five_percent_and_inside():
    for mp in (1, 12, 24):
        w, h = photo_scale.photo_size(mp)
        assert abs(w * h / 1e6 - mp) / mp < 0.01
        x0, y0, x1, y1 = photo_scale.removal_box(w, h)
        assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
        assert abs((x1 - x0) * (y1 - y0) / (w * h) - 0.05) < 0.002


def test_synthetic_photo_has_texture():
    img = photo_scale.synthetic()
    assert img.shape == (427, 640, 3) and img.dtype == np.uint8
    assert float(img.std()) > 20


def test_quick_run_writes_the_figures(tmp_path, capsys):
    out = tmp_path / "photo_scale.json"
    rc = photo_scale.main(["--quick", "--requests", "brighter", "--out", str(out),
                           "--cache", str(tmp_path / "cache")])
    assert rc == 0
    report = json.loads(out.read_text())
    rows = {(r["request"], r["input"]): r for r in report["rows"]}
    assert set(rows) == {("io", "png"), ("io", "jpg"), ("brighter", "png"), ("brighter", "jpg")}
    for key in (("brighter", "png"), ("brighter", "jpg")):
        r = rows[key]
        assert r["errors"] == [], r["errors"]
        assert r["imagent_median_s"] > 0 and r["baseline_median_s"] > 0 and r["ratio"] > 0
        assert 20 < r["peak_rss_mb"] < 4096  # a real per-child figure, in MB
        assert r["output_size"] == r["size"]
    assert "brighter" in capsys.readouterr().out
