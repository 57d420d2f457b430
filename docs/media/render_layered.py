"""Render layered humans (`strata generate` .blend files) as a gallery: each in three views, optionally posed.

Run with Blender's Python (bpy):

    .venv-blender/bin/python docs/media/render_layered.py OUT.png A.blend [B.blend ...] [--pose walk] [--bare] [--head]

Each .blend is opened as written by the CLI (every garment its own object on one armature, the body's hidden
parts behind Mask modifiers) and rendered with Workbench (textures, studio light, shadows) from the front, the
three-quarter back and the side, orthographic, on a light grey background. ``--pose walk`` turns the thighs,
a shin and the arms on the armature (the garments deform with it); ``--bare`` hides every garment and turns
the body's Mask modifiers off (the body comes back whole: the masks only hide, never delete); ``--head``
frames the head and shoulders (hair up close).
"""

from __future__ import annotations

import math
import sys
import tempfile
from pathlib import Path

import bpy
import numpy as np
from mathutils import Euler, Vector

SIZE = 360
VIEWS = (0.0, 150.0, 270.0)
#: Armature edits of ``--pose walk``: bone name fragments (anny's default rig) -> XYZ Euler degrees.
WALK = {"upperleg01.L": (-30, 0, 0), "lowerleg01.L": (35, 0, 0), "upperleg01.R": (20, 0, 0),
        "upperarm01.L": (25, 0, 0), "upperarm01.R": (-25, 0, 0)}


def render_one(blend: Path, pose: str | None, bare: bool, folder: Path, head: bool = False) -> list[np.ndarray]:
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    scene = bpy.context.scene
    if bare:  # garments off, and the body's masks with them: the skin under them was only hidden
        for obj in scene.objects:
            if obj.type == "MESH" and obj.get("strata_layer_kind", "body") != "body":
                obj.hide_render = True
            elif obj.type == "MESH":
                for mod in obj.modifiers:
                    if mod.type == "MASK":
                        mod.show_render = mod.show_viewport = False
    if pose == "walk":
        for arm in (o for o in scene.objects if o.type == "ARMATURE"):
            for name, deg in WALK.items():
                bone = arm.pose.bones.get(name)
                if bone is not None:
                    bone.rotation_mode = "XYZ"
                    bone.rotation_euler = Euler([math.radians(d) for d in deg])
        bpy.context.view_layer.update()
    deps = bpy.context.evaluated_depsgraph_get()
    meshes = [o for o in scene.objects if o.type == "MESH" and not o.hide_render]
    pts = np.concatenate([np.array([(o.matrix_world @ v.co)[:] for v in o.evaluated_get(deps).to_mesh().vertices])
                          for o in meshes])
    lo, hi = pts.min(0), pts.max(0)
    target = Vector(((lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, (lo[2] + hi[2]) / 2))
    extent = float(hi[2] - lo[2]) * 1.08
    if head:  # the top fifth of the person: head, hair and shoulders
        extent = float(hi[2] - lo[2]) * 0.22
        target.z = float(hi[2]) - extent * 0.45
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.display.shading.light = "STUDIO"
    scene.display.shading.color_type = "TEXTURE"
    scene.display.shading.show_shadows = True
    scene.display.shading.show_cavity = True
    scene.render.resolution_x = scene.render.resolution_y = SIZE
    scene.render.film_transparent = False
    if scene.world is None:
        scene.world = bpy.data.worlds.new("gallery")
    scene.world.color = (0.8, 0.8, 0.8)
    cam_data = bpy.data.cameras.new("gallery")
    cam_data.type = "ORTHO"
    cam_data.ortho_scale = extent
    cam = bpy.data.objects.new("gallery", cam_data)
    scene.collection.objects.link(cam)
    scene.camera = cam
    images = []
    for i, azimuth in enumerate(VIEWS):
        az = math.radians(azimuth)
        cam.location = target + Vector((math.sin(az) * 6.0, -math.cos(az) * 6.0, 0.0))
        cam.rotation_euler = (math.radians(90), 0.0, az)
        images.append(render_still(scene, folder / f"{blend.stem}_{i}.png"))
    return images


def render_still(scene: bpy.types.Scene, path: Path) -> np.ndarray:
    """Render the scene's camera to ``path`` and return the picture, (H, W, 3) float, top row first."""
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    img = bpy.data.images.load(str(path))
    w, h = img.size
    pixels = np.array(img.pixels[:], np.float32).reshape(h, w, 4)[::-1, :, :3]
    bpy.data.images.remove(img)
    return pixels


def save_sheet(sheet: np.ndarray, out: Path) -> None:
    """Write an (H, W, 3) float picture, top row first, as a PNG."""
    img = bpy.data.images.new("sheet", sheet.shape[1], sheet.shape[0])
    img.pixels[:] = np.concatenate([sheet[::-1], np.ones(sheet.shape[:2] + (1,), np.float32)], axis=2).ravel()
    img.filepath_raw = str(out)
    img.file_format = "PNG"
    img.save()


def main() -> None:
    argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else sys.argv[1:]
    pose = argv[argv.index("--pose") + 1] if "--pose" in argv else None
    bare = "--bare" in argv
    head = "--head" in argv
    files = [a for a in argv if a.endswith((".blend", ".png"))]
    out, blends = Path(files[0]), [Path(f) for f in files[1:]]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for blend in blends:
            rows.append(np.concatenate(render_one(blend, pose, bare, Path(tmp), head), axis=1))
    cols = 2 if len(rows) > 3 else 1
    while len(rows) % cols:
        rows.append(np.ones_like(rows[0]))
    sheet = np.concatenate([np.concatenate(rows[i::cols], axis=0) for i in range(cols)], axis=1)
    save_sheet(sheet, out)
    print(f"wrote {out} ({len(blends)} humans)")


if __name__ == "__main__":
    main()
