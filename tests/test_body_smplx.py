"""The SMPL-X rig on the anny body, without any SMPL-X file: SMPL-X's joints, names and hierarchy, its T
rest pose and canonical joint frames, so an SMPL-X pose vector (AMASS layout) turns each bone the way an
SMPL-X model turns it. The reference is SMPL-X's forward kinematics written out here from its definition
(canonical Y-up frame, Rodrigues per joint, parents first), on a synthetic SMPL-X skeleton."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytest.importorskip("anny")
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def rig():
    from strata.core.body import get_body_model

    return get_body_model("anny", "smplx")


def smplx_joints(template: np.ndarray, parents: np.ndarray, rotvecs: np.ndarray) -> np.ndarray:
    """SMPL-X's posed joints (canonical frame): G_j = G_parent [R_j | J_j - J_parent], root [R_0 | J_0]."""
    from scipy.spatial.transform import Rotation

    rot = Rotation.from_rotvec(rotvecs.reshape(-1, 3)).as_matrix()
    world_r, world_t = [None] * len(parents), [None] * len(parents)
    for j, p in enumerate(parents):  # SMPL-X lists parents before children
        if p < 0:
            world_r[j], world_t[j] = rot[j], template[j]
        else:
            world_r[j] = world_r[p] @ rot[j]
            world_t[j] = world_r[p] @ (template[j] - template[p]) + world_t[p]
    return np.array(world_t)


def random_pose(rng: np.random.Generator) -> np.ndarray:
    """(165,) an AMASS-layout SMPL-X pose: a turned root, bent body joints, curled fingers."""
    pose = rng.normal(0.0, 0.35, (55, 3))
    pose[0] = rng.normal(0.0, 0.6, 3)
    pose[22:25] *= 0.2  # jaw and eyes move little
    return pose.reshape(-1)


def test_names_hierarchy_and_rest_conventions(rig):
    from strata.core.body.smplx_skeleton import CANONICAL, SMPLX_JOINT_NAMES, SMPLX_PARENTS

    assert rig.kind == "anny/smplx" and rig.num_joints == 55 and rig.joint_names == SMPLX_JOINT_NAMES
    assert rig.joint_names[:4] == ["pelvis", "left_hip", "right_hip", "spine1"]
    assert rig.joint_names[54] == "right_thumb3"
    assert list(rig.parents[[0, 15, 20, 22, 25, 40]]) == [-1, 12, 18, 15, 20, 21]
    np.testing.assert_array_equal(rig.parents, SMPLX_PARENTS)
    with torch.no_grad():
        out = rig.forward()
    rest = out.rest_joint_world[0].numpy()
    np.testing.assert_allclose(rest[:, :3, :3], np.broadcast_to(CANONICAL, (55, 3, 3)), atol=1e-6)  # canonical frames
    heads = rest[:, :3, 3]
    i = {n: k for k, n in enumerate(SMPLX_JOINT_NAMES)}
    # A T-pose: arms horizontal out to the sides, the subject's left at +X, legs down, head up.
    for side, sign in (("left", 1), ("right", -1)):
        arm = heads[i[f"{side}_wrist"]] - heads[i[f"{side}_shoulder"]]
        assert sign * arm[0] > 0.4 and abs(arm[2]) < 0.02
        leg = heads[i[f"{side}_ankle"]] - heads[i[f"{side}_hip"]]
        assert leg[2] < -0.7 and abs(leg[0]) < 0.15
    assert heads[i["head"], 2] > heads[i["neck"], 2] > heads[i["spine3"], 2] > heads[i["pelvis"], 2]
    # Every joint but the jaw (anny's default rig has none) moves skin; 4 weights sum to 1.
    idx, w = rig.skin_weights(4)
    np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-5)
    moved = set(np.unique(idx[w > 0.05]).tolist())
    assert moved == set(range(55)) - {i["jaw"]}


