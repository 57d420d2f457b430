"""Stage 7 (texture bake): photo colours land on the texels the camera sees, the rest is filled plausibly."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from strata.core.progress import Cancelled, Progress
from strata.core.reconstruct.texture import bake_texture
from strata.core.render import orthographic_view, texel_visibility
from strata.core.render.primitives import uv_sphere
from strata.core.render.shade import render_rgba
from strata.core.render.texture import fill_gutters, rasterize_uv

RED = np.array([220.0, 40.0, 30.0])
BLUE = np.array([30.0, 60.0, 210.0])


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _height_colours(z: np.ndarray) -> np.ndarray:
    """Red above z = 0.15, blue below -0.15, a linear blend between: symmetric front/back by design."""
    t = np.clip((z + 0.15) / 0.3, 0.0, 1.0)[..., None]
    return BLUE * (1 - t) + RED * t


def _texel_positions(mesh: dict, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(size, size, 3) 3D point of every texel and the (size, size) coverage, from the UV rasterizer."""
    frags = rasterize_uv(mesh["uvs"], mesh["uv_faces"], size)
    tri = frags.tri_id.numpy()
    bary = frags.bary.numpy()
    corners = mesh["verts"][mesh["faces"][np.maximum(tri, 0)]]  # (S, S, 3, 3)
    return (corners * bary[..., None]).sum(-2), tri >= 0


@pytest.fixture(scope="module")
def sphere_scene():
    """A UV sphere painted by height, photographed flat-lit (ambient 1) from the front."""
    mesh = uv_sphere(0.5, rings=48, segments=96)
    mesh["verts"] = mesh["verts"] * np.array([1.0, 0.8, 1.2])  # an ellipsoid, less symmetric than a sphere
    pos, covered = _texel_positions(mesh, 512)
    source = fill_gutters(_height_colours(pos[..., 2]), covered).astype(np.uint8)
    cam = orthographic_view(0, width=320, height=400, scale=300.0)
    rgba = render_rgba(mesh["verts"], mesh["faces"], cam, ssaa=2, texture=source, uvs=mesh["uvs"],
                       uv_faces=mesh["uv_faces"], ambient=1.0)
    return mesh, cam, rgba[..., :3].copy(), rgba[..., 3].astype(np.float32) / 255.0


def test_bake_shape_dtype_and_no_black(sphere_scene):
    mesh, cam, image, mask = sphere_scene
    tex = bake_texture(mesh["verts"], mesh["faces"], mesh["uvs"], mesh["uv_faces"], cam, image, mask, size=256)
    assert tex.shape == (256, 256, 3) and tex.dtype == np.uint8
    # Every texel, inside the islands and in the gutters, has a real colour (the source has no dark one).
    assert tex.max(axis=2).min() > 120


def test_visible_texels_match_and_back_is_mirrored(sphere_scene):
    mesh, cam, image, mask = sphere_scene
    size = 512
    tex = bake_texture(mesh["verts"], mesh["faces"], mesh["uvs"], mesh["uv_faces"], cam, image, mask, size=size)
    pos, covered = _texel_positions(mesh, size)
    truth = _height_colours(pos[..., 2])
    err = np.abs(tex.astype(np.float64) - truth).mean(-1)
    vis = texel_visibility(mesh["verts"], mesh["faces"], mesh["uvs"], mesh["uv_faces"], cam, size)
    front = vis.visible.numpy() & (vis.cos.numpy() > 0.5)
    assert front.sum() > 0.1 * covered.sum()
    assert err[front].mean() < 4.0, err[front].mean()
    # The back (never seen) gets the colour the front has at the same height.
    back = covered & (vis.cos.numpy() < -0.5)
    away = np.abs(pos[..., 2]) > 0.25  # off the red/blue transition band
    assert back.sum() > 0.1 * covered.sum()
    assert err[back & away].mean() < 12.0, err[back & away].mean()
    assert np.percentile(err[back & away], 95) < 40.0


