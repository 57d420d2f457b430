"""Photo -> UV texture projection: which texels a camera sees, and where.

Why here: texturing a fitted body from the input photo (and from generated side views)
needs, per texel, its 3D point, whether that point is the visible surface in the photo,
how squarely the camera sees it, and the pixel it lands on. All of it is rasterization:
once in UV space (texel -> triangle + barycentrics) and once from the camera (z-buffer).

UV convention: Blender/OBJ, ``v`` up: texel row 0 is ``v = 1``. Texels whose centre is
not inside any UV triangle are reported as uncovered; seam padding (dilation) belongs to
the texture baker, not here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .base import Fragments, Rasterizer, as_faces, as_points
from .camera import Camera
from .registry import get_rasterizer
from .shade import sample_texture


def _tex_hw(tex_size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(tex_size, int):
        return tex_size, tex_size
    return int(tex_size[0]), int(tex_size[1])


def rasterize_uv(
    uvs: torch.Tensor | np.ndarray,
    uv_faces: torch.Tensor | np.ndarray,
    tex_size: int | Sequence[int],
    rasterizer: Rasterizer | None = None,
) -> Fragments:
    """Rasterize the UV layout: per texel, the triangle id (same order as the mesh faces)
    and barycentrics. ``tex_size`` is an int or ``(H, W)``."""
    rast = rasterizer or get_rasterizer()
    th, tw = _tex_hw(tex_size)
    uv = as_points(uvs, rast.device).float()
    screen = torch.stack([uv[:, 0] * tw, (1.0 - uv[:, 1]) * th, torch.zeros_like(uv[:, 0])], dim=1)
    return rast.rasterize(screen, as_faces(uv_faces, rast.device), th, tw)


def uv_coverage(uvs: np.ndarray, uv_faces: np.ndarray, size: int,
                rasterizer: Rasterizer | None = None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`rasterize_uv` as numpy: ``(face_id (size, size) int64, -1 where no face; bary (size, size, 3)
    float32)``. The one UV rasterization every texture painter and baker uses."""
    with torch.no_grad():
        frags = rasterize_uv(uvs, uv_faces, size, rasterizer)
    return frags.tri_id.cpu().numpy().astype(np.int64), frags.bary.cpu().numpy().astype(np.float32)


def fill_gutters(image: np.ndarray, covered: np.ndarray) -> np.ndarray:
    """Every uncovered texel takes the colour of the nearest covered one (no seams, no black borders under
    bilinear filtering and mip-mapping). Works in place on float or integer images of any channel count."""
    import cv2

    if covered.all() or not covered.any():
        return image
    _, labels = cv2.distanceTransformWithLabels(
        (~covered).astype(np.uint8), cv2.DIST_L2, 5, labelType=cv2.DIST_LABEL_PIXEL
    )
    # Labels number the zero (covered) pixels 1..K in raster order.
    src = image[covered]
    lab = labels[~covered] - 1
    image[~covered] = src[np.clip(lab, 0, len(src) - 1)]
    return image


@dataclass
class TexelVisibility:
    """Per-texel projection of a mesh's UV texture into one camera image.

    Attributes:
        covered: (Ht, Wt) bool, texel centre inside some UV triangle.
        visible: (Ht, Wt) bool, covered, facing the camera (cos > ``min_cos``), inside the
            image, and not occluded (passes the camera z-buffer test).
        pixel: (Ht, Wt, 2) float pixel coordinates of the texel's 3D point in the image.
        cos: (Ht, Wt) cosine between the face normal and the direction to the camera
            (0 where not covered); a natural blending weight across views.
        position: (Ht, Wt, 3) world position of each texel's surface point.
    """

    covered: torch.Tensor
    visible: torch.Tensor
    pixel: torch.Tensor
    cos: torch.Tensor
    position: torch.Tensor


