"""Body fit unit tests: landmark correspondence, camera algebra, initialisation, stage choice, a quick fit."""

from __future__ import annotations

import numpy as np
import pytest

from strata.core.progress import Cancelled, Progress

pytest.importorskip("anny")
torch = pytest.importorskip("torch")
# The fit leaves the thread count to the process; on a shared 2-core machine one thread is the fast one.
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def body():
    from strata.core.body import get_body_model

    return get_body_model("anny")


@pytest.fixture(scope="module")
def person(body):
    from strata.core.reconstruct.synthetic import make_person

    return make_person(body, 3, texture_size=512)


@pytest.fixture(scope="module")
def framed_pose(person):
    pytest.importorskip("mediapipe")
    from strata.core.imaging import frame_person
    from strata.core.pose import MediaPipePoseEstimator

    framed = frame_person(person.cutout, person.mask)
    return framed, MediaPipePoseEstimator().estimate(framed.rgb)


def _true_keypoints(body, person):
    """The person's true landmarks as MediaPipe would report them: 2D in the photo, 3D in its world axes."""
    from strata.core.pose import LANDMARK_NAMES, Keypoints2D
    from strata.core.reconstruct.keypoints import landmark_map

    g = landmark_map(body).landmarks_np(person.vertices, person.joint_world).astype(np.float64)
    mp = np.stack([g[:, 0], -g[:, 2], g[:, 1]], axis=1)  # our axes -> MediaPipe's (x right, y down, z away)
    h, w = person.photo.shape[:2]
    return g, Keypoints2D(xy=np.asarray(person.camera.project(g), np.float32), visibility=np.ones(33, np.float32),
                          world_xyz=mp.astype(np.float32), image_size=(w, h), names=LANDMARK_NAMES)


def test_anny_joint_map_names_real_joints(body):
    """Every role of anny's joint map is a joint of its default rig, on the right side and in anatomical order;
    the fit's joints are among them; rigs the fit does not run on have no map."""
    from dataclasses import fields

    from strata.core.body import BodyModelError, get_body_model
    from strata.core.body.joint_map import CENTRE_ROLES, SIDE_ROLES, SIDES, SideJoints

    jm = body.joint_map
    assert tuple(f.name for f in fields(SideJoints)) == SIDE_ROLES
    assert jm.missing(body.joint_names) == []
    fit_joints = jm.fit_joints()
    assert set(fit_joints) <= set(body.joint_names) and len(set(fit_joints)) == len(fit_joints)
    assert len(fit_joints) == len(CENTRE_ROLES) + 2 * (len(SIDE_ROLES) - 1), "all but the toes"

    heads = body.rest_skeleton().heads
    x = {n: heads[body.joint_index(n), 0] for n in jm.names()}
    z = {n: heads[body.joint_index(n), 2] for n in jm.names()}
    for role in SIDE_ROLES:
        assert x[jm.side(role, "L")] > 0.0 > x[jm.side(role, "R")], role
    assert z[jm.spine_lower] < z[jm.spine_upper] < z[jm.neck] < z[jm.head]
    for side in SIDES:
        chain = [jm.side(r, side) for r in ("clavicle", "upper_arm", "forearm", "wrist")]
        assert [z[n] for n in chain[1:]] == sorted((z[n] for n in chain[1:]), reverse=True), "arm hangs down"
        assert z[jm.side("thigh", side)] > z[jm.side("shin", side)] > z[jm.side("foot", side)]
    for bone, (toward, _) in jm.limbs().items():  # each limb bone aims at its child joint
        assert body.parents[body.joint_index(toward)] >= 0
        j = body.joint_index(toward)
        while j >= 0 and body.joint_names[j] != bone:
            j = int(body.parents[j])
        assert j >= 0, (bone, toward)

    with pytest.raises(BodyModelError, match="no joint map for anny/game_engine"):
        _ = get_body_model("anny", "game_engine").joint_map


