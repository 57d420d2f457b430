"""Build Blender data from a HumanAsset: one collection per job, one object per layer, one armature.

This module imports only bpy, mathutils, numpy and the standard library. It reads the asset by duck
typing (the dataclasses of exchange/asset/schema.py), so the same code imports a result that arrived
over the wire, a `.strata` file, or an asset built by a test.

Speed is the point of this module, and what makes it fast is easy to break:

* Every array goes to Blender through `foreach_set` on the attribute API (`position`,
  `.corner_vert`, UVs, colours). `foreach_set` copies a C buffer in one go ONLY when
  the numpy array's buffer format is exactly the native one ("f" / "i"). Arrays decoded by the asset
  codec are views with an explicit little-endian dtype, whose buffer format is "<f"; Blender then
  silently takes its per-item Python path, about 300x slower (32 ms instead of 0.1 ms for one
  layer's UVs). `_flat` re-views every array with the native dtype (no copy).
* Skin weights: Blender has no bulk vertex-group API. `VertexGroup.add(indices, weight)` costs about
  1 microsecond per call plus 0.1 microsecond per index, so the work is grouping the (vertex,
  joint, weight) triples into as few calls as possible without changing any weight: runs of
  consecutive vertices with the same joint and weight first (O(n), no sort), exact (joint, weight)
  groups otherwise. See `write_weights` and bench/import_speed.py for the measured alternatives.
* Textures are packed from the PNG bytes in memory (`Image.pack(data=...)`): no temporary file, and
  Blender decodes the PNG lazily, the first time it is drawn.

Pose: meshes arrive in the rig's rest pose (the standard A or T pose) and `rig.pose` holds each
joint's `PoseBone.matrix_basis`; the edit bones are built from `rig.rest` and the pose goes onto the
pose bones (location, quaternion, scale through `foreach_set`), so the human shows the photo's pose
and the armature's "Rest Position" shows the A/T pose.
"""

from __future__ import annotations

import json
import re
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import bpy
import numpy as np
from mathutils import Matrix

UV_NAME = "UVMap"
COLOR_NAME = "Color"
ROUGHNESS = 0.8
"""Skin and cloth are rough dielectrics; the same constant the glTF writer uses."""
TEMP_WEIGHTS = "~strata-weights"
RUNS_MAX_FRACTION = 0.125
"""Use run-length grouping of weights when it needs at most this many calls per weight."""


@dataclass
class ImportResult:
    """What an import created, for the operator's report, tests and the benchmark."""

    collection: bpy.types.Collection
    armature: bpy.types.Object | None
    objects: dict[str, bpy.types.Object]
    """Object name -> object, in the asset's layer order (names are the layer names, made unique)."""
    timings: dict[str, float] = field(default_factory=dict)
    """Stage -> seconds (mesh, uv, normals, colors, weights, masks, materials, armature, ...)."""
    weight_calls: int = 0
    """How many `VertexGroup.add` calls writing the skin weights took (see `write_weights`)."""


class _Clock:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._t = time.perf_counter()

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.timings[stage] = self.timings.get(stage, 0.0) + now - self._t
        self._t = now


def _flat(array: Any, dtype: type) -> np.ndarray:
    """A C-contiguous 1-D array of `dtype` whose buffer format is the native one (see the module
    docstring: foreach_set falls back to a per-item path for "<f"-format views)."""
    a = np.ascontiguousarray(array, dtype=dtype).reshape(-1)
    return a.view(dtype)


# ---------------------------------------------------------------------------------------------
# entry point


