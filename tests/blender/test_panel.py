"""The panels' draw code, run against a recording layout (module mode has no UI to draw into).

Catches what would otherwise only show in the GUI: a UILayout method that does not exist, a property
name that is not on its data, an operator id that is not registered."""

from __future__ import annotations

import time
import types
from pathlib import Path

import bpy
import pytest

from .conftest import MODULE

LAYOUT_FUNCTIONS = set(bpy.types.UILayout.bl_rna.functions.keys())
CONTAINERS = {"row", "column", "box", "split", "grid_flow", "column_flow"}


class FakeLayout:
    """Checks every call the way UILayout would fail on it, and records them."""

    def __init__(self, log: list) -> None:
        object.__setattr__(self, "log", log)

    def __setattr__(self, name: str, value) -> None:
        assert name in bpy.types.UILayout.bl_rna.properties, f"UILayout has no attribute {name!r}"
        self.log.append(("set", (name, value), {}))

    def __getattr__(self, name: str):
        assert name in LAYOUT_FUNCTIONS, f"UILayout has no method {name!r}"

        def call(*args, **kwargs):
            self.log.append((name, args, kwargs))
            if name in CONTAINERS:
                return FakeLayout(self.log)
            if name in ("prop", "prop_menu_enum"):
                data, prop = args[0], args[1]
                assert prop in data.bl_rna.properties, f"{type(data).__name__} has no property {prop!r}"
            if name in ("operator", "operator_menu_enum"):
                category, op = args[0].split(".")
                assert hasattr(getattr(bpy.ops, category), op), f"no operator {args[0]}"
                return types.SimpleNamespace()
            if name == "template_list":
                assert hasattr(bpy.types, args[0]), f"no UIList {args[0]}"
            return None

        return call


def _draw(panel: type, context=None) -> list:
    log: list = []
    panel.draw(types.SimpleNamespace(layout=FakeLayout(log)), context or bpy.context)
    return log


@pytest.mark.parametrize("mode", ["RECONSTRUCT", "GENERATE", "BODY"])
def test_panels_draw_in_every_mode(addon, runtime, mode: str) -> None:
    settings = bpy.context.scene.strata
    settings.mode = mode
    if mode == "GENERATE" and not settings.layers:
        bpy.ops.strata.layer_add(kind="TOP")
    log = _draw(bpy.types.STRATA_PT_main)
    ops = [args[0] for name, args, _ in log if name == "operator"]
    assert f"strata.{ {'RECONSTRUCT': 'reconstruct', 'GENERATE': 'generate', 'BODY': 'body'}[mode]}" in ops
    params = _draw(bpy.types.STRATA_PT_parameters)
    assert any(name == "prop" for name, _, _ in params)
    _draw(bpy.types.STRATA_PT_server)


def test_photo_mode_offers_garments_as_separate_objects(addon, runtime) -> None:
    """The Photo mode's switch for layers sits in the main panel (not among the other parameters) and goes
    into the job's parameters."""
    import importlib

    read_params = importlib.import_module(f"{MODULE}.properties").read_params
    specs = importlib.import_module(f"{MODULE}._lib.wire.jobs").JOB_SPECS
    settings = bpy.context.scene.strata
    settings.mode = "RECONSTRUCT"
    shown = [(args[1], kwargs.get("text")) for name, args, kwargs in _draw(bpy.types.STRATA_PT_main)
             if name == "prop"]
    assert ("layers", "Garments as separate objects") in shown
    labels = [kwargs.get("text") for name, _, kwargs in _draw(bpy.types.STRATA_PT_main) if name == "label"]
    assert "Rest pose:" in labels and any(prop == "rest_pose" for prop, _ in shown)  # up front: A or T
    items = {i.identifier: i.name for i in settings.reconstruct.bl_rna.properties["rest_pose"].enum_items}
    assert items == {"A": "A-pose", "T": "T-pose"}
    assert all(args[1] != "layers" for name, args, _ in _draw(bpy.types.STRATA_PT_parameters) if name == "prop")
    for value in (True, False):
        settings.reconstruct.layers = value
        assert read_params(settings.reconstruct, specs["reconstruct"])["layers"] is value


