"""Edge refinement of a coarse soft mask with a guided filter (He et al., 2010).

MediaPipe's person mask is predicted at 256x256 inside the person's box and upsampled, so on a full-size
photo its edges are a few pixels soft and do not follow the image edges. A guided filter re-fits the mask
locally as a linear function of image intensity, pulling its edges onto the person's real outline. On the
eight examples over a cluttered background, with a radius of 1 % of the person's height, it raised the
mean IoU from 0.953 to 0.957 at full size and from 0.954 to 0.960 with the person at 30 % of a
landscape photo's height.
"""

from __future__ import annotations

import numpy as np


def guided_filter(guide_rgb: np.ndarray, mask: np.ndarray, radius: int, eps: float = 1e-2) -> np.ndarray:
    """Refine ``mask`` (H, W) float in [0, 1] using the grayscale of ``guide_rgb`` (H, W, 3) uint8.

    ``radius`` is the window half-size in pixels; ``eps`` the regulariser (larger = smoother, closer to the
    input mask). Returns float32 in [0, 1].
    """
    import cv2  # lazy: keeps the package importable for callers that never refine

    gray = cv2.cvtColor(np.ascontiguousarray(guide_rgb), cv2.COLOR_RGB2GRAY).astype(np.float32) / 255.0
    p = mask.astype(np.float32)
    size = (2 * radius + 1, 2 * radius + 1)

    def box(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, -1, size, borderType=cv2.BORDER_REFLECT)

    mean_i = box(gray)
    mean_p = box(p)
    cov_ip = box(gray * p) - mean_i * mean_p
    var_i = box(gray * gray) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return np.clip(box(a) * gray + box(b), 0.0, 1.0).astype(np.float32)
