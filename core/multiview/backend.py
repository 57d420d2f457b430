"""PSHuman as the registry's ``multiview/pshuman`` backend: where its weights are, and how it is built.

The user downloads ``pengHTYX/PSHuman_Unclip_768_6views`` (~5 GB) and starts the server with ``--weights-dir
DIR``; the weights are found as ``DIR/PSHuman_Unclip_768_6views/`` (the repository's folder) or as a Hugging
Face cache inside DIR (``DIR/models--pengHTYX--PSHuman_Unclip_768_6views/``, or DIR itself being the hub
cache). Nothing downloads. The built generator is one model in the cache under (backend, device, dtype).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ..registry import Availability

if TYPE_CHECKING:
    from ..compute import ComputeEnv
    from .pipeline import PSHumanGenerator

REPO = "PSHuman_Unclip_768_6views"
CACHE_FOLDER = "models--pengHTYX--PSHuman_Unclip_768_6views"


def find_checkpoint(weights_dir: Path | None) -> Path | None:
    """The PSHuman checkpoint folder under ``weights_dir`` (repository folder or HF cache), or None."""
    if weights_dir is None:
        return None
    for candidate in (weights_dir / REPO, weights_dir / CACHE_FOLDER, weights_dir / "hub" / CACHE_FOLDER):
        if (candidate / "unet").is_dir() or (candidate / "snapshots").is_dir():
            return candidate
    return None


def availability(env: ComputeEnv | None = None) -> Availability:
    """The registry's check: the checkpoint is on disk (packages and device are the registry's own checks)."""
    weights = None if env is None else env.weights_dir
    if weights is None:
        return Availability(False, f"needs the downloaded weights ({REPO}, ~5 GB): start the server with "
                                   "--weights-dir DIR (or $STRATA_WEIGHTS_DIR)")
    if find_checkpoint(weights) is None:
        return Availability(False, f"no weights in {weights / REPO} (nor a Hugging Face cache of them in {weights})")
    return Availability(True)


def build_generator(env: ComputeEnv, steps: int = 40) -> PSHumanGenerator:
    """The registry's builder: every component loaded on the environment's device and dtype."""
    from . import load_pshuman_generator

    folder = find_checkpoint(env.weights_dir)
    assert folder is not None  # the registry checked availability first
    return load_pshuman_generator(folder, env, steps=steps)