def test_main_panel_shows_progress_heartbeat_and_problem(addon, runtime) -> None:
    session_mod = __import__(f"{MODULE}.session", fromlist=["JobView"])
    rt = runtime.RUNTIME
    saved = rt.session
    rt.session = session_mod.Session(address="tcp://127.0.0.1:1", connected=True)
    try:
        job = session_mod.JobView("abcdef0123456789", "body", 1, stage="fit", fraction=0.4, text="step 2/5")
        job.last_heard = time.monotonic() - 0.5
        rt.session.jobs[job.job_id] = job
        rt.session.problem = session_mod.explain("no_person", "no person found")
        log = _draw(bpy.types.STRATA_PT_main)
    finally:
        rt.session = saved
    progress = [kw for name, _, kw in log if name == "progress"]
    assert progress and progress[0]["factor"] == pytest.approx(0.4)
    assert progress[0]["text"] == "Fitting the body (40%)"  # the stage in words, not its identifier
    labels = " ".join(kw.get("text", "") for name, _, kw in log if name == "label")
    assert "Step 2/5" in labels  # the step's own text, wrapped under the bar
    assert "server alive" in labels and "abcdef01" in labels
    assert "No person found." in labels and "fully visible" in labels
    assert ("operator", ("strata.cancel",), {"icon": "CANCEL"}) in log


def test_layer_list_and_preferences_draw(addon) -> None:
    """A layer's row is the layer in words and its colour (dropdowns side by side were cut to three letters at
    the sidebar's default width); the active layer's style and colour are edited, labelled, under the list."""
    settings = bpy.context.scene.strata
    settings.mode = "GENERATE"
    settings.layers.clear()
    for kind, style in (("HAIR", "bob"), ("TOP", "tshirt")):
        bpy.ops.strata.layer_add(kind=kind)
        settings.layers[-1].style = style
    for layer, title in zip(settings.layers, ("Hair: Bob", "Top: T-shirt"), strict=True):
        log: list = []
        bpy.types.STRATA_UL_layers.draw_item(None, bpy.context, FakeLayout(log), settings, layer, 0,
                                             settings, "layer_index", 0)
        assert [args[1] for name, args, _ in log if name == "prop"] == ["enabled", "color"]
        assert [kw.get("text") for name, _, kw in log if name == "label"] == [title]
    settings.layer_index = 1
    shown = [(args[1], kw.get("text")) for name, args, kw in _draw(bpy.types.STRATA_PT_main) if name == "prop"]
    assert ("style", "Top style") in shown and ("color", "Colour") in shown
    prefs = bpy.context.preferences.addons[MODULE].preferences
    log = []
    proxy = types.SimpleNamespace(layout=FakeLayout(log), bl_rna=prefs.bl_rna, start_local=prefs.start_local)
    type(prefs).draw(proxy, bpy.context)
    drawn = {args[1] for name, args, _ in log if name == "prop"}
    assert {"address", "curve_dir", "server_env", "smplx_dir", "default_quality"} <= drawn


def test_body_modes_show_the_rest_pose_up_front(addon, runtime) -> None:
    """Body and Layered modes offer the rest pose beside the rig (as the Photo mode does), in words; the
    Parameters leave it out, and grey the SMPL-X file choice unless the body model is SMPL-X."""
    settings = bpy.context.scene.strata
    items = {i.identifier: i.name for i in settings.body.bl_rna.properties["pose"].enum_items}
    assert items == {"rest": "Model's own", "A": "A-pose", "T": "T-pose"}
    for mode in ("BODY", "GENERATE"):
        settings.mode = mode
        log = _draw(bpy.types.STRATA_PT_main)
        assert ("pose", "") in [(args[1], kw.get("text")) for name, args, kw in log if name == "prop"]
        assert "Rest pose:" in [kw.get("text") for name, _, kw in log if name == "label"]
    for model, active in (("anny", False), ("smplx", True)):
        settings.body.body_model = model
        log = _draw(bpy.types.STRATA_PT_parameters)
        props = [i for i, (name, args, _) in enumerate(log) if name == "prop"]
        assert "pose" not in [log[i][1][1] for i in props]
        at = next(i for i in props if log[i][1][1] == "smplx_gender")
        assert ("set", ("active", active), {}) in log[at - 2:at]
    settings.body.body_model = "anny"


