"""Job kinds and their parameters: one declarative table for the server, the CLI and the add-on.

The server validates every submit against these specs (filling defaults), the CLI builds its
options from them and the Blender add-on its property defaults and limits, so a parameter is
declared exactly once. Like the rest of this package it imports nothing but the standard library.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .protocol import ErrorCode, ProtocolError

# The enumerations below are the server's real tables, copied here because clients (the add-on) must
# build their menus without the compute core; tests/test_protocol.py checks that they match core's.
RIGS = ("anny", "makehuman", "game_engine", "mixamo", "cmu_mb", "smplx")
"""Skeletons of the anny body model (core/body/rigs.py ANNY_RIGS): 104, 163, 53, 52, 31 joints, and SMPL-X's
55 placed on it (no SMPL-X file needed)."""
BODY_MODELS = ("anny", "smplx")
"""Body models (core/body/registry.py BODY_MODELS): anny ships offline, SMPL-X needs the user's files."""
POSE_PRESETS = ("rest", "A", "T")
"""Body-model pose presets (core/body/base.py POSE_PRESETS)."""
REST_POSES = ("A", "T")
"""Standard rest poses of a reconstructed human's rig (the photo's pose goes on the armature)."""
MULTIVIEW = ("auto", "off", "pshuman")
""""off", "auto" and the multiview backends of core/backends.py."""
QUALITY_PRESETS = ("fast", "balanced", "high")
"""core/reconstruct/stages.py QUALITY_PRESETS."""
LAYER_ORDER = ("body", "bottom", "top", "shoes", "hair")
"""Layers of a generated human, inner first (HumanLiff's order plus hair)."""
LAYER_STYLES: dict[str, tuple[str, ...]] = {
    "bottom": ("trousers", "shorts", "skirt"),
    "top": ("tshirt", "longsleeve", "hoodie", "jacket", "coat", "dress"),
    "shoes": ("sneakers", "boots", "flats"),
    "hair": ("short", "bob", "long", "ponytail", "bun"),
}
"""The garment library's styles per layer (core/garments/styles.py builds each)."""
LAYER_CHOICES = ("body",) + tuple(f"{kind}:{style}" for kind, styles in LAYER_STYLES.items() for style in styles)
"""What a `generate` job's `layers` list may hold: "body" and "<layer>:<style>"."""
SEGMENTERS = ("auto", "alpha", "rembg", "mediapipe")
""""auto" and the segmentation backends of core/backends.py, best first."""


@dataclass(frozen=True)
class ParamSpec:
    """One job parameter. ``type`` is float, int, str, bool, or list: a list parameter's values are of type
    ``item`` (each checked against ``choices`` when given), at most ``max`` of them (protocol 1.1)."""

    name: str
    type: type
    default: Any
    help: str
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] | None = None
    unit: str = ""
    item: type | None = None

    def validate(self, value: Any, kind: str) -> Any:
        where = f"{kind}.{self.name}"
        if self.type is list:
            return self._validate_list(value, kind)
        if self.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, self.type) or (isinstance(value, bool) and self.type is not bool):
            raise ProtocolError(ErrorCode.INVALID_PARAMS,
                                f"{where}: expected {self.type.__name__}, got {type(value).__name__}",
                                {"param": self.name})
        if self.type is float and value != value:  # NaN
            raise ProtocolError(ErrorCode.INVALID_PARAMS, f"{where}: NaN is not a value", {"param": self.name})
        if self.min is not None and value < self.min:
            raise ProtocolError(ErrorCode.INVALID_PARAMS,
                                f"{where}: {value} is below the minimum {self.min}{self.unit}", {"param": self.name})
        if self.max is not None and value > self.max:
            raise ProtocolError(ErrorCode.INVALID_PARAMS,
                                f"{where}: {value} is above the maximum {self.max}{self.unit}", {"param": self.name})
        if self.choices is not None and value not in self.choices:
            raise ProtocolError(ErrorCode.INVALID_PARAMS,
                                f"{where}: {value!r} is not one of {', '.join(map(str, self.choices))}",
                                {"param": self.name})
        return value

    def _validate_list(self, value: Any, kind: str) -> list[Any]:
        where = f"{kind}.{self.name}"
        if not isinstance(value, list | tuple):
            raise ProtocolError(ErrorCode.INVALID_PARAMS, f"{where}: expected a list, got {type(value).__name__}",
                                {"param": self.name})
        if self.max is not None and len(value) > self.max:
            raise ProtocolError(ErrorCode.INVALID_PARAMS, f"{where}: {len(value)} values, at most {int(self.max)}",
                                {"param": self.name})
        if self.min is not None and len(value) < self.min:
            raise ProtocolError(ErrorCode.INVALID_PARAMS, f"{where}: {len(value)} values, at least {int(self.min)}",
                                {"param": self.name})
        element = ParamSpec(self.name, self.item or str, None, self.help, choices=self.choices)
        return [element.validate(v, kind) for v in value]


