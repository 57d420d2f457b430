"""The body prior for views from all sides: a single-view fit refined against every view's silhouette.

Why a second fit: one photo cannot tell how far a limb reaches towards or away from the camera, six views
can. The front view's fit (:func:`.api.fit_body`, landmarks + mask) gives the pose, shape and turn; this
refinement moves the same unknowns (joint rotations, phenotypes) plus the body's place in the views' world
(turn about the vertical axis, translation, scale) so that the body's silhouette matches each view's mask,
weighted per view (PSHuman's 1, .4, .8, 1, .8, .4: its 45-degree views are the least reliable). The views'
cameras are fixed: they are the frame the carving and the texture work in. The priors are the single-view
fit's (:class:`.problem.FitProblem`), so the pose stays plausible where the masks say little.

The body is clothed in the views, so its silhouette is only penalised where it sticks *out* of a mask
strongly; inside, soft-IoU pulls it to fill loose clothes only as far as the priors allow. The result is a
genuine body of the model (its height phenotype solved for the fitted stature) in the views' world: the
prior the carving starts from, and the skeleton and skin weights the carved surface is rigged with.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from ...body.base import BodyModel
from ...progress import Progress, Silent
from ...render import Rasterizer, soft_iou_loss
from ...views import View
from ..posing import Poser, rot_z
from .api import BodyFit, FitOptions, default_rasterizer
from .optimise import minimise
from .problem import FitProblem


@dataclass(frozen=True)
class ViewFitOptions:
    """Coarse-to-fine silhouette stages over all views: iterations per stage and the views' size (long side)."""

    iterations: tuple[int, ...] = (30, 30)
    sizes: tuple[int, ...] = (128, 256)
    fit_shape: bool = True
    silhouette_weight: float = 0.5
    outside_weight: float = 0.5


