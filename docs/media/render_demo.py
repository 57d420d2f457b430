"""Render the README picture from `make demo`'s real output: the photo beside its reconstruction.

Run with Blender's Python (bpy), after `make demo`:

    .venv-blender/bin/python docs/media/render_demo.py [out/human.blend] [docs/media/demo.png]

It opens the .blend the demo wrote, frames the imported human with an orthographic camera (front and
three-quarter views), renders with Cycles on the CPU, and pastes the input photo on the left.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import bpy
import numpy as np
from mathutils import Vector

REPO = Path(__file__).resolve().parents[2]
HEIGHT_PX = 640


def _render_view(scene, cam, target: Vector, height: float, azimuth_deg: float, path: Path) -> np.ndarray:
    az = math.radians(azimuth_deg)
    dist = 6.0
    cam.location = target + Vector((math.sin(az) * dist, -math.cos(az) * dist, 0.0))
    cam.rotation_euler = (math.radians(90), 0.0, az)
    cam.data.ortho_scale = height * 1.12
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)
    img = bpy.data.images.load(str(path))
    w, h = img.size
    px = np.array(img.pixels[:], dtype=np.float32).reshape(h, w, 4)[::-1]
    bpy.data.images.remove(img)
    return px


def main() -> None:
    argv = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else sys.argv[1:]
    blend = Path(argv[0]) if argv else REPO / "out" / "human.blend"
    out = Path(argv[1]) if len(argv) > 1 else REPO / "docs" / "media" / "demo.png"
    photo = REPO / "docs" / "examples" / "pexels-6311555.png"
    bpy.ops.wm.open_mainfile(filepath=str(blend))
    scene = bpy.context.scene
    meshes = [o for o in scene.objects if o.type == "MESH"]
    if not meshes:
        raise SystemExit(f"{blend} holds no mesh: run `make demo` first")
    deps = bpy.context.evaluated_depsgraph_get()
    pts = np.concatenate([
        np.array([(o.matrix_world @ v.co)[:] for v in o.evaluated_get(deps).to_mesh().vertices]) for o in meshes
    ])
    lo, hi = pts.min(0), pts.max(0)
    height = float(hi[2] - lo[2])
    target = Vector(((lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, (lo[2] + hi[2]) / 2))

    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = 32
    scene.render.resolution_x = int(HEIGHT_PX * 0.6)
    scene.render.resolution_y = HEIGHT_PX
    scene.render.film_transparent = False
    scene.view_settings.view_transform = "Standard"
    scene.render.image_settings.file_format = "PNG"
    world = scene.world or bpy.data.worlds.new("World")
    scene.world = world
    world.use_nodes = True
    world.node_tree.nodes["Background"].inputs[0].default_value = (0.92, 0.92, 0.93, 1.0)
    world.node_tree.nodes["Background"].inputs[1].default_value = 0.9
    sun = bpy.data.objects.new("Key", bpy.data.lights.new("Key", "SUN"))
    sun.data.energy = 3.0
    sun.rotation_euler = (math.radians(50), 0, math.radians(-30))
    scene.collection.objects.link(sun)
    cam = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
    cam.data.type = "ORTHO"
    scene.collection.objects.link(cam)
    scene.camera = cam

    tmp = out.with_suffix(".tmp.png")
    views = [_render_view(scene, cam, target, height, az, tmp) for az in (0.0, 35.0)]
    tmp.unlink(missing_ok=True)
    h, w = views[0].shape[:2]

    pimg = bpy.data.images.load(str(photo))
    pw, ph = pimg.size
    p = np.array(pimg.pixels[:], dtype=np.float32).reshape(ph, pw, 4)[::-1]
    scale = h / ph
    nw = max(1, int(pw * scale))
    ys = np.minimum((np.arange(h) / scale).astype(int), ph - 1)
    xs = np.minimum((np.arange(nw) / scale).astype(int), pw - 1)
    p = p[ys][:, xs]
    bg = np.array([0.92, 0.92, 0.93, 1.0], np.float32)
    p = p[..., 3:4] * p + (1 - p[..., 3:4]) * bg
    p[..., 3] = 1.0
    sheet = np.concatenate([p, *views], axis=1)
    img = bpy.data.images.new("sheet", sheet.shape[1], sheet.shape[0], alpha=True)
    img.pixels.foreach_set(sheet[::-1].ravel())
    img.filepath_raw = str(out)
    img.file_format = "PNG"
    out.parent.mkdir(parents=True, exist_ok=True)
    img.save()
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
