"""Multiview losses of a mesh against views' normal maps and masks (PSHuman's carving objective).

Per view, at the carve's render size: a view-weighted L1 between the rendered normal map and the view's
normal map where both the render and the view see the person, and a view-weighted L1 between the
rasterizer's differentiable silhouette and the view's mask; both are means over all pixels, as in
PSHuman (``../shared/references/pshuman.md`` §1.5). Optionally (not in PSHuman) a long-range outline term:
points on the rendered outline are pulled to the target mask's border through its distance field.

Normals are compared in the frame of :attr:`strata.core.views.View.normal`: the *front* camera's frame for
every view (x right, y up, z toward the viewer), i.e. world ``(+X, +Z, -Y)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..render.base import Rasterizer
from ..render.camera import Camera, camera_for_size
from ..render.shade import vertex_normals
from ..render.silhouette import outline_points, sample_field
from ..views import View


def front_frame(normals: torch.Tensor) -> torch.Tensor:
    """World normals (..., 3) -> the front camera's frame: ``(x, y, z) -> (x, z, -y)``."""
    return torch.stack([normals[..., 0], normals[..., 2], -normals[..., 1]], dim=-1)


@dataclass
class Target:
    """One view at render size, on the device: what the losses compare against."""

    name: str
    camera: Camera
    height: int
    width: int
    mask: torch.Tensor
    """(H, W) float in [0, 1]."""
    normal: torch.Tensor | None
    """(H, W, 3) unit normals (front frame), zero outside the mask; None when the view has none."""
    border_distance: torch.Tensor | None
    """(H, W) pixels to the mask's border (for the outline term); None when unused."""
    weight: float


def _area_resize(image: np.ndarray, height: int, width: int, device: torch.device) -> torch.Tensor:
    t = torch.as_tensor(np.ascontiguousarray(image, dtype=np.float32), device=device)
    chw = t[None, None] if t.ndim == 2 else t.permute(2, 0, 1)[None]
    if chw.shape[-2:] != (height, width):
        chw = F.interpolate(chw, size=(height, width), mode="area")
    out = chw[0]
    return out[0] if t.ndim == 2 else out.permute(1, 2, 0)


def _border_distance(mask: torch.Tensor) -> torch.Tensor:
    """Distance (pixels) from each pixel to the mask's border pixels (exact EDT, scipy), on mask's device."""
    from scipy.ndimage import distance_transform_edt

    m = mask.detach().cpu().numpy() > 0.5
    padded = np.pad(m, 1, constant_values=False)
    interior = padded[:-2, 1:-1] & padded[2:, 1:-1] & padded[1:-1, :-2] & padded[1:-1, 2:]
    border = m & ~interior
    dist = distance_transform_edt(~border) if border.any() else np.full(m.shape, float(max(m.shape)))
    return torch.as_tensor(dist, dtype=torch.float32, device=mask.device)


def prepare_targets(
    views: Sequence[View], resolution: int, device: torch.device, *, outline: bool = False
) -> list[Target]:
    """Views -> :class:`Target` s at ``resolution`` (the longer side), masks and normals area-resampled
    and re-normalised. Views without a camera are refused: carving needs to know where each looks from."""
    targets = []
    for view in views:
        if view.camera is None:
            raise ValueError(f"view {view.name!r} has no camera: carving needs every view's camera")
        h0, w0 = view.size
        scale = resolution / max(h0, w0)
        h, w = max(1, round(h0 * scale)), max(1, round(w0 * scale))
        cam, _, _ = camera_for_size(view.camera, (h, w))
        mask = _area_resize(view.mask, h, w, device).clamp(0.0, 1.0)
        normal = None
        if view.normal is not None:
            n = _area_resize(view.normal, h, w, device)
            n = n / n.norm(dim=-1, keepdim=True).clamp_min(1e-6)
            normal = n * (mask[..., None] > 0.5)
        border = _border_distance(mask) if outline else None
        targets.append(Target(view.name, cam, h, w, mask, normal, border, float(view.weight)))
    return targets


def view_losses(
    vertices: torch.Tensor,
    faces: torch.Tensor,
    target: Target,
    rasterizer: Rasterizer,
    *,
    normals: torch.Tensor | None = None,
    sigma: float = 1.0,
    outline: bool = False,
) -> dict[str, torch.Tensor]:
    """Unweighted losses of one view: ``normal``, ``mask`` and (if asked) ``outline``.

    ``normals`` are the (V, 3) world vertex normals (computed once per step for all views)."""
    cam, h, w = target.camera, target.height, target.width
    out: dict[str, torch.Tensor] = {}
    # 1. Silhouette: the rasterizer's differentiable contour silhouette (gradients at the outline).
    alpha = rasterizer.silhouette(vertices, faces, cam, (h, w), sigma=sigma)
    out["mask"] = (alpha - target.mask).abs().mean()
    # 2. Normals: hard rasterization, vertex normals interpolated (gradients through the normals).
    if target.normal is not None:
        vn = vertex_normals(vertices, faces) if normals is None else normals
        frags = rasterizer.rasterize(cam.to_screen(vertices), faces, h, w, perspective=cam.is_perspective)
        n = rasterizer.interpolate(vn, frags)
        n = front_frame(n / n.norm(dim=-1, keepdim=True).clamp_min(1e-8))
        both = (frags.mask & (target.mask > 0.5)).to(n.dtype)[..., None]
        out["normal"] = ((n - target.normal).abs() * both).sum(-1).mean()
    # 3. Outline (optional): rendered outline points -> distance to the target's border, in image heights.
    if outline and target.border_distance is not None:
        pts = outline_points(rasterizer, vertices, faces, cam, (h, w))
        if pts.shape[0]:
            out["outline"] = sample_field(target.border_distance, pts).mean() / h
    return out


def multiview_loss(
    vertices: torch.Tensor,
    faces: torch.Tensor,
    targets: Sequence[Target],
    rasterizer: Rasterizer,
    *,
    normal_weight: float = 1.0,
    mask_weight: float = 1.0,
    outline_weight: float = 0.0,
    sigma: float = 1.0,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Sum over views of ``view.weight * (normal_weight * normal + mask_weight * mask + outline_weight *
    outline)``; returns the loss and the per-term totals (floats, for reports)."""
    normals = vertex_normals(vertices, faces)
    total = vertices.new_zeros(())
    parts: dict[str, float] = {}
    weights = {"normal": normal_weight, "mask": mask_weight, "outline": outline_weight}
    for target in targets:
        terms = view_losses(vertices, faces, target, rasterizer, normals=normals, sigma=sigma,
                            outline=outline_weight > 0)
        for key, value in terms.items():
            total = total + target.weight * weights[key] * value
            parts[key] = parts.get(key, 0.0) + float(value.detach())
    return total, parts
