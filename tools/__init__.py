"""imagent.tools: the image tools, their registry, the loader/saver and the shared types.

Kept light on purpose: importing ``imagent.tools`` loads nothing heavy. Import the
submodules you need (``imagent.tools.registry``, ``imagent.tools.imageio``...), or
use the lazy names below.
"""

from __future__ import annotations

from typing import Any

__all__ = ["default_registry", "load_image", "save_image", "ToolCall", "ToolState", "ToolResult",
           "Detection"]

_LAZY = {
    "default_registry": ("imagent.tools.registry", "default_registry"),
    "load_image": ("imagent.tools.imageio", "load_image"),
    "save_image": ("imagent.tools.imageio", "save_image"),
    "ToolCall": ("imagent.tools.types", "ToolCall"),
    "ToolState": ("imagent.tools.types", "ToolState"),
    "ToolResult": ("imagent.tools.types", "ToolResult"),
    "Detection": ("imagent.tools.types", "Detection"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        mod, attr = _LAZY[name]
        return getattr(importlib.import_module(mod), attr)
    raise AttributeError(f"module 'imagent.tools' has no attribute {name!r}")
