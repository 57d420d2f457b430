"""The reconstruction's stages behind small interfaces, and the one place that picks their backends.

Why interfaces: each stage (person mask, 2D pose, body fit, clothed surface, texture, rig) will get better
backends over time (a GPU matting model, a learned body regressor, diffusion-made back views); the
pipeline in :mod:`strata.core.pipelines.reconstruct` talks to these protocols only, and
:func:`choose_backends` is the single function that maps a job's parameters (quality preset, segmenter,
rig) to concrete backends and their settings. Segmentation and pose already have their interfaces
(:class:`~strata.core.segmentation.base.Segmenter`, :class:`~strata.core.pose.base.PoseEstimator`) and
their own choosers; they are named here so the provenance lists every stage's backend.

Quality presets trade time for accuracy in the stages that iterate:

=========  ===================  =======================  ==================  ============
preset     fit: keypoint steps  fit: silhouette steps@px  surface iterations  texture cap
=========  ===================  =======================  ==================  ============
fast       40                   30 @ 128                 30                  1024
balanced   60                   40 @ 128, 40 @ 256       60                  2048
high       80                   60 @ 160, 60 @ 320       120                 4096
=========  ===================  =======================  ==================  ============
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from .fit import BodyFit, FitOptions

if TYPE_CHECKING:
    from strata.exchange.asset.schema import Rig, Skin

    from ..body.base import BodyModel
    from ..pose.keypoints import Keypoints2D
    from ..progress import Progress
    from ..render.camera import Camera


# --------------------------------------------------------------------------- interfaces


@runtime_checkable
class BodyFitter(Protocol):
    """Stage 5: a parametric body (shape + pose) and a camera from landmarks and a mask."""

    name: str

    def fit(self, body: BodyModel, keypoints: Keypoints2D, mask: np.ndarray, height_m: float, *,
            progress: Progress | None = None) -> BodyFit: ...


@runtime_checkable
class SurfaceFitter(Protocol):
    """Stage 6: the fitted body deformed to the person's silhouette (same topology)."""

    name: str

    def fit(self, vertices: np.ndarray, faces: np.ndarray, camera: Camera, mask: np.ndarray, *,
            progress: Progress | None = None) -> np.ndarray: ...


@runtime_checkable
class TextureBaker(Protocol):
    """Stage 7: a UV base-colour texture from the photo (unseen parts filled)."""

    name: str

    def bake(self, vertices: np.ndarray, faces: np.ndarray, uvs: np.ndarray, uv_faces: np.ndarray, camera: Camera,
             image: np.ndarray, mask: np.ndarray, *, size: int, mask_from_alpha: bool = True,
             progress: Progress | None = None) -> np.ndarray:
        """``mask_from_alpha``: the mask is the photo's own cut-out (exact), not a segmentation's guess."""
        ...


@runtime_checkable
class Rigger(Protocol):
    """Stage 8: a skeleton whose bind pose matches the surface, and skin weights for its vertices."""

    name: str

    def rig(self, body: BodyModel, fit: BodyFit, vertices: np.ndarray) -> tuple[Rig, Skin]: ...


# --------------------------------------------------------------------------- backends


@dataclass
class AnnyFitter:
    """The optimisation-based fit of :mod:`.fit` (anny, MediaPipe landmarks, soft silhouettes)."""

    options: FitOptions = field(default_factory=FitOptions)
    name: str = "anny-silhouette-fit"

    def fit(self, body: BodyModel, keypoints: Keypoints2D, mask: np.ndarray, height_m: float, *,
            progress: Progress | None = None) -> BodyFit:
        from .fit import fit_body

        return fit_body(body, keypoints, mask, height_m, options=self.options, progress=progress)


@dataclass
class SilhouetteSurface:
    """:func:`strata.core.reconstruct.surface.fit_clothed_surface` (smooth deformation to the mask)."""

    iterations: int = 60
    name: str = "silhouette-deform"

    def fit(self, vertices: np.ndarray, faces: np.ndarray, camera: Camera, mask: np.ndarray, *,
            progress: Progress | None = None) -> np.ndarray:
        from .surface import fit_clothed_surface

        return fit_clothed_surface(vertices, faces, camera, mask, iterations=self.iterations, progress=progress)


