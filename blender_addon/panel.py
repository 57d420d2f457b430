"""The sidebar panel (View3D > Sidebar > Strata). It only reads state; every action is an operator.

What a user needs to see while a job runs on a possibly remote GPU: is the server there, on what
device, with how much memory free; what stage the job is in and how far along; that the server is
still alive (heartbeat age); and when something fails, what to do about it.
"""

from typing import Any

import bpy

from . import operators, runtime
from .properties import MODE_KINDS, style_title

_previews: Any = None


def register_previews() -> None:
    global _previews
    import bpy.utils.previews

    _previews = bpy.utils.previews.new()


def unregister_previews() -> None:
    global _previews
    if _previews is not None:
        bpy.utils.previews.remove(_previews)
        _previews = None


def forget_preview(path: str) -> None:
    """Called when the photo path changes, so the new file gets a fresh preview."""
    if _previews is not None and path in _previews:
        del _previews[path]


def photo_icon(path: str) -> int:
    """Icon id of a preview of the photo at `path` (0 when there is none)."""
    if _previews is None or not path:
        return 0
    full = bpy.path.abspath(path)
    try:
        preview = _previews.get(path) or _previews.load(path, full, "IMAGE")
    except (KeyError, RuntimeError, OSError):
        return 0
    return preview.icon_id


#: The server's progress stages in words (its stage names are identifiers).
STAGE_TITLES = {
    "queued": "Waiting in the queue", "start": "Starting", "load": "Loading", "load_model": "Loading the models",
    "segment": "Finding the person", "segmentation": "Finding the person", "pose": "Reading the pose",
    "fit": "Fitting the body", "surface": "Shaping the clothes", "views": "Generating views",
    "carve": "Carving the surface", "dress": "Dressing", "shape": "Shaping the body", "texture": "Texturing",
    "rig": "Rigging", "assemble": "Assembling", "hold": "Holding (test job)", "echo": "Echo (test job)",
}


def stage_title(stage: str) -> str:
    return STAGE_TITLES.get(stage, stage.replace("_", " ").capitalize())


#: Pixels (at UI scale 1) a label loses to the panel's and a box's margins, and to an icon.
TEXT_MARGIN, ICON_WIDTH = 40, 22
#: Share of the rest a measured line may fill: labels are drawn with padding and hinting the font measure
#: does not see (at 1.0 lines a word too long were cut with "..." in Blender 4.3's sidebar).
TEXT_FIT = 0.84


def wrap_lines(text: str, width_px: float, measure: Any) -> list[str]:
    """``text`` broken at spaces into lines no wider than ``width_px`` by ``measure(str) -> px``; a word
    wider than a line gets a line of its own, cut at characters (a long path)."""
    lines: list[str] = []
    for paragraph in text.split("\n"):
        line = ""
        for word in paragraph.split(" "):
            candidate = f"{line} {word}" if line else word
            if measure(candidate) <= width_px:
                line = candidate
                continue
            if line:
                lines.append(line)
            while measure(word) > width_px and len(word) > 1:  # cut a word longer than a line
                cut = max(1, max(k for k in range(1, len(word) + 1) if measure(word[:k]) <= width_px or k == 1))
                lines.append(word[:cut])
                word = word[cut:]
            line = word
        lines.append(line)
    return lines


def _measure(context: bpy.types.Context) -> tuple[Any, float]:
    """(text width in pixels of Blender's UI font at this scale, the scale)."""
    scale = context.preferences.system.ui_scale or 1.0  # 0 without a window (background mode)
    points = context.preferences.ui_styles[0].widget.points or 11.0
    try:
        import blf

        blf.size(0, points * scale)
        if not 0.3 * points * scale < blf.dimensions(0, "M")[0] < 2.0 * points * scale:
            raise RuntimeError("no usable font metrics")
        return (lambda t: blf.dimensions(0, t)[0]), scale
    except Exception:  # no font metrics (background mode): a typical glyph's width
        return (lambda t: 0.55 * points * scale * len(t)), scale


def _wrapped(layout: bpy.types.UILayout, text: str, icon: str = "NONE",
             context: bpy.types.Context | None = None) -> None:
    """``text`` as labels wrapped to the sidebar's real width (measured with the UI font), so no word is cut
    at any sidebar width; the icon on the first line, the rest indented under it."""
    context = context or bpy.context
    measure, scale = _measure(context)
    region = getattr(context, "region", None)
    width = (region.width if region is not None and region.width > 1 else 300 * scale)
    usable = TEXT_FIT * (width - (TEXT_MARGIN + (ICON_WIDTH if icon != "NONE" else 0)) * scale)
    col = layout.column(align=True)
    for i, line in enumerate(wrap_lines(text, max(usable, 60 * scale), measure) or [""]):
        col.label(text=line, icon=icon if i == 0 else "BLANK1" if icon != "NONE" else "NONE")


