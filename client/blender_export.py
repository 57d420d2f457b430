"""Turn `.strata` results into .blend / .fbx files with Blender, from the server's environment.

The server environment has no Blender; the repository's `.venv-blender` has bpy (Blender as a Python
module), and a user may have a Blender binary. Either runs the add-on's own batch script
(blender_addon/batch_script.py), so a file written here is exactly what the add-on imports in the UI:
same importer, same collection, armature, materials and masks.

    export("result.strata", "human.blend")                       # one job (the CLI's --out x.blend)
    export_many([("a.strata", ["a.blend", "a.fbx"]), ...])       # one Blender run for a whole batch

Blender is found as: `blender=` (a Blender executable: `blender -b -P script -- ...`), else
`blender_python=` / $STRATA_BLENDER_PYTHON (a Python with bpy), else `<repo>/.venv-blender`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BLENDER_FORMATS = (".blend", ".fbx")
"""What `export` needs Blender for (.glb comes from core.asset.gltf directly, without Blender)."""
BLENDER_WRITES = (".blend", ".fbx", ".glb", ".gltf", ".obj", ".usd", ".usdc", ".usda")
"""What the batch script can write (blender_addon/batch_script.py EXPORTS)."""
ADDON_PACKAGE = "strata_addon"


class ExportError(RuntimeError):
    """Blender could not be run, or it failed on a file; the message says which and why."""


def find_blender_python(blender_python: str | os.PathLike | None = None) -> Path:
    """A Python interpreter with bpy: the argument, $STRATA_BLENDER_PYTHON, or <repo>/.venv-blender."""
    candidates = [blender_python, os.environ.get("STRATA_BLENDER_PYTHON"),
                  REPO / ".venv-blender" / "bin" / "python", REPO / ".venv-blender" / "Scripts" / "python.exe"]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise ExportError(f"no Blender found: pass --blender PATH (a Blender 4.2+ executable) or create "
                      f"{REPO / '.venv-blender'} (a Python 3.11 environment with `pip install bpy`), or set "
                      f"STRATA_BLENDER_PYTHON")


def _load_build_addon() -> Any:
    path = REPO / "build_addon.py"
    if not path.is_file():
        raise ExportError(f"{path} is missing: blender_export runs from a source checkout of Strata")
    spec = importlib.util.spec_from_file_location("strata_build_addon", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _host_platform() -> str | None:
    machine = os.uname().machine if hasattr(os, "uname") else ""
    if sys.platform.startswith("linux") and machine in ("x86_64", "AMD64"):
        return "linux-x64"
    if sys.platform == "win32":
        return "windows-x64"
    if sys.platform == "darwin" and machine == "arm64":
        return "macos-arm64"
    return None


def stage_addon(dest: Path, *, with_wheels: bool = False) -> Path:
    """The add-on as build_addon.py would zip it, as a folder: the batch script's home."""
    build = _load_build_addon()
    wheels = []
    platform = _host_platform()
    if with_wheels and platform:  # a Blender binary lacks msgpack; use cached wheels, never download here
        try:
            wheels = build.fetch_wheels(platform, REPO / "build" / "wheels-cache", offline=True)
        except build.BuildError:
            wheels = []
    try:
        return build.stage(dest / ADDON_PACKAGE, platform=platform, wheels=wheels)
    except build.BuildError as exc:
        raise ExportError(f"staging the add-on failed: {exc}") from exc


def export_many(jobs: Sequence[tuple[str | os.PathLike, Sequence[str | os.PathLike]]], *,
                blender: str | os.PathLike | None = None, blender_python: str | os.PathLike | None = None,
                timeout: float | None = None) -> list[dict[str, Any]]:
    """Import each asset in one Blender run and write its outputs. Returns one report per job:
    {"input", "outputs", "ok", "error", "seconds", ...}; a failed job does not stop the others."""
    jobs = [(Path(src), [Path(o) for o in outs]) for src, outs in jobs]
    if not jobs:
        return []
    for _, outs in jobs:
        for out in outs:
            if out.suffix.lower() not in BLENDER_WRITES:
                raise ExportError(f"cannot write {out.name} with Blender: use one of {', '.join(BLENDER_WRITES)}")
    with tempfile.TemporaryDirectory(prefix="strata-blender-") as tmp:
        tmpdir = Path(tmp)
        addon = stage_addon(tmpdir, with_wheels=blender is not None)
        script = addon / "batch_script.py"
        report = tmpdir / "report.json"
        args = ["--report", str(report)]
        for src, outs in jobs:
            args += ["--job", str(src.resolve()), *(str(o.resolve()) for o in outs)]
        if blender is not None:
            exe = shutil.which(str(blender)) or str(blender)
            cmd = [exe, "-b", "--factory-startup", "-noaudio", "--python-exit-code", "1", "-P", str(script),
                   "--", *args]
        else:
            cmd = [str(find_blender_python(blender_python)), str(script), "--", *args]
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        except FileNotFoundError as exc:
            raise ExportError(f"could not run Blender ({cmd[0]}): {exc}") from exc
        except subprocess.TimeoutExpired as exc:
            raise ExportError(f"Blender did not finish within {timeout} s") from exc
        if not report.is_file():
            tail = "\n".join((done.stderr or done.stdout or "").strip().splitlines()[-15:])
            raise ExportError(f"Blender failed before writing anything (exit code {done.returncode}):\n{tail}")
        return json.loads(report.read_text())


def export(asset_path: str | os.PathLike, out_path: str | os.PathLike, *, blender: str | os.PathLike | None = None,
           blender_python: str | os.PathLike | None = None, timeout: float | None = 600) -> Path:
    """Write one `.strata` as `out_path` (.blend or .fbx by its suffix; .glb needs no Blender and is
    written by core.asset.gltf). Raises ExportError with Blender's reason when it fails."""
    out = Path(out_path)
    if out.suffix.lower() == ".glb":
        from ..exchange.asset import container, gltf

        gltf.write_glb(container.load(asset_path), out)
        return out
    if out.suffix.lower() not in BLENDER_FORMATS:
        raise ExportError(f"cannot write {out.name}: the formats are .blend, .fbx and .glb")
    [result] = export_many([(asset_path, [out])], blender=blender, blender_python=blender_python, timeout=timeout)
    if not result["ok"]:
        raise ExportError(f"Blender could not write {out}: {result['error']}")
    return out
