"""Differentiable soft silhouette: values, gradients, and that fitting converges."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from strata.core.render import (
    boundary_distance_field,
    get_rasterizer,
    orthographic_view,
    outline_points,
    perspective_view,
    sample_field,
    soft_iou_loss,
    weak_perspective_camera,
)
from strata.core.render.primitives import box, uv_sphere

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def rast():
    return get_rasterizer("torch")


@pytest.fixture(scope="module")
def sphere():
    m = uv_sphere(1.0, rings=32, segments=64)
    return torch.tensor(m["verts"], dtype=torch.float32), torch.tensor(m["faces"])


def test_soft_silhouette_values_and_area(rast, sphere):
    verts, faces = sphere
    cam = orthographic_view(0, width=96, height=96, scale=30.0)
    sil = rast.silhouette(verts, faces, cam)
    hard = rast.rasterize(cam.to_screen(verts), faces, 96, 96).mask
    assert sil.shape == (96, 96) and sil.min() >= 0 and sil.max() <= 1
    assert abs(float(sil.sum()) - math.pi * 30**2) / (math.pi * 30**2) < 0.01
    # Exactly the hard mask more than ~3 sigma away from the outline.
    yy, xx = np.meshgrid(np.arange(96) + 0.5, np.arange(96) + 0.5, indexing="ij")
    far = torch.tensor(np.abs(np.hypot(xx - 48, yy - 48) - 30) > 4.5)
    assert torch.equal(sil[far], hard[far].float())
    # Soft where it should be: ~0.5 on the outline.
    on_edge = torch.tensor(np.abs(np.hypot(xx - 48, yy - 48) - 30) < 0.15)
    assert torch.allclose(sil[on_edge], torch.tensor(0.5), atol=0.08)


def test_area_gradient_matches_analytic(rast, sphere):
    verts, faces = sphere
    scale = 30.0
    cam = orthographic_view(20, 10, width=96, height=96, scale=scale)
    r = torch.tensor(0.9, requires_grad=True)
    rast.silhouette(verts * r, faces, cam).sum().backward()
    expected = 2 * math.pi * 0.9 * scale**2  # d(pi (r s)^2)/dr
    assert r.grad is not None
    assert abs(float(r.grad) - expected) / expected < 0.05


def test_gradients_only_touch_outline_vertices(rast, sphere):
    verts, faces = sphere
    cam = orthographic_view(0, width=64, height=64, scale=25.0)
    v = verts.clone().requires_grad_(True)
    rast.silhouette(v, faces, cam).sum().backward()
    touched = v.grad.abs().sum(1) > 0
    # Outline of a sphere seen along Y: vertices with |y| small.
    assert touched.any()
    assert (verts[touched, 1].abs() < 0.25).all()


def test_fit_translation_to_target_silhouette(rast, sphere):
    verts, faces = sphere
    verts = verts * 0.5
    cam = orthographic_view(0, width=64, height=64, scale=40.0)
    goal = torch.tensor([0.12, 0.0, -0.08])  # 4.8 px right, 3.2 px down
    with torch.no_grad():
        target = rast.silhouette(verts + goal, faces, cam)
    t = torch.zeros(3, requires_grad=True)
    opt = torch.optim.Adam([t], lr=0.01)
    for _ in range(80):
        opt.zero_grad()
        loss = soft_iou_loss(rast.silhouette(verts + t, faces, cam), target)
        loss.backward()
        opt.step()
    # Two soft masks never reach IoU 1: compare with the loss of the target against itself.
    floor = float(soft_iou_loss(target, target))
    assert float(loss.detach()) < floor + 0.005
    t = t.detach()
    assert abs(float(t[0]) - 0.12) < 0.005 and abs(float(t[2]) + 0.08) < 0.005  # < 0.2 px


def test_fit_weak_perspective_camera_to_box(rast):
    m = box(1.0)
    verts, faces = torch.tensor(m["verts"], dtype=torch.float32), torch.tensor(m["faces"])
    with torch.no_grad():
        target = rast.silhouette(verts, faces, weak_perspective_camera(30.0, (5.0, -3.0), width=80, height=80))
    scale = torch.tensor(25.0, requires_grad=True)
    trans = torch.zeros(2, requires_grad=True)
    opt = torch.optim.Adam([{"params": [scale], "lr": 0.5}, {"params": [trans], "lr": 0.3}])
    for _ in range(100):
        opt.zero_grad()
        cam = weak_perspective_camera(scale, trans, width=80, height=80)
        loss = soft_iou_loss(rast.silhouette(verts, faces, cam), target)
        loss.backward()
        opt.step()
    assert abs(float(scale.detach()) - 30.0) < 0.5
    assert torch.allclose(trans.detach(), torch.tensor([5.0, -3.0]), atol=0.4)


def test_perspective_silhouette_grows_as_camera_approaches(rast, sphere):
    verts, faces = sphere
    cam = perspective_view(0, distance=4.0, fov_y=40.0, width=64, height=64)
    shift = torch.zeros(3, requires_grad=True)
    rast.silhouette(verts * 0.6 + shift, faces, cam).sum().backward()
    # The camera sits on -Y: moving the sphere along +Y takes it away and shrinks it.
    with torch.no_grad():
        step = torch.tensor([0.0, 0.2, 0.0])
        a = rast.silhouette(verts * 0.6 + step, faces, cam).sum()
        b = rast.silhouette(verts * 0.6 - step, faces, cam).sum()
    finite_diff = float(a - b) / 0.4
    assert shift.grad[1] < 0
    assert abs(float(shift.grad[1]) - finite_diff) / abs(finite_diff) < 0.1


def test_outline_chamfer_pulls_from_far_away(rast, sphere):
    verts, faces = sphere
    verts = verts * 0.2  # 8 px radius
    cam = orthographic_view(0, width=64, height=64, scale=40.0)
    goal = torch.tensor([0.5, 0.0, 0.3])  # 20 px right, 12 px down: no overlap at the start
    with torch.no_grad():
        target = rast.silhouette(verts + goal, faces, cam) > 0.5
    field = boundary_distance_field(target)
    t = torch.zeros(3, requires_grad=True)
    # The soft IoU alone has no gradient here: the silhouettes do not touch.
    soft_iou_loss(rast.silhouette(verts + t, faces, cam), target.float()).backward()
    assert float(t.grad.abs().sum()) == 0.0
    opt = torch.optim.Adam([t], lr=0.02)
    for _ in range(120):
        opt.zero_grad()
        loss = sample_field(field, outline_points(rast, verts + t, faces, cam)).mean()
        loss.backward()
        opt.step()
    t = t.detach()
    assert abs(float(t[0]) - 0.5) < 0.02 and abs(float(t[2]) - 0.3) < 0.02  # < 0.8 px


def test_sample_field_pixel_centres():
    field = torch.arange(12.0).reshape(3, 4)
    pts = torch.tensor([[0.5, 0.5], [3.5, 2.5], [1.0, 0.5]])
    assert torch.allclose(sample_field(field, pts), torch.tensor([0.0, 11.0, 0.5]), atol=1e-5)