def test_landmark_map_is_anatomical(body):
    """Left landmarks on the subject's left (+X), face above shoulders above hips above knees above ankles."""
    from strata.core.pose import Keypoints2D
    from strata.core.reconstruct.keypoints import VERTEX_ANCHORS, landmark_map

    lmap = landmark_map(body)
    assert all(0 <= v < body.num_vertices for v in VERTEX_ANCHORS.values())
    with torch.no_grad():
        out = body.forward()
    pts = lmap.landmarks_np(out.vertices[0].numpy(), out.joint_world[0].numpy())
    assert pts.shape == (33, 3)
    for name in lmap.names:
        if name.startswith("left_"):
            assert pts[Keypoints2D.index(name), 0] > 0.0, name
        if name.startswith("right_"):
            assert pts[Keypoints2D.index(name), 0] < 0.0, name
    z = {n: pts[Keypoints2D.index(n), 2] for n in ("nose", "left_shoulder", "left_hip", "left_knee", "left_ankle")}
    assert z["nose"] > z["left_shoulder"] > z["left_hip"] > z["left_knee"] > z["left_ankle"] > 0.0
    assert pts[Keypoints2D.index("nose"), 1] < pts[Keypoints2D.index("left_ear"), 1], "the nose is in front (-Y)"


def test_camera_least_squares_and_reframing():
    from strata.core.imaging import CropTransform
    from strata.core.reconstruct.fit import reframe_camera, solve_camera
    from strata.core.render.camera import OrthographicCamera, orbit_rotation

    rng = np.random.default_rng(0)
    pts = rng.normal(0.0, 0.5, (33, 3))
    xy = np.stack([pts[:, 0], -pts[:, 2]], 1) * 412.0 + np.array([300.0, 390.0])
    s, p = solve_camera(pts, xy, np.ones(33))
    assert s == pytest.approx(412.0, rel=1e-6) and np.allclose(p, [300.0, 390.0])

    cam = OrthographicCamera(rotation=orbit_rotation(0.0, 0.0), center=np.zeros(3), scale=s, width=768, height=768,
                             principal=p)
    t = CropTransform(0.75, (40.0, -12.0))
    photo = reframe_camera(cam, t.scale, t.offset, 1000, 1100)
    assert np.allclose(photo.project(pts), t.to_original(cam.project(pts)), atol=1e-6)


def test_axis_angle_matches_numpy():
    from strata.core.reconstruct.fit import axis_angle_to_matrix
    from strata.core.reconstruct.posing import axis_angle_matrix

    v = np.array([[0.3, -0.2, 0.9], [0.0, 0.0, 0.0], [1e-5, 0.0, 0.0]])
    got = axis_angle_to_matrix(torch.as_tensor(v, dtype=torch.float32)).numpy()
    for g, vec in zip(got, v, strict=True):
        assert np.allclose(g, axis_angle_matrix(vec), atol=1e-5)
        assert np.allclose(g @ g.T, np.eye(3), atol=1e-5)


def test_initial_pose_follows_3d_directions(body, person):
    """Fed the true 3D landmarks (as MediaPipe world coordinates), the initial pose reproduces the true limb
    directions and yaw; the depth shrink is off so the directions are taken as they are."""
    from strata.core.pose import Keypoints2D
    from strata.core.reconstruct.fit import initial_pose
    from strata.core.reconstruct.keypoints import landmark_map

    lmap = landmark_map(body)
    g, kp = _true_keypoints(body, person)
    pose, yaw = initial_pose(body, person.shape, kp, depth_shrink=1.0)
    assert abs(yaw - person.yaw_deg) < 8.0
    with torch.no_grad():
        out = body.forward(torch.as_tensor(person.shape)[None], torch.as_tensor(pose)[None])
    fit = lmap.landmarks_np(out.vertices[0].numpy(), out.joint_world[0].numpy())
    for a, b in (("left_shoulder", "left_elbow"), ("right_elbow", "right_wrist"), ("left_hip", "left_knee"),
                 ("right_knee", "right_ankle")):
        ia, ib = Keypoints2D.index(a), Keypoints2D.index(b)
        d0, d1 = g[ib] - g[ia], fit[ib] - fit[ia]
        cos = d0 @ d1 / np.linalg.norm(d0) / np.linalg.norm(d1)
        assert np.degrees(np.arccos(np.clip(cos, -1, 1))) < 10.0, (a, b)


