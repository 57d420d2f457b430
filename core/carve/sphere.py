"""Icospheres: the even, valence-6 starting mesh for carving tests and for carving without a body fit."""

from __future__ import annotations

import math

import torch

from .remesh import edge_topology, split_edges


def icosphere(
    subdivisions: int = 2, radius: float = 1.0, *, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """(V, 3) float32 vertices and (F, 3) int64 outward (counter-clockwise) faces of a unit icosahedron
    subdivided ``subdivisions`` times (every edge split at its midpoint, pushed back onto the sphere):
    ``20 * 4**subdivisions`` faces."""
    t = (1.0 + math.sqrt(5.0)) / 2.0
    verts = torch.tensor(
        [[-1, t, 0], [1, t, 0], [-1, -t, 0], [1, -t, 0], [0, -1, t], [0, 1, t],
         [0, -1, -t], [0, 1, -t], [t, 0, -1], [t, 0, 1], [-t, 0, -1], [-t, 0, 1]],
        dtype=torch.float32, device=device,
    )
    faces = torch.tensor(
        [[0, 11, 5], [0, 5, 1], [0, 1, 7], [0, 7, 10], [0, 10, 11], [1, 5, 9], [5, 11, 4], [11, 10, 2],
         [10, 7, 6], [7, 1, 8], [3, 9, 4], [3, 4, 2], [3, 2, 6], [3, 6, 8], [3, 8, 9], [4, 9, 5],
         [2, 4, 11], [6, 2, 10], [8, 6, 7], [9, 8, 1]],
        dtype=torch.int64, device=device,
    )
    verts = verts / verts.norm(dim=1, keepdim=True)
    for _ in range(subdivisions):
        topo = edge_topology(faces, verts.shape[0])
        split = torch.ones(topo.edges.shape[0], dtype=torch.bool, device=verts.device)
        verts, faces, _ = split_edges(verts, faces, split, None, topo)
        verts = verts / verts.norm(dim=1, keepdim=True)
    return verts * radius, faces
