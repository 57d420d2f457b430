"""anny body backend: shapes, frame conventions, grounding, height solving, skinning, gradients, presets,
texture. One model per module (anny's cache must be warm for this file to take well under a minute)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("anny")

from strata.core.body import (  # noqa: E402
    BodyOutput,
    forward_kinematics_np,
    get_body_model,
)
from strata.core.body.base import topological_order  # noqa: E402


@pytest.fixture(scope="module")
def body():
    return get_body_model("anny")


@pytest.fixture(scope="module")
def rest(body) -> BodyOutput:
    with torch.no_grad():
        return body.forward()


def _axis_angle(axis, deg) -> np.ndarray:
    axis = np.asarray(axis, np.float64) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    a = np.radians(deg)
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k


def _random_pose(body, seed: int, deg: float = 25.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    pose = np.stack([_axis_angle(rng.normal(size=3), rng.uniform(-deg, deg)) for _ in range(body.num_joints)])
    return pose.astype(np.float32)


def _subtree(body, root: int) -> set[int]:
    out = {root}
    for j in topological_order(body.parents):  # parents first, so one pass collects all descendants
        if body.parents[j] in out:
            out.add(j)
    return out


# --- static data -----------------------------------------------------------------------------------------


def test_static_arrays(body):
    assert body.name == "anny" and body.rig == "anny" and body.kind == "anny"
    assert body.num_joints == 104 and len(set(body.joint_names)) == 104
    assert body.parents.dtype == np.int32 and body.parents.shape == (104,)
    assert (body.parents == -1).sum() == 1
    assert body.parents.min() >= -1 and body.parents.max() < 104
    assert body.faces.shape == (27420, 3) and body.faces.dtype == np.int64
    assert body.faces.min() == 0 and body.faces.max() == body.num_vertices - 1 == 13717
    assert body.uv_faces.shape == body.faces.shape and body.uv_faces.dtype == np.int64
    assert body.uvs.dtype == np.float32 and body.uvs.shape[1] == 2
    assert body.uv_faces.max() < len(body.uvs) and body.uvs.min() >= 0.0 and body.uvs.max() <= 1.0
    assert body.shape_names == ["gender", "age", "muscle", "weight", "height", "proportions"]
    assert body.default_shape.dtype == np.float32
    assert np.all((body.default_shape >= 0) & (body.default_shape <= 1))


def test_faces_wind_outward(body, rest):
    v = rest.rest_vertices[0].numpy().astype(np.float64)
    f = body.faces
    signed_volume = np.einsum("ij,ij->i", np.cross(v[f[:, 0]], v[f[:, 1]]), v[f[:, 2]]).sum() / 6
    assert 0.03 < signed_volume < 0.15  # m^3, positive = counter-clockwise seen from outside


# --- forward ---------------------------------------------------------------------------------------------


def test_forward_shapes_and_batch_broadcast(body):
    shapes = torch.rand(3, body.num_shape)
    with torch.no_grad():
        out = body.forward(shapes, pose=body.pose_preset("T"), translation=[0.0, 0.0, 0.0])
    n, j = body.num_vertices, body.num_joints
    assert out.vertices.shape == (3, n, 3) and out.vertices.dtype == torch.float32
    assert out.joint_world.shape == (3, j, 4, 4) and out.joint_world.dtype == torch.float32
    assert out.rest_vertices.shape == (3, n, 3) and out.rest_joint_world.shape == (3, j, 4, 4)
    assert out.bone_lengths.shape == (3, j) and bool((out.bone_lengths > 0).all())
    bottom = out.joint_world[..., 3, :]
    assert torch.equal(bottom, torch.tensor([0.0, 0.0, 0.0, 1.0]).expand_as(bottom))
    with pytest.raises(ValueError, match="batch"):
        body.forward(torch.rand(2, body.num_shape), translation=torch.zeros(3, 3))
    with pytest.raises(ValueError, match="pose"):
        body.forward(pose=np.zeros((5, 3, 3), np.float32))


def test_identity_pose_is_rest_and_matches_rest_skeleton(body, rest):
    torch.testing.assert_close(rest.vertices, rest.rest_vertices, atol=1e-5, rtol=0)
    torch.testing.assert_close(rest.joint_world, rest.rest_joint_world, atol=1e-5, rtol=0)
    skel = body.rest_skeleton()
    np.testing.assert_allclose(skel.matrices, rest.rest_joint_world[0].numpy(), atol=1e-6)
    assert skel.joint_names == body.joint_names and np.array_equal(skel.parents, body.parents)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_feet_on_the_ground(body, seed):
    shape = torch.rand(1, body.num_shape, generator=torch.Generator().manual_seed(seed))
    t = torch.tensor([0.3, -1.2, 0.25])
    with torch.no_grad():
        out = body.forward(shape, translation=t)
    assert abs(float(out.rest_vertices[0, :, 2].min())) < 1e-5
    assert abs(float(out.vertices[0, :, 2].min()) - 0.25) < 1e-5  # rest pose: the translation on top
    torch.testing.assert_close(out.vertices, out.rest_vertices + t, atol=1e-5, rtol=0)
    torch.testing.assert_close(out.joint_heads, out.rest_joint_world[..., :3, 3] + t, atol=1e-5, rtol=0)


def test_frame_conventions(body, rest):
    """Metres, Z up, facing -Y, subject's left at +X, Blender bone frames (+Y towards the tail)."""
    skel = body.rest_skeleton()
    height = float(body.measure_height()[0])
    assert 1.5 < height < 1.9  # metres, adult default
    head, pelvis = skel.heads[body.joint_index("head")], skel.heads[body.joint_index("root")]
    assert head[2] > pelvis[2] + 0.4  # Z up
    assert skel.heads[body.joint_index("upperarm01.L"), 0] > 0.1  # left side at +X
    assert skel.heads[body.joint_index("upperarm01.R"), 0] < -0.1
    names, part = body.face_parts()
    v = rest.rest_vertices[0].numpy()
    eyes = np.unique(body.faces[part == names.index("eye_front.L")])
    head_v = np.unique(body.faces[part == names.index("head")])
    assert v[eyes, 1].mean() < v[head_v, 1].mean() - 0.03  # the face is on the -Y side
    rot = skel.matrices[:, :3, :3]
    np.testing.assert_allclose(np.einsum("jki,jkl->jil", rot, rot), np.broadcast_to(np.eye(3), rot.shape), atol=1e-5)
    np.testing.assert_allclose(np.linalg.det(rot), 1.0, atol=1e-5)
    # Connected bones: the upper arm's tail (head + length * local +Y) is the forearm's head.
    np.testing.assert_allclose(
        skel.tails[body.joint_index("upperarm02.L")], skel.heads[body.joint_index("lowerarm01.L")], atol=1e-4
    )
    np.testing.assert_allclose(skel.tails, rest.joint_tails[0].numpy(), atol=1e-6)


