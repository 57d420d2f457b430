"""The reconstruction's stage interfaces, their CPU backends, and the quality presets.

Why interfaces: each stage (body fit, clothed surface, texture, rig) gets better backends over time (PSHuman's
multiview carving, a learned body regressor); :mod:`strata.core.pipelines.reconstruct` talks to these
protocols only. Stages that read images take a list of :class:`~strata.core.views.View` (the photo today,
PSHuman's six views next); single-view backends use the first. Which backend runs is decided by the one
registry (:mod:`strata.core.backends`); :func:`choose_backends` asks it for every stage and applies the
job's quality preset. Backends are built with the job's :class:`~strata.core.compute.ComputeEnv`, so their
tensors live on its device.

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

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from ..compute import ComputeEnv
from ..views import View, first
from .fit import BodyFit, FitOptions

if TYPE_CHECKING:
    from strata.exchange.asset.schema import Rig, Skin

    from ..body.base import BodyModel
    from ..cache import ModelCache
    from ..progress import Progress
    from ..render.base import Rasterizer


# --------------------------------------------------------------------------- interfaces


@runtime_checkable
class BodyFitter(Protocol):
    """A parametric body (shape + pose) and each view's camera, from the views' landmarks and masks."""

    name: str

    def fit(self, body: BodyModel, views: Sequence[View], height_m: float, *,
            progress: Progress | None = None) -> BodyFit: ...


@runtime_checkable
class SurfaceFitter(Protocol):
    """The fitted body deformed to the person's outline in the views (same topology)."""

    name: str

    def fit(self, vertices: np.ndarray, faces: np.ndarray, views: Sequence[View], *,
            progress: Progress | None = None) -> np.ndarray: ...


@runtime_checkable
class TextureBaker(Protocol):
    """A UV base-colour texture from the views (unseen parts filled)."""

    name: str

    def bake(self, vertices: np.ndarray, faces: np.ndarray, uvs: np.ndarray, uv_faces: np.ndarray,
             views: Sequence[View], *, size: int, progress: Progress | None = None,
             base: np.ndarray | None = None, cache: ModelCache | None = None) -> np.ndarray: ...


@runtime_checkable
class Rigger(Protocol):
    """A skeleton whose bind pose matches the surface, and skin weights for its vertices."""

    name: str

    def rig(self, body: BodyModel, fit: BodyFit, vertices: np.ndarray) -> tuple[Rig, Skin]: ...


# --------------------------------------------------------------------------- backends


def _rasterizer(env: ComputeEnv, cache: ModelCache | None = None) -> Rasterizer:
    from ..render import get_rasterizer

    return get_rasterizer(env=env, cache=cache)


@dataclass
class AnnyFitter:
    """The optimisation-based fit of :mod:`.fit` (anny, MediaPipe landmarks, soft silhouettes) on the first
    view, with the environment's rasterizer."""

    env: ComputeEnv = field(default_factory=ComputeEnv)
    options: FitOptions = field(default_factory=FitOptions)
    name: str = "anny-silhouette-fit"

    def fit(self, body: BodyModel, views: Sequence[View], height_m: float, *,
            progress: Progress | None = None) -> BodyFit:
        from .fit import fit_body

        view = first(views)
        if view.keypoints is None:
            raise ValueError(f"the body fit needs 2D landmarks on view {view.name!r}")
        return fit_body(body, view.keypoints, view.mask, height_m, options=self.options, progress=progress,
                        rasterizer=_rasterizer(self.env))


@dataclass
class SilhouetteSurface:
    """:func:`strata.core.reconstruct.surface.fit_clothed_surface` on the first view (smooth deformation to
    its mask, seen through its camera)."""

    env: ComputeEnv = field(default_factory=ComputeEnv)
    iterations: int = 60
    name: str = "silhouette-deform"

    def fit(self, vertices: np.ndarray, faces: np.ndarray, views: Sequence[View], *,
            progress: Progress | None = None) -> np.ndarray:
        from .surface import fit_clothed_surface

        view = first(views)
        if view.camera is None:
            raise ValueError(f"the clothed surface needs the camera of view {view.name!r}")
        return fit_clothed_surface(vertices, faces, view.camera, view.mask, iterations=self.iterations,
                                   progress=progress, rasterizer=_rasterizer(self.env))


@dataclass
class ProjectionTexture:
    """:func:`strata.core.reconstruct.texture.bake_texture` from the photo (projection + fill); several views
    (the views paths' layers) combine by :func:`~strata.core.reconstruct.texture.bake_texture_views`."""

    env: ComputeEnv = field(default_factory=ComputeEnv)
    name: str = "photo-projection"

    def bake(self, vertices: np.ndarray, faces: np.ndarray, uvs: np.ndarray, uv_faces: np.ndarray,
             views: Sequence[View], *, size: int, progress: Progress | None = None,
             base: np.ndarray | None = None, cache: ModelCache | None = None) -> np.ndarray:
        """``base``: what unseen texels take (else the fill field); ``cache``: where the UV layout is kept
        (default: the process's; a one-off layout, a garment's, belongs in a throwaway cache)."""
        from .texture import bake_texture, bake_texture_views, mask_margin

        if len(views) > 1:  # several views (the views paths' layers): combined by view weight x cos^2
            return bake_texture_views(vertices, faces, uvs, uv_faces, views, size=size, progress=progress,
                                      rasterizer=_rasterizer(self.env), cache=cache, base=base)
        view = first(views)
        if view.camera is None:
            raise ValueError(f"the texture needs the camera of view {view.name!r}")
        return bake_texture(vertices, faces, uvs, uv_faces, view.camera, view.image, view.mask, size=size,
                            mask_margin_px=mask_margin(view.mask, view.exact_mask), progress=progress,
                            rasterizer=_rasterizer(self.env), cache=cache, base=base)


@dataclass
class CarriedRig:
    """The body model's own skeleton in the fitted pose, with its top-4 skin weights carried over unchanged
    (the surface keeps the body's topology, vertex for vertex)."""

    name: str = "anny-carried"

    def rig(self, body: BodyModel, fit: BodyFit, vertices: np.ndarray) -> tuple[Rig, Skin]:
        from ..body.skinning import rig_from, skin_from

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


def choose_backends(params: dict[str, Any], env: ComputeEnv | None = None) -> Backends:
    """Backends and settings for a ``reconstruct`` job's parameters (as validated by exchange/wire/jobs.py).

    ``quality`` picks the iteration counts and silhouette resolutions; the texture is at least 1024 px (the
    issue's floor) and at most the preset's cap. Every backend is the registry's "auto" choice for ``env``;
    segmentation is chosen later, when the photo shows whether it is a cut-out.
    """
    from ..backends import REGISTRY

    env = env or ComputeEnv()
    quality = str(params.get("quality", "balanced"))
    if quality not in QUALITY_PRESETS:
        raise ValueError(f"unknown quality preset {quality!r}; expected one of {sorted(QUALITY_PRESETS)}")
    preset = QUALITY_PRESETS[quality]
    size = int(params.get("texture_size", 2048))
    size = max(1024, min(size, preset.max_texture_size))

    def build(stage: str, **options: Any) -> Any:
        return REGISTRY.build(stage, "auto", env=env, **options)

    return Backends(
        preset=preset,
        segmentation=str(params.get("segmentation", "auto")),
        pose=REGISTRY.choose("pose", "auto", env).name,
        body_fit=build("body_fit", options=preset.fit),
        surface=build("surface", iterations=preset.surface_iterations),
        texture=build("texture"),
        rig=build("rig"),
        texture_size=size,
        body_rig=str(params.get("rig", "anny")),
    )