@dataclass(frozen=True)
class InputSpec:
    name: str
    kind: str  # "bytes" or "asset"
    required: bool
    help: str
    max_bytes: int = 256 << 20


@dataclass(frozen=True)
class JobSpec:
    kind: str
    help: str
    params: tuple[ParamSpec, ...] = ()
    inputs: tuple[InputSpec, ...] = field(default_factory=tuple)
    one_of: tuple[str, ...] = ()
    """Inputs of which a submit must carry exactly one (reconstruct: a photo or views); protocol 1.1."""

    def check_inputs(self, given: set[str] | list[str] | tuple[str, ...]) -> None:
        """Raise ``invalid_input`` unless the required inputs and exactly one of :attr:`one_of` are given."""
        given = set(given)
        for spec in self.inputs:
            if spec.required and spec.name not in given:
                raise ProtocolError(ErrorCode.INVALID_INPUT, f"{self.kind} needs the input {spec.name!r} ({spec.help})",
                                    {"input": spec.name})
        if self.one_of and len(given & set(self.one_of)) != 1:
            chosen = sorted(given & set(self.one_of))
            raise ProtocolError(ErrorCode.INVALID_INPUT, f"{self.kind} takes exactly one of the inputs "
                                f"{', '.join(map(repr, self.one_of))}; got {', '.join(map(repr, chosen)) or 'none'}",
                                {"inputs": chosen, "one_of": list(self.one_of)})

    def param(self, name: str) -> ParamSpec:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def validate(self, params: dict[str, Any]) -> dict[str, Any]:
        """`params` checked against the spec and completed with defaults."""
        known = {p.name: p for p in self.params}
        for name in params:
            if name not in known:
                raise ProtocolError(ErrorCode.INVALID_PARAMS,
                                    f"{self.kind}: unknown parameter {name!r}; known: {', '.join(known) or 'none'}",
                                    {"param": name})
        return {p.name: p.validate(params[p.name], self.kind) if p.name in params else p.default
                for p in self.params}


def _phenotype(name: str, help_: str) -> ParamSpec:
    return ParamSpec(name, float, 0.5, help_, 0.0, 1.0)


_HEIGHT = ParamSpec("height", float, 1.70, "the person's height", 0.5, 2.5, unit=" m")
_RIG = ParamSpec("rig", str, "anny", "skeleton to rig the human with", choices=RIGS)
_BODY_MODEL = ParamSpec("body_model", str, "anny", "anny (built in), or smplx (the server's SMPL-X files; "
                        "its own rig and shape keys)", choices=BODY_MODELS)
_SMPLX_GENDER = ParamSpec("smplx_gender", str, "neutral", "which of your SMPL-X models (SMPLX_NEUTRAL, _FEMALE or "
                          "_MALE.npz) when the body model is smplx", choices=("neutral", "female", "male"))
_TEXTURE = ParamSpec("texture_size", int, 2048, "base-colour texture side", 256, 8192, unit=" px")

#: The body's shape: what the `body` job builds from and `generate` dresses (unless it samples one).
_SHAPE = (
    _phenotype("gender", "0 male .. 1 female"),
    ParamSpec("age", float, 25.0, "age: 1 baby .. 11 child .. 25 young adult .. 90 old", 1.0, 90.0, unit=" years"),
    _phenotype("muscle", "0 low .. 1 high muscle tone"),
    _phenotype("weight", "0 light .. 1 heavy"),
    _phenotype("proportions", "0 idealised .. 1 uncommon proportions"),
    _HEIGHT,
)

