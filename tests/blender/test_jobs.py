"""Jobs through a real strata-server: the synchronous (background) path and the UI path driven by the
timer callback, progress, cancel, errors in plain words, capability checks, release."""

from __future__ import annotations

import importlib
import json
import time
from pathlib import Path

import bpy
import numpy as np
import pytest

from .conftest import MODULE


def _collections(prefix: str) -> list[bpy.types.Collection]:
    return [c for c in bpy.data.collections if c.name.startswith(prefix)]


def _drive(runtime, predicate, timeout: float = 30.0) -> None:
    """What Blender's event loop does in the UI: call the timer callback until `predicate` holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out driving runtime.tick()"
        interval = runtime.tick()
        assert interval is not None
        time.sleep(min(interval, 0.05))


def test_status_line(connected) -> None:
    session = connected.RUNTIME.session
    line = session.status_line()
    assert line.startswith("Connected:") and "models" in line
    assert {"body", "reconstruct", "echo"} <= set(session.job_kinds())


def test_echo_synchronous_imports_result(connected, fresh_scene) -> None:
    assert bpy.ops.strata.run_job(job_kind="echo", params_json="{}") == {"FINISHED"}
    [collection] = _collections("Strata echo")
    objects = list(collection.objects)
    assert any(o.type == "ARMATURE" for o in objects) and any(o.type == "MESH" for o in objects)
    job_id = collection["strata_job_id"]
    assert job_id and all(o["strata_job_id"] == job_id for o in objects)
    assert collection["strata_result_file"].endswith(f"{job_id}.strata")
    # It joins the history, with its thumbnail, to be imported again later.
    history = importlib.import_module(f"{MODULE}.history")
    record = next(r for r in history.records(Path(collection["strata_result_file"]).parent, 100) if r.job_id == job_id)
    assert record.kind == "echo" and record.name == collection.name and record.thumbnail.exists()


def test_echo_through_the_timer_with_progress(connected, fresh_scene) -> None:
    """The UI path: the operator returns at once, the timer callback imports the result later."""
    runtime = connected
    runtime.FORCE_ASYNC = True
    session = runtime.RUNTIME.session
    assert bpy.ops.strata.run_job(job_kind="echo", params_json=json.dumps({"hold": 0.6})) == {"FINISHED"}
    assert session.busy and not _collections("Strata echo")
    seen = []

    def done() -> bool:
        job = session.current
        if job is not None:
            seen.append((job.stage, job.fraction, job.heartbeat_age))
        return bool(_collections("Strata echo"))

    _drive(runtime, done)
    assert not session.busy
    stages = {stage for stage, _, _ in seen}
    assert "hold" in stages, stages
    fractions = [f for stage, f, _ in seen if stage == "hold"]
    assert max(fractions) > min(fractions)  # the progress bar moved
    assert all(age < 5.0 for _, _, age in seen)  # the heartbeat stayed fresh


def test_result_imported_by_the_timer_is_one_undo_step(connected, fresh_scene) -> None:
    """Ctrl+Z after a job's result arrived removes that human, and only it."""
    runtime = connected
    runtime.FORCE_ASYNC = runtime.FORCE_UNDO = True
    try:
        session = runtime.RUNTIME.session
        bpy.ops.ed.undo_push(message="before the job")
        bpy.ops.strata.run_job(job_kind="echo", params_json="{}")
        _drive(runtime, lambda: bool(_collections("Strata echo")) and not session.busy)
        assert bpy.ops.ed.undo() == {"FINISHED"}
        assert not _collections("Strata echo")
        assert bpy.ops.ed.redo() == {"FINISHED"}
        assert len(_collections("Strata echo")) == 1
    finally:
        runtime.FORCE_UNDO = False


