"""Local remeshing of a closed triangle mesh: split long edges, collapse short ones, flip toward valence 6.

Why: carving moves vertices far from where they started; without remeshing, triangles stretch, fold and
pile up. Continuous remeshing (Palfinger 2022, "Continuous Remeshing for Inverse Rendering") keeps every
edge near a per-vertex target length after each optimiser step, so detail appears where the surface is
still moving and the mesh stays well shaped.

Everything works on ``(V, 3)`` float positions, ``(F, 3)`` int64 counter-clockwise faces and an optional
``(V, K)`` tensor of per-vertex attributes (the optimiser's moments and reference lengths) that every
operation carries along: a new vertex gets the mean of its edge's two endpoints, a merged vertex the mean
of the pair. Pure torch (``index_add_``, ``scatter_reduce``, ``unique``, ``searchsorted``): no Python loop
over elements, no torch_scatter; every tensor is made on the input's device.

Each operation keeps a closed 2-manifold closed and manifold:

* :func:`split_edges`: midpoint split of chosen edges; a face with 1, 2 or 3 split edges becomes 2, 3
  or 4 faces (conforming, because the choice is per edge, shared by both faces).
* :func:`collapse_edges`: merges the endpoints of short edges at their midpoint, only for an independent
  set of edges (endpoints of two chosen edges are never neighbours, so their changes never touch the
  same face), only when the link condition holds (exactly two common neighbours: no non-manifold edge,
  no pinched vertex) and when no surviving face flips or degenerates.
* :func:`flip_edges`: flips interior edges whose flip lowers the squared deviation of the four vertices'
  valences from 6, for an independent set (no face in two flips), refusing flips that would duplicate an
  existing edge or fold the two triangles over.
* :func:`compact`: drops unused vertices and re-indexes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

_FLIP_COS = 0.0  # a new face must keep a positive dot with the old faces' normals (no fold-over)


# --------------------------------------------------------------------------- topology


@dataclass(frozen=True)
class Edges:
    """Unique undirected edges of a face list and how faces reach them.

    Attributes:
        edges: (E, 2) vertex pairs, smaller index first, sorted by :attr:`keys`.
        keys: (E,) ``edges[:, 0] * V + edges[:, 1]`` (sorted, for ``searchsorted`` look-ups).
        face_edges: (F, 3) edge of corner ``i`` of each face, i.e. of ``(f[i], f[i+1 mod 3])``.
        counts: (E,) number of faces on each edge (2 everywhere on a closed manifold).
        edge_faces: (E, 2) the first two faces on each edge (-1 where missing).
        edge_corners: (E, 2) the corner ``i`` of that face with ``(f[i], f[i+1])`` on the edge.
    """

    edges: torch.Tensor
    keys: torch.Tensor
    face_edges: torch.Tensor
    counts: torch.Tensor
    edge_faces: torch.Tensor
    edge_corners: torch.Tensor
    num_vertices: int


def edge_topology(faces: torch.Tensor, num_vertices: int) -> Edges:
    """The :class:`Edges` of ``faces`` (one ``unique`` over sorted corner pairs)."""
    n_f = faces.shape[0]
    directed = torch.stack([faces, faces.roll(-1, dims=1)], dim=-1).reshape(-1, 2)  # (3F, 2), corner order
    lo, hi = directed.min(dim=1).values, directed.max(dim=1).values
    keys, inverse, counts = torch.unique(lo * num_vertices + hi, return_inverse=True, return_counts=True)
    edges = torch.stack([keys // num_vertices, keys % num_vertices], dim=1)
    # The first two corner slots of every edge: sort slots by edge, then take each edge's run start.
    order = torch.argsort(inverse, stable=True)
    start = torch.cumsum(counts, 0) - counts
    first = order[start]
    second_slot = (start + 1).clamp_max(order.numel() - 1)
    second = torch.where(counts > 1, order[second_slot], torch.full_like(first, -1))
    slots = torch.stack([first, second], dim=1)
    edge_faces = torch.where(slots >= 0, slots // 3, slots)
    edge_corners = torch.where(slots >= 0, slots % 3, slots)
    return Edges(edges, keys, inverse.reshape(n_f, 3), counts, edge_faces, edge_corners, num_vertices)


def vertex_degree(edges: torch.Tensor, num_vertices: int) -> torch.Tensor:
    """(V,) int64 number of edges at each vertex (the valence)."""
    deg = torch.zeros(num_vertices, dtype=torch.int64, device=edges.device)
    return deg.index_add_(0, edges.reshape(-1), torch.ones_like(edges.reshape(-1)))


def neighbour_mean(values: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """(V, C) mean of each vertex's one-ring neighbours' ``values`` (a vertex without edges keeps its own)."""
    src = torch.cat([edges[:, 1], edges[:, 0]])
    dst = torch.cat([edges[:, 0], edges[:, 1]])
    total = torch.zeros_like(values).index_add_(0, dst, values[src])
    count = torch.zeros(values.shape[0], dtype=values.dtype, device=values.device)
    count.index_add_(0, dst, torch.ones_like(dst, dtype=values.dtype))
    shaped = count.reshape(-1, *([1] * (values.ndim - 1)))
    return torch.where(shaped > 0, total / shaped.clamp_min(1), values)


def face_normals(vertices: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """(F, 3) unnormalised face normals (length = twice the area)."""
    tri = vertices[faces]
    return torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], dim=1)


def edge_lengths(vertices: torch.Tensor, edges: torch.Tensor) -> torch.Tensor:
    """(E,) Euclidean edge lengths."""
    return (vertices[edges[:, 0]] - vertices[edges[:, 1]]).norm(dim=1)


def is_closed_manifold(faces: torch.Tensor, num_vertices: int) -> bool:
    """Every edge in exactly two faces, consistently oriented, and no face repeats a vertex."""
    if faces.numel() == 0:
        return False
    if bool(((faces == faces.roll(1, dims=1)).any(dim=1)).any()):
        return False
    topo = edge_topology(faces, num_vertices)
    if not bool((topo.counts == 2).all()):
        return False
    directed = torch.stack([faces, faces.roll(-1, dims=1)], dim=-1).reshape(-1, 2)
    directed_keys = directed[:, 0] * num_vertices + directed[:, 1]
    return torch.unique(directed_keys).numel() == directed_keys.numel()  # each direction used once


def euler_characteristic(faces: torch.Tensor) -> int:
    """V - E + F over the vertices the faces use (2 for a sphere-like closed surface)."""
    used = torch.unique(faces)
    n = int(faces.max()) + 1 if faces.numel() else 0
    return int(used.numel()) - int(edge_topology(faces, n).edges.shape[0]) + int(faces.shape[0])


def _edge_exists(keys: torch.Tensor, a: torch.Tensor, b: torch.Tensor, num_vertices: int) -> torch.Tensor:
    """(N,) bool: is the undirected edge (a, b) in the sorted ``keys``."""
    query = torch.minimum(a, b) * num_vertices + torch.maximum(a, b)
    pos = torch.searchsorted(keys, query).clamp_max(max(keys.numel() - 1, 0))
    return keys[pos] == query


def _mean_attrs(attrs: torch.Tensor | None, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor | None:
    return None if attrs is None else 0.5 * (attrs[a] + attrs[b])


# --------------------------------------------------------------------------- compaction


def compact(
    vertices: torch.Tensor, faces: torch.Tensor, attrs: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Drop vertices no face uses and re-index the faces (order of the kept vertices is kept)."""
    n = vertices.shape[0]
    used = torch.zeros(n, dtype=torch.bool, device=vertices.device)
    used[faces.reshape(-1)] = True
    new_index = torch.cumsum(used.to(torch.int64), 0) - 1
    kept = torch.nonzero(used).squeeze(1)
    return vertices[kept], new_index[faces], None if attrs is None else attrs[kept]