JOB_SPECS: dict[str, JobSpec] = {
    spec.kind: spec
    for spec in (
        JobSpec(
            "body",
            "a rigged, textured body from shape parameters (anny, CC0 MakeHuman)",
            (
                *_SHAPE,
                ParamSpec("pose", str, "A", "bind pose of the rig", choices=POSE_PRESETS),
                _RIG,
                _BODY_MODEL,
                _SMPLX_GENDER,
                ParamSpec("skin_tone", float, 0.4, "0 light .. 1 dark skin", 0.0, 1.0),
                _TEXTURE,
            ),
        ),
        JobSpec(
            "reconstruct",
            "a rigged, textured human from one photo of a person, or from six views of them",
            (
                _HEIGHT,
                ParamSpec("quality", str, "balanced", "speed / quality trade-off", choices=QUALITY_PRESETS),
                ParamSpec("segmentation", str, "auto", "person mask backend", choices=SEGMENTERS),
                ParamSpec("strict", bool, False, "fail when several people are in the photo"),
                _RIG,
                _BODY_MODEL,
                _SMPLX_GENDER,
                ParamSpec("rest_pose", str, "A", "the rig's rest pose; the photo's pose is set on the armature",
                          choices=REST_POSES),
                ParamSpec("multiview", str, "auto", "views of all sides from the photo first (PSHuman; auto: when "
                          "the server has its weights and a GPU)", choices=MULTIVIEW),
                ParamSpec("seed", int, 42, "seed of the multiview diffusion (same seed, same views)", 0, 2**31 - 1),
                ParamSpec("layers", bool, True, "garments and hair as separate objects over the body "
                          "(every path: photo, PSHuman, six views; off: one clothed surface)"),
                _TEXTURE,
            ),
            (InputSpec("image", "bytes", False, "the photo: PNG, JPEG or WebP (this or views)", 64 << 20),
             InputSpec("views", "bytes", False, "six views of the person instead of a photo: a zip of "
                       "color_<view>.png and normal_<view>.png (docs/views.md)", 256 << 20)),
            one_of=("image", "views"),
        ),
        JobSpec(
            "generate",
            "a layered human: a body and each garment its own skinned object, from layer choices and a seed",
            (
                ParamSpec("layers", list, ["body"], "the layers, inner first: body, then <layer>:<style> with layer "
                          "in bottom, top, shoes, hair (e.g. bottom:trousers)", 1, len(LAYER_ORDER),
                          choices=LAYER_CHOICES, item=str),
                ParamSpec("colors", list, [], "a colour per garment layer in order, #rrggbb (empty or missing: "
                          "chosen by the seed)", 0, len(LAYER_ORDER), item=str),
                ParamSpec("seed", int, 0, "same seed and choices, same human", 0, 2**31 - 1),
                ParamSpec("sample_body", bool, True, "the body's shape drawn from the seed (off: gender, age, "
                          "muscle, weight, proportions and height as given)"),
                *_SHAPE,
                ParamSpec("pose", str, "A", "bind pose of the rig", choices=("A", "T")),
                _RIG,
                _BODY_MODEL,
                _SMPLX_GENDER,
                ParamSpec("skin_tone", float, 0.4, "0 light .. 1 dark skin (sampled too when sample_body)", 0.0, 1.0),
                _TEXTURE,
            ),
        ),
        JobSpec(
            "echo",
            "diagnostic: returns its input asset (or a tiny one) after an optional hold; used to "
            "measure transport and to test progress and cancellation",
            (
                ParamSpec("hold", float, 0.0, "seconds to hold, reporting progress", 0.0, 600.0, unit=" s"),
                ParamSpec("fail", str, "", "make the job fail with this error code (tests)"),
            ),
            (InputSpec("asset", "asset", False, "any asset", 4 << 30),),
        ),
    )
}


def job_spec(kind: str) -> JobSpec:
    try:
        return JOB_SPECS[kind]
    except KeyError:
        raise ProtocolError(ErrorCode.UNKNOWN_JOB_KIND,
                            f"unknown job kind {kind!r}; this protocol knows {', '.join(JOB_SPECS)}",
                            {"kind": kind}) from None


_TYPE_NAMES: dict[type, str] = {float: "float", int: "int", str: "str", bool: "bool", list: "list"}
_TYPES_BY_NAME = {v: k for k, v in _TYPE_NAMES.items()}


def spec_to_dict(spec: JobSpec) -> dict[str, Any]:
    """A JobSpec as plain msgpack/JSON data, so a server can advertise its job kinds in `welcome`
    and a client that is older or newer than the server can still build its UI from them."""
    return {
        "kind": spec.kind,
        "help": spec.help,
        "params": [
            {"name": p.name, "type": _TYPE_NAMES[p.type], "default": p.default, "help": p.help,
             "min": p.min, "max": p.max, "choices": list(p.choices) if p.choices is not None else None,
             "unit": p.unit, **({"item": _TYPE_NAMES[p.item or str]} if p.type is list else {})}
            for p in spec.params
        ],
        "inputs": [
            {"name": i.name, "kind": i.kind, "required": i.required, "help": i.help, "max_bytes": i.max_bytes}
            for i in spec.inputs
        ],
        "one_of": list(spec.one_of),
    }


def spec_from_dict(data: dict[str, Any]) -> JobSpec:
    """Inverse of `spec_to_dict` (KeyError / ValueError on data it did not produce)."""
    params = []
    for p in data["params"]:
        if p["type"] not in _TYPES_BY_NAME:
            raise ValueError(f"parameter {p['name']!r}: unknown type {p['type']!r}")
        choices = p.get("choices")
        item = _TYPES_BY_NAME.get(p.get("item", "str")) if p["type"] == "list" else None
        params.append(ParamSpec(p["name"], _TYPES_BY_NAME[p["type"]], p["default"], p.get("help", ""),
                                p.get("min"), p.get("max"), tuple(choices) if choices is not None else None,
                                p.get("unit", ""), item))
    inputs = tuple(InputSpec(i["name"], i["kind"], bool(i["required"]), i.get("help", ""), int(i["max_bytes"]))
                   for i in data.get("inputs", ()))
    return JobSpec(data["kind"], data.get("help", ""), tuple(params), inputs, tuple(data.get("one_of") or ()))
