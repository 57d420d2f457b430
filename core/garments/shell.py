"""Shells: garments that follow the body (trousers, sleeves, a bodice, shoes, a hair cap).

A shell is the body's own surface over a region, pushed outward along the vertex normals twice (an inner
and an outer sheet, ``thickness`` apart) and closed by a rim along the region's border: a closed, thick,
2-manifold surface whose vertices each sit over one body vertex. That makes the rest easy and exact: the UVs
are the body's, the body vertices under it are the ones to hide, and the skin weights are the skin's under
it (:func:`skin_following_weights`), so the garment deforms like that skin.

The region is cleaned first so its border is a set of simple loops (no two border loops touching at a vertex,
no slivers): that is what makes the rim, and so the closed surface, well defined.
"""

from __future__ import annotations

import numpy as np

from .frame import BodyFrame, face_components, vertex_normals
from .piece import Piece, edge_counts

#: Distance off the skin (metres) beyond which a shell vertex keeps its own body vertex's weights.
FOLLOW_REACH = 0.03
_MIN_FACES = 40  # islands of the region smaller than this are dropped


def region_faces(frame: BodyFrame, cover: np.ndarray) -> np.ndarray:
    """The body faces with all corners covered, cleaned so the border is simple loops (see the module
    docstring): faces at border vertices shared by several loops are dropped, then tiny islands."""
    faces = frame.faces[cover[frame.faces].all(axis=1)]
    for _ in range(20):
        bad = _pinched_vertices(faces)
        if not len(bad):
            break
        faces = faces[~np.isin(faces, bad).any(axis=1)]
    return _drop_islands(faces, len(frame.vertices))


def build_shell(frame: BodyFrame, cover: np.ndarray, inner: np.ndarray, thickness: float | np.ndarray,
                hide_margin: int = 1, base: np.ndarray | None = None) -> Piece | None:
    """The shell over ``cover`` ((N,) bool) with its inner sheet ``inner`` ((N,) metres) off the skin and its
    outer sheet ``thickness`` further. None when the region is empty after cleaning.

    ``hide_margin`` rings of body vertices along the border stay visible (the garment's edge overlaps them
    rather than showing a gap). ``base`` ((N, 3)) replaces the skin positions the sheets are offset from
    (a smoothed foot for shoes: see :func:`enclosing_base`)."""
    faces = region_faces(frame, cover)
    if len(faces) == 0:
        return None
    # 1. The shell's vertices: each used body vertex twice (outer, inner).
    src = np.unique(faces)
    index = np.full(len(frame.vertices), -1, np.int64)
    index[src] = np.arange(len(src))
    n = len(src)
    thick = np.broadcast_to(np.asarray(thickness, np.float64), (len(frame.vertices),))[src]
    if base is None:
        base_v, normal = frame.vertices[src], frame.normals[src]
    else:  # offset along the smoothed surface's own normals (the skin's may point into a neighbouring toe)
        base_v, normal = base[src], vertex_normals(base, frame.faces, smooth=2)[src]
    base = base_v
    outer_v = base + normal * (inner[src] + thick)[:, None]
    inner_v = base + normal * inner[src][:, None]
    # 2. Faces: the outer sheet as the body's, the inner sheet reversed, the rim along the border.
    local = index[faces]
    border = _border_edges(local)
    rim = np.concatenate([np.stack([border[:, 1], border[:, 0], border[:, 0] + n], axis=1),
                          np.stack([border[:, 1], border[:, 0] + n, border[:, 1] + n], axis=1)])
    all_faces = np.concatenate([local, local[:, ::-1] + n, rim])
    outer_v, inner_v = _smooth_border(outer_v, border), _smooth_border(inner_v, border)
    # 3. Skin weights from the skin under each inner vertex, the same for its outer twin (the two sheets move
    #    together, so the cloth keeps its thickness); UVs from the body vertex.
    vertices = np.concatenate([outer_v, inner_v])
    joints, weights = skin_following_weights(frame, inner_v, frame.joints[src], frame.weights[src])
    joints, weights = np.concatenate([joints] * 2), np.concatenate([weights] * 2)
    uv = frame.uv[src]
    hides = np.zeros(len(frame.vertices), bool)
    hides[src] = True
    for _ in range(hide_margin):
        hides &= ~_touches_border(frame, hides)
    return Piece(vertices=vertices, faces=all_faces.astype(np.int64), uvs=np.concatenate([uv, uv]),
                 joints=joints, weights=weights, hides=hides)


def skin_following_weights(frame: BodyFrame, points: np.ndarray, joints: np.ndarray, weights: np.ndarray,
                           reach: float = FOLLOW_REACH) -> tuple[np.ndarray, np.ndarray]:
    """``points``' skin weights: the skin's at their closest skin point (interpolated over its triangle),
    blended into their own ``joints``/``weights`` as the distance grows to ``reach``.

    Why: a shell vertex is its body vertex pushed out along the normal, and in a crease (the crotch, an
    armpit, the back of a knee) that carries it over other skin, which moves differently: with its source
    vertex's weights, shorts' crotch sank into the thighs when sitting (0.9 % of their vertices, beyond the
    body's own folds). The skin under a vertex is what it lies on; farther out (a loose hem) its own,
    smoother weights hold."""
    from ..body.skinning import closest_points
    from .piece import dense_weights, top4

    face, bary, distance = closest_points(frame.vertices, frame.faces, points, candidates=8)
    n_joints = int(max(frame.joints.max(), joints.max())) + 1
    under = np.einsum("pk,pkj->pj", bary, dense_weights(frame.joints, frame.weights, n_joints)[frame.faces[face]])
    near = np.clip(1.0 - distance / reach, 0.0, 1.0)[:, None]
    return top4(near * under + (1.0 - near) * dense_weights(joints, weights, n_joints))


