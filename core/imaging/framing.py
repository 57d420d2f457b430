"""Frame a segmented person the way PSHuman's multiview diffusion expects, and keep the mapping exact.

PSHuman (``mvdiffusion/data/single_image_dataset.py``) crops the photo to the alpha bounding box, resizes
it so the long side is 740 px, pastes it centred on a 768x768 canvas and composites onto white; its face
view is the fixed top-centre tile (x 256-512, y 0-256) of that canvas, upscaled to 768. The network was
trained on exactly that layout, so any path that feeds it (or compares with its outputs) must reproduce
it; this module is the one place that does.

Unlike a plain crop-resize-paste, the framing here is a single uniform-scale affine map, returned as a
:class:`CropTransform`, so keypoints, silhouettes and later texture projections move between the photo and
the canvas with no rounding drift. Coordinates are *continuous* pixel coordinates: pixel (row i, col j)
covers [j, j+1) x [i, i+1), so its centre is (j + 0.5, i + 0.5). MediaPipe's normalised landmarks times
the image size are already in this convention.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from PIL import Image

from .errors import NoPersonError

#: PSHuman canvas side and person long side.
CANVAS_SIZE = 768
PERSON_LONG_SIDE = 740


@dataclass(frozen=True)
class CropTransform:
    """Uniform scale + translation: ``dst = src * scale + offset`` (continuous pixel coordinates)."""

    scale: float
    offset: tuple[float, float]  # (x, y) in destination pixels

    def to_framed(self, xy: ArrayLike) -> np.ndarray:
        """Map (..., 2) source-image coordinates to the destination image."""
        pts = np.asarray(xy, dtype=np.float64)
        return pts * self.scale + np.asarray(self.offset)

    def to_original(self, xy: ArrayLike) -> np.ndarray:
        """Map (..., 2) destination coordinates back to the source image."""
        pts = np.asarray(xy, dtype=np.float64)
        return (pts - np.asarray(self.offset)) / self.scale

    def inverse(self) -> CropTransform:
        return CropTransform(1.0 / self.scale, (-self.offset[0] / self.scale, -self.offset[1] / self.scale))

    def then(self, other: CropTransform) -> CropTransform:
        """The transform that applies ``self`` first, then ``other`` (e.g. photo -> canvas -> face tile)."""
        return CropTransform(
            self.scale * other.scale,
            (
                self.offset[0] * other.scale + other.offset[0],
                self.offset[1] * other.scale + other.offset[1],
            ),
        )

    def as_matrix(self) -> np.ndarray:
        """2x3 affine matrix (for cv2.warpAffine and friends)."""
        return np.array([[self.scale, 0.0, self.offset[0]], [0.0, self.scale, self.offset[1]]])


@dataclass(frozen=True)
class FramedImage:
    """The person on the PSHuman canvas.

    Attributes:
        rgb: (S, S, 3) uint8, person composited onto ``background`` (white by default).
        alpha: (S, S) float32 in [0, 1], the person mask on the same canvas.
        transform: photo -> canvas mapping.
        bbox: (x0, y0, x1, y1) of the person in the photo, continuous coordinates (x1/y1 exclusive).
    """

    rgb: np.ndarray
    alpha: np.ndarray
    transform: CropTransform
    bbox: tuple[int, int, int, int]

    @property
    def rgba(self) -> np.ndarray:
        """(S, S, 4) uint8 with the mask as alpha (colour already composited onto the background)."""
        a = (np.clip(self.alpha, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        return np.dstack([self.rgb, a])


@dataclass(frozen=True)
class FaceTile:
    """PSHuman's face view: the top-centre third of the canvas, upscaled.

    ``transform`` maps *canvas* coordinates to tile coordinates; compose with ``FramedImage.transform``
    (``framed.transform.then(tile.transform)``) to go from the photo to the tile.
    """

    rgb: np.ndarray
    transform: CropTransform


def mask_bbox(mask: np.ndarray, threshold: float = 0.5) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) of ``mask > threshold`` with exclusive x1/y1, or None if empty.

    ``mask`` may be float in [0, 1], uint8 in [0, 255] (scaled first, so the threshold means the same) or bool.
    """
    on = _as_unit_mask(mask) > threshold
    rows = np.flatnonzero(on.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(on.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def composite_on_color(
    image: np.ndarray, mask: np.ndarray | None = None, color: tuple[int, int, int] = (255, 255, 255)
) -> np.ndarray:
    """Blend an (H, W, 3|4) uint8 image over a flat colour using ``mask`` (or the image's own alpha).

    Used for PSHuman's white background and to feed RGB-only models (pose) with a cut-out photo.
    """
    rgb = image[..., :3].astype(np.float32)
    if mask is None:
        if image.shape[-1] != 4:
            return np.ascontiguousarray(image[..., :3])
        a = image[..., 3].astype(np.float32) / 255.0
    else:
        a = _as_unit_mask(mask)
    out = rgb * a[..., None] + np.asarray(color, np.float32) * (1.0 - a[..., None])
    return (out + 0.5).clip(0, 255).astype(np.uint8)


def frame_person(
    image: np.ndarray,
    mask: np.ndarray | None = None,
    *,
    canvas_size: int = CANVAS_SIZE,
    long_side: int = PERSON_LONG_SIDE,
    background: tuple[int, int, int] = (255, 255, 255),
    bbox_threshold: float = 0.5,
) -> FramedImage:
    """Put the masked person on a square canvas, PSHuman-style, and return the exact photo->canvas map.

    Args:
        image: (H, W, 3) or (H, W, 4) uint8 photo.
        mask: (H, W) person mask, float in [0, 1] or uint8 in [0, 255]. If None, the image's alpha is used.
            Pass the *single-person* mask from ``find_people`` so other people do not widen the bbox.
        canvas_size: side of the square output (768 for PSHuman).
        long_side: the person's bounding-box long side on the canvas (740 for PSHuman).
        background: colour behind the person.
        bbox_threshold: mask level that counts as person when measuring the bbox; faint matting halos
            below it do not change the scale but are still drawn.

    Raises:
        NoPersonError: the mask is empty.
    """
    if image.ndim != 3 or image.shape[-1] not in (3, 4) or image.dtype != np.uint8:
        raise ValueError(f"expected (H, W, 3|4) uint8, got {image.shape} {image.dtype}")
    if mask is None:
        if image.shape[-1] != 4:
            raise ValueError("an RGB image needs a mask")
        mask = image[..., 3]
    a = _as_unit_mask(mask)
    if a.shape != image.shape[:2]:
        raise ValueError(f"mask shape {a.shape} does not match image {image.shape[:2]}")
    bbox = mask_bbox(a, bbox_threshold)
    if bbox is None:
        raise NoPersonError("The person mask is empty, so there is nothing to frame.")
    x0, y0, x1, y1 = bbox

    scale = long_side / max(x1 - x0, y1 - y0)
    offset = (canvas_size / 2 - scale * (x0 + x1) / 2, canvas_size / 2 - scale * (y0 + y1) / 2)
    transform = CropTransform(scale, offset)

    # The canvas covers this box of the photo; pad the photo so the box lies inside it (Pillow's resize
    # needs that), then resample box -> canvas in one antialiased step.
    bx0, by0 = transform.to_original((0.0, 0.0))
    bx1, by1 = transform.to_original((canvas_size, canvas_size))
    h, w = a.shape
    pad_l, pad_t = max(0, math.ceil(-bx0)), max(0, math.ceil(-by0))
    pad_r, pad_b = max(0, math.ceil(bx1 - w)), max(0, math.ceil(by1 - h))
    box = (bx0 + pad_l, by0 + pad_t, bx1 + pad_l, by1 + pad_t)

    # Compositing first then resampling equals resampling premultiplied colour: no dark fringes.
    flat = composite_on_color(image[..., :3], a, background)
    flat = np.stack(
        [np.pad(flat[..., c], ((pad_t, pad_b), (pad_l, pad_r)), constant_values=background[c]) for c in range(3)],
        axis=-1,
    )
    a_pad = np.pad(a, ((pad_t, pad_b), (pad_l, pad_r)))

    size = (canvas_size, canvas_size)
    rgb = np.asarray(Image.fromarray(flat).resize(size, Image.Resampling.LANCZOS, box=box))
    alpha = np.asarray(Image.fromarray(a_pad, mode="F").resize(size, Image.Resampling.LANCZOS, box=box))
    return FramedImage(
        rgb=np.ascontiguousarray(rgb),
        alpha=np.clip(alpha, 0.0, 1.0).astype(np.float32),
        transform=transform,
        bbox=bbox,
    )


def face_tile(canvas_rgb: np.ndarray, *, size: int | None = None) -> FaceTile:
    """PSHuman's face view: canvas pixels x in [S/3, 2S/3), y in [0, S/3), upscaled to ``size`` (default S).

    For the 768 canvas that is exactly x 256-512, y 0-256. The window is fixed, not face-detected, because
    that is what the diffusion model was trained on; it assumes an upright full-body framing.
    """
    s = canvas_rgb.shape[0]
    if canvas_rgb.shape[1] != s:
        raise ValueError(f"expected a square canvas, got {canvas_rgb.shape[:2]}")
    out = size or s
    third = s // 3
    crop = Image.fromarray(np.ascontiguousarray(canvas_rgb[0:third, third : 2 * third]))
    tile = np.asarray(crop.resize((out, out), Image.Resampling.BICUBIC))
    scale = out / third
    return FaceTile(rgb=np.ascontiguousarray(tile), transform=CropTransform(scale, (-third * scale, 0.0)))


def _as_unit_mask(mask: np.ndarray) -> np.ndarray:
    m = np.asarray(mask)
    if m.dtype == np.uint8:
        return m.astype(np.float32) / 255.0
    if m.dtype == bool:
        return m.astype(np.float32)
    return np.clip(m.astype(np.float32), 0.0, 1.0)
