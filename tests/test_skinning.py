"""core/body/skinning.py: forward kinematics and its inverse on a skeleton stored out of order, LBS and
its exact per-vertex inverse, and on the real anny body the A-pose contract: un-pose a posed body into
the A rest through its top-4 weights, re-pose it, and measure what LBS leaves behind."""

from __future__ import annotations

import numpy as np
import pytest

from strata.core.body import forward_kinematics_np, world_to_local_rotation
from strata.core.body.skinning import (
    affine_inverse,
    blend,
    local_pose,
    pose_vertices,
    posed_world,
    skinning_transforms,
    unpose_vertices,
)


def rotations(n: int, rng: np.random.Generator, max_deg: float = 180.0) -> np.ndarray:
    """(n, 3, 3) rotations about random axes by up to `max_deg`."""
    axis = rng.normal(size=(n, 3))
    axis /= np.linalg.norm(axis, axis=1, keepdims=True)
    angle = np.radians(rng.uniform(-max_deg, max_deg, n))
    return np.stack([axis_angle(a, np.degrees(t)) for a, t in zip(axis, angle, strict=True)])


def axis_angle(axis, deg: float) -> np.ndarray:
    axis = np.asarray(axis, np.float64) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    a = np.radians(deg)
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k


def affine(rot: np.ndarray, trans: np.ndarray) -> np.ndarray:
    out = np.tile(np.eye(4), (len(rot), 1, 1))
    out[:, :3, :3] = rot
    out[:, :3, 3] = trans
    return out


