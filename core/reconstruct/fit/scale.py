"""The views' metric scale from the eyes, when something sits on the head.

Why: :func:`strata.core.render.views_io.read_views` turns the user's height into pixels per metre with the front
mask's extent, crown to sole. A hood, a hat or voluminous hair make that extent taller than the body, and the
whole reconstruction comes out too small (4 % under a hood in the tests: 7 cm at the crown). The eyes are not
covered: the front fit's body, at the user's height, says how high they sit above the soles, and the front view
says how many pixels that is.

Measured on six synthetic clothed people at 512 px (three with hoods; 2026-12-04): the mask's scale is off by
+0.5 to +4.1 %, the eyes' by -1.8 to +0.6 %; the eyes' scale was 0.95-0.97 of the mask's under a hood and
0.98-1.0 without one. Without anything on the head the mask is the better ruler (no landmark noise), so the
eyes are used only where their scale is smaller than the mask's by more than :data:`TOLERANCE`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from ...pose.keypoints import LANDMARK_NAMES
from ...render.camera import OrthographicCamera
from ...views import View
from ..keypoints import LandmarkMap
from .api import BodyFit

#: The eyes' scale replaces the mask's when it is smaller by more than this fraction.
TOLERANCE = 0.025
#: Both eyes must be at least this visible (MediaPipe's likelihood) to be a ruler.
MIN_VISIBILITY = 0.5
_EYES = [LANDMARK_NAMES.index("left_eye"), LANDMARK_NAMES.index("right_eye")]


def eye_scale(front: View, fit: BodyFit, lmap: LandmarkMap) -> float | None:
    """Pixels per metre of ``front`` from its eyes: their height above the soles in ``fit`` (a body at the
    user's height, grounded) against the pixel rows from the eyes to the soles (world z = 0 on the front
    camera). None when the eyes are not both seen or the camera is not orthographic."""
    kp, cam = front.keypoints, front.camera
    if kp is None or not isinstance(cam, OrthographicCamera):
        return None
    if float(np.min(np.asarray(kp.visibility)[_EYES])) < MIN_VISIBILITY:
        return None
    # 1. The eyes' height above the soles on the fitted body (metres).
    eye_height = float(fit.landmarks(lmap)[_EYES, 2].mean() - np.asarray(fit.vertices)[:, 2].min())
    # 2. The same span in the front view (pixels): the sole row is where the views' world has z = 0.
    sole_row = float(np.asarray(cam.project(np.zeros((1, 3))))[0, 1])
    eye_row = float(np.asarray(kp.xy)[_EYES, 1].mean())
    if eye_height <= 0 or sole_row <= eye_row:
        return None
    return (sole_row - eye_row) / eye_height


def rescaled_by_eyes(views: Sequence[View], front: View, fit: BodyFit, lmap: LandmarkMap) -> tuple[list[View], float]:
    """``views`` with their shared scale replaced by the eyes' where the mask's is larger by more than
    :data:`TOLERANCE` (see the module docstring); with the factor applied to the world (1.0: unchanged).

    The world is scaled about its origin (the soles on the views' vertical axis), so every view keeps the
    soles' row and the axis' column."""
    assert isinstance(front.camera, OrthographicCamera)
    mask_scale = float(np.mean(front.camera.scale))
    eyes = eye_scale(front, fit, lmap)
    if eyes is None or eyes >= mask_scale * (1.0 - TOLERANCE):
        return list(views), 1.0
    factor = mask_scale / eyes  # world lengths grow by this much
    return [v.with_camera(scaled_world(v.camera, factor)) if isinstance(v.camera, OrthographicCamera) else v
            for v in views], factor


def scaled_world(camera: OrthographicCamera, factor: float) -> OrthographicCamera:
    """The camera that shows a world ``factor`` times larger (about the origin) on the same pixels."""
    return replace(camera, scale=np.asarray(camera.scale, np.float64) / factor,
                   center=np.asarray(camera.center, np.float64) * factor)
