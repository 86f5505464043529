"""The model files shipped in tools/data: present, unchanged (sha256), licensed, small."""

from __future__ import annotations

import gzip
import hashlib

import pytest

from imagent.tools import vision

DATA = vision.DATA


@pytest.mark.parametrize("name", sorted(vision.MODEL_FILES))
def test_every_model_file_is_there_and_unchanged(name):
    rel, sha = vision.MODEL_FILES[name]
    path = vision.model_path(name)
    assert path == DATA / rel and path.is_file()
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha


def test_every_model_folder_has_its_licence_and_provenance():
    folders = {vision.MODEL_FILES[n][0].split("/")[0] for n in vision.MODEL_FILES}
    assert folders == {"mediapipe", "ppocr"}
    for folder in folders:
        licence = (DATA / folder / "LICENSE").read_text()
        assert "Apache License" in licence and "Version 2.0" in licence
        readme = (DATA / folder / "README.md").read_text()
        for n, (rel, sha) in vision.MODEL_FILES.items():
            if rel.startswith(folder + "/"):
                assert rel.split("/")[1] in readme and sha in readme, n
    assert "PaddlePaddle Authors" in (DATA / "ppocr" / "LICENSE").read_text()


def test_the_haar_cascades_unpack():
    cascades = sorted((DATA / "haarcascades").glob("*.xml.gz"))
    assert cascades
    for path in cascades:
        xml = gzip.decompress(path.read_bytes())
        assert b"<opencv_storage>" in xml and b"<cascade" in xml, path.name


def test_the_shipped_data_stays_small():
    total = sum(p.stat().st_size for p in DATA.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
    assert total < 10 * 1024 * 1024, f"tools/data holds {total / 1e6:.1f} MB"


def test_the_package_data_line_ships_them():
    text = (DATA.parents[1] / "pyproject.toml").read_text()
    assert '"data/mediapipe/*"' in text and '"data/ppocr/*"' in text
