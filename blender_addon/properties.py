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

from ._lib.asset.schema import LAYER_KINDS
from ._lib.wire.jobs import JOB_SPECS, QUALITY_PRESETS, JobSpec, ParamSpec

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


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


def param_property(spec: ParamSpec) -> Any:
    """A bpy property with the spec's default, limits, choices and help."""
    name, desc = _label(spec.name), spec.help
    if spec.choices is not None:
        items = [(str(c), str(c) if str(c).isupper() else _label(str(c)), f"{desc}: {c}") for c in spec.choices]
        if spec.name == "quality":
            items.insert(0, (PREFERENCE_DEFAULT, "Default", "The quality preset chosen in the add-on preferences"))
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
        return FloatProperty(**kwargs)
    if spec.type is int:
        kwargs = {"name": name, "description": desc, "default": int(spec.default)}
        if spec.min is not None:
            kwargs["min"] = int(spec.min)
        if spec.max is not None:
            kwargs["max"] = int(spec.max)
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

GARMENT_KINDS = [(k.upper(), _label(k), f"A {k} layer") for k in LAYER_KINDS if k != "body"]


class STRATA_PG_layer(bpy.types.PropertyGroup):
    """One garment layer to generate; the list order is the stacking order (inner first)."""

    enabled: BoolProperty(name="Use", default=True, description="Generate this layer")
    kind: EnumProperty(name="Kind", items=GARMENT_KINDS, default="TOP", description="What the layer is")
    style: StringProperty(name="Style", default="", description="In words, e.g. 'denim jeans' or 'short bob'")
    color: FloatVectorProperty(name="Colour", subtype="COLOR_GAMMA", size=3, min=0.0, max=1.0,
                               default=(0.5, 0.5, 0.5), description="Main colour of the layer")


def _photo_changed(self: Any, context: bpy.types.Context) -> None:
    from . import panel

    panel.forget_preview(self.photo)


class STRATA_PG_settings(bpy.types.PropertyGroup):
    """Everything the Strata panel edits, stored with the scene (so it is saved in the .blend)."""

    mode: EnumProperty(name="Mode", items=MODES, default="RECONSTRUCT", description="What to make")
    photo: StringProperty(name="Photo", subtype="FILE_PATH", update=_photo_changed,
                          description="A photo of one person (PNG, JPEG or WebP)")
    reconstruct: PointerProperty(type=RECONSTRUCT_PARAMS)
    body: PointerProperty(type=BODY_PARAMS)
    layers: CollectionProperty(type=STRATA_PG_layer)
    layer_index: IntProperty(name="Active layer", default=0, min=0)
    seed: IntProperty(name="Seed", default=0, min=0, description="Same seed and settings give the same human")
    quality: EnumProperty(
        name="Quality",
        items=[(PREFERENCE_DEFAULT, "Default", "The quality preset chosen in the add-on preferences")]
        + [(q, _label(q), f"The '{q}' preset") for q in QUALITY_PRESETS],
        default=PREFERENCE_DEFAULT,
        description="Speed / quality trade-off of layered generation",
    )


def generate_params(settings: Any, default_quality: str) -> dict[str, Any]:
    """Parameters of a layered generation: the base body's shape and rig, the garments in order
    (kind, style, colour as 0-255 sRGB), the seed and the quality preset."""
    params = read_params(settings.body, JOB_SPECS["body"])
    params["layers"] = [
        {"kind": layer.kind.lower(), "style": layer.style,
         "color": [round(c * 255) for c in layer.color]}
        for layer in settings.layers if layer.enabled
    ]
    params["seed"] = int(settings.seed)
    params["quality"] = default_quality if settings.quality == PREFERENCE_DEFAULT else settings.quality
    return params


CLASSES = (BODY_PARAMS, RECONSTRUCT_PARAMS, STRATA_PG_layer, STRATA_PG_settings)
