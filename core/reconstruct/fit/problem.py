"""The fit's unknowns and objective: joint rotations, shape and an orthographic camera against landmarks,
a mask and priors.

Camera model
------------
Orthographic (= weak perspective): ``pixel = s * (x, -z) + p`` for a world point ``(x, y, z)`` with the
camera on -Y looking along +Y (the person faces it, turned by the fitted yaw), ``s`` in pixels per
metre and ``p`` the pixel where the world origin lands. Why that is fine for full-body photos: people
are photographed from 3-6 m with a normal lens, so the body's depth (~0.3 m) is under a tenth of the
distance and perspective changes the projected size of near and far parts by a few percent at most;
and an orthographic camera has no focal length or distance to guess from a single photo (which a
pinhole fit could only get from the same weak cues). The cost is the *depth ambiguity*: an orthographic
image says nothing about how far the body is (translation along the view axis is unobservable, so it
is fixed at 0) and cannot tell near from far by size. Which way a limb points in depth comes from
MediaPipe's 3D "world" landmarks (a learned prior, used to initialise: :mod:`.init`), from the
silhouette's shading-free outline where a limb is foreshortened, and from the priors. Scale: ``s`` and the
body's size trade off exactly, so the user's height (default 1.70 m) fixes the metres: the body is scaled
to that stature while the other shape phenotypes fit the silhouette.

Objective
---------
* **Keypoints**: the visibility-weighted 2D reprojection error of the landmarks, robust (Geman-McClure,
  5 % of the image height).
* **Silhouette** (silhouette stages only): soft-IoU against the mask, plus a penalty for body outside the
  mask (clothes may be wider than the body, never the reverse).
* **Priors**: joint rotations stay near their initialisation (limbs, weakly) or rest (spine, neck,
  clavicles); limb bones barely twist about their own axis; knees do not bend forwards; the root stays
  upright (gravity: a pitch of the whole body barely changes a frontal image); *balance*: the neck and
  each ankle stay near the hips in depth (without it, perspective in real photos, which shortens the legs,
  and any proportion error are explained by legs swung backwards or striding, as orthographic
  foreshortening is the only way to shorten a bone; it also cut the synthetic vertex error from 5.4 to
  4.9 cm, side-view IoU 0.68 -> 0.73); shape phenotypes stay near an average adult (age most of all).
* **Stature**: the posed body is scaled by ``height / stature`` inside the loss (the "height" phenotype is
  frozen meanwhile), and at the end the height phenotype is solved for the same stature
  (:func:`.api._finish`), so the output is a genuine body of the user's height.

Measured and rejected (8 synthetic people, mean vertex error): MediaPipe's 3D bone directions as a loss
term (pulled even a true starting pose 6 cm away); a prior holding each limb's depth at its
initialisation (cost ~1 cm; balance does its job on real photos).

Joints are addressed by role through ``body.joint_map`` (:mod:`strata.core.body.joint_map`), and every
tensor is made on ``body.device`` in float32.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch

from ...body.base import BodyModel
from ...body.joint_map import LIMB_ROLES, SIDES
from ...pose.keypoints import Keypoints2D
from ...render import Rasterizer, soft_iou_loss
from ...render.camera import OrthographicCamera, orbit_rotation
from ..keypoints import landmark_map
from .init import initial_pose, solve_camera

if TYPE_CHECKING:
    from .api import FitOptions

#: Prior stiffness per fitted joint role on the rotation away from its initialisation (radians^2): the
#: torso and clavicles are held (their initialisation is rest or a partial lean), the long limbs are free.
LIMB_PRIOR = 0.05
JOINT_PRIOR: dict[str, float] = {
    "root": 0.0,
    "spine_lower": 4.0,
    "spine_upper": 4.0,
    "neck": 2.0,
    "head": 1.0,
    "clavicle": 8.0,
    "wrist": 1.0,
    "foot": 1.0,
    **dict.fromkeys(LIMB_ROLES, LIMB_PRIOR),
}
#: Stiffness of a long limb bone's twist about its own axis (a silhouette barely shows it).
TWIST_PRIOR = 2.0
#: Weight of the "knees do not bend forwards" prior.
KNEE_PRIOR = 10.0
#: The keypoint residual (fraction of the image height) where the robust cost starts to saturate.
KEYPOINT_SIGMA = 0.05

#: Shape prior: phenotype -> (mean, std). Age is held near an adult; the rest are loose.
SHAPE_PRIOR: dict[str, tuple[float, float]] = {
    "gender": (0.5, 0.5),
    "age": (2.0 / 3.0, 0.12),
    "muscle": (0.5, 0.3),
    "weight": (0.5, 0.3),
    "height": (0.5, 10.0),  # frozen during the fit: stature is set by scaling, then solved
    "proportions": (0.5, 0.3),
}
_SHAPE_PRIOR_DEFAULT = (0.5, 0.3)
#: SMPL-X's betas are standard deviations of its body space: mean 0, and one or two of them is common.
SMPLX_SHAPE_PRIOR = (0.0, 1.5)

#: Preconditioning of the shape variables (logits per unit of the optimised variable): the silhouette's
#: gradient w.r.t. a phenotype is ~100x weaker than w.r.t. a joint angle, and L-BFGS's first steps follow
#: the raw gradient, so without it the shape would hardly move in a few dozen iterations.
SHAPE_STEP = 8.0


def axis_angle_to_matrix(v: torch.Tensor) -> torch.Tensor:
    """(..., 3) axis-angle (radians) -> (..., 3, 3) rotation matrices (Rodrigues), smooth at zero.

    Why axis-angle: the fit's joint parameters are offsets from the initial rotations, small and
    unconstrained, and zero is the identity (where the priors pull)."""
    angle = torch.sqrt((v * v).sum(-1, keepdim=True) + 1e-12)
    k = v / angle
    zero = torch.zeros_like(k[..., 0])
    kx = torch.stack(
        [zero, -k[..., 2], k[..., 1], k[..., 2], zero, -k[..., 0], -k[..., 1], k[..., 0], zero], dim=-1
    ).reshape(*v.shape[:-1], 3, 3)
    eye = torch.eye(3, dtype=v.dtype, device=v.device).expand_as(kx)
    s = torch.sin(angle)[..., None]
    c = torch.cos(angle)[..., None]
    return eye + s * kx + (1.0 - c) * (kx @ kx)


def geman_mcclure(r2: torch.Tensor, sigma: float) -> torch.Tensor:
    """Robust cost of squared residuals: quadratic near 0, saturating at sigma^2, so a landmark MediaPipe
    misplaced (an occluded wrist, a hand taken for a foot) pulls with a bounded force."""
    s2 = sigma * sigma
    return s2 * r2 / (r2 + s2)


class FitProblem:
    """Parameters, fixed data and the loss of one fit (kept together so the stages share them).

    Unknowns (all on ``body.device``, float32): ``theta`` (axis-angle offsets of the fitted joints from
    ``pose0``), ``shape_logit`` (phenotype change, in preconditioned logits), ``log_scale`` and ``offset``
    (the camera's scale and principal point, in image heights).
    """

    def __init__(self, body: BodyModel, keypoints: Keypoints2D, mask: np.ndarray, height_m: float,
                 options: FitOptions, rasterizer: Rasterizer, init_shape: np.ndarray | None = None,
                 init_pose: np.ndarray | None = None) -> None:
        dev = body.device
        jm = body.joint_map
        self.body = body
        self.options = options
        self.rasterizer = rasterizer
        self.height_m = float(height_m)
        self.lmap = landmark_map(body)

        # 1. Fixed data: the mask (resized per stage by target_mask) and the mesh's triangles.
        self.image_h, self.image_w = mask.shape
        self.mask = np.clip(np.asarray(mask, np.float32), 0.0, 1.0)
        self.faces = torch.as_tensor(np.asarray(body.faces, np.int64), device=dev)
        self._targets: dict[int, tuple[torch.Tensor, tuple[int, int]]] = {}

        # 2. Start: the default adult (or init_shape) at the user's height, MediaPipe's pose (or init_pose).
        base = body.default_shape if init_shape is None else np.asarray(init_shape, np.float32)
        shape0 = body.solve_height(self.height_m, base)
        pose0 = initial_pose(body, shape0, keypoints)[0] if init_pose is None else np.asarray(init_pose, np.float32)
        self.pose0 = torch.as_tensor(pose0, dtype=torch.float32, device=dev)

        # 3. Pose unknowns: a rotation offset per fitted joint.
        self.fit_index = torch.as_tensor([body.joint_index(n) for n in jm.fit_joints()], dtype=torch.long,
                                         device=dev)
        self.theta = torch.zeros(len(self.fit_index), 3, dtype=torch.float32, device=dev, requires_grad=True)

        # 4. Shape unknowns: a change of the phenotypes' logits (bounded by the sigmoid); stature frozen.
        lo, hi = body.shape_bounds[:, 0], body.shape_bounds[:, 1]
        self.shape_lo = torch.as_tensor(lo, dtype=torch.float32, device=dev)
        self.shape_span = torch.as_tensor(hi - lo, dtype=torch.float32, device=dev)
        unit = np.clip((shape0 - lo) / (hi - lo), 1e-3, 1 - 1e-3)
        self.shape_logit0 = torch.as_tensor(np.log(unit / (1 - unit)), dtype=torch.float32, device=dev)
        self.shape_logit = torch.zeros(len(unit), dtype=torch.float32, device=dev, requires_grad=True)
        names = body.shape_names
        # Stature (set by scaling) and SMPL-X's expressions (a silhouette cannot see them) stay as they are.
        self.shape_free = self._floats([0.0 if n == body.height_parameter or n.startswith("Exp") else 1.0
                                        for n in names])
        prior = [SHAPE_PRIOR.get(n, SMPLX_SHAPE_PRIOR if body.name == "smplx" else _SHAPE_PRIOR_DEFAULT)
                 for n in names]
        self.shape_mean = self._floats([mean for mean, _ in prior])
        self.shape_std = self._floats([std for _, std in prior])

        # 5. Keypoint targets, normalised by the image height so the losses are resolution-free.
        self.kp = torch.as_tensor(np.asarray(keypoints.xy, np.float32), device=dev) / self.image_h
        vis = np.clip(np.asarray(keypoints.visibility, np.float32), 0.0, 1.0)
        kp_w = self.lmap.weight * vis
        self.kp_w = torch.as_tensor(kp_w, dtype=torch.float32, device=dev)

        # 6. Camera unknowns, started by least squares on the initial body's landmarks.
        with torch.no_grad():
            out = body.forward(torch.as_tensor(shape0, dtype=torch.float32, device=dev)[None], self.pose0[None])
            lm = self.lmap.landmarks(out.vertices, out.joint_world)[0].cpu().numpy()
        scale, principal = solve_camera(lm, np.asarray(keypoints.xy, np.float64), kp_w + 1e-6)
        self.log_scale = torch.tensor(math.log(max(scale, 1e-3) / self.image_h), dtype=torch.float32, device=dev,
                                      requires_grad=True)
        self.offset = torch.as_tensor(principal / self.image_h, dtype=torch.float32, device=dev).clone()
        self.offset.requires_grad_(True)

        # 7. Priors: stiffness per fitted joint by role, and the joints the posture priors look at.
        roles = jm.fit_roles()
        self.prior_w = self._floats([JOINT_PRIOR[role] for role, _ in roles])
        self.is_limb = self._floats([1.0 if role in LIMB_ROLES else 0.0 for role, _ in roles])
        self.knees = [(body.joint_index(jm.side("thigh", s)), body.joint_index(jm.side("shin", s)),
                       body.joint_index(jm.side("foot", s))) for s in SIDES]
        self.root = body.joint_index(jm.root)
        self.hip_pair = tuple(body.joint_index(jm.side("thigh", s)) for s in SIDES)
        self.ankle_pair = [body.joint_index(jm.side("foot", s)) for s in SIDES]
        self.neck = body.joint_index(jm.neck)
        # The root's local axes that point up (+Z world) and backwards (+Y world) at rest.
        rest = body.rest_skeleton(body.default_shape).matrices[self.root, :3, :3]
        self.root_up = self._floats(rest.T @ np.array([0.0, 0.0, 1.0], np.float32))
        self.root_back = self._floats(rest.T @ np.array([0.0, 1.0, 0.0], np.float32))

    def _floats(self, values: object) -> torch.Tensor:
        """Fixed data as a float32 tensor on the body's device."""
        return torch.as_tensor(np.asarray(values, np.float32), device=self.body.device)

    # -- parameters -------------------------------------------------------------------------------

    def shape(self) -> torch.Tensor:
        """(S,) phenotypes."""
        logit = self.shape_logit0 + SHAPE_STEP * self.shape_free * self.shape_logit
        return self.shape_lo + self.shape_span * torch.sigmoid(logit)

    def pose(self) -> torch.Tensor:
        """(J, 3, 3) local rotations: the start with each fitted joint turned by its offset."""
        local = self.pose0[self.fit_index] @ axis_angle_to_matrix(self.theta)
        return self.pose0.index_put((self.fit_index,), local)

    def camera(self) -> OrthographicCamera:
        """The frontal orthographic camera, with tensor scale and principal point (differentiable)."""
        s = torch.exp(self.log_scale) * self.image_h
        return OrthographicCamera(rotation=orbit_rotation(0.0, 0.0), center=np.zeros(3), scale=s,
                                  width=self.image_w, height=self.image_h, principal=self.offset * self.image_h)

    # -- losses -----------------------------------------------------------------------------------

    def target_mask(self, size: int) -> tuple[torch.Tensor, tuple[int, int]]:
        """The mask at ``size`` pixels on its long side (area-averaged, cached), and its (H, W)."""
        import cv2

        if size not in self._targets:
            f = size / max(self.image_h, self.image_w)
            hw = (max(8, round(self.image_h * f)), max(8, round(self.image_w * f)))
            small = cv2.resize(self.mask, (hw[1], hw[0]), interpolation=cv2.INTER_AREA)
            self._targets[size] = (torch.as_tensor(small, dtype=torch.float32, device=self.body.device), hw)
        return self._targets[size]

    def losses(self, sil_size: int | None, use_shape: bool) -> dict[str, torch.Tensor]:
        """The weighted loss terms (their sum is the objective); the silhouette only with ``sil_size``."""
        opt = self.options
        # 1. Pose the body at the user's stature, exactly: scaled uniformly by H / stature (about the
        # origin, so the feet stay on the ground). The "height" phenotype is frozen during the fit (it would
        # only duplicate the scale) and solved for the same stature at the end.
        shape = self.shape() if use_shape else self.shape().detach()
        out = self.body.forward(shape[None], self.pose()[None])
        z = out.rest_vertices[0, :, 2]
        k = self.height_m / (z.max() - z.min())
        verts = out.vertices * k
        joints = torch.cat([out.joint_world[..., :3], out.joint_world[..., 3:] * torch.cat(
            [k.expand(3), k.new_ones(1)]).reshape(1, 1, 4, 1)], dim=-1)

        # 2. Keypoints: the landmarks through the camera against MediaPipe's.
        lm = self.lmap.landmarks(verts, joints)[0]
        proj = torch.stack([lm[:, 0], -lm[:, 2]], dim=1) * torch.exp(self.log_scale) + self.offset
        r2 = ((proj - self.kp) ** 2).sum(1)
        terms: dict[str, torch.Tensor] = {}
        robust = (self.kp_w * geman_mcclure(r2, KEYPOINT_SIGMA)).sum()
        terms["keypoints"] = opt.keypoint_weight * robust / self.kp_w.sum()

        # 3. Priors.
        terms.update(self._priors(joints[0], shape))

        # 4. Silhouette.
        if sil_size is not None:
            target, hw = self.target_mask(sil_size)
            sil = self.rasterizer.silhouette(verts[0], self.faces, self.camera(), hw, sigma=1.0)
            outside = (sil * (1.0 - target)).sum() / target.sum().clamp_min(1.0)
            terms["silhouette"] = opt.silhouette_weight * soft_iou_loss(sil, target)
            terms["outside"] = opt.outside_weight * opt.silhouette_weight * outside
        return terms

    def _priors(self, joints: torch.Tensor, shape: torch.Tensor) -> dict[str, torch.Tensor]:
        """Pose, knee, balance, upright and shape priors of the posed (J, 4, 4) joints (module docstring)."""
        opt = self.options
        terms: dict[str, torch.Tensor] = {}
        twist = self.theta[:, 1] ** 2 * self.is_limb  # local +Y is along the bone
        terms["pose_prior"] = opt.pose_prior_weight * ((self.prior_w * (self.theta**2).sum(1)).sum()
                                                       + TWIST_PRIOR * twist.sum())
        heads = joints[:, :3, 3]
        forward = -joints[self.root, :3, :3] @ self.root_back
        knee = 0.0
        for hip, kn, ankle in self.knees:
            thigh = heads[kn] - heads[hip]
            shin = heads[ankle] - heads[kn]
            thigh = thigh / thigh.norm().clamp_min(1e-6)
            bend = shin - (shin @ thigh) * thigh
            knee = knee + torch.relu(bend @ forward) ** 2
        terms["knee"] = KNEE_PRIOR * knee
        # Balance: a standing person's neck and each ankle are roughly above and below the hips in depth
        # (the view axis, world y here): what keeps the legs and torso from swinging into the unobservable
        # depth when perspective or a proportion error makes them look short.
        hips = 0.5 * (heads[self.hip_pair[0]] + heads[self.hip_pair[1]])
        ankles = heads[self.ankle_pair, 1]
        terms["balance"] = opt.balance_weight * (((ankles - hips[1]) ** 2).sum() + (heads[self.neck, 1] - hips[1]) ** 2)
        # Gravity: people stand upright, and a pitch of the whole body barely changes a frontal image.
        up = joints[self.root, :3, :3] @ self.root_up
        terms["upright"] = opt.upright_weight * (1.0 - up[2])
        terms["shape_prior"] = opt.shape_prior_weight * (((shape - self.shape_mean) / self.shape_std) ** 2).sum()
        return terms
