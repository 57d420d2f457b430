"""The HumanAsset: the one data model every Strata job returns and every consumer reads.

The CLI, the Blender add-on, the glTF writer and the server all use these classes, so the
conventions are fixed here once:

* Units are metres, Z is up, the person stands with the feet on the ground (z = 0) and faces -Y
  (Blender's front view looks along +Y at the face).
* Meshes are triangle meshes. UVs are stored per corner, OBJ style (`uvs` + `uv_faces`), so the
  mesh stays welded along UV seams; writers that need per-vertex UVs (glTF) split vertices
  themselves. UV origin is bottom-left (Blender's convention); glTF flips V on write.
* A layer carries either a base-colour texture (PNG bytes, sRGB) or per-vertex colours, or both.
* Skin weights are top-k: `joints (N, K)` indices into the rig and `weights (N, K)` summing to 1.
* Rig joints are given by their rest (bind) world matrices. Each joint's local +Y axis points from
  its head to its tail (Blender's bone convention) and `lengths` gives the distance, so an
  armature can be rebuilt exactly.
* Rest-pose contract (schema v2): every mesh is stored in the rig's rest pose, normally a standard
  one (`Rig.rest_pose`, "A" or "T"), and the pose the person was in (the photo's) is `Rig.pose`,
  one local transform per joint, exactly Blender's `PoseBone.matrix_basis`. With `R` the rest world
  matrices and `P = pose`, the posed world matrix of joint j is

      W_j = W_parent @ inv(R_parent) @ R_j @ P_j        (a root: W_j = R_j @ P_j)

  and a vertex v (rest) moves to `sum_k w_k (W_jk @ inv(R_jk)) v` (linear blend skinning). These
  are core/body/base.py's conventions, and core/body/skinning.py computes them.

This module holds only plain dataclasses over numpy arrays; validation and (de)serialisation live
in `codec.py` so that building an asset in a hot loop costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

SCHEMA_VERSION = 3
"""The newest schema version, bumped on any incompatible change; decoders reject versions they do not
know. v2 added `Rig.pose` (an array field: a v1 reader would reject its unreferenced frame, so
v2 assets must say so) and `Rig.rest_pose`; v3 added `Mesh.shape_keys` and `Mesh.shape_key_names`."""

SUPPORTED_SCHEMA_VERSIONS = (1, 2, 3)
"""Versions this code decodes. A v1 asset is a v2 asset without `Rig.pose` (its meshes are in the
rig's rest pose, whatever that is)."""

REST_POSES = ("A", "T", "")
"""Names of the standard rest poses `Rig.rest_pose` may give: arms 45 degrees down ("A"),
horizontal ("T"), or "" for a model's native or any other rest."""

LAYER_KINDS = ("body", "bottom", "top", "shoes", "hair", "other")
"""Layer kinds, in the order layered generation stacks them (body first)."""


@dataclass
class Mesh:
    """A triangle mesh in metres, Z-up."""

    vertices: np.ndarray
    """(N, 3) float32 positions."""
    faces: np.ndarray
    """(F, 3) uint32 vertex indices, counter-clockwise seen from outside."""
    normals: np.ndarray | None = None
    """(N, 3) float32 unit vertex normals, or None to let consumers compute smooth normals."""
    uvs: np.ndarray | None = None
    """(U, 2) float32 texture coordinates in [0, 1], origin bottom-left."""
    uv_faces: np.ndarray | None = None
    """(F, 3) uint32 indices into `uvs`, one per face corner; present iff `uvs` is."""
    vertex_colors: np.ndarray | None = None
    """(N, 4) uint8 sRGB RGBA per vertex."""
    shape_keys: np.ndarray | None = None
    """(K, N, 3) float32 offsets of `vertices` per shape key at full strength (a body model's shape and
    expression coefficients: SMPL-X's ``Shape000``..., ``Exp000``...; anny's body at each end of a phenotype:
    ``Heavier``, ``Female``...), in the stored rest pose."""
    shape_key_names: list[str] | None = None
    """K unique names, present iff `shape_keys` is."""

    @property
    def n_vertices(self) -> int:
        return int(self.vertices.shape[0])

    @property
    def n_faces(self) -> int:
        return int(self.faces.shape[0])


@dataclass
class Texture:
    """An encoded image (PNG), kept encoded: consumers hand the bytes straight to their loaders."""

    data: bytes
    mime: str = "image/png"

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) read from the PNG header without decoding the image."""
        return png_size(self.data)


@dataclass
class Skin:
    """Top-k linear-blend skinning weights of one layer against the asset's rig."""

    joints: np.ndarray
    """(N, K) uint16 joint indices into `Rig.joint_names`."""
    weights: np.ndarray
    """(N, K) float32 weights, each row summing to 1; unused slots have weight 0."""