def test_choose_backends_presets():
    from strata.core.reconstruct.stages import QUALITY_PRESETS, choose_backends
    from strata.exchange.wire import job_spec

    spec = job_spec("reconstruct")
    fast = choose_backends(spec.validate({"quality": "fast", "texture_size": 8192}))
    high = choose_backends(spec.validate({"quality": "high", "texture_size": 512}))
    assert fast.texture_size == QUALITY_PRESETS["fast"].max_texture_size
    assert high.texture_size == 1024, "the issue's floor"
    assert fast.preset.fit.total_iterations < high.preset.fit.total_iterations
    assert max(high.preset.fit.silhouette_sizes) > max(fast.preset.fit.silhouette_sizes)
    assert set(fast.names()) >= {"segmentation", "pose", "body_fit", "surface", "texture", "rig"}


def test_quick_fit_on_a_synthetic_person(body, person, framed_pose):
    from strata.core.imaging.masks import mask_iou as iou
    from strata.core.reconstruct.evaluate import render_mask
    from strata.core.reconstruct.fit import fit_body, reframe_camera
    from strata.core.reconstruct.keypoints import landmark_map
    from strata.core.reconstruct.stages import QUALITY_PRESETS

    framed, kp = framed_pose
    fit = fit_body(body, kp, framed.alpha, person.height_m, options=QUALITY_PRESETS["fast"].fit)
    v = fit.vertices
    assert abs(v[:, 2].min()) < 1e-4, "feet on the ground"
    assert np.allclose((v.min(0) + v.max(0))[:2] / 2, 0.0, atol=1e-4), "centred"
    assert body.measure_height(fit.shape[None])[0] == pytest.approx(person.height_m, abs=0.01)
    root = body.joint_index("root")
    rest = body.rest_skeleton(fit.shape).matrices[root, :3, :3]
    turn = fit.joint_world[root, :3, :3] @ rest.T
    assert abs(np.degrees(np.arctan2(turn[1, 0], turn[0, 0]))) < 1.0, "the yaw lives in the camera"
    assert abs(fit.yaw_deg - person.yaw_deg) < 15.0

    cam = reframe_camera(fit.camera, framed.transform.scale, framed.transform.offset, person.photo.shape[1],
                         person.photo.shape[0])
    assert iou(render_mask(v, body.faces, cam), person.mask) > 0.88
    lmap = landmark_map(body)
    err = np.linalg.norm(cam.project(fit.landmarks(lmap)) - person.camera.project(
        lmap.landmarks_np(person.vertices, person.joint_world)), axis=1)
    assert err.mean() / person.photo.shape[0] < 0.02


class _CancelAfter(Progress):
    def __init__(self, n: int) -> None:
        super().__init__()
        self.n = n
        self.fit_reports = 0

    def check(self) -> None:
        if self.stage == "fit":
            self.fit_reports += 1
            if self.fit_reports > self.n:
                raise Cancelled()


def test_cancel_takes_effect_mid_fit(body, person, framed_pose):
    from strata.core.reconstruct.fit import fit_body

    framed, kp = framed_pose
    progress = _CancelAfter(3)
    with pytest.raises(Cancelled):
        fit_body(body, kp, framed.alpha, person.height_m, progress=progress)
    assert progress.fit_reports == 4


