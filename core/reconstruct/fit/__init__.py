"""Body fit: a body model's shape and pose, plus an orthographic camera, fitted to 2D landmarks and a person
mask (one photo).

By idea:

* :mod:`.init`: where the fit starts (closed form from MediaPipe's 3D landmarks, and the camera).
* :mod:`.problem`: the unknowns and the objective (camera model, losses, priors), on ``body.device``.
* :mod:`.optimise`: L-BFGS per stage, keeping the best parameters.
* :mod:`.api`: :class:`FitOptions`, :class:`BodyFit`, :func:`fit_body` (the coarse-to-fine schedule) and
  :func:`reframe_camera`.
"""

from __future__ import annotations

from .api import BodyFit, FitOptions, default_rasterizer, fit_body, reframe_camera
from .init import MEDIAPIPE_DEPTH_SHARE, initial_pose, mediapipe_world_to_body, solve_camera
from .problem import axis_angle_to_matrix

__all__ = [
    "MEDIAPIPE_DEPTH_SHARE",
    "BodyFit",
    "FitOptions",
    "axis_angle_to_matrix",
    "default_rasterizer",
    "fit_body",
    "initial_pose",
    "mediapipe_world_to_body",
    "reframe_camera",
    "solve_camera",
]

