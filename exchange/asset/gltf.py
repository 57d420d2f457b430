"""Write a HumanAsset as a binary glTF 2.0 file (.glb) that Unity, Unreal, three.js and Blender import.

Mapping (docs/asset-format.md, "GLB export", says the same for readers):

* Axes: Strata is Z-up and faces -Y; glTF is Y-up and faces +Z. The proper rotation
  (x, y, z) -> (x, z, -y) does both at once (a Strata face direction (0, -1, 0) becomes (0, 0, 1)),
  and being a rotation (det +1) it keeps triangle winding and handedness. Positions and normals
  are rotated; joint world matrices are left-multiplied by it (`G = C @ rest`), so each joint keeps
  its own local frame (local +Y = bone axis), which is what Blender's own glTF exporter writes and
  what its importer's "Blender" bone heuristic expects on the way back.
* Nodes: one root node named after the asset holds an "Armature" node (the parent of the rig's root
  joints) and one mesh node per layer. All layers share ONE skin. Skinned mesh nodes carry no
  transform (glTF ignores it anyway).
* Pose: meshes and inverse bind matrices are the rest pose; the joint nodes carry the pose
  (`rig.pose`, each node's local transform = its rest local transform @ pose_j), so viewers show the
  person posed and importers that reset to the bind pose get the standard A/T rest.
* UVs: Strata stores them per corner; glTF needs them per vertex. Vertex i of the glTF mesh is Strata
  vertex i for i < N (with one of its UVs), and copies for the other UVs of seam vertices
  are appended after N, so indices into the Strata mesh (e.g. `hides_body`) stay valid. V is flipped
  because glTF's UV origin is top-left.
* Skin: top-k is reduced to the 4 influences glTF's JOINTS_0/WEIGHTS_0 carry (the largest kept,
  renormalised); duplicate joints in a row are merged and unused slots get joint 0, as the spec asks.
* Colours: textures are embedded as PNG bytes unchanged. glTF's COLOR_0 is linear and MULTIPLIES the
  base-colour texture, so Strata's sRGB vertex colours are converted to linear and, by default,
  written only for layers that have no texture (otherwise the texture would be tinted twice).

Only numpy, the standard library and siblings (the mesh helpers are in geometry.py) are used: the
Blender add-on carries this module, and Blender's Python has neither PIL nor trimesh.
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .geometry import limit_influences, smooth_normals, split_uv_seams, unit_vectors
from .schema import SCHEMA_VERSION, HumanAsset, Layer, Rig, schema_version_for

Z_UP_TO_Y_UP = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])
"""Rotation taking Strata coordinates (Z-up, facing -Y) to glTF ones (Y-up, facing +Z)."""

ROUGHNESS = 0.8
"""Skin and cloth are rough dielectrics; without a roughness map a constant ~0.8 looks right."""

GLTF_LEAVES_OUT = frozenset({"shape_key_bones"})
"""Body extras the glTF's `extras.strata` omits: how the bones follow shape keys the glTF does not carry."""

GENERATOR = f"Strata glTF writer (asset schema v{SCHEMA_VERSION})"

# glTF enums
_BYTE_U, _SHORT_U, _INT_U, _FLOAT = 5121, 5123, 5125, 5126
_ARRAY_BUFFER, _ELEMENT_ARRAY_BUFFER = 34962, 34963
_LINEAR, _LINEAR_MIPMAP_LINEAR, _REPEAT = 9729, 9987, 10497
_TRIANGLES = 4
# GLB framing
_GLB_MAGIC, _GLB_VERSION = b"glTF", 2
_CHUNK_JSON, _CHUNK_BIN = 0x4E4F534A, 0x004E4942

Buffer = bytes | bytearray | memoryview


# ---------------------------------------------------------------------------------------------
# public API


def to_glb(asset: HumanAsset, *, colors_with_texture: bool = False) -> bytes:
    """The asset as GLB bytes. `colors_with_texture` also writes COLOR_0 on textured layers (glTF
    viewers then multiply texture and vertex colours); by default COLOR_0 only stands in for a
    missing texture."""
    pieces = _glb_pieces(asset, colors_with_texture)
    return b"".join(pieces)


def write_glb(asset: HumanAsset, path: str | os.PathLike, *, colors_with_texture: bool = False) -> None:
    """Write the asset to `path` as GLB, atomically (a crash never leaves half a file under the name),
    streaming the pieces so the big buffers are not joined in memory first."""
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    try:
        with open(tmp, "wb") as fh:
            fh.writelines(_glb_pieces(asset, colors_with_texture))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


