"""Small closed meshes with known geometry, for tests, benchmarks and synthetic scenes.

All faces wind counter-clockwise seen from outside (outward normals), the convention
:func:`.shade.vertex_normals` and back-face culling assume.
"""

from __future__ import annotations

import math

import numpy as np


def box(size: float | tuple[float, float, float] = 1.0, center: tuple[float, float, float] = (0, 0, 0)) -> dict:
    """Axis-aligned box with a per-corner UV atlas (3 x 2 grid of square cells).

    Returns a dict with ``verts`` (8, 3), ``faces`` (12, 3), ``uvs`` (24, 2) and
    ``uv_faces`` (12, 3). Cell order (column, row from the top): -Y (front), +X, +Y
    (back) on the top row; -X, +Z (top), -Z (bottom) on the bottom row.
    """
    sx, sy, sz = (size, size, size) if np.isscalar(size) else size  # type: ignore[misc]
    c = np.asarray(center, dtype=np.float64)
    corners = np.array([[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)])
    verts = corners * np.array([sx, sy, sz]) + c
    idx = {tuple(int(v > 0) for v in p): i for i, p in enumerate(corners)}

    def vid(x: int, y: int, z: int) -> int:
        return idx[(x, y, z)]

    # Each side as 4 corners counter-clockwise seen from outside, starting bottom-left
    # as seen from outside (so the UV cell is upright in the texture).
    sides = [
        [vid(0, 0, 0), vid(1, 0, 0), vid(1, 0, 1), vid(0, 0, 1)],  # -Y front
        [vid(1, 0, 0), vid(1, 1, 0), vid(1, 1, 1), vid(1, 0, 1)],  # +X
        [vid(1, 1, 0), vid(0, 1, 0), vid(0, 1, 1), vid(1, 1, 1)],  # +Y back
        [vid(0, 1, 0), vid(0, 0, 0), vid(0, 0, 1), vid(0, 1, 1)],  # -X
        [vid(0, 0, 1), vid(1, 0, 1), vid(1, 1, 1), vid(0, 1, 1)],  # +Z top
        [vid(0, 1, 0), vid(1, 1, 0), vid(1, 0, 0), vid(0, 0, 0)],  # -Z bottom
    ]
    faces, uvs, uv_faces = [], [], []
    for k, (a, b, cc, d) in enumerate(sides):
        col, row = k % 3, k // 3
        u0, u1 = col / 3 + 0.01, (col + 1) / 3 - 0.01
        v1, v0 = 1 - row / 2 - 0.01, 1 - (row + 1) / 2 + 0.01
        base = len(uvs)
        uvs += [[u0, v0], [u1, v0], [u1, v1], [u0, v1]]
        faces += [[a, b, cc], [a, cc, d]]
        uv_faces += [[base, base + 1, base + 2], [base, base + 2, base + 3]]
    return {
        "verts": verts,
        "faces": np.asarray(faces, dtype=np.int64),
        "uvs": np.asarray(uvs, dtype=np.float64),
        "uv_faces": np.asarray(uv_faces, dtype=np.int64),
    }


def uv_sphere(
    radius: float = 1.0, rings: int = 32, segments: int = 64, center: tuple[float, float, float] = (0, 0, 0)
) -> dict:
    """Latitude-longitude sphere (poles on Z) with ``verts``, ``faces``, ``uvs``, ``uv_faces``.

    Vertex count ``(rings - 1) * segments + 2``; UVs are equirectangular with a seam
    (``uv_faces`` index a separate (rings + 1) x (segments + 1) UV grid).
    """
    c = np.asarray(center, dtype=np.float64)
    theta = np.linspace(0, math.pi, rings + 1)[1:-1]  # polar angle from +Z
    phi = np.linspace(0, 2 * math.pi, segments, endpoint=False)
    st, ct = np.sin(theta)[:, None], np.cos(theta)[:, None]
    ring_pts = np.stack([st * np.cos(phi), st * np.sin(phi), np.broadcast_to(ct, (rings - 1, segments))], -1)
    verts = np.concatenate([[[0, 0, 1]], ring_pts.reshape(-1, 3), [[0, 0, -1]]]) * radius + c
    north, south = 0, len(verts) - 1

    def ring(i: int, j: int) -> int:  # i in [0, rings-2], j wraps
        return 1 + i * segments + (j % segments)

    def uvi(i: int, j: int) -> int:  # i in [0, rings], j in [0, segments]
        return i * (segments + 1) + j

    faces, uv_faces = [], []
    for j in range(segments):
        faces.append([north, ring(0, j), ring(0, j + 1)])
        uv_faces.append([uvi(0, j), uvi(1, j), uvi(1, j + 1)])
        faces.append([ring(rings - 2, j), south, ring(rings - 2, j + 1)])
        uv_faces.append([uvi(rings - 1, j), uvi(rings, j), uvi(rings - 1, j + 1)])
        for i in range(rings - 2):
            a, b, cc, d = ring(i, j), ring(i + 1, j), ring(i + 1, j + 1), ring(i, j + 1)
            faces += [[a, b, cc], [a, cc, d]]
            ua, ub, uc, ud = uvi(i + 1, j), uvi(i + 2, j), uvi(i + 2, j + 1), uvi(i + 1, j + 1)
            uv_faces += [[ua, ub, uc], [ua, uc, ud]]
    gi, gj = np.meshgrid(np.arange(rings + 1), np.arange(segments + 1), indexing="ij")
    uvs = np.stack([gj / segments, 1.0 - gi / rings], -1).reshape(-1, 2)
    return {
        "verts": verts,
        "faces": np.asarray(faces, dtype=np.int64),
        "uvs": uvs,
        "uv_faces": np.asarray(uv_faces, dtype=np.int64),
    }


def grid_plane(n: int = 16, size: float = 1.0, z: float = 0.0) -> dict:
    """Square ``size`` x ``size`` plane at height ``z``, split into ``2 n^2`` triangles, normal +Z."""
    t = np.linspace(-size / 2, size / 2, n + 1)
    gx, gy = np.meshgrid(t, t, indexing="xy")
    verts = np.stack([gx, gy, np.full_like(gx, z)], -1).reshape(-1, 3)
    faces = []
    for r in range(n):
        for q in range(n):
            a = r * (n + 1) + q
            b, cc, d = a + 1, a + n + 2, a + n + 1
            faces += [[a, b, cc], [a, cc, d]]
    return {"verts": verts, "faces": np.asarray(faces, dtype=np.int64)}