def test_pose_is_blender_local_rotation(body):
    """forward's joints follow W_j = W_parent inv(R_parent) R_j pose_j (Blender's matrix_basis)."""
    pose = _random_pose(body, 3)
    with torch.no_grad():
        out = body.forward(pose=pose)
    expected = forward_kinematics_np(out.rest_joint_world[0].numpy(), body.parents, pose)
    np.testing.assert_allclose(out.joint_world[0].numpy(), expected, atol=2e-4)


def test_skinning_is_lbs_with_native_weights(body):
    """A Blender armature with the native weights as vertex groups deforms exactly like forward()."""
    pose = _random_pose(body, 4)
    with torch.no_grad():
        out = body.forward(pose=pose)
    idx, w = body.skin_weights(k=None)
    world = out.joint_world[0].numpy().astype(np.float64)
    rest_mats = out.rest_joint_world[0].numpy().astype(np.float64)
    transforms = world @ np.linalg.inv(rest_mats)  # (J, 4, 4)
    v = np.concatenate([out.rest_vertices[0].numpy(), np.ones((body.num_vertices, 1))], axis=1)
    posed = np.einsum("nk,nkij,nj->ni", w, transforms[idx], v)[:, :3]
    np.testing.assert_allclose(out.vertices[0].numpy(), posed, atol=2e-4)