class STRATA_UL_layers(bpy.types.UIList):
    """Garment layers to generate, inner first."""

    def draw_item(self, context: bpy.types.Context, layout: bpy.types.UILayout, data: Any, item: Any,
                  icon: int, active_data: Any, active_propname: str, index: int = 0) -> None:
        # A row says what the layer is in words ("Top: T-shirt"): dropdowns side by side here are cut to three
        # letters at the default sidebar width, so the active layer's style and colour are edited under the list.
        row = layout.row(align=True)
        row.prop(item, "enabled", text="")
        row.label(text=layer_title(item))
        swatch = row.row()
        swatch.ui_units_x = 1.5
        swatch.prop(item, "color", text="")


def layer_title(item: Any) -> str:
    """The layer in words ("Top: T-shirt"): its kind, and its style as the style dropdown names it."""
    kind = item.kind.capitalize()
    return f"{kind}: {style_title(item.style)}" if item.style else kind


class _Panel:
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Strata"


class STRATA_PT_main(_Panel, bpy.types.Panel):
    """Make a human: mode, inputs, run, progress."""

    bl_idname = "STRATA_PT_main"
    bl_label = "Strata"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        settings = context.scene.strata
        session = runtime.RUNTIME.session
        layout.row().prop(settings, "mode", expand=True)

        if settings.mode == "RECONSTRUCT":
            row = layout.row(align=True)
            row.prop(settings, "photo")
            row.operator("strata.pick_photo", text="", icon="FILEBROWSER")  # images only, with thumbnails
            icon = photo_icon(settings.photo)
            if icon:
                layout.template_icon(icon_value=icon, scale=8.0)
        elif settings.mode == "GENERATE":
            row = layout.row()
            row.template_list("STRATA_UL_layers", "", settings, "layers", settings, "layer_index", rows=3)
            col = row.column(align=True)
            col.operator_menu_enum("strata.layer_add", "kind", icon="ADD", text="")
            col.operator("strata.layer_remove", icon="REMOVE", text="")
            col.separator()
            col.operator("strata.layer_move", icon="TRIA_UP", text="").direction = -1
            col.operator("strata.layer_move", icon="TRIA_DOWN", text="").direction = 1
            if 0 <= settings.layer_index < len(settings.layers):  # the active layer, with labels
                layer = settings.layers[settings.layer_index]
                col = layout.column(align=True)
                col.use_property_split, col.use_property_decorate = True, False  # labels left, fields aligned
                col.prop(layer, "style", text=f"{layer.kind.capitalize()} style")
                col.prop(layer, "color", text="Colour")
            layout.prop(settings, "seed")

        row = layout.row(align=True)  # the two choices every mode has, up front
        if settings.mode == "RECONSTRUCT":
            row.prop(settings.reconstruct, "rig", text="Rig")
            # The rest pose the armature is bound in (the photo's pose goes on it): what an animator meets first.
            row = layout.row()
            row.label(text="Rest pose:")
            row.prop(settings.reconstruct, "rest_pose", expand=True)
            layout.prop(settings.reconstruct, "quality", text="Quality")
            layout.prop(settings.reconstruct, "layers", text="Garments as separate objects")
        else:
            row.prop(settings.body, "rig", text="Rig")
            row = layout.row()
            row.label(text="Rest pose:")
            row.prop(settings.body, "pose", text="")

        kind = MODE_KINDS[settings.mode]
        run = layout.row()
        run.scale_y = 1.5
        run.enabled = not session.busy
        run.operator(f"strata.{kind}", icon="PLAY")

        job = session.current
        if session.busy:
            box = layout.box()
            if job is None:
                box.label(text="Sending the job...", icon="EXPORT")
            else:
                # The bar holds the stage in words (it cannot wrap); the step's own text wraps under it.
                box.progress(factor=job.fraction, type="BAR", text=f"{stage_title(job.stage)} ({job.fraction:.0%})")
                if job.text:
                    _wrapped(box, job.text[0].upper() + job.text[1:], context=context)
                age = job.heartbeat_age
                alive = "server alive" if age < 3.0 else f"no word from the server for {age:.0f} s"
                _wrapped(box, f"{KIND_TITLES.get(job.kind, job.kind)} job {job.job_id[:8]} | {job.state} | "
                              f"{job.elapsed:.0f} s | {alive}",
                         icon="TIME", context=context)
            if job is not None and job.cancelling:  # one row, as tall as the button it replaces: nothing jumps
                box.label(text="Cancelling…", icon="CANCEL")
            else:
                box.operator("strata.cancel", icon="CANCEL")

        if session.problem is not None:
            box = layout.box()
            _wrapped(box, session.problem.message, icon="ERROR", context=context)
            _wrapped(box, session.problem.advice, icon="INFO", context=context)
        elif session.notice:
            _wrapped(layout, session.notice, icon="INFO", context=context)
        elif runtime.RUNTIME.imported:
            _wrapped(layout, f"Last import: {runtime.RUNTIME.imported[-1]}", icon="CHECKMARK", context=context)
        saved = operators.result_file(context)
        if saved:  # the .strata files the server sent: reusable, re-importable
            layout.operator("strata.open_folder", text="Open Results Folder", icon="FILE_FOLDER").path = saved


