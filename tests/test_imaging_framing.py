"""PSHuman framing: 740 px long side centred on a 768 white canvas, the face tile, exact coordinate maps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from strata.core.imaging import (
    CANVAS_SIZE,
    PERSON_LONG_SIDE,
    CropTransform,
    NoPersonError,
    composite_on_color,
    face_tile,
    frame_person,
    load_image,
    mask_bbox,
)

EXAMPLES = Path(__file__).resolve().parents[1].parent / "shared" / "examples"


def _synthetic(h=900, w=600, box=(150, 100, 350, 800)):
    """A grey image with a red 'person' rectangle (x0, y0, x1, y1) and a matching mask."""
    img = np.full((h, w, 3), 60, np.uint8)
    x0, y0, x1, y1 = box
    img[y0:y1, x0:x1] = (220, 30, 30)
    mask = np.zeros((h, w), np.float32)
    mask[y0:y1, x0:x1] = 1.0
    return img, mask


def test_long_side_740_centred_on_white_768():
    img, mask = _synthetic()
    fr = frame_person(img, mask)
    assert fr.rgb.shape == (CANVAS_SIZE, CANVAS_SIZE, 3) and fr.alpha.shape == (CANVAS_SIZE, CANVAS_SIZE)
    x0, y0, x1, y1 = mask_bbox(fr.alpha)
    assert abs((y1 - y0) - PERSON_LONG_SIDE) <= 1  # the tall side is the long side
    assert abs((x1 - x0) - 200 * 740 / 700) <= 1
    assert abs((x0 + x1) / 2 - 384) <= 1 and abs((y0 + y1) / 2 - 384) <= 1
    assert (fr.rgb[:5] == 255).all() and (fr.rgb[:, :5] == 255).all()  # white background
    assert tuple(fr.rgb[384, 384]) == (220, 30, 30)
    assert fr.bbox == (150, 100, 350, 800)


def test_wide_person_uses_width_as_long_side():
    img, mask = _synthetic(h=500, w=900, box=(100, 150, 800, 350))
    fr = frame_person(img, mask)
    x0, y0, x1, y1 = mask_bbox(fr.alpha)
    assert abs((x1 - x0) - 740) <= 1 and abs((y1 - y0) - 200 * 740 / 700) <= 1


def test_person_near_border_and_upscaling():
    """The canvas box extends past the photo (person at the edge, small photo): padding is handled."""
    img, mask = _synthetic(h=300, w=200, box=(0, 10, 90, 300))
    fr = frame_person(img, mask)
    x0, y0, x1, y1 = mask_bbox(fr.alpha)
    assert abs((y1 - y0) - 740) <= 1
    assert fr.transform.scale == pytest.approx(740 / 290)


def test_coordinate_round_trip_and_pixel_accuracy():
    img, mask = _synthetic()
    fr = frame_person(img, mask)
    t = fr.transform
    pts = np.array([[150.0, 100.0], [350.0, 800.0], [250.0, 450.0], [0.0, 0.0], [599.5, 899.5]])
    np.testing.assert_allclose(t.to_original(t.to_framed(pts)), pts, atol=1e-9)
    np.testing.assert_allclose(t.to_framed(t.to_original(pts)), pts, atol=1e-9)
    # bbox corners land on the canvas where the person's edges are drawn (continuous coordinates)
    fx0, fy0 = t.to_framed((150, 100))
    fx1, fy1 = t.to_framed((350, 800))
    assert (fx0, fy0, fx1, fy1) == pytest.approx(mask_bbox(fr.alpha), abs=1.0)
    assert fy1 - fy0 == pytest.approx(740)


def test_mapped_marker_lands_on_marker():
    """A single bright pixel in the photo must come out where the transform says."""
    img, mask = _synthetic()
    img[600, 300] = (0, 255, 0)
    img[300, 200] = (0, 255, 0)
    fr = frame_person(img, mask)
    for x, y in ((300, 600), (200, 300)):
        fx, fy = fr.transform.to_framed((x + 0.5, y + 0.5))  # pixel centre
        patch = fr.rgb[int(fy) - 1 : int(fy) + 2, int(fx) - 1 : int(fx) + 2, 1].astype(int)
        assert patch.max() > 60, (x, y, fx, fy)  # green leaks into red around the marker


def test_transform_algebra():
    a = CropTransform(2.0, (10.0, -4.0))
    b = CropTransform(0.5, (3.0, 7.0))
    p = np.array([[1.0, 2.0], [-5.0, 40.0]])
    np.testing.assert_allclose(a.then(b).to_framed(p), b.to_framed(a.to_framed(p)))
    np.testing.assert_allclose(a.inverse().to_framed(a.to_framed(p)), p)
    m = a.as_matrix()
    np.testing.assert_allclose(p @ m[:, :2].T + m[:, 2], a.to_framed(p))


def test_face_tile_is_the_top_centre_third():
    canvas = np.zeros((768, 768, 3), np.uint8)
    canvas[0:256, 256:512] = (10, 200, 30)
    canvas[100, 300] = (255, 255, 255)
    tile = face_tile(canvas)
    assert tile.rgb.shape == (768, 768, 3)
    assert tile.transform.scale == 3.0
    inner = tile.rgb[20:-20, 20:-20].reshape(-1, 3).astype(int)
    assert np.median(inner, axis=0).tolist() == [10, 200, 30]
    tx, ty = tile.transform.to_framed((300.5, 100.5))
    assert (tx, ty) == pytest.approx((133.5, 301.5))
    assert tile.rgb[int(ty), int(tx)].min() > 200
    small = face_tile(canvas, size=512)
    assert small.rgb.shape == (512, 512, 3) and small.transform.scale == 2.0


def test_empty_mask_raises_no_person():
    img, mask = _synthetic()
    with pytest.raises(NoPersonError) as info:
        frame_person(img, np.zeros_like(mask))
    assert info.value.code == "no_person"


def test_composite_on_color():
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[0, 0, 3] = 255
    rgba[0, 1, 3] = 128
    out = composite_on_color(rgba)
    assert tuple(out[0, 0]) == (200, 0, 0)
    assert tuple(out[1, 1]) == (255, 255, 255)
    assert tuple(out[0, 1]) == (227, 127, 127)  # 200*128/255 + 255*127/255


@pytest.mark.skipif(not EXAMPLES.is_dir(), reason=f"example photos not found at {EXAMPLES}")
def test_frames_a_real_cutout_photo():
    img = load_image(EXAMPLES / "pexels-zdmit-6780091.png")
    fr = frame_person(img.rgba)  # the cut-out alpha is the mask
    x0, y0, x1, y1 = mask_bbox(fr.alpha)
    assert abs(max(x1 - x0, y1 - y0) - 740) <= 2
    assert abs((y0 + y1) / 2 - 384) <= 1.5 and abs((x0 + x1) / 2 - 384) <= 1.5
    # alpha bbox of the photo maps onto the canvas bbox
    bx0, by0, bx1, by1 = mask_bbox(img.alpha)
    got = np.concatenate([fr.transform.to_framed((bx0, by0)), fr.transform.to_framed((bx1, by1))])
    np.testing.assert_allclose(got, (x0, y0, x1, y1), atol=1.5)
    # white where there is no person (a few faint hair wisps with alpha < 1 % may tint a pixel slightly)
    assert fr.rgb[fr.alpha < 0.01].min() >= 235
    assert (fr.rgb[fr.alpha < 0.01] >= 250).mean() > 0.999
