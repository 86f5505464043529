"""The model manager and `imagent models`: lazy loading, one cache, LRU budget, offline errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from imagent.errors import ModelUnavailableError, UsageError
from imagent.tools import models as MM

from .conftest import DEVICE, make_manager


def test_importing_the_manager_and_backends_loads_nothing_heavy():
    code = ("import sys\n"
            "import imagent.tools.models as m\n"
            "import imagent.tools.backends.inpaint, imagent.tools.backends.blended, "
            "imagent.tools.backends.ip2p, imagent.tools.backends.lama, imagent.tools.backends.sam, "
            "imagent.tools.backends.grounding_dino, imagent.tools.backends.clip_rank, "
            "imagent.tools.backends.original_sam, imagent.tools.backends.original_gdino, "
            "imagent.cli.cmd_models\n"
            "mgr = m.ModelManager({'inpaint': '/nowhere'})\n"
            "print([x for x in ('torch', 'diffusers', 'transformers') if x in sys.modules])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_lazy_load_once_and_device_dtype(tiny_inpaint):
    import torch

    mgr = make_manager(inpaint=tiny_inpaint)
    assert mgr.loads["inpaint"] == 0 and not mgr.is_loaded("inpaint") and mgr.available("inpaint")
    pipe = mgr.get("inpaint")
    assert mgr.get("inpaint") is pipe and mgr.loads["inpaint"] == 1
    assert mgr.device.type == torch.device(DEVICE).type
    assert mgr.dtype == (torch.float16 if mgr.device.type == "cuda" else torch.float32)
    assert pipe.unet.dtype == mgr.dtype and pipe.unet.device.type == mgr.device.type
    assert mgr.dtype_for("grounding") == torch.float32
    assert mgr.used_bytes() > 0 and mgr.loaded()["inpaint"]["bytes"] == mgr.used_bytes()


def test_memory_budget_evicts_least_recently_used(tiny_inpaint, tiny_text2image, tiny_lama_file):
    probe = make_manager(inpaint=tiny_inpaint)
    probe.get("inpaint")
    one = probe.used_bytes()
    mgr = MM.ModelManager({"inpaint": str(tiny_inpaint), "text2image": str(tiny_text2image),
                           "lama": str(tiny_lama_file)}, device=DEVICE,
                          memory_budget_gb=1.5 * one / 2**30)
    mgr.get("lama")  # tiny
    mgr.get("inpaint")
    mgr.get("lama")  # lama is now the most recently used
    mgr.get("text2image")  # does not fit beside inpaint: inpaint (LRU of the big ones) goes
    assert mgr.evictions == ["inpaint"] and mgr.is_loaded("lama") and mgr.is_loaded("text2image")
    mgr.get("inpaint")
    assert mgr.loads["inpaint"] == 2


def test_missing_hub_model_offline_names_model_role_and_command(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    mgr = MM.ModelManager({"instruct": "imagent-test/not-a-real-model"}, device="cpu", download=True)
    assert not mgr.available("instruct")
    with pytest.raises(ModelUnavailableError) as err:
        mgr.get("instruct")
    e = err.value
    assert e.exit_code == 3 and "'imagent-test/not-a-real-model'" in e.message and "instruct" in e.message
    assert "HF_HUB_OFFLINE" in e.message and e.hint == "get it with: imagent models pull instruct"
    with pytest.raises(ModelUnavailableError, match="HF_HUB_OFFLINE"):
        MM.pull("imagent-test/not-a-real-model")


def test_unconfigured_role_and_unknown_role():
    mgr = MM.ModelManager(device="cpu")
    with pytest.raises(ModelUnavailableError, match="no lama model is configured"):
        mgr.get("lama")
    with pytest.raises(UsageError):
        mgr.get("upscale")
    with pytest.raises(UsageError):
        MM.ModelManager({"upscale": "x"})


def test_pickle_only_folder_is_refused(tmp_path):
    folder = tmp_path / "pickled"
    (folder / "unet").mkdir(parents=True)
    (folder / "model_index.json").write_text("{}")
    (folder / "unet" / "diffusion_pytorch_model.bin").write_bytes(b"not loaded")
    mgr = MM.ModelManager({"inpaint": str(folder)}, device="cpu")
    with pytest.raises(ModelUnavailableError, match="safetensors"):
        mgr.get("inpaint")


def test_models_from_settings_layers():
    ids = MM.models_from_settings({"model_inpaint": "/local/pp", "lama": "/m/lama.pt", "clip": None,
                                   "model_instruct": "  "})
    assert ids["inpaint"] == "/local/pp" and ids["lama"] == "/m/lama.pt" and ids["clip"] == ""
    assert ids["instruct"] == MM.DEFAULT_MODELS["instruct"] == "timbrooks/instruct-pix2pix"
    mgr = MM.manager_from_settings({"model_clip": "x/y", "offload": True, "memory_budget_gb": 2},
                                   shared=False)
    assert mgr.model_id("clip") == "x/y" and mgr.offload and mgr.memory_budget == 2 * 2**30
    assert not mgr.download and mgr._device_req == "auto" and mgr._dtype_req == "auto"
    assert MM.shared_manager({"clip": "x/y"}) is MM.shared_manager({"clip": "x/y"})


def test_the_manager_reads_no_environment(monkeypatch):
    """Settings are read in one place (assistant.config.load_settings); models.py takes only what
    it is given, so an API caller's explicit settings are never overridden by IMAGENT_* variables."""
    for name, value in {"IMAGENT_MODEL_INPAINT": "env/inpaint", "IMAGENT_MODEL_LAMA": "/env/lama.pt",
                        "IMAGENT_DEVICE": "cuda:7", "IMAGENT_DTYPE": "bf16", "IMAGENT_OFFLOAD": "1",
                        "IMAGENT_DOWNLOAD": "1", "IMAGENT_MEMORY_BUDGET_GB": "3"}.items():
        monkeypatch.setenv(name, value)
    assert MM.models_from_settings({}) == MM.DEFAULT_MODELS
    mgr = MM.manager_from_settings({"model_lama": "/given/lama.pt"}, shared=False)
    assert mgr.model_id("lama") == "/given/lama.pt" and mgr.model_id("inpaint") == MM.DEFAULT_MODELS["inpaint"]
    assert (mgr._device_req, mgr._dtype_req, mgr.offload, mgr.download, mgr.memory_budget) == \
        ("auto", "auto", False, False, 0)