def smooth_field(frame: BodyFrame, values: np.ndarray, rounds: int) -> np.ndarray:
    """``values`` ((N,) on body vertices) averaged with their neighbours ``rounds`` times over the skin."""
    return smooth_over(frame.faces, frame.skin, values, rounds)


def smooth_over(faces: np.ndarray, where: np.ndarray, values: np.ndarray, rounds: int) -> np.ndarray:
    """``values`` (per vertex) averaged with their one-ring over ``faces`` ``rounds`` times, where ``where``."""
    v = values.astype(np.float64).copy()
    f = faces
    for _ in range(rounds):
        acc = v.copy()
        cnt = np.ones(len(v))
        for a, b in ((0, 1), (1, 2), (2, 0)):
            np.add.at(acc, f[:, a], v[f[:, b]])
            np.add.at(acc, f[:, b], v[f[:, a]])
            np.add.at(cnt, f[:, a], 1.0)
            np.add.at(cnt, f[:, b], 1.0)
        v = np.where(where, acc / cnt, v)
    return v


def enclosing_base(frame: BodyFrame, region: np.ndarray, rounds: int,
                   reach: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    """Skin positions smoothed ``rounds`` times over ``region`` (toes merge into one foot), and the offset
    along the normal each needs to still enclose the skin under it: ``(base (N, 3), clearance (N,))``.

    Why: offsetting a bumpy surface (separate toes, fingers) makes sheets that cut into the neighbouring
    bump; a shoe must bridge the gaps between the toes instead."""
    smoothed = np.stack([smooth_field(frame, frame.vertices[:, k], rounds) for k in range(3)], axis=1)
    base = np.where(region[:, None], smoothed, frame.vertices)
    # The clearance: how far the skin within ``reach`` sticks out past the smoothed point, along its normal.
    from scipy.spatial import cKDTree

    skin = np.flatnonzero(frame.skin)
    tree = cKDTree(frame.vertices[skin])
    normals = vertex_normals(base, frame.faces, smooth=2)
    clearance = np.zeros(len(base))
    moved = np.linalg.norm(base - frame.vertices, axis=1)
    for v in np.flatnonzero(region):
        near = skin[tree.query_ball_point(base[v], reach + moved[v])]
        if len(near):
            clearance[v] = max(0.0, float(((frame.vertices[near] - base[v]) @ normals[v]).max()))
    return base, clearance


def _smooth_border(points: np.ndarray, border: np.ndarray, rounds: int = 8) -> np.ndarray:
    """``points`` with the border loops' vertices averaged along their loop ``rounds`` times: a region cut
    along triangle edges has a zigzag hem; the loop's own neighbours straighten it (the rest stays)."""
    out = points.copy()
    ends = np.unique(border)
    for _ in range(rounds):
        acc = np.zeros_like(out)
        cnt = np.zeros(len(out))
        for a, b in ((0, 1), (1, 0)):
            np.add.at(acc, border[:, a], out[border[:, b]])
            np.add.at(cnt, border[:, a], 1.0)
        mean = acc[ends] / np.maximum(cnt[ends], 1.0)[:, None]
        out[ends] = 0.5 * out[ends] + 0.5 * mean
    return out


def _border_edges(faces: np.ndarray) -> np.ndarray:
    """Directed edges (a, b) of ``faces`` whose reverse no face has: the region's border, as the faces run."""
    directed = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    key = directed[:, 0] * (faces.max() + 1) + directed[:, 1]
    rkey = directed[:, 1] * (faces.max() + 1) + directed[:, 0]
    return directed[~np.isin(key, rkey)]


def _pinched_vertices(faces: np.ndarray) -> np.ndarray:
    """Vertices with more than two border edges (two border loops meeting there)."""
    if len(faces) == 0:
        return np.zeros(0, np.int64)
    border = _border_edges(faces)
    counts = np.bincount(border.reshape(-1), minlength=faces.max() + 1)
    return np.flatnonzero(counts > 2)


def _drop_islands(faces: np.ndarray, n_vertices: int) -> np.ndarray:
    if len(faces) == 0:
        return faces
    face_label = face_components(faces, n_vertices)
    sizes = np.bincount(face_label)
    return faces[sizes[face_label] >= _MIN_FACES]


def _touches_border(frame: BodyFrame, mask: np.ndarray) -> np.ndarray:
    """Vertices in ``mask`` with a skin neighbour outside it."""
    out = np.zeros_like(mask)
    f = frame.faces
    for a, b in ((0, 1), (1, 2), (2, 0)):
        cross = mask[f[:, a]] & ~mask[f[:, b]]
        out[f[cross, a]] = True
        cross = mask[f[:, b]] & ~mask[f[:, a]]
        out[f[cross, b]] = True
    return out


__all__ = ["build_shell", "edge_counts", "region_faces", "smooth_field"]
