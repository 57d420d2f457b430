"""Small shared vocabulary for optional model backends (segmentation, pose).

Backends depend on heavy or optional packages (mediapipe, rembg/onnxruntime) and on weight files that must
already be on disk: nothing in Strata downloads weights at run time. Each backend therefore answers
"can you run here?" cheaply, without importing its package or loading a model, so the server can list
choices and pick one in a single place.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from types import ModuleType

from .errors import BackendUnavailableError


@dataclass(frozen=True)
class Availability:
    """Whether a backend can run here, and if not, a sentence saying why (for logs and the UI)."""

    ok: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.ok


def module_present(name: str) -> bool:
    """True if ``name`` is importable, without importing it (mediapipe takes ~1 s, rembg up to 30 s)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def import_backend_module(name: str, backend: str, install_hint: str) -> ModuleType:
    """Import an optional package for ``backend`` or raise a typed error that says how to get it."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise BackendUnavailableError(
            f"The {backend} backend needs the Python package '{name}', which is not installed ({exc}).",
            hint=install_hint,
            backend=backend,
        ) from exc
