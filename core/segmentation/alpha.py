"""Use the photo's own alpha channel: the user (or a tool like remove.bg) already cut the person out.

This is the best mask there is when present: hand- or matting-quality edges, hair included, at zero cost.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from ..imaging.backends import Availability
from .base import Segmenter, check_image


class AlphaSegmenter(Segmenter):
    name: ClassVar[str] = "alpha"

    @classmethod
    def availability(cls) -> Availability:
        # Always runnable; whether a given *photo* has a usable alpha is decided by the loader's has_cutout.
        return Availability(True)

    def segment(self, rgba: np.ndarray) -> np.ndarray:
        check_image(rgba)
        if rgba.shape[-1] != 4:
            raise ValueError("the alpha backend needs an RGBA image")
        return rgba[..., 3].astype(np.float32) / 255.0
