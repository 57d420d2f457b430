"""Encode a HumanAsset to frames and back, validating everything on the way in.

An encoded asset is a list of frames: frame 0 is a msgpack header (all metadata, with each array
replaced by a reference `{"$frame": i, "dtype": ..., "shape": [...]}`), frames 1.. are the raw
little-endian array bytes. The wire protocol sends these frames as they are (zero-copy), and the
`.strata` file stores the same frames one after the other (`container.py`), so a file and a
message carry the same bytes.

Decoding never trusts its input: every field is type-checked, every array's dtype, shape and byte
length is checked against the schema, indices are range-checked and floats must be finite. Any
problem raises `AssetError` whose `path` names the exact field ("layers[1].skin.weights").
Decoded arrays are zero-copy, read-only views of the frames.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import msgpack
import numpy as np

from .schema import (
    LAYER_KINDS,
    REST_POSES,
    SUPPORTED_SCHEMA_VERSIONS,
    BodyParams,
    HumanAsset,
    Layer,
    Mesh,
    Provenance,
    Rig,
    Skin,
    Texture,
    png_size,
    schema_version_for,
)

FORMAT_NAME = "strata.asset"
MAX_TEXTURE_SIDE = 16384
MAX_SKIN_K = 16
POSE_ORTHONORMAL_TOL = 1e-4
"""How far `rig.pose`'s 3x3 blocks may be from a rotation (max |M^T M - I|): float32 rounding of a
true rotation is ~1e-7, a scaled or sheared block is off by far more."""


class AssetError(ValueError):
    """An asset is malformed; `path` names the offending field."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.reason = message


Buffer = bytes | bytearray | memoryview


# ---------------------------------------------------------------------------------------------
# encoding


class _Encoder:
    def __init__(self) -> None:
        self.frames: list[Buffer] = [b""]  # slot 0 is the header, filled last

    def array(self, arr: np.ndarray | None, dtype: str) -> dict[str, Any] | None:
        if arr is None:
            return None
        a = np.ascontiguousarray(arr, dtype=np.dtype(dtype).newbyteorder("<"))
        self.frames.append(memoryview(a).cast("B"))
        return {"$frame": len(self.frames) - 1, "dtype": dtype, "shape": list(a.shape)}

    def blob(self, data: bytes) -> dict[str, Any]:
        self.frames.append(data)
        return {"$frame": len(self.frames) - 1, "dtype": "uint8", "shape": [len(data)]}


def encode(asset: HumanAsset) -> list[Buffer]:
    """Frames for `asset`: [msgpack header, array bytes...]. Arrays are not copied when they are
    already contiguous little-endian arrays of the schema's dtype."""
    enc = _Encoder()
    layers = []
    for layer in asset.layers:
        m = layer.mesh
        layers.append(
            {
                "name": layer.name,
                "kind": layer.kind,
                "mesh": {
                    "vertices": enc.array(m.vertices, "float32"),
                    "faces": enc.array(m.faces, "uint32"),
                    "normals": enc.array(m.normals, "float32"),
                    "uvs": enc.array(m.uvs, "float32"),
                    "uv_faces": enc.array(m.uv_faces, "uint32"),
                    "vertex_colors": enc.array(m.vertex_colors, "uint8"),
                    "shape_keys": enc.array(m.shape_keys, "float32"),
                    "shape_key_names": None if m.shape_key_names is None else [str(n) for n in m.shape_key_names],
                },
                "texture": None
                if layer.texture is None
                else {"mime": layer.texture.mime, "data": enc.blob(layer.texture.data)},
                "skin": None
                if layer.skin is None
                else {
                    "joints": enc.array(layer.skin.joints, "uint16"),
                    "weights": enc.array(layer.skin.weights, "float32"),
                },
                "hides_body": enc.array(layer.hides_body, "uint32"),
            }
        )
    rig = None
    if asset.rig is not None:
        r = asset.rig
        rig = {
            "kind": r.kind,
            "joint_names": list(r.joint_names),
            "parents": enc.array(r.parents, "int32"),
            "rest": enc.array(r.rest, "float32"),
            "lengths": enc.array(r.lengths, "float32"),
            "pose": enc.array(r.pose, "float32"),
            "rest_pose": r.rest_pose,
        }
    body = None
    if asset.body is not None:
        b = asset.body
        body = {
            "model": b.model,
            "shape_names": list(b.shape_names),
            "shape": enc.array(b.shape, "float32"),
            "pose": enc.array(b.pose, "float32"),
            "translation": enc.array(b.translation, "float32"),
            "extra": b.extra,
        }
    p = asset.provenance
    header = {
        "format": FORMAT_NAME,
        "version": schema_version_for(asset),
        "name": asset.name,
        "layers": layers,
        "rig": rig,
        "body": body,
        "provenance": {
            "job_kind": p.job_kind,
            "backends": p.backends,
            "timings": p.timings,
            "versions": p.versions,
            "params": p.params,
            "input_hash": p.input_hash,
            "created": p.created,
            "notes": p.notes,
        },
    }
    enc.frames[0] = msgpack.packb(header, use_bin_type=True)
    return enc.frames


