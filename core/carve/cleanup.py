"""A carved surface made into a clean asset surface: one closed manifold piece of a chosen size.

Why: the carve's face count follows the views' detail, not what a game engine wants, and a carve may leave a
loose island (a hand that pinched off) or a near-degenerate face. :func:`cleanup` keeps the largest
connected component, collapses degenerate faces and decimates to ``target_faces``: with our own
length-ordered edge collapse (:func:`strata.core.carve.remesh.collapse_short_edges`, with valence
flips in between), which keeps a closed manifold closed by construction (optionally quadric decimation,
``fast-simplification``, used only when its result stays a closed manifold). The result is asserted closed
and manifold when the input was.
"""

from __future__ import annotations

import numpy as np
import torch

from . import remesh as R

#: Default face budget of a game-asset body.
TARGET_FACES = 40_000


def largest_component(vertices: torch.Tensor, faces: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The faces of the largest edge-connected component (by face count), compacted."""
    if faces.shape[0] == 0:
        return vertices, faces
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    topo = R.edge_topology(faces, vertices.shape[0])
    # Faces are nodes; two faces sharing an edge are joined.
    pairs = topo.edge_faces[(topo.edge_faces >= 0).all(dim=1)].cpu().numpy()
    n_f = faces.shape[0]
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n_f, n_f))
    _, label = connected_components(graph, directed=False)
    keep = torch.as_tensor(label == np.bincount(label).argmax(), device=faces.device)
    v, f, _ = R.compact(vertices, faces[keep])
    return v, f


def collapse_degenerate(
    vertices: torch.Tensor, faces: torch.Tensor, *, rel_area: float = 1e-4, rounds: int = 10
) -> tuple[torch.Tensor, torch.Tensor]:
    """Collapse the shortest edge of every flipped face and of every face whose area is below ``rel_area``
    times the mean face area (rounds of independent sets until none is left or ``rounds`` ran out)."""
    for _ in range(rounds):
        fn = R.face_normals(vertices, faces)
        area = fn.norm(dim=1)
        bad = R.bad_faces(vertices, faces) | (area < rel_area * area.mean())
        if not bool(bad.any()):
            break
        topo = R.edge_topology(faces, vertices.shape[0])
        forced = R.face_collapse_edges(vertices, faces, topo, bad)
        vertices, faces, _, n = R.collapse_edges(vertices, faces, forced.to(vertices.dtype), None, topo, forced=forced)
        if n == 0:
            break
    return vertices, faces


def decimate_edges(
    vertices: torch.Tensor, faces: torch.Tensor, target_faces: int, *, max_rounds: int = 60
) -> tuple[torch.Tensor, torch.Tensor]:
    """Edge-collapse decimation to at most ``target_faces`` (shortest edges first, a growing length
    threshold, valence flips between rounds); keeps a closed manifold closed. Faces ~ 1 / length², so the
    threshold starts at the mean edge length times ``sqrt(F / target)``."""
    mean = float(R.edge_lengths(vertices, R.edge_topology(faces, vertices.shape[0]).edges).mean())
    threshold = mean * max(1.05, (faces.shape[0] / target_faces) ** 0.5)
    for _ in range(max_rounds):
        if faces.shape[0] <= target_faces:
            break
        vertices, faces, _ = R.collapse_short_edges(vertices, faces, threshold, passes=3, flips=True)
        threshold *= 1.05
    return vertices, faces


def _quadric(
    vertices: torch.Tensor, faces: torch.Tensor, target_faces: int
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``fast-simplification``'s quadric decimation, or None when it is not installed."""
    try:
        import fast_simplification
    except ImportError:
        return None
    v, f = fast_simplification.simplify(
        vertices.detach().cpu().double().numpy(), faces.cpu().numpy().astype(np.int32), target_count=target_faces
    )
    return (torch.as_tensor(v, dtype=vertices.dtype, device=vertices.device),
            torch.as_tensor(f, dtype=torch.int64, device=faces.device))


def cleanup(
    vertices: torch.Tensor,
    faces: torch.Tensor,
    *,
    target_faces: int | None = TARGET_FACES,
    method: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Largest component, degenerate faces collapsed, decimated to at most ``target_faces`` (None: no
    decimation). ``method``: ``"edges"`` (our edge collapse), ``"quadric"`` (fast-simplification; falls back to
    edges when not installed or when its result is not a closed manifold while the input was: on a carved
    body, fast-simplification 0.2.0 left 10 edges with four faces) or ``"auto"`` (= edges). Returns
    compacted ``(vertices, faces)`` on the input's device."""
    if method not in ("auto", "quadric", "edges"):
        raise ValueError(f"method must be 'auto', 'quadric' or 'edges', not {method!r}")
    v = vertices.detach()
    f = faces.to(torch.int64)
    v, f = largest_component(v, f)
    v, f = collapse_degenerate(v, f)
    closed = R.is_closed_manifold(f, v.shape[0])
    if target_faces is not None and f.shape[0] > target_faces:
        decimated = None
        if method == "quadric":
            decimated = _quadric(v, f, target_faces)
            if decimated is not None:
                dv, df = R.compact(*decimated)[:2]
                dv, df = collapse_degenerate(dv, df)
                ok = R.is_closed_manifold(df, dv.shape[0]) and R.euler_characteristic(df) == R.euler_characteristic(f)
                decimated = (dv, df) if (ok or not closed) else None
        v, f = decimated if decimated is not None else decimate_edges(v, f, target_faces)
        v, f = collapse_degenerate(v, f)
    if closed:
        assert R.is_closed_manifold(f, v.shape[0]), "cleanup broke a closed manifold"
    return v, f