def test_cancel(connected, fresh_scene) -> None:
    runtime = connected
    runtime.FORCE_ASYNC = True
    session = runtime.RUNTIME.session
    bpy.ops.strata.run_job(job_kind="echo", params_json=json.dumps({"hold": 10.0}))
    _drive(runtime, lambda: session.current is not None and session.current.stage == "hold")
    started = time.monotonic()
    assert bpy.ops.strata.cancel() == {"FINISHED"}
    # Until the server stops it, the panel says it is cancelling (no second Cancel button).
    assert session.current is not None and session.current.cancelling
    from .test_panel import _draw

    log = _draw(bpy.types.STRATA_PT_main)
    assert "Cancelling" in " ".join(kw.get("text", "") for name, _, kw in log if name == "label")
    assert not [args for name, args, _ in log if name == "operator" and args[0] == "strata.cancel"]
    _drive(runtime, lambda: not session.busy)
    assert time.monotonic() - started < 3.0
    # A cancel the user asked for is news, not an error.
    assert session.problem is None and "nothing was imported" in session.notice
    assert not _collections("Strata echo")


def test_job_error_in_plain_words(connected, fresh_scene) -> None:
    with pytest.raises(RuntimeError) as err:
        bpy.ops.strata.run_job(job_kind="echo", params_json=json.dumps({"fail": "no_person"}))
    problem = connected.RUNTIME.session.problem
    assert problem.code == "no_person"
    assert "one person is fully visible" in problem.advice
    assert problem.advice in str(err.value)


def test_generate_layered_from_the_panel(connected, fresh_scene) -> None:
    """Layered mode: the layers the panel lists, each garment imported as its own object with its style."""
    from .test_panel import _draw

    ok, why = connected.RUNTIME.session.supports("generate")
    if not ok:
        pytest.skip(f"server cannot run generate jobs: {why}")
    settings = bpy.context.scene.strata
    settings.layers.clear()
    assert bpy.ops.strata.layer_add(kind="BOTTOM") == {"FINISHED"}
    settings.layers[-1].style = "skirt"
    settings.layers[-1].color = (0.8, 0.1, 0.1)
    assert bpy.ops.strata.layer_add(kind="TOP") == {"FINISHED"}
    assert settings.layers[-1].style == "tshirt"  # the first style the library publishes for a top
    assert bpy.ops.strata.generate() == {"FINISHED"}
    [collection] = _collections("Layered human")  # named by what it is, not by job id
    kinds = sorted(o.get("strata_layer_kind") for o in collection.objects if o.type == "MESH")
    assert kinds == ["body", "bottom", "top"]
    skirt = next(o for o in collection.objects if o.get("strata_layer_kind") == "bottom")
    assert skirt.get("strata_layer_name") == "Skirt" and skirt.name == f"{collection.name} Skirt"
    body = next(o for o in collection.objects if o.get("strata_layer_kind") == "body")
    assert sum(m.type == "MASK" for m in body.modifiers) == 2
    # anny's phenotypes stay sliders after import, and the clothes follow them.
    sliders = body.data.shape_keys.key_blocks
    assert "Heavier" in sliders and (sliders["Heavier"].slider_min, sliders["Heavier"].slider_max) == (0.0, 1.0)
    sliders["Heavier"].value = 1.0
    bpy.context.view_layer.update()
    assert skirt.data.shape_keys.key_blocks["Heavier"].value == pytest.approx(1.0)
    # The sidebar's Shape panel shows them for the selected human (selected by any of its parts).
    bpy.context.view_layer.objects.active = skirt
    assert bpy.types.STRATA_PT_shape.poll(bpy.context)
    shown = [(kw.get("text"), kw.get("slider")) for name, args, kw in _draw(bpy.types.STRATA_PT_shape)
             if name == "prop"]
    assert ("Heavier", True) in shown and len(shown) == len(sliders) - 1
    # ... and the bones follow on request: made Male, the body's own joints move (shoulders broaden).
    assert "strata.fit_bones" in [args[0] for name, args, _ in _draw(bpy.types.STRATA_PT_shape) if name == "operator"]
    arm = next(o for o in collection.objects if o.type == "ARMATURE")
    before = np.array([b.head_local for b in arm.data.bones])
    sliders["Heavier"].value, sliders["Male"].value = 0.0, 1.0
    assert bpy.ops.strata.fit_bones() == {"FINISHED"}
    moved = np.linalg.norm(np.array([b.head_local for b in arm.data.bones]) - before, axis=1)
    assert 0.01 < moved.max() < 0.1
    # The Selected Human panel lists its garments by what they are, not by their long object names.
    bpy.context.view_layer.objects.active = body
    labels = [kw.get("text") for name, _, kw in _draw(bpy.types.STRATA_PT_garments) if name == "label"]
    assert sorted(labels) == ["Bottom: Skirt", "Top: T-shirt"]


