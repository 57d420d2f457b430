"""Fit a body model's shape and pose, plus an orthographic camera, to one person's 2D landmarks and mask.

Method: torch autograd through the differentiable body (:meth:`BodyModel.forward`) and rasterizer
(:meth:`Rasterizer.silhouette`), minimised with L-BFGS (:mod:`.optimise`), coarse to fine:

0. **Initialise** (closed form, ~50 ms, :mod:`.init`): shape, yaw, pose and camera from MediaPipe.
1. **Keypoints**: camera and joint rotations (root included) against the robust 2D reprojection error and
   the priors (:mod:`.problem`).
2. **Silhouette, low resolution** (128 px): adds soft-IoU against the mask and frees the shape.
3. **Silhouette, higher resolution** (256 px): the same, finer.

Devices: every tensor the fit makes is float32 on ``body.device``, and the silhouettes come from the
rasterizer passed in (default: one for that device). Speed: ~2-5 s on two CPU cores. The fit is thousands
of small ops on a 14k-vertex mesh and a <= 256 px image, so it runs best on one intra-op thread (measured
3.7 s against 4.3-5.0 s with two on an idle 2-core machine, and two spinning threads per op can slow it
tenfold when another process shares the cores); the thread count is the process's, set in one place, not
here. :class:`Progress` is called every few evaluations, so a cancel takes effect mid-fit.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from ...body.base import BodyModel
from ...pose.keypoints import Keypoints2D
from ...progress import Progress, Silent
from ...render import Rasterizer, get_rasterizer
from ...render.camera import OrthographicCamera, orbit_rotation
from ..keypoints import LandmarkMap
from ..posing import Poser, rot_z
from .optimise import Stage, run_stage
from .problem import FitProblem


@dataclass(frozen=True)
class FitOptions:
    """The coarse-to-fine schedule (iterations, silhouette resolutions on the long side) and loss weights.

    Measured and rejected on 8 synthetic people (mean vertex error), so gone from here: following
    MediaPipe's 3D directions as a loss (pulled even a true starting pose 6 cm away); a prior holding each
    limb's depth at its initialisation (cost ~1 cm; balance does its job on real photos); yaw multi-starts
    (changed nothing); Adam instead of L-BFGS (drifted 8 cm from a true start, see :mod:`.optimise`).
    """

    keypoint_iterations: int = 60
    silhouette_iterations: tuple[int, ...] = (40, 40)
    silhouette_sizes: tuple[int, ...] = (128, 256)
    fit_shape: bool = True
    keypoint_weight: float = 1.0
    silhouette_weight: float = 0.5
    outside_weight: float = 0.5
    shape_prior_weight: float = 0.002
    pose_prior_weight: float = 0.002
    upright_weight: float = 1.0
    balance_weight: float = 0.2

    @property
    def total_iterations(self) -> int:
        return self.keypoint_iterations + sum(self.silhouette_iterations)

    def stages(self) -> list[Stage]:
        """The schedule: the keypoint stage, then one silhouette stage per (iterations, size) pair."""
        out = [Stage("keypoints", self.keypoint_iterations, None, False)]
        for iterations, size in zip(self.silhouette_iterations, self.silhouette_sizes, strict=False):
            out.append(Stage(f"silhouette_{size}", iterations, size, self.fit_shape))
        return out


@dataclass
class BodyFit:
    """The fitted body, in the fit image's pixel frame.

    ``vertices`` / ``joint_world`` are grounded and centred (min z = 0, bounding-box centre at x = y = 0)
    and face -Y: the fitted yaw lives in the camera's rotation, so ``camera`` maps these world points onto
    the pixels of the image the fit saw.
    """

    shape: np.ndarray  # (S,) float32
    pose: np.ndarray  # (J, 3, 3) float32, local rotations (root included)
    translation: np.ndarray  # (3,) float32, passed to BodyModel.forward
    camera: OrthographicCamera  # numpy parameters
    vertices: np.ndarray  # (N, 3) float32
    joint_world: np.ndarray  # (J, 4, 4) float32
    bone_lengths: np.ndarray  # (J,) float32
    height_m: float
    yaw_deg: float
    losses: dict[str, float] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    def landmarks(self, lmap: LandmarkMap) -> np.ndarray:
        """(33, 3) world landmark points of the fitted body."""
        return lmap.landmarks_np(self.vertices, self.joint_world)


def fit_body(
    body: BodyModel,
    keypoints: Keypoints2D,
    mask: np.ndarray,
    height_m: float = 1.70,
    *,
    options: FitOptions | None = None,
    progress: Progress | None = None,
    init_shape: np.ndarray | None = None,
    init_pose: np.ndarray | None = None,
    rasterizer: Rasterizer | None = None,
) -> BodyFit:
    """Fit ``body`` (a model with a :attr:`~BodyModel.joint_map`) to one person's landmarks and mask (same
    image), in metres.

    Args:
        keypoints: MediaPipe's 33 landmarks in the pixels of the image ``mask`` comes from.
        mask: (H, W) float32 person mask in [0, 1].
        height_m: the person's stature: sets the metric scale (see :mod:`.problem`).
        options: the schedule (see :class:`FitOptions`; the quality presets of :mod:`..stages` make them).
        progress: reported to as stage "fit" every few iterations (a cancel raises there).
        init_shape: start from these phenotypes (re-solved to ``height_m``) instead of the average adult.
        init_pose: start from this (J, 3, 3) pose instead of the MediaPipe initialisation.
        rasterizer: draws the silhouettes; default :func:`default_rasterizer` for ``body.device``.
    """
    options = options or FitOptions()
    progress = progress or Silent()
    t0 = time.perf_counter()

    # 1. Initialise (closed form).
    progress.report("fit", 0.0, "initialising the body from the landmarks")
    problem = FitProblem(body, keypoints, mask, height_m, options, rasterizer or default_rasterizer(body.device),
                         init_shape, init_pose)
    timings = {"init": time.perf_counter() - t0}

    # 2. The coarse-to-fine stages.
    total = max(1, options.total_iterations)
    done = 0
    for stage in options.stages():
        t_stage = time.perf_counter()
        done = run_stage(problem, stage, progress, done, total)
        timings[stage.name] = time.perf_counter() - t_stage

    # 3. The final loss terms, at the finest resolution, for the record.
    with torch.no_grad():
        size = options.silhouette_sizes[-1] if options.silhouette_sizes else None
        final = {k: float(v) for k, v in problem.losses(size, False).items()}

    # 4. The body the user gets: grounded, facing -Y, the yaw in the camera.
    fit = _finish(problem, final)
    fit.timings = {**timings, "total": time.perf_counter() - t0}
    progress.report("fit", 1.0, "body fitted")
    return fit


def default_rasterizer(device: torch.device) -> Rasterizer:
    """The rasterizer the registry chooses for a body on ``device`` (nvdiffrast for a CUDA body when it runs
    here, else the torch one on that same device): the environment is the body's, not the machine's."""
    from ...compute import ComputeEnv

    return get_rasterizer(env=ComputeEnv(device=str(device)))


def _finish(problem: FitProblem, losses: dict[str, float]) -> BodyFit:
    """Turn the optimised parameters into a grounded, centred, -Y facing body and the matching camera."""
    body = problem.body
    root = body.joint_index(body.joint_map.root)
    with torch.no_grad():
        # 1. Stature by the model's own height phenotype: the fit scaled the body to the user's height (out
        # of the model's reach with these phenotypes, the closest body is kept).
        shape = problem.shape().cpu().numpy().astype(np.float32)
        with contextlib.suppress(ValueError):
            shape = body.solve_height(problem.height_m, shape).astype(np.float32)
        pose = problem.pose().cpu().numpy().astype(np.float64)
        scale = float(torch.exp(problem.log_scale)) * problem.image_h
        principal = problem.offset.detach().cpu().numpy().astype(np.float64) * problem.image_h

        # 2. Move the yaw out of the body into the camera: the asset faces -Y whatever way the person turned.
        rest = body.rest_skeleton(shape)
        poser = Poser(rest, pose)
        world = poser.world()
        turn = world[root, :3, :3] @ rest.matrices[root, :3, :3].T
        yaw = math.degrees(math.atan2(turn[1, 0], turn[0, 0]))
        pivot = world[root, :3, 3].copy()
        poser.rotate_world(body.joint_map.root, rot_z(-yaw))
        pose32 = poser.as_float32()

        # 3. Ground and centre: min z = 0, bounding-box centre at x = y = 0.
        v = body.forward(shape[None], pose32[None]).vertices[0].cpu().numpy()
        lo, hi = v.min(0), v.max(0)
        translation = np.array([-(lo[0] + hi[0]) / 2, -(lo[1] + hi[1]) / 2, -lo[2]], np.float32)
        out = body.forward(shape[None], pose32[None], translation[None])

    # 4. The camera for the moved body. Old body point X = Rz(yaw) (X' - t - h) + h; old camera:
    # pixel = s R0 (X - 0)_xy + p. So pixel = s R0 Rz(yaw) (X' - c') with c' = t + h - Rz(-yaw) h.
    rz = rot_z(yaw)
    rotation = orbit_rotation(0.0, 0.0) @ rz
    centre = translation.astype(np.float64) + pivot - rz.T @ pivot
    camera = OrthographicCamera(rotation=rotation, center=centre, scale=scale, width=problem.image_w,
                                height=problem.image_h, principal=principal)
    return BodyFit(
        shape=shape,
        pose=pose32,
        translation=translation,
        camera=camera,
        vertices=out.vertices[0].cpu().numpy().astype(np.float32),
        joint_world=out.joint_world[0].cpu().numpy().astype(np.float32),
        bone_lengths=out.bone_lengths[0].cpu().numpy().astype(np.float32),
        height_m=float(body.measure_height(shape[None])[0]),
        yaw_deg=float(yaw),
        losses=losses,
    )


def reframe_camera(camera: OrthographicCamera, to_canvas_scale: float, to_canvas_offset: tuple[float, float],
                   width: int, height: int) -> OrthographicCamera:
    """The same camera for the original photo, given the photo -> canvas map ``canvas = photo * k + o``
    (:class:`~strata.core.imaging.framing.CropTransform`'s ``scale`` and ``offset``)."""
    k = float(to_canvas_scale)
    principal = (np.asarray(camera._principal(), np.float64) - np.asarray(to_canvas_offset, np.float64)) / k
    return replace(camera, scale=float(np.asarray(camera.scale)) / k, principal=principal, width=int(width),
                   height=int(height))
