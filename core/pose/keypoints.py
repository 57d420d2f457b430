"""2D body keypoints in MediaPipe Pose's 33-landmark layout.

The layout is MediaPipe's (BlazePose) because that is the only pose model that runs offline here; later
stages (SMPL-X / Anny fitting, rig placement) map from these names, so they are spelled out as data
rather than read from mediapipe at run time, which keeps this module importable without mediapipe.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..imaging.framing import CropTransform

#: MediaPipe Pose landmark names, in MediaPipe's index order. "left"/"right" are the *subject's* sides.
LANDMARK_NAMES: tuple[str, ...] = (
    "nose",
    "left_eye_inner",
    "left_eye",
    "left_eye_outer",
    "right_eye_inner",
    "right_eye",
    "right_eye_outer",
    "left_ear",
    "right_ear",
    "mouth_left",
    "mouth_right",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_pinky",
    "right_pinky",
    "left_index",
    "right_index",
    "left_thumb",
    "right_thumb",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
    "left_heel",
    "right_heel",
    "left_foot_index",
    "right_foot_index",
)
_INDEX = {n: i for i, n in enumerate(LANDMARK_NAMES)}


@dataclass(frozen=True)
class Keypoints2D:
    """One person's pose in one image.

    Attributes:
        names: the 33 landmark names (``LANDMARK_NAMES``).
        xy: (33, 2) float32 pixel coordinates in the image the estimate was made on, continuous convention
            (pixel (i, j) covers [j, j+1) x [i, i+1)). Points may lie outside the image: MediaPipe
            extrapolates hidden or cut-off joints, with low visibility.
        visibility: (33,) float32 in [0, 1], MediaPipe's likelihood that the point is visible (in frame and
            not occluded).
        world_xyz: (33, 3) float32 metres, exactly as MediaPipe gives them: origin midway between the hips,
            x towards the image right, y down, z towards the camera is *negative*. Scale comes from
            MediaPipe's body prior, not a measurement.
        image_size: (width, height) of the image ``xy`` refers to.
    """

    xy: np.ndarray
    visibility: np.ndarray
    world_xyz: np.ndarray
    image_size: tuple[int, int]
    names: tuple[str, ...] = field(default=LANDMARK_NAMES)

    def __post_init__(self) -> None:
        n = len(self.names)
        if self.xy.shape != (n, 2) or self.visibility.shape != (n,) or self.world_xyz.shape != (n, 3):
            raise ValueError(
                f"inconsistent keypoint shapes: xy {self.xy.shape}, visibility {self.visibility.shape}, "
                f"world {self.world_xyz.shape} for {n} names"
            )

    @staticmethod
    def index(name: str) -> int:
        """Landmark index of ``name`` (KeyError with the valid names if unknown)."""
        try:
            return _INDEX[name]
        except KeyError:
            raise KeyError(f"unknown landmark {name!r}; expected one of {LANDMARK_NAMES}") from None

    def point(self, name: str) -> np.ndarray:
        """(2,) pixel position of one landmark."""
        return self.xy[self.index(name)]

    def mapped(self, transform: CropTransform, image_size: tuple[int, int]) -> Keypoints2D:
        """The same pose expressed in another image (e.g. photo -> framed canvas via ``FramedImage.transform``).

        World coordinates and visibility do not depend on the image and are kept.
        """
        return Keypoints2D(
            xy=transform.to_framed(self.xy).astype(np.float32),
            visibility=self.visibility,
            world_xyz=self.world_xyz,
            image_size=image_size,
            names=self.names,
        )

    def mirrored(self) -> Keypoints2D:
        """The same pose as seen in the horizontally mirrored image: x -> width - x, world x -> -x, and
        every left landmark swapped with its right twin (a mirrored left hand is a right hand)."""
        w, _ = self.image_size
        swap = np.array([self.names.index(_twin(n)) for n in self.names])
        xy = self.xy[swap].copy()
        xy[:, 0] = w - xy[:, 0]
        world = self.world_xyz[swap].copy()
        world[:, 0] = -world[:, 0]
        return Keypoints2D(xy=xy, visibility=self.visibility[swap].copy(), world_xyz=world,
                           image_size=self.image_size, names=self.names)

    def in_frame(self, margin: float = 0.0) -> np.ndarray:
        """(33,) bool: the point lies inside the image, shrunk by ``margin`` pixels on every side."""
        w, h = self.image_size
        x, y = self.xy[:, 0], self.xy[:, 1]
        return (x >= margin) & (x <= w - margin) & (y >= margin) & (y <= h - margin)


def _twin(name: str) -> str:
    """``left_x`` <-> ``right_x`` and ``x_left`` <-> ``x_right``; names without a side are their own twin."""
    for a, b in (("left_", "right_"), ("right_", "left_")):
        if name.startswith(a):
            return b + name[len(a):]
    for a, b in (("_left", "_right"), ("_right", "_left")):
        if name.endswith(a):
            return name[: -len(a)] + b
    return name
