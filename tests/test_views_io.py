"""The views folder (``strata reconstruct --views DIR``) and synthetic clothed people with their true six views.

Why both in one file: the folder's convention (azimuths, the shared scale, normals in the front camera's frame,
nothing mirrored) is only worth something if a known 3D person rendered into it reads back consistently, so
the convention checks run on rendered clothed people; the bad-folder cases run on a tiny hand-made folder.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

torch = pytest.importorskip("torch")

from strata.core.imaging.errors import PhotoError  # noqa: E402
from strata.core.render.views_io import (  # noqa: E402
    VIEW_NAMES,
    VIEWS_ERROR_CODES,
    ViewsBadNormalsError,
    ViewsEmptyMaskError,
    ViewsFolderNotFoundError,
    ViewsMaskMismatchError,
    ViewsMissingFilesError,
    ViewsNoAlphaError,
    ViewsNotSquareError,
    ViewsSizeMismatchError,
    ViewsUnreadableError,
    decode_normals,
    encode_normals,
    normals_from_world,
    normals_to_world,
    read_views,
    views_camera,
    write_views,
)
from strata.core.views import PSHUMAN_VIEWS, View  # noqa: E402

SIZE = 192  # small renders keep the module at a few seconds


# --------------------------------------------------------------------------- a tiny hand-made folder


def _disc_views(size: int = 48) -> list[View]:
    """Six views of a 'person' that is an upright ellipse whose normals face the viewer (front frame)."""
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    mask = ((((xx - size / 2) / (size * 0.2)) ** 2 + ((yy - size / 2) / (size * 0.4)) ** 2) <= 1).astype(np.float32)
    views = []
    for i, name in enumerate(VIEW_NAMES):
        az = np.radians(PSHUMAN_VIEWS[name])
        world = np.array([np.sin(az), -np.cos(az), 0.0])  # towards this view's camera
        normal = np.broadcast_to(normals_from_world(world), (size, size, 3)) * mask[..., None]
        image = np.full((size, size, 3), 40 * i, np.uint8)
        views.append(View(name=name, image=image, mask=mask, normal=np.ascontiguousarray(normal, np.float32),
                          camera=views_camera(name, size, 100.0, size * 0.9)))
    return views


@pytest.fixture()
def folder(tmp_path):
    return write_views(tmp_path / "views", _disc_views())


def _rewrite(path, fn) -> None:
    img = np.asarray(Image.open(path).convert("RGBA")).copy()
    Image.fromarray(fn(img)).save(path)


def test_normal_frame_helpers():
    """Front camera frame: x right = world +X, y up = world +Z, z toward the viewer = world -Y."""
    front = np.array([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]])
    assert np.allclose(normals_to_world(front), [[1, 0, 0], [0, 0, 1], [0, -1, 0]])
    assert np.allclose(normals_from_world(normals_to_world(front)), front)
    n = np.array([[[0.6, -0.8, 0.0]]], np.float32)
    assert np.abs(decode_normals(encode_normals(n)) - n).max() <= 1 / 255 + 1e-6


def test_round_trip_small_folder(folder):
    views = read_views(folder, pixels_per_metre=100.0)
    src = _disc_views()
    assert [v.name for v in views] == list(VIEW_NAMES)
    for got, want in zip(views, src, strict=True):
        assert np.array_equal(got.mask > 0.5, want.mask > 0.5)
        assert np.array_equal(got.image, want.image)
        inside = want.mask > 0.5
        assert np.abs(got.normal[inside] - want.normal[inside]).max() < 2.5 / 255
        assert got.camera.scale == 100.0 and got.exact_mask
    assert [v.weight for v in views] == [1.0, 0.4, 0.8, 1.0, 0.8, 0.4]


def test_missing_files_are_named(folder):
    (folder / "normal_back.png").unlink()
    (folder / "color_left.png").unlink()
    with pytest.raises(ViewsMissingFilesError) as err:
        read_views(folder)
    assert sorted(err.value.details["files"]) == ["color_left.png", "normal_back.png"]
    assert "normal_back.png" in err.value.message and err.value.code == "views_missing_files"


def test_not_a_folder(tmp_path):
    with pytest.raises(ViewsFolderNotFoundError):
        read_views(tmp_path / "nowhere")


def test_size_mismatch_names_the_file(folder):
    Image.open(folder / "color_right.png").resize((40, 40)).save(folder / "color_right.png")
    with pytest.raises(ViewsSizeMismatchError) as err:
        read_views(folder)
    assert err.value.details["files"] == ["color_right.png"] and "40x40" in err.value.message


def test_not_square(folder):
    for p in folder.glob("*.png"):
        Image.open(p).crop((0, 0, 48, 40)).save(p)
    with pytest.raises(ViewsNotSquareError):
        read_views(folder)


def test_bad_normals_are_refused(folder):
    def grey(img):
        img[..., :3] = 128  # decodes to ~zero-length normals
        return img

    _rewrite(folder / "normal_front.png", grey)
    with pytest.raises(ViewsBadNormalsError) as err:
        read_views(folder)
    assert err.value.details["files"] == ["normal_front.png"]


def test_empty_alpha_is_refused(folder):
    def clear(img):
        img[..., 3] = 0
        return img

    _rewrite(folder / "color_back.png", clear)
    with pytest.raises(ViewsEmptyMaskError) as err:
        read_views(folder)
    assert err.value.details["files"] == ["color_back.png"]


def test_mismatched_silhouettes_are_refused(folder):
    def shift(img):
        img[..., 3] = np.roll(img[..., 3], 12, axis=1)
        return img

    _rewrite(folder / "normal_left.png", shift)
    with pytest.raises(ViewsMaskMismatchError) as err:
        read_views(folder)
    assert "normal_left.png" in err.value.details["files"]


def test_no_alpha_and_unreadable(folder):
    Image.open(folder / "normal_left.png").convert("RGB").save(folder / "normal_left.png")
    with pytest.raises(ViewsNoAlphaError) as err:
        read_views(folder)
    assert err.value.details["files"] == ["normal_left.png"]
    (folder / "color_front.png").write_bytes(b"not a png")
    with pytest.raises(ViewsUnreadableError) as err2:
        read_views(folder)
    assert err2.value.details["files"] == ["color_front.png"]


def test_error_codes_are_photo_errors():
    assert len(set(VIEWS_ERROR_CODES)) == len(VIEWS_ERROR_CODES)
    assert all(code.startswith("views_") for code in VIEWS_ERROR_CODES)
    err = ViewsMissingFilesError("x", files=["a.png"])
    assert isinstance(err, PhotoError) and err.to_dict()["details"] == {"files": ["a.png"]}


# --------------------------------------------------------------------------- rendered clothed people


@pytest.fixture(scope="module")
def body():
    pytest.importorskip("anny")
    from strata.core.body import get_body_model

    return get_body_model("anny")


@pytest.fixture(scope="module")
def people(body):
    """Seed 5 three ways: bare body, loose clothes with a hood, a skirt (same shape and pose in all three)."""
    from strata.core.reconstruct.synthetic_clothed import make_clothed_person, render_views

    torch.set_num_threads(min(4, torch.get_num_threads()))
    out = {}
    for key, garments in (("body", ()), ("loose", ("shirt", "trousers", "hood")), ("skirt", ("shirt", "skirt"))):
        person = make_clothed_person(body, 5, garments=garments)
        out[key] = (person, render_views(person, SIZE))
    return out


def test_clothed_person_is_deterministic_geometry(body, people):
    from strata.core.reconstruct.synthetic_clothed import make_clothed_person, outer_mesh

    again = make_clothed_person(body, 5, garments=("shirt", "skirt"))
    skirt, _ = people["skirt"]
    assert np.array_equal(again.vertices, skirt.vertices) and np.array_equal(again.face_colors, skirt.face_colors)
    assert set(skirt.parts) == {"body", "skirt"} and skirt.parts["skirt"][1] == len(skirt.faces)
    loose, _ = people["loose"]
    assert loose.extent_m > people["body"][0].extent_m + 0.01  # the hood stands above the crown
    lo, hi = loose.vertices.min(0), loose.vertices.max(0)
    assert abs(lo[2]) < 1e-6 and abs(lo[0] + hi[0]) < 1e-5 and abs(lo[1] + hi[1]) < 1e-5  # the views' world
    # what the views see: most of the skirt, little of the legs inside it
    s0, s1 = skirt.parts["skirt"]
    assert skirt.outer_faces[s0:s1].mean() > 0.4
    _, outer = outer_mesh(skirt)
    assert 0 < len(outer) < len(skirt.faces)


def test_round_trip_rendered_views(people, tmp_path):
    person, views = people["loose"]
    write_views(tmp_path, views)
    exact = read_views(tmp_path)  # views.json: the true cameras
    pts = person.vertices[::50]
    for got, want in zip(exact, views, strict=True):
        assert np.allclose(got.camera.project(pts), want.camera.project(pts), atol=1e-4)
        assert np.abs(got.mask - want.mask).max() <= 0.5 / 255 + 1e-6
        inside = want.mask > 0.5
        assert np.abs(got.normal[inside] - want.normal[inside]).max() < 2.5 / 255
    # Without views.json: the given scale, or the height over the front mask, and the soles at z = 0.
    scale = float(views[0].camera.scale)
    known = read_views(tmp_path, pixels_per_metre=scale)
    assert np.abs(known[3].camera.project(pts) - views[3].camera.project(pts)).max() < 1.0  # within a pixel
    guessed = read_views(tmp_path, height_m=person.extent_m)
    assert abs(float(guessed[0].camera.scale) / scale - 1) < 0.02


def test_right_view_sees_the_left_flank_and_back_view_the_back(people):
    _, views = people["loose"]
    by = {v.name: v for v in views}
    assert np.allclose(by["right"].camera.towards_camera(np.zeros((1, 3)))[0], [1, 0, 0], atol=1e-9)
    for name, axis, sign in (("front", 1, -1), ("right", 0, 1), ("back", 1, 1), ("left", 0, -1)):
        v = by[name]
        world = normals_to_world(v.normal[v.mask > 0.5])
        assert sign * world[:, axis].mean() > 0.5, name
        assert (sign * world[:, axis] > 0).mean() > 0.9, name


def test_silhouettes_mirror_between_opposite_views(people):
    for key in ("loose", "skirt"):
        _, views = people[key]
        by = {v.name: v.mask > 0.5 for v in views}
        for a, b in (("front", "back"), ("right", "left")):  # 45 and 315 are not opposite: no pair there
            inter = (by[a] & np.fliplr(by[b])).sum()
            assert inter / (by[a] | np.fliplr(by[b])).sum() > 0.97, (key, a, b)
        rows = {n: np.flatnonzero(m.any(1)) for n, m in by.items()}
        assert all(r[0] == rows["front"][0] and r[-1] == rows["front"][-1] for r in rows.values()), key


def _runs(row: np.ndarray) -> int:
    return int(np.count_nonzero(np.diff(np.r_[0, row.astype(np.int8), 0]) == 1))


def test_skirt_closes_the_gap_between_the_legs(people):
    skirt, skirt_views = people["skirt"]
    _, body_views = people["body"]
    s0, s1 = skirt.parts["skirt"]
    hem = float(skirt.vertices[skirt.faces[s0:s1]].reshape(-1, 3)[:, 2].min())
    cam = skirt_views[0].camera
    scale, half = float(cam.scale), SIZE // 2
    cols = slice(half - int(0.25 * scale), half + int(0.25 * scale))
    rows = [int(cam.project(np.array([[0.0, 0.0, z]]))[0, 1]) for z in np.linspace(hem + 0.03, hem + 0.12, 5)]
    assert all(_runs(skirt_views[0].mask[r, cols] > 0.5) == 1 for r in rows)
    assert all(_runs(body_views[0].mask[r, cols] > 0.5) == 2 for r in rows)  # same body, no skirt: a gap


def test_loose_clothes_widen_the_silhouette(people):
    area = {k: float((people[k][1][0].mask > 0.5).sum()) for k in ("body", "loose")}
    assert area["loose"] > 1.08 * area["body"]
