"""Pure-torch CPU rasterizer: bbox binning + vectorised edge tests + keyed z-buffer.

How it works (no per-pixel or per-triangle Python loops):

1. Set up every triangle once: cull invalid/degenerate (and optionally back-facing)
   ones, and express the barycentrics and the depth as affine functions of the pixel
   position relative to the first corner (9 floats per triangle). Working relative to a
   corner keeps float32 edge tests accurate for large images.
2. Enumerate the pixel centres inside each triangle's bounding box as one flat ragged
   batch (:mod:`.binning`), evaluate the barycentric planes there and keep the inside
   ones (a tiny tolerance, so shared edges never leave cracks; double-covered edge
   pixels are resolved by the depth test).
3. Resolve visibility with a single ``scatter_reduce(amin)`` over int64 keys
   ``quantised_depth << 32 | triangle_id`` (ties go to the lower triangle id, so the
   result is deterministic).
4. Recompute barycentrics and depth for the visible pixels only, in autograd, from the
   caller's vertex tensor, so gradients flow to the vertices the way nvdiffrast's do.

Large batches are split into chunks of ``budget`` candidate pixels to bound memory.
"""

from __future__ import annotations

import numpy as np
import torch

from .base import Fragments, Rasterizer, as_faces, as_points, clip_to_screen
from .binning import (
    box_counts,
    chunk_bounds,
    key_ids,
    pack_keys,
    pixel_ranges,
    scatter_min_keys,
)

_INSIDE_TOL = 1e-5  # barycentric slack: closes cracks along shared edges (~1e-5 px)
_NEAR = 1e-6  # perspective: corners at or behind this depth drop the triangle (no clipping)


class TorchRasterizer(Rasterizer):
    """CPU (or any-device) rasterizer in plain torch; the default when CUDA is absent.

    Args:
        device: where tensors live ("cpu" normally; works on CUDA too, just slower than
            nvdiffrast).
        budget: candidate pixels per batch; ~100 bytes each at peak.
    """

    name = "torch"

    def __init__(self, device: torch.device | str = "cpu", budget: int = 1 << 21) -> None:
        self.device = torch.device(device)
        self.budget = int(budget)

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
        v = as_points(verts, self.device)
        f = as_faces(faces, self.device)
        if v.ndim != 2 or v.shape[1] not in (3, 4):
            raise ValueError(f"verts must be (N, 3) screen or (N, 4) clip coordinates, got {tuple(v.shape)}")
        if v.shape[1] == 4:
            v, perspective = clip_to_screen(v, height, width)
        with torch.no_grad():
            tri_id = self._visible_triangles(v.detach().float(), f, height, width, perspective, cull_backfaces)
        bary, depth = fragment_barycentrics(v, f, tri_id, width, perspective)
        return Fragments(
            tri_id=tri_id.reshape(height, width),
            bary=bary.reshape(height, width, 3),
            depth=depth.reshape(height, width),
            faces=f,
        )

    # ------------------------------------------------------------------ internals

    def _visible_triangles(
        self, s: torch.Tensor, faces: torch.Tensor, height: int, width: int, perspective: bool, cull: bool
    ) -> torch.Tensor:
        """Flat (H*W,) int64 id of the nearest triangle per pixel, -1 where empty."""
        n_pix = height * width
        if faces.numel() == 0:
            return torch.full((n_pix,), -1, dtype=torch.long, device=s.device)
        tri = s.index_select(0, faces.reshape(-1)).reshape(-1, 3, 3)  # (F, 3 corners, xyz)
        x, y, z = tri[..., 0], tri[..., 1], tri[..., 2]
        det = (x[:, 1] - x[:, 0]) * (y[:, 2] - y[:, 0]) - (y[:, 1] - y[:, 0]) * (x[:, 2] - x[:, 0])
        # det is twice the signed area; < 0 means the triangle faces the camera.
        keep = torch.isfinite(tri).all(dim=(1, 2)) & (det.abs() > 1e-10)
        if perspective:
            keep &= (z > _NEAR).all(dim=1)
        if cull:
            keep &= det < 0
        bx0, bx1, by0, by1 = pixel_ranges(x.amin(1), x.amax(1), y.amin(1), y.amax(1), width, height)
        counts = box_counts(bx0, bx1, by0, by1)
        keep &= counts > 0
        ids = torch.nonzero(keep).squeeze(1)
        if ids.numel() == 0:
            return torch.full((n_pix,), -1, dtype=torch.long, device=s.device)

        # From here on only triangles that cover at least one pixel centre.
        wide = torch.float64 if n_pix >= 2**24 else s.dtype  # exact integer pixel indices
        t = tri.index_select(0, ids).to(wide)
        x, y = t[..., 0], t[..., 1]
        # Depth key per corner: z (orthographic) or -1/z (perspective: 1/z is the quantity
        # that is affine in screen space, and larger 1/z is nearer).
        kz = -1.0 / t[..., 2] if perspective else t[..., 2]
        lo, hi = float(kz.min()), float(kz.max())
        qscale = 2.0**30 / max(hi - lo, 1e-30)  # keys stay < 2**31 even after float32 rounding
        e1x, e1y = x[:, 1] - x[:, 0], y[:, 1] - y[:, 0]
        e2x, e2y = x[:, 2] - x[:, 0], y[:, 2] - y[:, 0]
        inv = 1.0 / (e1x * e2y - e1y * e2x)
        a1, b1 = e2y * inv, -e2x * inv
        a2, b2 = -e1y * inv, e1x * inv
        dk1, dk2 = kz[:, 1] - kz[:, 0], kz[:, 2] - kz[:, 0]
        bx0, bx1, by0, by1, counts = (v.index_select(0, ids) for v in (bx0, bx1, by0, by1, counts))
        # One row per triangle holds everything a candidate pixel needs, so a candidate
        # costs a single index_select. Offsets run from corner 0 to the box's first pixel
        # centre, which keeps the plane evaluations small and accurate in float32.
        table = torch.stack(
            [
                bx0.to(wide) + 0.5 - x[:, 0],
                by0.to(wide) + 0.5 - y[:, 0],
                a1,
                b1,
                a2,
                b2,
                (kz[:, 0] - lo) * qscale,
                (a1 * dk1 + a2 * dk2) * qscale,
                (b1 * dk1 + b2 * dk2) * qscale,
                (bx1 - bx0 + 1).to(wide),
                (by0 * width + bx0).to(wide),
            ],
            dim=1,
        )
        start_all = torch.cumsum(counts, 0) - counts

        zbuf = None
        for c0, c1 in chunk_bounds(counts, self.budget):
            total = int(counts[c0:c1].sum())
            owner = torch.repeat_interleave(
                torch.arange(c0, c1, device=s.device), counts[c0:c1], output_size=total
            )
            g = table.index_select(0, owner)
            local = torch.arange(total, device=s.device) + (int(start_all[c0]) - start_all.index_select(0, owner))
            local = local.to(wide)
            ly = torch.floor((local + 0.5) / g[:, 9])
            lx = local - ly * g[:, 9]
            dx = g[:, 0] + lx
            dy = g[:, 1] + ly
            w1 = g[:, 2] * dx + g[:, 3] * dy
            w2 = g[:, 4] * dx + g[:, 5] * dy
            inside = (w1 >= -_INSIDE_TOL) & (w2 >= -_INSIDE_TOL) & (w1 + w2 <= 1.0 + _INSIDE_TOL)
            sel = torch.nonzero(inside).squeeze(1)
            q = (g[:, 6] + g[:, 7] * dx + g[:, 8] * dy).index_select(0, sel).clamp_(0, 2.0**30).long()
            pix = (g[:, 10] + ly * width + lx).index_select(0, sel).long()
            tid = ids.index_select(0, owner.index_select(0, sel))
            zbuf = scatter_min_keys(pack_keys(q, tid), pix, n_pix, zbuf)
        if zbuf is None:
            return torch.full((n_pix,), -1, dtype=torch.long, device=s.device)
        return key_ids(zbuf)


