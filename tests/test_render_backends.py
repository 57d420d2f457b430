"""Backend selection, and the nvdiffrast backend against the torch one (CUDA only)."""

from __future__ import annotations

import pytest
import torch

from strata.core.render import (
    BackendUnavailable,
    get_rasterizer,
    nvdiffrast_available,
    orthographic_view,
    perspective_view,
    resolve_backend,
)
from strata.core.render.primitives import uv_sphere

needs_nvdiffrast = pytest.mark.skipif(
    not nvdiffrast_available(), reason="nvdiffrast backend needs CUDA and nvdiffrast.torch (CPU-only here)"
)


def test_auto_picks_an_available_backend(monkeypatch):
    monkeypatch.delenv("STRATA_RASTER", raising=False)
    expected = "nvdiffrast" if nvdiffrast_available() else "torch"
    assert resolve_backend() == expected
    assert get_rasterizer().name == expected
    monkeypatch.setenv("STRATA_RASTER", "torch")
    assert get_rasterizer().name == "torch"
    with pytest.raises(BackendUnavailable, match="unknown rasterizer backend 'opengl'"):
        resolve_backend("opengl")


@pytest.mark.skipif(nvdiffrast_available(), reason="checks the error raised where nvdiffrast cannot run")
def test_nvdiffrast_unavailable_is_a_clear_error():
    with pytest.raises(BackendUnavailable, match="nvdiffrast"):
        get_rasterizer("nvdiffrast")


@needs_nvdiffrast
def test_nvdiffrast_matches_torch_backend():
    m = uv_sphere(0.8, rings=32, segments=64)
    cam = orthographic_view(30, 10, width=128, height=96, scale=50.0)
    cpu, gpu = get_rasterizer("torch"), get_rasterizer("nvdiffrast")
    verts = torch.tensor(m["verts"], dtype=torch.float32)
    a = cpu.rasterize(cam.to_screen(verts), m["faces"], 96, 128)
    b = gpu.rasterize(cam.to_screen(verts.cuda()), m["faces"], 96, 128)
    assert (a.tri_id == b.tri_id.cpu()).float().mean() > 0.99
    both = a.mask & b.mask.cpu()
    assert torch.allclose(a.depth[both], b.depth.cpu()[both], atol=1e-4)
    ia = cpu.interpolate(verts, a)
    ib = gpu.interpolate(verts.cuda(), b).cpu()
    assert torch.allclose(ia[both], ib[both], atol=1e-3)


@needs_nvdiffrast
def test_nvdiffrast_silhouette_gradients():
    m = uv_sphere(0.8, rings=32, segments=64)
    cam = orthographic_view(0, width=64, height=64, scale=30.0)
    gpu = get_rasterizer("nvdiffrast")
    r = torch.tensor(1.0, device="cuda", requires_grad=True)
    sil = gpu.silhouette(torch.tensor(m["verts"], dtype=torch.float32, device="cuda") * r, m["faces"], cam)
    sil.sum().backward()
    assert r.grad is not None and float(r.grad) > 0  # growing the sphere grows the silhouette


