"""Lofts: garments that hang free of the body (a skirt, a dress's or coat's skirt, a hair curtain, a ponytail).

A loft is a stack of horizontal rings (or arcs) from a top height down to a hem. Each ring encloses what lies
under it at that height — the body and the layers already dressed — by the *support function* of those points
around a vertical axis: the ring point at angle t sits at ``max(p . u(t))`` along ``u(t)``, the pedal curve of
the points' convex hull, which contains the hull. A skirt therefore bridges the gap between the legs (what a
shell cannot: it would make two trouser legs), and an A-line flare is a radius that never shrinks going down.

Like a shell, the loft has an outer and an inner sheet ``thickness`` apart, closed by a rim: a closed thick
surface. Skin weights come from the body points nearest to each ring point, averaged around the ring so the
hem does not tear between the legs when they move apart.
"""

from __future__ import annotations

import numpy as np

from .frame import BodyFrame
from .piece import Piece, dense_weights, top4
from .shell import _border_edges


def support_rings(points: np.ndarray, centre: np.ndarray, heights: np.ndarray, angles: np.ndarray,
                  band: float) -> np.ndarray:
    """(M, A) support radii: for each height, the largest ``(p - centre) . u(angle)`` of the points within
    ``band`` of it (0 where a band is empty)."""
    u = np.stack([np.cos(angles), np.sin(angles)], axis=1)  # (A, 2)
    out = np.zeros((len(heights), len(angles)))
    rel = points[:, :2] - centre[:2]
    for i, z in enumerate(heights):
        near = np.abs(points[:, 2] - z) < band
        if near.any():
            out[i] = np.maximum((rel[near] @ u.T).max(axis=0), 0.0)
    return out


def smooth_around(radii: np.ndarray, width: int, periodic: bool) -> np.ndarray:
    """Each ring's radii averaged over ``2 * width + 1`` neighbouring angles (wrapping when ``periodic``)."""
    if width <= 0:
        return radii
    kernel = np.ones(2 * width + 1) / (2 * width + 1)
    if periodic:
        padded = np.concatenate([radii[:, -width:], radii, radii[:, :width]], axis=1)
    else:
        padded = np.pad(radii, ((0, 0), (width, width)), mode="edge")
    return np.stack([np.convolve(r, kernel, mode="valid") for r in padded])


def grid_piece(outer: np.ndarray, inner: np.ndarray, periodic: bool, uvs: np.ndarray) -> tuple[np.ndarray, np.ndarray,
                                                                                                 np.ndarray]:
    """A closed thick surface from two (M, A, 3) grids (rows going down, columns counter-clockwise seen from
    above): ``(vertices, faces, uvs)``; the outer grid's faces face away from the axis."""
    m, a = outer.shape[:2]
    n = m * a
    idx = np.arange(n).reshape(m, a)
    right = np.roll(idx, -1, axis=1) if periodic else idx[:, 1:]
    left = idx if periodic else idx[:, :-1]
    q0, q1 = left[:-1], left[1:]  # (i, j), (i + 1, j)
    q2, q3 = right[1:], right[:-1]  # (i + 1, j + 1), (i, j + 1)
    faces = np.concatenate([np.stack([q0, q1, q2], -1).reshape(-1, 3), np.stack([q0, q2, q3], -1).reshape(-1, 3)])
    border = _border_edges(faces)
    rim = np.concatenate([np.stack([border[:, 1], border[:, 0], border[:, 0] + n], axis=1),
                          np.stack([border[:, 1], border[:, 0] + n, border[:, 1] + n], axis=1)])
    all_faces = np.concatenate([faces, faces[:, ::-1] + n, rim])
    vertices = np.concatenate([outer.reshape(-1, 3), inner.reshape(-1, 3)])
    return vertices, all_faces.astype(np.int64), np.concatenate([uvs.reshape(-1, 2)] * 2).astype(np.float32)


