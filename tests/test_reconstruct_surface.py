"""Stage 6 (clothed surface): the body deformed to the person's silhouette, smooth, unfolded, same topology.

Run as a script to *look* at both reconstruct stages on a real example photo (see ``_look`` below)::

    .venv/bin/python tests/test_reconstruct_surface.py 3930 --out /tmp/look
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from strata.core.progress import Cancelled, Progress
from strata.core.reconstruct.surface import fit_clothed_surface
from strata.core.render import OrthographicCamera, framing_camera, get_rasterizer, orthographic_view
from strata.core.render.camera import orbit_rotation
from strata.core.render.primitives import uv_sphere

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _silhouette(verts: np.ndarray, faces: np.ndarray, cam) -> np.ndarray:
    screen = torch.as_tensor(np.asarray(cam.to_screen(np.asarray(verts, np.float64)), np.float32))
    return get_rasterizer("torch").rasterize(screen, torch.as_tensor(faces), cam.height, cam.width).mask.numpy()


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum()) / float((a | b).sum())


def _flipped(v0: np.ndarray, v1: np.ndarray, faces: np.ndarray) -> int:
    """Triangles whose normal reversed between two versions of a mesh."""
    def normals(v: np.ndarray) -> np.ndarray:
        v = np.asarray(v, np.float64)
        return np.cross(v[faces[:, 1]] - v[faces[:, 0]], v[faces[:, 2]] - v[faces[:, 0]])

    return int(((normals(v0) * normals(v1)).sum(1) < 0).sum())


def _vertex_normals(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    n = np.zeros_like(v)
    for k in range(3):
        np.add.at(n, f[:, k], fn)
    return n / np.linalg.norm(n, axis=1, keepdims=True)


def _side_camera(front: OrthographicCamera) -> OrthographicCamera:
    return OrthographicCamera(rotation=orbit_rotation(90.0), center=front.center, scale=front.scale,
                              width=front.width, height=front.height)


@pytest.fixture(scope="module")
def body():
    """anny in the A pose, framed in a 480 x 640 front view."""
    from strata.core.body import get_body_model

    model = get_body_model("anny")
    with torch.no_grad():
        verts = model.forward(pose=model.pose_preset("A")[None]).vertices[0].numpy().astype(np.float64)
    faces = np.asarray(model.faces, np.int64)
    cam = framing_camera(verts, width=480, height=640, margin=0.08)
    return verts, faces, cam


def _check_mesh(v0: np.ndarray, v1: np.ndarray, faces: np.ndarray) -> None:
    import trimesh

    assert v1.shape == v0.shape and v1.dtype == np.float32 and np.isfinite(v1).all()
    assert _flipped(v0, v1, faces) == 0
    before = trimesh.Trimesh(v0, faces, process=False)
    after = trimesh.Trimesh(v1, faces, process=False)
    assert after.is_watertight == before.is_watertight
    assert after.is_winding_consistent == before.is_winding_consistent


def test_skirt_is_filled_and_side_view_kept(body):
    import cv2

    verts, faces, cam = body
    mask = _silhouette(verts, faces, cam).astype(np.uint8)
    hem = cam.to_screen(np.array([[-0.17, 0, 0.95], [0.17, 0, 0.95], [0.30, 0, 0.45], [-0.30, 0, 0.45]]))[:, :2]
    cv2.fillPoly(mask, [np.round(hem).astype(np.int32)], 1)
    target = mask > 0
    before = _iou(_silhouette(verts, faces, cam), target)
    out = fit_clothed_surface(verts.astype(np.float32), faces, cam, mask.astype(np.float32))
    after = _iou(_silhouette(out, faces, cam), target)
    assert before < 0.88 and after >= 0.95, (before, after)
    side = _side_camera(cam)
    assert _iou(_silhouette(out, faces, side), _silhouette(verts, faces, side)) > 0.9
    _check_mesh(verts, out, faces)


def test_inflated_body_is_matched_front_and_side(body):
    verts, faces, cam = body
    truth = verts + 0.02 * _vertex_normals(verts, faces)  # "clothes" 2 cm thick all round
    target = _silhouette(truth, faces, cam)
    before = _iou(_silhouette(verts, faces, cam), target)
    out = fit_clothed_surface(verts, faces, cam, target.astype(np.float32))
    assert before < 0.8 and _iou(_silhouette(out, faces, cam), target) >= 0.95
    side = _side_camera(cam)
    side_truth = _silhouette(truth, faces, side)
    # The depth term grows the body in depth too (half the width growth): closer to the truth than the input.
    assert _iou(_silhouette(out, faces, side), side_truth) > _iou(_silhouette(verts, faces, side), side_truth) + 0.03
    _check_mesh(verts, out, faces)


def test_matching_mask_changes_little(body):
    verts, faces, cam = body
    target = _silhouette(verts, faces, cam)
    out = fit_clothed_surface(verts, faces, cam, target.astype(np.float32))
    assert _iou(_silhouette(out, faces, cam), target) >= 0.98
    assert np.percentile(np.linalg.norm(out - verts, axis=1), 99) < 0.005  # < 5 mm nearly everywhere


def test_sphere_to_ellipse_and_mask_of_other_size():
    """Any closed mesh works, and a mask larger than the camera's image (same framing) is accepted."""
    mesh = uv_sphere(0.5, rings=24, segments=48)
    verts, faces = mesh["verts"], mesh["faces"]
    cam = orthographic_view(0, width=120, height=160, scale=100.0)
    yy, xx = np.mgrid[0:320, 0:240] + 0.5
    ellipse = (((xx - 120) / 112.0) ** 2 + ((yy - 160) / 135.0) ** 2 <= 1.0).astype(np.float32)  # sphere: r = 100
    out = fit_clothed_surface(verts, faces, cam, ellipse)
    big = cam.resized(240, 320)
    assert _iou(_silhouette(out, faces, big), ellipse > 0.5) >= 0.95
    assert _flipped(verts, out, faces) == 0


