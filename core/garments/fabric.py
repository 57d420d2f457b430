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


def hair_shade(vertices: np.ndarray, faces: np.ndarray, uvs: np.ndarray, uv_faces: np.ndarray, size: int,
               seed: int = 0, sheen: float = 0.22) -> np.ndarray:
    """(size, size) float32 brightness factor (around 1) that makes a hair layer read as hair: strands,
    clumps and a sheen band, painted by where each texel lies on the head, not by its UVs.

    Why in 3D: a hair cap reuses the body's scalp UVs, whose layout runs any which way; strands must run down
    from the crown whatever the atlas. A texel's strand is its angle around the vertical axis through the top
    of the hair (with a slow wander as it falls), so strands radiate from the crown and hang straight below
    it; clumps are wider bands of the same; the sheen is a light band a few centimetres below the top, where
    a head's highlight sits. ``sheen`` 0 leaves it out (a photo's hair brings its own light)."""
    from ..render.texture import fill_gutters, uv_coverage

    v = np.asarray(vertices, np.float64)
    tri, bary = uv_coverage(np.asarray(uvs, np.float32), np.asarray(uv_faces, np.int64), size)
    covered = tri >= 0
    f = np.asarray(faces, np.int64)[tri[covered]]
    p = np.einsum("pk,pkd->pd", bary[covered].astype(np.float64), v[f])
    # 1. Where each texel is: around the axis through the crown, and how far below the top.
    top = float(v[:, 2].max())
    crown = v[v[:, 2] > top - 0.03].mean(axis=0)
    theta = np.arctan2(p[:, 1] - crown[1], p[:, 0] - crown[0])
    below = top - p[:, 2]
    # 2. Strand bundles (about three per centimetre of a head's circumference: what a texture of this size can
    #    hold, finer aliases into blotches), wandering a little as they fall, and wider clumps.
    rng = np.random.default_rng(seed)
    strand = (theta + 0.015 * np.sin(below * 20.0 + 3.0 * theta)) / (2 * np.pi)
    fine = _periodic_noise(rng, 180, strand)
    clump = _periodic_noise(rng, 30, strand)
    # 3. The sheen band, broken by the strands.
    band = sheen * np.exp(-(((below - 0.055) / 0.018) ** 2)) * (1.0 + 0.8 * fine)
    shade = np.ones((size, size), np.float32)
    shade[covered] = np.clip(1.0 + 0.20 * fine + 0.16 * clump + band, 0.4, 1.8)
    return fill_gutters(shade[..., None], covered)[..., 0]


def _periodic_noise(rng: np.random.Generator, n: int, x: np.ndarray) -> np.ndarray:
    """Smooth 1-D noise of period 1 with ``n`` knots, zero mean and unit variance, at ``x`` (linear between
    knots)."""
    knots = rng.normal(0.0, 1.0, n)
    t = (np.asarray(x) % 1.0) * n
    i = np.floor(t).astype(np.int64) % n
    w = t - np.floor(t)
    return (1 - w) * knots[i] + w * knots[(i + 1) % n]
