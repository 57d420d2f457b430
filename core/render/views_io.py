"""A views folder on disk <-> ``list[View]``: the input of ``strata reconstruct --views DIR``.

Why a folder format: PSHuman (or any other generator, or a turntable shoot) produces six views with normal
maps; a user or a test must be able to hand those to the reconstruction without running the generator.
The format is PSHuman's own output convention, so its saved views can be used as they are:

* ``color_<view>.png`` and ``normal_<view>.png`` for each view of :data:`VIEW_NAMES` (front, front_right,
  right, back, left, front_left), RGBA, alpha = the person's mask. All twelve images have one size, square.
* Orthographic cameras at azimuths 0/45/90/180/270/315 about the vertical axis that projects onto the image's
  centre column, elevation 0, one shared scale (pixels per metre) for all six. PSHuman's azimuth-90 "right"
  view stands at the front camera's right, so it sees the subject's LEFT flank: this is exactly our orbit
  azimuth 90 (camera on +X), so views map by angle (:data:`strata.core.views.PSHUMAN_VIEWS`), never by name.
* Normal maps encode unit normals as ``n * 0.5 + 0.5`` (8-bit) in the FRONT camera's frame for all six views
  (x right, y up, z toward the front viewer); none is mirrored. In our world (Z up, facing -Y) that frame is
  x = world +X, y = world +Z, z = world -Y (:func:`normals_to_world`).
* Optional ``views.json`` (written by :func:`write_views` when the views have cameras): the true cameras, so
  synthetic test data is read back with its exact scale.

The metric scale cannot be known from the images alone. :func:`read_views` takes, first found: an explicit
``pixels_per_metre``; ``height_m`` divided into the front mask's vertical extent (crown to sole: hair, a hood
or shoes make this approximate, a later fit refines it); the cameras of ``views.json``; else the height
:data:`DEFAULT_HEIGHT_M`. Built cameras put the vertical axis at x = y = 0 and the soles (the front mask's
lowest row) at z = 0.

Bad folders raise :class:`ViewsError` subclasses (a :class:`~strata.core.imaging.errors.PhotoError` family)
with stable codes listed in :data:`VIEWS_ERROR_CODES`; each names the files at fault in ``details["files"]``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..imaging.errors import PhotoError
from ..views import PSHUMAN_VIEWS, View
from .camera import OrthographicCamera, camera_from_dict, camera_to_dict, orbit_rotation

#: The six body views in PSHuman's order (its file names), each mapped to our orbit azimuth in degrees.
VIEW_NAMES: tuple[str, ...] = tuple(PSHUMAN_VIEWS)
#: PSHuman's per-view loss weights (front and back trusted most, the 45-degree views least).
VIEW_WEIGHTS: dict[str, float] = {"front": 1.0, "front_right": 0.4, "right": 0.8, "back": 1.0, "left": 0.8,
                                  "front_left": 0.4}
#: Stature assumed when neither a scale nor a height is given (a later fit refines the scale).
DEFAULT_HEIGHT_M = 1.70
#: Sidecar file with the true cameras (optional).
CAMERAS_FILE = "views.json"

#: A normal is "unit" when its decoded length is within this of 1 (8-bit quantisation gives < 0.01).
UNIT_TOLERANCE = 0.15
#: Share of mask pixels whose normals may fail the unit test before the map is refused (generators are noisy).
MAX_BAD_NORMAL_SHARE = 0.1
#: Lowest IoU allowed between a view's colour alpha and normal alpha.
MIN_ALPHA_IOU = 0.8


# --------------------------------------------------------------------------- errors


class ViewsError(PhotoError):
    """A views folder cannot be used as given; ``details["files"]`` names the files at fault."""

    code = "views_error"
    default_hint = "Give a folder with color_<view>.png and normal_<view>.png for the six views (docs/views.md)."


class ViewsFolderNotFoundError(ViewsError):
    code = "views_not_found"
    default_hint = "Check the folder path."


class ViewsMissingFilesError(ViewsError):
    code = "views_missing_files"


class ViewsUnreadableError(ViewsError):
    code = "views_unreadable"
    default_hint = "Re-export the named files as PNG."


class ViewsNoAlphaError(ViewsError):
    code = "views_no_alpha"
    default_hint = "Save the views as RGBA PNGs whose alpha is the person's mask."


class ViewsSizeMismatchError(ViewsError):
    code = "views_size_mismatch"
    default_hint = "All twelve images must have the same size."


class ViewsNotSquareError(ViewsError):
    code = "views_not_square"
    default_hint = "The views must be square (PSHuman writes 768 x 768)."


class ViewsEmptyMaskError(ViewsError):
    code = "views_empty_mask"
    default_hint = "Each view's alpha must cover the person; an all-transparent view cannot be used."


class ViewsMaskMismatchError(ViewsError):
    code = "views_mask_mismatch"
    default_hint = "A view's colour and normal images must show the same silhouette."


class ViewsBadNormalsError(ViewsError):
    code = "views_bad_normals"
    default_hint = "Normal maps must encode unit normals as n * 0.5 + 0.5 (8-bit) inside the mask."


#: Every code :func:`read_views` can raise, for the server's and the add-on's tables.
VIEWS_ERROR_CODES: tuple[str, ...] = tuple(
    cls.code for cls in (ViewsError, ViewsFolderNotFoundError, ViewsMissingFilesError, ViewsUnreadableError,
                         ViewsNoAlphaError, ViewsSizeMismatchError, ViewsNotSquareError, ViewsEmptyMaskError,
                         ViewsMaskMismatchError, ViewsBadNormalsError)
)


# --------------------------------------------------------------------------- normals


#: Rows: the front camera's x (right), y (up), z (toward the viewer) in world coordinates.
FRONT_FRAME = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])


def normals_to_world(normal: np.ndarray) -> np.ndarray:
    """(..., 3) normals in the front camera's frame -> world (Z up, facing -Y): ``(x, y, z) -> (x, -z, y)``."""
    return np.asarray(normal, np.float32) @ FRONT_FRAME.astype(np.float32)


