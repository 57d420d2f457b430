"""The pose-estimator interface: one RGB photo in, one person's 33 keypoints out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from ..imaging.backends import Availability
from .keypoints import Keypoints2D


class PoseEstimator(ABC):
    """Estimates the pose of the most prominent person in an image.

    Implementations must raise :class:`~strata.core.imaging.errors.NoPoseError` when they find nobody,
    never return an empty or all-invisible result, so callers have a single failure path.
    """

    name: ClassVar[str]

    @classmethod
    @abstractmethod
    def availability(cls) -> Availability:
        """Whether this backend can run here (cheap: no model is loaded)."""

    @abstractmethod
    def estimate(self, rgb: np.ndarray) -> Keypoints2D:
        """Keypoints of the most prominent person in an (H, W, 3) uint8 RGB image, in its pixel coordinates."""