def test_skin_weights(body):
    idx, w = body.skin_weights()
    assert idx.shape == (body.num_vertices, 4) and w.shape == (body.num_vertices, 4)
    assert idx.dtype == np.int64 and w.dtype == np.float32
    assert idx.min() >= 0 and idx.max() < body.num_joints
    assert (w >= 0).all() and np.all(np.diff(w, axis=1) <= 1e-7)  # sorted, largest first
    np.testing.assert_allclose(w.sum(axis=1), 1.0, atol=1e-5)
    nidx, nw = body.skin_weights(k=None)
    assert nidx.shape == (body.num_vertices, 9)
    np.testing.assert_allclose(nw.sum(axis=1), 1.0, atol=1e-5)
    assert np.array_equal(nidx[:, 0], idx[:, 0])
    for row in range(0, body.num_vertices, 997):  # no joint twice in a row among used slots
        used = idx[row][w[row] > 0]
        assert len(used) == len(set(used.tolist()))
    i1, w1 = body.skin_weights(k=1)
    assert np.allclose(w1, 1.0) and np.array_equal(i1[:, 0], idx[:, 0])


def test_forward_is_differentiable(body):
    shape = torch.tensor(body.default_shape)[None].clone().requires_grad_(True)
    pose = torch.tensor(body.pose_preset("A"))[None].clone().requires_grad_(True)
    trans = torch.zeros(1, 3, requires_grad=True)
    out = body.forward(shape, pose, trans)
    target = out.vertices.detach() + 0.01
    loss = (out.vertices - target).square().sum() + out.joint_heads[..., 2].sum()
    loss.backward()
    assert torch.isfinite(shape.grad).all() and shape.grad[0, body.shape_names.index("height")].abs() > 0
    assert float(shape.grad.abs().sum()) > 0
    arm = body.joint_index("upperarm01.L")
    assert torch.isfinite(pose.grad).all() and float(pose.grad[0, arm].abs().sum()) > 0
    assert float(trans.grad.abs().sum()) > 0


def test_joint_rotation_moves_only_its_weighted_vertices(body, rest):
    joint = body.joint_index("upperarm01.L")
    pose = body.pose_preset("rest")
    pose[joint] = _axis_angle([1.0, 0.0, 0.0], 40.0)
    with torch.no_grad():
        out = body.forward(pose=pose)
    moved = np.linalg.norm((out.vertices - rest.vertices)[0].numpy(), axis=1)
    idx, w = body.skin_weights(k=None)
    sub = np.array(sorted(_subtree(body, joint)))
    influence = (w * np.isin(idx, sub)).sum(axis=1)
    assert moved[influence == 0].max() < 1e-5  # everything else stays put
    assert moved[influence > 0.5].min() > 1e-3
    assert (influence > 0).sum() < 0.2 * body.num_vertices  # and that is a limb, not the body
    hand = body.joint_index("wrist.L")
    assert np.linalg.norm(out.joint_heads[0, hand] - rest.joint_heads[0, hand]) > 0.1


# --- presets ---------------------------------------------------------------------------------------------


def _arm_direction(body, out, side):
    upper, _, hand = (body.joint_index(n) for n in body.arm_chain(side))
    d = (out.joint_heads[0, hand] - out.joint_heads[0, upper]).numpy()
    return d / np.linalg.norm(d)


def test_pose_presets(body):
    assert np.array_equal(body.pose_preset("rest"), np.tile(np.eye(3, dtype=np.float32), (body.num_joints, 1, 1)))
    with torch.no_grad():
        t_out = body.forward(pose=body.pose_preset("T"))
        a_out = body.forward(pose=body.pose_preset("A"))
        rest_out = body.forward()
    for side, sign in (("L", 1.0), ("R", -1.0)):
        d = _arm_direction(body, t_out, side)
        assert abs(d[2]) < np.sin(np.radians(3)) and sign * d[0] > 0.99  # horizontal, sideways
        d = _arm_direction(body, a_out, side)
        assert abs(np.degrees(np.arcsin(-d[2])) - 45.0) < 3 and abs(d[1]) < 0.05
        d = _arm_direction(body, rest_out, side)
        assert 30 < np.degrees(np.arcsin(-d[2])) < 60  # anny's native rest is already A-like
    for p in (body.pose_preset("T"), body.pose_preset("A")):
        np.testing.assert_allclose(np.einsum("jki,jkl->jil", p, p), np.broadcast_to(np.eye(3), p.shape), atol=1e-5)
        changed = {j for j in range(body.num_joints) if not np.allclose(p[j], np.eye(3), atol=1e-6)}
        assert changed <= {body.joint_index(n) for s in "LR" for n in body.arm_chain(s)[:2]}
    with pytest.raises(ValueError, match="preset"):
        body.pose_preset("Y")