def texel_visibility(
    verts: torch.Tensor | np.ndarray,
    faces: torch.Tensor | np.ndarray,
    uvs: torch.Tensor | np.ndarray,
    uv_faces: torch.Tensor | np.ndarray,
    camera: Camera,
    tex_size: int | Sequence[int],
    *,
    min_cos: float = 0.0,
    depth_tol_px: float = 1.5,
    rasterizer: Rasterizer | None = None,
) -> TexelVisibility:
    """Which texels the camera sees (see :class:`TexelVisibility`).

    Occlusion test: a texel is visible when its depth is at most the z-buffer depth at
    its pixel plus a tolerance of ``depth_tol_px`` pixel footprints divided by the
    cosine (capped at 10x), i.e. the depth change across a pixel on a surface that
    steep. A fixed tolerance would either leak occluded texels or drop grazing ones.
    """
    rast = rasterizer or get_rasterizer()
    dev = rast.device
    v = as_points(verts, dev).float()
    f = as_faces(faces, dev)
    uv_frags = rasterize_uv(uvs, uv_faces, tex_size, rast)
    covered = uv_frags.mask
    position = rast.interpolate(v, uv_frags, f)
    # Geometric (face) normals: smooth vertex normals would call the sides of a hard
    # edge camera-facing near the edge and leak texels of faces seen exactly edge-on.
    tri = v[f]
    fn = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], dim=1)
    fn = fn / fn.norm(dim=1, keepdim=True).clamp_min(1e-12)
    normal = fn[uv_frags.tri_id.clamp_min(0)]

    th, tw = covered.shape
    pts = position.reshape(-1, 3)
    screen = camera.to_screen(pts).reshape(th, tw, 3)
    to_cam = camera.towards_camera(pts).reshape(th, tw, 3)
    cos = (normal * to_cam).sum(-1) * covered

    cam_frags = rast.rasterize(camera.to_screen(v), f, camera.height, camera.width,
                               perspective=camera.is_perspective)
    px = torch.floor(screen[..., 0]).long()
    py = torch.floor(screen[..., 1]).long()
    in_img = (px >= 0) & (px < camera.width) & (py >= 0) & (py < camera.height)
    zbuf = cam_frags.depth[py.clamp(0, camera.height - 1), px.clamp(0, camera.width - 1)]

    tol = depth_tol_px * camera.pixel_footprint(screen[..., 2]) / cos.clamp_min(0.1)
    visible = covered & in_img & (cos > min_cos) & (screen[..., 2] <= zbuf + tol)
    return TexelVisibility(covered=covered, visible=visible, pixel=screen[..., :2], cos=cos, position=position)


def project_image_to_texture(
    image: np.ndarray | torch.Tensor,
    verts: torch.Tensor | np.ndarray,
    faces: torch.Tensor | np.ndarray,
    uvs: torch.Tensor | np.ndarray,
    uv_faces: torch.Tensor | np.ndarray,
    camera: Camera,
    tex_size: int | Sequence[int],
    **visibility_kwargs: object,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample ``image`` (H, W, C; uint8 or float) into UV texture space.

    Returns ``(texture (Ht, Wt, C) float in [0, 1], weight (Ht, Wt))`` where weight is
    the viewing cosine on visible texels and 0 elsewhere, ready for a weighted blend of
    several views (``sum(w_i t_i) / sum(w_i)``).
    """
    vis = texel_visibility(verts, faces, uvs, uv_faces, camera, tex_size, **visibility_kwargs)  # type: ignore[arg-type]
    img = image if isinstance(image, torch.Tensor) else torch.as_tensor(np.ascontiguousarray(image))
    if not img.is_floating_point():
        img = img.float() / 255.0
    img = img[..., None] if img.ndim == 2 else img
    img = img.to(vis.pixel.device)
    h, w = img.shape[:2]
    # Pixel coordinates -> the [0, 1] "uv" of sample_texture (v up: row 0 is v = 1).
    uv = torch.stack([vis.pixel[..., 0] / w, 1.0 - vis.pixel[..., 1] / h], dim=-1)
    tex = sample_texture(img, uv) * vis.visible[..., None]
    weight = vis.cos.clamp_min(0.0) * vis.visible
    return tex, weight
