"""Shaded/texture renders, normal maps and photo -> UV texture projection."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from strata.core.render import get_rasterizer, orthographic_view
from strata.core.render.primitives import box, uv_sphere
from strata.core.render.shade import normal_map, render_rgba, sample_texture, shade, turnaround
from strata.core.render.texture import project_image_to_texture, rasterize_uv, texel_visibility


def _checker(n: int = 64, cells: int = 8) -> np.ndarray:
    i = (np.arange(n) * cells // n)
    board = (i[:, None] + i[None, :]) % 2
    rgb = np.stack([board * 255, np.full_like(board, 60), (1 - board) * 255], -1)
    return rgb.astype(np.uint8)


def test_render_rgba_format_and_background():
    m = uv_sphere(0.8, rings=16, segments=32)
    cam = orthographic_view(0, width=40, height=30, scale=15.0)
    img = render_rgba(m["verts"], m["faces"], cam)
    assert img.shape == (30, 40, 4) and img.dtype == np.uint8
    assert img[15, 20, 3] == 255 and img[0, 0, 3] == 0
    assert 0 < img[0:30, 0:40, 3].astype(float).mean() < 255
    # Antialiased edge: some partial alpha exists with ssaa.
    assert ((img[..., 3] > 0) & (img[..., 3] < 255)).any()
    solid = render_rgba(m["verts"], m["faces"], cam, background=(1, 1, 1))
    assert (solid[..., 3] == 255).all() and (solid[0, 0, :3] == 255).all()


def test_lambert_brighter_towards_light():
    m = uv_sphere(0.8, rings=24, segments=48)
    cam = orthographic_view(0, width=64, height=64, scale=30.0)
    img = shade(m["verts"], m["faces"], cam, light_dir=(1.0, 0.0, 0.0), ambient=0.1)
    # Light from +X: the image right (person's left, +X) is lit, the left is only ambient.
    assert img[32, 50, 0] > 0.5 and img[32, 14, 0] == pytest.approx(0.1 * 0.72, abs=0.01)


def test_texture_colours_are_sampled_with_v_up():
    m = box(1.0)
    tex = np.zeros((60, 90, 3), np.uint8)
    tex[:30, :30] = (255, 0, 0)  # top-left cell (front face, -Y) red
    tex[:15, :30, 1] = 255  # ... its upper half also green -> yellow
    cam = orthographic_view(0, width=50, height=50, scale=30.0)
    img = shade(m["verts"], m["faces"], cam, texture=tex, uvs=m["uvs"], uv_faces=m["uv_faces"], ambient=1.0)
    top, bottom = img[15, 25, :3], img[35, 25, :3]
    assert torch.allclose(top, torch.tensor([1.0, 1.0, 0.0]), atol=0.02)  # v up: the texture's top is up
    assert torch.allclose(bottom, torch.tensor([1.0, 0.0, 0.0]), atol=0.02)


def test_sample_texture_corners():
    tex = torch.arange(4.0).reshape(2, 2, 1)  # rows: top [0, 1], bottom [2, 3]
    uv = torch.tensor([[0.25, 0.75], [0.75, 0.75], [0.25, 0.25], [0.75, 0.25]])
    assert torch.allclose(sample_texture(tex, uv)[:, 0], torch.tensor([0.0, 1.0, 2.0, 3.0]))


def test_normal_map_frames():
    m = uv_sphere(0.8, rings=24, segments=48)
    cam = orthographic_view(0, width=64, height=64, scale=30.0)
    n, mask = normal_map(m["verts"], m["faces"], cam, frame="camera_gl")
    assert torch.allclose(n[32, 32], torch.tensor([0.0, 0.0, 1.0]), atol=0.05)  # facing the viewer
    assert n[32, 55, 0] > 0.7 and n[9, 32, 1] > 0.7  # right is +x, up is +y
    nw, _ = normal_map(m["verts"], m["faces"], cam, frame="world")
    assert nw[32, 32, 1] < -0.95  # front of the sphere faces -Y
    assert mask.sum() > 0


def test_turnaround_views():
    m = box((0.4, 0.2, 1.0))
    imgs = turnaround(m["verts"], m["faces"], (0, 90), size=32, ssaa=1)
    wide = (imgs[0][..., 3] > 0).any(0).sum()
    narrow = (imgs[1][..., 3] > 0).any(0).sum()
    assert wide > 1.5 * narrow  # 0.4 m across from the front, 0.2 m from the side


def test_uv_rasterization_covers_atlas_cells():
    m = box(1.0)
    frags = rasterize_uv(m["uvs"], m["uv_faces"], (60, 90))  # 3 x 2 cells of 30 x 30 texels
    cover = frags.mask.numpy()
    assert cover[15, 15] and cover[45, 75] and not cover[0, 0]
    assert 0.8 < cover.mean() < 1.0


def test_texel_visibility_front_face_only():
    m = box(1.0)
    cam = orthographic_view(0, width=64, height=64, scale=30.0)
    vis = texel_visibility(m["verts"], m["faces"], m["uvs"], m["uv_faces"], cam, (60, 90))
    v = vis.visible.numpy()
    assert v[5:25, 5:25].all()  # front (-Y) cell
    assert not v[:, 30:].any() and not v[30:, :].any()  # sides, back, top, bottom
    assert torch.allclose(vis.cos[15, 15], torch.tensor(1.0), atol=1e-5)


def test_occluded_texels_are_not_visible():
    # A small box in front of a big one hides part of the big box's front face.
    big, small = box(1.0), box((0.4, 0.2, 0.4), center=(0, -0.8, 0))
    verts = np.concatenate([big["verts"], small["verts"]])
    faces = np.concatenate([big["faces"], small["faces"] + 8])
    uvs = np.concatenate([big["uvs"], small["uvs"]])
    uv_faces = np.concatenate([big["uv_faces"], small["uv_faces"] + len(big["uvs"])])
    cam = orthographic_view(0, width=64, height=64, scale=30.0)
    vis = texel_visibility(verts, faces, uvs, uv_faces, cam, 90)
    # The texels of the big box's front face behind the small box: the centre of that cell.
    centre_texel = (vis.position[..., 0].abs() < 0.15) & (vis.position[..., 2].abs() < 0.15)
    centre_texel &= (vis.position[..., 1] + 0.5).abs() < 1e-4
    assert centre_texel.any() and not vis.visible[centre_texel].any()
    assert vis.visible[(vis.position[..., 1] + 0.5).abs() < 1e-4].any()  # the rest of the face is seen


def test_project_photo_back_to_texture_round_trip():
    m = uv_sphere(0.8, rings=32, segments=64)
    tex = _checker(128, 8)
    cam = orthographic_view(0, width=256, height=256, scale=140.0)
    photo = render_rgba(m["verts"], m["faces"], cam, texture=tex, uvs=m["uvs"], uv_faces=m["uv_faces"],
                        ambient=1.0, ssaa=1)
    baked, weight = project_image_to_texture(photo[..., :3], m["verts"], m["faces"], m["uvs"], m["uv_faces"],
                                             cam, 128)
    good = weight.numpy() > 0.5  # squarely seen texels
    assert good.sum() > 1000
    err = np.abs(baked.numpy()[good] - tex[good] / 255.0)
    assert np.median(err) < 0.02
    # The back half of the sphere (u in (0, 0.5): +Y side) is never visible from the front.
    assert weight.numpy()[:, 70:120].max() > 0 and (weight.numpy()[:, 5:60] == 0).all()


def test_shade_is_differentiable_in_colours():
    m = uv_sphere(0.8, rings=12, segments=24)
    cam = orthographic_view(0, width=32, height=32, scale=15.0)
    colours = torch.full((len(m["verts"]), 3), 0.5, requires_grad=True)
    img = shade(m["verts"], m["faces"], cam, vertex_colors=colours, rasterizer=get_rasterizer("torch"))
    img[..., :3].sum().backward()
    assert colours.grad is not None and colours.grad.sum() > 0
