"""How well layers sit: interpenetration in the rest pose and in test poses.

The measure (issue 11): the share of a layer's vertices that are inside the body, or inside a layer under it,
by more than 2 mm. Inside is told by the sign of the offset to the closest point of the other closed surface
against that face's outward normal. Poses move every layer by linear blend skinning with its own weights, as
Blender's Armature modifier will; the test poses (walking, sitting, arms up) are built by role, so they work
on any body model with a joint map.

Where the body's own skinning folds its skin into itself (the lap at 80-degree hips: thigh and belly are two
rigid parts that overlap near the joint), no garment that follows the skin can be outside the body, whatever
its weights. Such vertices are told apart (:func:`body_folds`) and reported on their own, so the measure says
what the garments add to the body's own fold.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..body.base import BodyModel
from ..body.skinning import closest_points, pose_vertices
from ..reconstruct.posing import Poser, rot_x, rot_y

TOLERANCE = 0.002
"""Metres inside another surface before a vertex counts as penetrating."""

#: Test poses: role -> (world axis, degrees) turns applied on top of the bind pose, parents first.
TEST_POSES: dict[str, list[tuple[str, str, str, float]]] = {
    "walk": [("L", "thigh", "x", -30.0), ("L", "shin", "x", 25.0), ("R", "thigh", "x", 20.0),
             ("L", "upper_arm", "x", 20.0), ("R", "upper_arm", "x", -20.0)],
    "sit": [("L", "thigh", "x", -80.0), ("R", "thigh", "x", -80.0), ("L", "shin", "x", 80.0),
            ("R", "shin", "x", 80.0)],
    "arms_up": [("L", "upper_arm", "y", -100.0), ("R", "upper_arm", "y", 100.0)],
}


def signed_distance(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """(P,) distance from each point to a closed, outward-wound surface, negative inside.

    The sign is that of the offset to the closest point against the angle-weighted pseudo-normal of the
    feature it lies on (face, edge or vertex; Baerentzen and Aanaes 2005), which is exact for closed
    manifolds, where a plain closest-face normal misjudges points beside edges and rims."""
    return _nearest(points, vertices, faces)[0]


def push_out(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray, margin: float,
             confirm: bool = True) -> np.ndarray:
    """``points`` with those inside the closed surface moved to its closest point plus ``margin`` along the
    closest face's outward normal: a collision fix for the few vertices a construction leaves inside
    (between toes, at a rim). ``confirm=False`` trusts the pseudo-normal sign alone, which is exact on a
    closed manifold without self-intersections (the body's skin) and spares the winding numbers."""
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64)
    out = np.asarray(points, np.float64).copy()
    candidates = np.flatnonzero(_in_box(out, v, 0.0))  # nothing outside the bounding box can be inside
    if not len(candidates):
        return out
    signed, closest, face_normal = _nearest(out[candidates], v, f)
    inside = _confirmed(signed < 0.0, out[candidates], v, f) if confirm else signed < 0.0
    out[candidates[inside]] = closest[inside] + margin * face_normal[inside]
    return out


def penetrating(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray,
                tolerance: float = TOLERANCE) -> np.ndarray:
    """(P,) bool: points inside the closed surface by more than ``tolerance``."""
    return _confirmed(signed_distance(points, vertices, faces) < -tolerance, points, vertices, faces)


