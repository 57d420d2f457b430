"""Fabric textures: a layer's colour with the structure of its material, painted procedurally.

Why procedural: the layers must look like cloth, leather and hair in a render with no texture assets to ship
or license, and the same seed must give the same pixels. Each fabric is the colour modulated by a pattern
in UV space (twill lines for denim, a knit grid, fine grain for leather, strands for hair) and low-frequency
mottling so large areas do not look flat.
"""

from __future__ import annotations

import numpy as np

FABRICS = ("cotton", "denim", "knit", "leather", "wool", "canvas", "hair")


def fabric_texture(color: tuple[int, int, int], fabric: str, size: int = 512, seed: int = 0) -> np.ndarray:
    """(size, size, 3) uint8 sRGB texture of ``fabric`` in ``color``."""
    if fabric not in FABRICS:
        raise ValueError(f"unknown fabric {fabric!r}; known: {', '.join(FABRICS)}")
    rng = np.random.default_rng(seed)
    v, u = np.mgrid[0:size, 0:size] / size
    grain = rng.normal(0.0, 1.0, (size, size))
    pattern = {
        "cotton": 0.04 * grain,
        "denim": 0.10 * np.sin(2 * np.pi * 90 * (u + v)) + 0.06 * grain,
        "knit": 0.07 * np.sin(2 * np.pi * 70 * u) * np.sin(2 * np.pi * 35 * v) + 0.04 * grain,
        "leather": 0.05 * _blur(grain, 2) * 3,
        "wool": 0.09 * _blur(grain, 1) * 2,
        "canvas": 0.05 * (np.sin(2 * np.pi * 120 * u) + np.sin(2 * np.pi * 120 * v)) + 0.03 * grain,
        "hair": 0.6 * _blur_axis(rng.normal(0.0, 1.0, (size, size)), 24, axis=0),
    }[fabric]
    mottle = 0.06 * _blur(rng.normal(0.0, 1.0, (size, size)), 24) * 8
    shade = np.clip(1.0 + pattern + mottle, 0.0, 2.0)[..., None]
    rgb = np.asarray(color, np.float64)[None, None] * shade
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _blur(image: np.ndarray, radius: int) -> np.ndarray:
    """Box blur over ``radius`` pixels each way (wrapping, so the texture tiles)."""
    return _blur_axis(_blur_axis(image, radius, 0), radius, 1)


def _blur_axis(image: np.ndarray, radius: int, axis: int) -> np.ndarray:
    """Box blur along one axis (long hair: strands along V, the rows)."""
    if radius <= 0:
        return image
    return sum(np.roll(image, k, axis=axis) for k in range(-radius, radius + 1)) / (2 * radius + 1)