def test_layer_operators_keep_order(addon) -> None:
    settings = bpy.context.scene.strata
    settings.layers.clear()
    for kind in ("BOTTOM", "TOP", "HAIR"):
        bpy.ops.strata.layer_add(kind=kind)
    settings.layer_index = 2
    bpy.ops.strata.layer_move(direction=-1)
    assert [layer.kind for layer in settings.layers] == ["BOTTOM", "HAIR", "TOP"] and settings.layer_index == 1
    bpy.ops.strata.layer_remove()
    assert [layer.kind for layer in settings.layers] == ["BOTTOM", "TOP"]


def test_photo_preview(addon) -> None:
    import numpy as np

    from .asset_builder import png_bytes

    photo = Path(bpy.app.tempdir or "/tmp") / "strata-preview-test.png"
    photo.write_bytes(png_bytes(np.full((32, 24, 3), 128, np.uint8)))
    settings = bpy.context.scene.strata
    settings.mode = "RECONSTRUCT"
    settings.photo = str(photo)
    log = _draw(bpy.types.STRATA_PT_main)
    panel = __import__(f"{MODULE}.panel", fromlist=["photo_icon"])
    preview = panel._previews[str(photo)]
    assert tuple(preview.image_size) != (0, 0)  # loaded; background mode has no icons (icon_id 0) to draw
    icons = [kw["icon_value"] for name, _, kw in log if name == "template_icon"]
    assert icons == ([preview.icon_id] if preview.icon_id else [])
    # The folder button beside the field browses images only, and its pick becomes the photo.
    assert ("operator", ("strata.pick_photo",), {"text": "", "icon": "FILEBROWSER"}) in log
    glob = bpy.ops.strata.pick_photo.get_rna_type().properties["filter_glob"].default
    assert set(glob.split(";")) == {"*.png", "*.jpg", "*.jpeg", "*.webp"}
    settings.photo = ""
    assert bpy.ops.strata.pick_photo("EXEC_DEFAULT", filepath=str(photo)) == {"FINISHED"}
    assert settings.photo == str(photo)


def test_backends_panel_lists_what_runs_and_why_not(addon, runtime) -> None:
    """Protocol 1.1's registry report: the backend "auto" runs per stage, and each one that cannot, with
    the server's reason; a kind listed as unavailable is refused before anything is sent."""
    session_mod = __import__(f"{MODULE}.session", fromlist=["Session"])
    rt = runtime.RUNTIME
    saved = rt.session
    rt.session = session_mod.Session(address="tcp://127.0.0.1:1", connected=True)
    rt.session.welcome = {"capabilities": {
        "backends": {
            "segmentation": {"alpha": {"ok": True, "reason": "", "needs": ["cutout"]},
                             "mediapipe": {"ok": True, "reason": "", "needs": []}},
            "rasterizer": {"nvdiffrast": {"ok": False, "reason": "needs CUDA (this server runs on cpu)", "needs": []},
                           "torch": {"ok": True, "reason": "", "needs": []}},
            "multiview": {"pshuman": {"ok": False, "reason": "no weights in /w/PSHuman", "needs": []}}},
        "job_kinds": {"body": {"available": True}},
        "unavailable_kinds": {"generate": "needs CUDA (this server runs on cpu)"}}}
    try:
        lines = rt.session.backend_lines()
        log = _draw(bpy.types.STRATA_PT_backends)
        ok, why = rt.session.supports("generate")
    finally:
        rt.session = saved
    assert ("Segmentation: mediapipe", "runs") in lines  # alpha runs only for cut-outs
    assert ("Rasterizer: torch", "runs") in lines and ("Multiview: nothing can run", "none") in lines
    assert ("nvdiffrast: needs CUDA (this server runs on cpu)", "unavailable") in lines
    labels = " ".join(kw.get("text", "") for name, _, kw in log if name == "label")
    assert "Rasterizer: torch" in labels and "needs CUDA" in labels
    assert not ok and "needs CUDA" in why


