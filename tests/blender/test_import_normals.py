"""Normals of imported humans, at rest and posed.

Strata's assets carry Blender's own (angle-weighted) smooth normals, which the importer leaves to
Blender; normals authored elsewhere are kept as custom normals. Either way a posed human must be lit
with normals that turned with it: Blender 4.5's free `custom_normal` attribute does not follow the
Armature modifier, which these tests would catch.
"""

from __future__ import annotations

import dataclasses
import math

import bpy
import numpy as np
import pytest
from mathutils import Quaternion

from .asset_builder import make_test_asset

TILT = math.radians(25.0)


def _tilted(normals: np.ndarray) -> np.ndarray:
    """Normals turned TILT about +Z: plainly not what Blender computes for the tube."""
    c, s = math.cos(TILT), math.sin(TILT)
    rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]], np.float32)
    return (normals @ rot.T).astype(np.float32)


def _import(lib, tmp_path, asset, name: str) -> dict[str, bpy.types.Object]:
    path = tmp_path / f"{name}.strata"
    lib.container.save(asset, path)
    assert bpy.ops.strata.import_asset(filepath=str(path), name=name) == {"FINISHED"}
    return {obj.get("strata_layer_name", obj.name): obj for obj in bpy.data.collections[name].objects}


def _evaluated_corner_normals(obj: bpy.types.Object) -> tuple[np.ndarray, np.ndarray]:
    """(corner normals, corner vertex indices) of the object as the depsgraph evaluates it."""
    bpy.context.view_layer.update()
    mesh = obj.evaluated_get(bpy.context.evaluated_depsgraph_get()).data
    normals = np.empty(3 * len(mesh.loops), np.float32)
    mesh.corner_normals.foreach_get("vector", normals)
    corners = np.empty(len(mesh.loops), np.int32)
    mesh.attributes[".corner_vert"].data.foreach_get("value", corners)
    return normals.reshape(-1, 3), corners


def _pose_root(rig: bpy.types.Object, angle: float) -> np.ndarray:
    """Turn the root bone (every Body weight is on it or its children) by `angle` about world X;
    returns the world rotation matrix."""
    bone = rig.pose.bones["pelvis"]
    rest = np.array(bone.bone.matrix_local)[:3, :3]
    world = np.array(Quaternion((1.0, 0.0, 0.0), angle).to_matrix())
    local = rest.T @ world @ rest  # the pose rotation in the bone's own rest frame
    from mathutils import Matrix

    bone.rotation_quaternion = Matrix(local.tolist()).to_quaternion()
    return world


@pytest.fixture()
def lib_asset(lib):
    """The test human's Body alone: a garment would hide part of it with a MASK modifier, which
    renumbers the evaluated mesh's vertices."""
    asset = make_test_asset(lib.schema)
    return dataclasses.replace(asset, layers=asset.layers[:1])


def test_asset_normals_are_blenders_own_so_none_are_stored(fresh_scene, lib, lib_asset, tmp_path) -> None:
    objs = _import(lib, tmp_path, lib_asset, "own")
    mesh = objs["Body"].data
    assert not mesh.has_custom_normals  # Blender's normals are the asset's: nothing to store
    normals, corners = _evaluated_corner_normals(objs["Body"])
    np.testing.assert_allclose(normals, lib_asset.layers[0].mesh.normals[corners], atol=1e-5)


def test_authored_normals_are_kept(fresh_scene, lib, lib_asset, tmp_path) -> None:
    body = lib_asset.layers[0]
    authored = _tilted(np.asarray(body.mesh.normals))
    layer = dataclasses.replace(body, mesh=dataclasses.replace(body.mesh, normals=authored))
    asset = dataclasses.replace(lib_asset, layers=[layer])
    objs = _import(lib, tmp_path, asset, "authored")
    assert objs["Body"].data.has_custom_normals
    normals, corners = _evaluated_corner_normals(objs["Body"])
    # Custom normals are stored compressed (16-bit angles in each corner's normal space).
    np.testing.assert_allclose(normals, authored[corners], atol=5e-3)


@pytest.mark.parametrize("authored", [False, True], ids=["own", "authored"])
def test_posed_human_normals_turn_with_it(fresh_scene, lib, lib_asset, tmp_path, authored: bool) -> None:
    body = lib_asset.layers[0]
    rest_normals = np.asarray(body.mesh.normals)
    if authored:
        rest_normals = _tilted(rest_normals)
        layer = dataclasses.replace(body, mesh=dataclasses.replace(body.mesh, normals=rest_normals))
        lib_asset = dataclasses.replace(lib_asset, layers=[layer])
    name = f"posed_{int(authored)}"
    objs = _import(lib, tmp_path, lib_asset, name)
    world = _pose_root(objs[f"{name} Rig"], math.radians(90.0))
    normals, corners = _evaluated_corner_normals(objs["Body"])
    expected = rest_normals[corners] @ world.T.astype(np.float32)
    # Rest-pose normals would be 90 degrees off (dot ~0); turned ones agree to compression error.
    assert float(np.einsum("ij,ij->i", normals, expected).min()) > 0.999
