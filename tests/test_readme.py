"""The README's Python API example and its example script run as written."""

from __future__ import annotations

import re
from pathlib import Path

from PIL import Image

from imagent import Assistant
from imagent.cli import main
from tests.conftest import textured_image

README = Path(__file__).resolve().parents[1] / "README.md"


def _block(heading: str, lang: str) -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index(heading)
    m = re.compile(rf"```{lang}\n(.*?)```", re.S).search(text, start)
    assert m, f"no ```{lang} block after {heading!r} in README.md"
    return m.group(1)


def test_readme_python_api_example(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    textured_image().save(tmp_path / "photo.jpg", quality=95)
    exec(compile(_block("### Python API", "python"), "README.md", "exec"), {"__name__": "readme"})
    out = capsys.readouterr().out
    assert "→ version 1" in out and "@" in out
    assert Image.open(tmp_path / "out.png").size == (160, 120)
    assert "make it a bit brighter" in (tmp_path / "session.yaml").read_text()
    with Assistant.open() as a:
        # undo went back to version 1; the answered question added version 3 on a branch from it.
        assert a.head.request == "make it a bit darker" and a.version(a.head.parent_id).seq == 1


def test_readme_script_example(tmp_path, capsys):
    textured_image().save(tmp_path / "photo.jpg", quality=95)
    script = tmp_path / "edit.yaml"
    script.write_text(_block("### Scripts", "yaml"))
    assert main(["run", str(script)]) == 0
    assert (tmp_path / "final.png").exists() and (tmp_path / "v1.png").exists()
    assert "session" in capsys.readouterr().out


def test_readme_quick_start_is_two_commands():
    block = _block("## Quick start", "sh")
    assert [line.split("#")[0].strip() for line in block.strip().splitlines()] == ["make demo", "make test"]
