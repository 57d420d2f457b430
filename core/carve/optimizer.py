"""Palfinger's adaptive mesh optimiser ("Continuous Remeshing for Inverse Rendering", 2022), our own code.

Why not plain Adam: carving needs steps measured in *edge lengths*, not in metres, and a mesh whose
resolution follows the motion. The optimiser keeps, per vertex, Adam-like first and second moments
(the second one a scalar: the squared gradient norm), turns them into a *relative velocity*
``m1 / sqrt(m2)`` (unit-free, ~1 while the gradient keeps its direction, ~0 when it oscillates), moves
each vertex by ``lr * velocity * ref_len`` and adapts the per-vertex reference edge length ``ref_len``:
it shrinks where the speed is below ``nu_ref`` (the surface has settled: add detail) and grows where it
is above (still travelling: stay coarse), within ``edge_len_lims``. Gradients are smoothed by a
Laplacian term scaled by the speed, and clipped to ``grad_lim`` times the first moment. The facts
(settings, update order, bias-corrected lerps, learning-rate ramp) follow the paper and its reference
implementation; PSHuman (``../shared/references/pshuman.md`` §1.5) uses lr 0.3, betas (0.8, 0.8, 0),
nu_ref 0.3, gain 0.2, edge_len_tol 0.5, Laplacian weight 0.02 and edge_len_lims (0.01, 0.1) on a body
spanning about 4 units.

After :meth:`AdaptiveMeshOptimizer.step`, call :meth:`AdaptiveMeshOptimizer.remesh` to split, collapse
and flip with the current reference lengths; all per-vertex state travels through the remesh.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from .remesh import edge_topology, neighbour_mean, remesh


@dataclass(frozen=True)
class CarveOptions:
    """Settings of one carve: optimiser, remeshing, rendering and losses.

    Lengths (``edge_len_lims``) are in PSHuman's normalised units, where the body's largest extent spans
    4; :func:`strata.core.carve.carve` rescales them to the mesh's real size.
    """

    iterations: int = 700
    resolution: int = 1024
    """Render size (pixels, the longer image side); targets are area-resampled to it."""
    lr: float = 0.3
    betas: tuple[float, float, float] = (0.8, 0.8, 0.0)
    nu_ref: float = 0.3
    gain: float = 0.2
    edge_len_lims: tuple[float, float] = (0.01, 0.1)
    edge_len_tol: float = 0.5
    laplacian_weight: float = 0.02
    grad_lim: float = 10.0
    ramp: float = 1.0
    remesh_every: int = 1
    """Remesh after every k-th step (1: Palfinger's and PSHuman's choice)."""
    start_len: str = "upper"
    """Where the reference edge lengths start: ``"upper"`` (Palfinger's and PSHuman's: the upper limit,
    right for a sphere far from its target) or ``"mesh"`` (each vertex's mean edge length in the start
    mesh, within the limits: a body prior already near the target keeps its resolution instead of first
    coarsening)."""
    min_edge_pixels: float = 0.0
    """Lower edge-length limit in render pixels (0: none): edges much shorter than a pixel see no
    gradient of their own and fold; :func:`strata.core.carve.carve` raises the lower limit to this many
    pixels of the views at ``resolution``."""
    face_collapse: bool = True
    """Collapse the shortest edge of flipped and sliver faces (Palfinger's face collapse)."""
    max_vertices: int = 1_000_000
    normal_weight: float = 1.0
    mask_weight: float = 1.0
    outline_weight: float = 0.0
    """Long-range outline term (distance from the rendered outline to the target's border, in image
    heights); not in PSHuman: helps when the start is far from the target, as in tests from a sphere."""
    sigma: float = 1.0
    """Soft-silhouette width in pixels at ``resolution``."""
    report_every: int = 10

    def with_(self, **changes: object) -> CarveOptions:
        return replace(self, **changes)  # type: ignore[arg-type]


#: PSHuman's settings on a GPU: 700 iterations at 1024², remesh every step.
FULL = CarveOptions()
#: Two CPU cores, well under a minute on a body: coarser edges (~20k faces on a body), 256 px renders, fewer
#: steps, remesh every other step; reference lengths start from the body prior's own (it is already near
#: the target), edges no shorter than 2.5 render pixels, and a 10x stronger Laplacian term than PSHuman's
#: (0.2): with PSHuman's 0.02 the few, large steps fold the surface (measured on a clothed body from its
#: true body: Chamfer 1.5 cm, normal consistency 0.78, 91k faces, loss rising; with 0.2: 0.54 cm, 0.96,
#: 20k faces, loss falling).
FAST = CarveOptions(iterations=120, resolution=256, edge_len_lims=(0.04, 0.15), remesh_every=2, sigma=1.0,
                    start_len="mesh", min_edge_pixels=2.5, laplacian_weight=0.2)
PRESETS: dict[str, CarveOptions] = {"fast": FAST, "full": FULL}


def _lerp_unbiased(avg: torch.Tensor, value: torch.Tensor, beta: float, step: int) -> None:
    """In place: exponential moving average with Adam's bias correction folded into the weights, so
    ``avg`` is an unbiased mean from the first step on (``avg`` starts at 0)."""
    c_prev = 1.0 - beta ** (step - 1)
    c = 1.0 - beta**step
    avg.mul_(beta * c_prev / c).add_(value, alpha=(1.0 - beta) / c)


class AdaptiveMeshOptimizer:
    """Use like a torch optimiser on :attr:`vertices` (a leaf tensor); then :meth:`remesh`.

    Per-vertex state lives in one (V, 9) tensor so the remesh carries it in one go: position (3), first
    moment (3), second moment (1), relative speed ``nu`` (1), reference edge length (1).
    """

    def __init__(
        self, vertices: torch.Tensor, faces: torch.Tensor, options: CarveOptions = FULL, *, length_scale: float = 1.0,
        min_length: float = 0.0,
    ) -> None:
        """``length_scale`` turns ``options.edge_len_lims`` into the mesh's units; ``min_length`` (same
        units as ``vertices``) raises the lower limit (and the upper one with it, if needed)."""
        self.options = options
        self.length_scale = float(length_scale)
        lo, hi = (x * self.length_scale for x in options.edge_len_lims)
        lo = max(lo, float(min_length))
        hi = max(hi, lo)
        self.edge_len_lims = (lo, hi)
        self.step_count = 0
        n = vertices.shape[0]
        self._state = torch.zeros(n, 9, dtype=vertices.dtype, device=vertices.device)
        self._state[:, :3] = vertices.detach()
        if options.start_len == "mesh":
            edges = edge_topology(faces, n).edges
            length = (vertices[edges[:, 0]] - vertices[edges[:, 1]]).norm(dim=1).to(vertices.dtype)
            total = torch.zeros(n, dtype=vertices.dtype, device=vertices.device)
            total.index_add_(0, edges.reshape(-1), length.repeat_interleave(2))
            ones = torch.ones_like(length).repeat_interleave(2)
            count = torch.zeros_like(total).index_add_(0, edges.reshape(-1), ones)
            self._state[:, 8] = (total / count.clamp_min(1)).clamp(lo, hi)
        elif options.start_len == "upper":
            self._state[:, 8] = hi
        else:
            raise ValueError(f"start_len must be 'upper' or 'mesh', not {options.start_len!r}")
        self.faces = faces
        self._split()

    def _split(self) -> None:
        s = self._state
        self.vertices = s[:, :3].detach().clone().requires_grad_(True)
        self.m1, self.m2, self.nu, self.ref_len = s[:, 3:6], s[:, 6], s[:, 7], s[:, 8]

    def zero_grad(self) -> None:
        self.vertices.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """One update from ``vertices.grad`` (numbered as the paper's algorithm)."""
        o = self.options
        self.step_count += 1
        k = self.step_count
        grad = self.vertices.grad
        if grad is None:
            grad = torch.zeros_like(self.vertices)
        pos = self._state[:, :3]
        # 1. Laplacian smoothing as a gradient term, stronger where the vertex moves fast.
        edges = edge_topology(self.faces, pos.shape[0]).edges
        laplace = pos - neighbour_mean(pos, edges)
        grad = grad + o.laplacian_weight * self.nu[:, None] * laplace
        # 2. Clip each component to grad_lim times the first moment (not on the first step: m1 is 0).
        if k > 1:
            lim = self.m1.abs() * o.grad_lim
            grad = torch.maximum(torch.minimum(grad, lim), -lim)
        # 3. Moments, relative velocity and speed.
        _lerp_unbiased(self.m1, grad, o.betas[0], k)
        _lerp_unbiased(self.m2, (grad * grad).sum(dim=1), o.betas[1], k)
        velocity = self.m1 / (self.m2[:, None].sqrt() + 1e-8)
        speed = velocity.norm(dim=1)
        if o.betas[2]:
            _lerp_unbiased(self.nu, speed, o.betas[2], k)
        else:
            self.nu.copy_(speed)
        # 4. Move by a fraction of the local edge length (learning rate ramped in over the first steps).
        lr = o.lr * min(1.0, k * (1.0 - o.betas[0]) / o.ramp)
        pos.sub_(lr * velocity * self.ref_len[:, None])
        # 5. Edge-length controller: shorter where settled (speed < nu_ref), longer where moving.
        if k % o.remesh_every == 0:
            self.ref_len.mul_(1.0 + (self.nu - o.nu_ref) * o.gain).clamp_(*self.edge_len_lims)
        self.vertices = pos.detach().clone().requires_grad_(True)

    @torch.no_grad()
    def remesh(self, flip: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """Collapse, split and flip with limits ``ref_len * (1 -/+ edge_len_tol)``; state carried along."""
        tol = self.options.edge_len_tol
        s = self._state
        v, f, attrs = remesh(
            s[:, :3].contiguous(), self.faces, self.ref_len * (1.0 - tol), self.ref_len * (1.0 + tol), s[:, 3:],
            flip=flip, max_vertices=self.options.max_vertices, face_collapse=self.options.face_collapse,
        )
        assert attrs is not None
        self._state = torch.cat([v, attrs], dim=1)
        self.faces = f
        self._split()
        return self.vertices, self.faces