def test_fitted_pose_carries_over_to_another_rig(body):
    """The game_engine skeleton, posed by per-bone registration, reproduces the anny-rig body (same mesh)."""
    from strata.core.body import get_body_model
    from strata.core.reconstruct.fit import BodyFit
    from strata.core.reconstruct.rigging import transfer_rig
    from strata.core.reconstruct.synthetic import random_pose, random_shape

    target = get_body_model("anny", "game_engine")
    rng = np.random.default_rng(5)
    shape, height = random_shape(body, rng)
    pose = random_pose(body, shape, rng)
    t = np.array([0.1, 0.2, 0.0], np.float32)
    with torch.no_grad():
        out = body.forward(torch.as_tensor(shape)[None], torch.as_tensor(pose)[None], torch.as_tensor(t)[None])
    v = out.vertices[0].numpy()
    fit = BodyFit(shape=shape, pose=pose, translation=t, camera=None, vertices=v,  # type: ignore[arg-type]
                  joint_world=out.joint_world[0].numpy(), bone_lengths=out.bone_lengths[0].numpy(),
                  height_m=height, yaw_deg=0.0)
    rig, skin, pose2, t2 = transfer_rig(target, fit)
    assert rig.kind == "anny/game_engine" and rig.n_joints == target.num_joints
    assert skin.joints.shape == (len(v), 4)
    with torch.no_grad():
        v2 = target.forward(torch.as_tensor(shape)[None], torch.as_tensor(pose2)[None],
                            torch.as_tensor(t2)[None]).vertices[0].numpy()
    err = np.linalg.norm(v2 - v, axis=1)
    assert err.mean() < 0.006 and err.max() < 0.03


def test_a_fit_that_blows_up_keeps_its_best_parameters(body, person, framed_pose, monkeypatch):
    """If a step overflows into NaN parameters, each stage ends on the best parameters it evaluated,
    so the job still returns a finite, sensible body instead of NaN vertices."""
    from strata.core.reconstruct.fit import fit_body
    from strata.core.reconstruct.fit.problem import FitProblem
    from strata.core.reconstruct.stages import QUALITY_PRESETS

    original = FitProblem.losses
    calls = [0]

    def blowing_up(self, sil_size, use_shape):
        calls[0] += 1
        if calls[0] == 1:  # a step overflows: the joint angles are NaN when the keypoint stage starts
            with torch.no_grad():
                self.theta[3, 1] = float("nan")
        return original(self, sil_size, use_shape)

    monkeypatch.setattr(FitProblem, "losses", blowing_up)
    framed, kp = framed_pose
    fit = fit_body(body, kp, framed.alpha, person.height_m, options=QUALITY_PRESETS["fast"].fit)
    assert calls[0] > 1
    assert np.isfinite(fit.vertices).all() and np.isfinite(fit.camera.scale)
    assert all(np.isfinite(v) for v in fit.losses.values())
    assert abs(fit.yaw_deg - person.yaw_deg) < 15.0
    assert body.measure_height(fit.shape[None])[0] == pytest.approx(person.height_m, abs=0.01)


def test_fit_makes_every_tensor_on_the_body_device(body, person):
    """With torch's default device set to "meta", any tensor the fit made without naming the body's device
    would land there (no data) and fail as soon as it met the body's; the silhouettes are drawn by the
    rasterizer passed in, from vertices on the body's device."""
    from strata.core.reconstruct.fit import FitOptions, fit_body
    from strata.core.render import Rasterizer
    from strata.core.render.torch_raster import TorchRasterizer

    class Spy(Rasterizer):
        name = "spy"

        def __init__(self, inner: Rasterizer) -> None:
            self.inner, self.device, self.seen = inner, inner.device, []

        def rasterize(self, *args, **kwargs):
            return self.inner.rasterize(*args, **kwargs)

        def silhouette(self, verts, faces, camera, size=None, *, sigma=1.0):
            self.seen.append(verts.device)
            return self.inner.silhouette(verts, faces, camera, size, sigma=sigma)

    _, kp = _true_keypoints(body, person)
    spy = Spy(TorchRasterizer(body.device))
    options = FitOptions(keypoint_iterations=3, silhouette_iterations=(2,), silhouette_sizes=(64,))
    torch.set_default_device("meta")
    try:
        fit = fit_body(body, kp, person.mask, person.height_m, options=options, rasterizer=spy)
    finally:
        torch.set_default_device(None)
    assert spy.seen and set(spy.seen) == {body.device}
    assert np.isfinite(fit.vertices).all() and all(np.isfinite(v) for v in fit.losses.values())
