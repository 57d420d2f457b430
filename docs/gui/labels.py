"""GUI driver (../shared/tools/blender-gui): every label and choice of the panel and the preferences, as a new
user reads them at the default sidebar width (no server needed: the choices come from the job specs).

    T=../shared/tools/blender-gui
    $T/run.sh --project . --out /tmp/shots --addon dist/strata-0.1.0-linux-x64.zip -- docs/gui/labels.py

Writes 01_body_parameters (the Body mode with its Parameters open: age in years, rig, rest pose ...),
02_rig_menu (the rig dropdown open: each rig with its bone count), 03_photo_parameters (the Photo mode's
Parameters: texture size in pixels, backends) and 04_preferences (the preferences' three boxes). The tool's
bootstrap provides OUT, ADDON_MODULE, log, shot, settle, open_sidebar_tab, open_addon_preferences, region_xy,
click, keys, move and xdo as globals.
"""
# ruff: noqa: F821

import importlib

import bpy

RIG_ROW = 71
"""Pixels from the sidebar's top to the middle of the Body mode's Rig row at the default UI scale (the panel's
header, the mode buttons, then the Rig row)."""


def _open(panel, panel_class):
    """Re-register a DEFAULT_CLOSED panel open, as an artist's click on its header would leave it (the panels
    after it too, so the sidebar keeps its order)."""
    later = panel.CLASSES[panel.CLASSES.index(panel_class):]
    for cls in reversed(later):
        bpy.utils.unregister_class(cls)
    panel_class.bl_options = set()
    for cls in later:
        bpy.utils.register_class(cls)


def _labels(name):
    """Redraw, wait until Blender has drawn, and take shot ``name`` (the picture shows whether labels fit)."""
    log(f"{name}: mode={bpy.context.scene.strata.mode}")
    yield from settle()
    shot(name)


def main():
    panel = importlib.import_module(ADDON_MODULE + ".panel")
    if "Cube" in bpy.data.objects:
        bpy.data.objects.remove(bpy.data.objects["Cube"])
    _open(panel, panel.STRATA_PT_parameters)
    settings = bpy.context.scene.strata

    # 1. The Body mode, its parameters open.
    settings.mode = "BODY"
    sidebar = yield from open_sidebar_tab("Strata")
    yield from _labels("01_body_parameters")

    # 2. The rig dropdown, opened with a click as an artist would (the Rig row is the second of the panel).
    x, top = region_xy(sidebar, 0.75, 0.0)
    log(f"sidebar top at y={top}")
    click(x, top + RIG_ROW)
    yield 1.0
    yield from _labels("02_rig_menu")
    keys("Escape")
    yield 0.5
    move(300, 700)

    # 3. The Photo mode's parameters.
    settings.mode = "RECONSTRUCT"
    yield from _labels("03_photo_parameters")

    # 4. The preferences, in a window tall enough for their three boxes.
    yield from open_addon_preferences()
    xdo("search", "--name", "Preferences", "windowmove", "300", "20", "windowsize", "1000", "1040")
    yield 1.0
    yield from _labels("04_preferences")
