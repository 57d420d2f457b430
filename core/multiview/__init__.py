"""PSHuman's multiview diffusion (photo -> 6 body views + face, normal and colour), our implementation.

Import cost is nil: the model modules (torch, diffusers, transformers) load only when a loader below runs
or when ``strata.core.multiview.unet`` / ``.pipeline`` is imported. :class:`MemoryPolicy` and its presets are
plain data.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import PSHUMAN_UNET_CONFIG, PSHUMAN_UNET_PARAMETERS
from .errors import MultiviewUnavailableError
from .policy import PRESETS as MEMORY_PRESETS
from .policy import MemoryPolicy, memory_policy

if TYPE_CHECKING:
    import torch

    from strata.core.compute import ComputeEnv

    from .components import PSHumanComponents
    from .pipeline import PSHumanGenerator
    from .unet import PSHumanUNet

__all__ = ["MEMORY_PRESETS", "PSHUMAN_UNET_CONFIG", "PSHUMAN_UNET_PARAMETERS", "MemoryPolicy",
           "MultiviewUnavailableError", "load_pshuman", "load_pshuman_generator", "load_pshuman_unet",
           "memory_policy"]


def load_pshuman_unet(folder: str | Path, device: Any = "cpu", dtype: torch.dtype | None = None) -> PSHumanUNet:
    """Build :class:`~.unet.PSHumanUNet` from a checkpoint's ``unet/`` folder (see :mod:`.loading`)."""
    from .loading import load_pshuman_unet as load

    return load(folder, device=device, dtype=dtype)


def load_pshuman(folder: str | Path, env: ComputeEnv, policy: MemoryPolicy | str | None = None) -> PSHumanComponents:
    """Every component of the PSHuman pipeline from a local checkpoint (see :mod:`.components`)."""
    from .components import load_pshuman as load

    return load(folder, env, policy)


def load_pshuman_generator(folder: str | Path, env: ComputeEnv, policy: MemoryPolicy | str | None = None,
                           **options: Any) -> PSHumanGenerator:
    """A ready :class:`~.pipeline.PSHumanGenerator` (``options``: steps, guidance_scale, eta, include_face,
    height_m) over the components of ``folder`` (see :func:`load_pshuman`)."""
    from .pipeline import PSHumanGenerator

    return PSHumanGenerator(load_pshuman(folder, env, policy), **options)
