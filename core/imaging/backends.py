"""Small shared vocabulary for optional model backends (segmentation, pose).

Backends depend on heavy or optional packages (mediapipe, rembg/onnxruntime) and on weight files that must
already be on disk: nothing in Strata downloads weights at run time. Each backend therefore answers
"can you run here?" cheaply, without importing its package or loading a model, so the server can list
choices and pick one in a single place.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from types import ModuleType

from ..registry import Availability
from .errors import BackendUnavailableError

__all__ = ["Availability", "import_backend_module", "module_present"]


def module_present(name: str) -> bool:
    """True if ``name`` is importable, without importing it (mediapipe takes ~1 s, rembg up to 30 s)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def import_backend_module(name: str, backend: str, install_hint: str) -> ModuleType:
    """Import an optional package for ``backend`` or raise a typed error that says how to get it."""
    first = name not in sys.modules
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        raise BackendUnavailableError(
            f"The {backend} backend needs the Python package '{name}', which is not installed ({exc}).",
            hint=install_hint,
            backend=backend,
        ) from exc
    if first:
        _drop_import_tracebacks(name)
    return module


def _drop_import_tracebacks(package: str) -> None:
    """Clear the tracebacks of exceptions that ``package``'s modules keep at module level.

    Why: a package that catches an optional import's error and keeps it (mediapipe keeps ``sd_error``, the
    failed ``sounddevice`` import) keeps its traceback, whose frames reach back through the whole import
    chain to whoever imported the package first: a job's locals, a model under construction. They would
    never be freed, and the model cache's "release" could not drop them."""
    prefix = package + "."
    for mod_name, module in list(sys.modules.items()):
        if module is None or not (mod_name == package or mod_name.startswith(prefix)):
            continue
        for value in list(vars(module).values()):
            if isinstance(value, BaseException) and value.__traceback__ is not None:
                value.__traceback__ = None
