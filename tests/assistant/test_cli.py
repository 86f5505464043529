"""The imagent command line: fast help, every command, JSON output and exit codes."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from imagent.cli import main

REMOVE = "remove the red square at box 18,13,56,47"


def run(*argv, capsys=None):
    code = main([str(a) for a in argv])
    out = capsys.readouterr() if capsys else None
    return code, out


def test_help_does_not_import_heavy_modules():
    code = ("import sys\nfrom imagent.cli import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in ('torch', 'numpy', 'PIL', 'diffusers', 'transformers', 'pydantic') if m in sys.modules]\n"
            "print('HEAVY', heavy)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in res.stdout
    assert "edit" in res.stdout and "exit codes" in res.stdout


def test_console_script_help_runs():
    exe = Path(sys.executable).with_name("imagent")
    res = subprocess.run([str(exe) if exe.exists() else "imagent", "--help"], capture_output=True, text=True)
    assert res.returncode == 0 and "replay" in res.stdout


def test_full_cli_session(photo, tmp_path, capsys):
    out1 = tmp_path / "1.png"
    code, out = run("edit", photo, REMOVE, "make it a bit brighter", "-o", out1, "--session", "cli", capsys=capsys)
    assert code == 0, out.err
    assert "version 2" in out.out and out1.exists()
    assert run("ask", "extend the picture to the right by 10 px", "--json", capsys=capsys)[0] == 0
    code, out = run("log", "--json", capsys=capsys)
    data = json.loads(out.out)
    assert [v["seq"] for v in data["versions"]] == [0, 1, 2, 3]
    code, out = run("log", capsys=capsys)
    assert "@" in out.out and "brighter" in out.out
    assert run("undo", capsys=capsys)[0] == 0
    assert run("redo", capsys=capsys)[0] == 0
    assert run("checkout", "1", capsys=capsys)[0] == 0
    code, out = run("show", "2", "-o", tmp_path / "v2.jpg", "--json", capsys=capsys)
    assert code == 0 and json.loads(out.out)["version"]["seq"] == 2
    code, out = run("diff", "0", "1", "-o", tmp_path / "d.png", "--json", capsys=capsys)
    figures = json.loads(out.out)
    assert code == 0 and 0 < figures["changed_fraction"] < 0.2 and (tmp_path / "d.png").exists()
    code, out = run("replay", "--verify", capsys=capsys)
    assert code == 0 and "MISMATCH" not in out.out
    assert run("export", "-o", tmp_path / "b.zip", capsys=capsys)[0] == 0
    assert run("export", "--script", "-o", tmp_path / "s.yaml", capsys=capsys)[0] == 0
    assert "red square" in (tmp_path / "s.yaml").read_text()  # the path root → head (version 1)
    code, out = run("import", tmp_path / "b.zip", "--name", "copy", "--json", capsys=capsys)
    assert code == 0 and json.loads(out.out)["name"] == "copy"
    code, out = run("sessions", "--json", capsys=capsys)
    assert {s["name"] for s in json.loads(out.out)} == {"cli", "copy"}
    assert run("delete", "copy", capsys=capsys)[0] == 0
    code, out = run("gc", "--json", capsys=capsys)
    assert code == 0


def test_plan_command_json_and_stdin(capsys, monkeypatch):
    code, out = run("plan", "remove the top-left corner", "--json", capsys=capsys)
    plan = json.loads(out.out)
    assert code == 0 and plan["steps"][0]["kind"] == "remove"
    import io
    monkeypatch.setattr("sys.stdin", io.StringIO("make it brighter\nundo\n\nwhat\n"))
    code, out = run("plan", "-", "--json", capsys=capsys)
    lines = [json.loads(line) for line in out.out.splitlines()]
    assert [x["request"] for x in lines] == ["make it brighter", "undo", "what"]
    assert lines[2]["question"]


@pytest.mark.parametrize("argv, code, needle", [
    (["edit", "{missing}", "make it brighter"], 1, "missing.png"),
    (["edit", "{photo}", "remove the dog"], 1, "the dog"),
    (["edit", "{photo}", "make it look like winter"], 3, "instruct-pix2pix"),
    (["log"], 1, "no session"),
    (["checkout", "7", "--session", "nosuch"], 1, "nosuch"),
    (["edit", "{photo}", "make it brighter", "--profile", "turbo"], 2, "invalid choice"),
    (["frobnicate"], 2, "invalid choice"),
])
def test_exit_codes_and_messages(argv, code, needle, photo, tmp_path, capsys):
    argv = [a.format(missing=tmp_path / "missing.png", photo=photo) for a in argv]
    try:
        got = main(argv)
    except SystemExit as exc:  # argparse usage errors
        got = exc.code
    err = capsys.readouterr().err
    assert got == code
    assert needle in err


def test_failed_edit_writes_no_output_and_no_version(photo, tmp_path, capsys):
    out = tmp_path / "o.png"
    assert main(["edit", str(photo), "make it brighter", "--session", "s1"]) == 0
    assert main(["ask", "remove the dog", "-o", str(out)]) == 1
    assert not out.exists()
    capsys.readouterr()
    main(["log", "--json"])
    assert len(json.loads(capsys.readouterr().out)["versions"]) == 2


def test_json_errors_on_stderr(tmp_path, capsys):
    assert main(["log", "--json"]) == 1
    err = json.loads(capsys.readouterr().err)
    assert err["error"] == "SessionNotFound" and err["exit_code"] == 1


def _bad_files(tmp_path):
    good = tmp_path / "good.png"
    Image.new("RGB", (64, 48), (10, 200, 30)).save(good)
    data = good.read_bytes()
    files = {
        "empty.png": b"",
        "notes.png": b"this is not an image at all\n" * 4,
        "truncated.png": data[: len(data) // 2],
        "corrupt.png": data[:40] + bytes(200) + data[240:],
    }
    paths = []
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
        paths.append(tmp_path / name)
    (tmp_path / "adir.png").mkdir()
    paths += [tmp_path / "adir.png", tmp_path / "missing.png"]
    return paths


def test_bad_images_give_clear_errors_and_change_nothing(tmp_path, capsys, isolated_env):
    home = isolated_env / "home"
    for path in _bad_files(tmp_path):
        code = main(["edit", str(path), "make it brighter", "-o", str(tmp_path / "out.png")])
        err = capsys.readouterr().err
        assert code == 1, (path, err)
        assert path.name in err and "hint:" in err
        assert not (tmp_path / "out.png").exists()
        assert not home.exists(), f"{path.name} touched the store"


def test_too_many_pixels_is_refused_before_decoding(tmp_path, capsys, monkeypatch):
    big = tmp_path / "big.png"
    Image.new("RGB", (300, 200)).save(big)
    monkeypatch.setenv("IMAGENT_MAX_PIXELS", "10000")
    assert main(["edit", str(big), "make it brighter"]) == 1
    err = capsys.readouterr().err
    assert "big.png" in err and "IMAGENT_MAX_PIXELS" in err
