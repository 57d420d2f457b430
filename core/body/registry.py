"""The one place where a body-model backend is chosen by name, and where built models are cached.

Why a cache: building an anny model costs ~0.5 s warm (a minute cold) plus ~100 MB of tensors, and the
server serves many jobs with the same body model. ``get_body_model`` returns the same instance for the
same ``(name, rig, device)`` within a process; instances are safe to share because ``forward`` keeps no
state. Cheap to import: the backends (torch, anny) load on the first ``get_body_model`` call.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from .base import BodyModelError
from .rigs import ANNY_RIGS

if TYPE_CHECKING:
    from .base import BodyModel

#: Backend name -> rigs it offers (first = default). SMPL-X is listed so that asking for it gives a clear
#: error rather than "unknown model".
BODY_MODELS: dict[str, list[str]] = {
    "anny": list(ANNY_RIGS),
    "smplx": ["smplx"],
}

_SMPLX_MESSAGE = (
    "SMPL-X is not supported yet. It needs the user's own SMPL-X model files (e.g. SMPLX_NEUTRAL.npz, "
    "downloaded after accepting the non-commercial licence at https://smpl-x.is.tue.mpg.de) at a local "
    "path; Strata does not ship or download them. Use the 'anny' body model for now."
)

_cache: dict[tuple[str, str, str], BodyModel] = {}
_building: dict[tuple[str, str, str], threading.Lock] = {}
_guard = threading.Lock()


def available_body_models() -> dict[str, list[str]]:
    """Backend name -> supported rigs (without importing any backend)."""
    return {name: list(rigs) for name, rigs in BODY_MODELS.items()}


def get_body_model(
    name: str = "anny",
    rig: str | None = None,
    *,
    device: str = "cpu",
    model_path: str | Path | None = None,
) -> BodyModel:
    """The cached body model ``name`` with skeleton ``rig`` (None = the backend's default rig).

    Args:
        name: "anny" (or "smplx", which raises :class:`BodyModelError` until it is supported).
        rig: for anny, one of :data:`~strata.core.body.rigs.ANNY_RIGS`.
        device: torch device string for the model's tensors ("cpu", "cuda", "cuda:1").
        model_path: user-supplied model files (SMPL-X, later); must be None for anny.

    Raises:
        BodyModelError: unknown model, missing package, or model files needed.
        ValueError: unknown rig.
    """
    name = name.lower()
    if name == "smplx":
        where = f" (got model_path={str(model_path)!r})" if model_path is not None else ""
        raise BodyModelError(_SMPLX_MESSAGE + where)
    if name not in BODY_MODELS:
        raise BodyModelError(f"unknown body model {name!r}; available: {sorted(BODY_MODELS)}")
    if model_path is not None:
        raise BodyModelError(f"the {name!r} body model ships its own data; model_path must be None")
    rig = rig or BODY_MODELS[name][0]
    if rig not in BODY_MODELS[name]:
        raise ValueError(f"unknown rig {rig!r} for body model {name!r}; supported: {BODY_MODELS[name]}")
    key = (name, rig, str(device))

    model = _cache.get(key)
    if model is not None:
        return model
    with _guard:
        lock = _building.setdefault(key, threading.Lock())
    with lock:  # one build per key; other keys and cache hits are not blocked
        model = _cache.get(key)
        if model is None:
            model = _build(name, rig, device)
            _cache[key] = model
    return model


def cached_body_models() -> list[tuple[str, str, str]]:
    """Keys ``(name, rig, device)`` of the models built so far in this process."""
    return list(_cache)


def clear_body_model_cache() -> None:
    """Forget every cached model (tests; freeing memory)."""
    with _guard:
        _cache.clear()
        _building.clear()


def _build(name: str, rig: str, device: str) -> BodyModel:
    if name == "anny":
        _require("torch", "the anny body model needs PyTorch: pip install torch")
        _require("anny", "the anny body model needs the 'anny' package: pip install 'anny>=0.6.2'")
        from .anny_model import AnnyBody

        return AnnyBody(rig=rig, device=device)
    raise BodyModelError(f"no builder for body model {name!r}")  # pragma: no cover - guarded above


def _require(module: str, message: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise BodyModelError(message)