# ---------------------------------------------------------------------------------------------
# decoding


def _type_name(value: Any) -> str:
    return "nil" if value is None else type(value).__name__


class _Decoder:
    def __init__(self, frames: Sequence[Buffer]) -> None:
        self.frames = frames
        self.used: set[int] = set()

    def field(self, obj: dict, key: str, path: str, types: type | tuple[type, ...], optional=False):
        if key not in obj or obj[key] is None:
            if optional:
                return None
            raise AssetError(f"{path}.{key}" if path else key, "missing")
        value = obj[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in _as_tuple(types)):
            want = " or ".join(t.__name__ for t in _as_tuple(types))
            raise AssetError(f"{path}.{key}" if path else key, f"expected {want}, got {_type_name(value)}")
        return value

    def array(
        self,
        obj: dict,
        key: str,
        path: str,
        dtype: str,
        shape: tuple[int | None, ...],
        optional: bool = False,
    ) -> np.ndarray | None:
        where = f"{path}.{key}"
        ref = self.field(obj, key, path, dict, optional)
        if ref is None:
            return None
        idx = ref.get("$frame")
        if not isinstance(idx, int) or isinstance(idx, bool) or not 1 <= idx < len(self.frames):
            raise AssetError(where, f"frame reference {idx!r} out of range 1..{len(self.frames) - 1}")
        if idx in self.used:
            raise AssetError(where, f"frame {idx} is referenced twice")
        self.used.add(idx)
        if ref.get("dtype") != dtype:
            raise AssetError(where, f"dtype {ref.get('dtype')!r}, expected {dtype!r}")
        got = ref.get("shape")
        if (
            not isinstance(got, list)
            or len(got) != len(shape)
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in got)
        ):
            raise AssetError(where, f"shape {got!r}, expected {len(shape)} non-negative dimensions")
        for i, (g, want) in enumerate(zip(got, shape, strict=True)):
            if want is not None and g != want:
                raise AssetError(where, f"shape {got}, dimension {i} must be {want}")
        dt = _wire_dtype(dtype)
        buf = memoryview(self.frames[idx]).cast("B")
        expected = int(np.prod(got, dtype=np.int64)) * dt.itemsize
        if buf.nbytes != expected:
            raise AssetError(where, f"frame {idx} holds {buf.nbytes} bytes, shape {got} needs {expected}")
        arr = np.frombuffer(buf, dtype=dt).reshape(got)
        if arr.flags.writeable:
            arr.flags.writeable = False
        if dt.kind == "f" and not np.isfinite(arr).all():
            raise AssetError(where, "contains NaN or infinite values")
        return arr


def _wire_dtype(name: str) -> np.dtype:
    """The little-endian dtype of the wire, spelled natively on little-endian hosts: numpy then exports
    the buffer format as native ("f", not "<f"), which bpy's foreach_set needs for its fast path."""
    dt = np.dtype(name)
    return dt if sys.byteorder == "little" else dt.newbyteorder("<")


def _as_tuple(types: type | tuple[type, ...]) -> tuple[type, ...]:
    return types if isinstance(types, tuple) else (types,)


def _check_index(arr: np.ndarray | None, bound: int, where: str, what: str) -> None:
    if arr is not None and arr.size and int(arr.max()) >= bound:
        raise AssetError(where, f"index {int(arr.max())} out of range: {what} has {bound}")


