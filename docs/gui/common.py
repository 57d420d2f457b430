"""What the GUI drivers in this folder share (loaded by path: the tool runs each driver as a lone script).

Each driver loads it with importlib from its own folder (see `_connect` in layers.py).
"""

import bpy


def connect(rt, address, *, view3d_override, wait_until, log):
    """Press Connect until the server at ``address`` answers (a server still loading its models), as a
    generator the driver ``yield from``s; the bootstrap's helpers are passed in."""
    for attempt in range(30):
        with bpy.context.temp_override(**view3d_override()):
            bpy.ops.strata.connect()
        try:
            yield from wait_until(lambda: rt.session.connected, timeout=6, what="the server's hello")
            return
        except TimeoutError:
            log(f"not connected yet (attempt {attempt + 1})")
    raise RuntimeError(f"no server at {address}")


def frame(obj, *, view3d_override):
    """Select ``obj`` alone and frame it in the front view (the bootstrap's ``view3d_override`` passed in)."""
    for o in bpy.context.selected_objects:
        o.select_set(False)
    obj.select_set(True)
    bpy.context.view_layer.objects.active = obj
    with bpy.context.temp_override(**view3d_override()):
        bpy.ops.view3d.view_axis(type="FRONT")
        bpy.ops.view3d.view_selected()