@dataclass
class ProjectionTexture:
    """:func:`strata.core.reconstruct.texture.bake_texture` (photo projection + fill)."""

    name: str = "photo-projection"

    def bake(self, vertices: np.ndarray, faces: np.ndarray, uvs: np.ndarray, uv_faces: np.ndarray, camera: Camera,
             image: np.ndarray, mask: np.ndarray, *, size: int, mask_from_alpha: bool = True,
             progress: Progress | None = None) -> np.ndarray:
        from .texture import bake_texture, mask_margin

        return bake_texture(vertices, faces, uvs, uv_faces, camera, image, mask, size=size,
                            mask_margin_px=mask_margin(mask, mask_from_alpha), progress=progress)


@dataclass
class CarriedRig:
    """The body model's own skeleton in the fitted pose as bind pose, with its top-4 skin weights carried
    over unchanged (the surface keeps the body's topology, vertex for vertex)."""

    name: str = "anny-carried"

    def rig(self, body: BodyModel, fit: BodyFit, vertices: np.ndarray) -> tuple[Rig, Skin]:
        from ..pipelines.common import rig_from, skin_from

        return rig_from(body, fit.joint_world, fit.bone_lengths), skin_from(body)


# --------------------------------------------------------------------------- presets and choice


@dataclass(frozen=True)
class QualityPreset:
    name: str
    fit: FitOptions
    surface_iterations: int
    max_texture_size: int


QUALITY_PRESETS: dict[str, QualityPreset] = {
    "fast": QualityPreset("fast", FitOptions(keypoint_iterations=40, silhouette_iterations=(30,),
                                             silhouette_sizes=(128,)), 30, 1024),
    "balanced": QualityPreset("balanced", FitOptions(), 60, 2048),
    "high": QualityPreset("high", FitOptions(keypoint_iterations=80, silhouette_iterations=(60, 60),
                                             silhouette_sizes=(160, 320)), 120, 4096),
}


@dataclass
class Backends:
    """Everything :func:`~strata.core.pipelines.reconstruct.reconstruct` needs to know about its stages."""

    preset: QualityPreset
    segmentation: str
    pose: str
    body_fit: BodyFitter
    surface: SurfaceFitter
    texture: TextureBaker
    rig: Rigger
    texture_size: int
    body_rig: str

    def names(self) -> dict[str, str]:
        """Stage -> backend name, for the asset's provenance (segmentation is filled in once it ran)."""
        return {
            "segmentation": self.segmentation,
            "pose": self.pose,
            "body_fit": self.body_fit.name,
            "surface": self.surface.name,
            "texture": self.texture.name,
            "rig": self.rig.name,
            "quality": self.preset.name,
        }


def choose_backends(params: dict[str, Any]) -> Backends:
    """Backends and settings for a ``reconstruct`` job's parameters (as validated by exchange/wire/jobs.py).

    ``quality`` picks the iteration counts and silhouette resolutions; the texture is at least 1024 px (the
    issue's floor) and at most the preset's cap.
    """
    quality = str(params.get("quality", "balanced"))
    if quality not in QUALITY_PRESETS:
        raise ValueError(f"unknown quality preset {quality!r}; expected one of {sorted(QUALITY_PRESETS)}")
    preset = QUALITY_PRESETS[quality]
    size = int(params.get("texture_size", 2048))
    size = max(1024, min(size, preset.max_texture_size))
    return Backends(
        preset=preset,
        segmentation=str(params.get("segmentation", "auto")),
        pose="mediapipe",
        body_fit=AnnyFitter(preset.fit),
        surface=SilhouetteSurface(preset.surface_iterations),
        texture=ProjectionTexture(),
        rig=CarriedRig(),
        texture_size=size,
        body_rig=str(params.get("rig", "anny")),
    )
