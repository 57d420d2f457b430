"""Projection conventions of strata.core.render.camera (Z-up, person faces -Y)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from strata.core.render import (
    PSHUMAN_AZIMUTHS,
    orbit_rotation,
    orbit_views,
    orthographic_view,
    perspective_view,
    weak_perspective_camera,
)


def _front(size: int = 100):
    return orthographic_view(0, width=size, height=size, scale=10.0)


def test_front_view_axes():
    cam = _front()
    centre, px, pz = cam.project(np.array([[0.0, 0, 0], [1.0, 0, 0], [0, 0, 1.0]]))
    assert np.allclose(centre, [50, 50])  # world origin -> image centre (pixel corner 50,50)
    assert px[0] > centre[0] and np.isclose(px[1], centre[1])  # +X (person's left) is image right
    assert pz[1] < centre[1] and np.isclose(pz[0], centre[0])  # +Z (up) is above: smaller y
    # The person faces -Y, towards the front camera: -Y is nearer (smaller depth).
    d = cam.to_screen(np.array([[0, -1.0, 0], [0, 1.0, 0]]))[:, 2]
    assert d[0] < d[1]


@pytest.mark.parametrize(
    ("azimuth", "camera_side"),
    [(0, (0, -1, 0)), (90, (1, 0, 0)), (180, (0, 1, 0)), (270, (-1, 0, 0))],
)
def test_azimuth_places_camera(azimuth: float, camera_side: tuple[int, int, int]):
    cam = orthographic_view(azimuth, width=64, height=64, scale=10.0)
    depth = cam.to_screen(np.array([camera_side, [-c for c in camera_side]], dtype=float))[:, 2]
    assert depth[0] < depth[1]  # the point on the camera's side is nearer
    # Up stays up in every orbit view.
    up = cam.project(np.array([[0, 0, 0.0], [0, 0, 1.0]]))
    assert up[1, 1] < up[0, 1] and np.isclose(up[1, 0], up[0, 0])


def test_azimuth_90_shows_persons_left_side_facing_image_left():
    cam = orthographic_view(90, width=64, height=64, scale=10.0)
    front, back = cam.project(np.array([[0, -1.0, 0], [0, 1.0, 0]]))
    assert front[0] < back[0]  # the person's front (-Y) is on the image left
    assert set(PSHUMAN_AZIMUTHS) == {0, 45, 90, 180, 270, 315}


def test_rotations_are_proper():
    for az in (0, 33, 90, 200):
        for el in (-60, 0, 45, 90):
            r = orbit_rotation(az, el)
            assert np.allclose(r @ r.T, np.eye(3), atol=1e-12)
            assert np.isclose(np.linalg.det(r), 1.0)
            assert np.isclose(r[0, 2], 0.0)  # no roll: image x stays horizontal


def test_pixel_centre_convention():
    cam = _front(10)
    # A point landing on pixel (3, 7)'s centre has coordinates (3.5, 7.5).
    p = cam.project(np.array([[(3.5 - 5) / 10, 0, -(7.5 - 5) / 10]]))[0]
    assert np.allclose(p, [3.5, 7.5])


def test_numpy_in_numpy_out_and_torch_grad():
    cam = _front()
    assert isinstance(cam.project(np.zeros((2, 3))), np.ndarray)
    scale = torch.tensor(80.0, requires_grad=True)
    trans = torch.tensor([3.0, -2.0], requires_grad=True)
    wp = weak_perspective_camera(scale, trans, width=100, height=100)
    p = wp.project(torch.tensor([[0.5, 0.0, 0.25]]))
    assert torch.allclose(p, torch.tensor([[50 + 3 + 40.0, 50 - 2 - 20.0]]))
    p.sum().backward()
    assert torch.allclose(scale.grad, torch.tensor(0.5 - 0.25))
    assert torch.allclose(trans.grad, torch.tensor([1.0, 1.0]))


def test_perspective_projection():
    cam = perspective_view(0, distance=3.0, focal=100.0, width=200, height=100)
    s = cam.to_screen(np.array([[0, 0, 0.0], [0.3, 0, 0], [0.3, 1.0, 0], [0, 0, 0.3]]))
    assert np.allclose(s[0], [100, 50, 3.0])
    assert np.isclose(s[1, 0], 100 + 100 * 0.3 / 3.0)
    assert 100 < s[2, 0] < s[1, 0]  # farther -> closer to the centre
    assert s[3, 1] < 50  # up is up


def test_resized_keeps_framing():
    cam = orthographic_view(30, width=100, height=80, scale=20.0)
    pts = np.random.default_rng(0).normal(size=(5, 3))
    a = cam.project(pts) / [100, 80]
    b = cam.resized(250, 200).project(pts) / [250, 200]
    assert np.allclose(a, b)
    pc = perspective_view(10, distance=4.0, fov_y=40, width=100, height=80)
    assert np.allclose(pc.project(pts) / [100, 80], pc.resized(50, 40).project(pts) / [50, 40])


def test_orbit_views_count():
    cams = orbit_views(PSHUMAN_AZIMUTHS, width=32, height=32, extent=4.0)
    assert len(cams) == 6 and all(c.width == 32 for c in cams)
