"""Load the released PSHuman UNet from disk into :class:`~.unet.PSHumanUNet`, strictly and offline.

Why our own loader: the checkpoint's ``model_index.json`` names ``mvdiffusion.models_unclip.
unet_mv2d_condition``, a module that exists only in the official repository (PSHuman issues #11/#18), so
diffusers' pipeline loading cannot build it. Here the class is chosen explicitly, built from ``config.json`` on
the meta device (no 3.7 GB random init), and every tensor of the weights file must match a parameter by name
and shape: a partial download or a different model is an error that says what is wrong, never a half-random
UNet. Nothing is downloaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .errors import MultiviewUnavailableError

REPO_NAME = "PSHuman_Unclip_768_6views"
CACHE_DIR_NAME = "models--pengHTYX--PSHuman_Unclip_768_6views"
CONFIG_NAME = "config.json"
WEIGHT_NAMES = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")
SHARD_INDEX_NAMES = ("diffusion_pytorch_model.safetensors.index.json", "diffusion_pytorch_model.bin.index.json")
LAYOUT = (f"expected unet/{CONFIG_NAME} and unet/{WEIGHT_NAMES[0]} (or .bin) as in the Hugging Face repository "
          f"pengHTYX/{REPO_NAME}")
HINT = (f"Download pengHTYX/{REPO_NAME} (its unet/ folder at least) into the server's weights folder; "
        "Strata never downloads it.")
_LISTED = 5  # how many missing/unexpected names an error message shows


def load_pshuman_unet(folder: str | Path, device: Any = "cpu", dtype: Any = None):
    """Our UNet with the checkpoint's weights, on ``device`` in ``dtype`` (float32 unless given), in eval mode.

    ``folder`` is the ``unet/`` folder itself, the repository root holding it (a download or a Hugging Face
    cache snapshot), or the cache's ``models--pengHTYX--PSHuman_Unclip_768_6views`` folder.
    """
    torch = _import_model_stack()
    from .unet import PSHumanUNet

    # 1. find the unet folder and read its config and weights.
    unet_dir = find_unet_folder(Path(folder))
    config = _read_config(unet_dir)
    weights = _read_weights(unet_dir)
    # 2. build the architecture without allocating memory.
    try:
        with torch.device("meta"):
            model = PSHumanUNet.from_config(config)
    except ValueError as exc:
        raise MultiviewUnavailableError(f"{unet_dir / CONFIG_NAME} is not a PSHuman UNet config: {exc}",
                                        hint=HINT, path=str(unet_dir)) from exc
    # 3. every parameter from the file, by name and shape; then onto the device in the asked dtype.
    #    (cast here, not with ``model.to(dtype=...)``: diffusers warns on that call about fp32-kept modules,
    #    which this UNet has none of.)
    check_state_dict(model.state_dict(), weights, unet_dir)
    dtype = dtype or torch.float32
    weights = {name: tensor.to(device=device, dtype=dtype) for name, tensor in weights.items()}
    model.load_state_dict(weights, strict=True, assign=True)
    return model.eval()


def _import_model_stack():
    """torch, after checking that diffusers and safetensors are installed (else: unavailable, with the fix)."""
    try:
        import diffusers  # noqa: F401
        import safetensors  # noqa: F401
        import torch
    except ImportError as exc:
        raise MultiviewUnavailableError(f"the PSHuman UNet needs the Python package {exc.name}",
                                        hint="pip install 'strata[multiview]'") from exc
    return torch


def find_unet_folder(folder: Path) -> Path:
    """The folder holding ``config.json`` + weights: ``folder``, ``folder/unet`` or a cache snapshot's ``unet``."""
    candidates = [folder, folder / "unet"]
    snapshots = folder / "snapshots"
    if snapshots.is_dir():  # a Hugging Face cache repository folder: refs/main names the snapshot in use
        ref = folder / "refs" / "main"
        revisions = [ref.read_text().strip()] if ref.is_file() else sorted(p.name for p in snapshots.iterdir())
        candidates += [snapshots / rev / "unet" for rev in revisions]
    for candidate in candidates:
        if (candidate / CONFIG_NAME).is_file():
            return candidate
    raise MultiviewUnavailableError(f"no PSHuman UNet in {folder}: {LAYOUT}", hint=HINT, path=str(folder))


def _read_config(unet_dir: Path) -> dict[str, Any]:
    """``config.json`` as a dict (a cache symlink to a missing blob reads as missing)."""
    try:
        return json.loads((unet_dir / CONFIG_NAME).read_text())
    except (OSError, ValueError) as exc:
        raise MultiviewUnavailableError(f"cannot read {unet_dir / CONFIG_NAME}: {exc}", hint=HINT,
                                        path=str(unet_dir)) from exc


def _read_weights(unet_dir: Path) -> dict[str, Any]:
    """All tensors of the weights file (safetensors first, then .bin; sharded files through their index)."""
    for name in WEIGHT_NAMES:
        if (unet_dir / name).is_file():
            return _load_file(unet_dir / name)
    for name in SHARD_INDEX_NAMES:
        if (unet_dir / name).is_file():
            shards = sorted(set(json.loads((unet_dir / name).read_text())["weight_map"].values()))
            weights: dict[str, Any] = {}
            for shard in shards:
                weights.update(_load_file(unet_dir / shard))
            return weights
    raise MultiviewUnavailableError(f"no UNet weights in {unet_dir}: {LAYOUT}", hint=HINT, path=str(unet_dir))


def _load_file(path: Path) -> dict[str, Any]:
    """One weights file on the CPU; a truncated or missing file is an incomplete download."""
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        import torch

        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # safetensors and torch raise their own types for a damaged file
        raise MultiviewUnavailableError(f"cannot read {path} (incomplete download?): {exc}", hint=HINT,
                                        path=str(path)) from exc


def check_state_dict(expected: dict[str, Any], found: dict[str, Any], where: Path) -> None:
    """Raise, listing a few names of each, unless ``found`` has exactly ``expected``'s names and shapes."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    mismatched = sorted(k for k in set(expected) & set(found) if tuple(expected[k].shape) != tuple(found[k].shape))
    if not (missing or unexpected or mismatched):
        return

    def listed(kind: str, names: list[str]) -> str:
        more = f" (+{len(names) - _LISTED} more)" if len(names) > _LISTED else ""
        return f"{len(names)} {kind}: {', '.join(names[:_LISTED])}{more}"

    parts = [listed(kind, names) for kind, names in
             (("missing", missing), ("unexpected", unexpected), ("with another shape", mismatched)) if names]
    raise MultiviewUnavailableError(f"the weights in {where} are not the PSHuman UNet's: {'; '.join(parts)}",
                                    hint=HINT, path=str(where), missing=len(missing), unexpected=len(unexpected),
                                    mismatched=len(mismatched))
