"""Minimising the fit's objective: one L-BFGS run per stage, ending on the best parameters it evaluated.

Why L-BFGS (strong-Wolfe line search), not Adam: Adam's steps are about its learning rate whatever the
gradient's size, so the directions an image barely constrains (a limb's depth, the yaw) random-walk;
L-BFGS's steps scale with the gradient and the curvature, so those directions hardly move. Measured and
rejected: Adam with a cosine-decayed learning rate (started from the true pose, 60 Adam steps drifted
8 cm away, L-BFGS stays within ~2 cm); yaw multi-starts, the keypoint stage re-run from MediaPipe's yaw
turned by a few offsets keeping the lowest loss (changed nothing on 8 synthetic people, though MediaPipe's
yaw is 5-15 deg off there).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from ...progress import Progress
from .problem import FitProblem

#: The losses are small numbers (fractions of the image height, squared); L-BFGS's tolerances and first
#: step are absolute, so it sees them scaled up.
LOSS_SCALE = 1000.0


@dataclass(frozen=True)
class Stage:
    """One step of the coarse-to-fine schedule: its name (for timings and progress), iteration budget,
    silhouette resolution (None: keypoints and priors only) and whether the shape is free."""

    name: str
    iterations: int
    silhouette_size: int | None
    fit_shape: bool


def minimise(params: list[torch.Tensor], objective: Callable[[], torch.Tensor], iterations: int,
             on_evaluation: Callable[[int], None] | None = None) -> None:
    """L-BFGS on ``params`` (in place) for ``objective``, ending on the best parameters it evaluated.

    Not the last ones: a line search that overshoots along an ill-conditioned direction can overflow into
    NaN (seen once in ~100 synthetic fits, from a limb started exactly in the image plane), and every later
    step is then NaN too. ``on_evaluation(count)`` runs after each finite evaluation (progress, cancel)."""
    opt = torch.optim.LBFGS(params, lr=1.0, max_iter=iterations, max_eval=int(iterations * 1.5),
                            history_size=20, tolerance_grad=1e-10, tolerance_change=1e-12,
                            line_search_fn="strong_wolfe")
    count = 0
    best_loss = math.inf
    best = [p.detach().clone() for p in params]

    def closure() -> torch.Tensor:
        nonlocal count, best_loss, best
        opt.zero_grad(set_to_none=True)
        loss = LOSS_SCALE * objective()
        value = float(loss.detach())
        if math.isfinite(value) and value < best_loss:
            best_loss, best = value, [p.detach().clone() for p in params]
        if not math.isfinite(value):  # nothing to learn here: a zero step direction ends the search
            return loss.detach().nan_to_num(nan=1e30, posinf=1e30)
        loss.backward()
        count += 1
        if on_evaluation is not None:
            on_evaluation(count)
        return loss

    opt.step(closure)
    with torch.no_grad():
        for p, b in zip(params, best, strict=True):
            p.copy_(b)


def run_stage(problem: FitProblem, stage: Stage, progress: Progress, done: int, total: int) -> int:
    """Run one stage in place on ``problem``'s parameters (:func:`minimise`); returns ``done`` plus the
    stage's iterations."""
    # 1. The parameters this stage moves: pose and camera always, the shape when the stage frees it.
    params = [problem.theta, problem.log_scale, problem.offset] + ([problem.shape_logit] if stage.fit_shape else [])

    # 2. Progress every few evaluations (a cancel raises there).
    def report(count: int) -> None:
        if count % 5 == 0:
            progress.report("fit", min(done + count, total) / total,
                            f"fitting the body ({stage.name}, evaluation {count})")

    # 3. Minimise the stage's objective.
    minimise(params, lambda: sum(problem.losses(stage.silhouette_size, stage.fit_shape).values()),
             stage.iterations, report)
    return done + stage.iterations
