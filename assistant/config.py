"""Settings: defaults < TOML config file < ``IMAGENT_*`` environment < CLI flags.

The config file is ``<user config dir>/imagent/config.toml`` (or the path in
``IMAGENT_CONFIG``). The store lives in ``IMAGENT_HOME`` (default: the user data
dir). Profiles: ``offline`` (embedded default, needs no weights) and ``models``
(model backends where weights are present).

Kept free of heavy imports: the CLI reads settings before deciding what to load.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Mapping

from imagent.errors import ConfigError

PROFILES = ("offline", "models")
PLANNERS = ("rules", "llm", "auto")

# Settings a user may set in the file or environment, with their types.
_SCALARS: dict[str, type] = {
    "home": str,
    "profile": str,
    "planner": str,
    "llm": str,
    "seed": int,
    "max_pixels": int,
    "device": str,
    # Model backends (profile "models"): a hub id or a local path per role; see tools/models.py.
    "model_inpaint": str,
    "model_text2image": str,
    "model_instruct": str,
    "model_grounding": str,
    "model_segmentation": str,
    "model_lama": str,
    "model_clip": str,
    "model_gdino_original": str,
    "model_sam_original": str,
    "dtype": str,
    "memory_budget_gb": float,
    "offload": bool,
    "download": bool,
}


def _default_home() -> str:
    from platformdirs import user_data_dir

    return user_data_dir("imagent", appauthor=False)


def default_config_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get("IMAGENT_CONFIG"):
        return Path(env["IMAGENT_CONFIG"]).expanduser()
    from platformdirs import user_config_dir

    return Path(user_config_dir("imagent", appauthor=False)) / "config.toml"


@dataclass(frozen=True)
class Settings:
    home: str = ""
    profile: str = "offline"
    planner: str = "rules"
    llm: str = ""
    seed: int = 0
    max_pixels: int = 80_000_000
    device: str = "auto"
    # Empty model ids mean the role's default (tools/models.py DEFAULT_MODELS).
    model_inpaint: str = ""
    model_text2image: str = ""
    model_instruct: str = ""
    model_grounding: str = ""
    model_segmentation: str = ""
    model_lama: str = ""
    model_clip: str = ""
    model_gdino_original: str = ""
    model_sam_original: str = ""
    dtype: str = "auto"
    memory_budget_gb: float = 0.0  # 0 = no budget
    offload: bool = False
    download: bool = False  # let `imagent models pull` / first use fetch from the hub
    # Where each value came from ("default", "file:<path>", "env:IMAGENT_X", "cli"), for `--help`-level
    # diagnostics and clear error messages.
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def home_path(self) -> Path:
        return Path(self.home).expanduser()

    def validate(self) -> "Settings":
        def bad(name: str, allowed: str) -> ConfigError:
            return ConfigError(
                f"invalid setting {name}={getattr(self, name)!r} (from {self.sources.get(name, 'default')})",
                hint=f"use {allowed}",
            )

        if self.profile not in PROFILES:
            raise bad("profile", " or ".join(PROFILES))
        if self.planner not in PLANNERS:
            raise bad("planner", ", ".join(PLANNERS))
        if self.max_pixels < 1:
            raise bad("max_pixels", "a positive number of pixels, e.g. 80000000")
        if not self.home:
            raise bad("home", "a folder path (IMAGENT_HOME)")
        if self.device not in ("auto", "cuda", "mps", "cpu") and not self.device.startswith("cuda:"):
            raise bad("device", "auto, cuda, cuda:N, mps or cpu")
        if self.dtype not in ("auto", "fp16", "bf16", "fp32"):
            raise bad("dtype", "auto, fp16, bf16 or fp32")
        if self.memory_budget_gb < 0:
            raise bad("memory_budget_gb", "a number of GB, 0 for no budget")
        return self


def _coerce(name: str, value: Any, source: str) -> Any:
    kind = _SCALARS[name]
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if kind in (int, float):
            if isinstance(value, bool):
                raise ValueError
            return kind(str(value).replace("_", ""))
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"invalid setting {name}={value!r} (from {source}): expected {kind.__name__}",
            hint=f"fix it in {source.split(':', 1)[-1]}",
        ) from None


def load_settings(
    overrides: Mapping[str, Any] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    config_path: str | os.PathLike | None = None,
) -> Settings:
    """Resolve settings from every layer. ``overrides`` are CLI flags (None values ignored)."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {"home": _default_home()}
    sources: dict[str, str] = {f.name: "default" for f in fields(Settings) if f.name != "sources"}

    path = Path(config_path).expanduser() if config_path else default_config_path(env)
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read the config file {path}: {exc}",
                              hint="fix the TOML syntax or delete the file") from None
        unknown = sorted(set(data) - set(_SCALARS))
        if unknown:
            raise ConfigError(f"unknown setting(s) {', '.join(unknown)} in {path}",
                              hint=f"known settings: {', '.join(sorted(_SCALARS))}")
        for name, value in data.items():
            values[name] = _coerce(name, value, f"file:{path}")
            sources[name] = f"file:{path}"

    for name in _SCALARS:
        key = f"IMAGENT_{name.upper()}"
        if env.get(key):
            values[name] = _coerce(name, env[key], f"env:{key}")
            sources[name] = f"env:{key}"

    for name, value in (overrides or {}).items():
        if value is None:
            continue
        if name not in _SCALARS:
            raise ConfigError(f"unknown setting {name!r}", hint=f"known settings: {', '.join(sorted(_SCALARS))}")
        values[name] = _coerce(name, value, "cli")
        sources[name] = "cli"

    return Settings(**values, sources=sources).validate()


def with_overrides(settings: Settings, **changes: Any) -> Settings:
    sources = dict(settings.sources)
    sources.update({k: "api" for k in changes})
    return replace(settings, **changes, sources=sources).validate()