def build_loft(frame: BodyFrame, obstacles: np.ndarray, centre: np.ndarray, top: float, hem: float, *,
               ease: float, flare: float, thickness: float, arc: tuple[float, float] | None = None,
               segments: int = 64, rows: int = 24, weight_window: float = 0.25,
               hide_below: float = 0.03, curl: float = 0.0) -> Piece:
    """A loft around the vertical axis through ``centre`` from height ``top`` down to ``hem``.

    ``obstacles`` (P, 3): what it must enclose (body skin and lower layers). ``ease`` is the gap left at the
    top, ``flare`` metres of extra radius per metre of drop; ``arc`` = (from, to) angles (radians, 0 = +X,
    counter-clockwise seen from above) for an open loft (a hair curtain), None for a full ring.
    ``weight_window`` is the share of the circumference skin weights are averaged over at the hem; ``curl``
    metres the last third of the drop turns in by (a bob's rounded ends)."""
    # 1. Rings: heights, angles, the support radius of what lies under each, never shrinking downward.
    heights = np.linspace(top, hem, rows)
    periodic = arc is None
    angles = (np.linspace(0, 2 * np.pi, segments, endpoint=False) if periodic
              else np.linspace(arc[0], arc[1], segments))
    band = max(abs(top - hem) / rows, 0.015)
    radii = support_rings(obstacles, centre, heights, angles, band)
    radii = np.maximum.accumulate(radii, axis=0)  # an A-line: nothing narrows going down
    radii = smooth_around(radii, max(1, segments // 32), periodic)
    drop = top - heights
    turn = curl * np.clip((drop / max(top - hem, 1e-9) - 2 / 3) * 3, 0.0, 1.0) ** 2
    radii = radii + ease + thickness + flare * drop[:, None] - turn[:, None]
    u = np.stack([np.cos(angles), np.sin(angles), np.zeros_like(angles)], axis=1)
    base = np.stack([np.full_like(angles, centre[0]), np.full_like(angles, centre[1]), np.zeros_like(angles)], 1)

    def ring_points(r: np.ndarray) -> np.ndarray:
        return base[None] + r[..., None] * u[None] + np.array([0.0, 0.0, 1.0]) * heights[:, None, None]

    outer, inner = ring_points(radii), ring_points(radii - thickness)
    # 2. The closed surface and its UVs (around, down).
    col = np.linspace(0.0, 1.0, segments, endpoint=not periodic)
    uv = np.stack(np.meshgrid(col, 1.0 - np.linspace(0.0, 1.0, rows)), axis=-1)
    vertices, faces, uvs = grid_piece(outer, inner, periodic, uv)
    # 3. Skin weights: the nearest skin points', averaged around each ring (wider towards the hem).
    joints, weights = _loft_weights(frame, inner, periodic, weight_window)
    # 4. The body under it: skin points inside the inner rings between the top and just above the hem.
    hides = _inside(frame, centre, heights, angles, radii - thickness, periodic, hem + hide_below, top)
    return Piece(vertices=vertices, faces=faces, uvs=uvs, joints=np.concatenate([joints] * 2),
                 weights=np.concatenate([weights] * 2), hides=hides)


def _loft_weights(frame: BodyFrame, inner: np.ndarray, periodic: bool, window: float) -> tuple[np.ndarray,
                                                                                               np.ndarray]:
    from scipy.spatial import cKDTree

    m, a = inner.shape[:2]
    skin = np.flatnonzero(frame.skin)
    tree = cKDTree(frame.vertices[skin])
    _, nearest = tree.query(inner.reshape(-1, 3), k=8)
    n_joints = int(frame.joints.max()) + 1
    dense = dense_weights(frame.joints[skin], frame.weights[skin], n_joints)[nearest].mean(axis=1).reshape(m, a, -1)
    for i in range(m):  # 0 at the top (follow the body), the full window at the hem
        width = int(round(window * a * i / max(m - 1, 1) / 2))
        if width:
            dense[i] = smooth_around(dense[i].T, width, periodic).T
    return top4(dense.reshape(m * a, -1))


def _inside(frame: BodyFrame, centre: np.ndarray, heights: np.ndarray, angles: np.ndarray, radii: np.ndarray,
            periodic: bool, low: float, high: float) -> np.ndarray:
    """(N,) bool: skin vertices between ``low`` and ``high`` inside the rings (radius at their angle)."""
    v = frame.vertices
    rel = v[:, :2] - centre[:2]
    theta = np.arctan2(rel[:, 1], rel[:, 0]) % (2 * np.pi)
    ok = frame.skin & (v[:, 2] >= low) & (v[:, 2] <= high)
    if not periodic:
        lo, hi = angles[0] % (2 * np.pi), angles[-1] % (2 * np.pi)
        ok &= (theta >= lo) & (theta <= hi) if lo <= hi else (theta >= lo) | (theta <= hi)
    row = np.clip(np.interp(v[:, 2], heights[::-1], np.arange(len(heights))[::-1]).round().astype(int), 0,
                  len(heights) - 1)
    col = np.clip(np.searchsorted(np.unwrap(angles) % (2 * np.pi), theta) % len(angles), 0, len(angles) - 1)
    return ok & (np.linalg.norm(rel, axis=1) < radii[row, col])
