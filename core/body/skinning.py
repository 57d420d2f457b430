"""Linear blend skinning between a rest pose and a posed one: forward kinematics, its inverse, and
moving vertices both ways. numpy only, float64 inside, every result float64.

The HumanAsset stores meshes in the rig's (standard A or T) rest pose and the fitted pose as one local
transform per joint (``Rig.pose``, docs/asset-format.md); these functions convert between the two.
Conventions (the same as :mod:`.base` and Blender's):

* ``R`` (J, 4, 4): rest world matrices; ``W`` (J, 4, 4): posed world matrices (column vectors,
  ``p_world = M @ [x, y, z, 1]``).
* ``P`` (J, 4, 4): the pose, each joint's transform relative to its rest in its own rest frame,
  i.e. Blender's ``PoseBone.matrix_basis``:
  ``W_j = W_parent @ inv(R_parent) @ R_j @ P_j``, and for a root ``W_j = R_j @ P_j``.
* Skinning: ``S_j = W_j @ inv(R_j)`` takes a rest point to where joint j carries it, and a rest vertex
  moves to ``v' = (sum_k w_k S_jk) v`` (linear blend skinning, the armature modifier's and glTF's).

Parents may come after their children in the arrays; several roots are fine.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .base import topological_order

if TYPE_CHECKING:
    from strata.exchange.asset.schema import Rig, Skin

    from .base import BodyModel

#: Translations shorter than this (metres, in the joint's rest frame) are float noise, not a move:
#: :func:`local_pose` sets them to exactly 0, so only the joints that really move get a location.
TRANSLATION_TOL = 1e-6

#: :func:`unpose_vertices` treats a vertex's blended 3x3 as singular below this |determinant|. A blend
#: of two rotations at angle theta to each other has determinant cos(theta / 2)^2, so 1e-4 is reached
#: only by joints turned about 179 degrees against each other, where inverting amplifies errors 100x.
MIN_BLEND_DET = 1e-4


def posed_world(rest_world: np.ndarray, parents: np.ndarray, pose: np.ndarray | None) -> np.ndarray:
    """(J, 4, 4) posed world matrices from the rest ones and the local pose (forward kinematics).

    ``pose`` is (J, 4, 4) (``Rig.pose``), or (J, 3, 3) rotations (:meth:`BodyModel.forward`'s
    ``pose``), or None for the rest pose. Parents are visited before their children whatever the
    array order."""
    rest = _matrices(rest_world, "rest_world")
    n = len(rest)
    parents = _parents(parents, n)
    local = rest.copy()
    if pose is not None:
        local = local @ _pose_matrices(pose, n)
    child = parents >= 0
    local[child] = affine_inverse(rest[parents[child]]) @ local[child]  # inv(R_p) @ R_j @ P_j
    world = local.copy()  # roots are done: W = R @ P
    for level in _levels(parents)[1:]:
        world[level] = world[parents[level]] @ local[level]
    return world


def local_pose(
    rest_world: np.ndarray,
    posed_world: np.ndarray,
    parents: np.ndarray,
    *,
    translation_tol: float = TRANSLATION_TOL,
) -> np.ndarray:
    """(J, 4, 4) local pose ``P`` that takes ``rest_world`` to ``posed_world``: the inverse of
    :func:`posed_world`, ``P_j = inv(R_j) @ R_parent @ inv(W_parent) @ W_j`` (a root:
    ``inv(R_j) @ W_j``).

    It reproduces ``posed_world`` exactly, so a joint gets a translation only where its posed head
    is not where its parent carries it (a moving root, a stretched bone). Translations shorter than
    ``translation_tol`` are float noise in the inputs and become exactly 0 (pass 0 to keep them).
    The 3x3 blocks are not re-orthonormalised: rigid inputs give rotations."""
    rest = _matrices(rest_world, "rest_world")
    posed = _matrices(posed_world, "posed_world", len(rest))
    parents = _parents(parents, len(rest))
    relative = posed.copy()
    child = parents >= 0
    relative[child] = rest[parents[child]] @ affine_inverse(posed[parents[child]]) @ posed[child]
    pose = affine_inverse(rest) @ relative
    pose[:, 3] = (0.0, 0.0, 0.0, 1.0)
    small = np.linalg.norm(pose[:, :3, 3], axis=1) < translation_tol
    pose[small, :3, 3] = 0.0
    return pose


def skinning_transforms(rest_world: np.ndarray, posed_world: np.ndarray) -> np.ndarray:
    """(J, 4, 4) ``posed @ inv(rest)``: where each joint carries a point given in the rest pose."""
    rest = _matrices(rest_world, "rest_world")
    return _matrices(posed_world, "posed_world", len(rest)) @ affine_inverse(rest)


def blend(joints: np.ndarray, weights: np.ndarray, transforms: np.ndarray) -> np.ndarray:
    """(N, 4, 4) per-vertex blend ``sum_k weights[n, k] * transforms[joints[n, k]]`` (top-k skin)."""
    j, w = _skin(joints, weights)
    t = _matrices(transforms, "transforms")
    if j.size and (j.min() < 0 or j.max() >= len(t)):
        raise ValueError(f"joint index {int(j.max()) if j.max() >= len(t) else int(j.min())} out of range: "
                         f"{len(t)} transforms")
    out = np.zeros((len(j), 4, 4))
    for k in range(j.shape[1]):  # one slot at a time: N x 16 temporaries, not N x K x 16
        out += w[:, k, None, None] * t[j[:, k]]
    return out


def pose_vertices(
    vertices: np.ndarray,
    joints: np.ndarray,
    weights: np.ndarray,
    rest_world: np.ndarray,
    posed_world: np.ndarray,
) -> np.ndarray:
    """(N, 3) rest-pose vertices moved into the posed skeleton by linear blend skinning."""
    v = _points(vertices)
    m = blend(joints, weights, skinning_transforms(rest_world, posed_world))
    if len(m) != len(v):
        raise ValueError(f"{len(v)} vertices but {len(m)} skin rows")
    return np.einsum("nab,nb->na", m[:, :3, :3], v) + m[:, :3, 3]


def unpose_vertices(
    vertices: np.ndarray,
    joints: np.ndarray,
    weights: np.ndarray,
    rest_world: np.ndarray,
    posed_world: np.ndarray,
    *,
    min_det: float = MIN_BLEND_DET,
    strict: bool = False,
) -> np.ndarray:
    """(N, 3) rest-pose vertices that :func:`pose_vertices` takes to ``vertices`` (posed): each
    vertex's blended transform inverted, so ``pose_vertices(unpose_vertices(v)) == v`` up to rounding.

    A vertex whose blended 3x3 has ``|det| < min_det`` (its joints' transforms nearly cancel) cannot be
    inverted reliably: with ``strict`` that raises ValueError, otherwise the vertex follows its
    dominant joint back rigidly (exact for that joint alone; such vertices do not round-trip)."""
    v = _points(vertices)
    j, w = _skin(joints, weights)
    skinning = skinning_transforms(rest_world, posed_world)
    m = blend(j, w, skinning)
    if len(m) != len(v):
        raise ValueError(f"{len(v)} vertices but {len(m)} skin rows")
    a, t = m[:, :3, :3], m[:, :3, 3]
    det = np.linalg.det(a)
    singular = ~(np.abs(det) >= min_det)
    if singular.any() and strict:
        first = int(np.flatnonzero(singular)[0])
        raise ValueError(
            f"{int(singular.sum())} vertices have a near-singular blended transform (|det| < {min_det:g}), e.g. "
            f"vertex {first} (det {det[first]:.3g}, joints {j[first].tolist()}, weights {w[first].round(3).tolist()}): "
            "its joints are turned almost opposite each other, so LBS cannot be undone there")
    out = np.empty_like(v)
    ok = ~singular
    out[ok] = np.linalg.solve(a[ok], (v[ok] - t[ok])[..., None])[..., 0]
    if singular.any():
        dominant = j[singular, np.argmax(w[singular], axis=1)]
        back = affine_inverse(skinning[dominant])
        out[singular] = np.einsum("nab,nb->na", back[:, :3, :3], v[singular]) + back[:, :3, 3]
    return out


def nearest_rotations(matrices: np.ndarray) -> np.ndarray:
    """(J, 4, 4) copies whose 3x3 blocks are the nearest rotations (SVD): local poses derived from skeletons
    stored in float32 drift off orthonormal along long chains (a finger's third bone, ~1e-4)."""
    out = np.array(matrices, np.float64, copy=True)
    u, _, vt = np.linalg.svd(out[:, :3, :3])
    d = np.sign(np.linalg.det(u @ vt))
    u[:, :, 2] *= d[:, None]
    out[:, :3, :3] = u @ vt
    return out


def affine_inverse(m: np.ndarray) -> np.ndarray:
    """Inverse of affine 4x4 matrices (..., 4, 4): ``[A t; 0 1] -> [inv(A) -inv(A) t; 0 1]``."""
    m = np.asarray(m, np.float64)
    out = np.zeros_like(m)
    a_inv = np.linalg.inv(m[..., :3, :3])
    out[..., :3, :3] = a_inv
    out[..., :3, 3] = -np.einsum("...ab,...b->...a", a_inv, m[..., :3, 3])
    out[..., 3, 3] = 1.0
    return out


# --- internals ------------------------------------------------------------------------------------------


def _matrices(m: np.ndarray, name: str, n: int | None = None) -> np.ndarray:
    out = np.asarray(m, np.float64)
    if out.ndim != 3 or out.shape[1:] != (4, 4) or (n is not None and len(out) != n):
        want = f"({n}, 4, 4)" if n is not None else "(J, 4, 4)"
        raise ValueError(f"{name} must be {want} matrices, got shape {out.shape}")
    return out


def _pose_matrices(pose: np.ndarray, n: int) -> np.ndarray:
    p = np.asarray(pose, np.float64)
    if p.shape == (n, 3, 3):
        out = np.tile(np.eye(4), (n, 1, 1))
        out[:, :3, :3] = p
        return out
    if p.shape != (n, 4, 4):
        raise ValueError(f"pose must be ({n}, 4, 4) or ({n}, 3, 3), got shape {p.shape}")
    return p


def _parents(parents: np.ndarray, n: int) -> np.ndarray:
    p = np.asarray(parents, np.int64).reshape(-1)
    if len(p) != n or (n and (p.min() < -1 or p.max() >= n)):
        raise ValueError(f"parents must be {n} indices in -1..{n - 1}, got {np.asarray(parents).tolist()[:8]}...")
    return p


def _levels(parents: np.ndarray) -> list[np.ndarray]:
    """Joint indices grouped by depth (roots first), so each group's parents are already posed."""
    depth = np.zeros(len(parents), np.int64)
    for j in topological_order(parents):  # ValueError for a cycle
        if parents[j] >= 0:
            depth[j] = depth[parents[j]] + 1
    return [np.flatnonzero(depth == d) for d in range(int(depth.max()) + 1 if len(depth) else 0)]


def _skin(joints: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    j = np.asarray(joints).astype(np.int64, copy=False)
    w = np.asarray(weights, np.float64)
    if j.ndim != 2 or j.shape != w.shape:
        raise ValueError(f"joints and weights must both be (N, K), got {j.shape} and {w.shape}")
    return j, w


def _points(vertices: np.ndarray) -> np.ndarray:
    v = np.asarray(vertices, np.float64)
    if v.ndim != 2 or v.shape[1] != 3:
        raise ValueError(f"vertices must be (N, 3), got shape {v.shape}")
    return v


# --------------------------------------------------------------------------- a body model's rig in an asset


def rig_from(model: BodyModel, joint_world: np.ndarray, lengths: np.ndarray, rest_pose: str = "") -> Rig:
    """The asset's rig of ``model`` with the given (J, 4, 4) joint matrices as the bind (rest) pose."""
    from strata.exchange.asset.schema import Rig

    return Rig(
        kind=model.kind,
        joint_names=list(model.joint_names),
        parents=np.asarray(model.parents, np.int32),
        rest=np.asarray(joint_world, np.float32),
        lengths=np.maximum(np.asarray(lengths, np.float32), 1e-4),
        rest_pose=rest_pose,
    )


def skin_from(model: BodyModel, k: int = 4) -> Skin:
    """The asset's top-``k`` skin of ``model``'s mesh (glTF and game engines take 4 influences)."""
    from strata.exchange.asset.schema import Skin

    idx, w = model.skin_weights(k)
    return Skin(idx.astype(np.uint16), w.astype(np.float32))


# --------------------------------------------------------------------------- weights onto another surface


def closest_points(vertices: np.ndarray, faces: np.ndarray, points: np.ndarray,
                   candidates: int = 8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each point, the closest point on the mesh among the triangles around its ``candidates`` nearest
    vertices: ``(face index (P,), barycentric weights (P, 3), distance (P,))``.

    Why candidates and not every triangle: the points are a surface carved from this very body (or a garment
    over it), so the closest triangle touches one of the nearest few vertices; a k-d tree query plus
    ~50 point-triangle tests per point keeps a 100k-point transfer under a second."""
    from scipy.spatial import cKDTree

    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64)
    p = np.asarray(points, np.float64)
    # 1. the faces around each vertex, padded to a rectangle (-1 = none)
    order = np.argsort(f.ravel(), kind="stable")
    owner = order // 3
    counts = np.bincount(f.ravel(), minlength=len(v))
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    width = int(counts.max()) if len(counts) else 0
    ring = np.full((len(v), width), -1, np.int64)
    slot = np.arange(len(order)) - np.repeat(start, counts)
    ring[np.repeat(np.arange(len(v)), counts), slot] = owner
    # 2. candidate faces of each point: those around its nearest vertices (of those the faces use)
    used = np.flatnonzero(counts > 0)
    _, near = cKDTree(v[used]).query(p, k=min(candidates, len(used)))
    near = used[near.reshape(len(p), -1)]
    cand = ring[near].reshape(len(p), -1)  # (P, C)
    valid = cand >= 0
    cand = np.where(valid, cand, 0)
    # 3. the closest point on each candidate triangle, then the best candidate
    a, b, c = (v[f[cand][..., i]] for i in range(3))
    bary = _closest_on_triangles(np.broadcast_to(p[:, None], a.shape), a, b, c)
    closest = bary[..., 0:1] * a + bary[..., 1:2] * b + bary[..., 2:3] * c
    dist = np.linalg.norm(closest - p[:, None], axis=-1)
    dist[~valid] = np.inf
    best = np.argmin(dist, axis=1)
    rows = np.arange(len(p))
    return cand[rows, best], bary[rows, best], dist[rows, best]


def transfer_weights(src_vertices: np.ndarray, src_faces: np.ndarray, src_joints: np.ndarray,
                     src_weights: np.ndarray, points: np.ndarray, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Top-``k`` skin weights for ``points`` from the closest point on the skinned source surface.

    Each point takes the barycentric blend of its closest triangle's corner weights, so a carved surface that
    lies on or just outside the fitted body deforms exactly as the body there does (rows sorted by weight,
    summing to 1; unused slots weight 0 on the main joint)."""
    face, bary, _ = closest_points(src_vertices, src_faces, points)
    j = np.asarray(src_joints, np.int64)
    w = np.asarray(src_weights, np.float64)
    corners = np.asarray(src_faces, np.int64)[face]  # (P, 3)
    cand_j = j[corners].reshape(len(points), -1)  # (P, 3K)
    cand_w = (w[corners] * bary[..., None]).reshape(len(points), -1)
    # Merge duplicate joints in each row, then keep the k largest.
    order = np.argsort(cand_j, axis=1, kind="stable")
    cand_j = np.take_along_axis(cand_j, order, axis=1)
    cand_w = np.take_along_axis(cand_w, order, axis=1)
    same = np.zeros_like(cand_j, bool)
    same[:, 1:] = cand_j[:, 1:] == cand_j[:, :-1]
    group = np.cumsum(~same, axis=1) - 1
    merged = np.zeros_like(cand_w)
    np.add.at(merged, (np.arange(len(points))[:, None], group), cand_w)
    merged_j = np.zeros_like(cand_j)
    np.put_along_axis(merged_j, group, cand_j, axis=1)
    top = np.argsort(-merged, axis=1, kind="stable")[:, :k]
    out_j = np.take_along_axis(merged_j, top, axis=1)
    out_w = np.take_along_axis(merged, top, axis=1)
    out_w /= np.maximum(out_w.sum(axis=1, keepdims=True), 1e-12)
    out_j[out_w <= 0] = np.repeat(out_j[:, :1], k, axis=1)[out_w <= 0]
    return out_j, out_w.astype(np.float32)


def _closest_on_triangles(p: np.ndarray, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Barycentric coordinates (..., 3) of the closest point to ``p`` on triangles ``abc`` (Ericson's
    region tests, vectorised): vertex, edge or face region, whichever holds the projection."""
    ab, ac, ap = b - a, c - a, p - a
    d1, d2 = (ab * ap).sum(-1), (ac * ap).sum(-1)
    bp = p - b
    d3, d4 = (ab * bp).sum(-1), (ac * bp).sum(-1)
    cp = p - c
    d5, d6 = (ab * cp).sum(-1), (ac * cp).sum(-1)
    va = d3 * d6 - d5 * d4
    vb = d5 * d2 - d1 * d6
    vc = d1 * d4 - d3 * d2
    denom = np.where(np.abs(va + vb + vc) < 1e-30, 1e-30, va + vb + vc)
    v, w = vb / denom, vc / denom
    out = np.stack([1.0 - v - w, v, w], axis=-1)  # inside the face

    def put(region: np.ndarray, bary: np.ndarray) -> None:
        out[region] = bary[region]

    eps = 1e-30
    # edges (checked before vertices so that vertex regions win where both hold)
    t = d1 / np.maximum(d1 - d3, eps)
    put((vc <= 0) & (d1 >= 0) & (d3 <= 0), np.stack([1 - t, t, np.zeros_like(t)], -1))
    t = d2 / np.maximum(d2 - d6, eps)
    put((vb <= 0) & (d2 >= 0) & (d6 <= 0), np.stack([1 - t, np.zeros_like(t), t], -1))
    t = (d4 - d3) / np.maximum((d4 - d3) + (d5 - d6), eps)
    put((va <= 0) & ((d4 - d3) >= 0) & ((d5 - d6) >= 0), np.stack([np.zeros_like(t), 1 - t, t], -1))
    # vertices
    one, zero = np.ones_like(d1), np.zeros_like(d1)
    put((d1 <= 0) & (d2 <= 0), np.stack([one, zero, zero], -1))
    put((d3 >= 0) & (d4 <= d3), np.stack([zero, one, zero], -1))
    put((d6 >= 0) & (d5 <= d6), np.stack([zero, zero, one], -1))
    return out