@pytest.fixture(scope="module")
def skeleton() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(rest, parents, pose) of a random 2-root forest of 14 joints, permuted so that parents come after
    children; the pose rotates every joint and moves the roots."""
    rng = np.random.default_rng(7)
    n = 14
    tree = np.array([-1, 0, 1, 2, 1, 4, 0, 6, 7, -1, 9, 10, 10, 12])
    order = rng.permutation(n)  # new index i holds old joint order[i]
    new_of_old = np.argsort(order)
    parents = np.where(tree[order] < 0, -1, new_of_old[np.maximum(tree[order], 0)])
    assert any(parents[i] > i for i in range(n))  # really out of order
    rest = affine(rotations(n, rng), rng.normal(size=(n, 3)))
    pose = affine(rotations(n, rng, 90.0), 0.0)
    roots = parents < 0
    pose[roots, :3, 3] = rng.normal(size=(int(roots.sum()), 3)) * 0.3
    return rest, parents, pose


def test_forward_kinematics_follows_the_convention(skeleton):
    rest, parents, pose = skeleton
    world = posed_world(rest, parents, pose)
    for j, p in enumerate(parents):  # the definition, joint by joint
        want = rest[j] @ pose[j] if p < 0 else world[p] @ np.linalg.inv(rest[p]) @ rest[j] @ pose[j]
        np.testing.assert_allclose(world[j], want, atol=1e-12)
    np.testing.assert_allclose(posed_world(rest, parents, None), rest, atol=1e-12)
    rotations_only = pose[:, :3, :3]  # (J, 3, 3) poses too, as BodyModel.forward takes them
    np.testing.assert_allclose(posed_world(rest, parents, rotations_only),
                               forward_kinematics_np(rest, parents, rotations_only), atol=1e-12)


def test_local_pose_inverts_forward_kinematics(skeleton):
    rest, parents, pose = skeleton
    world = posed_world(rest, parents, pose)
    back = local_pose(rest, world, parents)
    np.testing.assert_allclose(back, pose, atol=1e-12)
    assert (back[parents >= 0, :3, 3] == 0).all()  # translation only where a root moves
    assert (np.linalg.norm(back[parents < 0, :3, 3], axis=1) > 0.01).all()
    # A stretched bone (one joint's head moved alone) needs a translation there, and round-trips too.
    moved = world.copy()
    j = int(np.flatnonzero(parents >= 0)[0])
    moved[j, :3, 3] += (0.01, -0.02, 0.03)
    stretched = local_pose(rest, moved, parents)
    assert np.linalg.norm(stretched[j, :3, 3]) > 0.01
    np.testing.assert_allclose(posed_world(rest, parents, stretched), moved, atol=1e-12)


def test_cycles_and_bad_shapes_are_refused(skeleton):
    rest, parents, pose = skeleton
    cyclic = parents.copy()
    root = int(np.flatnonzero(parents < 0)[0])
    cyclic[root] = int(np.flatnonzero(parents == root)[0])  # root's child becomes its parent
    with pytest.raises(ValueError, match="cycle"):
        posed_world(rest, cyclic, pose)
    with pytest.raises(ValueError, match=r"pose must be \(14, 4, 4\)"):
        posed_world(rest, parents, pose[:3])
    with pytest.raises(ValueError, match=r"posed_world must be \(14, 4, 4\)"):
        local_pose(rest, rest[:-1], parents)


def _skin(n: int, n_joints: int, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    joints = np.stack([rng.choice(n_joints, k, replace=False) for _ in range(n)]).astype(np.uint16)
    weights = rng.dirichlet(np.ones(k), n)
    weights[:, -1] = 0.0  # an unused slot, as top-k skins have
    weights /= weights.sum(1, keepdims=True)
    return joints, weights.astype(np.float32)


def test_unpose_is_the_exact_inverse_of_pose(skeleton):
    rest, parents, pose = skeleton
    world = posed_world(rest, parents, pose)
    rng = np.random.default_rng(3)
    joints, weights = _skin(5000, len(rest), 4, rng)
    vertices = rng.normal(size=(5000, 3)).astype(np.float32)
    back = unpose_vertices(vertices, joints, weights, rest, world)
    np.testing.assert_allclose(pose_vertices(back, joints, weights, rest, world), vertices, atol=1e-5)
    posed = pose_vertices(vertices, joints, weights, rest, world)
    np.testing.assert_allclose(unpose_vertices(posed, joints, weights, rest, world), vertices, atol=1e-5)
    # Rigid vertices (one joint) move exactly with their joint.
    one = np.zeros((1, 1), np.uint16) + 5
    np.testing.assert_allclose(pose_vertices(rest[5:6, :3, 3], one, np.ones((1, 1)), rest, world), world[5:6, :3, 3],
                               atol=1e-12)


def test_blend_and_skinning_transforms(skeleton):
    rest, parents, pose = skeleton
    np.testing.assert_allclose(skinning_transforms(rest, rest), np.tile(np.eye(4), (len(rest), 1, 1)), atol=1e-12)
    world = posed_world(rest, parents, pose)
    s = skinning_transforms(rest, world)
    np.testing.assert_allclose(s @ rest, world, atol=1e-12)
    np.testing.assert_allclose(affine_inverse(rest) @ rest, np.tile(np.eye(4), (len(rest), 1, 1)), atol=1e-12)
    m = blend(np.array([[1, 2]]), np.array([[0.25, 0.75]]), s)
    np.testing.assert_allclose(m[0], 0.25 * s[1] + 0.75 * s[2], atol=1e-15)
    with pytest.raises(ValueError, match="out of range"):
        blend(np.array([[len(rest)]]), np.ones((1, 1)), s)


def test_near_singular_blend_falls_back_or_raises():
    """Two joints turned 180 degrees against each other, half-half weights: the blended 3x3 is singular."""
    rest = affine(np.stack([np.eye(3)] * 2), np.zeros(3))
    posed = rest.copy()
    posed[1, :3, :3] = axis_angle([0, 0, 1], 180.0)
    joints = np.array([[0, 1], [1, 0]], np.uint16)
    weights = np.array([[0.5, 0.5], [0.9, 0.1]], np.float32)  # vertex 1 is fine
    v = np.array([[0.0, 0.0, 1.0], [0.3, 0.2, 0.1]])
    with pytest.raises(ValueError, match=r"1 vertices have a near-singular blended transform.*vertex 0"):
        unpose_vertices(v, joints, weights, rest, posed, strict=True)
    back = unpose_vertices(v, joints, weights, rest, posed)
    np.testing.assert_allclose(back[0], v[0], atol=1e-12)  # dominant joint (slot 0, joint 0) is the identity
    np.testing.assert_allclose(pose_vertices(back[1:], joints[1:], weights[1:], rest, posed), v[1:], atol=1e-12)


# ---------------------------------------------------------------------------------------------
# the anny body: photo pose -> A rest and back


def _turn(skel, pose: np.ndarray, joint: int, axis, deg: float) -> np.ndarray:
    """Turn `joint` about a world axis (through its head) on top of `pose`."""
    world = forward_kinematics_np(skel.matrices, skel.parents, pose)
    out = pose.copy()
    out[joint] = pose[joint] @ world_to_local_rotation(world[joint, :3, :3], axis_angle(axis, deg))
    return out


@pytest.fixture(scope="module", params=["A", "T"])
def anny(request):
    """(rest name, body, rest output, photo-posed output, rest preset pose, photo pose), A and T rest."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("anny")
    from strata.core.body import get_body_model

    body = get_body_model("anny", "anny")
    shape = body.default_shape
    a_pose = body.pose_preset(request.param, shape).astype(np.float64)
    skel = body.rest_skeleton(shape)
    photo = a_pose.copy()
    rng = np.random.default_rng(11)
    for j, rot in enumerate(rotations(body.num_joints, rng, 8.0)):  # a little everywhere
        photo[j] = photo[j] @ rot
    idx = body.joint_index
    for name, axis, deg in [("upperleg01.L", (1, 0, 0), -50.0),  # the left thigh comes forward
                            ("lowerleg01.L", (1, 0, 0), 60.0),  # and the knee bends 60 degrees
                            ("upperarm01.R", (0, 1, 0), 70.0),  # the right arm goes up sideways
                            ("lowerarm01.L", (1, 0, 0), -45.0),  # the left elbow bends
                            ("spine03", (1, 0, 0), -15.0),  # a forward lean
                            ("neck01", (0, 0, 1), 20.0)]:  # the head turns
        photo = _turn(skel, photo, idx(name), axis, deg)
    with torch.no_grad():
        rest = body.forward(shape, pose=a_pose.astype(np.float32))
        posed = body.forward(shape, pose=photo.astype(np.float32))
    return request.param, body, rest, posed, a_pose, photo


