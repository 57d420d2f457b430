"""Rasterizer behaviour (pure-torch backend): coverage, depth order, barycentrics, gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from strata.core.render import get_rasterizer, orthographic_view, perspective_view
from strata.core.render.primitives import box, grid_plane, uv_sphere
from strata.core.render.torch_raster import TorchRasterizer


@pytest.fixture(scope="module")
def rast() -> TorchRasterizer:
    r = get_rasterizer("torch")
    assert isinstance(r, TorchRasterizer)
    return r


def _centres(n: int) -> np.ndarray:
    return np.arange(n) + 0.5


def test_cube_front_silhouette_is_exact(rast):
    m = box(1.0)
    cam = orthographic_view(0, width=128, height=96, scale=60.3)
    frags = rast.rasterize(cam.to_screen(torch.tensor(m["verts"], dtype=torch.float32)), m["faces"], 96, 128)
    # Expected: pixel centres inside the projected square [c - 30.15, c + 30.15].
    cx = np.abs(_centres(128) - 64) < 30.15
    cy = np.abs(_centres(96) - 48) < 30.15
    expected = cy[:, None] & cx[None, :]
    assert np.array_equal(frags.mask.numpy(), expected)
    # The visible surface is the front face (y = -0.5): depth -0.5 relative to the centre.
    assert torch.allclose(frags.depth[frags.mask], torch.tensor(-0.5), atol=1e-5)
    assert torch.isinf(frags.depth[~frags.mask]).all()


def test_sphere_silhouette_matches_disk(rast):
    m = uv_sphere(0.8, rings=48, segments=96)
    cam = orthographic_view(25, 10, width=200, height=200, scale=100.0)
    frags = rast.rasterize(cam.to_screen(m["verts"]), m["faces"], 200, 200)
    yy, xx = np.meshgrid(_centres(200), _centres(200), indexing="ij")
    disk = (xx - 100) ** 2 + (yy - 100) ** 2 < 80.0**2
    got = frags.mask.numpy()
    iou = (got & disk).sum() / (got | disk).sum()
    assert iou > 0.995
    assert abs(got.sum() - math.pi * 80**2) / (math.pi * 80**2) < 0.01


def test_barycentrics_sum_to_one_and_reproduce_pixel_centres(rast):
    m = uv_sphere(0.8, rings=16, segments=32)
    cam = perspective_view(30, 20, distance=3.0, fov_y=40, width=96, height=80)
    screen = torch.tensor(cam.to_screen(m["verts"]), dtype=torch.float64)
    frags = rast.rasterize(screen, m["faces"], 80, 96, perspective=True)
    b = frags.bary[frags.mask]
    assert torch.allclose(b.sum(-1), torch.ones(len(b), dtype=b.dtype), atol=1e-9)
    assert (b > -1e-4).all()
    # Perspective-correct barycentrics interpolate world points on the true surface ray:
    # the interpolated 3D point must project back onto the pixel centre.
    world = rast.interpolate(torch.tensor(m["verts"]), frags)[frags.mask]
    proj = torch.tensor(cam.project(world.numpy()))
    yy, xx = torch.nonzero(frags.mask, as_tuple=True)
    assert torch.allclose(proj[:, 0], xx.double() + 0.5, atol=1e-6)
    assert torch.allclose(proj[:, 1], yy.double() + 0.5, atol=1e-6)
    # And the reported depth is that point's camera depth.
    assert torch.allclose(frags.depth[frags.mask], torch.tensor(cam.to_screen(world.numpy())[:, 2]), atol=1e-9)


@pytest.mark.parametrize("order", [(0, 1), (1, 0)])
def test_nearer_triangle_wins(rast, order):
    # Two overlapping screen triangles; the second is nearer (smaller depth) on the left
    # half only because it is tilted, so the winner flips across the image.
    verts = torch.tensor(
        [[2, 2, 1.0], [30, 2, 1.0], [2, 30, 1.0], [2, 2, 0.0], [30, 2, 2.0], [2, 30, 0.0]], dtype=torch.float32
    )
    tris = [[0, 1, 2], [3, 4, 5]]
    faces = torch.tensor([tris[i] for i in order])
    frags = rast.rasterize(verts, faces, 32, 32)
    ids = frags.tri_id
    near_id = order.index(1)
    far_id = order.index(0)
    assert ids[4, 4] == near_id  # x = 4.5: tilted triangle depth 0.18 < 1
    assert ids[4, 20] == far_id  # x = 20.5: tilted triangle depth 1.33 > 1
    assert frags.depth[4, 20] == pytest.approx(1.0)
    assert frags.depth[4, 4] == pytest.approx((4.5 - 2) / 28 * 2, abs=1e-5)


def test_shared_edges_leave_no_cracks_or_gaps(rast):
    plane = grid_plane(n=23, size=1.0)
    cam = orthographic_view(0, 90, width=100, height=100, scale=81.7)  # looking straight down
    frags = rast.rasterize(cam.to_screen(plane["verts"]), plane["faces"], 100, 100)
    inside = np.abs(_centres(100) - 50) < 81.7 / 2
    assert np.array_equal(frags.mask.numpy(), inside[:, None] & inside[None, :])


def _reference_raster(screen: np.ndarray, faces: np.ndarray, h: int, w: int) -> np.ndarray:
    """Slow per-triangle reference: nearest triangle per pixel centre (ties: lower id)."""
    ids = -np.ones((h, w), dtype=np.int64)
    zbuf = np.full((h, w), np.inf)
    yy, xx = np.meshgrid(_centres(h), _centres(w), indexing="ij")
    for t, (a, b, c) in enumerate(faces):
        pa, pb, pc = screen[a], screen[b], screen[c]
        det = (pb[0] - pa[0]) * (pc[1] - pa[1]) - (pb[1] - pa[1]) * (pc[0] - pa[0])
        if abs(det) < 1e-9:
            continue
        l1 = ((xx - pa[0]) * (pc[1] - pa[1]) - (yy - pa[1]) * (pc[0] - pa[0])) / det
        l2 = ((pb[0] - pa[0]) * (yy - pa[1]) - (pb[1] - pa[1]) * (xx - pa[0])) / det
        l0 = 1 - l1 - l2
        inside = (l0 >= 0) & (l1 >= 0) & (l2 >= 0)
        z = l0 * pa[2] + l1 * pb[2] + l2 * pc[2]
        better = inside & (z < zbuf)
        ids[better], zbuf[better] = t, z[better]
    return ids


def test_random_soup_matches_reference(rast):
    rng = np.random.default_rng(3)
    n = 60
    centres = rng.uniform(-5, 45, size=(n, 1, 2))
    screen = np.concatenate([centres + rng.normal(scale=8, size=(n, 3, 2)), rng.uniform(0, 10, (n, 3, 1))], -1)
    screen = screen.reshape(-1, 3)
    faces = np.arange(3 * n).reshape(n, 3)
    expected = _reference_raster(screen, faces, 40, 48)
    got = rast.rasterize(torch.tensor(screen), faces, 40, 48).tri_id.numpy()
    # Pixels whose centre lies on a triangle edge may legitimately differ; they are rare.
    assert (got == expected).mean() > 0.998


def test_chunked_equals_single_batch():
    m = uv_sphere(1.0, rings=24, segments=48)
    cam = orthographic_view(40, 15, width=120, height=120, scale=50.0)
    s = cam.to_screen(m["verts"])
    a = TorchRasterizer(budget=1 << 22).rasterize(s, m["faces"], 120, 120)
    b = TorchRasterizer(budget=500).rasterize(s, m["faces"], 120, 120)
    assert torch.equal(a.tri_id, b.tri_id)


def test_backface_culling(rast):
    m = uv_sphere(0.8, rings=24, segments=48)
    cam = orthographic_view(0, width=64, height=64, scale=30.0)
    s = cam.to_screen(m["verts"])
    plain = rast.rasterize(s, m["faces"], 64, 64)
    culled = rast.rasterize(s, m["faces"], 64, 64, cull_backfaces=True)
    assert torch.equal(plain.mask, culled.mask)
    assert torch.equal(plain.tri_id, culled.tri_id)  # the nearest surface faces the camera
    assert plain.depth[32, 32] == pytest.approx(-0.8, abs=0.01)
    # Flipped winding: now only the far hemisphere faces the camera (we see its inside).
    inverted = rast.rasterize(s, m["faces"][:, ::-1].copy(), 64, 64, cull_backfaces=True)
    assert torch.equal(inverted.mask, plain.mask)
    assert inverted.depth[32, 32] == pytest.approx(0.8, abs=0.01)


def test_clip_space_input_matches_screen(rast):
    m = uv_sphere(0.8, rings=12, segments=24)
    cam = orthographic_view(10, width=50, height=40, scale=20.0)
    s = torch.tensor(cam.to_screen(m["verts"]), dtype=torch.float32)
    clip = torch.stack([s[:, 0] / 50 * 2 - 1, s[:, 1] / 40 * 2 - 1, s[:, 2], torch.ones(len(s))], 1)
    a = rast.rasterize(s, m["faces"], 40, 50)
    b = rast.rasterize(clip, m["faces"], 40, 50)
    assert torch.equal(a.tri_id, b.tri_id)


def test_offscreen_and_degenerate_geometry(rast):
    verts = torch.tensor([[-50, -50, 0], [-40, -50, 0], [-50, -40, 0], [5, 5, 0], [5, 5, 0], [6, 6, 0.0]])
    frags = rast.rasterize(verts, torch.tensor([[0, 1, 2], [3, 4, 5]]), 16, 16)
    assert not frags.mask.any()
    empty = rast.rasterize(verts, torch.zeros((0, 3), dtype=torch.long), 8, 8)
    assert not empty.mask.any()


def test_interpolation_gradients_reach_attributes_and_positions(rast):
    m = uv_sphere(0.8, rings=12, segments=24)
    cam = orthographic_view(0, width=48, height=48, scale=25.0)
    verts = torch.tensor(m["verts"], dtype=torch.float64, requires_grad=True)
    colours = torch.rand(len(m["verts"]), 3, dtype=torch.float64, requires_grad=True)
    img, frags = rast.render_attributes(verts, m["faces"], cam, colours)
    assert img.shape == (48, 48, 3)
    img.sum().backward()
    # d(sum of image)/d(colour of v) = sum of v's barycentric weights over the image.
    w = torch.zeros(len(m["verts"]), dtype=torch.float64)
    w.index_add_(0, frags.faces[frags.tri_id[frags.mask]].reshape(-1), frags.bary[frags.mask].reshape(-1).detach())
    assert torch.allclose(colours.grad, w[:, None].expand(-1, 3))
    assert verts.grad is not None and verts.grad.abs().sum() > 0


def test_per_corner_attributes_use_their_own_faces(rast):
    m = box(1.0)
    cam = orthographic_view(0, width=40, height=40, scale=20.0)
    frags = rast.rasterize(cam.to_screen(m["verts"]), m["faces"], 40, 40)
    uv = rast.interpolate(torch.tensor(m["uvs"], dtype=torch.float32), frags, m["uv_faces"])
    # The front face maps to the first UV cell: u in [0, 1/3], v in [1/2, 1].
    inside = uv[frags.mask]
    assert (inside[:, 0] < 1 / 3).all() and (inside[:, 1] > 0.5).all()
    # Left image edge is u0 (front face seen from outside runs -X -> +X left to right).
    assert uv[20, 12, 0] < uv[20, 28, 0]
    # Top of the image is the top of the texture cell (v up).
    assert uv[12, 20, 1] > uv[28, 20, 1]
