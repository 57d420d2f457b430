"""Rasterizers through the one backend registry (:mod:`strata.core.backends`) and the one model cache.

``get_rasterizer()`` is the convenience the render helpers and tests use: "auto" picks nvdiffrast when the
environment runs on CUDA and nvdiffrast imports, else the torch rasterizer; ``$STRATA_RASTER`` ("auto",
"torch", "nvdiffrast") names the default so a deployment can force one. Jobs pass their
:class:`~strata.core.compute.ComputeEnv`, so the rasterizer lives on the same device as the body it draws.
Instances are kept in the model cache per (backend, device): an nvdiffrast context is costly to create.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ..registry import Availability, BackendUnavailable

if TYPE_CHECKING:
    import torch

    from ..cache import ModelCache
    from ..compute import ComputeEnv
    from .base import Rasterizer

__all__ = ["BackendUnavailable", "build_nvdiffrast", "build_torch", "get_rasterizer", "nvdiffrast_available",
           "nvdiffrast_availability", "resolve_backend"]


def build_torch(env: ComputeEnv) -> Rasterizer:
    from .torch_raster import TorchRasterizer

    return TorchRasterizer(env.torch_device)


def build_nvdiffrast(env: ComputeEnv) -> Rasterizer:
    from .nvdiffrast_backend import NvdiffrastRasterizer

    return NvdiffrastRasterizer(env.torch_device)


def nvdiffrast_availability(env: ComputeEnv | None = None) -> Availability:
    """Whether nvdiffrast's torch extension imports (the registry has checked CUDA and the package)."""
    try:
        import nvdiffrast.torch  # noqa: F401
    except Exception as exc:  # a broken CUDA toolchain surfaces here
        return Availability(False, f"nvdiffrast.torch does not import: {exc}")
    return Availability(True)


def _env(backend: str, device: torch.device | str | None) -> ComputeEnv:
    from ..compute import ComputeEnv

    if device is None:  # nvdiffrast only runs on CUDA; everything else defaults to the CPU
        device = "cuda" if backend == "nvdiffrast" else ("cuda" if backend == "auto" and _cuda() else "cpu")
    return ComputeEnv(device=str(device))


def _cuda() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def _requested(backend: str | None) -> str:
    return (backend or os.environ.get("STRATA_RASTER") or "auto").strip().lower()


def resolve_backend(backend: str | None = None, env: ComputeEnv | None = None) -> str:
    """The concrete backend name ("torch" or "nvdiffrast") that ``backend`` selects."""
    from ..backends import REGISTRY

    name = _requested(backend)
    return REGISTRY.choose("rasterizer", name, env or _env(name, None)).name


def get_rasterizer(backend: str | None = None, device: torch.device | str | None = None, *,
                   env: ComputeEnv | None = None, cache: ModelCache | None = None) -> Rasterizer:
    """A (cached) :class:`Rasterizer`: ``backend`` ("auto" by default) on ``env``'s device (or ``device``).

    Without either, "auto" runs nvdiffrast on CUDA when it can, else torch on the CPU.

    Raises:
        BackendUnavailable: an unknown backend, or one that cannot run here (e.g. nvdiffrast on a CPU).
    """
    from ..backends import REGISTRY

    name = _requested(backend)
    if env is None:
        env = _env(name, device)
        if name == "auto" and env.is_cuda and not REGISTRY.get("rasterizer", "nvdiffrast").availability(env):
            env = env.with_device("cpu")  # auto on a CUDA machine without nvdiffrast: the CPU, as before
    elif device is not None:
        env = env.with_device(str(device))
    return REGISTRY.build("rasterizer", name, env=env, cache=cache)


def nvdiffrast_available() -> bool:
    """True when the nvdiffrast backend could be used here: CUDA present and the module imports."""
    from ..backends import REGISTRY

    return _cuda() and bool(REGISTRY.get("rasterizer", "nvdiffrast").availability(_env("nvdiffrast", "cuda")))