def import_asset(
    asset: Any,
    context: bpy.types.Context | None = None,
    *,
    name: str | None = None,
    job_id: str = "",
    source_image: str = "",
    parent_collection: bpy.types.Collection | None = None,
    use_normals: bool = True,
    select: bool = True,
    at_cursor: bool = True,
) -> ImportResult:
    """Create a new collection holding `asset`: an armature (when it has a rig) and one mesh object
    per layer, parented to the armature, skinned, with materials; garments hide the body under them
    with a MASK modifier. Never reuses existing data-blocks, so importing twice gives two humans. Objects
    are named after the human (``<name> Body``, ``<name> T-shirt``, ``<name> Rig``) and stand at the 3D
    cursor when ``at_cursor``."""
    context = context or bpy.context
    clock = _Clock()
    scene, view_layer = scene_and_view_layer(context)
    _leave_edit_modes(context, scene, view_layer)

    collection = bpy.data.collections.new(name or asset.name or "Strata")
    (parent_collection or scene.collection).children.link(collection)
    props = _provenance_props(asset, job_id, source_image)
    _set_props(collection, props)

    armature = None
    bone_names: list[str] = []
    if asset.rig is not None:
        armature, bone_names = _build_armature(context, collection, f"{collection.name} Rig", asset.rig)
        _set_props(armature, {**props, **_model_props(asset, bone_names)})
        keep_shape_bones(armature, asset, bone_names)
        clock.lap("armature")

    built: list[tuple[Any, bpy.types.Object]] = []
    weight_calls = 0
    for layer in asset.layers:
        mesh = build_mesh(layer.name, layer.mesh, use_normals=use_normals, clock=clock)
        mesh.materials.append(build_material(f"{collection.name} {layer.name}", layer, mesh))
        clock.lap("materials")
        obj = bpy.data.objects.new(f"{collection.name} {layer.name}", mesh)  # "Body", "Body.001": whose?
        collection.objects.link(obj)
        _set_props(obj, {**props, "strata_layer_kind": layer.kind, "strata_layer_name": layer.name})
        if layer.mesh.shape_keys is not None:
            model = asset.body.model if asset.body is not None else ""
            add_shape_keys(obj, layer.mesh.vertices, layer.mesh.shape_keys, layer.mesh.shape_key_names,
                           SHAPE_KEY_RANGES.get(model, SHAPE_KEY_RANGE))
            clock.lap("shape keys")
        if armature is not None:
            obj.parent = armature
            if layer.skin is not None:
                weight_calls += write_weights(obj, layer.skin.joints, layer.skin.weights, bone_names, context)
                clock.lap("weights")
        built.append((layer, obj))

    body = next((obj for layer, obj in built if layer.kind == "body"), None)
    if body is not None:
        for layer, obj in built:
            if layer.hides_body is not None and len(layer.hides_body) and layer.kind != "body":
                obj["strata_mask_modifier"] = add_mask(body, layer.name, layer.hides_body).name
            if obj is not body:
                follow_body_keys(body, obj)
        clock.lap("masks")
    if armature is not None:  # after the masks: hide first, then deform what is left
        for layer, obj in built:
            if layer.skin is not None:
                obj.modifiers.new("Armature", "ARMATURE").object = armature
        clock.lap("modifiers")
    objects = {obj.name: obj for _, obj in built}
    if at_cursor:  # beside the last human, where the artist points, not on top of it at the origin
        cursor = scene.cursor.location.copy()
        for obj in [armature] if armature is not None else [obj for _, obj in built]:
            obj.location = cursor
    if select:
        _select(view_layer, armature, list(objects.values()))
    return ImportResult(collection, armature, objects, clock.timings, weight_calls)


# ---------------------------------------------------------------------------------------------
# meshes


def build_mesh(name: str, src: Any, *, use_normals: bool = True, clock: _Clock | None = None) -> bpy.types.Mesh:
    """A Blender mesh from a schema Mesh: positions, triangles, per-corner UVs, normals, colours."""
    clock = clock or _Clock()
    faces = np.asarray(src.faces)
    n, f = int(src.vertices.shape[0]), int(faces.shape[0])
    mesh = bpy.data.meshes.new(name)
    mesh.vertices.add(n)
    mesh.loops.add(3 * f)
    mesh.polygons.add(f)
    mesh.attributes["position"].data.foreach_set("vector", _flat(src.vertices, np.float32))
    mesh.attributes[".corner_vert"].data.foreach_set("value", _flat(faces, np.int32))
    mesh.polygons.foreach_set("loop_start", np.arange(0, 3 * f, 3, dtype=np.int32))
    mesh.update(calc_edges=True)
    clock.lap("mesh")
    if src.uvs is not None:
        mesh.uv_layers.new(name=UV_NAME, do_init=False)
        corners = np.take(np.asarray(src.uvs), np.asarray(src.uv_faces).reshape(-1), axis=0)
        mesh.attributes[UV_NAME].data.foreach_set("vector", _flat(corners, np.float32))
        clock.lap("uv")
    if use_normals and src.normals is not None:
        set_vertex_normals(mesh, src.normals, faces)
        clock.lap("normals")
    if src.vertex_colors is not None:
        # FLOAT_COLOR takes linear floats through the fast path; BYTE_COLOR's sRGB setter is per item.
        attr = mesh.color_attributes.new(COLOR_NAME, "FLOAT_COLOR", "POINT")
        attr.data.foreach_set("color", _linear_rgba(src.vertex_colors))
        mesh.color_attributes.active_color = attr
        mesh.color_attributes.render_color_index = mesh.color_attributes.active_color_index
        clock.lap("colors")
    if f and ((faces[:, 0] == faces[:, 1]) | (faces[:, 1] == faces[:, 2]) | (faces[:, 0] == faces[:, 2])).any():
        mesh.validate(clean_customdata=False)  # degenerate triangles: Blender drops them with their corners
    return mesh


