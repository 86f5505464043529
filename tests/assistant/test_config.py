from pathlib import Path

import pytest

from imagent.assistant.config import load_settings
from imagent.errors import ConfigError


def test_layers_defaults_file_env_cli(tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text('profile = "models"\nseed = 7\nmax_pixels = 1000\n')
    env = {"IMAGENT_HOME": str(tmp_path / "h"), "IMAGENT_SEED": "9"}
    s = load_settings({"max_pixels": 2000}, env=env, config_path=cfg)
    assert s.profile == "models" and s.sources["profile"].startswith("file:")
    assert s.seed == 9 and s.sources["seed"] == "env:IMAGENT_SEED"
    assert s.max_pixels == 2000 and s.sources["max_pixels"] == "cli"
    assert s.home_path == Path(tmp_path / "h")
    assert s.planner == "rules" and s.sources["planner"] == "default"


def test_env_config_path_and_default_home(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('planner = "auto"\n')
    s = load_settings(env={"IMAGENT_CONFIG": str(cfg)})
    assert s.planner == "auto"
    assert s.home  # a user data dir by default


@pytest.mark.parametrize("content, needle", [
    ('profile = "turbo"\n', "profile"),
    ('seed = "x"\n', "seed"),
    ('colour = 3\n', "unknown setting"),
    ('profile = \n', "TOML"),
])
def test_bad_config_file_names_the_problem(tmp_path, content, needle):
    cfg = tmp_path / "config.toml"
    cfg.write_text(content)
    with pytest.raises(ConfigError) as err:
        load_settings(env={"IMAGENT_HOME": str(tmp_path)}, config_path=cfg)
    assert needle in str(err.value)
    assert err.value.exit_code == 2


def test_bad_env_value_names_the_variable(tmp_path):
    with pytest.raises(ConfigError, match="IMAGENT_MAX_PIXELS"):
        load_settings(env={"IMAGENT_HOME": str(tmp_path), "IMAGENT_MAX_PIXELS": "lots"})


def test_model_settings_types(tmp_path):
    cfg = tmp_path / "config.toml"
    cfg.write_text('model_inpaint = "/models/powerpaint"\nmemory_budget_gb = 6.5\noffload = true\n')
    env = {"IMAGENT_HOME": str(tmp_path), "IMAGENT_DOWNLOAD": "yes", "IMAGENT_DTYPE": "bf16"}
    s = load_settings(env=env, config_path=cfg)
    assert s.model_inpaint == "/models/powerpaint" and s.memory_budget_gb == 6.5
    assert s.offload is True and s.download is True and s.dtype == "bf16"
    with pytest.raises(ConfigError, match="IMAGENT_OFFLOAD"):
        load_settings(env={"IMAGENT_HOME": str(tmp_path), "IMAGENT_OFFLOAD": "maybe"})
    with pytest.raises(ConfigError, match="dtype"):
        load_settings(env={"IMAGENT_HOME": str(tmp_path), "IMAGENT_DTYPE": "fp8"})
