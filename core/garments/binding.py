"""Garments bound to the body, as MakeHuman's proxies are: each garment vertex tied to a body triangle.

Why: a garment is fitted once, around one body; when the body's shape changes (heavier, taller, another
person) the garment must follow without being rebuilt or re-simulated. Each vertex stores the closest body
triangle, its barycentric position on it, and the offset from there expressed in the triangle's own frame
(edge, in-plane perpendicular, normal). Refitting places the same barycentric point on the new triangle and
turns the offset with the triangle, so a garment stays the same distance off a body that grew or turned.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..body.skinning import closest_points


@dataclass
class Binding:
    """Where each garment vertex hangs on the body (see the module docstring)."""

    face: np.ndarray
    """(V,) int64 index into the body faces the binding was made on."""
    bary: np.ndarray
    """(V, 3) barycentric weights of the anchor on that face."""
    offset: np.ndarray
    """(V, 3) garment vertex minus anchor, in the face's frame (edge, perpendicular, normal)."""


def bind(points: np.ndarray, body_vertices: np.ndarray, body_faces: np.ndarray) -> Binding:
    """Bind ``points`` ((V, 3)) to the closest triangles of the body surface ``body_vertices``/``body_faces``."""
    face, bary, _ = closest_points(body_vertices, body_faces, points, candidates=16)
    anchor = np.einsum("vk,vkd->vd", bary, body_vertices[body_faces[face]])
    frames = triangle_frames(body_vertices, body_faces[face])
    offset = np.einsum("vij,vj->vi", frames, points - anchor)  # rows of the frame: world -> local
    return Binding(face=face.astype(np.int64), bary=bary, offset=offset)


def refit(binding: Binding, body_vertices: np.ndarray, body_faces: np.ndarray) -> np.ndarray:
    """(V, 3) garment vertices on a body with the same topology and new ``body_vertices``."""
    tri = body_faces[binding.face]
    anchor = np.einsum("vk,vkd->vd", binding.bary, body_vertices[tri])
    frames = triangle_frames(body_vertices, tri)
    return anchor + np.einsum("vji,vj->vi", frames, binding.offset)  # local -> world (transpose)


def triangle_frames(vertices: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """(T, 3, 3) orthonormal frames, rows (edge direction, in-plane perpendicular, unit normal)."""
    a, b, c = (vertices[triangles[:, k]] for k in range(3))
    e1 = _unit(b - a)
    n = _unit(np.cross(b - a, c - a))
    e2 = np.cross(n, e1)
    return np.stack([e1, e2, n], axis=1)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-20)


def follow_keys(binding: Binding, body_vertices: np.ndarray, body_faces: np.ndarray,
                body_keys: np.ndarray) -> np.ndarray:
    """(S, V, 3) shape keys of the bound garment: for each of the body's keys ((S, N, 3) offsets of
    ``body_vertices``), how far each garment vertex moves when the body takes that key at value 1. Why: a
    body model with linear shape directions (SMPL-X's betas) keeps its shape as sliders after import, and
    garments bound to it must move with those sliders rather than stay where the body grew through them."""
    rest = refit(binding, body_vertices, body_faces)
    return np.stack([refit(binding, body_vertices + key, body_faces) - rest for key in body_keys]).astype(np.float32)