def test_no_work_cases(body):
    verts, faces, cam = body
    mask = np.zeros((cam.height, cam.width), np.float32)
    assert np.array_equal(fit_clothed_surface(verts, faces, cam, mask), verts.astype(np.float32))
    full = _silhouette(verts, faces, cam).astype(np.float32)
    assert np.array_equal(fit_clothed_surface(verts, faces, cam, full, iterations=0), verts.astype(np.float32))
    with pytest.raises(ValueError):
        fit_clothed_surface(verts, faces, cam, full[..., None])


def test_cancellation_stops_it(body):
    verts, faces, cam = body

    class CancelAfter(Progress):
        def __init__(self, n: int) -> None:
            super().__init__()
            self.n = n
            self.reports = 0

        def check(self) -> None:
            self.reports += 1
            if self.reports > self.n:
                raise Cancelled()

    mask = _silhouette(verts + 0.02 * _vertex_normals(verts, faces), faces, cam).astype(np.float32)
    progress = CancelAfter(2)
    with pytest.raises(Cancelled):
        fit_clothed_surface(verts, faces, cam, mask, progress=progress)
    assert progress.reports == 3  # stopped at the first report after the allowed ones


# --------------------------------------------------------------------------- looking at real photos


def _aligned_body(model, image: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, OrthographicCamera]:
    """anny in the "A" preset with limbs re-aimed at MediaPipe's 2D keypoints (in the frontal plane) and an
    orthographic camera fitted to the keypoints by least squares: a rough stand-in for the real fit.

    Without MediaPipe, the "A" preset is aligned to the mask's bounding box instead (much rougher).
    """
    from strata.core.body.base import forward_kinematics_np, rotation_between, world_to_local_rotation

    h, w = mask.shape
    pose = model.pose_preset("A").astype(np.float64)
    chains = {side: (*model.arm_chain(side), f"upperleg01.{side}", f"lowerleg01.{side}", f"foot.{side}")
              for side in ("L", "R")}
    keypoints = ("shoulder", "elbow", "wrist", "hip", "knee", "ankle")
    try:
        from strata.core.pose import MediaPipePoseEstimator

        kp = MediaPipePoseEstimator().estimate(image)
    except Exception as exc:  # noqa: BLE001 - a dev helper: fall back to the bounding box
        print(f"no keypoints ({exc}); aligning by the bounding box")
        kp = None
    if kp is not None:
        skel = model.rest_skeleton()
        for side, name in (("L", "left"), ("R", "right")):
            joints = chains[side]
            for a, b in ((0, 1), (1, 2), (3, 4), (4, 5)):
                d = kp.point(f"{name}_{keypoints[b]}") - kp.point(f"{name}_{keypoints[a]}")
                target = np.array([d[0], 0.0, -d[1]])  # image x right = world +x, image y down = world -z
                world = forward_kinematics_np(skel.matrices, skel.parents, pose)
                j, k = model.joint_index(joints[a]), model.joint_index(joints[b])
                turn = rotation_between(world[k, :3, 3] - world[j, :3, 3], target)
                pose[j] = pose[j] @ world_to_local_rotation(world[j, :3, :3], turn)
    with torch.no_grad():
        out = model.forward(pose=pose.astype(np.float32)[None])
    verts = out.vertices[0].numpy()
    if kp is None:
        ys, xs = np.nonzero(mask > 0.5)
        lo, hi = verts.min(0), verts.max(0)
        return verts, OrthographicCamera(
            rotation=orbit_rotation(0.0), center=(lo + hi) / 2, scale=float((ys.max() - ys.min()) / (hi[2] - lo[2])),
            width=w, height=h, principal=np.array([(xs.max() + xs.min()) / 2, (ys.max() + ys.min()) / 2]))
    heads = out.joint_world[0, :, :3, 3].numpy()
    world_pts = np.array([heads[model.joint_index(chains[s][i])] for s in ("L", "R") for i in range(6)])
    pixels = np.array([kp.point(f"{n}_{k}") for n in ("left", "right") for k in keypoints])
    # pixel = scale * (x, -z) + principal: 3 unknowns, linear least squares.
    a = np.zeros((2 * len(world_pts), 3))
    a[0::2, 0], a[0::2, 1] = world_pts[:, 0], 1.0
    a[1::2, 0], a[1::2, 2] = -world_pts[:, 2], 1.0
    scale, px, py = np.linalg.lstsq(a, pixels.reshape(-1), rcond=None)[0]
    return verts, OrthographicCamera(rotation=orbit_rotation(0.0), center=np.zeros(3), scale=float(scale),
                                     width=w, height=h, principal=np.array([px, py]))


