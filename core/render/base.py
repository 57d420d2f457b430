"""The one rasterizer interface every backend implements, and the data it returns.

Backends (``torch_raster.TorchRasterizer`` on CPU, ``nvdiffrast_backend.NvdiffrastRasterizer``
on CUDA) differ only in how they find the nearest triangle per pixel and how they make
silhouettes differentiable; callers use :class:`Rasterizer` and never branch on the
backend. Get one with :func:`strata.core.render.get_rasterizer`.

Coordinates given to :meth:`Rasterizer.rasterize` are either

* **screen** space, shape (N, 3): ``(x_pixel, y_pixel, depth)`` with the pixel
  conventions of :mod:`.camera` (origin top-left, centres at +0.5, smaller depth is
  nearer). ``perspective=True`` makes barycentrics perspective-correct (depth must then
  be the positive camera z); or
* **clip** space, shape (N, 4): ``(x, y, z, w)`` as nvdiffrast consumes it, where image
  row 0 is at ``y/w = -1`` and column 0 at ``x/w = -1``. ``w`` becomes the depth and
  interpolation is perspective-correct unless every ``w`` is 1 (then ``z`` is the depth).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .camera import Camera, camera_for_size


@dataclass
class Fragments:
    """Per-pixel result of rasterization (one layer, nearest surface).

    Attributes:
        tri_id: (H, W) int64 index into ``faces``; -1 where no triangle covers the pixel.
        bary: (H, W, 3) barycentric weights of the triangle's three corners (sum 1 where
            covered, 0 elsewhere). Perspective-correct for perspective rasterization, and
            differentiable w.r.t. the vertex positions passed to ``rasterize`` when those
            require grad (interior gradients, as nvdiffrast gives).
        depth: (H, W) depth of the visible surface (camera z); ``+inf`` where empty, so a
            depth test "nothing is in front" needs no special case.
        faces: (F, 3) int64 triangles that ``tri_id`` indexes (kept so ``interpolate``
            can default to them).
        native: backend-private payload (nvdiffrast keeps its ``rast`` tensor here so its
            own ``interpolate``/``antialias`` can reuse it); None for the torch backend.
    """

    tri_id: torch.Tensor
    bary: torch.Tensor
    depth: torch.Tensor
    faces: torch.Tensor
    native: Any = None

    @property
    def mask(self) -> torch.Tensor:
        """(H, W) bool: pixel covered by a triangle."""
        return self.tri_id >= 0

    @property
    def height(self) -> int:
        return int(self.tri_id.shape[0])

    @property
    def width(self) -> int:
        return int(self.tri_id.shape[1])


def as_faces(faces: np.ndarray | torch.Tensor | Sequence, device: torch.device | str = "cpu") -> torch.Tensor:
    """Faces as a contiguous (F, 3) int64 tensor on ``device``."""
    f = faces if isinstance(faces, torch.Tensor) else torch.as_tensor(np.asarray(faces))
    f = f.to(device=device, dtype=torch.int64).contiguous()
    if f.ndim != 2 or f.shape[1] != 3:
        raise ValueError(f"faces must be (F, 3), got {tuple(f.shape)}")
    return f


def as_points(points: np.ndarray | torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """Float tensor on ``device`` (float32 unless already a floating tensor; autograd kept)."""
    if isinstance(points, torch.Tensor):
        return points.to(device=device) if points.is_floating_point() else points.to(device, torch.float32)
    return torch.as_tensor(np.asarray(points), dtype=torch.float32, device=device)


def clip_to_screen(clip: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, bool]:
    """nvdiffrast-style clip coordinates (N, 4) -> screen (N, 3) and whether it is perspective."""
    w = clip[:, 3:4]
    perspective = not bool(torch.all(w == 1))
    ndc = clip[:, :3] / w
    x = (ndc[:, 0:1] + 1.0) * (0.5 * width)
    y = (ndc[:, 1:2] + 1.0) * (0.5 * height)
    depth = w if perspective else ndc[:, 2:3]
    return torch.cat([x, y, depth], dim=1), perspective


def interpolate_torch(
    attr: torch.Tensor, fragments: Fragments, faces: torch.Tensor | None = None
) -> torch.Tensor:
    """Barycentric interpolation of per-vertex (or per-corner) attributes into pixels.

    ``attr`` is (V, C) indexed by ``faces`` (default ``fragments.faces``); pass other
    faces with the same triangle order for per-corner attributes, e.g. ``uvs`` with
    ``uv_faces``. Returns (H, W, C), zero where empty. Differentiable w.r.t. ``attr``
    and, through ``fragments.bary``, the vertex positions.
    """
    faces = fragments.faces if faces is None else faces
    h, w = fragments.tri_id.shape
    squeeze = attr.ndim == 1
    a = attr[:, None] if squeeze else attr
    flat_tri = fragments.tri_id.reshape(-1)
    idx = torch.nonzero(flat_tri >= 0).squeeze(1)
    corners = faces.to(a.device).index_select(0, flat_tri.index_select(0, idx)).reshape(-1)  # (P*3,)
    bary = fragments.bary.reshape(-1, 3).index_select(0, idx).to(a.dtype)  # (P, 3)
    vals = (a.index_select(0, corners).reshape(-1, 3, a.shape[1]) * bary[..., None]).sum(1)  # (P, C)
    out = torch.zeros(h * w, a.shape[1], dtype=vals.dtype, device=a.device).index_put((idx,), vals)
    out = out.reshape(h, w, a.shape[1])
    return out[..., 0] if squeeze else out


class Rasterizer(ABC):
    """Backend-independent rasterization API (see module docstring for coordinates)."""

    name: str = "abstract"
    device: torch.device = torch.device("cpu")

    @abstractmethod
    def rasterize(
        self,
        verts: torch.Tensor,
        faces: torch.Tensor | np.ndarray,
        height: int,
        width: int,
        *,
        perspective: bool = False,
        cull_backfaces: bool = False,
    ) -> Fragments:
        """Nearest triangle, barycentrics and depth per pixel.

        Args:
            verts: (N, 3) screen or (N, 4) clip coordinates (module docstring).
            faces: (F, 3) vertex indices.
            height, width: image size in pixels.
            perspective: screen input only: interpolate perspective-correctly.
            cull_backfaces: drop triangles facing away from the camera. A triangle faces
                the camera when its corners run counter-clockwise *as seen by the camera*
                (the usual outward-normal winding), i.e. clockwise in y-down pixels.
        """

    def interpolate(
        self, attr: torch.Tensor, fragments: Fragments, faces: torch.Tensor | np.ndarray | None = None
    ) -> torch.Tensor:
        """Per-pixel attributes (H, W, C); see :func:`interpolate_torch`."""
        f = None if faces is None else as_faces(faces, fragments.tri_id.device)
        return interpolate_torch(attr, fragments, f)

    def silhouette(
        self,
        verts: torch.Tensor,
        faces: torch.Tensor | np.ndarray,
        camera: Camera,
        size: int | Sequence[int] | None = None,
        *,
        sigma: float = 1.0,
    ) -> torch.Tensor:
        """Differentiable soft silhouette (H, W) in [0, 1] of world-space ``verts``.

        Gradients reach ``verts`` (and any tensor camera parameters). The default
        implementation is the contour-distance method of :mod:`.silhouette`: exact hard
        mask away from the outline, and within ~3 ``sigma`` pixels of it a sigmoid of the
        distance to the projected outline edges. ``size`` overrides the camera's image
        size (the camera is rescaled, framing kept).
        """
        from .silhouette import contour_silhouette

        cam, h, w = camera_for_size(camera, size)
        screen = cam.to_screen(as_points(verts, self.device))
        return contour_silhouette(self, screen, as_faces(faces, self.device), h, w, sigma=sigma,
                                  perspective=cam.is_perspective)

    def render_attributes(
        self,
        verts: torch.Tensor,
        faces: torch.Tensor | np.ndarray,
        camera: Camera,
        attr: torch.Tensor,
        size: int | Sequence[int] | None = None,
        *,
        attr_faces: torch.Tensor | np.ndarray | None = None,
        cull_backfaces: bool = False,
    ) -> tuple[torch.Tensor, Fragments]:
        """Rasterize world-space ``verts`` with ``camera`` and interpolate ``attr``.

        Returns ``(image (H, W, C), fragments)``. Differentiable w.r.t. ``attr`` and, via
        barycentrics, ``verts`` (interior gradients; use :meth:`silhouette` for edges).
        """
        cam, h, w = camera_for_size(camera, size)
        f = as_faces(faces, self.device)
        screen = cam.to_screen(as_points(verts, self.device))
        frags = self.rasterize(screen, f, h, w, perspective=cam.is_perspective, cull_backfaces=cull_backfaces)
        return self.interpolate(attr, frags, attr_faces), frags
