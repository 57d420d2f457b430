"""GUI driver (../shared/tools/blender-gui): reconstruct a photo in a real Blender window and show the
asset contract: the human imported in the photo's pose, and the same armature at its A-pose rest.

    T=../shared/tools/blender-gui
    $T/run.sh --project . --out /tmp/shots --addon dist/strata-0.1.0-linux-x64.zip --mount ../shared/examples \
        --host-cmd ".venv/bin/strata-server --bind tcp://127.0.0.1:5599 --data-dir /tmp/strata-gui" \
        -- docs/gui/rest_pose.py tcp://127.0.0.1:5599 $(realpath ../shared/examples/pexels-zdmit-6780091.png)

Writes 01_connected, 02_posed, 03_rest (.png) in OUT and logs the armature's rest-pose facts.
The driver runs inside the tool's bootstrap, which provides ARGS, OUT, ADDON_MODULE, log, shot, settle,
wait_until, view3d_override and open_sidebar_tab as globals.
"""
# ruff: noqa: F821

import importlib
import importlib.util
from pathlib import Path

import bpy


def _common():
    """docs/gui/common.py, loaded by path (the tool runs each driver as a lone script)."""
    spec = importlib.util.spec_from_file_location("gui_common", Path(__file__).resolve().parent / "common.py")
    common = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(common)
    return common


def _connect(rt, address):
    yield from _common().connect(rt, address, view3d_override=view3d_override, wait_until=wait_until, log=log)


def _frame(obj):
    _common().frame(obj, view3d_override=view3d_override)


def main():
    address, photo = ARGS[0], ARGS[1]
    rt = importlib.import_module(ADDON_MODULE + ".runtime").RUNTIME
    for name in ("Cube",):  # the start-up scene's cube stands where the human will
        if name in bpy.data.objects:
            bpy.data.objects.remove(bpy.data.objects[name])
    bpy.context.preferences.addons[ADDON_MODULE].preferences.address = address
    bpy.context.scene.strata.photo = photo
    yield from open_sidebar_tab("Strata")
    yield from _connect(rt, address)
    log("backends:", rt.session.backend_lines())
    yield from settle()
    shot("01_connected")

    with bpy.context.temp_override(**view3d_override()):
        result = bpy.ops.strata.reconstruct()
    if result != {"FINISHED"}:
        raise RuntimeError(f"strata.reconstruct returned {result}")
    yield from wait_until(lambda: not rt.session.busy, timeout=600, what="the job to finish")
    yield from wait_until(lambda: bool(rt.imported) or rt.session.problem is not None, timeout=60,
                          what="the import")
    if rt.session.problem is not None:
        shot("02_problem")
        raise RuntimeError(f"job failed: {rt.session.problem.text}")
    arm = next(o for o in bpy.context.scene.objects if o.type == "ARMATURE")
    body = next(o for o in bpy.context.scene.objects if o.type == "MESH" and o.parent == arm)
    log("rest pose:", arm.get("strata_rest_pose", arm.data.get("strata_rest_pose")), "| posed bones:",
        sum(1 for b in arm.pose.bones if b.matrix_basis != b.matrix_basis.Identity(4)))
    _frame(arm)
    yield 1.0
    yield from settle()
    shot("02_posed")

    arm.data.pose_position = "REST"  # the button "Rest Position" in the armature's properties
    yield 1.0
    yield from settle()
    depsgraph = bpy.context.evaluated_depsgraph_get()
    zs = [v.co.z for v in body.evaluated_get(depsgraph).data.vertices]
    log(f"at rest: the mesh stands from z={min(zs):.4f} to {max(zs):.3f}")
    shot("03_rest")
