"""Optional CUDA backend on nvdiffrast, behind the same :class:`~.base.Rasterizer` API.

Never required: ``get_rasterizer("auto")`` uses it only when torch has CUDA and
``nvdiffrast.torch`` imports (PyPI ships it as ``diffrp-nvdiffrast``, source-only, built
JIT on first use; NVIDIA Source Code License). On a CPU-only machine constructing it
raises :class:`~.registry.BackendUnavailable` with the reason.

Mapping to nvdiffrast's documented API (``RasterizeCudaContext``, ``rasterize``,
``interpolate``, ``antialias``):

* screen coordinates become clip coordinates with ``x_ndc = 2 x / W - 1`` and
  ``y_ndc = 2 y / H - 1``: nvdiffrast stores image row 0 at ``y_ndc = -1``, so row ``j``
  of its output is our pixel row ``j`` (y down) with no flip;
* orthographic depth is mapped affinely into ``[-0.99, 0.99]`` (``w = 1``); perspective
  depth becomes ``w`` with an OpenGL-style ``z`` over a near/far range bracketing the
  mesh. Unlike the torch backend, nvdiffrast clips triangles at the near plane instead of
  dropping them;
* ``rast[..., 3]`` holds ``triangle_id + 1`` (0 = empty) and ``rast[..., :2]`` the
  barycentrics ``(u, v)`` of corners 0 and 1 (corner 2 gets ``1 - u - v``);
* back-face culling (absent in nvdiffrast) is done by rasterizing only the
  camera-facing triangles and mapping their ids back;
* :meth:`silhouette` uses ``antialias`` on the hard coverage mask (analytic edge
  gradients, 1 px wide) followed by a Gaussian blur of ``sigma`` px so that its basin
  roughly matches the torch backend's contour-distance silhouette.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .base import Fragments, Rasterizer, as_faces, as_points, clip_to_screen
from .camera import Camera, camera_for_size


@dataclass
class _Native:
    rast: torch.Tensor  # (1, H, W, 4) nvdiffrast output
    clip: torch.Tensor  # (1, N, 4) positions it was rasterized from
    tri: torch.Tensor  # (F', 3) int32 triangles actually rasterized
    kept: torch.Tensor | None  # (F',) original ids when culling removed faces


def _import_nvdiffrast() -> Any:
    from .registry import BackendUnavailable

    if not torch.cuda.is_available():
        raise BackendUnavailable(
            "nvdiffrast backend needs CUDA, but torch.cuda.is_available() is False "
            f"(torch {torch.__version__}); use backend='torch' or 'auto'"
        )
    try:
        import nvdiffrast.torch as dr
    except Exception as exc:  # ImportError, or a failed JIT build
        raise BackendUnavailable(
            f"nvdiffrast.torch could not be imported ({exc!r}); install it (e.g. `pip install "
            "diffrp-nvdiffrast`, needs a CUDA toolkit for its JIT build) or use backend='torch'"
        ) from exc
    return dr


class NvdiffrastRasterizer(Rasterizer):
    """Rasterizer on nvdiffrast's CUDA rasterizer (no OpenGL needed)."""

    name = "nvdiffrast"

    def __init__(self, device: torch.device | str = "cuda") -> None:
        self._dr = _import_nvdiffrast()
        self.device = torch.device(device)
        self._ctx = self._dr.RasterizeCudaContext(device=self.device)
        self._topology_hashes: dict[bytes, torch.Tensor] = {}

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def screen_to_clip(screen: torch.Tensor, height: int, width: int, perspective: bool) -> torch.Tensor:
        """(N, 3) screen coordinates -> (N, 4) nvdiffrast clip coordinates (see module doc)."""
        x_ndc = screen[:, 0:1] * (2.0 / width) - 1.0
        y_ndc = screen[:, 1:2] * (2.0 / height) - 1.0
        z = screen[:, 2:3]
        with torch.no_grad():
            zd = z.detach()
            finite = zd[torch.isfinite(zd)]
            lo = float(finite.min()) if finite.numel() else 0.0
            hi = float(finite.max()) if finite.numel() else 1.0
        if not perspective:
            span = max(hi - lo, 1e-9)
            z_ndc = (z - lo) * (1.98 / span) - 0.99
            return torch.cat([x_ndc, y_ndc, z_ndc, torch.ones_like(z)], dim=1)
        near = max(lo * 0.5, 1e-4)
        far = max(hi * 2.0, near * 2.0)
        a = (far + near) / (far - near)
        b = -2.0 * far * near / (far - near)
        return torch.cat([x_ndc * z, y_ndc * z, a * z + b, z], dim=1)

    def _prepare(
        self, verts: torch.Tensor, faces: torch.Tensor, height: int, width: int, perspective: bool, cull: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Clip coords, screen coords, int32 triangles to draw, and kept ids if culled."""
        v = as_points(verts, self.device).float()
        if v.shape[1] == 4:
            clip = v
            screen, _ = clip_to_screen(v, height, width)
        else:
            screen = v
            clip = self.screen_to_clip(v, height, width, perspective)
        kept = None
        tri = faces
        if cull:
            with torch.no_grad():
                t = screen.detach()[faces]  # (F, 3, 3)
                det = (t[:, 1, 0] - t[:, 0, 0]) * (t[:, 2, 1] - t[:, 0, 1]) - (t[:, 1, 1] - t[:, 0, 1]) * (
                    t[:, 2, 0] - t[:, 0, 0]
                )
                kept = torch.nonzero(det < 0).squeeze(1)
            tri = faces[kept]
        return clip.contiguous(), screen, tri.to(torch.int32).contiguous(), kept

    def _topology_hash(self, tri: torch.Tensor) -> torch.Tensor:
        key = hashlib.blake2b(tri.detach().cpu().numpy().tobytes(), digest_size=16).digest()
        if key not in self._topology_hashes:
            if len(self._topology_hashes) > 8:
                self._topology_hashes.clear()
            self._topology_hashes[key] = self._dr.antialias_construct_topology_hash(tri)
        return self._topology_hashes[key]

    # ------------------------------------------------------------------ API

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
        f = as_faces(faces, self.device)
        clip, screen, tri, kept = self._prepare(verts, f, height, width, perspective, cull_backfaces)
        rast, _ = self._dr.rasterize(self._ctx, clip[None], tri, resolution=(height, width))
        r = rast[0]
        local = r[..., 3].round().long() - 1
        covered = local >= 0
        if kept is not None:
            tri_id = torch.where(covered, kept[local.clamp_min(0)], torch.full_like(local, -1))
        else:
            tri_id = local
        u, v = r[..., 0], r[..., 1]
        bary = torch.stack([u, v, 1.0 - u - v], dim=-1) * covered[..., None]
        # nvdiffrast's barycentrics are perspective-correct, so interpolating camera depth
        # with them is exact for both camera models.
        depth, _ = self._dr.interpolate(screen[None, :, 2:3].contiguous(), rast, tri)
        depth = torch.where(covered, depth[0, ..., 0], torch.full_like(depth[0, ..., 0], math.inf))
        return Fragments(tri_id=tri_id, bary=bary, depth=depth, faces=f, native=_Native(rast, clip[None], tri, kept))

    def interpolate(
        self, attr: torch.Tensor, fragments: Fragments, faces: torch.Tensor | np.ndarray | None = None
    ) -> torch.Tensor:
        nat = fragments.native
        if not isinstance(nat, _Native):
            return super().interpolate(attr, fragments, faces)
        if faces is None:
            tri = nat.tri
        else:
            ft = as_faces(faces, self.device)
            tri = (ft if nat.kept is None else ft[nat.kept]).to(torch.int32).contiguous()
        squeeze = attr.ndim == 1
        a = (attr[:, None] if squeeze else attr).to(self.device, torch.float32).contiguous()
        out, _ = self._dr.interpolate(a[None], nat.rast, tri)
        out = out[0]
        return out[..., 0] if squeeze else out

    def silhouette(
        self,
        verts: torch.Tensor,
        faces: torch.Tensor | np.ndarray,
        camera: Camera,
        size: int | Sequence[int] | None = None,
        *,
        sigma: float = 1.0,
    ) -> torch.Tensor:
        cam, h, w = camera_for_size(camera, size)
        f = as_faces(faces, self.device)
        screen = cam.to_screen(as_points(verts, self.device).float())
        clip, _, tri, _ = self._prepare(screen, f, h, w, cam.is_perspective, False)
        rast, _ = self._dr.rasterize(self._ctx, clip[None], tri, resolution=(h, w))
        cover = (rast[..., 3:4] > 0).float()
        sil = self._dr.antialias(cover, rast, clip[None], tri, topology_hash=self._topology_hash(tri))
        sil = sil[0, ..., 0]
        if sigma > 0.5:
            sil = _gaussian_blur(sil, sigma)
        return sil


def _gaussian_blur(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of an (H, W) image with edge-replicated borders (differentiable).

    Replicated borders keep a body cut by the image frame at full value along the frame.
    """
    r = max(1, math.ceil(3 * sigma))
    x = torch.arange(-r, r + 1, device=img.device, dtype=img.dtype)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    k = k / k.sum()
    t = F.pad(img[None, None], (r, r, r, r), mode="replicate")
    t = F.conv2d(t, k.view(1, 1, 1, -1))
    t = F.conv2d(t, k.view(1, 1, -1, 1))
    return t[0, 0]
