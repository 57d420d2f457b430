"""The segmenter interface: one photo in, one soft foreground mask out."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from ..imaging.backends import Availability


class Segmenter(ABC):
    """Separates people from the background.

    ``segment`` returns a float32 (H, W) mask in [0, 1] for the *whole* image (every person it sees);
    choosing the one person to reconstruct is :func:`~strata.core.segmentation.people.find_people`'s job,
    so backends stay simple and interchangeable. A backend that sees nobody returns an all-zero mask
    rather than raising, for the same reason.
    """

    name: ClassVar[str]

    @classmethod
    @abstractmethod
    def availability(cls) -> Availability:
        """Whether this backend can run here, checked cheaply (no model load, no heavy import)."""

    @abstractmethod
    def segment(self, rgba: np.ndarray) -> np.ndarray:
        """(H, W, 3|4) uint8 image -> (H, W) float32 mask in [0, 1]."""


def check_image(rgba: np.ndarray) -> None:
    """Shared input validation, so every backend fails the same way on a programming error."""
    if rgba.ndim != 3 or rgba.shape[-1] not in (3, 4) or rgba.dtype != np.uint8:
        raise ValueError(f"expected (H, W, 3|4) uint8, got {rgba.shape} {rgba.dtype}")
