"""Add-on preferences: where the server is, how to reach it, and how to start one locally."""

import bpy
from bpy.props import BoolProperty, EnumProperty, FloatProperty, StringProperty

from . import runtime
from ._lib.wire.jobs import JOB_SPECS, QUALITY_PRESETS


class STRATA_AddonPreferences(bpy.types.AddonPreferences):
    """Connection and local-server settings, stored in Blender's user preferences."""

    bl_idname = __package__

    address: StringProperty(
        name="Server address", default=runtime.DEFAULT_ADDRESS,
        description="ZeroMQ address of the Strata server, e.g. tcp://127.0.0.1:5555 (this computer) or "
                    "tcp://gpu-box:5555 (needs the encryption keys below and Blender's 'Allow Online Access')")
    timeout: FloatProperty(name="Timeout", default=5.0, min=0.5, max=120.0, subtype="TIME_ABSOLUTE",
                           unit="TIME_ABSOLUTE", description="How long to wait for the server to answer a request")
    job_timeout: FloatProperty(name="Job timeout (background)", default=3600.0, min=1.0, subtype="TIME_ABSOLUTE",
                               unit="TIME_ABSOLUTE",
                               description="In background mode (blender -b), cancel a job that runs longer than this")
    curve_dir: StringProperty(
        name="Encryption keys", subtype="DIR_PATH", default="",
        description="For a remote server: the key folder made by `strata-server keys` (server.key and "
                    "clients/<name>.key_secret). Empty for a server on this computer")
    curve_client: StringProperty(name="This computer's key", default="client",
                                 description="Which client key of the key folder is this computer's "
                                             "(clients/<name>.key_secret)")
    start_local: BoolProperty(name="Run the server on this computer", default=False,
                              description="Connect starts Strata's server from the environment below when none "
                                          "answers, and the panel gets Start and Stop buttons")
    server_env: StringProperty(
        name="Server environment", subtype="DIR_PATH", default="",
        description="The Python environment where Strata's server is installed (the folder holding "
                    "bin/strata-server, e.g. the repository's .venv)")
    smplx_dir: StringProperty(
        name="SMPL-X models", subtype="DIR_PATH", default="",
        description="Folder with your SMPL-X model files (SMPLX_NEUTRAL.npz ...), licensed separately from "
                    "smpl-x.is.tue.mpg.de; passed to the local server as STRATA_SMPLX_DIR")
    default_quality: EnumProperty(
        name="Default quality",
        items=[(q, q.capitalize(), f"The '{q}' preset") for q in QUALITY_PRESETS],
        default=JOB_SPECS["reconstruct"].param("quality").default,
        description="Quality preset used when the panel's Quality says 'As in preferences'")

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        layout.use_property_split = True
        box = layout.box()
        box.label(text="Server", icon="LINKED")
        for name in ("address", "timeout", "job_timeout", "default_quality"):
            box.prop(self, name)
        box = layout.box()
        box.label(text="Server on this computer", icon="DESKTOP")
        box.prop(self, "start_local")
        sub = box.column()
        sub.active = self.start_local
        sub.prop(self, "server_env")
        sub.prop(self, "smplx_dir")
        rt = runtime.RUNTIME
        if rt.server is not None:
            sub.label(text=f"Log: {rt.server.log_path}", icon="TEXT")
        box = layout.box()
        box.label(text="Server on another computer", icon="WORLD")
        box.prop(self, "curve_dir")
        box.prop(self, "curve_client")
        layout.label(text=f"Results are kept in {runtime.user_dir('results')}", icon="FILE_FOLDER")


CLASSES = (STRATA_AddonPreferences,)
