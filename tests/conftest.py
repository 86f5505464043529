"""Shared fixtures: an isolated store and config, and small synthetic photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


@pytest.fixture(autouse=True)
def isolated_env(tmp_path_factory, monkeypatch):
    """Every test gets its own store and no user config file."""
    root = tmp_path_factory.mktemp("imagent-env")
    monkeypatch.setenv("IMAGENT_HOME", str(root / "home"))
    monkeypatch.setenv("IMAGENT_CONFIG", str(root / "absent-config.toml"))
    for var in ("IMAGENT_PROFILE", "IMAGENT_PLANNER", "IMAGENT_LLM", "IMAGENT_SEED",
                "IMAGENT_MAX_PIXELS", "IMAGENT_DEVICE"):
        monkeypatch.delenv(var, raising=False)
    return root


def textured_image(width: int = 160, height: int = 120, seed: int = 0) -> Image.Image:
    """A photo-like test image: smooth gradients plus seeded texture and a distinct square object."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack([80 + 60 * x / width, 90 + 50 * y / height, 120 + 30 * np.sin(x / 9.0)], axis=2)
    base += rng.normal(0, 6, size=base.shape)
    img = np.clip(base, 0, 255).astype(np.uint8)
    img[height // 8: height // 8 + height // 4, width // 8: width // 8 + width // 5] = (230, 30, 30)
    return Image.fromarray(img, "RGB")


@pytest.fixture
def photo(tmp_path) -> Path:
    path = tmp_path / "photo.png"
    textured_image().save(path)
    return path