# --- shape keys -----------------------------------------------------------------------------------------


def test_shape_keys_reach_the_models_own_body_at_each_end(body):
    """anny's phenotypes blend non-linearly, so a key is not a derivative: at 1 it is exactly anny's rest body
    with that phenotype at its end, at the same stature (the rig was built for it), but for age (a child of
    11, not a baby; old age); an end the shape sits at gives no key."""
    shape = body.solve_height(1.70, body.shape_vector())
    names, offsets = body.shape_keys_rest(shape)
    assert names == ["Male", "Female", "Child", "Old", "Less muscle", "More muscle", "Lighter", "Heavier",
                     "Idealised proportions", "Uncommon proportions"]
    with torch.no_grad():
        base = body.forward(shape=shape[None]).rest_vertices[0].numpy()
        for name, param, end, keep in (("Male", "gender", 0.0, True), ("Child", "age", 1.0 / 3.0, False)):
            target = shape.copy()
            target[body.shape_names.index(param)] = end
            if keep:
                target = body.solve_height(1.70, target)
            there = body.forward(shape=target[None]).rest_vertices[0].numpy()
            np.testing.assert_allclose(base + offsets[names.index(name)], there, atol=1e-5)
    statures = [float(np.ptp((base + offsets[names.index(n)])[:, 2])) for n in ("Male", "Heavier", "Child")]
    assert statures[0] == pytest.approx(1.70, abs=1e-3) and statures[1] == pytest.approx(1.70, abs=1e-3)
    assert statures[2] < 1.5  # a child is shorter
    assert float(np.linalg.norm(offsets[names.index("Heavier")], axis=1).max()) > 0.01
    names_heavy, _ = body.shape_keys_rest(body.shape_vector(weight=1.0))
    assert "Heavier" not in names_heavy and "Lighter" in names_heavy


def test_gender_runs_from_male_to_female_as_the_job_spec_says(body):
    """anny's gender phenotype is male at 0 and female at 1 (its PHENOTYPE_VARIATIONS): the male end is the
    taller, broader-shouldered body, and the job's help text says which end is which."""
    from strata.exchange.wire.jobs import JOB_SPECS

    def shoulders(v):
        h = v[:, 2].max()
        band = v[(v[:, 2] > 0.80 * h) & (v[:, 2] < 0.82 * h) & (np.abs(v[:, 0]) < 0.35)]
        return band[:, 0].max() - band[:, 0].min(), h

    with torch.no_grad():
        male, female = (body.forward(shape=body.shape_vector(gender=g)[None]).rest_vertices[0].numpy()
                        for g in (0.0, 1.0))
    (male_width, male_height), (female_width, female_height) = shoulders(male), shoulders(female)
    assert male_width > female_width + 0.03 and male_height > female_height + 0.05
    assert JOB_SPECS["body"].param("gender").help == "0 male .. 1 female"


def test_a_posed_body_keeps_its_keys(body):
    """The body job stores the A-pose: its keys are the rest offsets turned with the skin, so "Heavier" at 1
    lands on anny's heavier body posed the same way (to the skinning's few millimetres at the shoulders),
    and the asset says where the bones go for it."""
    from strata.core.pipelines.body import build_body
    from strata.exchange.wire.jobs import JOB_SPECS

    asset = build_body(body, JOB_SPECS["body"].validate({"texture_size": 256}))
    mesh = asset.layers[0].mesh
    heavier = np.asarray(asset.body.shape).copy()
    heavier[body.shape_names.index("weight")] = 1.0
    heavier = body.solve_height(1.70, heavier)  # the keys keep the stature
    with torch.no_grad():
        there = body.forward(shape=heavier[None], pose=np.asarray(asset.body.pose)[None]).vertices[0].numpy()
    moved = np.asarray(mesh.vertices) + mesh.shape_keys[mesh.shape_key_names.index("Heavier")]
    error = np.linalg.norm(moved - there, axis=1)
    assert np.median(error) < 0.001 and np.percentile(error, 95) < 0.015, np.percentile(error, [50, 95, 100])
    # The bones' offsets per key put the rig's joints exactly where anny has them in that body, as posed.
    bones = asset.body.extra["shape_key_bones"]
    assert bones["names"] == mesh.shape_key_names
    with torch.no_grad():
        joints = body.forward(shape=heavier[None], pose=np.asarray(asset.body.pose)[None]).joint_heads[0].numpy()
    fitted = np.asarray(asset.rig.rest)[:, :3, 3] + np.asarray(bones["heads"])[bones["names"].index("Heavier")]
    np.testing.assert_allclose(fitted, joints, atol=1e-4)


