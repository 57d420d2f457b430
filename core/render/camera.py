"""Cameras for the rendering layer: small dataclasses that map world points to pixels.

Conventions (shared by every backend, every test and every caller):

* World frame: metres, **Z up**. The person stands upright and **faces -Y**, so the
  person's left hand is on **+X** (Blender's convention: numpad-1 "front" looks along +Y).
* Camera frame (OpenCV style, right-handed): x to the image right, y to the image
  **down**, z forward (into the scene). ``rotation`` is the world-to-camera matrix whose
  rows are those three axes expressed in world coordinates.
* Pixels: origin at the **top-left corner** of the image, x to the right, y down; pixel
  ``(i, j)`` (column i, row j) has its centre at ``(i + 0.5, j + 0.5)``.
* Depth: the camera-frame z of a point. Smaller is nearer. For orthographic cameras it
  is measured from ``center`` and may be negative; for perspective cameras it is the
  positive distance along the optical axis.
* Orbit angles, degrees: the front camera (azimuth 0) sits on **-Y** and looks along +Y.
  Azimuth turns the camera **counter-clockwise seen from above** (right-handed about
  +Z): azimuth 90 puts it on **+X**, i.e. at the person's left, showing their left side;
  180 is the back view (camera on +Y); 270 is the person's right side (camera on -X).
  The camera position direction is ``(sin(az) cos(el), -cos(az) cos(el), sin(el))``.
  Positive elevation raises the camera, which then looks down.
  This is the same geometry as PSHuman's azimuths 0/45/90/180/270/315 (PyTorch3D
  ``look_at_view_transform`` on a Y-up, +Z-facing subject puts azimuth 90 on the
  subject's left too); PSHuman *names* azimuth 90 "right" (the viewer's right), so map by
  angle, never by name.

Every projection function accepts numpy arrays or torch tensors and returns the same
kind. Camera parameters may be torch tensors with ``requires_grad`` (for instance the
weak-perspective scale and translation during fitting); gradients then reach them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

ArrayLike = Any  # np.ndarray | torch.Tensor | Sequence[float] | float

#: PSHuman's six body views (front, front_right, right, back, left, front_left by its
#: names), as azimuths in this module's convention.
PSHUMAN_AZIMUTHS: tuple[float, ...] = (0.0, 45.0, 90.0, 180.0, 270.0, 315.0)


# --------------------------------------------------------------------------- helpers


def _like(value: ArrayLike, ref: torch.Tensor) -> torch.Tensor:
    """``value`` as a tensor with ``ref``'s dtype and device, keeping autograd links."""
    if isinstance(value, torch.Tensor):
        return value.to(dtype=ref.dtype, device=ref.device)
    return torch.as_tensor(np.asarray(value, dtype=np.float64), dtype=ref.dtype, device=ref.device)


def _as_torch(points: ArrayLike) -> tuple[torch.Tensor, bool]:
    """Return ``(tensor, was_numpy)`` so results can be handed back in the caller's kind."""
    if isinstance(points, torch.Tensor):
        if not points.is_floating_point():
            points = points.float()
        return points, False
    arr = np.asarray(points)
    dtype = torch.float64 if arr.dtype == np.float64 else torch.float32
    return torch.as_tensor(arr, dtype=dtype), True


def _rotate(d: torch.Tensor, rot: torch.Tensor) -> torch.Tensor:
    """``d @ rot.T`` without BLAS.

    Why: a (N, 3) x (3, 3) product is tiny, but BLAS may still hand it to its thread pool,
    which on a busy 2-core machine stalls for milliseconds per call.
    """
    return torch.stack([(d * rot[i]).sum(-1) for i in range(3)], dim=-1)


def _scaled(value: ArrayLike, factor: tuple[float, float]) -> ArrayLike:
    """A scalar or (x, y) pair times a per-axis factor; tensors stay tensors (autograd kept)."""
    if isinstance(value, torch.Tensor):
        return value * torch.tensor(factor, dtype=value.dtype, device=value.device)
    return np.asarray(value, dtype=np.float64) * np.asarray(factor)


def _back(t: torch.Tensor, was_numpy: bool) -> ArrayLike:
    return t.detach().cpu().numpy() if was_numpy else t


def rotation_matrix(camera: Camera) -> torch.Tensor:
    """The camera's world-to-camera rotation as a detached float64 tensor (rows: right, down, forward)."""
    r = camera.rotation
    if isinstance(r, torch.Tensor):
        return r.detach().cpu().double()
    return torch.as_tensor(np.asarray(r, dtype=np.float64))


