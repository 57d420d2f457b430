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

Mirror averaging: MediaPipe's 3D ("world") landmarks are handed. On 16 synthetic photos (8 people, photo
and cut-out, :mod:`strata.core.reconstruct.synthetic`) its body yaw (from the shoulder and hip lines)
was off by +4.0 deg on average (6.8 deg mean absolute), and by -5.5 deg on the mirrored images;
averaging the estimate with the mirrored image's, mirrored back, removes that bias (-0.7 deg, 5.6 deg
mean absolute) and lowers the limbs' depth-tilt error (9.4 -> 8.5 deg). Those world landmarks are the
fit's only depth cue, so :meth:`estimate` averages them by default (one more ~30 ms pass). The 2D
points, which are accurate and what the fit matches, stay the image's own.
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
        mirror_average: bool = True,
    ) -> None:
        """``pad_fraction``: border added on every side, as a fraction of the image's long side.
        ``search``: when the full image yields nobody, look for a small person in sub-windows
        (see :mod:`strata.core.pose.search`).
        ``mirror_average``: average the 3D landmarks with those of the mirrored image (module docstring).
        """
        if not 0.0 <= pad_fraction <= 1.0:
            raise ValueError("pad_fraction must be in [0, 1]")
        self.pad_fraction = pad_fraction
        self.pad_color = pad_color
        self.search = search
        self.mirror_average = mirror_average

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
        keypoints = Keypoints2D(
            xy=xy.astype(np.float32),
            visibility=np.clip(out.landmarks[:, 3], 0.0, 1.0).astype(np.float32),
            world_xyz=out.world.astype(np.float32),
            image_size=(w, h),
            names=LANDMARK_NAMES,
        )
        if self.mirror_average and np.isfinite(keypoints.world_xyz).all():
            keypoints = self._mirror_averaged(keypoints, src, pad)
        return keypoints

    def _mirror_averaged(self, keypoints: Keypoints2D, src: np.ndarray, pad: int) -> Keypoints2D:
        """``keypoints`` with its world landmarks averaged with the mirrored image's (mirrored back).
        The mirrored pass must find the same person: if it finds nobody, or its 2D points disagree by
        more than a tenth of the image height (another person, or left and right confused), the
        image's own estimate is kept."""
        from dataclasses import replace

        out = detect_pose(np.ascontiguousarray(src[:, ::-1]), search=False)
        if out.landmarks is None or not np.isfinite(out.world).all():
            return keypoints
        ph, pw = src.shape[:2]
        xy = out.landmarks[:, :2] * np.array([pw, ph], np.float32) - pad
        # The padding is symmetric, so mirroring the unpadded coordinates about the image width is exact.
        flipped = Keypoints2D(xy=xy.astype(np.float32), visibility=keypoints.visibility,
                              world_xyz=out.world.astype(np.float32), image_size=keypoints.image_size,
                              names=LANDMARK_NAMES)
        back = flipped.mirrored()
        if float(np.median(np.linalg.norm(back.xy - keypoints.xy, axis=1))) > 0.1 * keypoints.image_size[1]:
            return keypoints
        world = 0.5 * (keypoints.world_xyz + back.world_xyz)
        return replace(keypoints, world_xyz=world.astype(np.float32))


def build_estimator() -> MediaPipePoseEstimator:
    """The registry's builder (:mod:`strata.core.backends`): the estimator with its graph built now, so the
    first job does not pay for it."""
    from .mediapipe_graph import shared_pose_graph

    shared_pose_graph()
    return MediaPipePoseEstimator()
