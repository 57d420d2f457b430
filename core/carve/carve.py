"""Explicit carving: a mesh optimised against multiview normal maps and masks, with continuous remeshing.

Why: the body fit (or PSHuman's SMPL-X fit) gives the right pose and proportions but no clothes or hair;
the six generated views' normal maps hold that detail. Carving moves the surface until its rendered
normals and silhouettes match every view, while remeshing keeps the triangles even and lets detail
appear where the surface settles (PSHuman's explicit carving, ``../shared/references/pshuman.md`` §1.5).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

import torch

from ..progress import Progress
from ..render.base import Rasterizer, as_faces, as_points
from ..views import View
from .losses import Target, multiview_loss, prepare_targets
from .optimizer import FAST, AdaptiveMeshOptimizer, CarveOptions

#: PSHuman's edge-length limits are in a frame where the body's largest extent spans 4 units.
_REFERENCE_EXTENT = 4.0


def pixel_size(vertices: torch.Tensor, targets: Sequence[Target]) -> float:
    """World size of one render pixel on the mesh: the median over vertices of each target camera's pixel
    footprint, the median over the targets."""
    sizes = []
    for t in targets:
        depth = t.camera.to_screen(vertices.detach())[:, 2]
        sizes.append(float(t.camera.pixel_footprint(depth).median()))
    return statistics.median(sizes) if sizes else 0.0


def carve(
    vertices: torch.Tensor,
    faces: torch.Tensor,
    views: Sequence[View],
    *,
    options: CarveOptions = FAST,
    rasterizer: Rasterizer,
    progress: Progress | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Carve ``vertices``/``faces`` (a closed, outward-wound mesh in the views' world) to match ``views``.

    Every tensor lives on ``rasterizer.device``. Returns the carved ``(vertices (V, 3), faces (F, 3))``,
    detached. ``progress.report("carve", fraction, text)`` runs every ``options.report_every`` steps (a
    cancel raises there).
    """
    device = rasterizer.device
    # 1. Inputs on the device; edge lengths scaled from PSHuman's 4-unit frame to this mesh's size.
    v = as_points(vertices, device).detach().float()
    f = as_faces(faces, device)
    extent = float((v.max(dim=0).values - v.min(dim=0).values).max())
    # 2. Targets at render size (masks, normals, border distances).
    targets = prepare_targets(views, options.resolution, device, outline=options.outline_weight > 0)
    min_length = options.min_edge_pixels * pixel_size(v, targets) if options.min_edge_pixels > 0 else 0.0
    opt = AdaptiveMeshOptimizer(v, f, options, length_scale=extent / _REFERENCE_EXTENT, min_length=min_length)
    for i in range(options.iterations):
        # 3. Render and compare (vertex normals, silhouettes, normal maps; all views).
        opt.zero_grad()
        loss, parts = multiview_loss(
            opt.vertices, opt.faces, targets, rasterizer, normal_weight=options.normal_weight,
            mask_weight=options.mask_weight, outline_weight=options.outline_weight, sigma=options.sigma,
        )
        loss.backward()
        # 4. Step: move vertices in units of their edge length, adapt the reference lengths.
        opt.step()
        # 5. Remesh: collapse, split, flip (every step, or every remesh_every steps).
        if (i + 1) % options.remesh_every == 0 and i + 1 < options.iterations:
            opt.remesh()
        # 6. Report (a cancel raises here).
        if progress is not None and (i % options.report_every == 0 or i + 1 == options.iterations):
            text = f"step {i + 1}/{options.iterations}: loss {float(loss.detach()):.4f}, {opt.faces.shape[0]} faces"
            progress.report("carve", (i + 1) / options.iterations, text)
    return opt.vertices.detach(), opt.faces