def orbit_direction(azimuth: float, elevation: float = 0.0) -> np.ndarray:
    """Unit vector from the orbit target towards the camera (see module docstring)."""
    az, el = math.radians(azimuth), math.radians(elevation)
    return np.array([math.sin(az) * math.cos(el), -math.cos(az) * math.cos(el), math.sin(el)])


def orbit_rotation(azimuth: float, elevation: float = 0.0) -> np.ndarray:
    """World-to-camera rotation (rows: right, down, forward) of an orbit camera.

    The right axis is always horizontal, ``(cos az, sin az, 0)``, so the camera never
    rolls and the vertical world axis stays vertical in the image, even at +-90 degree
    elevation where a generic look-at would be undefined.
    """
    az = math.radians(azimuth)
    forward = -orbit_direction(azimuth, elevation)
    right = np.array([math.cos(az), math.sin(az), 0.0])
    down = np.cross(forward, right)
    return np.stack([right, down, forward])


def look_at_rotation(eye: ArrayLike, target: ArrayLike, up: ArrayLike = (0.0, 0.0, 1.0)) -> np.ndarray:
    """World-to-camera rotation for a camera at ``eye`` looking at ``target`` with ``up`` up."""
    eye, target, up = (np.asarray(a, dtype=np.float64) for a in (eye, target, up))
    forward = target - eye
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, up)
    if np.linalg.norm(right) < 1e-9:  # looking straight along `up`: pick any horizontal right
        right = np.cross(forward, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    return np.stack([right, down, forward])


# --------------------------------------------------------------------------- cameras


@runtime_checkable
class Camera(Protocol):
    """What the rasterizers need from a camera."""

    width: int
    height: int
    rotation: ArrayLike

    @property
    def is_perspective(self) -> bool: ...

    def to_screen(self, points: ArrayLike) -> ArrayLike: ...

    def project(self, points: ArrayLike) -> ArrayLike: ...

    def towards_camera(self, points: ArrayLike) -> ArrayLike: ...

    def pixel_footprint(self, depth: torch.Tensor) -> torch.Tensor: ...

    def resized(self, width: int, height: int) -> Camera: ...


@dataclass(frozen=True)
class OrthographicCamera:
    """Orthographic camera: ``pixel = scale * (R (X - center))_xy + principal``.

    Weak perspective is the same model (an image-space scale plus a 2D translation), so
    :data:`WeakPerspectiveCamera` is an alias and :func:`weak_perspective_camera` builds
    one from ``(scale, translation)``. ``scale`` is in pixels per metre (a scalar, or
    ``(sx, sy)``); ``principal`` is the pixel where ``center`` lands.
    """

    rotation: ArrayLike
    center: ArrayLike
    scale: ArrayLike
    width: int
    height: int
    principal: ArrayLike | None = None

    @property
    def is_perspective(self) -> bool:
        return False

    def _principal(self) -> ArrayLike:
        return (self.width / 2.0, self.height / 2.0) if self.principal is None else self.principal

    def to_camera(self, points: ArrayLike) -> ArrayLike:
        """Camera-frame coordinates ``R (X - center)``, shape (..., 3)."""
        p, was_np = _as_torch(points)
        rot, c = _like(self.rotation, p), _like(self.center, p)
        return _back(_rotate(p - c, rot), was_np)

    def to_screen(self, points: ArrayLike) -> ArrayLike:
        """(..., 3) world points -> (..., 3) ``(x_pixel, y_pixel, depth)``."""
        p, was_np = _as_torch(points)
        cam = _rotate(p - _like(self.center, p), _like(self.rotation, p))
        xy = cam[..., :2] * _like(self.scale, p) + _like(self._principal(), p)
        return _back(torch.cat([xy, cam[..., 2:]], dim=-1), was_np)

    def project(self, points: ArrayLike) -> ArrayLike:
        """(..., 3) world points -> (..., 2) pixel coordinates."""
        s = self.to_screen(points)
        return s[..., :2]

    def towards_camera(self, points: ArrayLike) -> ArrayLike:
        """Unit vectors from each point towards the camera (constant for orthographic)."""
        p, was_np = _as_torch(points)
        d = -_like(self.rotation, p)[2]
        return _back(d.expand_as(p), was_np)

    def pixel_footprint(self, depth: torch.Tensor) -> torch.Tensor:
        """World size (m) of one pixel at ``depth``: constant ``1 / scale`` here."""
        s = _like(self.scale, depth).detach().mean()
        return torch.ones_like(depth) / s

    def resized(self, width: int, height: int) -> OrthographicCamera:
        """Same view on an image of another size (the framing is preserved)."""
        factor = (width / self.width, height / self.height)
        return replace(
            self,
            scale=_scaled(self.scale, factor),
            principal=_scaled(self._principal(), factor),
            width=int(width),
            height=int(height),
        )


#: Weak perspective = orthographic with an image-space scale and a 2D translation.
WeakPerspectiveCamera = OrthographicCamera


@dataclass(frozen=True)
class PerspectiveCamera:
    """Pinhole camera: ``pixel = focal * (x/z, y/z) + principal`` with ``(x,y,z) = R (X - position)``.

    Used to render synthetic "photos"; fitting uses the orthographic model. There is no
    near-plane clipping: the torch rasterizer drops triangles with a corner at or behind
    the camera (depth <= 1e-6).
    """

    rotation: ArrayLike
    position: ArrayLike
    focal: ArrayLike
    width: int
    height: int
    principal: ArrayLike | None = None

    @property
    def is_perspective(self) -> bool:
        return True

    def _principal(self) -> ArrayLike:
        return (self.width / 2.0, self.height / 2.0) if self.principal is None else self.principal

    def to_camera(self, points: ArrayLike) -> ArrayLike:
        p, was_np = _as_torch(points)
        return _back(_rotate(p - _like(self.position, p), _like(self.rotation, p)), was_np)

    def to_screen(self, points: ArrayLike) -> ArrayLike:
        p, was_np = _as_torch(points)
        cam = _rotate(p - _like(self.position, p), _like(self.rotation, p))
        z = cam[..., 2:]
        safe = torch.where(z.abs() < 1e-12, torch.full_like(z, 1e-12), z)
        xy = cam[..., :2] / safe * _like(self.focal, p) + _like(self._principal(), p)
        return _back(torch.cat([xy, z], dim=-1), was_np)

    def project(self, points: ArrayLike) -> ArrayLike:
        s = self.to_screen(points)
        return s[..., :2]

    def towards_camera(self, points: ArrayLike) -> ArrayLike:
        p, was_np = _as_torch(points)
        d = _like(self.position, p) - p
        return _back(d / d.norm(dim=-1, keepdim=True).clamp_min(1e-12), was_np)

    def pixel_footprint(self, depth: torch.Tensor) -> torch.Tensor:
        """World size (m) of one pixel at ``depth``: ``depth / focal``."""
        return depth.abs() / _like(self.focal, depth).detach().mean()

    def resized(self, width: int, height: int) -> PerspectiveCamera:
        """Same view on an image of another size (the field of view is preserved)."""
        factor = (width / self.width, height / self.height)
        return replace(
            self,
            focal=_scaled(self.focal, factor),
            principal=_scaled(self._principal(), factor),
            width=int(width),
            height=int(height),
        )


# --------------------------------------------------------------------------- factories


def orthographic_view(
    azimuth: float = 0.0,
    elevation: float = 0.0,
    *,
    width: int,
    height: int,
    scale: float | None = None,
    extent: float | None = None,
    center: ArrayLike = (0.0, 0.0, 0.0),
) -> OrthographicCamera:
    """Orbit orthographic camera looking at ``center``.

    Give either ``scale`` (pixels per metre) or ``extent`` (metres spanned by the image
    height; PSHuman's +-2 window is ``extent=4`` on its normalised body).
    """
    if (scale is None) == (extent is None):
        raise ValueError("give exactly one of scale= or extent=")
    s = float(scale) if scale is not None else height / float(extent)
    return OrthographicCamera(
        rotation=orbit_rotation(azimuth, elevation),
        center=np.asarray(center, dtype=np.float64),
        scale=s,
        width=int(width),
        height=int(height),
    )


def weak_perspective_camera(
    scale: ArrayLike,
    translation: ArrayLike = (0.0, 0.0),
    *,
    width: int,
    height: int,
    azimuth: float = 0.0,
    elevation: float = 0.0,
    center: ArrayLike = (0.0, 0.0, 0.0),
) -> OrthographicCamera:
    """Weak-perspective camera: ``pixel = scale * (R (X - center))_xy + image_centre + translation``.

    ``scale`` (px/m) and ``translation`` (px) may be tensors with ``requires_grad`` so a
    fitting loop can optimise them directly.
    """
    if isinstance(translation, torch.Tensor):
        centre = torch.tensor([width / 2.0, height / 2.0], dtype=translation.dtype, device=translation.device)
        principal: ArrayLike = centre + translation
    else:
        principal = np.array([width / 2.0, height / 2.0]) + np.asarray(translation, dtype=np.float64)
    return OrthographicCamera(
        rotation=orbit_rotation(azimuth, elevation),
        center=center if isinstance(center, torch.Tensor) else np.asarray(center, dtype=np.float64),
        scale=scale,
        width=int(width),
        height=int(height),
        principal=principal,
    )


def perspective_view(
    azimuth: float = 0.0,
    elevation: float = 0.0,
    *,
    distance: float,
    width: int,
    height: int,
    fov_y: float | None = None,
    focal: float | None = None,
    target: ArrayLike = (0.0, 0.0, 0.0),
) -> PerspectiveCamera:
    """Orbit pinhole camera at ``distance`` metres from ``target``.

    Give either ``fov_y`` (vertical field of view, degrees) or ``focal`` (pixels).
    """
    if (fov_y is None) == (focal is None):
        raise ValueError("give exactly one of fov_y= or focal=")
    f = float(focal) if focal is not None else 0.5 * height / math.tan(math.radians(fov_y) / 2.0)
    target = np.asarray(target, dtype=np.float64)
    return PerspectiveCamera(
        rotation=orbit_rotation(azimuth, elevation),
        position=target + distance * orbit_direction(azimuth, elevation),
        focal=f,
        width=int(width),
        height=int(height),
    )


def orbit_views(
    azimuths: Iterable[float],
    *,
    elevation: float = 0.0,
    perspective: bool = False,
    **kwargs: Any,
) -> list[OrthographicCamera] | list[PerspectiveCamera]:
    """One camera per azimuth (e.g. :data:`PSHUMAN_AZIMUTHS`), other arguments shared."""
    make = perspective_view if perspective else orthographic_view
    return [make(float(a), elevation, **kwargs) for a in azimuths]


def framing_camera(
    points: ArrayLike,
    azimuth: float = 0.0,
    elevation: float = 0.0,
    *,
    width: int,
    height: int,
    margin: float = 0.05,
) -> OrthographicCamera:
    """Orthographic orbit camera that fits ``points`` in the image with a relative ``margin``.

    Why: turnarounds and synthetic test photos need the whole body in frame whatever its
    size or pose, without callers doing bounding-box arithmetic.
    """
    pts = np.asarray(points.detach().cpu() if isinstance(points, torch.Tensor) else points, dtype=np.float64)
    rot = orbit_rotation(azimuth, elevation)
    cam = pts @ rot.T
    lo, hi = cam[:, :2].min(0), cam[:, :2].max(0)
    mid_cam = np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, cam[:, 2].mean()])
    center = rot.T @ mid_cam
    span = np.maximum(hi - lo, 1e-9)
    scale = min(width * (1 - 2 * margin) / span[0], height * (1 - 2 * margin) / span[1])
    return OrthographicCamera(rotation=rot, center=center, scale=float(scale), width=int(width), height=int(height))


