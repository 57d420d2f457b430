"""MediaPipe Pose (BlazePose, complexity 1) as a :class:`PoseEstimator`.

Measured on the eight example photos (2 cores, see the tests): detection succeeded on every photo, raw or
composited onto a cluttered background, framed on the 768 canvas or not, tightly cropped so the person
touches all four borders or not. Padding the image made no measurable difference (median flip-consistency
0.4-1.6 % of body height either way), because the pose detector letterboxes to its own square input and
the landmark ROI may extend past the image. Padding is therefore off by default; ``pad_fraction`` stays
available for odd inputs. The framed 768 canvas (white background) was the most self-consistent input
(median flip error 0.59 % of body height against 0.83 % for the raw photo on clutter), so run pose on
the framed image when one exists and map the points back with its transform.

What does matter is a person who is *small* in the frame: the detector misses them, so the estimator
searches sub-windows when the full image yields nobody (:mod:`strata.core.pose.search`).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ..imaging.backends import Availability
from ..imaging.errors import NoPoseError
from ..imaging.framing import composite_on_color
from .base import PoseEstimator
from .keypoints import LANDMARK_NAMES, Keypoints2D
from .mediapipe_graph import mediapipe_pose_availability
from .search import detect_pose


class MediaPipePoseEstimator(PoseEstimator):
    """MediaPipe Pose on the shared graph. Thread-safe: calls are serialised on the graph's lock."""

    name: ClassVar[str] = "mediapipe"

    def __init__(
        self,
        *,
        pad_fraction: float = 0.0,
        pad_color: tuple[int, int, int] = (255, 255, 255),
        search: bool = True,
    ) -> None:
        """``pad_fraction``: border added on every side, as a fraction of the image's long side.
        ``search``: when the full image yields nobody, look for a small person in sub-windows
        (see :mod:`strata.core.pose.search`).
        """
        if not 0.0 <= pad_fraction <= 1.0:
            raise ValueError("pad_fraction must be in [0, 1]")
        self.pad_fraction = pad_fraction
        self.pad_color = pad_color
        self.search = search

    @classmethod
    def availability(cls) -> Availability:
        return mediapipe_pose_availability()

    def estimate(self, rgb: np.ndarray) -> Keypoints2D:
        """Keypoints of the most prominent person.

        Accepts (H, W, 4) too: a cut-out is composited onto white first, as the model never saw alpha.

        Raises:
            NoPoseError: nobody detected.
            BackendUnavailableError / BackendFailedError: MediaPipe missing or failing.
        """
        if rgb.ndim != 3 or rgb.shape[-1] not in (3, 4) or rgb.dtype != np.uint8:
            raise ValueError(f"expected (H, W, 3) uint8 RGB, got {rgb.shape} {rgb.dtype}")
        if rgb.shape[-1] == 4:
            rgb = composite_on_color(rgb)
        h, w = rgb.shape[:2]
        pad = int(round(self.pad_fraction * max(h, w)))
        src = rgb
        if pad:
            src = np.empty((h + 2 * pad, w + 2 * pad, 3), np.uint8)
            src[...] = np.asarray(self.pad_color, np.uint8)
            src[pad : pad + h, pad : pad + w] = rgb

        out = detect_pose(src, search=self.search)
        if out.landmarks is None:
            raise NoPoseError("No person was detected in the photo.", image_size=(w, h))

        ph, pw = src.shape[:2]
        xy = out.landmarks[:, :2] * np.array([pw, ph], np.float32) - pad
        return Keypoints2D(
            xy=xy.astype(np.float32),
            visibility=np.clip(out.landmarks[:, 3], 0.0, 1.0).astype(np.float32),
            world_xyz=out.world.astype(np.float32),
            image_size=(w, h),
            names=LANDMARK_NAMES,
        )
