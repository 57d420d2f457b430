"""GUI driver (../shared/tools/blender-gui): SMPL-X in a real Blender window, as a new user meets it.

    T=../shared/tools/blender-gui
    $T/run.sh --project . --out /tmp/shots --addon dist/strata-0.1.0-linux-x64.zip \
        --host-cmd ".venv/bin/strata-server --bind tcp://127.0.0.1:5599 --data-dir /tmp/strata-gui" \
        -- docs/gui/smplx.py tcp://127.0.0.1:5599

1. The Body mode asks for the SMPL-X body model on a server without SMPL-X files: 01_smplx_missing shows
   what the panel says (the folder, the file names, where to register).
2. A body on the SMPL-X rig instead (no files needed), then a walk in AMASS's layout (made by
   docs/media/render_motion.py's ``walk``) loaded from the Motion panel: 02_smplx_motion mid-stride.

The driver runs inside the tool's bootstrap, which provides ARGS, OUT, ADDON_MODULE, log, shot, settle,
wait_until, view3d_override and open_sidebar_tab as globals.
"""
# ruff: noqa: F821

import importlib
import importlib.util
from pathlib import Path

import bpy
import numpy as np

MOTION = Path(__file__).resolve().parents[1] / "media" / "render_motion.py"


def _connect(rt, address):
    """Connect as docs/gui/common.py does it (loaded by path: drivers run as lone scripts)."""
    spec = importlib.util.spec_from_file_location("gui_common", Path(__file__).resolve().parent / "common.py")
    common = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(common)
    yield from common.connect(rt, address, view3d_override=view3d_override, wait_until=wait_until, log=log)


def _body(rt):
    with bpy.context.temp_override(**view3d_override()):
        result = bpy.ops.strata.body()
    if result != {"FINISHED"}:
        raise RuntimeError(f"the body operator returned {result}")
    yield from wait_until(lambda: not rt.session.busy, timeout=300, what="the job to finish")


def main():
    address = ARGS[0]
    rt = importlib.import_module(ADDON_MODULE + ".runtime").RUNTIME
    if "Cube" in bpy.data.objects:
        bpy.data.objects.remove(bpy.data.objects["Cube"])
    bpy.context.preferences.addons[ADDON_MODULE].preferences.address = address
    settings = bpy.context.scene.strata
    settings.mode = "BODY"
    yield from open_sidebar_tab("Strata")
    yield from _connect(rt, address)

    # 1. SMPL-X's own body without its files: the panel says what is missing.
    settings.body.body_model = "smplx"
    yield from _body(rt)
    yield from wait_until(lambda: rt.session.problem is not None, timeout=30, what="the missing-files message")
    log(f"panel says: {rt.session.problem.text}")
    yield from settle()
    shot("01_smplx_missing")

    # 2. The SMPL-X rig on Strata's body, and a walk played on it.
    settings.body.body_model = "anny"
    settings.body.rig = "smplx"
    yield from _body(rt)
    yield from wait_until(lambda: bool(rt.imported) or rt.session.problem is not None, timeout=60,
                          what="the import")
    if rt.session.problem is not None:
        raise RuntimeError(f"job failed: {rt.session.problem.text}")
    armature = next(o for o in bpy.context.scene.objects if o.type == "ARMATURE")
    bpy.context.view_layer.objects.active = armature
    spec = importlib.util.spec_from_file_location("render_motion", MOTION)
    motion = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(motion)
    path = Path(OUT) / "walk.npz"
    np.savez(path, **motion.walk())
    with bpy.context.temp_override(**view3d_override()):
        assert bpy.ops.strata.load_smplx_motion(filepath=str(path)) == {"FINISHED"}
        bpy.ops.view3d.view_all()
    bpy.context.scene.frame_set(18)
    yield from settle()
    shot("02_smplx_motion")