def image_size(size: int | Sequence[int] | None, camera: Camera) -> tuple[int, int]:
    """Resolve ``size`` (None = the camera's own, int = square, (H, W)) to ``(H, W)``."""
    if size is None:
        return int(camera.height), int(camera.width)
    if isinstance(size, int):
        return size, size
    h, w = size
    return int(h), int(w)


def camera_for_size(camera: Camera, size: int | Sequence[int] | None) -> tuple[Camera, int, int]:
    """The camera rescaled to ``size`` (see :func:`image_size`), with its ``(H, W)``.

    Why: fitting runs coarse-to-fine (e.g. 128 then 256 px) on one camera definition.
    """
    h, w = image_size(size, camera)
    if (h, w) != (camera.height, camera.width):
        camera = camera.resized(w, h)
    return camera, h, w


def camera_to_dict(camera: OrthographicCamera) -> dict[str, Any]:
    """A JSON-able orthographic camera: ``pixel = scale * (R (X - center))[:2] + principal`` (stored in an
    asset's ``BodyParams.extra["camera"]``)."""
    return {
        "model": "orthographic",
        "rotation": np.asarray(camera.rotation, np.float64).round(8).tolist(),
        "center": np.asarray(camera.center, np.float64).round(8).tolist(),
        "scale": float(np.asarray(camera.scale)),
        "principal": np.asarray(camera._principal(), np.float64).round(6).tolist(),
        "width": int(camera.width),
        "height": int(camera.height),
        "convention": "pixel = scale * (rotation @ (X - center))[:2] + principal; pixel origin top-left, "
        "centres at +0.5; X in the asset's metres",
    }


def camera_from_dict(data: dict[str, Any]) -> OrthographicCamera:
    """Inverse of :func:`camera_to_dict`."""
    if data.get("model", "orthographic") != "orthographic":
        raise ValueError(f"unsupported camera model {data.get('model')!r}")
    return OrthographicCamera(rotation=np.asarray(data["rotation"], np.float64),
                              center=np.asarray(data["center"], np.float64), scale=float(data["scale"]),
                              width=int(data["width"]), height=int(data["height"]),
                              principal=np.asarray(data["principal"], np.float64))