def _srgb_to_linear_table() -> np.ndarray:
    c = np.arange(256, dtype=np.float64) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4).astype(np.float32)


_SRGB_TO_LINEAR = _srgb_to_linear_table()


def _linear_rgba(colors: Any) -> np.ndarray:
    """uint8 sRGB RGBA -> flat float32 linear RGB + straight alpha, as FLOAT_COLOR stores them."""
    c = np.asarray(colors)
    out = np.empty(c.shape, dtype=np.float32)
    out[:, :3] = _SRGB_TO_LINEAR[c[:, :3]]
    out[:, 3] = c[:, 3] * np.float32(1 / 255)
    return out.reshape(-1)


NORMALS_MATCH_COS = 0.9999
"""Asset normals within ~0.8 degrees of Blender's own count as the same normals."""


def set_vertex_normals(mesh: bpy.types.Mesh, normals: Any, faces: np.ndarray) -> bool:
    """Give the mesh the asset's per-vertex normals; returns whether custom normals were needed.

    Blender computes smooth vertex normals itself (angle-weighted), and those follow the armature
    when the human is posed. Strata's assets carry exactly those normals (exchange/asset/geometry.py
    `smooth_normals`), so normally nothing is written: the check costs ~5-15 ms per 76k vertices. Normals that differ
    (authored by another tool) are stored as custom split normals, which Blender encodes relative to
    its own and so rotates with the mesh too; that setter is slow (~65 ms per 76k vertices), but only
    such assets pay it. Deliberately NOT Blender 4.5's free `custom_normal` attribute: it is a fast
    bulk `foreach_set`, but the Armature modifier does not rotate free normals, so a posed human
    would be lit with its rest-pose normals (tests/blender/test_import_normals.py poses an import).
    """
    want = np.ascontiguousarray(normals, dtype=np.float32).reshape(-1, 3)
    own = np.empty(want.size, np.float32)
    mesh.vertex_normals.foreach_get("vector", own)
    used = np.zeros(len(want), dtype=bool)
    used[faces.reshape(-1)] = True  # loose vertices have no normal to keep
    dots = np.einsum("ij,ij->i", own.reshape(-1, 3)[used], want[used])
    if not len(dots) or float(dots.min()) >= NORMALS_MATCH_COS:
        return False
    mesh.normals_split_custom_set_from_vertices(want)
    return True


# ---------------------------------------------------------------------------------------------
# skin weights


ADD_CALL_S = 1.5e-6
"""Measured cost of one `VertexGroup.add` call (Python + RNA), and of each index it writes:"""
ADD_INDEX_S = 1.2e-7
CONVERT_CALL_S = 1.2e-4
"""... and of one `geometry.attribute_convert` call, and of each vertex it scans (bench/import_speed.py)."""
CONVERT_VERTEX_S = 2.0e-8


