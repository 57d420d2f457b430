"""2D pose from one photo (MediaPipe Pose, 33 landmarks). Pure compute; mediapipe is imported lazily."""

from ..imaging.errors import NoPoseError
from .base import PoseEstimator
from .keypoints import LANDMARK_NAMES, Keypoints2D
from .mediapipe_backend import MediaPipePoseEstimator
from .mediapipe_graph import MediaPipePoseGraph, PoseGraphOutput, mediapipe_pose_availability, shared_pose_graph
from .search import detect_pose

__all__ = [
    "LANDMARK_NAMES",
    "Keypoints2D",
    "MediaPipePoseEstimator",
    "MediaPipePoseGraph",
    "NoPoseError",
    "PoseEstimator",
    "PoseGraphOutput",
    "detect_pose",
    "mediapipe_pose_availability",
    "shared_pose_graph",
]