def test_messages_wrap_to_the_sidebars_width_without_cutting_words(addon, runtime) -> None:
    """wrap_lines keeps every line within the width the sidebar gives (measured, not counted in characters),
    keeps words whole and cuts only a word longer than a line; a narrow and a wide sidebar both show the
    whole problem text."""
    import importlib

    panel = importlib.import_module(f"{MODULE}.panel")
    text = ("The SMPL-X body model cannot run here: no SMPL-X folder is set; register at "
            "https://smpl-x.is.tue.mpg.de and put SMPLX_NEUTRAL.npz in /home/artist/models/smplx")

    def measure(t):
        return 7.0 * len(t)  # a fixed-pitch font of 7 px

    for width in (150, 260, 600):
        lines = panel.wrap_lines(text, width, measure)
        assert all(measure(line) <= width for line in lines), (width, lines)
        assert " ".join(lines).split() == text.split() or "".join(lines).replace(" ", "") == text.replace(" ", "")
        if width >= 260:  # lines break at spaces only: every word whole on its line
            assert {w for line in lines for w in line.split()} == set(text.split())
    assert len(panel.wrap_lines(text, 600, measure)) < len(panel.wrap_lines(text, 150, measure))
    rt = runtime.RUNTIME
    session_mod = importlib.import_module(f"{MODULE}.session")
    saved = rt.session
    rt.session = session_mod.Session(address="tcp://127.0.0.1:1", connected=True)
    try:
        rt.session.problem = session_mod.explain("unavailable", text)
        log = _draw(bpy.types.STRATA_PT_main)
    finally:
        rt.session = saved
    shown = " ".join(kw.get("text", "") for name, _, kw in log if name == "label")
    assert "SMPLX_NEUTRAL.npz" in shown and "…" not in shown and "..." not in shown.replace("...", "", 0)


def test_a_message_about_the_inputs_goes_when_the_user_changes_them(addon, runtime, tmp_path) -> None:
    """An error about the last photo or mode is stale once another photo or mode is picked; a connection
    problem stays (it is about the server, not the inputs); 'no person' does not repeat itself."""
    import importlib

    session_mod = importlib.import_module(f"{MODULE}.session")
    rt = runtime.RUNTIME
    settings = bpy.context.scene.strata
    saved = rt.session
    rt.session = session_mod.Session(address="tcp://127.0.0.1:1", connected=True)
    try:
        import numpy as np

        from .asset_builder import png_bytes

        for name in ("another.png", "third.png"):
            (tmp_path / name).write_bytes(png_bytes(np.zeros((4, 4, 3), np.uint8)))
        settings.mode = "RECONSTRUCT"
        rt.session.problem = session_mod.explain("no_person", "no person found")
        assert "No person" not in rt.session.problem.advice
        settings.photo = str(tmp_path / "another.png")
        assert rt.session.problem is None
        # A file that cannot be a photo is said at once, before any job.
        (tmp_path / "notes.txt").write_text("not a photo")
        settings.photo = str(tmp_path / "notes.txt")
        assert rt.session.problem is not None and "notes.txt is not a PNG, JPEG or WebP" in rt.session.problem.message
        settings.photo = str(tmp_path / "another.png")
        assert rt.session.problem is None
        rt.session.problem = session_mod.explain("invalid_params", "layers: at most one style per layer")
        settings.mode = "BODY"
        assert rt.session.problem is None
        rt.session.problem = session_mod.explain("server_lost", "the server stopped answering")
        settings.mode = "RECONSTRUCT"
        settings.photo = str(tmp_path / "third.png")
        assert rt.session.problem is not None and rt.session.problem.code == "server_lost"
    finally:
        rt.session = saved


def test_choices_read_as_words_with_explanations(addon) -> None:
    """Rigs and body models show what they are (not 'Cmu mb'); texture sizes in pixels, age in years; the
    quality's preference choice says so."""
    settings = bpy.context.scene.strata
    rig = settings.body.bl_rna.properties["rig"]
    titles = {item.identifier: (item.name, item.description) for item in rig.enum_items}
    assert titles["cmu_mb"][0] == "CMU mocap (31)" and "BVH" in titles["cmu_mb"][1]
    assert titles["smplx"][0] == "SMPL-X (55)" and "AMASS" in titles["smplx"][1]
    models = {item.identifier: item.name for item in settings.body.bl_rna.properties["body_model"].enum_items}
    assert models == {"anny": "anny (built in)", "smplx": "SMPL-X (your files)"}
    assert settings.body.bl_rna.properties["smplx_gender"].name == "SMPL-X file"  # not "Smplx gender"
    assert settings.body.bl_rna.properties["texture_size"].subtype == "PIXEL"
    age = settings.body.bl_rna.properties["age"]  # in years, whole ones, as an artist reads an age
    assert age.name == "Age (years)" and (age.default, age.hard_min, age.hard_max, age.precision) == (25, 1, 90, 0)
    quality = settings.reconstruct.bl_rna.properties["quality"]
    assert quality.enum_items[0].name == "As in preferences"