def test_a_base_texture_fills_what_the_photo_does_not_show(sphere_scene):
    """With ``base`` (a body's painted skin under clothes), unseen texels take it instead of colours spread
    from the seen ones; seen texels still take the photo."""
    mesh, cam, image, mask = sphere_scene
    size = 256
    base = np.zeros((size, size, 3), np.uint8)
    base[..., 1] = 200  # green: no colour of the photo
    tex = bake_texture(mesh["verts"], mesh["faces"], mesh["uvs"], mesh["uv_faces"], cam, image, mask, size=size,
                       base=base)
    vis = texel_visibility(mesh["verts"], mesh["faces"], mesh["uvs"], mesh["uv_faces"], cam, size)
    pos, covered = _texel_positions(mesh, size)
    back = covered & (vis.cos.numpy() < -0.5)
    front = vis.visible.numpy() & (vis.cos.numpy() > 0.7)
    assert np.abs(tex[back].astype(float) - base[back]).max() <= 1
    truth = _height_colours(pos[..., 2])
    assert np.abs(tex[front].astype(float) - truth[front]).mean() < 6.0


def test_bake_on_body_is_seamless_and_fast():
    from strata.core.body import get_body_model
    from strata.core.render import framing_camera

    body = get_body_model("anny")
    with torch.no_grad():
        verts = body.forward(pose=body.pose_preset("A")[None]).vertices[0].numpy()
    mesh = {"verts": verts, "faces": np.asarray(body.faces), "uvs": body.uvs, "uv_faces": body.uv_faces}
    size = 1024
    pos, covered = _texel_positions(mesh, size)
    # Gutters filled, so that the render has no dark seam pixels for the bake to reproduce.
    source = fill_gutters(_height_colours((pos[..., 2] - 1.0) * 1.5), covered).astype(np.uint8)
    cam = framing_camera(verts, width=480, height=640)
    rgba = render_rgba(verts, body.faces, cam, texture=source, uvs=body.uvs, uv_faces=body.uv_faces, ambient=1.0)
    image, mask = rgba[..., :3].copy(), rgba[..., 3].astype(np.float32) / 255.0
    bake_texture(verts, body.faces, body.uvs, body.uv_faces, cam, image, mask, size=size)  # warm the UV cache
    start = time.perf_counter()
    tex = bake_texture(verts, body.faces, body.uvs, body.uv_faces, cam, image, mask, size=size)
    elapsed = time.perf_counter() - start
    assert tex.shape == (size, size, 3)
    assert tex.max(axis=2).min() > 100  # no black texel anywhere (islands or gutters)
    truth = _height_colours((pos[..., 2] - 1.0) * 1.5)
    err = np.abs(tex.astype(np.float64) - truth).mean(-1)
    vis = texel_visibility(verts, body.faces, body.uvs, body.uv_faces, cam, size)
    front = vis.visible.numpy() & (vis.cos.numpy() > 0.5)
    assert err[front].mean() < 6.0, err[front].mean()
    assert err[covered].mean() < 15.0, err[covered].mean()  # back and sides filled at the right height
    assert elapsed < 10.0  # ~0.3 s at 1024^2 on two idle cores; generous for shared CI machines


def test_cancellation_propagates(sphere_scene):
    mesh, cam, image, mask = sphere_scene

    class CancelAfter(Progress):
        def __init__(self, n: int) -> None:
            super().__init__()
            self.n = n

        def check(self) -> None:
            self.n -= 1
            if self.n < 0:
                raise Cancelled()

    with pytest.raises(Cancelled):
        bake_texture(mesh["verts"], mesh["faces"], mesh["uvs"], mesh["uv_faces"], cam, image, mask, size=64,
                     progress=CancelAfter(2))


def test_rejects_bad_inputs(sphere_scene):
    mesh, cam, image, mask = sphere_scene
    args = (mesh["verts"], mesh["faces"], mesh["uvs"], mesh["uv_faces"], cam)
    with pytest.raises(ValueError):
        bake_texture(*args, image, mask[:-1], size=64)
    with pytest.raises(ValueError):
        bake_texture(*args, image, mask, size=8)


