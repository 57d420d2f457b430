"""strata.load_smplx_motion: an SMPL-X pose file (AMASS layout, or an SMPL-X fit) played on an SMPL-X
armature as an action, every joint where SMPL-X's own kinematics puts it (written out here from its
definition), frame by frame. The armature is the SMPL-X rig's (55 joints, canonical rest frames), built
with numpy alone like the other test assets."""

from __future__ import annotations

import importlib
from pathlib import Path

import bpy
import numpy as np
import pytest

from .asset_builder import tube

MODULE = "bl_ext.user_default.strata"
#: SMPL-X's canonical frame (X left, Y up, Z forward) in Strata's world (Z up, facing -Y).
CANONICAL = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])


@pytest.fixture(scope="module")
def smplx(addon):
    return importlib.import_module(f"{MODULE}._lib.asset.smplx_motion")


@pytest.fixture(scope="module")
def template(smplx) -> np.ndarray:
    """(55, 3) a T-posed SMPL-X skeleton in the canonical frame: each joint a little off its parent."""
    rng = np.random.default_rng(3)
    out = np.zeros((55, 3))
    for j, p in enumerate(smplx.SMPLX_PARENTS):
        if p >= 0:
            out[j] = out[p] + rng.uniform(-0.12, 0.12, 3)
    return out + (0.0, 0.95, 0.0)


#: The A rest pose as SMPL-X rotations from its T rest: the arms 45 degrees down.
A_REST = {16: (0.0, 0.0, -np.pi / 4), 17: (0.0, 0.0, np.pi / 4)}


@pytest.fixture(scope="module", params=["T", "A"])
def asset_file(request, lib, smplx, template, tmp_path_factory) -> Path:
    """The SMPL-X rig's armature in its T rest (every frame canonical), or stored in the A rest pose (the
    arms' bones turned down with their frames, as the rig step stores a human)."""
    schema = lib.schema
    rotvecs = np.zeros((55, 3))
    if request.param == "A":
        for j, r in A_REST.items():
            rotvecs[j] = r
    heads, frames = smplx_chain(template, smplx.SMPLX_PARENTS, rotvecs)
    rest = np.tile(np.eye(4, dtype=np.float32), (55, 1, 1))
    rest[:, :3, :3] = CANONICAL @ frames
    rest[:, :3, 3] = heads @ CANONICAL.T
    rig = schema.Rig("anny/smplx", list(smplx.SMPLX_JOINT_NAMES), smplx.SMPLX_PARENTS.copy(), rest,
                     np.full(55, 0.05, np.float32))
    v, f, uv, uvf, n = tube(0.15, 0.0, 1.6, 8, 12)
    skin = schema.Skin(np.zeros((len(v), 1), np.uint16), np.ones((len(v), 1), np.float32))
    layer = schema.Layer("Body", "body", schema.Mesh(v, f, n, uv, uvf), None, skin)
    asset = schema.HumanAsset("smplx_human", [layer], schema.Provenance("test"), rig=rig)
    path = tmp_path_factory.mktemp("smplx") / f"smplx_human_{request.param}.strata"
    lib.container.save(asset, path)
    return path


