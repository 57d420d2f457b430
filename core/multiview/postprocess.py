"""PSHuman's 14 decoded images -> our :class:`~strata.core.views.View` convention (numpy only, no torch).

The facts this module encodes (official repository at f2a6351: ``inference.py`` save_mode 'rgb',
``mvdiffusion/data/dreamdata.py``, ``normal_utils.py``, ``configs/inference-768-6view.yaml``):

* **Order.** Each domain's 7 images are front, front_right, right, back, left, front_left, face; the normal
  maps come first, then the colour images.
* **Mirroring.** Training flipped the back and left targets horizontally (``flip_views = [3, 4]``,
  ``torch.flip(..., [2])`` on the already-encoded image), so the model generates them mirrored and inference
  flips them back. The flip moves pixels only; the encoded normal *values* were never changed, so un-mirroring
  is a pure pixel flip (no sign change of x).
* **Normal frame.** Every target normal map, whatever its view, is the world normal re-expressed in the
  FRONT (condition) camera's frame (``worldNormal2camNormal`` with the condition view's w2c), converted from
  OpenCV to OpenGL axes by negating y and z: x right, y up, z toward the viewer, encoded ``n * 0.5 + 0.5``.
  That is exactly :attr:`View.normal`'s frame, so decoding needs no axis change, only ``rgb * 2 - 1`` and a
  renormalisation.
* **Background.** Inputs and targets are composited on the same background colour (white at inference), so
  the generated normal maps and colours have a white background.
* **Front view.** The front colour is replaced by the input canvas itself; the face normal (view 6) is
  resized to the tile (a third of the side) and pasted hard into the front normal's top-centre tile
  (rows 0..S/3, columns S/3..2S/3); the face colour is discarded.
* **Masks.** PSHuman cuts each generated image out with rembg, which we cannot run offline. We take the mask
  from the **normal map's distance to white**: a unit normal's encoding ``n/2 + 1/2`` is at least
  ``(sqrt(3) - 1) / 2 = 0.37`` from white in RGB (unit-cube scale), while the background is white, so a
  threshold between is robust even for white clothing (the colour image's distance to white is not). The
  front view uses the photo's own mask (its colour *is* the photo); where that mask covers pixels the
  generated front normal map left as background (its silhouette is slightly off), the nearest generated
  normal is carried over (:func:`fill_normals`), so every masked pixel has a real unit normal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

#: The seven views of one domain, in the UNet's order.
VIEW_ORDER = ("front", "front_right", "right", "back", "left", "front_left", "face")
#: Views the model generates mirrored (left-right) and that are flipped back.
MIRRORED_VIEWS = ("back", "left")
#: Minimum distance of a unit normal's encoding from white, ``(sqrt(3) - 1) / 2``.
NORMAL_WHITE_GAP = (3**0.5 - 1.0) / 2.0
#: Distances to white (RGB in [0, 1], Euclidean) below LOW are background, above HIGH person, linear between.
MASK_LOW, MASK_HIGH = 0.10, 0.25


@dataclass(frozen=True)
class DecodedViews:
    """One generation's images as uint8 (7, S, S, 3) arrays in :data:`VIEW_ORDER`, as the VAE decoded them."""

    normals: np.ndarray
    colours: np.ndarray


def unmirror(images: np.ndarray) -> np.ndarray:
    """(7, S, S, 3) -> the same with :data:`MIRRORED_VIEWS` flipped left-right (pixels only)."""
    out = images.copy()
    for name in MIRRORED_VIEWS:
        i = VIEW_ORDER.index(name)
        out[i] = images[i, :, ::-1]
    return out


def paste_face_normal(front: np.ndarray, face: np.ndarray) -> np.ndarray:
    """The front normal map with the face normal map resized (bilinear) into its top-centre tile."""
    size = front.shape[0]
    third = size // 3
    tile = np.asarray(Image.fromarray(face).resize((third, third), Image.Resampling.BILINEAR))
    out = front.copy()
    out[:third, third : 2 * third] = tile
    return out


def mask_from_normal_map(normal_rgb: np.ndarray) -> np.ndarray:
    """(S, S) float32 in [0, 1]: how far each encoded normal is from the white background (see module doc)."""
    dist = np.linalg.norm(1.0 - normal_rgb.astype(np.float32) / 255.0, axis=-1)
    return np.clip((dist - MASK_LOW) / (MASK_HIGH - MASK_LOW), 0.0, 1.0).astype(np.float32)


def decode_unit_normals(normal_rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(S, S, 3) float32 unit normals in the front camera's frame inside ``mask > 0.5``, zeros outside."""
    n = normal_rgb.astype(np.float32) / 255.0 * 2.0 - 1.0
    length = np.linalg.norm(n, axis=-1, keepdims=True)
    unit = n / np.maximum(length, 1e-6)
    return (unit * (mask[..., None] > 0.5)).astype(np.float32)


def fill_normals(normals: np.ndarray, known: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``normals`` with each pixel of ``mask > 0.5`` outside ``known`` set to the nearest known pixel's normal
    (zeros outside ``mask``; unchanged if nothing is known)."""
    from scipy import ndimage

    inside = mask > 0.5
    if not known.any():
        return (normals * inside[..., None]).astype(np.float32)
    _, (rows, cols) = ndimage.distance_transform_edt(~known, return_indices=True)
    filled = normals[rows, cols]
    return (filled * inside[..., None]).astype(np.float32)


def to_pshuman_convention(decoded: DecodedViews, canvas_rgb: np.ndarray) -> DecodedViews:
    """Step 7a: un-mirror back/left, put the input canvas in as the front colour, paste the face normal."""
    normals, colours = unmirror(decoded.normals), unmirror(decoded.colours)
    front = VIEW_ORDER.index("front")
    colours[front] = canvas_rgb
    normals[front] = paste_face_normal(normals[front], normals[VIEW_ORDER.index("face")])
    return DecodedViews(normals=normals, colours=colours)