def _str_map(obj: Any, where: str, value_types: tuple[type, ...]) -> dict:
    if not isinstance(obj, dict):
        raise AssetError(where, f"expected map, got {_type_name(obj)}")
    for k, v in obj.items():
        if not isinstance(k, str) or not isinstance(v, value_types) or isinstance(v, bool):
            raise AssetError(f"{where}[{k!r}]", f"expected str -> {value_types[0].__name__}")
    return obj


def decode_header(frame: Buffer) -> dict:
    """Unpack and sanity-check frame 0 (format name and version) without touching arrays."""
    try:
        header = msgpack.unpackb(bytes(frame), raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several unrelated types
        raise AssetError("header", f"not a msgpack map ({exc.__class__.__name__}: {exc})") from None
    if not isinstance(header, dict):
        raise AssetError("header", f"expected map, got {_type_name(header)}")
    if header.get("format") != FORMAT_NAME:
        raise AssetError("format", f"{header.get('format')!r} is not a Strata asset")
    version = header.get("version")
    if isinstance(version, bool) or version not in SUPPORTED_SCHEMA_VERSIONS:
        supported = ", ".join(map(str, SUPPORTED_SCHEMA_VERSIONS))
        raise AssetError("version", f"asset schema version {version!r} is not supported (this reader: {supported})")
    return header


def decode(frames: Sequence[Buffer]) -> HumanAsset:
    """Validate `frames` (as produced by `encode`) and build a HumanAsset of zero-copy views."""
    if len(frames) < 1:
        raise AssetError("", "no frames")
    header = decode_header(frames[0])
    d = _Decoder(frames)
    name = d.field(header, "name", "", str)
    raw_layers = d.field(header, "layers", "", list)
    if not raw_layers:
        raise AssetError("layers", "an asset needs at least one layer")

    rig = None
    raw_rig = d.field(header, "rig", "", dict, optional=True)
    if raw_rig is not None:
        rig = _decode_rig(d, raw_rig)

    layers = [_decode_layer(d, raw, f"layers[{i}]", rig) for i, raw in enumerate(raw_layers)]
    bodies = [i for i, lay in enumerate(layers) if lay.kind == "body"]
    if len(bodies) > 1:
        raise AssetError(f"layers[{bodies[1]}].kind", "an asset has at most one body layer")
    body_vertices = layers[bodies[0]].mesh.n_vertices if bodies else None
    for i, layer in enumerate(layers):
        if layer.hides_body is not None:
            if body_vertices is None:
                raise AssetError(f"layers[{i}].hides_body", "set but the asset has no body layer")
            _check_index(layer.hides_body, body_vertices, f"layers[{i}].hides_body", "the body layer")

    body = None
    raw_body = d.field(header, "body", "", dict, optional=True)
    if raw_body is not None:
        body = _decode_body(d, raw_body)

    prov = _decode_provenance(d, d.field(header, "provenance", "", dict))
    unused = set(range(1, len(frames))) - d.used
    if unused:
        raise AssetError("frames", f"frames {sorted(unused)} are not referenced by the header")
    return HumanAsset(name=name, layers=layers, provenance=prov, rig=rig, body=body)


def _decode_rig(d: _Decoder, raw: dict) -> Rig:
    names = d.field(raw, "joint_names", "rig", list)
    if not all(isinstance(n, str) and n for n in names):
        raise AssetError("rig.joint_names", "must be non-empty strings")
    if len(set(names)) != len(names):
        raise AssetError("rig.joint_names", "joint names must be unique")
    j = len(names)
    parents = d.array(raw, "parents", "rig", "int32", (j,))
    if parents.size and (parents.min() < -1 or parents.max() >= j):
        raise AssetError("rig.parents", f"parent indices must be in -1..{j - 1}")
    _check_acyclic(parents)
    rest = d.array(raw, "rest", "rig", "float32", (j, 4, 4))
    if j and not np.allclose(rest[:, 3, :], [0, 0, 0, 1], atol=1e-6):
        raise AssetError("rig.rest", "the bottom row of every joint matrix must be 0 0 0 1")
    if j and (np.abs(np.linalg.det(rest[:, :3, :3].astype(np.float64))) < 1e-9).any():
        raise AssetError("rig.rest", "joint matrices must be invertible")
    lengths = d.array(raw, "lengths", "rig", "float32", (j,))
    if (lengths <= 0).any():
        raise AssetError("rig.lengths", "bone lengths must be positive")
    pose = d.array(raw, "pose", "rig", "float32", (j, 4, 4), optional=True)
    if pose is not None:
        _check_pose(pose, names)
    rest_pose = d.field(raw, "rest_pose", "rig", str, optional=True) or ""
    if rest_pose not in REST_POSES:
        raise AssetError("rig.rest_pose", f"{rest_pose!r} is not one of {', '.join(map(repr, REST_POSES))}")
    return Rig(kind=d.field(raw, "kind", "rig", str), joint_names=names, parents=parents, rest=rest,
               lengths=lengths, pose=pose, rest_pose=rest_pose)


def _check_pose(pose: np.ndarray, names: list[str]) -> None:
    """Every pose matrix affine with a rotation block (finiteness is checked with the array)."""
    if not len(pose):
        return
    bottom = np.abs(pose[:, 3, :] - np.array([0, 0, 0, 1], np.float32)).max(axis=1)
    bad = np.flatnonzero(bottom > 1e-6)
    if bad.size:
        j = int(bad[0])
        raise AssetError("rig.pose", f"joint {j} ({names[j]!r}): the bottom row must be 0 0 0 1, "
                                     f"got {pose[j, 3].tolist()}")
    r = pose[:, :3, :3].astype(np.float64)
    error = np.abs(np.einsum("jki,jkl->jil", r, r) - np.eye(3)).max(axis=(1, 2))
    det = np.linalg.det(r)
    bad = np.flatnonzero((error > POSE_ORTHONORMAL_TOL) | (det < 0))
    if bad.size:
        j = int(bad[0])
        what = "a reflection" if det[j] < 0 else f"off by {error[j]:.2g}"
        raise AssetError("rig.pose", f"joint {j} ({names[j]!r}): the 3x3 block must be a rotation ({what}; "
                                     f"tolerance {POSE_ORTHONORMAL_TOL:g})")


def _check_acyclic(parents: np.ndarray) -> None:
    state = np.zeros(len(parents), dtype=np.int8)  # 0 unseen, 1 on path, 2 done
    for start in range(len(parents)):
        path = []
        node = start
        while node != -1 and state[node] == 0:
            state[node] = 1
            path.append(node)
            node = int(parents[node])
        if node != -1 and state[node] == 1:
            raise AssetError("rig.parents", f"joint {node} is its own ancestor")
        for p in path:
            state[p] = 2


def _decode_layer(d: _Decoder, raw: Any, path: str, rig: Rig | None) -> Layer:
    if not isinstance(raw, dict):
        raise AssetError(path, f"expected map, got {_type_name(raw)}")
    name = d.field(raw, "name", path, str)
    kind = d.field(raw, "kind", path, str)
    if kind not in LAYER_KINDS:
        raise AssetError(f"{path}.kind", f"{kind!r} is not one of {', '.join(LAYER_KINDS)}")
    mp = f"{path}.mesh"
    m = d.field(raw, "mesh", path, dict)
    vertices = d.array(m, "vertices", mp, "float32", (None, 3))
    n = vertices.shape[0]
    faces = d.array(m, "faces", mp, "uint32", (None, 3))
    _check_index(faces, n, f"{mp}.faces", "the mesh's vertices")
    normals = d.array(m, "normals", mp, "float32", (n, 3), optional=True)
    uvs = d.array(m, "uvs", mp, "float32", (None, 2), optional=True)
    uv_faces = d.array(m, "uv_faces", mp, "uint32", (faces.shape[0], 3), optional=True)
    if (uvs is None) != (uv_faces is None):
        raise AssetError(f"{mp}.uv_faces", "uvs and uv_faces must be given together")
    if uvs is not None:
        _check_index(uv_faces, uvs.shape[0], f"{mp}.uv_faces", "uvs")
    colors = d.array(m, "vertex_colors", mp, "uint8", (n, 4), optional=True)
    keys = d.array(m, "shape_keys", mp, "float32", (None, n, 3), optional=True)
    names = d.field(m, "shape_key_names", mp, list, optional=True)
    if (keys is None) != (names is None):
        raise AssetError(f"{mp}.shape_key_names", "shape_keys and shape_key_names must be given together")
    if names is not None:
        if len(names) != keys.shape[0] or not all(isinstance(x, str) and x for x in names):
            raise AssetError(f"{mp}.shape_key_names", f"expected {keys.shape[0]} non-empty names, got {names!r}")
        if len(set(names)) != len(names):
            raise AssetError(f"{mp}.shape_key_names", "names must be unique")
    mesh = Mesh(vertices, faces, normals, uvs, uv_faces, colors, keys, names)

    texture = None
    t = d.field(raw, "texture", path, dict, optional=True)
    if t is not None:
        mime = d.field(t, "mime", f"{path}.texture", str)
        if mime != "image/png":
            raise AssetError(f"{path}.texture.mime", f"{mime!r} unsupported; textures are image/png")
        data = d.array(t, "data", f"{path}.texture", "uint8", (None,))
        blob = data.tobytes()
        try:
            w, h = png_size(blob)
        except ValueError:
            raise AssetError(f"{path}.texture.data", "not a PNG image") from None
        if not (0 < w <= MAX_TEXTURE_SIDE and 0 < h <= MAX_TEXTURE_SIDE):
            raise AssetError(f"{path}.texture.data", f"texture size {w}x{h} outside 1..{MAX_TEXTURE_SIDE}")
        if uvs is None:
            raise AssetError(f"{path}.texture", "a texture needs mesh.uvs")
        texture = Texture(blob, mime)

    skin = None
    s = d.field(raw, "skin", path, dict, optional=True)
    if s is not None:
        sp = f"{path}.skin"
        if rig is None:
            raise AssetError(sp, "skin weights need a rig")
        joints = d.array(s, "joints", sp, "uint16", (n, None))
        k = joints.shape[1]
        if not 1 <= k <= MAX_SKIN_K:
            raise AssetError(f"{sp}.joints", f"{k} influences per vertex; allowed 1..{MAX_SKIN_K}")
        weights = d.array(s, "weights", sp, "float32", (n, k))
        _check_index(joints, rig.n_joints, f"{sp}.joints", "the rig's joints")
        if (weights < 0).any():
            raise AssetError(f"{sp}.weights", "negative weight")
        # A matrix-vector product rather than weights.sum(axis=1): numpy reduces a short inner axis ~6x
        # slower, and this one line dominated decoding large assets (same sums up to float32 rounding).
        sums = weights @ np.ones(weights.shape[1], dtype=weights.dtype)
        bad = np.flatnonzero(np.abs(sums - 1.0) > 1e-3)
        if bad.size:
            raise AssetError(f"{sp}.weights", f"vertex {int(bad[0])} weights sum to {sums[bad[0]]:.4f}, not 1")
        skin = Skin(joints, weights)

    hides = d.array(raw, "hides_body", path, "uint32", (None,), optional=True)
    return Layer(name=name, kind=kind, mesh=mesh, texture=texture, skin=skin, hides_body=hides)


def _decode_body(d: _Decoder, raw: dict) -> BodyParams:
    names = d.field(raw, "shape_names", "body", list)
    if not all(isinstance(x, str) for x in names):
        raise AssetError("body.shape_names", "must be strings")
    shape = d.array(raw, "shape", "body", "float32", (len(names),))
    pose = d.array(raw, "pose", "body", "float32", (None, 3, 3), optional=True)
    trans = d.array(raw, "translation", "body", "float32", (3,), optional=True)
    extra = d.field(raw, "extra", "body", dict, optional=True) or {}
    return BodyParams(model=d.field(raw, "model", "body", str), shape_names=names, shape=shape, pose=pose,
                      translation=trans, extra=extra)


def _decode_provenance(d: _Decoder, raw: dict) -> Provenance:
    p = "provenance"
    notes = d.field(raw, "notes", p, list, optional=True) or []
    if not all(isinstance(x, str) for x in notes):
        raise AssetError(f"{p}.notes", "must be strings")
    return Provenance(
        job_kind=d.field(raw, "job_kind", p, str),
        backends=_str_map(raw.get("backends") or {}, f"{p}.backends", (str,)),
        timings=_str_map(raw.get("timings") or {}, f"{p}.timings", (float, int)),
        versions=_str_map(raw.get("versions") or {}, f"{p}.versions", (str,)),
        params=d.field(raw, "params", p, dict, optional=True) or {},
        input_hash=d.field(raw, "input_hash", p, str, optional=True) or "",
        created=d.field(raw, "created", p, str, optional=True) or "",
        notes=notes,
    )
