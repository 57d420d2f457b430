"""GUI driver (../shared/tools/blender-gui): an artist's whole session in a real Blender window, with the
server started by the add-on itself (preferences: "Run the server on this computer").

1. the add-on's first look (installed from the zip by the tool); 2. Connect starts the local server;
3-4. a photo reconstructed, with progress, imported at the cursor; 5-6. a second job cancelled; 7. the server
stopped in the middle of a third job; 7b. started again, and killed from outside in the middle of a fourth;
8. the first result imported again from the History; 9. the human at its A-pose rest (the photo's pose is on
the armature).

    T=../shared/tools/blender-gui
    $T/run.sh --project . --out /tmp/shots --addon dist/strata-0.1.0-linux-x64.zip --mount ../shared/examples \
        --mount /root/.pyenv --mount /root/.cache/anny --env ANNY_CACHE_DIR=/root/.cache/anny \
        -- docs/gui/session.py tcp://127.0.0.1:5611 $(realpath .venv) $(realpath docs/examples/pexels-6311555.png)

(the two extra mounts let the project's .venv run inside the tool's chroot with the rigs already built).
Writes 01_first_look ... 09_rest (.png) in OUT and logs what each step saw. The tool's bootstrap provides
ARGS, OUT, ADDON_MODULE, log, shot, settle, wait_until, view3d_override and open_sidebar_tab as globals.
"""
# ruff: noqa: F821

import importlib
import importlib.util
import os
import signal
from pathlib import Path

import bpy


def _op(operator, *args, **kwargs):
    category, op = operator.split(".")
    with bpy.context.temp_override(**view3d_override()):
        return getattr(getattr(bpy.ops, category), op)(*args, **kwargs)


def _show(rt, name):
    log(f"{name}: busy={rt.session.busy} problem={rt.session.problem and rt.session.problem.text!r} "
        f"notice={rt.session.notice!r}")
    yield from settle()
    shot(name)


def _scroll(region, clicks):
    """Scroll ``region`` with the mouse wheel (down for positive ``clicks``), as an artist would."""
    move(*region_xy(region, 0.5, 0.5))
    for _ in range(abs(clicks)):
        xdo("click", "5" if clicks > 0 else "4")
    yield 0.5  # Blender scrolls what is under the pointer when it reads the events
    move(300, 700)  # then away, over the 3D view: no tooltip over the sidebar in the shot
    yield 0.5


def _frame(obj):
    """docs/gui/common.py's frame, loaded by path (the tool runs each driver as a lone script)."""
    spec = importlib.util.spec_from_file_location("gui_common", Path(__file__).resolve().parent / "common.py")
    common = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(common)
    common.frame(obj, view3d_override=view3d_override)


def main():
    address, env, photo = ARGS[0], ARGS[1], ARGS[2]
    rt = importlib.import_module(ADDON_MODULE + ".runtime").RUNTIME
    panel = importlib.import_module(ADDON_MODULE + ".panel")
    if "Cube" in bpy.data.objects:
        bpy.data.objects.remove(bpy.data.objects["Cube"])
    history = panel.STRATA_PT_history  # open by default here, so the screenshot shows it
    bpy.utils.unregister_class(history)
    history.bl_options = set()
    bpy.utils.register_class(history)
    prefs = bpy.context.preferences.addons[ADDON_MODULE].preferences
    prefs.address, prefs.start_local, prefs.server_env = address, True, env

    # 1-2. First look; Connect starts the server on this computer.
    sidebar = yield from open_sidebar_tab("Strata")
    yield from _show(rt, "01_first_look")
    _op("strata.connect")
    yield from wait_until(lambda: rt.session.connected or rt.session.problem is not None, timeout=240,
                          what="the local server")
    if rt.session.connected:  # the server still imports torch for a second or two: the line names the device then
        yield from wait_until(lambda: "finding the device" not in rt.session.status_line(), timeout=30,
                              what="the device in the status line")
    yield from _show(rt, "02_connected")
    if not rt.session.connected:
        raise RuntimeError(f"the local server did not answer: {rt.session.problem and rt.session.problem.text}")

    # 3-4. A photo, reconstructed with progress, imported at the cursor.
    bpy.context.scene.strata.photo = photo
    bpy.context.scene.cursor.location = (0.0, 0.0, 0.0)
    _op("strata.reconstruct")
    yield from wait_until(lambda: any(j.stage == "fit" for j in rt.session.jobs.values()) or not rt.session.busy,
                          timeout=120, what="the fit")
    yield from _show(rt, "03_progress")
    yield from wait_until(lambda: not rt.session.busy, timeout=600, what="the job")
    yield from wait_until(lambda: bool(rt.imported) or rt.session.problem is not None, timeout=60, what="the import")
    first = bpy.data.collections[rt.imported[-1]]
    arm = next(o for o in first.objects if o.type == "ARMATURE")
    _frame(arm)
    yield from _show(rt, "04_imported")

    # 5-6. A second job, cancelled.
    bpy.context.scene.cursor.location = (1.2, 0.0, 0.0)
    _op("strata.reconstruct")
    yield 3.0
    _op("strata.cancel")
    # The server stops a job within a progress step (well under a second here), so the Cancelling... state
    # lasts only until the add-on's next timer tick: draw the window at once, as Blender does after a click,
    # and take that frame before the tick can apply the server's answer.
    with bpy.context.temp_override(**view3d_override()):
        bpy.ops.wm.redraw_timer(type="DRAW_WIN_SWAP", iterations=1)
    log(f"05_cancelling: cancelling={[j.cancelling for j in rt.session.jobs.values()]}")
    shot("05_cancelling")
    yield from wait_until(lambda: not rt.session.busy, timeout=120, what="the cancel")
    yield from _show(rt, "06_cancelled")

    # 7. A third job, and the server stopped in its middle.
    _op("strata.reconstruct")
    yield 4.0
    _op("strata.stop_server")
    yield from wait_until(lambda: not rt.session.busy, timeout=60, what="the lost job")
    yield 1.0
    yield from _show(rt, "07_server_stopped")

    # 7b. The server started again, then killed from outside in the middle of a job (a crash, not the button).
    _op("strata.connect")
    yield from wait_until(lambda: rt.session.connected, timeout=240, what="the local server again")
    _op("strata.reconstruct")
    yield 4.0
    os.kill(rt.server.pid, signal.SIGKILL)
    yield from wait_until(lambda: not rt.session.busy, timeout=60, what="the lost job")
    yield 1.0
    yield from _show(rt, "07b_server_killed")

    # 8. The first result again, from the History (no server needed).
    record = importlib.import_module(ADDON_MODULE + ".history").records(
        importlib.import_module(ADDON_MODULE + ".runtime").user_dir("results"))[-1]
    bpy.context.scene.cursor.location = (-1.2, 0.0, 0.0)
    _op("strata.import_asset", "EXEC_DEFAULT", filepath=str(record.result), name=record.name)
    with bpy.context.temp_override(**view3d_override()):
        bpy.ops.view3d.view_all()
    yield from _scroll(sidebar, 25)  # down to the History at the foot of the sidebar
    yield from _show(rt, "08_history_import_again")
    yield from _scroll(sidebar, -25)

    # 9. The armature at rest: the A-pose the meshes are bound in.
    arm.data.pose_position = "REST"
    _frame(arm)
    yield from _show(rt, "09_rest")
    log("objects:", sorted(o.name for o in bpy.context.scene.objects))