def test_anny_local_pose_is_the_photo_pose_relative_to_the_rest(anny):
    _, body, rest, posed, a_pose, photo = anny
    r, w = rest.joint_world[0].numpy(), posed.joint_world[0].numpy()
    p = local_pose(r, w, body.parents)
    # Relative to the A (T) rest, each joint's matrix_basis is inv(A_j) @ photo_j (rotations only).
    np.testing.assert_allclose(p[:, :3, :3], np.swapaxes(a_pose, 1, 2) @ photo, atol=2e-4)
    assert (p[:, :3, 3] == 0).all()  # anny's root stays put: no translation anywhere
    np.testing.assert_allclose(posed_world(r, body.parents, p), w, atol=1e-5)


def test_anny_unpose_into_the_standard_rest_and_back(anny):
    name, body, rest, posed, _, _ = anny
    r, w = rest.joint_world[0].numpy(), posed.joint_world[0].numpy()
    v_photo, v_a = posed.vertices[0].numpy(), rest.vertices[0].numpy()
    joints, weights = body.skin_weights(4)
    unposed = unpose_vertices(v_photo, joints, weights, r, w, strict=True)
    reposed = pose_vertices(unposed, joints, weights, r, w)
    trip = np.linalg.norm(reposed - v_photo, axis=1)
    print(f"\n{name} rest: round trip photo -> rest -> photo: mean {trip.mean() * 1e3:.2g} mm, "
          f"max {trip.max() * 1e3:.2g} mm")
    assert trip.mean() <= 2e-3 and trip.max() < 1e-4

    # How far is the un-posed surface from the true rest body? LBS re-based on another rest (anny skins
    # from its native rest) and cut to 4 influences is not the model's own skinning. Exact where the
    # preset moves no joint of a vertex (legs, head, hands); off where it does: shoulders and armpits
    # (measured: A mean 0.15 mm, max 18 mm; T mean 0.32 mm, max 26 mm).
    err = np.linalg.norm(unposed - v_a, axis=1)
    parts, face_part = body.face_parts()
    vertex_part = np.full(len(v_a), -1)
    vertex_part[body.faces.reshape(-1)] = np.repeat(face_part, 3)
    print(f"un-posed vs true rest pose (top-4 weights): mean {err.mean() * 1e3:.2f} mm, "
          f"p99 {np.percentile(err, 99) * 1e3:.1f} mm, max {err.max() * 1e3:.1f} mm")
    for i, part in enumerate(parts):
        sel = err[vertex_part == i]
        if sel.size:
            print(f"  {part:14s} {sel.size:6d} vertices: mean {sel.mean() * 1e3:6.2f} mm, "
                  f"max {sel.max() * 1e3:6.1f} mm")
    all_joints, all_weights = body.skin_weights(None)
    err_all = np.linalg.norm(unpose_vertices(v_photo, all_joints, all_weights, r, w) - v_a, axis=1)
    worst = np.flatnonzero(err > 2e-3)
    near = np.bincount(joints[worst, 0], minlength=body.num_joints)
    print("  vertices off by > 2 mm, by dominant joint:",
          ", ".join(f"{body.joint_names[j]} {near[j]}" for j in np.argsort(-near)[:6] if near[j]))
    print(f"un-posed vs true rest pose (all {all_joints.shape[1]} influences): mean {err_all.mean() * 1e3:.2f} mm, "
          f"max {err_all.max() * 1e3:.1f} mm")
    assert err.mean() < 2e-3 and err.max() < 0.05