def test_settings_from_load_settings_reach_the_manager(tmp_path):
    """The environment still configures the models, through load_settings (TOML < env < flags)."""
    from imagent.assistant.config import load_settings

    config = tmp_path / "imagent.toml"
    config.write_text('model_lama = "/toml/lama.pt"\nmodel_clip = "toml/clip"\ndtype = "fp16"\n')
    env = {"IMAGENT_HOME": str(tmp_path / "home"), "IMAGENT_MODEL_LAMA": "/env/lama.pt",
           "IMAGENT_OFFLOAD": "yes", "IMAGENT_MEMORY_BUDGET_GB": "1.5"}
    settings = load_settings({"device": "cpu"}, env=env, config_path=config)
    mgr = MM.manager_from_settings(settings, shared=False)
    assert mgr.model_id("lama") == "/env/lama.pt" and mgr.model_id("clip") == "toml/clip"
    assert mgr.model_id("inpaint") == MM.DEFAULT_MODELS["inpaint"]
    assert (mgr._device_req, mgr._dtype_req, mgr.offload, mgr.download) == ("cpu", "fp16", True, False)
    assert mgr.memory_budget == int(1.5 * 2**30)


def _cli(args, capsys):
    from imagent.cli import main

    rc = main(args)
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


def test_cli_models_list_and_verify(tiny_lama_file, tiny_sam_dir, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("IMAGENT_MODEL_LAMA", str(tiny_lama_file))
    monkeypatch.setenv("IMAGENT_MODEL_SEGMENTATION", str(tiny_sam_dir))
    rc, out, _ = _cli(["models", "list", "--json"], capsys)
    rows = {r["role"]: r for r in json.loads(out)}
    assert rc == 0 and rows["lama"]["present"] and rows["lama"]["size_bytes"] > 0
    assert rows["segmentation"]["present"] and rows["instruct"]["model"] == "timbrooks/instruct-pix2pix"
    rc, out, _ = _cli(["models", "verify", "lama", "segmentation", "--load"], capsys)
    assert rc == 0 and out.count("ok") == 2
    monkeypatch.setenv("IMAGENT_MODEL_INSTRUCT", "imagent-test/absent-ip2p")
    rc, out, err = _cli(["models", "verify", "instruct"], capsys)
    assert rc == 3 and "MISSING" in out
    assert "'imagent-test/absent-ip2p'" in err and "instruct" in err
    assert "imagent models pull instruct" in err
    rc, _, err = _cli(["models", "pull", "lama"], capsys)
    assert rc == 2 and "local path" in err


def test_cli_help_still_light():
    code = ("import sys\nfrom imagent.cli import main\n"
            "try:\n    main(['models', '--help'])\nexcept SystemExit:\n    pass\n"
            "print([m for m in ('torch', 'numpy', 'PIL', 'diffusers', 'transformers') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().endswith("[]") and "verify" in out.stdout
