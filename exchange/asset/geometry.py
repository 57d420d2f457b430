"""Mesh helpers shared by the asset's writers and producers: numpy only, no file format in them.

* `smooth_normals`: angle-weighted smooth vertex normals, what Blender computes itself (so an asset
  may leave its normals out, and the pipelines compute theirs here).
* `unit_vectors`: normalise rows, with +Z for zero or non-finite ones.
* `split_uv_seams`: per-corner UVs (the schema's) to per-vertex ones (glTF's and most engines'),
  splitting only seam vertices and keeping vertex i as vertex i.
* `limit_influences`: top-k skin weights reduced to the 4 that every engine reads.

Only numpy and siblings, imported relatively: the Blender add-on carries this package.
"""

from __future__ import annotations

import numpy as np

from .schema import Mesh

MAX_INFLUENCES = 4
"""Influences per vertex in one JOINTS_0/WEIGHTS_0 pair: the only set every engine reads."""


def split_uv_seams(mesh: Mesh) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """Per-vertex UVs from per-corner ones: (source vertex per output vertex, UVs with V flipped
    (glTF's top-left origin) or None, (F, 3) output faces).

    Each vertex keeps its index with one of its UVs; only corners whose UV differs from it go through
    `np.unique` on a combined (vertex, uv) key and become new vertices appended after the originals.
    So the cost is O(N + seam corners) and the output has exactly one vertex per distinct
    (vertex, UV value) pair, plus vertices no face uses (kept, with UV (0, 0))."""
    n = mesh.n_vertices
    faces = np.asarray(mesh.faces, np.int64)
    if mesh.uvs is None or mesh.uv_faces is None:
        return np.arange(n), None, faces
    uvs, uv_faces = _dedupe_uvs(np.asarray(mesh.uvs, np.float32), np.asarray(mesh.uv_faces, np.int64))
    u = len(uvs)
    vc = faces.reshape(-1)
    uc = uv_faces.reshape(-1)
    primary = np.full(n, u, np.int64)  # u = "no corner": the zero UV appended below
    primary[vc] = uc  # whichever corner wins, it is one of the vertex's UVs
    seam = np.flatnonzero(uc != primary[vc])
    out_faces = vc.copy()
    if seam.size:
        keys, inverse = np.unique(vc[seam] * u + uc[seam], return_inverse=True)
        out_faces[seam] = n + inverse
        src = np.concatenate([np.arange(n), keys // u])
        uv_index = np.concatenate([primary, keys % u])
    else:
        src, uv_index = np.arange(n), primary
    table = np.concatenate([uvs, np.zeros((1, 2), np.float32)])
    uv = table[uv_index]
    uv[:, 1] = 1.0 - uv[:, 1]
    return src, uv, out_faces.reshape(-1, 3)


def _dedupe_uvs(uvs: np.ndarray, uv_faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Merge UV entries with identical values, so meshes with unwelded (per-corner) UV lists are not
    split at every corner."""
    if len(uvs) == 0:
        return uvs, uv_faces
    packed = np.ascontiguousarray(uvs + np.float32(0.0)).view(np.uint64).reshape(-1)  # +0.0 folds -0.0
    unique, inverse = np.unique(packed, return_inverse=True)
    if len(unique) == len(uvs):
        return uvs, uv_faces
    return unique.view(np.float32).reshape(-1, 2), inverse.reshape(-1)[uv_faces]


def limit_influences(joints: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(N, 4) int64 joints and float32 weights from top-k ones: duplicate joints in a row merged, the
    4 largest kept, rows renormalised to sum to 1, unused slots joint 0 with weight 0."""
    j = np.asarray(joints, np.int64).copy()
    w = np.asarray(weights, np.float64).copy()
    k = j.shape[1]
    for a in range(k):  # a joint listed twice would be skinned twice by some engines; merge it
        for c in range(a + 1, k):
            dup = j[:, a] == j[:, c]
            if dup.any():
                w[dup, a] += w[dup, c]
                w[dup, c] = 0.0
    if k > MAX_INFLUENCES:
        keep = np.argpartition(-w, MAX_INFLUENCES - 1, axis=1)[:, :MAX_INFLUENCES]
        j = np.take_along_axis(j, keep, 1)
        w = np.take_along_axis(w, keep, 1)
    elif k < MAX_INFLUENCES:
        j = np.pad(j, ((0, 0), (0, MAX_INFLUENCES - k)))
        w = np.pad(w, ((0, 0), (0, MAX_INFLUENCES - k)))
    w = np.maximum(w, 0.0)
    total = w.sum(axis=1)
    empty = ~(total > 0)
    if empty.any():  # unskinned vertex: bind it rigidly to joint 0 rather than collapse it to the origin
        w[empty] = (1.0, 0.0, 0.0, 0.0)
        j[empty] = 0
        total[empty] = 1.0
    w /= total[:, None]
    j[w == 0] = 0
    return j, w.astype(np.float32)


def smooth_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Smooth vertex normals (N, 3) float32: unit face normals weighted by the corner angle, summed
    on the welded mesh so UV seams stay smooth; vertices no face uses get +Z (up).

    Angle weighting is what Blender (4.1+) computes for its own vertex normals, so a mesh whose
    normals come from here shades the same in Blender without custom normals, and the importer
    can leave them to Blender (whose normals follow the armature; see blender_addon/importer.py).
    It also does not tilt normals towards the large triangles of an irregular tessellation the way
    area weighting does."""
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64)
    p0, p1, p2 = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    fn = np.cross(p1 - p0, p2 - p0)
    length = np.linalg.norm(fn, axis=1, keepdims=True)
    fn = np.divide(fn, length, out=np.zeros_like(fn), where=length > 0)
    acc = np.zeros((len(v), 3))
    for corner, a, b in ((0, p1 - p0, p2 - p0), (1, p2 - p1, p0 - p1), (2, p0 - p2, p1 - p2)):
        la, lb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
        cos = np.einsum("ij,ij->i", a, b) / np.maximum(la * lb, 1e-300)
        weighted = fn * np.arccos(np.clip(cos, -1.0, 1.0))[:, None]
        for c in range(3):
            acc[:, c] += np.bincount(f[:, corner], weighted[:, c], minlength=len(v))
    return unit_vectors(acc)


def unit_vectors(n: np.ndarray) -> np.ndarray:
    """(N, 3) unit float32 vectors (computed in float64); zero or non-finite ones become +Z, since
    validators (glTF's among them) reject non-unit normals."""
    n = np.asarray(n, np.float64)
    length = np.linalg.norm(n, axis=1, keepdims=True)
    ok = (length > 1e-12) & np.isfinite(length)
    out = np.where(ok, n / np.where(ok, length, 1.0), (0.0, 0.0, 1.0))
    return out.astype(np.float32)
