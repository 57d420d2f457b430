"""Views of a person: what every image-consuming stage takes, from one photo to PSHuman's six generated views.

Why a type: today's CPU path sees one photo; the multiview path (PSHuman) sees six orthographic views with
normal maps, and users may bring views of their own (turntables, other generators). Stages that read images
(body fit, clothed surface, carving, texture) take a ``list[View]`` so both run through the same interfaces:
single-view backends use the first view, multiview backends all of them.

A :class:`View` is an image, the person's mask in it, the camera that maps the asset's world (metres, Z up,
facing -Y) to its pixels (None until a fit has found it, for a photo), and optionally a normal map and 2D
landmarks. :class:`MultiviewGenerator` is the stage that makes views from a photo (PSHuman's diffusion).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    from .pose.keypoints import Keypoints2D
    from .progress import Progress
    from .render.camera import Camera

#: PSHuman's six body views: name -> azimuth in degrees about the vertical axis (0 = the front camera; 90
#: stands at the front camera's right, so it sees the subject's left flank).
PSHUMAN_VIEWS: dict[str, float] = {
    "front": 0.0, "front_right": 45.0, "right": 90.0, "back": 180.0, "left": 270.0, "front_left": 315.0,
}

#: How much the body prior's and the texture's losses trust each of PSHuman's views (the side views least:
#: the diffusion model's 45-degree views are the least consistent).
PSHUMAN_VIEW_WEIGHTS: dict[str, float] = {
    "front": 1.0, "front_right": 0.4, "right": 0.8, "back": 1.0, "left": 0.8, "front_left": 0.4,
}


@dataclass(frozen=True)
class View:
    """One image of the person, with what is known about it."""

    name: str
    """"photo", or a view name of :data:`PSHUMAN_VIEWS` (or "face" for PSHuman's close-up)."""
    image: np.ndarray
    """(H, W, 3) uint8 sRGB."""
    mask: np.ndarray
    """(H, W) float32 in [0, 1]: the person."""
    camera: Camera | None = None
    """World -> this image's pixels; None while unknown (a photo before the body fit)."""
    normal: np.ndarray | None = None
    """(H, W, 3) float32 unit normals in the front camera's frame (x right, y up, z toward the viewer)."""
    keypoints: Keypoints2D | None = None
    """2D landmarks in this image's pixels, when detected."""
    weight: float = 1.0
    """How much losses trust this view (PSHuman: 1, .4, .8, 1, .8, .4 for the six body views)."""
    exact_mask: bool = False
    """The mask is the user's own cut-out (exact edges), not a segmentation's guess."""

    def __post_init__(self) -> None:
        h, w = self.mask.shape[:2]
        if self.image.shape[:2] != (h, w):
            raise ValueError(f"view {self.name!r}: image {self.image.shape[:2]} and mask {(h, w)} differ in size")
        if self.normal is not None and self.normal.shape[:2] != (h, w):
            raise ValueError(f"view {self.name!r}: normal map {self.normal.shape[:2]} and mask {(h, w)} differ")

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)."""
        return int(self.mask.shape[0]), int(self.mask.shape[1])

    def with_camera(self, camera: Camera) -> View:
        return replace(self, camera=camera)


def first(views: Sequence[View]) -> View:
    """The view a single-view backend uses (the photo, or the front view)."""
    if not views:
        raise ValueError("no views: a stage needs at least one")
    return views[0]


@runtime_checkable
class MultiviewGenerator(Protocol):
    """Photo -> views around the person (PSHuman: six orthographic body views plus a face close-up, each
    with a colour image and a normal map, all with cameras in one frame)."""

    name: str

    def generate(self, photo: View, *, seed: int | None = None, progress: Progress | None = None) -> list[View]:
        """The generated views; ``progress`` is called once per denoising step (a cancel raises there)."""
        ...