def _look(name: str, out_dir: str, size: int = 2048) -> None:
    """Run stages 6 and 7 on a real example photo and write PNGs to look at.

    The body comes from :func:`_aligned_body`. Writes ``<name>_front.png`` (photo with the body's outline
    before (green) and after (magenta)), ``<name>_turn.png`` (textured turnaround: 0, 45, 90, 180, 270
    degrees), ``<name>_grey.png`` (the same, untextured) and ``<name>_tex.png`` (the texture).
    """
    import pathlib
    import time

    import cv2
    from PIL import Image

    from strata.core.body import get_body_model
    from strata.core.reconstruct.texture import bake_texture
    from strata.core.render.shade import render_rgba, turntable_cameras

    torch.set_num_threads(1)
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = get_body_model("anny")
    rgba = np.asarray(Image.open(f"/work/shared/examples/{name}.png").convert("RGBA"))
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    image = (rgba[..., :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    mask = alpha[..., 0]
    verts, cam = _aligned_body(model, image, mask)
    faces = np.asarray(model.faces, np.int64)

    t0 = time.perf_counter()
    clothed = fit_clothed_surface(verts, faces, cam, mask)
    t1 = time.perf_counter()
    texture = bake_texture(clothed, faces, model.uvs, model.uv_faces, cam, image, mask, size=size)
    t2 = time.perf_counter()
    target = mask > 0.5
    print(f"{name}: IoU {_iou(_silhouette(verts, faces, cam), target):.3f} -> "
          f"{_iou(_silhouette(clothed, faces, cam), target):.3f}, flipped {_flipped(verts, clothed, faces)}; "
          f"surface {t1 - t0:.2f} s, texture {t2 - t1:.2f} s")

    overlay = (image * 0.6).astype(np.uint8)
    for v, colour in ((verts, (0, 255, 0)), (clothed, (255, 0, 255))):
        contours, _ = cv2.findContours(_silhouette(v, faces, cam).astype(np.uint8), cv2.RETR_LIST,
                                       cv2.CHAIN_APPROX_NONE)
        cv2.drawContours(overlay, contours, -1, colour, 2)
    Image.fromarray(overlay).save(out / f"{name}_front.png")
    cams = turntable_cameras(clothed, [0, 45, 90, 180, 270], size=512)
    kw = {"texture": texture, "uvs": model.uvs, "uv_faces": model.uv_faces, "background": (1, 1, 1)}
    Image.fromarray(np.concatenate([render_rgba(clothed, faces, c, **kw)[..., :3] for c in cams], 1)).save(
        out / f"{name}_turn.png")
    grey = [render_rgba(clothed, faces, c, background=(1, 1, 1))[..., :3] for c in cams]
    Image.fromarray(np.concatenate(grey, 1)).save(out / f"{name}_grey.png")
    Image.fromarray(texture).save(out / f"{name}_tex.png")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Look at stages 6 and 7 on example photos.")
    parser.add_argument("names", nargs="*", default=["3930", "16171", "30755"])
    parser.add_argument("--out", default="/tmp/strata-look")
    args = parser.parse_args()
    for example in args.names:
        _look(example, args.out)
