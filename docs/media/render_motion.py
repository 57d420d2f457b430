"""Play an SMPL-X pose file on a Strata human made with the SMPL-X rig, and render frames of it.

Run with Blender's Python (bpy) after building the add-on (``build_addon.py --platform linux-x64``, which
``make test`` does; it is loaded from ``build/addon/linux-x64``):

    .venv-blender/bin/python docs/media/render_motion.py OUT.png HUMAN.blend [MOTION.npz]

Without MOTION.npz a walk is made here in AMASS's layout (``poses`` (T, 165) axis-angles, ``trans``,
``mocap_frame_rate``; Z up): two steps of hips, knees and arms swinging, written out from SMPL-X's joint
conventions, so no licensed motion data is needed. The human is opened as the CLI wrote it, the add-on's
``strata.load_smplx_motion`` operator keys the motion, and six frames are rendered side by side (Workbench).
"""

from __future__ import annotations

import importlib.util
import math
import sys
import tempfile
from pathlib import Path

import bpy
import numpy as np
from mathutils import Vector

sys.path.insert(0, str(Path(__file__).resolve().parent))  # its sibling, also when loaded by a GUI driver
from render_layered import render_still, save_sheet  # noqa: E402

SIZE = 360
FRAMES = 48
ADDON = Path(__file__).resolve().parents[2] / "build" / "addon" / "linux-x64"


def enable_addon() -> object:
    """The built add-on, registered as a package of its own (what Blender's extension install does)."""
    spec = importlib.util.spec_from_file_location("strata_addon", ADDON / "__init__.py",
                                                  submodule_search_locations=[str(ADDON)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["strata_addon"] = module
    spec.loader.exec_module(module)
    module.register()
    return module


def walk(frames: int = FRAMES, fps: float = 24.0) -> dict[str, np.ndarray]:
    """Two steps in AMASS's layout: SMPL-X axis-angles per joint (canonical frame: X left, Y up, Z forward)."""
    t = np.arange(frames) / fps
    phase = 2 * np.pi * t / 1.0  # one stride per second
    poses = np.zeros((frames, 55, 3))
    poses[:, 0] = [np.pi / 2, 0.0, 0.0]  # the canonical Y up stood in a Z-up world
    swing = np.radians(28) * np.sin(phase)
    poses[:, 1, 0] = -swing  # left hip: negative X swings the leg forward
    poses[:, 2, 0] = swing
    poses[:, 4, 0] = np.radians(35) * np.clip(np.sin(phase + np.pi / 2), 0, None)  # knees bend back
    poses[:, 5, 0] = np.radians(35) * np.clip(np.sin(phase - np.pi / 2), 0, None)
    poses[:, 16, 2] = -np.radians(65)  # shoulders: arms down from the T-pose (about Z)
    poses[:, 17, 2] = np.radians(65)
    poses[:, 16, 1] = np.radians(25) * np.sin(phase)  # arms swing against the legs (about Y)
    poses[:, 17, 1] = np.radians(25) * np.sin(phase)
    poses[:, 18, 1] = -np.radians(20)  # elbows a little bent, forward
    poses[:, 19, 1] = np.radians(20)
    trans = np.stack([np.zeros(frames), -1.2 * t, 0.02 * np.abs(np.sin(phase))], axis=1)  # forward is -Y
    return {"poses": poses.reshape(frames, -1), "trans": trans, "mocap_frame_rate": np.array(fps)}


def main() -> None:
    argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else sys.argv[1:]
    out, blend = Path(argv[0]), Path(argv[1])
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    addon = enable_addon()
    scene = bpy.context.scene
    scene.render.fps = 24
    with tempfile.TemporaryDirectory() as tmp:
        motion = Path(argv[2]) if len(argv) > 2 else Path(tmp) / "walk.npz"
        if len(argv) <= 2:
            np.savez(motion, **walk())
        armature = next(o for o in scene.objects if o.type == "ARMATURE")
        bpy.context.view_layer.objects.active = armature
        assert bpy.ops.strata.load_smplx_motion(filepath=str(motion)) == {"FINISHED"}
        images = [render(scene, frame, Path(tmp)) for frame in np.linspace(1, scene.frame_end, 6).astype(int)]
    save_sheet(np.concatenate(images, axis=1), out)
    addon.unregister()  # bpy as a module hangs at exit while the add-on's timers are registered
    print(f"wrote {out}")


def render(scene: bpy.types.Scene, frame: int, folder: Path) -> np.ndarray:
    """The human at ``frame`` from its three-quarter front, framed on its own bounding box."""
    scene.frame_set(frame)
    deps = bpy.context.evaluated_depsgraph_get()
    meshes = [o for o in scene.objects if o.type == "MESH" and not o.hide_render]
    pts = np.concatenate([np.array([(o.matrix_world @ v.co)[:] for v in o.evaluated_get(deps).to_mesh().vertices])
                          for o in meshes])
    lo, hi = pts.min(0), pts.max(0)
    target = Vector(((lo + hi) / 2).tolist())
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.display.shading.light = "STUDIO"
    scene.display.shading.color_type = "TEXTURE"
    scene.render.resolution_x = scene.render.resolution_y = SIZE
    if scene.world is None:
        scene.world = bpy.data.worlds.new("motion")
    scene.world.color = (0.8, 0.8, 0.8)
    cam = scene.camera
    if cam is None:
        cam = bpy.data.objects.new("motion", bpy.data.cameras.new("motion"))
        scene.collection.objects.link(cam)
        scene.camera = cam
    cam.data.type = "ORTHO"
    cam.data.ortho_scale = 2.1
    az = math.radians(-35)
    cam.location = target + Vector((math.sin(az) * 6.0, -math.cos(az) * 6.0, 0.0))
    cam.rotation_euler = (math.radians(90), 0.0, az)
    return render_still(scene, folder / f"frame_{frame}.png")


if __name__ == "__main__":
    main()