class STRATA_PT_parameters(_Panel, bpy.types.Panel):
    """The parameters of the chosen mode, generated from the job specs."""

    bl_idname = "STRATA_PT_parameters"
    bl_label = "Parameters"
    bl_parent_id = "STRATA_PT_main"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context: bpy.types.Context) -> None:
        settings = context.scene.strata
        group = settings.reconstruct if settings.mode == "RECONSTRUCT" else settings.body
        layout = self.layout
        layout.use_property_split = True
        layout.use_property_decorate = False
        for name in group.bl_rna.properties.keys():  # noqa: SIM118 - bl_rna collections need keys()
            if name in ("rna_type", "name", "rig", "quality", "layers", "rest_pose", "pose"):  # in the main panel
                continue
            row = layout.row()
            row.active = name != "smplx_gender" or group.body_model == "smplx"  # only SMPL-X reads it
            row.prop(group, name)


class STRATA_PT_server(_Panel, bpy.types.Panel):
    """Server status and controls."""

    bl_idname = "STRATA_PT_server"
    bl_label = "Server"
    bl_parent_id = "STRATA_PT_main"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        rt = runtime.RUNTIME
        session = rt.session
        icon = "CHECKMARK" if session.connected else ("SORTTIME" if session.connecting else "UNLINKED")
        if not session.address:
            layout.label(text=f"Not connected ({runtime.prefs(context).address})", icon=icon)
        else:
            _wrapped(layout, session.status_line(), icon=icon, context=context)
        row = layout.row(align=True)
        row.operator("strata.connect", icon="LINKED")
        row.operator("strata.release", icon="TRASH")
        if session.last_released:  # the answer to Free Memory: what it unloaded
            models = session.last_released.get("models", [])
            _wrapped(layout, f"Freed {len(models)} model(s)" + (f": {', '.join(map(str, models))}" if models else ""),
                     icon="INFO", context=context)
        p = runtime.prefs(context)
        if getattr(p, "start_local", False):
            row = layout.row(align=True)
            if rt.server is not None and rt.server.running:
                row.operator("strata.stop_server", text="Stop Server", icon="PAUSE")  # fits beside Open Log
                # The log's path is long and breaks mid-word in a sidebar: the button's tooltip names it.
                log_folder = row.operator("strata.open_folder", text="Open Log", icon="TEXT")
                log_folder.path = str(rt.server.log_path)
                layout.label(text=f"Running on this computer (pid {rt.server.pid})", icon="BLANK1")
            else:
                row.operator("strata.start_server", icon="PLAY")
        layout.operator("strata.import_asset", icon="IMPORT")


class STRATA_PT_backends(_Panel, bpy.types.Panel):
    """What the server will run for each stage, and why the others will not (the server's registry)."""

    bl_idname = "STRATA_PT_backends"
    bl_label = "Backends"
    bl_parent_id = "STRATA_PT_server"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        lines = runtime.RUNTIME.session.backend_lines()
        if not lines:
            layout.label(text="Connect to see what the server runs", icon="INFO")
            return
        col = layout.column(align=True)
        for text, state in lines:
            if state == "unavailable":
                _wrapped(col, text, icon="BLANK1", context=context)
            else:
                col.label(text=text, icon="CHECKMARK" if state == "runs" else "ERROR")


