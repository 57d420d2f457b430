"""Rendering layer: cameras, one rasterizer interface with CPU/CUDA backends, shading.

Typical use::

    from strata.core.render import get_rasterizer, orthographic_view, soft_iou_loss

    rast = get_rasterizer()                   # nvdiffrast on CUDA, else pure torch
    cam = orthographic_view(0, width=256, height=256, extent=2.0, center=(0, 0, 0.9))
    sil = rast.silhouette(verts, faces, cam)  # (256, 256), differentiable w.r.t. verts
    loss = soft_iou_loss(sil, target_mask)

Conventions (Z-up world, person faces -Y, pixel centres at +0.5, azimuth 90 = the
person's left) are documented in :mod:`.camera`; coordinates accepted by
``Rasterizer.rasterize`` in :mod:`.base`.
"""

from .base import Fragments, Rasterizer, interpolate_torch
from .camera import (
    PSHUMAN_AZIMUTHS,
    Camera,
    OrthographicCamera,
    PerspectiveCamera,
    WeakPerspectiveCamera,
    camera_for_size,
    framing_camera,
    look_at_rotation,
    orbit_direction,
    orbit_rotation,
    orbit_views,
    orthographic_view,
    perspective_view,
    weak_perspective_camera,
)
from .registry import BackendUnavailable, get_rasterizer, nvdiffrast_available, resolve_backend
from .shade import normal_map, render_rgba, shade, turnaround, turntable_cameras, vertex_normals
from .silhouette import boundary_distance_field, outline_points, sample_field, soft_iou_loss
from .texture import TexelVisibility, project_image_to_texture, rasterize_uv, texel_visibility

__all__ = [
    "PSHUMAN_AZIMUTHS",
    "BackendUnavailable",
    "Camera",
    "Fragments",
    "OrthographicCamera",
    "PerspectiveCamera",
    "Rasterizer",
    "TexelVisibility",
    "WeakPerspectiveCamera",
    "boundary_distance_field",
    "camera_for_size",
    "framing_camera",
    "get_rasterizer",
    "interpolate_torch",
    "look_at_rotation",
    "normal_map",
    "nvdiffrast_available",
    "orbit_direction",
    "orbit_rotation",
    "orbit_views",
    "orthographic_view",
    "outline_points",
    "perspective_view",
    "project_image_to_texture",
    "rasterize_uv",
    "render_rgba",
    "resolve_backend",
    "sample_field",
    "shade",
    "soft_iou_loss",
    "texel_visibility",
    "turnaround",
    "turntable_cameras",
    "vertex_normals",
    "weak_perspective_camera",
]