def _confirmed(flagged: np.ndarray, points: np.ndarray, vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """``flagged`` (points the pseudo-normal sign puts inside) kept where the winding number agrees.

    The pseudo-normal sign is exact only on a surface without self-intersections, which a layer of several
    overlapping pieces (a hoodie and its hood) is not; the winding number is robust there but slower, so it
    runs only on the flagged points."""
    out = flagged.copy()
    if out.any():
        out[out] = winding_number(points[out], vertices, faces) > 0.5
    return out


def _nearest(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                                   np.ndarray]:
    """(signed distance (P,), closest surface point (P, 3), unit normal of the closest face (P, 3))."""
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64)
    face, bary, distance = closest_points(v, f, points, candidates=16)
    face_n, edge_n, vertex_n = _pseudo_normals(v, f)
    # 1. The feature the closest point lies on, from its barycentric weights.
    eps = 1e-7
    normal = face_n[face]
    on_vertex = bary.max(axis=1) > 1 - eps
    on_edge = ~on_vertex & (bary.min(axis=1) < eps)
    corner = bary.argmax(axis=1)
    normal[on_vertex] = vertex_n[f[face[on_vertex], corner[on_vertex]]]
    local = (bary.argmin(axis=1) + 1) % 3  # the edge opposite the zero weight: (k, k+1) with k = argmin + 1
    normal[on_edge] = edge_n[face[on_edge], local[on_edge]]
    # 2. The sign.
    closest = np.einsum("pk,pkd->pd", bary, v[f[face]])
    inside = np.einsum("pd,pd->p", points - closest, normal) < 0
    return np.where(inside, -distance, distance), closest, face_n[face]


