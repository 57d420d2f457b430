"""Mask arithmetic shared by every stage and metric (numpy only)."""

from __future__ import annotations

import numpy as np


def mask_iou(a: np.ndarray, b: np.ndarray, level: float = 0.5) -> float:
    """Intersection over union of two masks (bool, or soft in [0, 1] thresholded at ``level``); 1 when both
    are empty. The one IoU: the clothed surface's convergence test and the quality metrics use it."""
    a = a if a.dtype == bool else a > level
    b = b if b.dtype == bool else b > level
    union = np.count_nonzero(a | b)
    return float(np.count_nonzero(a & b)) / union if union else 1.0
