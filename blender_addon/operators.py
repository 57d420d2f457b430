"""Operators: every action of the panel, usable from scripts too (`bpy.ops.strata.*`).

Job operators return at once in the UI (the job runs on the server; `runtime.tick` imports the
result) and wait for the result in background mode, so `blender -b` scripts and the tests get the
imported collection when the call returns.
"""

import json
import time
from pathlib import Path
from typing import Any

import bpy
import numpy as np
from bpy.props import BoolProperty, EnumProperty, FloatProperty, IntProperty, StringProperty
from bpy_extras.io_utils import ImportHelper

from . import importer, motion, runtime
from ._lib.asset import container
from ._lib.asset.codec import AssetError
from ._lib.wire.jobs import JOB_SPECS, LAYER_STYLES
from .local_server import LocalServerError
from .properties import generate_params, read_params
from .session import explain

PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
HUMAN_NAMES = {"generate": "Layered human", "body": "Human"}
"""What a result without a photo is called in the outliner ("Layered human Rig", "Layered human.001 Skirt")."""


def photo_problem(path: str) -> tuple[str, str] | None:
    """(code, message) when ``path`` cannot be a photo to reconstruct, else None: checked when the photo is
    picked (the panel says so at once, instead of a blank preview) and again when the job is sent."""
    if not path:
        return "no_photo", "No photo is selected."
    photo = Path(path)
    if not photo.is_file():
        return "no_photo", f"The photo {photo} does not exist."
    if photo.suffix.lower() not in PHOTO_SUFFIXES:
        return "invalid_input", f"The file {photo.name} is not a PNG, JPEG or WebP photo."
    return None


