"""Strata for Blender: make rigged, textured, layered humans on a Strata server and import them.

Layout (pure layer first, nothing in it touches bpy):

* connection.py, session.py, local_server.py: the server connection on a background thread, the
  state the panel shows, and the optional local server process.
* runtime.py: the glue; `tick()` is the `bpy.app.timers` callback that moves results to Blender.
* importer.py: HumanAsset -> collection, armature, meshes, materials (bpy + numpy only).
* properties.py, preferences.py, operators.py, panel.py: the Blender UI.
* _lib/: the project's shared protocol, asset and client modules, vendored by build_addon.py, so
  the add-on speaks exactly the server's protocol.
"""

from __future__ import annotations

import bpy

from . import operators, panel, preferences, properties, runtime


def _classes() -> tuple[type, ...]:
    return (*preferences.CLASSES, *properties.CLASSES, *operators.CLASSES, *panel.CLASSES)


def register() -> None:
    for cls in _classes():
        bpy.utils.register_class(cls)
    bpy.types.Scene.strata = bpy.props.PointerProperty(type=properties.STRATA_PG_settings)
    bpy.types.TOPBAR_MT_file_import.append(operators.menu_import)
    panel.register_previews()


def unregister() -> None:
    runtime.shutdown()  # timer, connection thread, local server: nothing may outlive the add-on
    panel.unregister_previews()
    bpy.types.TOPBAR_MT_file_import.remove(operators.menu_import)
    del bpy.types.Scene.strata
    for cls in reversed(_classes()):
        bpy.utils.unregister_class(cls)