def test_a_smplx_pose_turns_every_bone_as_smplx_does(rig):
    """The same axis-angle pose vector on the rig and on SMPL-X's own kinematics: exactly the same joints
    on the rig's skeleton, and on a synthetic SMPL-X skeleton (the rig's joints moved by up to 2 cm) every
    bone keeps its rest angle to the other skeleton's (the same turn)."""
    from strata.core.body.smplx_skeleton import CANONICAL, SMPLX_PARENTS, pose_rotations

    with torch.no_grad():
        rest = rig.forward().rest_joint_world[0].numpy()
    template = rest[:, :3, 3] @ CANONICAL  # the rig's joints in SMPL-X's canonical frame (C^T h)
    rng = np.random.default_rng(0)
    synthetic = template + rng.uniform(-0.02, 0.02, template.shape)
    for _ in range(3):
        pose = random_pose(rng)
        with torch.no_grad():
            out = rig.forward(pose=torch.as_tensor(pose_rotations(pose)[0], dtype=torch.float32))
        ours = out.joint_world[0, :, :3, 3].numpy()
        theirs = smplx_joints(template, SMPLX_PARENTS, pose) @ CANONICAL.T
        np.testing.assert_allclose(ours - ours[0], theirs - theirs[0], atol=2e-4)
        # Each bone turns as SMPL-X turns it: the same turn for the same pose, so the angle between the two
        # skeletons' bones is what it was at rest, bone by bone.
        other = smplx_joints(synthetic, SMPLX_PARENTS, pose) @ CANONICAL.T
        for j, p in enumerate(SMPLX_PARENTS):
            if p < 0:
                continue
            a, b = ours[j] - ours[p], other[j] - other[p]
            ra, rb = template[j] - template[p], synthetic[j] - synthetic[p]
            cos = a @ b / np.linalg.norm(a) / np.linalg.norm(b)
            assert abs(cos - ra @ rb / np.linalg.norm(ra) / np.linalg.norm(rb)) < 1e-4, (j, cos)
    # A known turn: the left elbow bent 90 degrees about canonical Y (SMPL-X's arm bending forward for the
    # left arm) brings the left wrist forward (-Y in Strata's world), not back.
    pose = np.zeros((55, 3))
    pose[18] = [0.0, -np.pi / 2, 0.0]
    with torch.no_grad():
        heads = rig.forward(pose=torch.as_tensor(pose_rotations(pose.reshape(-1))[0],
                                                 dtype=torch.float32)).joint_world[0, :, :3, 3].numpy()
    forearm = heads[20] - heads[18]
    assert forearm[1] < -0.2 and abs(forearm[0]) < 0.05


def test_amass_pose_files_are_read_in_every_layout():
    from strata.core.body.smplx_skeleton import pose_rotations

    rng = np.random.default_rng(1)
    for n in (22, 52, 55):
        rot = pose_rotations(rng.normal(0, 0.3, (4, 3 * n)))
        assert rot.shape == (4, 55, 3, 3)
        np.testing.assert_allclose(rot @ rot.transpose(0, 1, 3, 2), np.broadcast_to(np.eye(3), rot.shape), atol=1e-9)
        if n == 52:  # SMPL+H: no jaw or eyes, the hands shift to 25..54
            np.testing.assert_allclose(rot[:, 22:25], np.broadcast_to(np.eye(3), (4, 3, 3, 3)))
    with pytest.raises(ValueError, match="66 | 156 | 165"):
        pose_rotations(np.zeros((3, 70)))