class UserError(Exception):
    """Something the user must fix before a job can be sent; carries an ADVICE code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _fail(op: bpy.types.Operator, code: str, message: str, detail: dict | None = None) -> set[str]:
    problem = runtime.RUNTIME.session.fail(code, message, detail)
    op.report({"ERROR"}, problem.text)
    return {"CANCELLED"}


def _settings(context: bpy.types.Context) -> Any:
    return context.scene.strata


# ---------------------------------------------------------------------------------------------
# jobs


class _JobOperator:
    """Shared by the job operators: build parameters, check the server offers the job, submit,
    and in background mode wait and import."""

    bl_options = {"REGISTER"}
    kind = ""

    def build(self, context: bpy.types.Context) -> tuple[dict[str, Any], bytes | None, str]:
        """(params, image bytes or None, source image path)."""
        raise NotImplementedError

    def job_kind_name(self) -> str:
        return self.kind

    def execute(self, context: bpy.types.Context) -> set[str]:
        rt = runtime.RUNTIME
        kind = self.job_kind_name()
        try:
            params, image, source = self.build(context)
        except UserError as exc:
            return _fail(self, exc.code, str(exc))
        except OSError as exc:
            return _fail(self, "invalid_input", f"The photo could not be read ({exc.strerror or exc}).")
        sync = runtime.synchronous()
        try:
            conn = runtime.ensure_connection(context, hello=not sync)
        except (ValueError, OSError) as exc:
            return _fail(self, "server_setup", str(exc))
        if sync and not rt.session.connected:  # background: say hello now and wait for the answer
            rt.session.problem = None
            conn.connect()
            runtime.wait_until(lambda: rt.session.connected or rt.session.problem is not None,
                               prefs_timeout(context) + 1.0)
        if rt.session.welcome:
            ok, why = rt.session.supports(kind)
            if not ok:
                code = "no_generate" if kind == "generate" else "unavailable"
                return _fail(self, code, why[0].upper() + why[1:] + ".")
        elif sync:
            problem = rt.session.problem or explain("server_unavailable",
                                                    f"No server answered at {rt.session.address}.")
            self.report({"ERROR"}, problem.text)
            return {"CANCELLED"}
        # A photo's human is named after the photo; the others by what they are (Blender numbers repeats).
        name = Path(source).stem if source else HUMAN_NAMES.get(kind, "")
        token = runtime.submit(context, kind, params, image=image, source_image=source, name=name)
        if not sync:
            self.report({"INFO"}, f"Strata: {kind} job sent to {rt.session.address}")
            return {"FINISHED"}
        try:
            update = runtime.wait_for(token, runtime.prefs(context).job_timeout)
        except TimeoutError as exc:
            return _fail(self, "timeout", str(exc))
        except ConnectionError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        if update.kind == "result" and "collection" in update.data:
            self.report({"INFO"}, f"Strata: imported job {update.job_id} into '{update.data['collection']}'")
            return {"FINISHED"}
        problem = rt.session.problem or explain("job_failed", str(update.data.get("message", "")))
        self.report({"ERROR"}, problem.text)
        return {"CANCELLED"}


def prefs_timeout(context: bpy.types.Context) -> float:
    return float(runtime.prefs(context).timeout)


class STRATA_OT_reconstruct(_JobOperator, bpy.types.Operator):
    """Reconstruct a rigged, textured human from the photo"""

    bl_idname = "strata.reconstruct"
    bl_label = "Reconstruct from Photo"
    kind = "reconstruct"

    filepath: StringProperty(name="Photo", subtype="FILE_PATH", default="",
                             description="Photo to use instead of the one picked in the panel")

    def build(self, context: bpy.types.Context) -> tuple[dict[str, Any], bytes | None, str]:
        settings = _settings(context)
        path = bpy.path.abspath(self.filepath or settings.photo)
        problem = photo_problem(path)
        if problem is not None:
            raise UserError(*problem)
        photo = Path(path)
        server_spec = runtime.RUNTIME.session.job_kinds().get(self.kind)
        params = read_params(settings.reconstruct, JOB_SPECS[self.kind], runtime.prefs(context).default_quality,
                             server_spec)
        return params, photo.read_bytes(), str(photo)


class STRATA_OT_body(_JobOperator, bpy.types.Operator):
    """Make a rigged, textured body from the shape parameters"""

    bl_idname = "strata.body"
    bl_label = "Make Body"
    kind = "body"

    def build(self, context: bpy.types.Context) -> tuple[dict[str, Any], bytes | None, str]:
        server_spec = runtime.RUNTIME.session.job_kinds().get(self.kind)
        return read_params(_settings(context).body, JOB_SPECS[self.kind], server_spec=server_spec), None, ""


class STRATA_OT_generate(_JobOperator, bpy.types.Operator):
    """Generate a layered human: the body plus the garment layers listed, each its own object"""

    bl_idname = "strata.generate"
    bl_label = "Generate Layered Human"
    kind = "generate"

    def build(self, context: bpy.types.Context) -> tuple[dict[str, Any], bytes | None, str]:
        settings = _settings(context)
        if not any(layer.enabled for layer in settings.layers):
            raise UserError("invalid_params", "Add at least one garment layer to generate.")
        return generate_params(settings), None, ""


class STRATA_OT_run_job(_JobOperator, bpy.types.Operator):
    """Run any job kind with parameters given as JSON (diagnostics: 'echo' tests the round trip)"""

    bl_idname = "strata.run_job"
    bl_label = "Run Job"
    bl_options = {"REGISTER", "INTERNAL"}

    job_kind: StringProperty(name="Kind", default="echo")
    params_json: StringProperty(name="Parameters", default="{}", description="Job parameters as a JSON object")

    def job_kind_name(self) -> str:
        return self.job_kind

    def build(self, context: bpy.types.Context) -> tuple[dict[str, Any], bytes | None, str]:
        try:
            params = json.loads(self.params_json or "{}")
        except json.JSONDecodeError as exc:
            raise UserError("invalid_params", f"The parameters are not valid JSON: {exc}") from None
        if not isinstance(params, dict):
            raise UserError("invalid_params", "The parameters must be a JSON object.")
        return params, None, ""


class STRATA_OT_cancel(bpy.types.Operator):
    """Cancel the running job (the server stops it at its next progress step)"""

    bl_idname = "strata.cancel"
    bl_label = "Cancel"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return runtime.RUNTIME.session.busy

    def execute(self, context: bpy.types.Context) -> set[str]:
        if not runtime.cancel_current():
            self.report({"WARNING"}, "No Strata job is running")
            return {"CANCELLED"}
        self.report({"INFO"}, "Strata: cancelling the job")
        return {"FINISHED"}


# ---------------------------------------------------------------------------------------------
# server


class STRATA_OT_connect(bpy.types.Operator):
    """Connect (again) to the Strata server set in the preferences, and refresh its status; with 'Run the
    server on this computer' on, start it when none listens there"""

    bl_idname = "strata.connect"
    bl_label = "Connect"
    bl_options = {"REGISTER"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        rt = runtime.RUNTIME
        p = runtime.prefs(context)
        address = (p.address or runtime.DEFAULT_ADDRESS).strip()
        if (getattr(p, "start_local", False) and getattr(p, "server_env", "") and runtime.is_local(address)
                and not rt.session.connected and (rt.server is None or not rt.server.running)
                and not runtime.listening(address)):
            # "Run the server on this computer": Connect starts it (it answers once its models load).
            return bpy.ops.strata.start_server()
        try:
            conn = runtime.ensure_connection(context, reconnect=rt.connection is not None and not rt.session.connected)
        except (ValueError, OSError) as exc:
            return _fail(self, "server_setup", str(exc))
        conn.refresh()
        if not runtime.synchronous():
            return {"FINISHED"}
        runtime.wait_until(lambda: rt.session.connected or rt.session.problem is not None, prefs_timeout(context) + 1)
        if not rt.session.connected:
            problem = rt.session.problem or explain("server_unavailable", "No answer.")
            self.report({"ERROR"}, problem.text)
            return {"CANCELLED"}
        self.report({"INFO"}, rt.session.status_line())
        return {"FINISHED"}


class STRATA_OT_release(bpy.types.Operator):
    """Unload the server's cached models and free the memory they hold (GPU or CPU); the next job loads them
    again"""

    bl_idname = "strata.release"
    bl_label = "Free Memory"
    bl_options = {"REGISTER"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        rt = runtime.RUNTIME
        try:
            conn = runtime.ensure_connection(context)
        except (ValueError, OSError) as exc:
            return _fail(self, "server_setup", str(exc))
        rt.session.last_released = {}
        conn.release()
        if runtime.synchronous():
            runtime.wait_until(lambda: bool(rt.session.last_released) or rt.session.problem is not None,
                               prefs_timeout(context) + 1)
            models = rt.session.last_released.get("models", [])
            self.report({"INFO"}, f"Strata: released {len(models)} model(s)")
        return {"FINISHED"}


class STRATA_OT_start_server(bpy.types.Operator):
    """Start a Strata server on this computer from the environment set in the preferences"""

    bl_idname = "strata.start_server"
    bl_label = "Start Local Server"
    bl_options = {"REGISTER"}

    wait: FloatProperty(name="Wait", default=120.0, min=0.0, description="Seconds to wait for the server to answer")

    def execute(self, context: bpy.types.Context) -> set[str]:
        rt = runtime.RUNTIME
        try:
            server = runtime.start_local_server(context, wait=self.wait)
        except (LocalServerError, ValueError, OSError) as exc:
            return _fail(self, "server_setup", str(exc))
        if not runtime.synchronous():
            self.report({"INFO"}, f"Strata: starting the server (log: {server.log_path})")
            return {"FINISHED"}
        runtime.wait_until(lambda: rt.session.connected or rt.session.problem is not None or not server.running,
                           self.wait + 5)
        if not rt.session.connected:
            problem = rt.session.problem or explain("server_exited", "The server did not answer.")
            self.report({"ERROR"}, f"{problem.text} Log: {server.log_path}")
            return {"CANCELLED"}
        self.report({"INFO"}, f"Strata: server running (pid {server.pid}, log {server.log_path})")
        return {"FINISHED"}


class STRATA_OT_stop_server(bpy.types.Operator):
    """Stop the Strata server this Blender started"""

    bl_idname = "strata.stop_server"
    bl_label = "Stop Local Server"
    bl_options = {"REGISTER"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return runtime.RUNTIME.server is not None

    def execute(self, context: bpy.types.Context) -> set[str]:
        code = runtime.stop_local_server()
        self.report({"INFO"}, f"Strata: server stopped (exit code {code})")
        return {"FINISHED"}


# ---------------------------------------------------------------------------------------------
# import


class STRATA_OT_pick_photo(bpy.types.Operator, ImportHelper):
    """Pick the photo of a person to reconstruct (PNG, JPEG or WebP)"""

    bl_idname = "strata.pick_photo"
    bl_label = "Pick Photo"
    bl_options = {"REGISTER", "INTERNAL"}

    filter_glob: StringProperty(default="*.png;*.jpg;*.jpeg;*.webp", options={"HIDDEN"})
    filter_image: BoolProperty(default=True, options={"HIDDEN"})  # the file browser's thumbnails

    def execute(self, context: bpy.types.Context) -> set[str]:
        _settings(context).photo = self.filepath  # its update checks the file and shows the preview
        return {"FINISHED"}


class STRATA_OT_import_asset(bpy.types.Operator, ImportHelper):
    """Import a Strata result (.strata): a collection with the armature and one object per layer"""

    bl_idname = "strata.import_asset"
    bl_label = "Import Strata Asset"
    bl_options = {"REGISTER", "UNDO"}

    filename_ext = ".strata"
    filter_glob: StringProperty(default="*.strata", options={"HIDDEN"})
    use_normals: BoolProperty(name="Custom Normals", default=True,
                              description="Keep the asset's vertex normals where they differ from Blender's own smooth "
                                          "normals (as custom normals, which follow the armature)")
    name: StringProperty(name="Collection", default="", description="Name of the new collection (default: file name)")
    job_id: StringProperty(name="Job", default="", options={"HIDDEN"}, description="Server job the file came from")

    def execute(self, context: bpy.types.Context) -> set[str]:
        path = Path(bpy.path.abspath(self.filepath))
        start = time.perf_counter()
        try:
            asset = container.load(path)
        except AssetError as exc:
            return _fail(self, "bad_result", f"{path.name} is not a valid Strata asset ({exc}).")
        except OSError as exc:
            return _fail(self, "invalid_input", f"{path} could not be read ({exc.strerror or exc}).")
        result = importer.import_asset(asset, context, name=self.name or path.stem, use_normals=self.use_normals,
                                       job_id=self.job_id)
        result.collection["strata_result_file"] = str(path)
        seconds = time.perf_counter() - start
        self.report({"INFO"}, f"Strata: imported {len(result.objects)} layer(s) into '{result.collection.name}' "
                              f"in {seconds:.2f} s")
        return {"FINISHED"}


def smplx_armature(obj: Any) -> Any:
    """The SMPL-X armature ``obj`` is or belongs to (a human made with the SMPL-X rig), else None."""
    for candidate in (obj, getattr(obj, "parent", None)):
        if motion.is_smplx_armature(candidate):
            return candidate
    return None


class STRATA_OT_load_smplx_motion(bpy.types.Operator, ImportHelper):
    """Play an SMPL-X pose file (AMASS .npz, or an SMPL-X fit) on the selected SMPL-X human, as an action"""

    bl_idname = "strata.load_smplx_motion"
    bl_label = "Load SMPL-X Motion"
    bl_options = {"REGISTER", "UNDO"}

    filename_ext = ".npz"
    filter_glob: StringProperty(default="*.npz", options={"HIDDEN"})
    start: IntProperty(name="Start Frame", default=1, description="Frame the motion's first pose lands on")

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        if smplx_armature(context.active_object) is None:
            cls.poll_message_set("Select a human made with the SMPL-X rig (Rig: Smplx)")
            return False
        return True

    def execute(self, context: bpy.types.Context) -> set[str]:
        from ._lib.asset.smplx_motion import PoseFileError, read_pose_file

        path = Path(bpy.path.abspath(self.filepath))
        armature = smplx_armature(context.active_object)
        try:
            seq = read_pose_file(path)
        except PoseFileError as exc:
            self.report({"ERROR"}, f"{path.name}: {exc}")
            return {"CANCELLED"}
        action = motion.play(armature, seq, start=self.start, name=path.stem, scene=context.scene)
        self.report({"INFO"}, f"Strata: {seq.frames} frames of {path.name} ({seq.fps:g} fps) on {armature.name} "
                              f"as the action '{action.name}'")
        return {"FINISHED"}


class STRATA_OT_open_folder(bpy.types.Operator):
    """Open a folder of Strata's in the system's file browser (the results, or the local server's log)"""

    bl_idname = "strata.open_folder"
    bl_label = "Open Folder"
    bl_options = {"REGISTER"}

    path: StringProperty(name="Path", default="", description="The folder, or a file in it")

    @classmethod
    def description(cls, context: bpy.types.Context, properties: bpy.types.OperatorProperties) -> str:
        """The tooltip names the folder, so the panel need not print a long path."""
        target = Path(bpy.path.abspath(properties.path)) if properties.path else None
        if target is None:
            return cls.__doc__ or ""
        folder = target if target.is_dir() else target.parent
        return f"Open {folder} in the system's file browser"

    def execute(self, context: bpy.types.Context) -> set[str]:
        target = Path(bpy.path.abspath(self.path))
        folder = target if target.is_dir() else target.parent
        if not folder.is_dir():
            self.report({"ERROR"}, f"{folder} does not exist (any more)")
            return {"CANCELLED"}
        bpy.ops.wm.path_open(filepath=str(folder))
        return {"FINISHED"}


def result_file(context: bpy.types.Context) -> str:
    """The saved result of the selected human (or of the last import): where its .strata file is."""
    obj = context.active_object
    for collection in ([*obj.users_collection] if obj is not None else []):
        if collection.get("strata_result_file"):
            return str(collection["strata_result_file"])
    last = runtime.RUNTIME.imported[-1] if runtime.RUNTIME.imported else ""
    collection = bpy.data.collections.get(last)
    return str(collection.get("strata_result_file", "")) if collection is not None else ""


# ---------------------------------------------------------------------------------------------
# generation layers list


class STRATA_OT_layer_add(bpy.types.Operator):
    """Add a garment layer to generate"""

    bl_idname = "strata.layer_add"
    bl_label = "Add Layer"
    bl_options = {"REGISTER", "UNDO", "INTERNAL"}

    kind: EnumProperty(name="Kind", items=[(k.upper(), k.capitalize(), "") for k in LAYER_STYLES], default="TOP")

    def execute(self, context: bpy.types.Context) -> set[str]:
        settings = _settings(context)
        layer = settings.layers.add()
        layer.kind = self.kind
        settings.layer_index = len(settings.layers) - 1
        return {"FINISHED"}


class STRATA_OT_layer_remove(bpy.types.Operator):
    """Remove the selected garment layer"""

    bl_idname = "strata.layer_remove"
    bl_label = "Remove Layer"
    bl_options = {"REGISTER", "UNDO", "INTERNAL"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return len(_settings(context).layers) > 0

    def execute(self, context: bpy.types.Context) -> set[str]:
        settings = _settings(context)
        settings.layers.remove(settings.layer_index)
        settings.layer_index = max(0, min(settings.layer_index, len(settings.layers) - 1))
        return {"FINISHED"}


class STRATA_OT_layer_move(bpy.types.Operator):
    """Move the selected garment layer up (further inside) or down (further outside)"""

    bl_idname = "strata.layer_move"
    bl_label = "Move Layer"
    bl_options = {"REGISTER", "UNDO", "INTERNAL"}

    direction: IntProperty(name="Direction", default=-1, min=-1, max=1)

    def execute(self, context: bpy.types.Context) -> set[str]:
        settings = _settings(context)
        target = settings.layer_index + self.direction
        if 0 <= target < len(settings.layers):
            settings.layers.move(settings.layer_index, target)
            settings.layer_index = target
        return {"FINISHED"}


def menu_import(self: Any, context: bpy.types.Context) -> None:
    self.layout.operator(STRATA_OT_import_asset.bl_idname, text="Strata Human (.strata)")


class STRATA_OT_garment_visibility(bpy.types.Operator):
    """Hide or show a garment; the body under it shows while the garment is hidden"""

    bl_idname = "strata.garment_visibility"
    bl_label = "Hide or Show Garment"
    bl_options = {"REGISTER", "UNDO", "INTERNAL"}

    garment: StringProperty(name="Garment", description="The garment object's name")

    def execute(self, context: bpy.types.Context) -> set[str]:
        obj = bpy.data.objects.get(self.garment)
        if obj is None:
            self.report({"ERROR"}, f"No object named '{self.garment}'")
            return {"CANCELLED"}
        hidden = not obj.hide_viewport
        obj.hide_viewport = obj.hide_render = hidden
        for body in garment_bodies(obj):
            mod = body.modifiers.get(obj.get("strata_mask_modifier", ""))
            if mod is not None and mod.type == "MASK":
                mod.show_viewport = mod.show_render = not hidden
        return {"FINISHED"}


def human_collection(obj: bpy.types.Object | None) -> bpy.types.Collection | None:
    """The collection of the imported human ``obj`` is part of (each import makes its own, so two imports of
    one result, or of one job, stay two humans), or None."""
    if obj is None:
        return None
    return next((c for c in obj.users_collection if "strata_asset_name" in c), None)


def _human_meshes(obj: bpy.types.Object | None, body: bool) -> list[bpy.types.Object]:
    collection = human_collection(obj)
    if collection is None:
        return []
    return sorted((o for o in collection.objects if o.type == "MESH" and o.get("strata_layer_kind") is not None
                   and (o.get("strata_layer_kind") == "body") == body), key=lambda o: o.name)


def garment_bodies(garment: bpy.types.Object) -> list[bpy.types.Object]:
    """The body objects of the human ``garment`` belongs to."""
    return _human_meshes(garment, body=True)


def human_garments(obj: bpy.types.Object | None) -> list[bpy.types.Object]:
    """The garment objects of the human ``obj`` (any of its parts, or its armature) belongs to."""
    return _human_meshes(obj, body=False)


class STRATA_OT_snap_to_ground(bpy.types.Operator):
    """Stand the selected human on the ground: its lowest point, as posed now, at z = 0"""

    bl_idname = "strata.snap_to_ground"
    bl_label = "Snap to Ground"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return human_collection(context.active_object) is not None

    def execute(self, context: bpy.types.Context) -> set[str]:
        collection = human_collection(context.active_object)
        meshes = [o for o in collection.objects if o.type == "MESH" and o.visible_get()]
        if not meshes:
            return _fail(self, "invalid_input", "The selected human has no visible mesh to stand on the ground.")
        # 1. The lowest point of what is seen (posed by the armature, masks applied).
        depsgraph = context.evaluated_depsgraph_get()
        lowest = min(_lowest_z(o.evaluated_get(depsgraph)) for o in meshes)
        # 2. Move the human's root: the armature (everything is parented to it), else each object.
        roots = [o for o in collection.objects if o.type == "ARMATURE"] or list(collection.objects)
        for root in roots:
            root.location.z -= lowest
        self.report({"INFO"}, f"Strata: moved '{collection.name}' by {-lowest:+.3f} m onto the ground")
        return {"FINISHED"}


class STRATA_OT_fit_bones(bpy.types.Operator):
    """Move the selected human's bones to the body's joints for its current shape sliders (the body model's
    own joints; rolls kept), so a reshaped body bends where it should"""

    bl_idname = "strata.fit_bones"
    bl_label = "Fit Bones to Shape"
    bl_options = {"REGISTER", "UNDO"}

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return _shape_armature(context.active_object) is not None

    def execute(self, context: bpy.types.Context) -> set[str]:
        armature = _shape_armature(context.active_object)
        bodies = garment_bodies(context.active_object)
        if armature is None or not bodies:
            return _fail(self, "invalid_input", "The selected human keeps no bones to fit to its shape.")
        moved = importer.fit_bones_to_shape(armature, bodies[0], context)
        self.report({"INFO"}, f"Strata: fitted {moved} bones of '{armature.name}' to the body's shape")
        return {"FINISHED"}


def _shape_armature(obj: bpy.types.Object | None) -> bpy.types.Object | None:
    """The armature of the human ``obj`` belongs to, when it keeps how its bones follow the shape keys."""
    collection = human_collection(obj)
    if collection is None:
        return None
    return next((o for o in collection.objects if o.type == "ARMATURE" and o.get("strata_shape_bones")), None)


def _lowest_z(evaluated: bpy.types.Object) -> float:
    """The lowest world z of an evaluated mesh object's vertices."""
    mesh = evaluated.data
    co = np.empty(len(mesh.vertices) * 3, np.float32)
    mesh.vertices.foreach_get("co", co)
    if not len(co):
        return float("inf")
    m = np.array(evaluated.matrix_world, np.float64)
    return float((co.reshape(-1, 3) @ m[:3, :3].T + m[:3, 3])[:, 2].min())


CLASSES = (
    STRATA_OT_pick_photo,
    STRATA_OT_snap_to_ground,
    STRATA_OT_fit_bones,
    STRATA_OT_garment_visibility,
    STRATA_OT_reconstruct,
    STRATA_OT_body,
    STRATA_OT_generate,
    STRATA_OT_run_job,
    STRATA_OT_cancel,
    STRATA_OT_connect,
    STRATA_OT_release,
    STRATA_OT_start_server,
    STRATA_OT_stop_server,
    STRATA_OT_import_asset,
    STRATA_OT_load_smplx_motion,
    STRATA_OT_open_folder,
    STRATA_OT_layer_add,
    STRATA_OT_layer_remove,
    STRATA_OT_layer_move,
)
