"""Segmentation: backends, the one selection policy, and the person checks (no person, cut off, several).

The accuracy test composites the example cut-outs onto a deliberately cluttered synthetic background
(colour waves, 120 random shapes in random colours, lines, polygons, noise) so the model cannot win by
finding "the thing that is not flat", and scores the mask against the photo's true alpha.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from strata.core.imaging import BackendUnavailableError, load_image
from strata.core.imaging.errors import MultiplePeopleError, NoPersonError, PersonCutOffError
from strata.core.segmentation import (
    AlphaSegmenter,
    MediaPipeSegmenter,
    RembgSegmenter,
    choose_segmenter,
    find_people,
    find_rembg_model,
    rembg_backend,
    segment_person,
    segmenter_availability,
)

EXAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "examples"
needs_examples = pytest.mark.skipif(not EXAMPLES.is_dir(), reason=f"example photos not found at {EXAMPLES}")
needs_mediapipe = pytest.mark.skipif(
    not MediaPipeSegmenter.availability(), reason=f"MediaPipe: {MediaPipeSegmenter.availability().reason}"
)


def busy_background(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Cluttered RGB: sine colour waves + 120 random filled shapes/lines in random colours + noise."""
    import cv2

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((h, w, 3), np.float32)
    for c in range(3):
        a, b = rng.uniform(-1, 1, 2)
        img[..., c] = 127 + 100 * np.sin((a * xx + b * yy) / rng.uniform(20, 80) + rng.uniform(0, 6))
    img = np.ascontiguousarray(img.astype(np.uint8))
    for _ in range(120):
        col = tuple(int(v) for v in rng.integers(0, 256, 3))
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        s = int(rng.integers(5, max(6, min(h, w) // 5)))
        kind = rng.integers(0, 4)
        if kind == 0:
            cv2.rectangle(img, (x, y), (x + s, y + int(rng.integers(5, 2 * s + 6))), col, -1)
        elif kind == 1:
            cv2.circle(img, (x, y), s // 2, col, -1)
        elif kind == 2:
            end = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            cv2.line(img, (x, y), end, col, int(rng.integers(1, 8)))
        else:
            cv2.fillPoly(img, [rng.integers(0, [w, h], (5, 2)).astype(np.int32)], col)
    return np.clip(img + rng.normal(0, 18, img.shape), 0, 255).astype(np.uint8)


def composite(rgba: np.ndarray, bg: np.ndarray) -> np.ndarray:
    a = rgba[..., 3:4].astype(np.float32) / 255.0
    return (rgba[..., :3] * a + bg * (1 - a) + 0.5).astype(np.uint8)


def iou(mask: np.ndarray, truth: np.ndarray) -> float:
    m = mask > 0.5
    return float((m & truth).sum() / max((m | truth).sum(), 1))


def _ellipse(mask: np.ndarray, cx: float, cy: float, rx: float, ry: float) -> None:
    yy, xx = np.mgrid[0 : mask.shape[0], 0 : mask.shape[1]]
    mask[((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1] = 1.0


def _stick_person(h: int = 600, w: int = 400, top: int = 40, bottom: int = 560, cx: int = 200) -> np.ndarray:
    """A crude full-body silhouette: head, torso, two legs, feet on the 'ground' at ``bottom``."""
    m = np.zeros((h, w), np.float32)
    height = bottom - top
    _ellipse(m, cx, top + 0.07 * height, 0.06 * height, 0.07 * height)
    _ellipse(m, cx, top + 0.35 * height, 0.1 * height, 0.23 * height)  # torso, rounded like a real one
    for dx in (-0.05, 0.05):
        x = int(cx + dx * height)
        m[int(top + 0.5 * height) : int(top + 0.95 * height), x - 12 : x + 12] = 1
        _ellipse(m, x, top + 0.96 * height, 20, 0.04 * height)  # rounded shoe
    return m


# --- find_people on hand-made masks -------------------------------------------------------------------


def test_single_person_ok():
    p = find_people(_stick_person())
    assert p.count == 1 and p.note is None
    assert p.touching_edges == ()
    x0, y0, x1, y1 = p.bbox
    assert y0 == pytest.approx(40, abs=2) and y1 == pytest.approx(560, abs=25)
    assert p.mask.dtype == np.float32 and p.mask.max() == 1.0


def test_empty_mask_is_no_person():
    with pytest.raises(NoPersonError) as info:
        find_people(np.zeros((300, 200), np.float32))
    assert info.value.code == "no_person"


def test_tiny_person_is_no_person():
    m = np.zeros((1000, 1000), np.float32)
    m[100:160, 100:120] = 1  # 0.12 % of the image, 60 px tall
    with pytest.raises(NoPersonError) as info:
        find_people(m)
    assert "too small" in info.value.message


def test_multiple_people_strict_and_lenient():
    m = _stick_person(w=700, cx=180)
    m = np.maximum(m, _stick_person(w=700, cx=500, top=140))  # a second, smaller person
    with pytest.raises(MultiplePeopleError) as info:
        find_people(m, strict=True)
    assert info.value.code == "multiple_people" and info.value.details["count"] == 2
    p = find_people(m)
    assert p.count == 2 and "2 people" in p.note
    assert p.mask[:, 350:].max() == 0  # the other person is removed
    assert p.bbox[2] < 350


def test_small_clutter_blobs_are_not_people():
    m = _stick_person(w=700, cx=180)
    m[20:40, 600:620] = 1  # a stray blob: 400 px, far below 10 % of the person
    p = find_people(m, strict=True)
    assert p.count == 1
    assert p.mask[20:40, 600:620].max() == 0


def test_split_off_hand_is_kept_with_the_person():
    m = _stick_person()
    m[300:330, 150:156] = 1  # a hand separated from the body by a gap, inside the person's bbox
    assert m[300:330, 156:161].max() == 0
    p = find_people(m, strict=True)
    assert p.count == 1
    assert p.mask[300:330, 150:156].min() == 1.0


def test_soft_edges_are_kept():
    m = _stick_person() * 0.98
    ring = (np.roll(m, 2, axis=1) > 0) & (m == 0)
    m[ring] = 0.3  # matting halo below the threshold
    p = find_people(m)
    assert np.allclose(p.mask[ring], 0.3)


@pytest.mark.parametrize(
    "crop, edge",
    [
        ((slice(0, 400), slice(None)), "bottom"),  # cut at the thighs
        ((slice(0, 520), slice(None)), "bottom"),  # cut at the ankles
        ((slice(80, None), slice(None)), "top"),  # head cut
        ((slice(None), slice(0, 185)), "right"),  # right half of the body cut away
        ((slice(None), slice(215, None)), "left"),
    ],
)
def test_cut_off_person(crop, edge):
    with pytest.raises(PersonCutOffError) as info:
        find_people(_stick_person()[crop])
    assert info.value.code == "person_cut_off"
    assert edge in info.value.details["edges"]


def test_tight_crop_is_not_cut_off():
    """A cut-out trimmed to its bbox touches all four sides with extremities only: accepted."""
    m = _stick_person()
    ys, xs = np.nonzero(m > 0.5)
    p = find_people(m[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1])
    assert set(p.touching_edges) == {"top", "bottom", "left", "right"}


def test_allowed_cut_edge():
    p = find_people(_stick_person()[:400], allow_cut_edges={"bottom"})
    assert p.count == 1
    with pytest.raises(ValueError):
        find_people(_stick_person(), allow_cut_edges={"feet"})


@needs_examples
def test_real_cutouts_tight_vs_cut():
    """On the real example alphas: tight trims pass, cuts at the knees / through the head fail."""
    for path in sorted(EXAMPLES.glob("*.png")):
        alpha = load_image(path).alpha
        ys, xs = np.nonzero(alpha > 127)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        find_people(alpha[y0:y1, x0:x1])  # must not raise
        with pytest.raises(PersonCutOffError, match="bottom"):
            find_people(alpha[: y0 + int(0.72 * (y1 - y0))])
        with pytest.raises(PersonCutOffError, match="top"):
            find_people(alpha[y0 + int(0.06 * (y1 - y0)) :])


@needs_examples
def test_two_real_people_side_by_side():
    a = load_image(EXAMPLES / "16171.png").rgba
    b = load_image(EXAMPLES / "30755.png").rgba
    both = np.concatenate([a, b], axis=1)
    with pytest.raises(MultiplePeopleError):
        segment_person(both, has_cutout=True, strict=True)
    p = segment_person(both, has_cutout=True)
    assert p.backend == "alpha" and p.count == 2 and p.note


# --- backends and selection -----------------------------------------------------------------------------


def test_alpha_backend():
    rgba = np.zeros((10, 10, 4), np.uint8)
    rgba[..., 3] = 51
    m = AlphaSegmenter().segment(rgba)
    assert m.dtype == np.float32 and np.allclose(m, 0.2)
    with pytest.raises(ValueError):
        AlphaSegmenter().segment(rgba[..., :3])


def test_auto_uses_alpha_for_cutouts_only():
    assert choose_segmenter("auto", has_cutout=True).name == "alpha"
    from strata.core.backends import REGISTRY

    avail = segmenter_availability()
    best = next((b.name for b in REGISTRY.of("segmentation") if not b.needs and avail[b.name]), None)
    if best is None:
        with pytest.raises(BackendUnavailableError):
            choose_segmenter("auto", has_cutout=False)
    else:
        assert choose_segmenter("auto", has_cutout=False).name == best
    assert choose_segmenter("auto", has_cutout=True) is choose_segmenter("alpha", has_cutout=True)  # cached


def test_selection_errors():
    with pytest.raises(BackendUnavailableError) as info:
        choose_segmenter("alpha", has_cutout=False)
    assert info.value.code == "backend_unavailable"
    with pytest.raises(BackendUnavailableError, match="Unknown"):
        choose_segmenter("deeplab")


def _isolate_rembg_dirs(monkeypatch, tmp_path):
    for var in ("U2NET_HOME", "REMBG_HOME", "XDG_DATA_HOME", rembg_backend.MODEL_ENV):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def test_rembg_without_weights_is_unavailable_with_reason(monkeypatch, tmp_path):
    _isolate_rembg_dirs(monkeypatch, tmp_path)
    monkeypatch.setattr(rembg_backend, "module_present", lambda name: True)  # as if rembg were installed
    avail = RembgSegmenter.availability()
    assert not avail and "download" in avail.reason and ".u2net" in avail.reason
    with pytest.raises(BackendUnavailableError):
        choose_segmenter("rembg")


def test_rembg_not_installed_reason(monkeypatch):
    monkeypatch.setattr(rembg_backend, "module_present", lambda name: name != "rembg")
    avail = RembgSegmenter.availability()
    assert not avail and "not installed" in avail.reason


def test_rembg_model_search_follows_rembg_layout(monkeypatch, tmp_path):
    _isolate_rembg_dirs(monkeypatch, tmp_path)
    assert find_rembg_model() is None
    legacy = tmp_path / "home" / ".u2net" / "u2net.onnx"
    legacy.parent.mkdir(parents=True)
    legacy.write_bytes(b"x")
    assert find_rembg_model() == ("u2net", legacy)
    # the per-model layout under $REMBG_HOME, and preference order (isnet before u2net)
    monkeypatch.setenv("REMBG_HOME", str(tmp_path / "r"))
    isnet = tmp_path / "r" / "models" / "isnet-general-use" / "isnet-general-use.onnx"
    isnet.parent.mkdir(parents=True)
    isnet.write_bytes(b"x")
    assert find_rembg_model() == ("isnet-general-use", isnet)
    # $U2NET_HOME overrides both
    monkeypatch.setenv("U2NET_HOME", str(tmp_path / "u"))
    assert find_rembg_model() is None
    # the env override names one model only
    monkeypatch.delenv("U2NET_HOME")
    monkeypatch.setenv(rembg_backend.MODEL_ENV, "u2net")
    assert find_rembg_model() == ("u2net", legacy)
    monkeypatch.setattr(rembg_backend, "module_present", lambda name: True)
    assert RembgSegmenter.availability()


# --- accuracy on real photos over clutter ---------------------------------------------------------------


@needs_examples
@needs_mediapipe
def test_mediapipe_iou_on_cluttered_backgrounds():
    seg = MediaPipeSegmenter()
    ious, times = {}, []
    for i, path in enumerate(sorted(EXAMPLES.glob("*.png"))):
        rgba = load_image(path).rgba
        truth = rgba[..., 3] > 127
        photo = composite(rgba, busy_background(*truth.shape, seed=i))
        t0 = time.perf_counter()
        mask = seg.segment(photo)
        times.append(time.perf_counter() - t0)
        person = find_people(mask)  # the whole step must accept every example
        assert person.count == 1
        ious[path.name] = iou(person.mask, truth)
    print("\nMediaPipe IoU on clutter:", {k: round(v, 3) for k, v in ious.items()})
    print(f"MediaPipe segment time: median {np.median(times[1:]) * 1000:.0f} ms, first {times[0] * 1000:.0f} ms")
    assert min(ious.values()) > 0.92, ious
    assert np.mean(list(ious.values())) > 0.945, ious


@needs_mediapipe
def test_mediapipe_on_empty_scene_gives_no_person():
    bg = busy_background(480, 360, seed=7)
    mask = MediaPipeSegmenter().segment(bg)
    assert mask.shape == (480, 360)
    with pytest.raises(NoPersonError):
        find_people(mask)


@needs_examples
@needs_mediapipe
def test_mediapipe_finds_a_small_person_in_a_large_photo():
    """The example at 20 % of a cluttered 1950x1500 photo's height: found (window search) and segmented."""
    from test_pose import _small_person_photo

    photo, alpha = _small_person_photo("durant.png")
    person = find_people(MediaPipeSegmenter().segment(photo), strict=True)
    score = iou(person.mask, alpha > 127)
    print(f"\nsmall person IoU: {score:.3f}")
    assert score > 0.9