def fragment_barycentrics(
    screen: torch.Tensor, faces: torch.Tensor, tri_id: torch.Tensor, width: int, perspective: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Barycentrics (P_all, 3) and depth (P_all,) for a flat tri-id map, in autograd.

    Why separate: visibility is decided without gradients, then this recomputes only the
    visible pixels from the caller's (possibly grad-requiring) vertices, so ``interpolate``
    gives d(pixel)/d(vertex position) inside triangles at the cost of one gather.
    """
    n_pix = tri_id.numel()
    idx = torch.nonzero(tri_id >= 0).squeeze(1)
    corners = faces.index_select(0, tri_id.index_select(0, idx)).reshape(-1)
    v = screen.index_select(0, corners).reshape(-1, 3, 3)  # (P, corner, xyz)
    py_i = torch.div(idx, width, rounding_mode="floor")
    px = (idx - py_i * width).to(v.dtype) + 0.5
    py = py_i.to(v.dtype) + 0.5
    e1 = v[:, 1, :2] - v[:, 0, :2]
    e2 = v[:, 2, :2] - v[:, 0, :2]
    dx, dy = px - v[:, 0, 0], py - v[:, 0, 1]
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    b1 = (dx * e2[:, 1] - dy * e2[:, 0]) / det
    b2 = (e1[:, 0] * dy - e1[:, 1] * dx) / det
    b = torch.stack([1.0 - b1 - b2, b1, b2], dim=1)
    z = v[..., 2]
    if perspective:
        wq = b / z
        denom = wq.sum(1, keepdim=True)
        b = wq / denom
        depth = 1.0 / denom[:, 0]
    else:
        depth = (b * z).sum(1)
    bary = torch.zeros(n_pix, 3, dtype=v.dtype, device=v.device).index_put((idx,), b)
    dep = torch.full((n_pix,), float("inf"), dtype=v.dtype, device=v.device).index_put((idx,), depth)
    return bary, dep
