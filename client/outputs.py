"""Where a job's result goes: the output format is chosen by the file extension.

    .strata       the result frames written as they arrived (no decode, no re-encode)
    .glb          strata.exchange.asset.gltf.write_glb (imported when needed)
    .blend .fbx   strata.client.blender_export.export(asset_path, out_path), when that module exists
                  (it drives Blender; it is not part of every install)

`check_output` runs BEFORE a job is submitted, so nobody waits minutes for a result that cannot be saved.
A human on SMPL-X's skeleton also gets ``<name>_smplx.npz`` beside it: its pose as an SMPL-X fit
(``global_orient``, ``body_pose``, ... ``transl``), which SMPL-X tools and the add-on's motion loader read.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..exchange.asset import codec, container

GLTF_MODULE = "strata.exchange.asset.gltf"
BLENDER_EXPORT_MODULE = "strata.client.blender_export"
WRITERS = {".strata": None, ".glb": GLTF_MODULE, ".blend": BLENDER_EXPORT_MODULE, ".fbx": BLENDER_EXPORT_MODULE}


class OutputError(ValueError):
    """The output path cannot be written in this install (a usage error: exit code 2)."""


def check_output(path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix not in WRITERS:
        raise OutputError(f"{path}: unknown output format {suffix or '(no extension)'!r}; use one of "
                          f"{', '.join(WRITERS)}")
    module = WRITERS[suffix]
    if module is not None and importlib.util.find_spec(module) is None:
        raise OutputError(f"{path}: writing {suffix} files needs {module}, which this install lacks; "
                          f"save as .strata instead")


def write_output(path: Path, frames: Sequence[Any]) -> Path:
    """Write a result (its asset frames) to `path` in the format its extension names."""
    check_output(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = path.suffix.lower()
    if suffix == ".strata":
        container.write_frames(path, frames)
    elif suffix == ".glb":
        importlib.import_module(GLTF_MODULE).write_glb(codec.decode(frames), path)
    else:
        export = importlib.import_module(BLENDER_EXPORT_MODULE).export
        staged = path.with_name(f".{path.stem}.{os.getpid()}.strata")
        container.write_frames(staged, frames)
        try:
            export(staged, path)
        finally:
            staged.unlink(missing_ok=True)
    write_smplx_pose(path, frames)
    return path


def write_smplx_pose(path: Path, frames: Sequence[Any]) -> Path | None:
    """``<path stem>_smplx.npz`` with the asset's pose as an SMPL-X fit when its rig is SMPL-X's, else None."""
    import numpy as np

    from ..exchange.asset.smplx_motion import CANONICAL, fit_from_rig

    asset = codec.decode(frames)
    rig = asset.rig
    arrays = None if rig is None else fit_from_rig(rig.joint_names, rig.parents, rig.rest, rig.pose)
    if arrays is None:
        return None
    body = asset.body
    if body is not None and body.model == "smplx":  # the user's SMPL-X: its coefficients too
        names = list(body.shape_names)
        shape = np.asarray(body.shape, np.float32)
        for key, prefix in (("betas", "Shape"), ("expression", "Exp")):
            arrays[key] = shape[[i for i, n in enumerate(names) if n.startswith(prefix)]][None]
        if "smplx_pelvis" in body.extra:  # SMPL-X's own origin is not the asset's: the model then lands on it
            rest_pelvis = CANONICAL.T @ np.asarray(rig.rest[0], np.float64)[:3, 3]
            arrays["transl"] = (arrays["transl"] + rest_pelvis - np.asarray(body.extra["smplx_pelvis"])).astype(
                np.float32)
    out = path.with_name(f"{path.stem}_smplx.npz")
    gender = str(body.extra.get("gender", "neutral")) if body is not None else "neutral"
    np.savez(out, **arrays, gender=np.array(gender), model_type=np.array("smplx"))
    return out
