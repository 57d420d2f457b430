"""Where a job's result goes: the output format is chosen by the file extension.

    .strata       the result frames written as they arrived (no decode, no re-encode)
    .glb          strata.exchange.asset.gltf.write_glb (imported when needed)
    .blend .fbx   strata.client.blender_export.export(asset_path, out_path), when that module exists
                  (it drives Blender; it is not part of every install)

`check_output` runs BEFORE a job is submitted, so nobody waits minutes for a result that cannot be saved.
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
    return path
