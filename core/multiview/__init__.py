"""PSHuman's multiview diffusion (photo -> 6 body views + face, normal and colour), our implementation.

Import cost is nil: the model modules (torch, diffusers) load only when :func:`load_pshuman_unet` runs or
when ``strata.core.multiview.unet`` is imported.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from .config import PSHUMAN_UNET_CONFIG, PSHUMAN_UNET_PARAMETERS
from .errors import MultiviewUnavailableError

if TYPE_CHECKING:
    import torch

    from .unet import PSHumanUNet

__all__ = ["PSHUMAN_UNET_CONFIG", "PSHUMAN_UNET_PARAMETERS", "MultiviewUnavailableError", "load_pshuman_unet"]


def load_pshuman_unet(folder: str | Path, device: Any = "cpu", dtype: torch.dtype | None = None) -> PSHumanUNet:
    """Build :class:`~.unet.PSHumanUNet` from a checkpoint's ``unet/`` folder (see :mod:`.loading`)."""
    from .loading import load_pshuman_unet as load

    return load(folder, device=device, dtype=dtype)