def test_a_segmentation_mask_that_strays_does_not_paint_the_background(sphere_scene):
    """A mask 3 px wider than the person (as a segmentation model's can be) over a green background, and a
    surface 2 % wider to match (the clothed surface is fitted to that mask): with the 1 px margin a
    cut-out gets, green lands on the texture along the outline; with a margin of the mask's error no
    texel is green. :func:`mask_margin` gives 1 px for alpha and 0.5 % of the height otherwise."""
    import cv2

    from strata.core.reconstruct.texture import mask_margin

    mesh, cam, rgb, alpha = sphere_scene
    photo = (rgb * alpha[..., None] + np.array([0.0, 255.0, 0.0]) * (1 - alpha[..., None])).astype(np.uint8)
    wide = cv2.dilate((alpha > 0.5).astype(np.float32), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7)))

    wider = mesh["verts"] * np.array([1.02, 1.0, 1.02])

    def green_texels(margin: int) -> int:
        tex = bake_texture(wider, mesh["faces"], mesh["uvs"], mesh["uv_faces"], cam, photo, wide, size=256,
                           mask_margin_px=margin).astype(np.int32)
        return int((tex[..., 1] - np.maximum(tex[..., 0], tex[..., 2]) > 20).sum())

    assert green_texels(1) > 200, "the stray border should have shown with a cut-out's margin"
    assert green_texels(5) == 0
    assert mask_margin(wide, from_alpha=True) == 1
    person = np.zeros((1200, 500), np.float32)
    person[100:1100, 100:400] = 1.0
    assert mask_margin(person, from_alpha=False) == 5
    assert mask_margin(np.zeros((50, 50), np.float32), from_alpha=False) == 2
    with pytest.raises(ValueError, match="mask_margin_px"):
        bake_texture(mesh["verts"], mesh["faces"], mesh["uvs"], mesh["uv_faces"], cam, photo, wide, size=64,
                     mask_margin_px=-1)


def test_views_from_all_sides_bake_the_back_too():
    """Six PSHuman-style views of a body painted front/back differently: the multi-view bake gets the back's
    own colour, which the single-photo bake can only guess from the sides."""
    from dataclasses import replace

    from strata.core.body import get_body_model
    from strata.core.reconstruct.texture import bake_texture_views
    from strata.core.render import framing_camera, orbit_rotation
    from strata.core.views import PSHUMAN_VIEW_WEIGHTS, PSHUMAN_VIEWS, View

    body = get_body_model("anny")
    with torch.no_grad():
        verts = body.forward(pose=body.pose_preset("A")[None]).vertices[0].numpy()
    mesh = {"verts": verts, "faces": np.asarray(body.faces), "uvs": body.uvs, "uv_faces": body.uv_faces}
    size = 512
    pos, covered = _texel_positions(mesh, size)
    truth = np.where((pos[..., 1] > 0.0)[..., None], BLUE, RED)  # the back (+Y) blue, the front red
    source = fill_gutters(truth.copy(), covered).astype(np.uint8)
    front = framing_camera(verts, width=384, height=512)
    views = []
    for name, azimuth in PSHUMAN_VIEWS.items():
        cam = replace(front, rotation=orbit_rotation(azimuth))
        rgba = render_rgba(verts, body.faces, cam, texture=source, uvs=body.uvs, uv_faces=body.uv_faces, ambient=1.0)
        views.append(View(name, rgba[..., :3].copy(), rgba[..., 3].astype(np.float32) / 255.0, camera=cam,
                          exact_mask=True, weight=PSHUMAN_VIEW_WEIGHTS[name]))
    many = bake_texture_views(verts, body.faces, body.uvs, body.uv_faces, views, size=size)
    one = bake_texture_views(verts, body.faces, body.uvs, body.uv_faces, views[:1], size=size)
    vis = texel_visibility(verts, body.faces, body.uvs, body.uv_faces, views[3].camera, size)
    back = vis.visible.numpy() & (vis.cos.numpy() > 0.5)
    err_many = np.abs(many.astype(np.float64) - truth).mean(-1)
    err_one = np.abs(one.astype(np.float64) - truth).mean(-1)
    print(f"back texels: six views {err_many[back].mean():.1f}, the front alone {err_one[back].mean():.1f}")
    assert err_many[back].mean() < 10.0 and err_one[back].mean() > 60.0
    assert err_many[covered].mean() < 20.0
