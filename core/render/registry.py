"""Backend selection in one place.

``get_rasterizer("auto")`` returns the nvdiffrast CUDA backend when torch sees a CUDA
device and ``nvdiffrast.torch`` imports, else the pure-torch CPU backend. The
environment variable ``STRATA_RASTER`` ("auto", "torch", "nvdiffrast") sets the default
so a deployment can force a backend without code changes. Instances are cached per
(backend, device) because an nvdiffrast context is costly to create.
"""

from __future__ import annotations

import os

import torch

from .base import Rasterizer

BACKENDS = ("auto", "torch", "nvdiffrast")
_INSTANCES: dict[tuple[str, str], Rasterizer] = {}


class BackendUnavailable(RuntimeError):
    """The requested rasterizer backend cannot run here (missing package or CUDA)."""


def nvdiffrast_available() -> bool:
    """True when the nvdiffrast backend could be used: CUDA present and the module imports."""
    if not torch.cuda.is_available():
        return False
    try:
        import nvdiffrast.torch  # noqa: F401
    except Exception:
        return False
    return True


def resolve_backend(backend: str | None = None) -> str:
    """The concrete backend name ("torch" or "nvdiffrast") that ``backend`` selects."""
    name = (backend or os.environ.get("STRATA_RASTER") or "auto").strip().lower()
    if name not in BACKENDS:
        raise ValueError(f"unknown rasterizer backend {name!r}; choose from {BACKENDS}")
    if name == "auto":
        return "nvdiffrast" if nvdiffrast_available() else "torch"
    return name


def get_rasterizer(backend: str | None = None, device: torch.device | str | None = None) -> Rasterizer:
    """A (cached) :class:`Rasterizer` for ``backend`` ("auto" by default).

    Raises:
        BackendUnavailable: "nvdiffrast" was asked for explicitly but cannot run.
    """
    name = resolve_backend(backend)
    if name == "nvdiffrast":
        dev = torch.device(device) if device is not None else torch.device("cuda")
    else:
        dev = torch.device(device) if device is not None else torch.device("cpu")
    key = (name, str(dev))
    if key not in _INSTANCES:
        if name == "nvdiffrast":
            from .nvdiffrast_backend import NvdiffrastRasterizer

            _INSTANCES[key] = NvdiffrastRasterizer(dev)
        else:
            from .torch_raster import TorchRasterizer

            _INSTANCES[key] = TorchRasterizer(dev)
    return _INSTANCES[key]
