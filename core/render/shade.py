"""Shaded renders for synthetic test photos, turnarounds and normal maps.

Lambert shading with a camera-relative key light plus ambient, colours from per-vertex
colours or a UV texture (per-corner UVs: ``uvs`` (U, 2) + ``uv_faces`` (F, 3), Blender /
OBJ convention: ``v`` up, so ``v = 1`` is the top row of the texture image). Output is
straight-alpha RGBA ``uint8``; ``ssaa`` supersamples for clean edges in test photos.
The float path (:func:`shade`) stays differentiable w.r.t. colours and texture.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .base import Rasterizer, as_faces, as_points
from .camera import Camera, OrthographicCamera, camera_for_size, orbit_rotation, rotation_matrix
from .registry import get_rasterizer

_GREY = (0.72, 0.72, 0.72)


def vertex_normals(verts: torch.Tensor, faces: torch.Tensor) -> torch.Tensor:
    """Area-weighted unit vertex normals (V, 3) for counter-clockwise (outward) winding."""
    tri = verts[faces]
    fn = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], dim=1)
    vn = torch.zeros_like(verts).index_add_(0, faces.reshape(-1), fn.repeat_interleave(3, dim=0))
    return vn / vn.norm(dim=1, keepdim=True).clamp_min(1e-12)


def _unit_float(x: np.ndarray | torch.Tensor, device: torch.device) -> torch.Tensor:
    """Colours/images as float in [0, 1]: integer inputs are taken as 0..255."""
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.ascontiguousarray(x))
    if not t.is_floating_point():
        t = t.float() / 255.0
    return t.to(device)


def sample_texture(texture: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """Bilinear lookup of (Ht, Wt, C) ``texture`` at (..., 2) ``uv`` (v up); clamps at borders."""
    shape = uv.shape[:-1]
    grid = torch.stack([uv[..., 0] * 2.0 - 1.0, 1.0 - uv[..., 1] * 2.0], dim=-1).reshape(1, 1, -1, 2)
    tex = texture.permute(2, 0, 1)[None].to(grid.dtype)
    out = F.grid_sample(tex, grid, mode="bilinear", padding_mode="border", align_corners=False)
    return out[0, :, 0].T.reshape(*shape, texture.shape[-1])


def default_light(camera: Camera) -> torch.Tensor:
    """Key light direction (towards the light): from the camera, raised and to its left.

    Why camera-relative: every view of a turnaround is lit the same way, so differences
    between views come from the geometry, not the lighting.
    """
    rot = rotation_matrix(camera)
    right, down, forward = rot[0], rot[1], rot[2]
    d = -forward - 0.6 * down - 0.35 * right
    return (d / d.norm()).float()


def shade(
    verts: torch.Tensor | np.ndarray,
    faces: torch.Tensor | np.ndarray,
    camera: Camera,
    *,
    size: int | Sequence[int] | None = None,
    vertex_colors: torch.Tensor | np.ndarray | None = None,
    texture: torch.Tensor | np.ndarray | None = None,
    uvs: torch.Tensor | np.ndarray | None = None,
    uv_faces: torch.Tensor | np.ndarray | None = None,
    light_dir: torch.Tensor | Sequence[float] | None = None,
    ambient: float = 0.35,
    flat: bool = False,
    rasterizer: Rasterizer | None = None,
) -> torch.Tensor:
    """Float RGBA (H, W, 4) in [0, 1], alpha = coverage (hard edges).

    Colour source, first available: ``texture`` + ``uvs`` (+ ``uv_faces``, default
    ``faces``), ``vertex_colors`` (V, 3|4), else light grey. Shading is two-sided
    Lambert: ``albedo * (ambient + (1 - ambient) * max(0, n . l))`` with ``l`` =
    ``light_dir`` (world, towards the light) or :func:`default_light`.
    """
    rast = rasterizer or get_rasterizer()
    dev = rast.device
    cam, h, w = camera_for_size(camera, size)
    v = as_points(verts, dev).float()
    f = as_faces(faces, dev)
    screen = cam.to_screen(v)
    frags = rast.rasterize(screen, f, h, w, perspective=cam.is_perspective)
    mask = frags.mask

    if flat:
        tri = v[f]
        fn = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0], dim=1)
        fn = fn / fn.norm(dim=1, keepdim=True).clamp_min(1e-12)
        normal = fn[frags.tri_id.clamp_min(0)]
    else:
        normal = rast.interpolate(vertex_normals(v, f), frags)
        normal = normal / normal.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    pos = rast.interpolate(v, frags)
    to_cam = cam.towards_camera(pos.reshape(-1, 3)).reshape(h, w, 3)
    facing = (normal * to_cam).sum(-1, keepdim=True)
    normal = torch.where(facing < 0, -normal, normal)  # two-sided: open meshes show their inside lit

    light = default_light(cam) if light_dir is None else torch.as_tensor(light_dir, dtype=torch.float32)
    light = (light / light.norm()).to(dev)
    lambert = (normal * light).sum(-1, keepdim=True).clamp_min(0.0)
    intensity = ambient + (1.0 - ambient) * lambert

    if texture is not None and uvs is not None:
        tex = _unit_float(texture, dev)
        tex = tex[..., None] if tex.ndim == 2 else tex
        uv_f = f if uv_faces is None else as_faces(uv_faces, dev)
        uv = rast.interpolate(as_points(uvs, dev).float(), frags, uv_f)
        albedo = sample_texture(tex, uv)
    elif vertex_colors is not None:
        albedo = rast.interpolate(_unit_float(vertex_colors, dev).float(), frags)
    else:
        albedo = torch.tensor(_GREY, device=dev).expand(h, w, 3)
    rgb = albedo[..., :3] * intensity
    alpha = mask[..., None].to(rgb.dtype)
    if albedo.shape[-1] == 4:
        alpha = alpha * albedo[..., 3:4]
    return torch.cat([rgb * mask[..., None], alpha], dim=-1)


def to_uint8(rgba: torch.Tensor) -> np.ndarray:
    """[0, 1] float image -> uint8 numpy (rounded)."""
    return (rgba.detach().clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).cpu().numpy()


def render_rgba(
    verts: torch.Tensor | np.ndarray,
    faces: torch.Tensor | np.ndarray,
    camera: Camera,
    *,
    size: int | Sequence[int] | None = None,
    ssaa: int = 2,
    background: Sequence[float] | None = None,
    **shade_kwargs: object,
) -> np.ndarray:
    """Shaded straight-alpha RGBA ``uint8`` (H, W, 4); see :func:`shade` for the options.

    ``ssaa`` renders at ``ssaa`` times the size and box-filters down (premultiplied), so
    synthetic photos have antialiased edges like real ones. ``background`` (RGB or RGBA
    in [0, 1]) composites onto a solid colour instead of leaving transparency.
    """
    cam, h, w = camera_for_size(camera, size)
    k = max(1, int(ssaa))
    with torch.no_grad():
        img = shade(verts, faces, cam.resized(w * k, h * k) if k > 1 else cam, **shade_kwargs)  # type: ignore[arg-type]
        if k > 1:
            img = F.avg_pool2d(img.permute(2, 0, 1)[None], k)[0].permute(1, 2, 0)  # premultiplied average
        alpha = img[..., 3:4]
        rgb = torch.where(alpha > 0, img[..., :3] / alpha.clamp_min(1e-8), img[..., :3])
        if background is not None:
            bg = torch.as_tensor(list(background), dtype=rgb.dtype, device=rgb.device)
            bg_rgb = bg[:3]
            bg_a = bg[3] if bg.numel() > 3 else torch.tensor(1.0, dtype=rgb.dtype, device=rgb.device)
            rgb = rgb * alpha + bg_rgb * (1 - alpha)
            alpha = alpha + bg_a * (1 - alpha)
        return to_uint8(torch.cat([rgb, alpha], dim=-1))


def turntable_cameras(
    verts: torch.Tensor | np.ndarray,
    azimuths: Iterable[float],
    *,
    size: int | Sequence[int] = 512,
    elevation: float = 0.0,
    margin: float = 0.05,
) -> list[OrthographicCamera]:
    """Orthographic orbit cameras sharing one centre and scale, framing the body in all views.

    Why shared: a turnaround whose scale changed per view would make the body "breathe".
    The framing uses the bounding cylinder around the vertical axis, which bounds every
    azimuth at elevation 0.
    """
    h, w = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
    p = np.asarray(verts.detach().cpu() if isinstance(verts, torch.Tensor) else verts, dtype=np.float64)
    lo, hi = p.min(0), p.max(0)
    centre = (lo + hi) / 2
    radius = float(np.sqrt(((p[:, :2] - centre[:2]) ** 2).sum(1)).max())
    scale = min(w * (1 - 2 * margin) / max(2 * radius, 1e-9), h * (1 - 2 * margin) / max(hi[2] - lo[2], 1e-9))
    return [
        OrthographicCamera(rotation=orbit_rotation(float(a), elevation), center=centre, scale=scale, width=w, height=h)
        for a in azimuths
    ]


def turnaround(
    verts: torch.Tensor | np.ndarray,
    faces: torch.Tensor | np.ndarray,
    azimuths: Iterable[float] = (0, 45, 90, 135, 180, 225, 270, 315),
    *,
    size: int | Sequence[int] = 512,
    elevation: float = 0.0,
    **render_kwargs: object,
) -> list[np.ndarray]:
    """RGBA uint8 renders of the mesh from each azimuth (same framing for all)."""
    cams = turntable_cameras(verts, list(azimuths), size=size, elevation=elevation)
    return [render_rgba(verts, faces, c, **render_kwargs) for c in cams]  # type: ignore[arg-type]


def normal_map(
    verts: torch.Tensor | np.ndarray,
    faces: torch.Tensor | np.ndarray,
    camera: Camera,
    *,
    size: int | Sequence[int] | None = None,
    frame: str = "world",
    rasterizer: Rasterizer | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel unit normals (H, W, 3) and the coverage mask (H, W).

    ``frame="world"`` gives world normals; ``"camera_gl"`` re-expresses them in the
    camera's OpenGL frame (x right, y up, z towards the viewer), the convention of
    PSHuman's normal maps (encode with ``n * 0.5 + 0.5``). Differentiable w.r.t.
    ``verts`` through the normals (interior only).
    """
    rast = rasterizer or get_rasterizer()
    dev = rast.device
    v = as_points(verts, dev)
    f = as_faces(faces, dev)
    n, frags = rast.render_attributes(v, f, camera, vertex_normals(v, f), size)
    n = n / n.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    if frame == "camera_gl":
        rot = rotation_matrix(camera).to(device=dev, dtype=n.dtype)
        gl = torch.stack([rot[0], -rot[1], -rot[2]])  # right, up, backwards
        n = n @ gl.T
    elif frame != "world":
        raise ValueError(f"frame must be 'world' or 'camera_gl', got {frame!r}")
    return n * frags.mask[..., None], frags.mask