def test_a_running_job_redraws_the_sidebar_once_a_second_not_every_tick(addon, runtime, monkeypatch) -> None:
    """No news from the server: the sidebar redraws for the job's clock once a second, not ten times; news
    redraws at once."""
    import importlib
    import types as _types

    rt_mod = runtime
    session_mod = importlib.import_module(f"{MODULE}.session")
    rt = rt_mod.RUNTIME
    calls = []
    monkeypatch.setattr(rt_mod, "_redraw", lambda: calls.append(1))
    news = []
    saved_session, saved_conn = rt.session, rt.connection
    rt.session = session_mod.Session(address="tcp://127.0.0.1:1", connected=True)
    rt.session.jobs["abc"] = session_mod.JobView("abc", "body", 1)
    rt.connection = _types.SimpleNamespace(drain=lambda: [news.pop()] if news else [])
    try:
        rt.last_redraw = 0.0
        for _ in range(10):
            rt_mod.tick()
        assert len(calls) == 1
        rt.last_redraw -= 1.1
        rt_mod.tick()
        assert len(calls) == 2
        update = importlib.import_module(f"{MODULE}.connection").Update
        news.append(update("progress", "abc", {"stage": "fit", "fraction": 0.5}))
        rt_mod.tick()
        assert len(calls) == 3
    finally:
        rt.session, rt.connection = saved_session, saved_conn


def test_the_results_folder_is_one_click_away(addon, runtime, fresh_scene, tmp_path) -> None:
    """After an import the main panel offers to open the folder of its saved result; a folder that is gone
    is a clear error, not a silent nothing."""
    from .asset_builder import make_test_asset
    from .conftest import MODULE as _module

    lib_container = __import__(f"{_module}._lib.asset.container", fromlist=["save"])
    lib_schema = __import__(f"{_module}._lib.asset.schema", fromlist=["Rig"])
    path = tmp_path / "saved.strata"
    lib_container.save(make_test_asset(lib_schema), path)
    assert bpy.ops.strata.import_asset(filepath=str(path)) == {"FINISHED"}
    runtime.RUNTIME.imported.append("saved")
    log = _draw(bpy.types.STRATA_PT_main)
    opened = [kw for name, args, kw in log if name == "operator" and args[0] == "strata.open_folder"]
    assert opened and opened[0]["text"] == "Open Results Folder"
    with pytest.raises(RuntimeError, match="does not exist"):
        bpy.ops.strata.open_folder(path=str(tmp_path / "gone" / "x.strata"))
    # The tooltip names the folder (the panel prints no long paths, which would break mid-word).
    tip = bpy.types.STRATA_OT_open_folder.description(bpy.context, types.SimpleNamespace(path=str(path)))
    assert tip == f"Open {tmp_path} in the system's file browser"


def test_an_older_or_absent_server_is_said_in_words(addon) -> None:
    """A server without the layered job, or one that is gone, is described by what the user makes, never by
    request or diagnostic names (generate, echo, hello, watch)."""
    import importlib

    connection = importlib.import_module(f"{MODULE}.connection")
    welcome = {"capabilities": {"job_kinds": {"body": {}, "echo": {}, "reconstruct": {}}}}
    code, message = connection.refusal(welcome, "generate")
    assert code == "unknown_job_kind" and "cannot make layered humans" in message
    assert "humans from photos and bodies" in message and "echo" not in message and "generate" not in message
    assert connection.refusal(welcome, "body") is None
    client = importlib.import_module(f"{MODULE}._lib.client")
    lost = connection._in_words(client.ServerUnavailable("tcp://127.0.0.1:5555", 5.0, "watch"))
    assert lost == "No Strata server answered at tcp://127.0.0.1:5555 within 5 s"