def smplx_chain(template: np.ndarray, parents: np.ndarray, rotvecs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SMPL-X's posed joints and their world rotations: G_j = G_parent [R_j | J_j - J_parent] (the root's
    rotation maps the canonical frame into the file's world)."""
    from mathutils import Vector

    rot = [np.array(_rotation(Vector(r)), np.float64) for r in rotvecs.reshape(-1, 3)]
    world_r, world_t = [None] * len(parents), [None] * len(parents)
    for j, p in enumerate(parents):
        if p < 0:
            world_r[j], world_t[j] = rot[j], template[j]
        else:
            world_r[j] = world_r[p] @ rot[j]
            world_t[j] = world_r[p] @ (template[j] - template[p]) + world_t[p]
    return np.array(world_t), np.array(world_r)


def smplx_joints(template: np.ndarray, parents: np.ndarray, rotvecs: np.ndarray) -> np.ndarray:
    return smplx_chain(template, parents, rotvecs)[0]


def _rotation(rotvec):
    from mathutils import Matrix

    return Matrix.Rotation(rotvec.length, 3, rotvec.normalized()) if rotvec.length > 1e-12 else Matrix.Identity(3)


def _heads(armature) -> np.ndarray:
    bpy.context.view_layer.update()
    return np.array([tuple(armature.matrix_world @ armature.pose.bones[n].head) for n in _names()], np.float64)


def _names() -> list[str]:
    return list(importlib.import_module(f"{MODULE}._lib.asset.smplx_motion").SMPLX_JOINT_NAMES)


def _armature(fresh_scene, asset_file):
    assert bpy.ops.strata.import_asset(filepath=str(asset_file)) == {"FINISHED"}
    armature = next(o for o in bpy.data.objects if o.type == "ARMATURE")
    assert armature.name.startswith("smplx_human")
    assert armature["model_type"] == "smplx" and armature["gender"] == "neutral"  # as SMPL-X tools mark theirs
    bpy.context.view_layer.objects.active = armature
    return armature


def test_an_amass_file_plays_as_an_action(fresh_scene, asset_file, smplx, template, tmp_path) -> None:
    rng = np.random.default_rng(0)
    frames = 6
    poses = rng.normal(0.0, 0.4, (frames, 165))
    poses[:, :3] = [np.pi / 2, 0.0, 0.0] + rng.normal(0.0, 0.3, (frames, 3))  # AMASS: Y up turned to Z up
    trans = np.cumsum(rng.normal(0.0, 0.05, (frames, 3)), axis=0)
    path = tmp_path / "walk_poses.npz"
    np.savez(path, poses=poses, trans=trans, mocap_frame_rate=np.array(fresh_scene.render.fps, np.float64),
             betas=np.zeros(16), gender="neutral")
    armature = _armature(fresh_scene, asset_file)
    rest_heads = _heads(armature)
    assert bpy.ops.strata.load_smplx_motion(filepath=str(path)) == {"FINISHED"}
    action = armature.animation_data.action
    assert action.name == "walk_poses" and fresh_scene.frame_end == frames
    for k in range(frames):
        fresh_scene.frame_set(1 + k)
        got = _heads(armature)
        want = smplx_joints(template, smplx.SMPLX_PARENTS, poses[k])  # the file's world is Strata's (Z up)
        want = want - want[0] + rest_heads[0] + (trans[k] - trans[0])
        np.testing.assert_allclose(got, want, atol=1e-4)


def test_an_smplx_fit_plays_in_smplx_frame(fresh_scene, asset_file, smplx, template, tmp_path) -> None:
    """A fit's root rotation is in SMPL-X's own (Y-up) frame: the identity stands the human as it rests."""
    rng = np.random.default_rng(1)
    body = rng.normal(0.0, 0.3, (2, 63))
    path = tmp_path / "fit.npz"
    np.savez(path, global_orient=np.zeros((2, 3)), body_pose=body, transl=np.zeros((2, 3)))
    armature = _armature(fresh_scene, asset_file)
    rest_heads = _heads(armature)
    assert bpy.ops.strata.load_smplx_motion(filepath=str(path)) == {"FINISHED"}
    fresh_scene.frame_set(2)
    full = np.zeros((55, 3))
    full[1:22] = body[1].reshape(21, 3)
    want = smplx_joints(template, smplx.SMPLX_PARENTS, full) @ CANONICAL.T
    np.testing.assert_allclose(_heads(armature), want - want[0] + rest_heads[0], atol=1e-4)


def test_a_bad_file_or_a_non_smplx_armature_is_refused(fresh_scene, asset_file, tmp_path) -> None:
    path = tmp_path / "other.npz"
    np.savez(path, something=np.zeros(3))
    _armature(fresh_scene, asset_file)
    with pytest.raises(RuntimeError, match="'poses' \\(AMASS\\) or 'body_pose'"):
        bpy.ops.strata.load_smplx_motion(filepath=str(path))
    bpy.ops.wm.read_homefile(use_empty=True, use_factory_startup=True)
    arm = bpy.data.objects.new("NotSMPLX", bpy.data.armatures.new("NotSMPLX"))
    bpy.context.scene.collection.objects.link(arm)
    bpy.context.view_layer.objects.active = arm
    assert not bpy.ops.strata.load_smplx_motion.poll()