@dataclass
class Layer:
    """One separately editable part of the human: the body, or one garment / hair piece."""

    name: str
    kind: str
    mesh: Mesh
    texture: Texture | None = None
    skin: Skin | None = None
    hides_body: np.ndarray | None = None
    """(M,) uint32 indices of body-layer vertices this layer covers. Consumers hide them with a
    mask (never delete them), so removing the garment brings the body back."""


@dataclass
class Rig:
    """A skeleton shared by all layers of an asset."""

    kind: str
    """Where the skeleton comes from, e.g. "anny", "anny/game_engine", "smplx"."""
    joint_names: list[str]
    parents: np.ndarray
    """(J,) int32 parent index per joint, -1 for roots; a parent may come after its child."""
    rest: np.ndarray
    """(J, 4, 4) float32 world matrices of the joints in the bind (rest) pose, the pose every mesh
    of the asset is stored in (local +Y = bone axis)."""
    lengths: np.ndarray
    """(J,) float32 bone lengths in metres (head to tail along local +Y)."""
    pose: np.ndarray | None = None
    """(J, 4, 4) float32 local transform of each joint relative to its rest, in the joint's own rest
    frame: exactly Blender's `PoseBone.matrix_basis`. The 3x3 block is a rotation for every joint;
    the translation is zero except where a root moves. Posed world matrices follow
    `W_j = W_parent @ inv(R_parent) @ R_j @ pose_j`, for a root `W_j = R_j @ pose_j` (R = `rest`).
    None = the rest pose (every transform the identity)."""
    rest_pose: str = ""
    """Which standard rest `rest` is, for labels: "A", "T", or "" (a model's native or other rest);
    see REST_POSES."""

    @property
    def n_joints(self) -> int:
        return len(self.joint_names)


@dataclass
class BodyParams:
    """The parametric body a result was built from, so it can be re-posed or re-fitted later."""

    model: str
    """Body model name: "anny" or "smplx"."""
    shape_names: list[str]
    shape: np.ndarray
    """(S,) float32 shape coefficients (anny phenotypes in [0, 1], or SMPL-X betas)."""
    pose: np.ndarray | None = None
    """(J, 3, 3) float32 local joint rotations relative to the model's native rest pose."""
    translation: np.ndarray | None = None
    """(3,) float32 root translation in metres."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Small JSON-able extras (rig name, fitted height, camera, ...)."""


@dataclass
class Provenance:
    """Where an asset came from: enough to reproduce it and to explain it to a user."""

    job_kind: str
    backends: dict[str, str] = field(default_factory=dict)
    """Stage name -> backend used, e.g. {"segmentation": "mediapipe"}."""
    timings: dict[str, float] = field(default_factory=dict)
    """Stage name -> seconds."""
    versions: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    """The job parameters as the server validated them."""
    input_hash: str = ""
    """sha256 of the job's input bytes (hex), empty when there was no input."""
    created: str = ""
    """ISO-8601 UTC time of creation."""
    notes: list[str] = field(default_factory=list)
    """Things the user should know, e.g. "3 people found; used the largest"."""


@dataclass
class HumanAsset:
    """Everything a job returns: layers, the rig they share, the body parameters, provenance."""

    name: str
    layers: list[Layer]
    provenance: Provenance
    rig: Rig | None = None
    body: BodyParams | None = None

    def layer(self, kind: str) -> Layer:
        """The first layer of `kind`; KeyError naming the kinds present otherwise."""
        for layer in self.layers:
            if layer.kind == kind:
                return layer
        raise KeyError(f"no {kind!r} layer; layers are {[lay.kind for lay in self.layers]}")


def schema_version_for(asset: HumanAsset) -> int:
    """The lowest schema version that holds `asset`, which is what encoders write: 3 when a mesh has shape
    keys, 2 when the rig carries a pose, else 1, so older readers keep reading what they can hold."""
    if any(layer.mesh.shape_keys is not None for layer in asset.layers):
        return 3
    return 2 if asset.rig is not None and asset.rig.pose is not None else 1


PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk; ValueError if `data` is not a PNG."""
    if len(data) < 24 or data[:8] != PNG_MAGIC or data[12:16] != b"IHDR":
        raise ValueError("not a PNG image")
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