class STRATA_PT_garments(_Panel, bpy.types.Panel):
    """The selected human: snap it to the ground; its garments, each with a toggle that hides it and shows the
    body under it."""

    bl_idname = "STRATA_PT_garments"
    bl_label = "Selected Human"
    bl_parent_id = "STRATA_PT_main"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return operators.human_collection(context.active_object) is not None

    def draw(self, context: bpy.types.Context) -> None:
        self.layout.operator("strata.snap_to_ground", icon="TRIA_DOWN_BAR")
        col = self.layout.column(align=True)
        for obj in operators.human_garments(context.active_object):
            row = col.row(align=True)
            hidden = obj.hide_viewport
            op = row.operator("strata.garment_visibility", text="", icon="HIDE_ON" if hidden else "HIDE_OFF",
                              emboss=False)
            op.garment = obj.name
            # The panel is about the selected human: its garments by what they are, not by object name.
            row.label(text=f"{obj.get('strata_layer_kind', '').capitalize()}: "
                           f"{obj.get('strata_layer_name') or obj.name}")


class STRATA_PT_shape(_Panel, bpy.types.Panel):
    """The selected human's body shape as sliders (its body's shape keys; the garments' follow them)."""

    bl_idname = "STRATA_PT_shape"
    bl_label = "Shape"
    bl_parent_id = "STRATA_PT_garments"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return _shape_keys(context.active_object) is not None

    def draw(self, context: bpy.types.Context) -> None:
        col = self.layout.column(align=True)
        for block in _shape_keys(context.active_object).key_blocks[1:]:  # after the Basis
            col.prop(block, "value", text=block.name, slider=True)
        if operators.STRATA_OT_fit_bones.poll(context):  # the bones follow on request (edit-mode work)
            self.layout.operator("strata.fit_bones", icon="BONE_DATA")


def _shape_keys(obj: bpy.types.Object | None) -> Any:
    """The shape keys of the body of the human ``obj`` belongs to, or None when it has none."""
    bodies = operators.garment_bodies(obj) if obj is not None else []
    keys = bodies[0].data.shape_keys if bodies else None
    return keys if keys is not None and len(keys.key_blocks) > 1 else None


class STRATA_PT_motion(_Panel, bpy.types.Panel):
    """For a human on the SMPL-X rig: play mocap (AMASS) or SMPL-X fits on it."""

    bl_idname = "STRATA_PT_motion"
    bl_label = "Motion"
    bl_parent_id = "STRATA_PT_main"

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return operators.smplx_armature(context.active_object) is not None

    def draw(self, context: bpy.types.Context) -> None:
        col = self.layout.column(align=True)
        col.operator("strata.load_smplx_motion", text="Load SMPL-X Motion…", icon="ARMATURE_DATA")
        action = getattr(operators.smplx_armature(context.active_object).animation_data, "action", None)
        if action is not None:
            col.label(text=f"Playing: {action.name}", icon="ACTION")


class STRATA_PT_history(_Panel, bpy.types.Panel):
    """Past results with their thumbnails (the photo, or a front view), to import again."""

    bl_idname = "STRATA_PT_history"
    bl_label = "History"
    bl_parent_id = "STRATA_PT_main"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context: bpy.types.Context) -> None:
        from . import history

        past = history.records(runtime.user_dir("results"))
        if not past:
            _wrapped(self.layout, "Results you make appear here, to import again.", "INFO", context)
            return
        for record in past:
            row = self.layout.box().row()
            icon = photo_icon(str(record.thumbnail)) if record.thumbnail.exists() else 0
            if icon:
                row.template_icon(icon_value=icon, scale=3.0)
            col = row.column(align=True)
            _wrapped(col, record.name, context=context)
            col.label(text=f"{KIND_TITLES.get(record.kind, record.kind)}, {record.when}")
            col.operator_context = "EXEC_DEFAULT"  # the file is known: no file browser
            op = col.operator("strata.import_asset", text="Import Again", icon="IMPORT")
            op.filepath, op.name, op.job_id = str(record.result), record.name, record.job_id


#: Job kinds as the history names them.
KIND_TITLES = {"reconstruct": "Photo", "generate": "Layered", "body": "Body"}


CLASSES = (STRATA_UL_layers, STRATA_PT_main, STRATA_PT_garments, STRATA_PT_shape, STRATA_PT_motion,
           STRATA_PT_parameters, STRATA_PT_history, STRATA_PT_server, STRATA_PT_backends)
