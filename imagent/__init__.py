"""imagent — an agentic natural-language image editor.

The code lives in six sub-packages mapped into this namespace by pyproject:
the core (``imagent.assistant``, ``imagent.tools``, ``imagent.planners``,
``imagent.sessions``) and the front ends (``imagent.cli``, ``imagent.tui``). This root only holds the error hierarchy (a leaf that
every package may import) and the lazy public API, so ``import imagent`` stays
cheap and never imports torch.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["Assistant", "Turn", "__version__"]


def __getattr__(name: str):
    if name in ("Assistant", "Turn"):
        from imagent.assistant import core

        return getattr(core, name)
    raise AttributeError(f"module 'imagent' has no attribute {name!r}")