def winding_number(points: np.ndarray, vertices: np.ndarray, faces: np.ndarray, chunk: int = 2_000_000) -> np.ndarray:
    """(P,) generalised winding number of a closed surface around each point (1 inside, 0 outside): the sum
    of the triangles' solid angles over 4 pi (Van Oosterom and Strackee)."""
    out = np.zeros(len(points))
    tri = np.asarray(vertices, np.float64)[np.asarray(faces, np.int64)]
    step = max(1, chunk // max(len(tri), 1))
    for s in range(0, len(points), step):
        a, b, c = (tri[None, :, k] - points[s:s + step, None] for k in range(3))
        la, lb, lc = (np.linalg.norm(x, axis=2) for x in (a, b, c))
        det = np.einsum("pfd,pfd->pf", a, np.cross(b, c))
        den = (la * lb * lc + np.einsum("pfd,pfd->pf", a, b) * lc + np.einsum("pfd,pfd->pf", b, c) * la
               + np.einsum("pfd,pfd->pf", c, a) * lb)
        out[s:s + step] = np.arctan2(det, den).sum(axis=1) / (2 * np.pi)
    return out


def _pseudo_normals(v: np.ndarray, f: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unit face normals (F, 3), edge normals per face and local edge (F, 3, 3) (the sum of the two faces'
    normals), angle-weighted vertex normals (V, 3)."""
    tri = v[f]
    n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    n /= np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-20)
    vertex_n = np.zeros_like(v)
    for k in range(3):
        a = tri[:, (k + 1) % 3] - tri[:, k]
        b = tri[:, (k + 2) % 3] - tri[:, k]
        cos = np.einsum("fd,fd->f", a, b) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-20)
        np.add.at(vertex_n, f[:, k], n * np.arccos(np.clip(cos, -1, 1))[:, None])
    edges = np.stack([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]], axis=1).reshape(-1, 2)
    edges.sort(axis=1)
    _, inverse = np.unique(edges, axis=0, return_inverse=True)
    summed = np.zeros((inverse.max() + 1, 3))
    np.add.at(summed, inverse.reshape(-1), np.repeat(n, 3, axis=0))
    return n, summed[inverse.reshape(-1)].reshape(len(f), 3, 3), vertex_n


def layer_penetration(layers: Sequence[tuple[np.ndarray, np.ndarray]], tolerance: float = TOLERANCE) -> list[float]:
    """For each layer after the first (the body), the share of its vertices inside the body or inside any
    layer before it by more than ``tolerance``. ``layers`` are ``(vertices, faces)``, inner first."""
    return [float(m.mean()) for m in penetration_masks(layers, tolerance)]


def penetration_masks(layers: Sequence[tuple[np.ndarray, np.ndarray]],
                      tolerance: float = TOLERANCE) -> list[np.ndarray]:
    """For each layer after the first, (V,) bool: its vertices that :func:`layer_penetration` counts."""
    out = []
    for i in range(1, len(layers)):
        points = layers[i][0]
        bad = np.zeros(len(points), bool)
        for v, f in layers[:i]:
            near = _in_box(points, v, 0.02)
            if near.any():
                bad[near] |= penetrating(points[near], v, f, tolerance)
        out.append(bad)
    return out


def body_folds(points: np.ndarray, rest_body: np.ndarray, posed_body: np.ndarray, faces: np.ndarray,
               tolerance: float = TOLERANCE) -> np.ndarray:
    """(P,) bool: garment ``points`` (rest pose) whose place on the body lies inside the posed body.

    Each point's anchor is its closest point on the rest body; the same barycentric point on the posed body,
    ``tolerance`` out along its face's normal, inside the posed body means the skin there has been folded
    into the body by the body's own skinning, and anything following the skin is inside too. Only the
    winding number can tell (the closest surface to the probe is its own skin, outside which it lies), so
    pass only the points that need it."""
    rest = np.asarray(rest_body, np.float64)
    posed = np.asarray(posed_body, np.float64)
    f = np.asarray(faces, np.int64)
    if not len(points):
        return np.zeros(0, bool)
    face, bary, _ = closest_points(rest, f, np.asarray(points, np.float64), candidates=16)
    tri = posed[f[face]]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-20)
    probe = np.einsum("pk,pkd->pd", bary, tri) + tolerance * normal
    return winding_number(probe, posed, f) > 0.5


def pose_penetration(model: BodyModel, shape: np.ndarray, bind_pose: np.ndarray, pose: np.ndarray,
                     layers: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]],
                     tolerance: float = TOLERANCE) -> tuple[list[float], list[float]]:
    """For each garment layer in ``pose``: (share penetrating, share penetrating outside the body's own
    folds). ``layers`` are ``(vertices, faces, joints, weights)`` in ``bind_pose``, the body first."""
    posed = posed_layers(model, shape, bind_pose, pose, layers)
    masks = penetration_masks([(v, layer[1]) for v, layer in zip(posed, layers, strict=True)], tolerance)
    body, faces = layers[0][0], layers[0][1]
    raw, beyond = [], []
    for layer, bad in zip(layers[1:], masks, strict=True):
        unfolded = bad.copy()
        unfolded[bad] = ~body_folds(layer[0][bad], body, posed[0], faces, tolerance)
        raw.append(float(bad.mean()))
        beyond.append(float(unfolded.mean()))
    return raw, beyond


def test_pose(model: BodyModel, shape: np.ndarray, bind_pose: np.ndarray, name: str) -> np.ndarray:
    """(J, 3, 3) local rotations: ``bind_pose`` with the turns of :data:`TEST_POSES` ``[name]``."""
    poser = Poser.for_body(model, shape)
    poser.pose = np.asarray(bind_pose, np.float64).copy()
    jm = model.joint_map
    axes = {"x": rot_x, "y": rot_y}
    for side, role, axis, degrees in TEST_POSES[name]:
        poser.rotate_world(jm.side(role, side), axes[axis](degrees))
    return poser.as_float32()


def posed_layers(model: BodyModel, shape: np.ndarray, bind_pose: np.ndarray, pose: np.ndarray,
                 layers: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]) -> list[np.ndarray]:
    """Every layer's ``(vertices, faces, joints, weights)`` moved from ``bind_pose`` to ``pose`` by linear
    blend skinning (what an armature does), as vertex arrays."""
    import torch

    def joints(p: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = model.forward(shape=shape[None], pose=np.asarray(p, np.float32)[None])
        return out.joint_world[0].cpu().numpy()

    rest, posed = joints(bind_pose), joints(pose)
    return [pose_vertices(v, j, w, rest, posed) for v, _, j, w in layers]


def _in_box(points: np.ndarray, vertices: np.ndarray, margin: float) -> np.ndarray:
    lo, hi = vertices.min(axis=0) - margin, vertices.max(axis=0) + margin
    return np.all((points >= lo) & (points <= hi), axis=1)