# --------------------------------------------------------------------------- split


def split_edges(
    vertices: torch.Tensor,
    faces: torch.Tensor,
    split: torch.Tensor,
    attrs: torch.Tensor | None = None,
    topo: Edges | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Split the edges flagged in ``split`` (E,) bool (edges of :func:`edge_topology`) at their midpoints.

    Why per edge: both faces of an edge see the same decision, so the result is conforming. A face with
    one split edge becomes two faces, with two becomes three (the quad takes its shorter diagonal), with
    three becomes four.
    """
    topo = topo or edge_topology(faces, vertices.shape[0])
    dev = faces.device
    n_v = vertices.shape[0]
    if not bool(split.any()):
        return vertices, faces, attrs
    chosen = torch.nonzero(split).squeeze(1)
    ends = topo.edges[chosen]
    new_vertices = torch.cat([vertices, 0.5 * (vertices[ends[:, 0]] + vertices[ends[:, 1]])])
    new_attrs = None if attrs is None else torch.cat([attrs, _mean_attrs(attrs, ends[:, 0], ends[:, 1])])
    midpoint = torch.full((topo.edges.shape[0],), -1, dtype=torch.int64, device=dev)
    midpoint[chosen] = n_v + torch.arange(chosen.numel(), device=dev)

    mids = midpoint[topo.face_edges]  # (F, 3): midpoint of corner i's edge, -1 if not split
    is_split = mids >= 0
    n_split = is_split.sum(dim=1)
    # Rotate every face so its pattern is canonical: 1 split -> on edge 0; 2 splits -> edge 2 unsplit.
    first_split = torch.argmax(is_split.to(torch.int64), dim=1)
    unsplit = torch.argmin(is_split.to(torch.int64), dim=1)
    shift = torch.where(n_split == 2, (unsplit + 1) % 3, torch.where(n_split == 1, first_split, 0))
    corner = (torch.arange(3, device=dev)[None, :] + shift[:, None]) % 3
    f = torch.gather(faces, 1, corner)
    m = torch.gather(mids, 1, corner)
    a, b, c = f[:, 0], f[:, 1], f[:, 2]
    m0, m1, m2 = m[:, 0], m[:, 1], m[:, 2]

    out = [faces[n_split == 0]]
    one = n_split == 1
    out += [torch.stack([a, m0, c], 1)[one], torch.stack([m0, b, c], 1)[one]]
    two = n_split == 2
    if bool(two.any()):
        # Quad (a, m0, m1, c): cut along the shorter diagonal, a-m1 or m0-c.
        d_am1 = (new_vertices[a] - new_vertices[m1.clamp_min(0)]).norm(dim=1)
        d_m0c = (new_vertices[m0.clamp_min(0)] - new_vertices[c]).norm(dim=1)
        use_am1 = d_am1 <= d_m0c
        quad1 = torch.where(use_am1[:, None], torch.stack([a, m0, m1], 1), torch.stack([a, m0, c], 1))
        quad2 = torch.where(use_am1[:, None], torch.stack([a, m1, c], 1), torch.stack([m0, m1, c], 1))
        out += [torch.stack([m0, b, m1], 1)[two], quad1[two], quad2[two]]
    three = n_split == 3
    out += [
        torch.stack([a, m0, m2], 1)[three],
        torch.stack([m0, b, m1], 1)[three],
        torch.stack([m2, m1, c], 1)[three],
        torch.stack([m0, m1, m2], 1)[three],
    ]
    return new_vertices, torch.cat(out), new_attrs


def split_long_edges(
    vertices: torch.Tensor,
    faces: torch.Tensor,
    max_length: torch.Tensor | float,
    attrs: torch.Tensor | None = None,
    *,
    passes: int = 1,
    max_vertices: int = 1_000_000,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Split every edge longer than its limit, ``passes`` times (each pass halves the long edges).

    ``max_length`` is a float or a per-vertex (V,) tensor (an edge's limit is its endpoints' mean); a
    per-vertex tensor is carried to new vertices by the same rule, so put it in ``attrs`` when it matters
    after the call. Stops early once no edge is too long, or once the mesh has ``max_vertices``.
    """
    per_vertex = isinstance(max_length, torch.Tensor)
    for _ in range(passes):
        if vertices.shape[0] >= max_vertices:
            break
        topo = edge_topology(faces, vertices.shape[0])
        limit = 0.5 * (max_length[topo.edges[:, 0]] + max_length[topo.edges[:, 1]]) if per_vertex else max_length
        split = edge_lengths(vertices, topo.edges) > limit
        if not bool(split.any()):
            break
        if per_vertex:
            stacked = max_length[:, None] if attrs is None else torch.cat([attrs, max_length[:, None]], 1)
            vertices, faces, stacked = split_edges(vertices, faces, split, stacked, topo)
            assert stacked is not None
            max_length = stacked[:, -1]
            attrs = None if attrs is None else stacked[:, :-1]
        else:
            vertices, faces, attrs = split_edges(vertices, faces, split, attrs, topo)
    return vertices, faces, attrs


# --------------------------------------------------------------------------- collapse


def _ragged(starts: torch.Tensor, counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Expand runs: for each group g, positions ``starts[g] .. starts[g] + counts[g] - 1``.

    Returns ``(group, position)`` flat tensors (the ragged batch as one)."""
    group = torch.repeat_interleave(torch.arange(counts.numel(), device=counts.device), counts)
    offsets = torch.cumsum(counts, 0) - counts
    within = torch.arange(group.numel(), device=counts.device) - offsets[group]
    return group, starts[group] + within


def _independent(rank: torch.Tensor, edges: torch.Tensor, num_vertices: int) -> torch.Tensor:
    """(E,) bool: edges (rank > 0, unique ranks) that hold the highest rank in both endpoints' closed
    one-rings. Two chosen edges then never have adjacent or shared endpoints (if they did, each would
    see the other's rank and only the higher could win)."""
    flat = edges.reshape(-1)
    best = torch.zeros(num_vertices, dtype=rank.dtype, device=rank.device)
    best.scatter_reduce_(0, flat, rank.repeat_interleave(2), reduce="amax")
    ring = best.clone()
    ring.scatter_reduce_(0, edges[:, 0], best[edges[:, 1]], reduce="amax")
    ring.scatter_reduce_(0, edges[:, 1], best[edges[:, 0]], reduce="amax")
    return (rank > 0) & (ring[edges[:, 0]] == rank) & (ring[edges[:, 1]] == rank)


def _ranks(priority: torch.Tensor, candidate: torch.Tensor) -> torch.Tensor:
    """Unique int64 ranks 1..E by ``priority`` (highest priority = highest rank), 0 for non-candidates."""
    order = torch.argsort(torch.where(candidate, priority, torch.full_like(priority, -1.0)), stable=True)
    rank = torch.empty_like(order)
    rank[order] = torch.arange(1, order.numel() + 1, device=order.device)
    return torch.where(candidate, rank, torch.zeros_like(rank))


def _link_condition(topo: Edges, candidates: torch.Tensor) -> torch.Tensor:
    """(C,) bool: the endpoints of each candidate edge share exactly two neighbours (closed manifold).

    Why: collapsing an edge whose endpoints have a third common neighbour glues two sheets together
    (a non-manifold edge, or a pinched tetrahedron); two common neighbours are the two opposite vertices.
    """
    n_v = topo.num_vertices
    edges = topo.edges
    # One-ring lists (CSR) of every vertex from the directed edge list.
    src = torch.cat([edges[:, 0], edges[:, 1]])
    dst = torch.cat([edges[:, 1], edges[:, 0]])
    order = torch.argsort(src, stable=True)
    nbr = dst[order]
    deg = torch.zeros(n_v, dtype=torch.int64, device=edges.device).index_add_(0, src, torch.ones_like(src))
    ptr = torch.cumsum(deg, 0) - deg
    u, v = edges[candidates, 0], edges[candidates, 1]
    group, pos = _ragged(ptr[u], deg[u])
    w = nbr[pos]
    common = _edge_exists(topo.keys, v[group], w, n_v) & (w != v[group])
    n_common = torch.zeros(candidates.numel(), dtype=torch.int64, device=edges.device)
    n_common.index_add_(0, group, common.to(torch.int64))
    return n_common == 2


def collapse_edges(
    vertices: torch.Tensor,
    faces: torch.Tensor,
    priority: torch.Tensor,
    attrs: torch.Tensor | None = None,
    topo: Edges | None = None,
    *,
    min_cos: float = 0.2,
    forced: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, int]:
    """Collapse an independent set of the edges with ``priority`` (E,) > 0, highest first.

    Returns ``(vertices, faces, attrs, n_collapsed)`` (compacted). Only interior edges of closed regions
    are touched; an edge is refused when the link condition fails or when a surviving face around it
    would turn by more than ``acos(min_cos)`` or lose its area (fold-over). Edges flagged in ``forced``
    (E,) bool (the shortest edge of a flipped or sliver face) skip the turn test: a face that is already
    folded must turn a lot to unfold, so the test would keep every fold forever; they only must not
    leave a zero-area face.
    """
    topo = topo or edge_topology(faces, vertices.shape[0])
    n_v = vertices.shape[0]
    dev = faces.device
    edges = topo.edges
    # 1. Candidates: positive priority, two faces on the edge, no boundary at either endpoint.
    boundary = torch.zeros(n_v, dtype=torch.bool, device=dev)
    boundary[edges[topo.counts != 2].reshape(-1)] = True
    candidate = (priority > 0) & (topo.counts == 2) & ~boundary[edges[:, 0]] & ~boundary[edges[:, 1]]
    idx = torch.nonzero(candidate).squeeze(1)
    if idx.numel() == 0:
        return vertices, faces, attrs, 0
    # 2. Link condition on the candidates only (cheap: one ragged pass over their one-rings).
    candidate[idx[~_link_condition(topo, idx)]] = False
    # 3. An independent set by priority.
    chosen = torch.nonzero(_independent(_ranks(priority, candidate), edges, n_v)).squeeze(1)
    if chosen.numel() == 0:
        return vertices, faces, attrs, 0
    # 4. Geometry check: every face that keeps exactly one endpoint moves that corner to the midpoint;
    #    refuse the collapse if any such face flips or turns too far.
    u, v = edges[chosen, 0], edges[chosen, 1]
    mid = 0.5 * (vertices[u] + vertices[v])
    owner = torch.full((n_v,), -1, dtype=torch.int64, device=dev)
    owner[u] = torch.arange(chosen.numel(), device=dev)
    owner[v] = torch.arange(chosen.numel(), device=dev)
    corner_owner = owner[faces]  # (F, 3)
    touched = corner_owner >= 0
    n_touch = touched.sum(dim=1)
    moved = n_touch == 1  # faces with both endpoints vanish; none has endpoints of two chosen edges
    if bool(moved.any()):
        fi = torch.nonzero(moved).squeeze(1)
        which = torch.argmax(touched[fi].to(torch.int64), dim=1)
        col = corner_owner[fi].gather(1, which[:, None]).squeeze(1)
        tri = vertices[faces[fi]].clone()
        before = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], dim=1)
        tri[torch.arange(fi.numel(), device=dev), which] = mid[col]
        after = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], dim=1)
        cos = (before * after).sum(1) / (before.norm(dim=1) * after.norm(dim=1)).clamp_min(1e-30)
        turned = cos < min_cos
        if forced is not None:
            turned &= ~forced[chosen[col]]
        bad = turned | (after.norm(dim=1) <= 1e-12 * before.norm(dim=1).clamp_min(1e-30))
        refused = torch.zeros(chosen.numel(), dtype=torch.bool, device=dev)
        refused[col[bad]] = True
        u, v, mid = u[~refused], v[~refused], mid[~refused]
    if u.numel() == 0:
        return vertices, faces, attrs, 0
    # 5. Merge v into u at the midpoint (attributes averaged), drop the two faces of each edge, compact.
    new_vertices = vertices.clone()
    new_vertices[u] = mid
    new_attrs = None
    if attrs is not None:
        new_attrs = attrs.clone()
        new_attrs[u] = 0.5 * (attrs[u] + attrs[v])
    remap = torch.arange(n_v, device=dev)
    remap[v] = u
    f = remap[faces]
    keep = (f[:, 0] != f[:, 1]) & (f[:, 1] != f[:, 2]) & (f[:, 2] != f[:, 0])
    out_v, out_f, out_a = compact(new_vertices, f[keep], new_attrs)
    return out_v, out_f, out_a, int(u.numel())


