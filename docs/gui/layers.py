"""GUI driver (../shared/tools/blender-gui): a layered human from the sidebar's Layered mode, or with a PHOTO
from its Photo mode (garments as separate objects), in a real Blender window; then its top hidden from the
Garments list to show the body under it.

    T=../shared/tools/blender-gui
    $T/run.sh --project . --out /tmp/shots --addon dist/strata-0.1.0-linux-x64.zip \
        --host-cmd ".venv/bin/strata-server --bind tcp://127.0.0.1:5599 --data-dir /tmp/strata-gui" \
        -- docs/gui/layers.py tcp://127.0.0.1:5599 [PHOTO]

Writes 01_layers (the layer list; with a photo: the Photo mode and its switch), 02_generated (the imported
human and its Garments list), 03_top_hidden (the top hidden, the body shown under it) and 04_reshaped (the
top back, the body made Female and Heavier with the Shape panel's sliders, the bones fitted to it: the
clothes follow) in OUT.
The driver runs inside the tool's bootstrap, which provides ARGS, OUT, ADDON_MODULE, log, shot, settle,
wait_until, view3d_override and open_sidebar_tab as globals.
"""
# ruff: noqa: F821

import importlib
import importlib.util
from pathlib import Path

import bpy

LAYERS = (("BOTTOM", "skirt", (0.45, 0.08, 0.12)), ("TOP", "tshirt", (0.85, 0.85, 0.8)),
          ("SHOES", "sneakers", (0.9, 0.9, 0.9)), ("HAIR", "bob", (0.25, 0.15, 0.08)))


def _connect(rt, address):
    """Connect as docs/gui/common.py does it (loaded by path: drivers run as lone scripts)."""
    spec = importlib.util.spec_from_file_location("gui_common", Path(__file__).resolve().parent / "common.py")
    common = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(common)
    yield from common.connect(rt, address, view3d_override=view3d_override, wait_until=wait_until, log=log)


def main():
    address = ARGS[0]
    rt = importlib.import_module(ADDON_MODULE + ".runtime").RUNTIME
    if "Cube" in bpy.data.objects:
        bpy.data.objects.remove(bpy.data.objects["Cube"])
    bpy.context.preferences.addons[ADDON_MODULE].preferences.address = address
    settings = bpy.context.scene.strata
    photo = str(Path(ARGS[1]).resolve()) if len(ARGS) > 1 else ""
    if photo:  # the Photo mode: what the person wears, read from the photo
        settings.mode = "RECONSTRUCT"
        settings.photo = photo
        settings.reconstruct.layers = True
    else:
        settings.mode = "GENERATE"
        settings.layers.clear()
        for kind, style, colour in LAYERS:
            with bpy.context.temp_override(**view3d_override()):
                bpy.ops.strata.layer_add(kind=kind)
            settings.layers[-1].style = style
            settings.layers[-1].color = colour
        settings.seed = 7
    yield from open_sidebar_tab("Strata")
    yield from _connect(rt, address)
    yield from settle()
    shot("01_layers")

    with bpy.context.temp_override(**view3d_override()):
        result = bpy.ops.strata.reconstruct() if photo else bpy.ops.strata.generate()
    if result != {"FINISHED"}:
        raise RuntimeError(f"the job's operator returned {result}")
    yield from wait_until(lambda: not rt.session.busy, timeout=300, what="the job to finish")
    yield from wait_until(lambda: bool(rt.imported) or rt.session.problem is not None, timeout=60,
                          what="the import")
    if rt.session.problem is not None:
        shot("02_problem")
        raise RuntimeError(f"job failed: {rt.session.problem.text}")
    body = next(o for o in bpy.context.scene.objects if o.get("strata_layer_kind") == "body")
    for o in bpy.context.selected_objects:
        o.select_set(False)
    for o in bpy.context.scene.objects:  # the whole human, to frame it
        if o.get("strata_layer_kind") is not None:
            o.select_set(True)
    bpy.context.view_layer.objects.active = body
    garments = sorted(o.name for o in bpy.context.scene.objects if o.get("strata_layer_kind") not in (None, "body"))
    log("garments:", garments, "| body masks:", [m.name for m in body.modifiers if m.type == "MASK"])
    with bpy.context.temp_override(**view3d_override()):
        bpy.ops.view3d.view_axis(type="FRONT")
        bpy.ops.view3d.view_selected()
    for area in bpy.context.screen.areas:  # textures visible in the viewport
        if area.type == "VIEW_3D":
            area.spaces[0].shading.type = "MATERIAL"
    yield 2.0
    yield from settle()
    shot("02_generated")

    top = next(o for o in bpy.context.scene.objects if o.get("strata_layer_kind") == "top")
    with bpy.context.temp_override(**view3d_override()):
        bpy.ops.strata.garment_visibility(garment=top.name)
    log("top hidden:", top.hide_viewport, "| its mask shown:",
        body.modifiers[top["strata_mask_modifier"]].show_viewport)
    yield 1.0
    yield from settle()
    shot("03_top_hidden")

    # 4. The top back on, the body reshaped from the Shape panel's sliders: the clothes follow.
    with bpy.context.temp_override(**view3d_override()):
        bpy.ops.strata.garment_visibility(garment=top.name)
    sliders = body.data.shape_keys.key_blocks
    for name in ("Female", "Heavier"):
        sliders[name].value = 1.0
    with bpy.context.temp_override(**view3d_override()):
        bpy.ops.strata.fit_bones()  # the Shape panel's button: the bones to the reshaped body's joints
    yield 1.0
    yield from settle()
    log("sliders:", [(k.name, k.value) for k in sliders[1:] if k.value], "| the top's (driven):",
        [(k.name, k.value) for k in top.data.shape_keys.key_blocks[1:] if k.value])
    shot("04_reshaped")