def test_reconstruct_without_photo(connected) -> None:
    bpy.context.scene.strata.photo = ""
    with pytest.raises(RuntimeError, match="No photo"):
        bpy.ops.strata.reconstruct()


def test_body(connected, fresh_scene) -> None:
    ok, why = connected.RUNTIME.session.supports("body")
    if not ok:
        pytest.skip(f"server cannot run body jobs: {why}")
    bpy.context.scene.strata.body.height = 1.8
    try:
        result = bpy.ops.strata.body()
    except RuntimeError as exc:
        if "No module named" in str(exc) or "unavailable" in str(exc):
            pytest.skip(f"body pipeline not installed on the server: {exc}")
        raise
    assert result == {"FINISHED"}
    [collection] = _collections("Human")
    kinds = {o.get("strata_layer_kind") for o in collection.objects}
    assert "body" in kinds
    arm = next(o for o in collection.objects if o.type == "ARMATURE")
    top = max(b.head_local.z for b in arm.data.bones)
    assert 1.4 < top < 1.9


def test_release(connected) -> None:
    assert bpy.ops.strata.release() == {"FINISHED"}
    assert "models" in connected.RUNTIME.session.last_released


def test_unreachable_server_says_what_to_do(runtime, prefs) -> None:
    from .conftest import free_address

    prefs.address = free_address()
    prefs.timeout = 0.5
    with pytest.raises(RuntimeError) as err:
        bpy.ops.strata.connect()
    assert "strata-server" in str(err.value)  # the advice names the way out
    assert not runtime.RUNTIME.session.connected
    assert MODULE in bpy.context.preferences.addons


def test_reconstruct_from_photo(connected, fresh_scene, tmp_path) -> None:
    """With the pipeline: a photo in, a human out. Without it: the reason, in words, before sending."""
    import os
    from pathlib import Path

    import numpy as np

    from .asset_builder import png_bytes

    photo = tmp_path / "person.png"
    photo.write_bytes(png_bytes(np.full((64, 48, 3), 200, np.uint8)))
    settings = bpy.context.scene.strata
    settings.photo = str(photo)
    ok, why = connected.RUNTIME.session.supports("reconstruct")
    if not ok:
        with pytest.raises(RuntimeError, match="cannot make humans from photos"):
            bpy.ops.strata.reconstruct()
        assert connected.RUNTIME.session.problem.code == "unavailable"
        return
    if not os.environ.get("STRATA_TEST_RECONSTRUCT"):
        pytest.skip("reconstruct is available; set STRATA_TEST_RECONSTRUCT=1 to run it (minutes on a CPU)")
    example = os.environ.get("STRATA_TEST_PHOTO")  # a real photo of a person for the real pipeline
    if example:
        settings.photo = example
    settings.reconstruct.quality = "fast"
    assert bpy.ops.strata.reconstruct() == {"FINISHED"}, connected.RUNTIME.session.problem
    [collection] = _collections("Strata reconstruct")
    assert any(o.get("strata_source_image") == str(Path(bpy.path.abspath(settings.photo)))
               for o in collection.objects)


def test_background_job_without_connecting_first(runtime, prefs, server, fresh_scene) -> None:
    """A `blender -b` script may call a job operator first thing: it connects and waits by itself."""
    runtime.shutdown()
    prefs.address = server
    assert bpy.ops.strata.run_job(job_kind="echo", params_json="{}") == {"FINISHED"}
    assert _collections("Strata echo")