class _FakeDr:
    """Stand-in for ``nvdiffrast.torch`` on CPU, following its documented conventions
    (rast = (u, v, z/w, triangle_id + 1), row j at y_ndc = -1 + (2 j + 1) / H, attribute
    = u a0 + v a1 + (1 - u - v) a2). It checks our mapping code, not nvdiffrast itself."""

    class RasterizeCudaContext:
        def __init__(self, device=None):
            self.device = device

    @staticmethod
    def rasterize(ctx, pos, tri, resolution, ranges=None, grad_db=True):
        h, w = resolution
        p = pos[0]
        jj, ii = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
        xn, yn = (2 * ii + 1) / w - 1, (2 * jj + 1) / h - 1  # pixel centres in NDC
        ndc = p[:, :3] / p[:, 3:4]
        rast = torch.zeros(1, h, w, 4)
        best = torch.full((h, w), float("inf"))
        for t, (a, b, c) in enumerate(tri.long().tolist()):
            pa, pb, pc = ndc[a], ndc[b], ndc[c]
            det = (pb[0] - pa[0]) * (pc[1] - pa[1]) - (pb[1] - pa[1]) * (pc[0] - pa[0])
            if abs(float(det)) < 1e-12:
                continue
            l1 = ((xn - pa[0]) * (pc[1] - pa[1]) - (yn - pa[1]) * (pc[0] - pa[0])) / det
            l2 = ((pb[0] - pa[0]) * (yn - pa[1]) - (pb[1] - pa[1]) * (xn - pa[0])) / det
            l0 = 1 - l1 - l2
            z = l0 * pa[2] + l1 * pb[2] + l2 * pc[2]
            hit = (l0 >= 0) & (l1 >= 0) & (l2 >= 0) & (z < best)
            # Perspective-correct barycentrics, as nvdiffrast reports them.
            q = torch.stack([l0 / p[a, 3], l1 / p[b, 3], l2 / p[c, 3]])
            q = q / q.sum(0)
            best = torch.where(hit, z, best)
            rast[0, hit] = torch.stack([q[0][hit], q[1][hit], z[hit], torch.full_like(z[hit], t + 1.0)], -1)
        return rast, torch.zeros(1, h, w, 0)

    @staticmethod
    def interpolate(attr, rast, tri, rast_db=None, diff_attrs=None):
        a = attr[0]
        ids = rast[0, ..., 3].long() - 1
        ok = ids >= 0
        corners = tri.long()[ids.clamp_min(0)]
        u, v = rast[0, ..., 0:1], rast[0, ..., 1:2]
        out = u * a[corners[..., 0]] + v * a[corners[..., 1]] + (1 - u - v) * a[corners[..., 2]]
        return (out * ok[..., None])[None], None

    @staticmethod
    def antialias(color, rast, pos, tri, topology_hash=None, pos_gradient_boost=1.0):
        return color

    @staticmethod
    def antialias_construct_topology_hash(tri):
        return None


def test_nvdiffrast_adapter_conventions_with_a_fake_module(monkeypatch):
    import sys

    from strata.core.render import nvdiffrast_backend

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setitem(sys.modules, "nvdiffrast", type(sys)("nvdiffrast"))
    monkeypatch.setitem(sys.modules, "nvdiffrast.torch", _FakeDr)
    gpu = nvdiffrast_backend.NvdiffrastRasterizer(device="cpu")
    cpu = get_rasterizer("torch")
    m = uv_sphere(0.8, rings=6, segments=10)
    for cam, persp in [
        (orthographic_view(30, 10, width=24, height=20, scale=10.0), False),
        (perspective_view(20, 5, distance=3.0, fov_y=45.0, width=24, height=20), True),
    ]:
        s = torch.tensor(cam.to_screen(m["verts"]), dtype=torch.float32)
        for cull in (False, True):
            a = cpu.rasterize(s, m["faces"], 20, 24, perspective=persp, cull_backfaces=cull)
            b = gpu.rasterize(s, m["faces"], 20, 24, perspective=persp, cull_backfaces=cull)
            assert (a.tri_id == b.tri_id).float().mean() > 0.98
            same = (a.tri_id == b.tri_id) & a.mask
            assert torch.allclose(a.bary[same], b.bary[same], atol=1e-4)
            assert torch.allclose(a.depth[same], b.depth[same], atol=1e-4)
            uv_a = cpu.interpolate(torch.tensor(m["uvs"], dtype=torch.float32), a, m["uv_faces"])
            uv_b = gpu.interpolate(torch.tensor(m["uvs"], dtype=torch.float32), b, m["uv_faces"])
            assert torch.allclose(uv_a[same], uv_b[same], atol=1e-4)
    sil = gpu.silhouette(torch.tensor(m["verts"], dtype=torch.float32), m["faces"], cam, sigma=0.0)
    assert torch.equal(sil > 0.5, cpu.rasterize(cam.to_screen(torch.tensor(m["verts"], dtype=torch.float32)),
                                                m["faces"], 20, 24, perspective=True).mask)
