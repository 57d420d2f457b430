"""A garment piece: a closed triangle mesh with UVs and skin weights, plus what it covers on the body.

Why one type: shells that follow the body (trousers, sleeves, shoes, a hair cap) and free-hanging lofts
(a skirt, a coat's tails, long hair) are built differently, but the layer that holds them, the skinning, the
binding to the body and the penetration measure only need this.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Piece:
    """One closed, outward-wound part of a garment layer (see the module docstring)."""

    vertices: np.ndarray
    """(V, 3) float64, bind-pose world."""
    faces: np.ndarray
    """(F, 3) int64, counter-clockwise seen from outside; every edge shared by exactly two faces."""
    uvs: np.ndarray
    """(V, 2) float32 per-vertex texture coordinates in [0, 1]."""
    joints: np.ndarray
    """(V, 4) int64 skin influences."""
    weights: np.ndarray
    """(V, 4) float32, rows sum to 1."""
    hides: np.ndarray
    """(N_body,) bool: body vertices this piece covers (hidden by a mask, never deleted)."""


def merge(pieces: list[Piece]) -> Piece:
    """Several pieces as one mesh (still closed: each piece is), for a layer with more than one part."""
    offsets = np.cumsum([0] + [len(p.vertices) for p in pieces])
    return Piece(
        vertices=np.concatenate([p.vertices for p in pieces]),
        faces=np.concatenate([p.faces + o for p, o in zip(pieces, offsets, strict=False)]),
        uvs=np.concatenate([p.uvs for p in pieces]),
        joints=np.concatenate([p.joints for p in pieces]),
        weights=np.concatenate([p.weights for p in pieces]),
        hides=np.logical_or.reduce([p.hides for p in pieces]),
    )


def edge_counts(faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Undirected edges ``(E, 2)`` (sorted pairs) and how many faces use each."""
    e = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    e.sort(axis=1)
    return np.unique(e, axis=0, return_counts=True)


def is_closed(faces: np.ndarray) -> bool:
    """Every edge is shared by exactly two faces, and each directed edge appears once (consistent winding)."""
    _, counts = edge_counts(faces)
    directed = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    return bool(np.all(counts == 2)) and len(np.unique(directed, axis=0)) == len(directed)


def outward(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """``faces`` of a closed piece wound so that its signed volume is positive (normals point outward):
    flipped as a whole when needed."""
    a, b, c = vertices[faces[:, 0]], vertices[faces[:, 1]], vertices[faces[:, 2]]
    volume = float(np.einsum("ij,ij->i", a, np.cross(b, c)).sum())
    return faces if volume > 0 else faces[:, ::-1].copy()


def top4(dense: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Dense (V, J) weights reduced to the four largest influences, renormalised to sum to 1."""
    order = np.argsort(-dense, axis=1)[:, :4]
    w = np.clip(np.take_along_axis(dense, order, axis=1).astype(np.float64), 0.0, None)
    w /= np.maximum(w.sum(axis=1, keepdims=True), 1e-12)
    return order.astype(np.int64), w.astype(np.float32)


def dense_weights(joints: np.ndarray, weights: np.ndarray, n_joints: int) -> np.ndarray:
    """(V, J) dense weights from (V, K) influences."""
    dense = np.zeros((len(joints), n_joints))
    for k in range(joints.shape[1]):
        np.add.at(dense, (np.arange(len(joints)), joints[:, k]), weights[:, k])
    return dense