def write_weights(obj: bpy.types.Object, joints: Any, weights: Any, bone_names: Sequence[str],
                  context: bpy.types.Context | None = None) -> int:
    """Write top-k skin weights into vertex groups named after the bones, exactly; returns the
    number of Blender calls it took.

    Blender has no bulk setter for vertex-group weights. `VertexGroup.add(indices, weight)` takes ONE
    weight per call, so the (vertex, joint, weight) triples are grouped by (joint, weight), never
    rounded:

    1. runs: in slot-major order, consecutive vertices sharing joint and weight become one call
       over a contiguous index range. O(n), no sort: meshes whose vertex rings share weights and
       rigid parts (weight 1.0) compress to a few hundred calls.
    2. else exact (joint, weight) groups from one sort of a 64-bit key.
    3. when (nearly) every weight differs, a call per weight is slower than converting one float
       attribute per joint into a vertex group in C (`geometry.attribute_convert`, which skips
       zeros): that is used when the cost model says it is cheaper.

    Weights are added ('ADD', also faster than 'REPLACE'), so a joint repeated within a row gets
    the sum of its slots, as skinning would. Zero weights are skipped.
    """
    J = np.asarray(joints)
    W = np.asarray(weights)
    n, k = J.shape
    if n == 0:
        return 0
    jj = np.ascontiguousarray(J.T, dtype=np.int32).reshape(-1)
    ww = np.ascontiguousarray(W.T, dtype=np.float32).reshape(-1)
    nonzero = int(np.count_nonzero(ww))
    change = (jj[1:] != jj[:-1]) | (ww[1:] != ww[:-1])
    change[n - 1::n] = True  # a run never crosses from one slot into the next
    breaks = np.flatnonzero(change) + 1
    if len(breaks) + 1 <= max(RUNS_MAX_FRACTION * nonzero, 64):
        starts = np.concatenate(([0], breaks))
        lengths = np.diff(np.concatenate((starts, [len(jj)])))
        first = starts % n  # runs are contiguous vertex ranges
        vertices = list(range(n))
        calls = [(j, w, f, f + c) for j, w, f, c in zip(jj[starts].tolist(), ww[starts].tolist(), first.tolist(),
                                                       lengths.tolist(), strict=True) if w > 0]
        return _add_groups(obj, calls, vertices, bone_names)
    keep = ww > 0
    jj, ww = jj[keep], ww[keep]
    key = (jj.astype(np.uint64) << np.uint64(32)) | ww.view(np.uint32).astype(np.uint64)
    used = np.flatnonzero(np.bincount(jj, minlength=len(bone_names)))
    convert_cost = len(used) * (CONVERT_CALL_S + n * CONVERT_VERTEX_S)
    if context is not None:
        # Guess the number of distinct (joint, weight) pairs from a sample before paying for a sort.
        sample = key[:: max(1, len(key) // 4096)]
        guess = len(key) * len(np.unique(sample)) / len(sample)
        if convert_cost < guess * ADD_CALL_S + len(key) * ADD_INDEX_S:
            return _convert_groups(context, obj, J, W, used, bone_names)
    order = np.argsort(key, kind="stable")
    key = key[order]
    starts = np.concatenate(([0], np.flatnonzero(key[1:] != key[:-1]) + 1))
    if context is not None and convert_cost < len(starts) * ADD_CALL_S + len(key) * ADD_INDEX_S:
        return _convert_groups(context, obj, J, W, used, bone_names)
    vid = np.tile(np.arange(n, dtype=np.int64), k)[keep][order]
    ends = np.concatenate((starts[1:], [len(key)]))
    group_keys = key[starts]
    run_joints = (group_keys >> np.uint64(32)).astype(np.int64)
    run_weights = (group_keys & np.uint64(0xFFFFFFFF)).astype(np.uint32).view(np.float32)
    calls = list(zip(run_joints.tolist(), run_weights.tolist(), starts.tolist(), ends.tolist(), strict=True))
    return _add_groups(obj, calls, vid.tolist(), bone_names)


def _add_groups(obj: bpy.types.Object, calls: list[tuple[int, float, int, int]], vertices: list[int],
                bone_names: Sequence[str]) -> int:
    """One `add` per (joint, weight, start, end): `vertices[start:end]` get `weight` in that group."""
    adds = {j: obj.vertex_groups.new(name=bone_names[j]).add for j in sorted({call[0] for call in calls})}
    for j, w, s, e in calls:
        adds[j](vertices[s:e], w, "ADD")
    return len(calls)


def _convert_groups(context: bpy.types.Context, obj: bpy.types.Object, J: np.ndarray, W: np.ndarray,
                    used: np.ndarray, bone_names: Sequence[str]) -> int:
    """One float attribute per used joint, turned into a vertex group by Blender's own operator (in
    C, zeros skipped, values bit-exact).

    The operator runs with an empty throw-away scene as the context's view layer: `bpy.ops` updates
    the context's view layer before and after every call, which in the user's scene means evaluating
    every object in it (measured: 320 ms instead of 30 ms for one 76k-vertex layer's 55 groups with
    one other human in the scene). The operator itself only needs the object."""
    n, k = J.shape
    row = np.full(len(bone_names), -1, dtype=np.int64)
    row[used] = np.arange(len(used))
    weights = np.asarray(W, dtype=np.float64).reshape(-1)
    nonzero = weights > 0  # a zero-weight slot may name any joint, also one no vertex uses (row -1)
    cells = (row[J.astype(np.int64)] * n + np.arange(n)[:, None]).reshape(-1)[nonzero]
    dense = np.bincount(cells, weights=weights[nonzero], minlength=len(used) * n)
    dense = dense.reshape(len(used), n).astype(np.float32)
    mesh = obj.data
    workshop = bpy.data.scenes.new("strata-weights-workshop")
    try:
        with context.temp_override(**_override(context, workshop, workshop.view_layers[0], obj)):
            for r, j in enumerate(used.tolist()):
                attr = mesh.attributes.new(TEMP_WEIGHTS, "FLOAT", "POINT")  # a bone may be called "position"
                attr.data.foreach_set("value", dense[r])
                mesh.attributes.active = attr
                bpy.ops.geometry.attribute_convert(mode="VERTEX_GROUP")
                obj.vertex_groups[TEMP_WEIGHTS].name = bone_names[j]
    finally:
        bpy.data.scenes.remove(workshop)
    return len(used)


def add_mask(body: bpy.types.Object, garment: str, hidden: Any) -> bpy.types.MaskModifier:
    """Hide the body vertices under `garment` with an inverted MASK modifier over a vertex group,
    so deleting or disabling the modifier brings the skin back (nothing is deleted)."""
    group = body.vertex_groups.new(name=f"Hidden by {garment}")
    group.add(np.asarray(hidden, dtype=np.int64).tolist(), 1.0, "REPLACE")
    mod = body.modifiers.new(f"Hide under {garment}", "MASK")
    mod.vertex_group = group.name
    mod.invert_vertex_group = True
    return mod


# ---------------------------------------------------------------------------------------------
# armature


def _orthonormal(rest: np.ndarray) -> np.ndarray:
    """Rotation part of a rest matrix, re-orthonormalised keeping +Y (the bone axis) exact."""
    y = rest[:3, 1] / max(float(np.linalg.norm(rest[:3, 1])), 1e-12)
    x = rest[:3, 0] - y * float(rest[:3, 0] @ y)
    norm = float(np.linalg.norm(x))
    if norm < 1e-8:  # degenerate: pick any axis perpendicular to y
        x = np.cross(y, [0.0, 0.0, 1.0] if abs(y[2]) < 0.9 else [1.0, 0.0, 0.0])
        norm = float(np.linalg.norm(x))
    x = x / norm
    out = np.eye(4)
    out[:3, 0], out[:3, 1], out[:3, 2] = x, y, np.cross(x, y)
    out[:3, 3] = rest[:3, 3]
    return out


def _build_armature(context: bpy.types.Context, collection: bpy.types.Collection, name: str,
                    rig: Any) -> tuple[bpy.types.Object, list[str]]:
    """One armature whose bones reproduce `rig.rest` exactly: head at the matrix's translation, tail
    `length` along its +Y axis, roll from its X/Z axes (EditBone.matrix does the roll maths), posed
    by `rig.pose` when there is one (`apply_pose`).

    Edit bones exist only in edit mode, and every mode switch re-evaluates the whole view layer: in a
    scene that already holds skinned humans that is ~100 ms per switch. So the bones are made in a
    throw-away scene holding nothing but the new armature (under 1 ms), then the armature moves in.
    """
    data = bpy.data.armatures.new(name)
    data.display_type = "OCTAHEDRAL"
    obj = bpy.data.objects.new(name, data)  # drawn as Blender draws bones (not in front of the mesh)
    rest = np.asarray(rig.rest, dtype=np.float64)
    lengths = np.asarray(rig.lengths, dtype=np.float64)
    parents = np.asarray(rig.parents).tolist()
    workshop = bpy.data.scenes.new("strata-armature-workshop")
    try:
        workshop.collection.objects.link(obj)
        view_layer = workshop.view_layers[0]
        view_layer.objects.active = obj
        with context.temp_override(**_override(context, workshop, view_layer, obj)):
            bpy.ops.object.mode_set(mode="EDIT")
            try:
                bones = [data.edit_bones.new(str(joint)) for joint in rig.joint_names]
                for bone, matrix, length in zip(bones, rest, lengths.tolist(), strict=True):
                    bone.head = (0.0, 0.0, 0.0)
                    bone.tail = (0.0, length, 0.0)
                    bone.matrix = Matrix(_orthonormal(matrix).tolist())
                for bone, parent in zip(bones, parents, strict=True):
                    if parent >= 0:
                        bone.parent = bones[parent]
                names = [bone.name for bone in bones]  # Blender shortens names over 63 bytes
            finally:
                bpy.ops.object.mode_set(mode="OBJECT")
        workshop.collection.objects.unlink(obj)
    finally:
        bpy.data.scenes.remove(workshop)
    collection.objects.link(obj)
    for pose_bone in obj.pose.bones:
        pose_bone.rotation_mode = "QUATERNION"
    obj["strata_rest_pose"] = getattr(rig, "rest_pose", "")
    pose = getattr(rig, "pose", None)
    if pose is not None and len(names):
        apply_pose(obj, names, pose)
    return obj, names


#: Slider range of imported shape keys: SMPL-X's coefficients are standard deviations, ±5 covers real people.
SHAPE_KEY_RANGE = (-5.0, 5.0)
#: Per body model where it differs: anny's keys reach the model's own body at one end of a phenotype at 1.
SHAPE_KEY_RANGES = {"anny": (0.0, 1.0)}


def add_shape_keys(obj: bpy.types.Object, vertices: np.ndarray, keys: np.ndarray, names: Sequence[str],
                   value_range: tuple[float, float] = SHAPE_KEY_RANGE) -> None:
    """A Basis and one shape key per `names` (offsets `keys` (K, N, 3) from `vertices` at value 1), all at 0,
    sliders over `value_range`: a body model's shape stays editable after import (the bones keep the imported
    shape's joints)."""
    obj.shape_key_add(name="Basis", from_mix=False)
    base = np.asarray(vertices, np.float32)
    for name, offset in zip(names, np.asarray(keys, np.float32), strict=True):
        key = obj.shape_key_add(name=str(name), from_mix=False)
        key.data.foreach_set("co", (base + offset).ravel())
        (key.slider_min, key.slider_max), key.value = value_range, 0.0


def keep_shape_bones(armature: bpy.types.Object, asset: Any, bone_names: Sequence[str]) -> None:
    """Keep on the armature how its bones move with the body's shape keys (the asset's ``shape_key_bones``:
    the model's own joints at each key's shape), with the bones as imported, so *Fit Bones to Shape* can
    place them for any mix of the sliders, again and again (always from the imported bones)."""
    body = getattr(asset, "body", None)
    found = (body.extra or {}).get("shape_key_bones") if body is not None else None
    if not found:
        return
    rest = np.asarray(asset.rig.rest, np.float64)
    heads = rest[:, :3, 3]
    tails = heads + np.asarray(asset.rig.lengths, np.float64)[:, None] * rest[:, :3, 1]
    armature["strata_shape_bones"] = {
        "keys": [str(n) for n in found["names"]], "bones": list(bone_names),
        "heads": np.asarray(found["heads"], np.float64).ravel().tolist(),
        "tails": np.asarray(found["tails"], np.float64).ravel().tolist(),
        "rest_heads": heads.ravel().tolist(), "rest_tails": tails.ravel().tolist(),
    }


def fit_bones_to_shape(armature: bpy.types.Object, body: bpy.types.Object, context: bpy.types.Context) -> int:
    """Move ``armature``'s bones to where the body model puts its joints for the body's current shape-key
    values (the imported bones plus each key's joint offsets times its value; rolls kept), so a reshaped
    body bends at its own joints. Returns how many bones moved; 0 when the armature keeps no such data."""
    data = armature.get("strata_shape_bones")
    if not data:
        return 0
    blocks = body.data.shape_keys.key_blocks if body.data.shape_keys is not None else {}
    keys, bones = list(data["keys"]), list(data["bones"])
    values = np.array([blocks[k].value if k in blocks else 0.0 for k in keys], np.float64)

    def mixed(end: str) -> np.ndarray:  # "heads" or "tails": as imported, plus each key's offsets x its value
        offsets = np.asarray(data[end], np.float64).reshape(len(keys), len(bones), 3)
        return np.asarray(data[f"rest_{end}"], np.float64).reshape(-1, 3) + np.einsum("k,kjd->jd", values, offsets)

    heads, tails = mixed("heads"), mixed("tails")
    view_layer = context.view_layer
    active, mode = view_layer.objects.active, armature.mode
    view_layer.objects.active = armature
    with context.temp_override(active_object=armature, object=armature):
        bpy.ops.object.mode_set(mode="EDIT")
        try:
            edit_bones = armature.data.edit_bones
            for name, head, tail in zip(bones, heads.tolist(), tails.tolist(), strict=True):
                bone = edit_bones.get(name)
                if bone is None:
                    continue
                z_axis = bone.z_axis.copy()
                bone.head, bone.tail = head, tail
                bone.align_roll(z_axis)  # the roll the bone had: the pose's rotations keep their meaning
        finally:
            bpy.ops.object.mode_set(mode=mode if mode != "EDIT" else "OBJECT")
    view_layer.objects.active = active
    return len(bones)


def follow_body_keys(body: bpy.types.Object, garment: bpy.types.Object) -> int:
    """Drive each of ``garment``'s shape keys by the body's key of the same name, so one slider on the body
    reshapes the body and its clothes together (the garment's keys are its binding to the body). Returns
    how many keys were linked."""
    body_keys = body.data.shape_keys
    garment_keys = garment.data.shape_keys
    if body_keys is None or garment_keys is None:
        return 0
    linked = 0
    for block in garment_keys.key_blocks[1:]:
        if block.name not in body_keys.key_blocks:
            continue
        driver = block.driver_add("value").driver
        driver.type = "AVERAGE"
        var = driver.variables.new()
        var.name, var.type = "body", "SINGLE_PROP"
        var.targets[0].id_type = "KEY"
        var.targets[0].id = body_keys
        var.targets[0].data_path = f'key_blocks["{block.name}"].value'
        linked += 1
    return linked


def apply_pose(obj: bpy.types.Object, names: Sequence[str], pose: Any) -> None:
    """Set each pose bone's `matrix_basis` to `pose[j]` (J, 4, 4), the bone of `names[j]`: location,
    quaternion and scale decomposed by mathutils (what assigning `matrix_basis` does) and written with
    one `foreach_set` each, in the order of `obj.pose.bones` (which need not be the joints')."""
    bones = obj.pose.bones
    index = {name: i for i, name in enumerate(names)}
    order = [index[bone.name] for bone in bones]
    parts = [Matrix(m).decompose() for m in np.asarray(pose, dtype=np.float64)[order].tolist()]
    for prop, column in (("location", 0), ("rotation_quaternion", 1), ("scale", 2)):
        bones.foreach_set(prop, _flat([tuple(p[column]) for p in parts], np.float32))


def _override(context: bpy.types.Context, scene: bpy.types.Scene, view_layer: bpy.types.ViewLayer,
              obj: bpy.types.Object) -> dict[str, Any]:
    """Context members for object-mode operators on `obj`, also from a timer (no window in context)."""
    override: dict[str, Any] = {"scene": scene, "view_layer": view_layer, "active_object": obj, "object": obj,
                                "selected_objects": [obj], "selected_editable_objects": [obj]}
    wm = context.window_manager
    if context.window is None and wm is not None and len(wm.windows):
        window = wm.windows[0]
        override.update(window=window, screen=window.screen)
    return override


def scene_and_view_layer(context: bpy.types.Context) -> tuple[bpy.types.Scene, bpy.types.ViewLayer]:
    """The scene and view layer to import into: the context's, or (in a timer, which has no window
    in its context) those of the first window, which is what the user is looking at."""
    scene, view_layer = context.scene, context.view_layer
    if scene is None or view_layer is None:
        wm = context.window_manager
        window = wm.windows[0] if wm is not None and len(wm.windows) else None
        scene = scene or (window.scene if window else bpy.data.scenes[0])
        view_layer = view_layer or (window.view_layer if window else scene.view_layers[0])
    return scene, view_layer


def _leave_edit_modes(context: bpy.types.Context, scene: bpy.types.Scene, view_layer: bpy.types.ViewLayer) -> None:
    """Edit bones need the armature active in edit mode, which fails while another object is in a
    non-object mode: put the user's active object back to object mode first."""
    active = view_layer.objects.active
    if active is not None and active.mode != "OBJECT":
        with context.temp_override(**_override(context, scene, view_layer, active)):
            bpy.ops.object.mode_set(mode="OBJECT")


def _select(view_layer: bpy.types.ViewLayer, armature: bpy.types.Object | None,
            objects: list[bpy.types.Object]) -> None:
    for obj in view_layer.objects:
        if obj.select_get(view_layer=view_layer):
            obj.select_set(False, view_layer=view_layer)
    for obj in [*objects, *([armature] if armature else [])]:
        obj.select_set(True, view_layer=view_layer)
    view_layer.objects.active = armature or (objects[0] if objects else None)


# ---------------------------------------------------------------------------------------------
# materials


def build_material(name: str, layer: Any, mesh: bpy.types.Mesh) -> bpy.types.Material:
    """Principled BSDF fed by the layer's packed texture, else by its vertex colours."""
    mat = bpy.data.materials.new(name)
    with warnings.catch_warnings():  # use_nodes is deprecated in Blender 5 (always on there)
        warnings.simplefilter("ignore", DeprecationWarning)
        mat.use_nodes = True
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    bsdf = next((node for node in nodes if node.type == "BSDF_PRINCIPLED"), None) or nodes.new(
        "ShaderNodeBsdfPrincipled")
    bsdf.inputs["Roughness"].default_value = ROUGHNESS
    if layer.texture is not None:
        tex = nodes.new("ShaderNodeTexImage")
        tex.location = (bsdf.location.x - 400, bsdf.location.y)
        tex.image = packed_image(f"{layer.name}.png", layer.texture.data)
        links.new(tex.outputs["Color"], bsdf.inputs["Base Color"])
        if _png_has_alpha(layer.texture.data):
            links.new(tex.outputs["Alpha"], bsdf.inputs["Alpha"])
    elif layer.mesh.vertex_colors is not None:
        attr = nodes.new("ShaderNodeVertexColor")
        attr.location = (bsdf.location.x - 400, bsdf.location.y)
        attr.layer_name = COLOR_NAME
        links.new(attr.outputs["Color"], bsdf.inputs["Base Color"])
    return mat


def packed_image(name: str, data: bytes) -> bpy.types.Image:
    """An image packed into the .blend straight from PNG bytes: no temporary file, decoded lazily."""
    image = bpy.data.images.new(name, 8, 8)
    image.pack(data=bytes(data), data_len=len(data))
    image.filepath_raw = "//textures/" + re.sub(r"[^\w.-]+", "_", name)  # where "Unpack" writes it
    image.source = "FILE"
    return image


def _png_has_alpha(data: bytes) -> bool:
    """PNG colour type (IHDR byte 25) 4 or 6 carries an alpha channel."""
    return len(data) > 25 and data[25] in (4, 6)


# ---------------------------------------------------------------------------------------------
# custom properties


def _provenance_props(asset: Any, job_id: str, source_image: str) -> dict[str, Any]:
    prov = asset.provenance
    return {
        "strata_job_id": job_id,
        "strata_job_kind": prov.job_kind,
        "strata_asset_name": asset.name,
        "strata_source_image": source_image,
        "strata_backends": json.dumps(dict(prov.backends), sort_keys=True),
        "strata_notes": "\n".join(prov.notes),
    }


def _model_props(asset: Any, bone_names: Sequence[str]) -> dict[str, Any]:
    """The body model behind the armature; on SMPL-X's skeleton also ``model_type`` and ``gender`` as the
    SMPL-X tools' own objects carry them (the user's SMPL-X file's gender; neutral on the anny-based rig)."""
    from ._lib.asset.smplx_motion import SMPLX_JOINT_NAMES

    body = getattr(asset, "body", None)
    props: dict[str, Any] = {"strata_body_model": body.model if body is not None else ""}
    if list(bone_names) == list(SMPLX_JOINT_NAMES):
        extra = body.extra if body is not None else {}
        props |= {"model_type": "smplx", "gender": str(extra.get("gender", "neutral"))}
    return props


def _set_props(idblock: bpy.types.ID, props: dict[str, Any]) -> None:
    for key, value in props.items():
        idblock[key] = value