# --- height ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("height", "gender"), [(1.80, 0.0), (1.62, 1.0), (1.95, 0.5), (1.50, 0.0)])
def test_solve_height(body, height, gender):
    shape = body.solve_height(height, body.shape_vector(gender=gender))
    assert shape.dtype == np.float32 and shape.shape == (body.num_shape,)
    assert 0.0 <= shape[body.shape_names.index("height")] <= 1.0
    assert shape[body.shape_names.index("gender")] == pytest.approx(gender)
    assert abs(float(body.measure_height(shape[None])[0]) - height) < 0.01
    with torch.no_grad():
        v = body.forward(shape).rest_vertices[0]
    assert abs(float(v[:, 2].max() - v[:, 2].min()) - height) < 0.01


def test_solve_height_out_of_range(body):
    lo, hi = body.height_range(body.shape_vector(gender=1.0))
    assert 1.0 < lo < 1.5 < 2.0 < hi < 2.6
    with pytest.raises(ValueError, match="out of reach"):
        body.solve_height(hi + 0.2, body.shape_vector(gender=1.0))


def test_shape_vector(body):
    s = body.shape_vector(weight=0.9)
    assert s[body.shape_names.index("weight")] == pytest.approx(0.9)
    with pytest.raises(ValueError, match="unknown shape"):
        body.shape_vector(wingspan=1.0)


# --- texture ---------------------------------------------------------------------------------------------


def _island_mask(body, size: int) -> np.ndarray:
    """Texels strictly inside UV triangles (independent raster, eroded by one texel)."""
    from PIL import Image, ImageDraw
    from scipy import ndimage

    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    for tri in body.uvs[body.uv_faces]:
        draw.polygon([(u * size - 0.5, (1 - v) * size - 0.5) for u, v in tri], fill=255)
    return ndimage.binary_erosion(np.asarray(canvas) > 0)


def test_skin_texture(body):
    size = 1024
    tex = body.skin_texture(tone="light", size=size)
    assert tex.shape == (size, size, 3) and tex.dtype == np.uint8
    inside = _island_mask(body, size)
    assert inside.mean() > 0.5
    assert (tex[inside].max(axis=1) >= 16).all()  # no black (unpainted) texel inside the islands
    assert (tex.max(axis=2) >= 16).all()  # nor in the gutters: they are filled from the islands
    # The texture paints skin: the dominant colour is the requested tone.
    colours, counts = np.unique(tex[inside].reshape(-1, 3), axis=0, return_counts=True)
    np.testing.assert_allclose(colours[counts.argmax()], (231, 190, 163), atol=1)
    dark = body.skin_texture(tone="dark", size=size)
    assert dark[inside].mean() < tex[inside].mean() - 60
    assert body.skin_texture(tone=0.0, size=256).mean() > body.skin_texture(tone=1.0, size=256).mean()


def test_skin_texture_regions(body):
    size = 1024
    tex = body.skin_texture(tone="medium", size=size).astype(np.float32)
    names, part = body.face_parts()
    from strata.core.render.texture import uv_coverage

    face_id, _ = uv_coverage(body.uvs, body.uv_faces, size)
    texel_part = np.where(face_id >= 0, part[np.maximum(face_id, 0)], -1)
    skin = np.array((200, 150, 117), np.float32)
    eye = tex[texel_part == names.index("eye_front.L")]
    assert eye.min(axis=0).sum() < 200 and eye.max(axis=0).sum() > 600  # dark iris/pupil + white sclera
    mouth = tex[texel_part == names.index("mouth_cavity")].mean(axis=0)
    assert mouth[0] > mouth[1] + 50  # red inside the mouth
    # Lips (MPFB mask) are redder than the plain skin.
    head = tex[texel_part == names.index("head")]
    redness = head[:, 0] - head[:, 1]
    assert redness.max() > (skin[0] - skin[1]) + 15