# ---------------------------------------------------------------------------------------------
# GLB assembly


class _Builder:
    """Collects glTF JSON objects and the binary buffer pieces, keeping every bufferView 4-aligned."""

    def __init__(self) -> None:
        self.doc: dict[str, Any] = {
            "asset": {"version": "2.0", "generator": GENERATOR},
            "scene": 0,
            "scenes": [],
            "nodes": [],
            "meshes": [],
            "materials": [],
            "textures": [],
            "images": [],
            "samplers": [],
            "skins": [],
            "accessors": [],
            "bufferViews": [],
            "buffers": [],
        }
        self.pieces: list[Buffer] = []
        self.offset = 0

    def add(self, kind: str, obj: dict[str, Any]) -> int:
        items = self.doc[kind]
        items.append(obj)
        return len(items) - 1

    def view(self, data: Buffer | np.ndarray, target: int | None = None) -> int:
        """A bufferView over `data` (no copy for contiguous arrays), padded to a 4-byte boundary."""
        if isinstance(data, np.ndarray):
            data = memoryview(np.ascontiguousarray(data)).cast("B")
        n = memoryview(data).nbytes
        view: dict[str, Any] = {"buffer": 0, "byteOffset": self.offset, "byteLength": n}
        if target is not None:
            view["target"] = target
        self.pieces.append(data)
        pad = (-n) % 4
        if pad:
            self.pieces.append(b"\0" * pad)
        self.offset += n + pad
        return self.add("bufferViews", view)

    def accessor(
        self,
        arr: np.ndarray,
        gltf_type: str,
        target: int | None = _ARRAY_BUFFER,
        normalized: bool = False,
        min_max: bool = False,
    ) -> int:
        ctype = {np.dtype("<f4"): _FLOAT, np.dtype("u1"): _BYTE_U, np.dtype("<u2"): _SHORT_U,
                 np.dtype("<u4"): _INT_U}[arr.dtype]
        acc: dict[str, Any] = {
            "bufferView": self.view(arr, target),
            "componentType": ctype,
            "count": int(arr.shape[0]),
            "type": gltf_type,
        }
        if normalized:
            acc["normalized"] = True
        if min_max:
            acc["min"] = arr.min(axis=0).tolist()
            acc["max"] = arr.max(axis=0).tolist()
        return self.add("accessors", acc)

    def finish(self) -> list[Buffer]:
        """The GLB file as a list of pieces: header, JSON chunk, BIN chunk."""
        doc = {k: v for k, v in self.doc.items() if v != []}
        if self.offset:
            doc["buffers"] = [{"byteLength": self.offset}]
        text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
        text += b" " * ((-len(text)) % 4)  # the JSON chunk is padded with spaces
        total = 12 + 8 + len(text) + (8 + self.offset if self.offset else 0)
        head = _GLB_MAGIC + struct.pack("<II", _GLB_VERSION, total) + struct.pack("<II", len(text), _CHUNK_JSON)
        out: list[Buffer] = [head + text]
        if self.offset:  # every view is already padded, so the BIN chunk needs no extra padding
            out.append(struct.pack("<II", self.offset, _CHUNK_BIN))
            out.extend(self.pieces)
        return out


def _glb_pieces(asset: HumanAsset, colors_with_texture: bool) -> list[Buffer]:
    b = _Builder()
    summary = _summary(asset)
    b.doc["asset"]["extras"] = {"strata": summary}
    root: dict[str, Any] = {"name": asset.name, "children": [], "extras": {"strata": summary}}
    b.add("scenes", {"name": asset.name, "nodes": [b.add("nodes", root)]})

    skin = None
    if asset.rig is not None and asset.rig.n_joints:
        armature, skin = _add_rig(b, asset.rig)
        root["children"].append(armature)

    images: dict[bytes, int] = {}
    for layer in asset.layers:
        root["children"].append(_add_layer(b, layer, skin, images, colors_with_texture))
    return b.finish()


# ---------------------------------------------------------------------------------------------
# rig