def collapse_short_edges(
    vertices: torch.Tensor,
    faces: torch.Tensor,
    min_length: torch.Tensor | float,
    attrs: torch.Tensor | None = None,
    *,
    passes: int = 1,
    flips: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Collapse edges shorter than their limit (float, or per-vertex (V,) tensor: the endpoints' mean),
    shortest first, for ``passes`` rounds (each round collapses an independent set). ``flips`` runs a
    valence flip pass between rounds, which frees collapses the link condition refused."""
    per_vertex = isinstance(min_length, torch.Tensor)
    for _ in range(passes):
        topo = edge_topology(faces, vertices.shape[0])
        limit = 0.5 * (min_length[topo.edges[:, 0]] + min_length[topo.edges[:, 1]]) if per_vertex else min_length
        shortness = 1.0 - edge_lengths(vertices, topo.edges) / limit
        stacked = attrs
        if per_vertex:
            stacked = min_length[:, None] if attrs is None else torch.cat([attrs, min_length[:, None]], 1)
        vertices, faces, stacked, n = collapse_edges(vertices, faces, shortness, stacked, topo)
        if per_vertex:
            assert stacked is not None
            min_length = stacked[:, -1]
            attrs = None if attrs is None else stacked[:, :-1]
        else:
            attrs = stacked
        if flips:
            faces = flip_edges(vertices, faces)
        elif n == 0:
            break
    return vertices, faces, attrs


# --------------------------------------------------------------------------- flip


def flip_edges(vertices: torch.Tensor, faces: torch.Tensor, topo: Edges | None = None) -> torch.Tensor:
    """Flip interior edges toward valence 6; returns the new faces (vertices are unchanged).

    For edge (p, q) between faces (p, q, a) and (q, p, b), the flip makes edge (a, b) with faces
    (a, p, b) and (b, q, a): p and q lose one neighbour, a and b gain one. It is taken when it lowers
    ``sum((valence - 6)^2)`` over the four, i.e. when ``dp + dq - da - db > 2`` with ``d = valence - 6``.
    """
    n_v = vertices.shape[0]
    topo = topo or edge_topology(faces, n_v)
    dev = faces.device
    interior = torch.nonzero(topo.counts == 2).squeeze(1)
    if interior.numel() == 0:
        return faces
    f0, f1 = topo.edge_faces[interior, 0], topo.edge_faces[interior, 1]
    c0, c1 = topo.edge_corners[interior, 0], topo.edge_corners[interior, 1]
    p = faces[f0, c0]
    q = faces[f0, (c0 + 1) % 3]
    a = faces[f0, (c0 + 2) % 3]
    b = faces[f1, (c1 + 2) % 3]
    # f1 must run q -> p (consistent orientation); otherwise leave the edge alone.
    oriented = (faces[f1, c1] == q) & (faces[f1, (c1 + 1) % 3] == p)
    deg = vertex_degree(topo.edges, n_v)
    dev6 = deg - 6
    gain = dev6[p] + dev6[q] - dev6[a] - dev6[b] - 2
    ok = oriented & (gain > 0) & (a != b) & (deg[p] > 3) & (deg[q] > 3)
    ok &= ~_edge_exists(topo.keys, a, b, n_v)
    # Geometry: both new faces must face the same way as both old ones (the quad is convex enough).
    vp, vq, va, vb = vertices[p], vertices[q], vertices[a], vertices[b]
    old0 = torch.linalg.cross(vq - vp, va - vp, dim=1)
    old1 = torch.linalg.cross(vp - vq, vb - vq, dim=1)
    new0 = torch.linalg.cross(vp - va, vb - va, dim=1)
    new1 = torch.linalg.cross(vq - vb, va - vb, dim=1)
    for n_new in (new0, new1):
        for n_old in (old0, old1):
            ok &= (n_new * n_old).sum(1) > _FLIP_COS * n_new.norm(dim=1) * n_old.norm(dim=1)
    if not bool(ok.any()):
        return faces
    # Independent set: a face takes part in at most one flip (highest gain wins, ties by index).
    n_i = interior.numel()
    score = gain.to(torch.float64) * n_i + torch.arange(n_i, device=dev)
    rank = _ranks(score, ok)
    best = torch.zeros(faces.shape[0], dtype=rank.dtype, device=dev)
    best.scatter_reduce_(0, torch.cat([f0, f1]), torch.cat([rank, rank]), reduce="amax")
    chosen = ok & (best[f0] == rank) & (best[f1] == rank)
    # Two flips must not create the same new edge.
    sel = torch.nonzero(chosen).squeeze(1)
    new_keys = torch.minimum(a[sel], b[sel]) * n_v + torch.maximum(a[sel], b[sel])
    _, inv = torch.unique(new_keys, return_inverse=True)
    first = torch.full((sel.numel(),), sel.numel(), dtype=torch.int64, device=dev)
    first.scatter_reduce_(0, inv, torch.arange(sel.numel(), device=dev), reduce="amin")
    sel = sel[first[inv] == torch.arange(sel.numel(), device=dev)]
    out = faces.clone()
    out[f0[sel]] = torch.stack([a[sel], p[sel], b[sel]], 1)
    out[f1[sel]] = torch.stack([b[sel], q[sel], a[sel]], 1)
    return out


# --------------------------------------------------------------------------- all together


def bad_faces(vertices: torch.Tensor, faces: torch.Tensor, min_length: torch.Tensor | None = None,
              area_ratio: float = 0.5) -> torch.Tensor:
    """(F,) bool: faces that are flipped (their normal against the sum of their corners' vertex normals)
    or, given a per-vertex ``min_length`` (V,), slivers (area below ``area_ratio`` times the squared mean
    limit of their corners). Palfinger's face-collapse test."""
    fn = face_normals(vertices, faces)
    vn = torch.zeros_like(vertices).index_add_(0, faces.reshape(-1), fn.repeat_interleave(3, dim=0))
    vn = vn / vn.norm(dim=1, keepdim=True).clamp_min(1e-30)
    bad = (fn * vn[faces].sum(dim=1)).sum(dim=1) < 0
    if min_length is not None:
        min_face = min_length[faces].mean(dim=1)
        bad |= fn.norm(dim=1) < 2.0 * area_ratio * min_face**2
    return bad


def face_collapse_edges(vertices: torch.Tensor, faces: torch.Tensor, topo: Edges, bad: torch.Tensor) -> torch.Tensor:
    """(E,) bool: the shortest edge of every face flagged in ``bad`` (F,)."""
    length = edge_lengths(vertices, topo.edges)[topo.face_edges]  # (F, 3)
    shortest = topo.face_edges.gather(1, length.argmin(dim=1, keepdim=True)).squeeze(1)
    out = torch.zeros(topo.edges.shape[0], dtype=torch.bool, device=faces.device)
    out[shortest[bad]] = True
    return out



def remesh(
    vertices: torch.Tensor,
    faces: torch.Tensor,
    min_length: torch.Tensor,
    max_length: torch.Tensor,
    attrs: torch.Tensor | None = None,
    *,
    flip: bool = True,
    max_vertices: int = 1_000_000,
    collapse_passes: int = 2,
    face_collapse: bool = True,
    area_ratio: float = 0.5,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """One remeshing round (Palfinger's order): collapse short edges, split long ones, flip for valence.

    ``min_length``/``max_length`` are per-vertex (V,) limits; they are carried with ``attrs`` through
    the collapse so the split sees limits for the merged vertices. ``face_collapse`` (Palfinger's
    ``calc_face_collapses``) also collapses the shortest edge of every flipped face and of every sliver
    (area below ``area_ratio * min_length**2``), first, whatever its length: without it a fold, once
    made, stays, and slivers pile up where the surface moves sideways.
    """
    n_a = 0 if attrs is None else attrs.shape[1]
    stacked = torch.cat([min_length[:, None], max_length[:, None]] + ([attrs] if attrs is not None else []), 1)
    # 1. Collapse (each pass an independent set; more passes keep up when the targets grow fast).
    for _ in range(collapse_passes):
        topo = edge_topology(faces, vertices.shape[0])
        limit = 0.5 * (stacked[topo.edges[:, 0], 0] + stacked[topo.edges[:, 1], 0])
        shortness = (1.0 - edge_lengths(vertices, topo.edges) / limit).clamp_min(0.0)
        forced = None
        if face_collapse:
            bad = bad_faces(vertices, faces, stacked[:, 0], area_ratio)
            forced = face_collapse_edges(vertices, faces, topo, bad)
            shortness = shortness + forced.to(shortness.dtype)
        vertices, faces, stacked_c, n = collapse_edges(vertices, faces, shortness, stacked, topo, forced=forced)
        assert stacked_c is not None
        stacked = stacked_c
        if n == 0:
            break
    # 2. Split.
    if vertices.shape[0] < max_vertices:
        topo = edge_topology(faces, vertices.shape[0])
        limit = 0.5 * (stacked[topo.edges[:, 0], 1] + stacked[topo.edges[:, 1], 1])
        split = edge_lengths(vertices, topo.edges) > limit
        vertices, faces, stacked_s = split_edges(vertices, faces, split, stacked, topo)
        assert stacked_s is not None
        stacked = stacked_s
    # 3. Flip.
    if flip:
        faces = flip_edges(vertices, faces)
    return vertices, faces, (stacked[:, 2:] if n_a else None)