class ViewsProblem:
    """The unknowns and objective of the refinement: the single-view problem's joint rotations and
    phenotypes (and priors), plus the body's turn ``psi``, translation ``t`` and log-scale in the views'
    world, against the silhouettes of every view."""

    def __init__(self, body: BodyModel, views: Sequence[View], init: BodyFit, front: View, height_m: float,
                 options: ViewFitOptions, rasterizer: Rasterizer) -> None:
        dev = body.device
        self.body, self.views, self.options, self.rasterizer = body, list(views), options, rasterizer
        self.height_m = float(height_m)
        # 1. The single-view problem, started at the front fit's result: its parameters and priors are ours.
        assert front.keypoints is not None
        self.base = FitProblem(body, front.keypoints, front.mask, height_m, FitOptions(), rasterizer,
                               init_shape=init.shape, init_pose=init.pose)
        self.faces = self.base.faces
        # 2. The body's place in the views' world: the front fit's turn, centred over the views' axis where
        #    the front mask is, soles on the ground.
        self.psi = torch.tensor(math.radians(init.yaw_deg), dtype=torch.float32, device=dev, requires_grad=True)
        self.t = torch.as_tensor(_start_translation(front), dtype=torch.float32, device=dev).clone()
        self.t.requires_grad_(True)
        self.log_s = torch.zeros((), dtype=torch.float32, device=dev, requires_grad=True)
        self.weights = [float(v.weight) for v in self.views]
        self._targets: dict[int, list[tuple[torch.Tensor, object, tuple[int, int]]]] = {}

    def parameters(self, fit_shape: bool) -> list[torch.Tensor]:
        return [self.base.theta, self.psi, self.t, self.log_s] + ([self.base.shape_logit] if fit_shape else [])

    def posed(self, fit_shape: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(vertices in the views' world, joints in the body's frame at the user's stature, shape)."""
        base = self.base
        shape = base.shape() if fit_shape else base.shape().detach()
        out = self.body.forward(shape[None], base.pose()[None])
        z = out.rest_vertices[0, :, 2]
        k = self.height_m / (z.max() - z.min())
        verts = out.vertices[0] * k
        joints = torch.cat([out.joint_world[0, :, :, :3], out.joint_world[0, :, :, 3:] * torch.cat(
            [k.expand(3), k.new_ones(1)]).reshape(1, 4, 1)], dim=-1)
        c, s = torch.cos(self.psi), torch.sin(self.psi)
        zero, one = torch.zeros_like(c), torch.ones_like(c)
        rz = torch.stack([c, -s, zero, s, c, zero, zero, zero, one]).reshape(3, 3)
        world = torch.exp(self.log_s) * verts @ rz.T + self.t
        return world, joints, shape

    def targets(self, size: int) -> list[tuple[torch.Tensor, object, tuple[int, int]]]:
        """Per view: (mask at ``size`` on its long side, the view's camera resized to it, (H, W)); cached."""
        import cv2

        if size not in self._targets:
            out = []
            for view in self.views:
                h, w = view.size
                f = size / max(h, w)
                hw = (max(8, round(h * f)), max(8, round(w * f)))
                small = cv2.resize(np.asarray(view.mask, np.float32), (hw[1], hw[0]), interpolation=cv2.INTER_AREA)
                mask = torch.as_tensor(small, dtype=torch.float32, device=self.body.device)
                out.append((mask, view.camera.resized(hw[1], hw[0]), hw))
            self._targets[size] = out
        return self._targets[size]

    def losses(self, size: int, fit_shape: bool) -> dict[str, torch.Tensor]:
        opt = self.options
        world, joints, shape = self.posed(fit_shape)
        terms = self.base._priors(joints, shape)
        iou = outside = world.new_zeros(())
        for weight, (mask, cam, hw) in zip(self.weights, self.targets(size), strict=True):
            sil = self.rasterizer.silhouette(world, self.faces, cam, hw, sigma=1.0)
            iou = iou + weight * soft_iou_loss(sil, mask)
            outside = outside + weight * (sil * (1.0 - mask)).sum() / mask.sum().clamp_min(1.0)
        total = sum(self.weights)
        terms["silhouette"] = opt.silhouette_weight * iou / total
        terms["outside"] = opt.outside_weight * opt.silhouette_weight * outside / total
        return terms


def fit_body_to_views(body: BodyModel, views: Sequence[View], height_m: float, init: BodyFit, front: View, *,
                      options: ViewFitOptions | None = None, rasterizer: Rasterizer | None = None,
                      progress: Progress | None = None) -> BodyFit:
    """Refine ``init`` (the fit on ``front``, the front view with its landmarks) against every view.

    Returns a :class:`BodyFit` in the views' world (its ``camera`` is the front view's), a genuine body of
    the model whose stature is the fitted one (the user's height times the fitted scale)."""
    options = options or ViewFitOptions()
    progress = progress or Silent()
    if any(v.camera is None for v in views):
        raise ValueError("every view needs its camera for the body prior")
    t0 = time.perf_counter()
    # 1. The problem, started at the front fit.
    problem = ViewsProblem(body, views, init, front, height_m, options, rasterizer or default_rasterizer(body.device))
    # 2. Coarse to fine over the views' silhouettes.
    total = max(1, sum(options.iterations))
    done = 0
    for iterations, size in zip(options.iterations, options.sizes, strict=True):
        done = _run(problem, iterations, size, options.fit_shape, progress, done, total)
    # 3. The genuine body in the views' world.
    with torch.no_grad():
        final = {k: float(v) for k, v in problem.losses(options.sizes[-1], False).items()}
    fit = _finish(problem, views[0], final)
    fit.timings = {"views_fit": time.perf_counter() - t0}
    progress.report("fit", 1.0, "body fitted to the views")
    return fit


def _run(problem: ViewsProblem, iterations: int, size: int, fit_shape: bool, progress: Progress, done: int,
         total: int) -> int:
    """One L-BFGS stage over the views at ``size`` (:func:`.optimise.minimise`)."""

    def report(count: int) -> None:
        if count % 5 == 0:
            progress.report("fit", min(done + count, total) / total, f"fitting the body to the views ({size} px)")

    minimise(problem.parameters(fit_shape), lambda: sum(problem.losses(size, fit_shape).values()), iterations,
             report)
    return done + iterations


def _finish(problem: ViewsProblem, front: View, losses: dict[str, float]) -> BodyFit:
    """The optimised body as a genuine model body in the views' world (stature solved, turn in the root)."""
    body = problem.body
    root = body.joint_map.root
    with torch.no_grad():
        target, _, shape_t = problem.posed(False)
        target = target.cpu().numpy().astype(np.float64)
        # 1. The stature the views want: the user's height times the fitted scale.
        stature = problem.height_m * float(torch.exp(problem.log_s))
        shape = shape_t.cpu().numpy().astype(np.float32)
        with contextlib.suppress(ValueError):
            shape = body.solve_height(stature, shape).astype(np.float32)
        # 2. The turn into the root joint, then the translation that puts the body where the fit had it.
        poser = Poser(body.rest_skeleton(shape), problem.base.pose().cpu().numpy())
        poser.rotate_world(root, rot_z(math.degrees(float(problem.psi.detach()))))
        pose = poser.as_float32()
        dev = body.device
        v0 = body.forward(torch.as_tensor(shape, device=dev)[None], torch.as_tensor(pose, device=dev)[None])
        translation = (target - v0.vertices[0].cpu().numpy()).mean(0).astype(np.float32)
        out = body.forward(torch.as_tensor(shape, device=dev)[None], torch.as_tensor(pose, device=dev)[None],
                           torch.as_tensor(translation, device=dev)[None])
    assert front.camera is not None
    return BodyFit(shape=shape, pose=pose, translation=translation, camera=replace(front.camera),
                   vertices=out.vertices[0].cpu().numpy().astype(np.float32),
                   joint_world=out.joint_world[0].cpu().numpy().astype(np.float32),
                   bone_lengths=out.bone_lengths[0].cpu().numpy().astype(np.float32),
                   height_m=float(body.measure_height(shape[None])[0]),
                   yaw_deg=math.degrees(float(problem.psi.detach())), losses=losses)


def _start_translation(front: View) -> np.ndarray:
    """Where the front fit's body (centred at x = y = 0, soles at z = 0) starts in the views' world: under
    the front mask's horizontal centre, on the ground, on the views' vertical axis in depth."""
    assert front.camera is not None
    cols = np.flatnonzero(np.asarray(front.mask).max(axis=0) > 0.5)
    if not len(cols):
        return np.zeros(3, np.float32)
    rows = np.flatnonzero(np.asarray(front.mask).max(axis=1) > 0.5)
    pixel = np.array([0.5 * (cols[0] + cols[-1] + 1), rows[-1] + 1.0], np.float64)
    # The orthographic camera's back-projection at depth 0 (the views' vertical axis): X = c + R^T (p - p0) / s.
    cam = front.camera
    local = (pixel - np.asarray(cam._principal(), np.float64)) / np.asarray(cam.scale, np.float64)
    world = np.asarray(cam.center, np.float64) + np.asarray(cam.rotation, np.float64).T @ np.array([*local, 0.0])
    return np.array([world[0], 0.0, world[2]], np.float32)