def _add_rig(b: _Builder, rig: Rig) -> tuple[int, int]:
    """Joint nodes (hierarchy from `parents`, local TRS from the rest world matrices composed with
    the pose), the "Armature" node above the root joints, and the one skin. Returns (armature node,
    skin)."""
    j = rig.n_joints
    parents = np.asarray(rig.parents, dtype=np.int64)
    world = np.zeros((j, 4, 4))
    world[:, :3, :] = np.einsum("ab,jbc->jac", Z_UP_TO_Y_UP, np.asarray(rig.rest, np.float64)[:, :3, :])
    world[:, 3, 3] = 1.0
    inv_world = _affine_inverse(world, "rig.rest")
    has_parent = parents >= 0
    local = world.copy()
    local[has_parent] = inv_world[parents[has_parent]] @ world[has_parent]
    t, q, s = _decompose(local)
    rest_local = _compose(t, q, s)
    if rig.pose is not None:
        # The pose is each joint's matrix_basis: local = rest local @ pose, in any frame C maps to
        # (C cancels between parent and child, and a root's C @ rest @ pose is its rest local @ pose).
        t, q, s = _decompose(rest_local @ np.asarray(rig.pose, np.float64))

    armature = b.add("nodes", {"name": "Armature", "children": [], "extras": {"strata_rig_kind": rig.kind}})
    first = len(b.doc["nodes"])
    lengths = np.asarray(rig.lengths, np.float64)
    for i in range(j):
        node: dict[str, Any] = {
            "name": rig.joint_names[i],
            "translation": t[i].tolist(),
            "rotation": q[i].tolist(),
            "extras": {"strata_bone_length": float(lengths[i])},
        }
        if np.abs(s[i] - 1.0).max() > 1e-6:
            node["scale"] = s[i].tolist()
        b.add("nodes", node)
    for i in range(j):
        parent = b.doc["nodes"][armature if parents[i] < 0 else first + int(parents[i])]
        parent.setdefault("children", []).append(first + i)

    # Bind matrices from the rest TRS (the nodes' own TRS when there is no pose), so importers that
    # rebuild the rest pose from them get meshes that sit still at rest even if `rest` was slightly
    # non-orthonormal.
    global_trs = _chain(rest_local, parents)
    ibm = _affine_inverse(global_trs, "rig.rest").astype(np.float32)
    ibm[:, 3, :] = (0.0, 0.0, 0.0, 1.0)  # validators require an exact affine bottom row
    ibm_acc = b.accessor(np.ascontiguousarray(ibm.transpose(0, 2, 1)).reshape(j, 16), "MAT4", target=None)
    skin = b.add("skins", {
        "name": rig.kind,
        "joints": list(range(first, first + j)),
        "inverseBindMatrices": ibm_acc,
        "skeleton": armature,
    })
    return armature, skin


def _affine_inverse(m: np.ndarray, what: str) -> np.ndarray:
    """Batched inverse of affine 4x4 matrices, with a clear error for a singular joint."""
    det = np.linalg.det(m[:, :3, :3])
    bad = np.flatnonzero(~(np.abs(det) > 1e-12))
    if bad.size:
        raise ValueError(f"{what}[{int(bad[0])}] is singular (determinant {det[bad[0]]:.3g})")
    return np.linalg.inv(m)


