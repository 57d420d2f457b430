"""Edge topology of a triangle mesh, cached by face-array content.

Why: the soft silhouette needs, every iteration, which mesh edges separate a
camera-facing from a back-facing triangle (the contour generator). The edge list and
the half-edge -> edge map depend only on the faces, which stay fixed through a fit, so
they are built once (a sort of 3F half-edges, a few ms) and looked up by a content hash, in a
small LRU kept in the model cache (so "release" drops them too).
"""

from __future__ import annotations

import hashlib
import weakref
from dataclasses import dataclass

import torch

_CACHE_SIZE = 8
# Fast path: the same faces tensor object, unmodified since (its version counter), skips
# even the content hash (~0.7 ms for a 27k-triangle body). Weak references only: the LRU owns the topology.
_LAST: list = [None, -1, None]  # [weakref to faces tensor, its _version, weakref to EdgeTopology]


@dataclass(frozen=True)
class EdgeTopology:
    """Unique undirected edges of a triangle mesh.

    Attributes:
        edges: (E, 2) int64 vertex pairs, smaller index first.
        halfedge_edge: (3F,) edge id of each face corner's outgoing edge; corner ``k`` of
            face ``f`` is entry ``3 f + k`` and owns edge ``(f[k], f[(k+1) % 3])``.
        face_count: (E,) number of faces using each edge (1 = open boundary, 2 = manifold).
    """

    edges: torch.Tensor
    halfedge_edge: torch.Tensor
    face_count: torch.Tensor

    @property
    def halfedge_face(self) -> torch.Tensor:
        """(3F,) face of each half-edge."""
        n = self.halfedge_edge.numel()
        return torch.arange(n, device=self.edges.device) // 3


def _build(faces: torch.Tensor) -> EdgeTopology:
    a = faces
    b = faces.roll(-1, dims=1)
    he = torch.stack([torch.minimum(a, b), torch.maximum(a, b)], dim=2).reshape(-1, 2)
    n_vert = int(faces.max()) + 1 if faces.numel() else 1
    code = he[:, 0] * n_vert + he[:, 1]
    uniq, inverse, counts = torch.unique(code, return_inverse=True, return_counts=True)
    edges = torch.stack([uniq // n_vert, uniq % n_vert], dim=1)
    return EdgeTopology(edges=edges, halfedge_edge=inverse, face_count=counts)


def edge_topology(faces: torch.Tensor) -> EdgeTopology:
    """Cached :class:`EdgeTopology` for ``faces`` (F, 3) int64 (any device)."""
    from ..cache import process_cache

    ref, version, topo_ref = _LAST
    topo = topo_ref() if topo_ref is not None else None
    if topo is not None and ref() is faces and version == faces._version:
        return topo
    f = faces.detach()
    digest = hashlib.blake2b(f.cpu().numpy().tobytes(), digest_size=16).digest()
    key = (tuple(f.shape), str(f.device), digest)
    hit = process_cache().lru("render/edge_topology", _CACHE_SIZE).get(key, lambda: _build(f))
    _LAST[:] = [weakref.ref(faces), faces._version, weakref.ref(hit)]
    return hit