def test_a_photo_and_a_body_on_the_smplx_rig(rig):
    """`body --rig smplx` gives SMPL-X bones in the A rest pose; a reconstruction in layers carries the
    photo's pose onto them: posed by the SMPL-X armature, the human covers the person's mask."""
    from strata.core.body import get_body_model
    from strata.core.imaging.masks import mask_iou
    from strata.core.pipelines.body import build_body
    from strata.core.pipelines.reconstruct import reconstruct
    from strata.core.pipelines.synthetic_dressed import make_dressed_person
    from strata.core.reconstruct.evaluate import posed_layers, render_mask, textured_union
    from strata.core.render.camera import camera_from_dict
    from strata.exchange.asset import decode, encode
    from strata.exchange.wire import job_spec

    body = decode(encode(build_body(rig, job_spec("body").validate({"rig": "smplx", "texture_size": 256}))))
    assert body.rig.joint_names == rig.joint_names and body.body.extra.get("rig", "smplx") == "smplx"

    person = make_dressed_person(get_body_model("anny"), 2, size=(768, 576))
    asset = decode(encode(reconstruct(person.png_bytes(cutout=False),
                                      {"height": person.height_m, "rig": "smplx", "texture_size": 512})))
    assert asset.rig.joint_names == rig.joint_names and asset.rig.rest_pose == "A"
    assert len(asset.layers) > 1 and asset.provenance.backends["rig"] == "anny-carried"
    vertices, faces, *_ = textured_union(asset, posed_layers(asset))
    iou = mask_iou(render_mask(vertices, faces, camera_from_dict(asset.body.extra["camera"])),
                   person.cutout[..., 3] > 127)
    assert iou > 0.9, iou


def test_a_pose_on_the_rig_is_written_as_an_smplx_fit(rig, tmp_path):
    """The pose an asset's SMPL-X armature carries (any local rotations, on the A rest the rig step stores)
    comes out as SMPL-X axis-angles that SMPL-X's own kinematics turn into the same joints; the file the
    CLI writes beside exports reads back as those poses."""
    from scipy.spatial.transform import Rotation

    from strata.client.outputs import write_smplx_pose
    from strata.core.body.skinning import posed_world
    from strata.core.body.smplx_skeleton import CANONICAL, SMPLX_PARENTS
    from strata.exchange.asset import encode
    from strata.exchange.asset.schema import HumanAsset, Layer, Mesh, Provenance, Rig
    from strata.exchange.asset.smplx_motion import fit_from_rig, read_pose_file

    a_pose = rig.pose_preset("A")
    with torch.no_grad():
        t_rest = rig.forward().rest_joint_world[0].numpy().astype(np.float64)
        a_rest = rig.forward(pose=a_pose).joint_world[0].numpy().astype(np.float64)
    local = np.tile(np.eye(4), (55, 1, 1))
    local[:, :3, :3] = Rotation.from_rotvec(np.random.default_rng(2).normal(0, 0.4, (55, 3))).as_matrix()
    local[0, :3, 3] = (0.05, -0.1, 0.02)
    joints = posed_world(a_rest, SMPLX_PARENTS, local)[:, :3, 3]
    fit = fit_from_rig(rig.joint_names, rig.parents, a_rest, local)
    rotvecs = np.concatenate([fit[k].reshape(-1, 3) for k in ("global_orient", "body_pose", "jaw_pose", "leye_pose",
                                                                 "reye_pose", "left_hand_pose", "right_hand_pose")])
    want = smplx_joints(t_rest[:, :3, 3] @ CANONICAL, SMPLX_PARENTS, rotvecs.reshape(-1)) @ CANONICAL.T
    np.testing.assert_allclose(joints - joints[0], want - want[0], atol=2e-4)
    np.testing.assert_allclose(CANONICAL @ fit["transl"][0], a_rest[0, :3, :3] @ local[0, :3, 3], atol=1e-6)
    assert fit_from_rig(["pelvis"], np.array([-1]), a_rest[:1], None) is None  # not SMPL-X's skeleton
    # Beside an export: the CLI's side file, read back as the same poses.
    triangle = Layer("Body", "body", Mesh(np.eye(3, dtype=np.float32), np.array([[0, 1, 2]], np.uint32)))
    armature = Rig("anny/smplx", rig.joint_names, rig.parents, a_rest.astype(np.float32),
                   np.full(55, 0.05, np.float32), pose=local.astype(np.float32), rest_pose="A")
    asset = HumanAsset("pose", [triangle], Provenance("test"), rig=armature)
    path = write_smplx_pose(tmp_path / "human.glb", encode(asset))
    assert path == tmp_path / "human_smplx.npz"
    seq = read_pose_file(path)
    assert seq.up == "Y" and seq.frames == 1
    np.testing.assert_allclose(seq.rotations[0], Rotation.from_rotvec(rotvecs).as_matrix(), atol=1e-5)