def _decompose(m: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Translation, unit quaternion (x, y, z, w) and scale of affine matrices (J, 4, 4).

    The rotation is the nearest one to the normalised 3x3 block (Bar-Itzhack's eigenvector method),
    so float32 drift in `rest` never produces a non-unit quaternion that importers would reject."""
    a = m[:, :3, :3]
    scale = np.linalg.norm(a, axis=1)  # column norms
    r = a / scale[:, None, :]
    flip = np.linalg.det(r) < 0  # a mirrored joint: put the reflection into the x scale
    scale[flip, 0] *= -1.0
    r[flip, :, 0] *= -1.0
    k = np.empty((len(m), 4, 4))
    k[:, 0, 0] = r[:, 0, 0] - r[:, 1, 1] - r[:, 2, 2]
    k[:, 1, 1] = r[:, 1, 1] - r[:, 0, 0] - r[:, 2, 2]
    k[:, 2, 2] = r[:, 2, 2] - r[:, 0, 0] - r[:, 1, 1]
    k[:, 3, 3] = r[:, 0, 0] + r[:, 1, 1] + r[:, 2, 2]
    k[:, 0, 1] = k[:, 1, 0] = r[:, 1, 0] + r[:, 0, 1]
    k[:, 0, 2] = k[:, 2, 0] = r[:, 2, 0] + r[:, 0, 2]
    k[:, 1, 2] = k[:, 2, 1] = r[:, 2, 1] + r[:, 1, 2]
    k[:, 0, 3] = k[:, 3, 0] = r[:, 2, 1] - r[:, 1, 2]
    k[:, 1, 3] = k[:, 3, 1] = r[:, 0, 2] - r[:, 2, 0]
    k[:, 2, 3] = k[:, 3, 2] = r[:, 1, 0] - r[:, 0, 1]
    _, vecs = np.linalg.eigh(k)
    q = vecs[:, :, -1]  # eigenvector of the largest eigenvalue, (x, y, z, w)
    q *= np.where(q[:, 3:] < 0, -1.0, 1.0)
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return m[:, :3, 3].copy(), q, scale


def _compose(t: np.ndarray, q: np.ndarray, s: np.ndarray) -> np.ndarray:
    """T * R * S matrices (J, 4, 4) from translation, quaternion (x, y, z, w) and scale."""
    x, y, z, w = q.T
    r = np.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
        2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
        2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
    ], axis=1).reshape(-1, 3, 3)
    m = np.zeros((len(t), 4, 4))
    m[:, :3, :3] = r * s[:, None, :]
    m[:, :3, 3] = t
    m[:, 3, 3] = 1.0
    return m


def _chain(local: np.ndarray, parents: np.ndarray) -> np.ndarray:
    """Global matrices from local ones; parents may come after children, so walk by depth."""
    n = len(parents)
    depth = np.full(n, -1)
    for i in range(n):
        path = []
        node = i
        while node >= 0 and depth[node] < 0:
            path.append(node)
            node = int(parents[node])
        d = -1 if node < 0 else depth[node]
        for p in reversed(path):
            d += 1
            depth[p] = d
    world = local.copy()
    for d in range(1, int(depth.max()) + 1 if n else 0):
        idx = np.flatnonzero(depth == d)
        world[idx] = world[parents[idx]] @ local[idx]
    return world


# ---------------------------------------------------------------------------------------------
# layers


def _add_layer(
    b: _Builder,
    layer: Layer,
    skin: int | None,
    images: dict[bytes, int],
    colors_with_texture: bool,
) -> int:
    node: dict[str, Any] = {
        "name": layer.name,
        "extras": {
            "strata_layer_kind": layer.kind,
            "strata_layer_name": layer.name,
            "strata_vertex_count": layer.mesh.n_vertices,
        },
    }
    m = layer.mesh
    if m.n_vertices == 0 or m.n_faces == 0:  # glTF accessors cannot be empty: keep the layer, no mesh
        return b.add("nodes", node)

    src, uv, indices = split_uv_seams(m)
    attrs: dict[str, int] = {}
    pos = _to_y_up(np.asarray(m.vertices, np.float32))
    attrs["POSITION"] = b.accessor(_take(pos, src), "VEC3", min_max=True)
    normals = unit_vectors(m.normals) if m.normals is not None else smooth_normals(m.vertices, m.faces)
    attrs["NORMAL"] = b.accessor(_take(_to_y_up(normals), src), "VEC3")
    textured = layer.texture is not None and uv is not None and layer.texture.mime in ("image/png", "image/jpeg")
    if uv is not None:
        attrs["TEXCOORD_0"] = b.accessor(uv, "VEC2")
    if m.vertex_colors is not None and (colors_with_texture or not textured):
        attrs["COLOR_0"] = b.accessor(_take(_srgb8_to_linear16(m.vertex_colors), src), "VEC4", normalized=True)
    if skin is not None and layer.skin is not None:
        joints, weights = limit_influences(layer.skin.joints, layer.skin.weights)
        joints = joints.astype(np.uint8 if len(b.doc["skins"][skin]["joints"]) < 256 else np.uint16)
        attrs["JOINTS_0"] = b.accessor(_take(joints, src), "VEC4")
        attrs["WEIGHTS_0"] = b.accessor(_take(weights, src), "VEC4")
        node["skin"] = skin

    index_dtype = np.uint16 if len(src) < 65535 else np.uint32  # 65535 is the primitive-restart value
    idx = b.accessor(indices.astype(index_dtype).reshape(-1), "SCALAR", target=_ELEMENT_ARRAY_BUFFER)

    material: dict[str, Any] = {
        "name": layer.name,
        "pbrMetallicRoughness": {"metallicFactor": 0.0, "roughnessFactor": ROUGHNESS},
        # Garments and hair are often single sheets seen from both sides; the closed body is not.
        "doubleSided": layer.kind != "body",
    }
    if textured:
        material["pbrMetallicRoughness"]["baseColorTexture"] = {"index": _texture(b, layer, images)}
    mat = b.add("materials", material)
    node["mesh"] = b.add("meshes", {
        "name": layer.name,
        "primitives": [{"attributes": attrs, "indices": idx, "material": mat, "mode": _TRIANGLES}],
    })
    return b.add("nodes", node)


def _texture(b: _Builder, layer: Layer, images: dict[bytes, int]) -> int:
    """A texture for the layer's image, sharing the image (and its bytes) between identical textures."""
    data = bytes(layer.texture.data)
    image = images.get(data)
    if image is None:
        image = b.add("images", {"name": layer.name, "mimeType": layer.texture.mime, "bufferView": b.view(data)})
        images[data] = image
    if not b.doc["samplers"]:
        b.add("samplers", {"magFilter": _LINEAR, "minFilter": _LINEAR_MIPMAP_LINEAR, "wrapS": _REPEAT,
                           "wrapT": _REPEAT})
    return b.add("textures", {"sampler": 0, "source": image})


def _to_y_up(v: np.ndarray) -> np.ndarray:
    """(x, y, z) -> (x, z, -y) as float32, i.e. `v @ Z_UP_TO_Y_UP.T` without the matmul."""
    out = np.empty((len(v), 3), np.float32)
    out[:, 0] = v[:, 0]
    out[:, 1] = v[:, 2]
    np.negative(v[:, 1], out=out[:, 2])
    return out


def _take(a: np.ndarray, src: np.ndarray) -> np.ndarray:
    """Rows of `a` for the output vertices; no copy when there was nothing to split."""
    if len(src) == len(a):  # src is then arange(N): seams add rows, they never drop any
        return np.ascontiguousarray(a)
    return np.take(a, src, axis=0)


_SRGB_TO_LINEAR16 = np.round(
    np.array([c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
              for c in (np.arange(256) / 255.0)]) * 65535
).astype(np.uint16)


def _srgb8_to_linear16(rgba: np.ndarray) -> np.ndarray:
    """sRGB RGBA8 -> linear RGBA16 (normalized): glTF's COLOR_0 is linear, and 8 bits of linear would
    band the darks. Alpha is not gamma-encoded, so it is only rescaled."""
    rgba = np.asarray(rgba, np.uint8)
    out = np.empty(rgba.shape, np.uint16)
    out[:, :3] = _SRGB_TO_LINEAR16[rgba[:, :3]]
    out[:, 3] = rgba[:, 3].astype(np.uint16) * 257
    return out


# ---------------------------------------------------------------------------------------------
# extras


def _summary(asset: HumanAsset) -> dict[str, Any]:
    """What glTF consumers that keep extras should know: schema, layers, rig, body and provenance."""
    p = asset.provenance
    out: dict[str, Any] = {
        "schema_version": schema_version_for(asset),
        "name": asset.name,
        "layers": [{"name": lay.name, "kind": lay.kind} for lay in asset.layers],
        "provenance": {
            "job_kind": p.job_kind,
            "backends": p.backends,
            "versions": p.versions,
            "timings": p.timings,
            "params": p.params,
            "input_hash": p.input_hash,
            "created": p.created,
            "notes": p.notes,
        },
    }
    if asset.rig is not None:
        out["rig"] = {"kind": asset.rig.kind, "joints": asset.rig.n_joints}
        if asset.rig.rest_pose:
            out["rig"]["rest_pose"] = asset.rig.rest_pose
        if asset.rig.pose is not None:
            out["rig"]["posed"] = True
    if asset.body is not None:  # glTF leaves the shape keys out, and with them where the bones go for each
        extra = {k: v for k, v in asset.body.extra.items() if k not in GLTF_LEAVES_OUT}
        out["body"] = {"model": asset.body.model, "extra": extra}
    return _jsonable(out)


def _jsonable(value: Any, depth: int = 0) -> Any:
    """JSON-safe copy: numpy scalars unwrapped, NaN/inf -> None, bytes summarised, unknowns as str."""
    if depth > 32:
        return None
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, np.generic):
        return _jsonable(value.item(), depth + 1)
    if isinstance(value, dict):
        return {str(k): _jsonable(v, depth + 1) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray | memoryview):
        return [_jsonable(v, depth + 1) for v in value]
    if isinstance(value, np.ndarray) and value.size <= 64:
        return _jsonable(value.tolist(), depth + 1)
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{memoryview(value).nbytes} bytes>"
    return str(value)