def _closest_brute_force(v: np.ndarray, f: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Distance from each point to the mesh, by another method: for every triangle, the projection onto its
    plane if it falls inside, else the nearest point of its three edges."""
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    n = np.cross(b - a, c - a)
    n /= np.linalg.norm(n, axis=1, keepdims=True)
    best = np.full(len(p), np.inf)
    for i, q in enumerate(p):
        d_plane = ((q - a) * n).sum(1)
        proj = q - d_plane[:, None] * n
        inside = np.ones(len(f), bool)
        for x, y in ((a, b), (b, c), (c, a)):
            inside &= (np.cross(y - x, proj - x) * n).sum(1) >= 0
        dist = np.where(inside, np.abs(d_plane), np.inf)
        for x, y in ((a, b), (b, c), (c, a)):
            t = np.clip(((q - x) * (y - x)).sum(1) / ((y - x) ** 2).sum(1), 0, 1)
            dist = np.minimum(dist, np.linalg.norm(x + t[:, None] * (y - x) - q, axis=1))
        best[i] = dist.min()
    return best


def test_closest_points_match_a_brute_force_search():
    from strata.core.body.skinning import closest_points

    trimesh = pytest.importorskip("trimesh")
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=1.0)
    v, f = np.asarray(sphere.vertices), np.asarray(sphere.faces)
    rng = np.random.default_rng(3)
    points = rng.normal(size=(200, 3))
    points *= rng.uniform(0.7, 1.3, (200, 1)) / np.linalg.norm(points, axis=1, keepdims=True)
    face, bary, dist = closest_points(v, f, points)
    np.testing.assert_allclose(dist, _closest_brute_force(v, f, points), atol=1e-9)
    found = np.einsum("pk,pkd->pd", bary, v[f[face]])
    np.testing.assert_allclose(np.linalg.norm(found - points, axis=1), dist, atol=1e-9)
    assert (bary >= -1e-12).all() and np.allclose(bary.sum(1), 1.0)


def test_transferred_weights_make_an_offset_surface_follow_the_body():
    """A surface 1 cm outside the body (a tight garment, a carved clothed surface) takes the body's weights
    from its closest points: posed with them, it stays 1 cm outside the posed body."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("anny")
    from strata.core.body import get_body_model
    from strata.core.body.skinning import transfer_weights
    from strata.exchange.asset.geometry import smooth_normals

    body = get_body_model("anny", "anny")
    rest = body.forward().rest_vertices[0].numpy().astype(np.float64)
    normals = smooth_normals(rest.astype(np.float32), body.faces).astype(np.float64)
    shell = rest + 0.01 * normals
    joints, weights = body.skin_weights(4)
    t_joints, t_weights = transfer_weights(rest, body.faces, joints, weights, shell)
    assert t_joints.shape == (len(shell), 4) and np.allclose(t_weights.sum(1), 1.0, atol=1e-5)
    same_main = (t_joints[:, 0] == joints[:, 0]).mean()
    assert same_main > 0.8  # the rest straddle two bones, where the blend's largest weight may swap
    pose = np.tile(np.eye(3, dtype=np.float32), (body.num_joints, 1, 1))
    pose[body.joint_index("lowerleg01.L")] = axis_angle([1, 0, 0], 70)
    pose[body.joint_index("upperarm01.R")] = axis_angle([0, 1, 0], -40)
    with torch.no_grad():
        out = body.forward(pose=torch.as_tensor(pose)[None])
    rest_world = out.rest_joint_world[0].numpy()
    posed_world = out.joint_world[0].numpy()
    posed_body = pose_vertices(rest, joints, weights, rest_world, posed_world)
    posed_shell = pose_vertices(shell, t_joints, t_weights, rest_world, posed_world)
    gap = np.linalg.norm(posed_shell - posed_body, axis=1)
    print(f"offset after posing: mean {gap.mean() * 1000:.2f} mm, 99 % {np.percentile(gap, 99) * 1000:.2f} mm")
    assert abs(gap.mean() - 0.01) < 0.002 and np.percentile(gap, 99) < 0.03


def test_nearest_rotations_cleans_drifted_blocks_and_keeps_translations():
    from scipy.spatial.transform import Rotation

    from strata.core.body.skinning import nearest_rotations

    rng = np.random.default_rng(0)
    m = np.tile(np.eye(4), (5, 1, 1))
    m[:, :3, :3] = Rotation.random(5, random_state=1).as_matrix() + rng.normal(0, 1e-4, (5, 3, 3))  # float32 drift
    m[:, :3, 3] = rng.normal(size=(5, 3))
    out = nearest_rotations(m)
    np.testing.assert_allclose(out[:, :3, :3] @ out[:, :3, :3].transpose(0, 2, 1), np.tile(np.eye(3), (5, 1, 1)),
                               atol=1e-12)
    assert np.all(np.linalg.det(out[:, :3, :3]) > 0)
    assert np.abs(out[:, :3, :3] - m[:, :3, :3]).max() < 1e-3
    np.testing.assert_array_equal(out[:, :3, 3], m[:, :3, 3])