def normals_from_world(normal: np.ndarray) -> np.ndarray:
    """(..., 3) world normals -> the front camera's frame (inverse of :func:`normals_to_world`)."""
    return np.asarray(normal, np.float32) @ FRONT_FRAME.T.astype(np.float32)


def encode_normals(normal: np.ndarray) -> np.ndarray:
    """(H, W, 3) unit normals -> uint8 ``round((n * 0.5 + 0.5) * 255)``; zero normals encode as mid-grey."""
    return np.clip(np.round((np.asarray(normal, np.float32) * 0.5 + 0.5) * 255.0), 0, 255).astype(np.uint8)


def decode_normals(rgb: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) -> float32 ``rgb / 255 * 2 - 1`` (not yet normalised)."""
    return rgb.astype(np.float32) / 255.0 * 2.0 - 1.0


# --------------------------------------------------------------------------- cameras


def views_camera(name: str, size: int, pixels_per_metre: float, sole_row: float) -> OrthographicCamera:
    """The orthographic camera of view ``name`` on a ``size`` x ``size`` image in our world convention.

    The vertical axis x = y = 0 projects onto the centre column; ``sole_row`` (pixel y, the bottom edge of the
    front mask) is world z = 0: ``pixel_y = size / 2 - scale * (z - zc)`` gives ``zc``.
    """
    zc = (sole_row - size / 2.0) / pixels_per_metre
    return OrthographicCamera(rotation=orbit_rotation(PSHUMAN_VIEWS[name], 0.0), center=np.array([0.0, 0.0, zc]),
                              scale=float(pixels_per_metre), width=int(size), height=int(size))


def mask_rows(mask: np.ndarray, threshold: float = 0.5) -> tuple[int, int]:
    """(top row, bottom edge) of the mask: the crown's first row and one past the sole's last row."""
    rows = np.flatnonzero((mask > threshold).any(axis=1))
    return int(rows[0]), int(rows[-1]) + 1


# --------------------------------------------------------------------------- writing


def write_views(folder: str | Path, views: Sequence[View], *, cameras: bool = True) -> Path:
    """Write ``views`` (names of :data:`VIEW_NAMES`, with normal maps in the front camera's frame) as
    ``color_<view>.png`` and ``normal_<view>.png`` (RGBA, alpha = mask), plus ``views.json`` with the cameras
    when ``cameras`` and every view has an orthographic one. Returns the folder."""
    from PIL import Image

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    records: dict[str, Any] = {}
    for view in views:
        if view.name not in PSHUMAN_VIEWS:
            raise ValueError(f"view name {view.name!r} is not one of {VIEW_NAMES}")
        if view.normal is None:
            raise ValueError(f"view {view.name!r} has no normal map")
        alpha = np.clip(np.round(np.asarray(view.mask, np.float32) * 255.0), 0, 255).astype(np.uint8)[..., None]
        Image.fromarray(np.concatenate([view.image, alpha], -1), "RGBA").save(out / f"color_{view.name}.png")
        nrm = np.concatenate([encode_normals(view.normal), alpha], -1)
        Image.fromarray(nrm, "RGBA").save(out / f"normal_{view.name}.png")
        if isinstance(view.camera, OrthographicCamera):
            records[view.name] = camera_to_dict(view.camera)
    if cameras and len(records) == len(views):
        meta = {"convention": "PSHuman six views; see docs/views.md", "cameras": records}
        (out / CAMERAS_FILE).write_text(json.dumps(meta, indent=1))
    return out


# --------------------------------------------------------------------------- reading


def _load_rgba(path: Path) -> np.ndarray:
    """(H, W, 4) uint8 of an RGBA PNG; :class:`ViewsUnreadableError` / :class:`ViewsNoAlphaError` otherwise."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            has_alpha = img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info)
            if not has_alpha:
                raise ViewsNoAlphaError(f"{path.name} has no alpha channel (mode {img.mode}).", files=[path.name])
            return np.asarray(img.convert("RGBA"))
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ViewsUnreadableError(f"{path.name} cannot be read as an image ({exc}).", files=[path.name]) from exc


def _check_folder(folder: Path) -> dict[str, tuple[Path, Path]]:
    """Step 1: the folder exists and holds all twelve files (else every missing one is named)."""
    if not folder.is_dir():
        raise ViewsFolderNotFoundError(f"Views folder {str(folder)!r} does not exist or is not a folder.",
                                       files=[str(folder)])
    paths = {n: (folder / f"color_{n}.png", folder / f"normal_{n}.png") for n in VIEW_NAMES}
    missing = [p.name for pair in paths.values() for p in pair if not p.is_file()]
    if missing:
        raise ViewsMissingFilesError(f"The views folder lacks {', '.join(missing)}.", files=missing)
    return paths


def _check_sizes(images: dict[str, np.ndarray]) -> int:
    """Step 3: one shared, square size; returns it."""
    sizes = {name: img.shape[:2] for name, img in images.items()}
    first = sizes["color_front.png"]
    odd = [name for name, s in sizes.items() if s != first]
    if odd:
        listing = ", ".join(f"{n} {sizes[n][1]}x{sizes[n][0]}" for n in odd)
        raise ViewsSizeMismatchError(f"color_front.png is {first[1]}x{first[0]} but {listing}.", files=odd)
    if first[0] != first[1]:
        raise ViewsNotSquareError(f"The views are {first[1]}x{first[0]}, not square.", files=sorted(sizes))
    return int(first[0])


def _check_view(name: str, color: np.ndarray, normal: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Step 4: one view's mask (colour alpha) is non-empty and agrees with the normal alpha, and its normals
    are unit length inside the mask. Returns (mask, unit normals zeroed outside the mask)."""
    mask = color[..., 3].astype(np.float32) / 255.0
    inside = mask > 0.5
    if not inside.any():
        raise ViewsEmptyMaskError(f"color_{name}.png has an all-transparent alpha.", files=[f"color_{name}.png"])
    n_inside = normal[..., 3] > 127
    if not n_inside.any():
        raise ViewsEmptyMaskError(f"normal_{name}.png has an all-transparent alpha.", files=[f"normal_{name}.png"])
    iou = float((inside & n_inside).sum() / (inside | n_inside).sum())
    if iou < MIN_ALPHA_IOU:
        raise ViewsMaskMismatchError(f"color_{name}.png and normal_{name}.png have different silhouettes "
                                     f"(alpha IoU {iou:.2f}).", files=[f"color_{name}.png", f"normal_{name}.png"],
                                     iou=iou)
    n = decode_normals(normal[..., :3])
    length = np.linalg.norm(n, axis=-1)
    bad = float((np.abs(length[inside] - 1.0) > UNIT_TOLERANCE).mean())
    if bad > MAX_BAD_NORMAL_SHARE:
        raise ViewsBadNormalsError(f"normal_{name}.png is not a unit normal map: {bad:.0%} of the person's "
                                   f"pixels decode to a length far from 1 (median {np.median(length[inside]):.2f}).",
                                   files=[f"normal_{name}.png"], bad_share=bad)
    unit = n / np.maximum(length, 1e-6)[..., None]
    return mask, (unit * (normal[..., 3:4] > 0)).astype(np.float32)


def _scale(front_mask: np.ndarray, pixels_per_metre: float | None, height_m: float | None) -> tuple[float, float]:
    """Step 5: (pixels per metre, sole row): the explicit scale, else the height over the front mask's extent."""
    top, sole = mask_rows(front_mask)
    if pixels_per_metre is not None:
        if pixels_per_metre <= 0:
            raise ValueError(f"pixels_per_metre must be positive, got {pixels_per_metre}")
        return float(pixels_per_metre), float(sole)
    height = DEFAULT_HEIGHT_M if height_m is None else float(height_m)
    if height <= 0:
        raise ValueError(f"height_m must be positive, got {height_m}")
    return (sole - top) / height, float(sole)


def _stored_cameras(folder: Path, size: int) -> dict[str, OrthographicCamera] | None:
    """Step 5 (alternative): the true cameras of ``views.json``, when the folder has one."""
    meta = folder / CAMERAS_FILE
    if not meta.is_file():
        return None
    try:
        cams = {n: camera_from_dict(json.loads(meta.read_text())["cameras"][n]) for n in VIEW_NAMES}
    except (ValueError, KeyError, TypeError) as exc:
        raise ViewsUnreadableError(f"{CAMERAS_FILE} is not a views camera file ({exc!r}).",
                                   files=[CAMERAS_FILE]) from exc
    odd = [n for n, c in cams.items() if (c.width, c.height) != (size, size)]
    if odd:
        raise ViewsSizeMismatchError(f"{CAMERAS_FILE} gives cameras of another size than the images for "
                                     f"{', '.join(odd)}.", files=[CAMERAS_FILE])
    return cams


def read_views(folder: str | Path, *, height_m: float | None = None,
               pixels_per_metre: float | None = None) -> list[View]:
    """The six views of ``folder`` (order of :data:`VIEW_NAMES`), validated, with cameras in our convention.

    Each :class:`View` has the colour image, the mask (colour alpha), unit normals in the front camera's
    frame (as stored; :func:`normals_to_world` converts), the camera and PSHuman's view weight. See the
    module docstring for the scale precedence; with ``views.json`` present and no argument, the cameras are
    the true ones (a synthetic folder's world is the one it was written in: axis at x = y = 0, soles z = 0).
    """
    folder = Path(folder)
    paths = _check_folder(folder)  # 1. all files present
    images = {p.name: _load_rgba(p) for pair in paths.values() for p in pair}  # 2. readable RGBA
    size = _check_sizes(images)  # 3. one square size
    checked = {n: _check_view(n, images[f"color_{n}.png"], images[f"normal_{n}.png"]) for n in VIEW_NAMES}  # 4.
    stored = _stored_cameras(folder, size) if pixels_per_metre is None and height_m is None else None  # 5.
    if stored is None:  # 5. one shared scale, from the arguments or the front mask
        scale, sole = _scale(checked["front"][0], pixels_per_metre, height_m)
        stored = {n: views_camera(n, size, scale, sole) for n in VIEW_NAMES}
    views = []
    for name in VIEW_NAMES:  # 6. views with cameras
        mask, normal = checked[name]
        views.append(View(name=name, image=np.ascontiguousarray(images[f"color_{name}.png"][..., :3]), mask=mask,
                          camera=stored[name], normal=normal,
                          weight=VIEW_WEIGHTS[name], exact_mask=True))
    return views
