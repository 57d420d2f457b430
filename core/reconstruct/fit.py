"""Body fit: anny's shape and pose, plus an orthographic camera, fitted to 2D landmarks and a person mask.

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
MediaPipe's 3D "world" landmarks (a learned prior), from the silhouette's shading-free outline where a
limb is foreshortened, and from the priors. Scale: ``s`` and the body's size trade off exactly, so the
user's height (default 1.70 m) fixes the metres: the body is scaled to that stature while the other
shape phenotypes fit the silhouette.

Method
------
Torch autograd through the differentiable body (:meth:`BodyModel.forward`) and rasterizer
(:meth:`Rasterizer.silhouette`), minimised with L-BFGS (strong-Wolfe line search), coarse to fine:

0. **Initialise** (closed form, ~50 ms): shape = the default adult solved to the user's height; the body's
   yaw from MediaPipe's 3D shoulder and hip lines (mirror-averaged, see
   :mod:`strata.core.pose.mediapipe_backend`); the torso leaned and each limb bone (upper arm, forearm,
   thigh, shin, foot) rotated so that its rest direction matches MediaPipe's 3D bone direction, whose
   depth component is kept at 80 % (it is MediaPipe's least reliable axis, 10-20 deg off on synthetic
   renders) and, for the upper arms, mostly replaced by the body's coronal plane (:func:`initial_pose`);
   the camera (scale + offset) by linear least squares on the 2D landmarks.
1. **Keypoints**: camera, joint rotations (root included) against the visibility-weighted 2D
   reprojection error (robust Geman-McClure, 5 % of the image height) and the priors.
2. **Silhouette, low resolution** (128 px): adds soft-IoU against the mask (plus a penalty for body
   outside the mask: clothes may be wider than the body, never the reverse) and frees the shape.
3. **Silhouette, higher resolution** (256 px): the same, finer.

Why L-BFGS, not Adam: Adam's steps are about its learning rate whatever the gradient's size, so the
directions an image barely constrains (a limb's depth, the yaw) random-walk; started from the true pose,
60 Adam steps drifted 8 cm away, L-BFGS stays within ~2 cm. MediaPipe's 3D directions are *not* a loss
term (following them pulled a true pose 6 cm away); they only initialise.

Priors: joint rotations stay near their initialisation (limbs, weakly) or rest (spine, neck, clavicles);
limb bones barely twist about their own axis; knees do not bend forwards; the root stays upright
(gravity: a pitch of the whole body barely changes a frontal image); *balance*: the neck and each ankle
stay near the hips in depth (without it, perspective in real photos, which shortens the legs, and any
proportion error are explained by legs swung backwards or striding, as orthographic foreshortening is
the only way to shorten a bone; it also cut the synthetic vertex error from 5.4 to 4.9 cm, side-view
IoU 0.68 -> 0.73); shape phenotypes stay near an
average adult (age most of all). Stature: the posed body is scaled by ``height / stature`` inside the
loss (the "height" phenotype is frozen meanwhile), and at the end the height phenotype is solved for the
same stature, so the output is a genuine anny body of the user's height.

Everything runs in float32 on the CPU in ~2-5 s (2 cores); :class:`Progress` is called every few
evaluations so a cancel takes effect mid-fit.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from ..body.base import BodyModel
from ..pose.keypoints import Keypoints2D
from ..progress import Progress, Silent
from ..render.camera import OrthographicCamera, orbit_rotation
from .keypoints import LandmarkMap, landmark_map
from .posing import Poser, rot_z

if TYPE_CHECKING:
    import torch

#: Joints the fit rotates on anny's default rig (everything else, fingers and toes, stays at rest).
FIT_JOINTS: tuple[str, ...] = (
    "root",
    "spine04",
    "spine02",
    "neck01",
    "head",
    "clavicle.L",
    "clavicle.R",
    "upperarm01.L",
    "upperarm01.R",
    "lowerarm01.L",
    "lowerarm01.R",
    "wrist.L",
    "wrist.R",
    "upperleg01.L",
    "upperleg01.R",
    "lowerleg01.L",
    "lowerleg01.R",
    "foot.L",
    "foot.R",
)

#: Prior stiffness per fitted joint on the rotation away from its initialisation (radians^2).
_JOINT_PRIOR = {
    "root": 0.0,
    "spine04": 4.0,
    "spine02": 4.0,
    "neck01": 2.0,
    "head": 1.0,
    "clavicle.L": 8.0,
    "clavicle.R": 8.0,
    "wrist.L": 1.0,
    "wrist.R": 1.0,
    "foot.L": 1.0,
    "foot.R": 1.0,
}
_LIMB_PRIOR = 0.05
_TWIST_PRIOR = 2.0
_LIMBS = ("upperarm01", "lowerarm01", "upperleg01", "lowerleg01")

#: MediaPipe landmark pairs whose 3D direction (from its world landmarks) the optional direction loss uses.
DIRECTION_PAIRS: tuple[tuple[str, str], ...] = (
    ("left_shoulder", "left_elbow"),
    ("left_elbow", "left_wrist"),
    ("right_shoulder", "right_elbow"),
    ("right_elbow", "right_wrist"),
    ("left_hip", "left_knee"),
    ("left_knee", "left_ankle"),
    ("right_hip", "right_knee"),
    ("right_knee", "right_ankle"),
    ("right_shoulder", "left_shoulder"),
    ("right_hip", "left_hip"),
    ("left_ankle", "left_foot_index"),
    ("right_ankle", "right_foot_index"),
)

#: Shape prior: phenotype -> (mean, std). Age is held near an adult; the rest are loose.
_SHAPE_PRIOR = {
    "gender": (0.5, 0.5),
    "age": (2.0 / 3.0, 0.12),
    "muscle": (0.5, 0.3),
    "weight": (0.5, 0.3),
    "height": (0.5, 10.0),  # frozen during the fit: stature is set by scaling, then solved
    "proportions": (0.5, 0.3),
}


@dataclass(frozen=True)
class FitOptions:
    """The coarse-to-fine schedule (iterations, silhouette resolutions on the long side) and loss weights.

    Weights that are 0 / empty by default are measured alternatives kept for experiments (8 synthetic
    people, mean vertex error): following MediaPipe's 3D directions as a loss (``direction_weight``)
    pulled even a true starting pose 6 cm away; a prior holding each limb's depth at its initialisation
    (``limb_depth_weight``) cost ~1 cm on synthetic people (balance does its job on real photos); yaw
    multi-starts (``yaw_hypotheses``) changed nothing. ``optimizer="adam"`` is the first-order variant.
    """

    keypoint_iterations: int = 60
    silhouette_iterations: tuple[int, ...] = (40, 40)
    silhouette_sizes: tuple[int, ...] = (128, 256)
    fit_shape: bool = True
    learning_rate: float = 0.03
    optimizer: str = "lbfgs"
    keypoint_weight: float = 1.0
    direction_weight: float = 0.0
    silhouette_weight: float = 0.5
    outside_weight: float = 0.5
    shape_prior_weight: float = 0.002
    pose_prior_weight: float = 0.002
    upright_weight: float = 1.0
    limb_depth_weight: float = 0.0
    balance_weight: float = 0.2
    #: Extra yaw starts (degrees from MediaPipe's estimate) tried in the keypoint stage; the best one goes on.
    yaw_hypotheses: tuple[float, ...] = ()

    @property
    def total_iterations(self) -> int:
        return self.keypoint_iterations + sum(self.silhouette_iterations)


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


# --------------------------------------------------------------------------- small torch helpers


def axis_angle_to_matrix(v: torch.Tensor) -> torch.Tensor:
    """(..., 3) axis-angle (radians) -> (..., 3, 3) rotation matrices (Rodrigues), smooth at zero."""
    import torch

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


def _geman_mcclure(r2: torch.Tensor, sigma: float) -> torch.Tensor:
    """Robust cost of squared residuals: quadratic near 0, saturating at sigma^2 (outliers)."""
    s2 = sigma * sigma
    return s2 * r2 / (r2 + s2)


# --------------------------------------------------------------------------- initialisation


def mediapipe_world_to_body(world_xyz: np.ndarray) -> np.ndarray:
    """MediaPipe world landmarks (x right, y down, z away from the camera) -> this project's world axes
    for a camera on -Y looking along +Y (x right, y away from the camera, z up)."""
    w = np.asarray(world_xyz, np.float64)
    return np.stack([w[:, 0], w[:, 2], -w[:, 1]], axis=1)


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 1e-9 else v


#: How much of MediaPipe's depth each limb bone starts from; the rest is the depth the bone would have
#: in the body's coronal plane (the plane of the shoulders, hips and spine). See :func:`initial_pose`.
MEDIAPIPE_DEPTH_SHARE = {"upperarm01": 0.3, "lowerarm01": 1.0, "upperleg01": 1.0, "lowerleg01": 1.0}


def initial_pose(body: BodyModel, shape: np.ndarray, keypoints: Keypoints2D,
                 depth_shrink: float = 0.8, depth_bias: float = 0.0,
                 mediapipe_share: dict[str, float] | None = None) -> tuple[np.ndarray, float]:
    """(J, 3, 3) pose from MediaPipe's 3D landmarks, and the body's yaw (degrees).

    The yaw comes from the shoulder and hip lines (right -> left should point along +X when facing the
    camera); then the torso is leaned along MediaPipe's hip -> shoulder direction and each limb bone is
    rotated (minimally) onto its 3D direction, parents first.

    ``depth_shrink`` scales MediaPipe's depth component of each limb direction and ``depth_bias`` adds a
    forward lean (unit-vector units); on 8 synthetic people shrinks of 0.6 / 0.8 / 1.0 gave 4.9 / 4.8 /
    4.9 cm mean vertex error after the fit, any bias made it worse.

    ``mediapipe_share`` (default :data:`MEDIAPIPE_DEPTH_SHARE`) blends, per bone, MediaPipe's depth with
    the depth that puts the bone in the body's coronal plane (``x * tan(yaw)`` for its image-plane
    direction ``x``). People standing for a photo mostly hold their upper arms out to the side in that
    plane, and MediaPipe's upper-arm depth is its worst: on 16 synthetic photos (with mirror-averaged
    landmarks) upper arms started 30 % from MediaPipe cut the fitted body's mean vertex error from 5.1
    to 4.5 cm (all coronal: 4.45 cm; the 30 % keeps MediaPipe's sign for arms held forwards). Forearms
    (elbows bend forwards) and legs lost accuracy the same way, so they keep MediaPipe's depth; so did
    shins started as straight as their image direction allows (4.5 -> 5.1 cm).
    """
    share = MEDIAPIPE_DEPTH_SHARE if mediapipe_share is None else mediapipe_share
    w = mediapipe_world_to_body(keypoints.world_xyz)
    idx = Keypoints2D.index
    if not np.all(np.isfinite(w)):
        return np.tile(np.eye(3, dtype=np.float32), (body.num_joints, 1, 1)), 0.0
    across = (w[idx("left_hip")] - w[idx("right_hip")]) + (w[idx("left_shoulder")] - w[idx("right_shoulder")])
    yaw = math.degrees(math.atan2(across[1], across[0]))
    poser = Poser.for_body(body, shape)
    poser.rotate_world("root", rot_z(yaw))

    mid_hip = 0.5 * (w[idx("left_hip")] + w[idx("right_hip")])
    mid_sh = 0.5 * (w[idx("left_shoulder")] + w[idx("right_shoulder")])
    up = _unit(mid_sh - mid_hip)
    current = poser.direction("spine04", "neck01")
    # Lean the torso only partly towards MediaPipe's estimate: its torso depth is the least reliable part.
    lean = _unit(current + 0.7 * (up - current))
    poser.aim("spine04", "neck01", lean)

    pairs = {
        "upperarm01.L": ("left_shoulder", "left_elbow"),
        "lowerarm01.L": ("left_elbow", "left_wrist"),
        "upperarm01.R": ("right_shoulder", "right_elbow"),
        "lowerarm01.R": ("right_elbow", "right_wrist"),
        "upperleg01.L": ("left_hip", "left_knee"),
        "lowerleg01.L": ("left_knee", "left_ankle"),
        "upperleg01.R": ("right_hip", "right_knee"),
        "lowerleg01.R": ("right_knee", "right_ankle"),
    }
    targets = {}
    for bone, (a, b) in pairs.items():
        d = _unit(w[idx(b)] - w[idx(a)])
        # MediaPipe's depth (y here) is its least reliable axis: keep its sign but only part of its size,
        # so the fit starts off the plane (a limb exactly in the image plane is a saddle of the 2D loss:
        # foreshortening cannot tell forwards from backwards) without trusting a noisy magnitude.
        # The bone in the body's coronal plane (yaw capped: seen nearly side-on the plane is edge-on).
        coronal = d[0] * math.tan(math.radians(float(np.clip(yaw, -70.0, 70.0))))
        alpha = share.get(bone.split(".")[0], 1.0)
        d[1] = alpha * (d[1] * depth_shrink - depth_bias) + (1.0 - alpha) * coronal
        targets[bone] = _unit(d)
    poser.aim_limbs(targets)
    for side, name in (("L", "left"), ("R", "right")):
        toe = _unit(w[idx(f"{name}_foot_index")] - w[idx(f"{name}_heel")])
        toe = _unit(toe + np.array([0.0, 0.0, -0.45]))  # ankle -> toe base points down more than heel -> toe
        if np.linalg.norm(toe) > 0:
            poser.aim(f"foot.{side}", f"toe3-1.{side}", toe)
    return poser.as_float32(), yaw


def solve_camera(points_world: np.ndarray, keypoints_xy: np.ndarray, weights: np.ndarray) -> tuple[float, np.ndarray]:
    """Weighted least squares ``xy ~ s * (x, -z) + p`` for the frontal orthographic camera: (s, p)."""
    u = np.concatenate([points_world[:, 0], -points_world[:, 2]])
    tgt = np.concatenate([keypoints_xy[:, 0], keypoints_xy[:, 1]])
    n = len(points_world)
    a = np.zeros((2 * n, 3))
    a[:, 0] = u
    a[:n, 1] = 1.0
    a[n:, 2] = 1.0
    sw = np.sqrt(np.concatenate([weights, weights]))
    sol, *_ = np.linalg.lstsq(a * sw[:, None], tgt * sw, rcond=None)
    return float(abs(sol[0])), sol[1:].astype(np.float64)


# --------------------------------------------------------------------------- the fit


class _Problem:
    """Parameters, fixed data and the loss of one fit (kept together so stages share them)."""

    def __init__(self, body: BodyModel, keypoints: Keypoints2D, mask: np.ndarray, height_m: float,
                 options: FitOptions, init_shape: np.ndarray | None = None,
                 init_pose: np.ndarray | None = None) -> None:
        import torch

        self.body = body
        self.options = options
        self.height_m = float(height_m)
        self.lmap = landmark_map(body)
        self.image_h, self.image_w = mask.shape
        self.mask = np.clip(np.asarray(mask, np.float32), 0.0, 1.0)
        self.faces = torch.as_tensor(np.asarray(body.faces, np.int64))

        # Shape: the default adult at the user's height.
        base = body.default_shape if init_shape is None else np.asarray(init_shape, np.float32)
        shape0 = body.solve_height(self.height_m, base)
        pose0, yaw0 = initial_pose(body, shape0, keypoints)
        if init_pose is not None:
            pose0 = np.asarray(init_pose, np.float32)
        self.fit_idx = np.array([body.joint_index(n) for n in FIT_JOINTS], np.int64)
        self.pose0 = torch.as_tensor(pose0)
        self.theta = torch.zeros(len(FIT_JOINTS), 3, requires_grad=True)
        lo, hi = body.shape_bounds[:, 0], body.shape_bounds[:, 1]
        self.shape_lo = torch.as_tensor(lo)
        self.shape_span = torch.as_tensor(hi - lo)
        unit = np.clip((shape0 - lo) / (hi - lo), 1e-3, 1 - 1e-3)
        self.shape_logit0 = torch.as_tensor(np.log(unit / (1 - unit)), dtype=torch.float32)
        self.shape_logit = torch.zeros(len(unit), requires_grad=True)  # change from the start, in logits
        self.shape_free = torch.tensor([0.0 if n == body.height_parameter else 1.0 for n in body.shape_names])
        names = body.shape_names
        self.shape_mean = torch.tensor([_SHAPE_PRIOR.get(n, (0.5, 0.3))[0] for n in names])
        self.shape_std = torch.tensor([_SHAPE_PRIOR.get(n, (0.5, 0.3))[1] for n in names])
        self.yaw0 = yaw0

        # Keypoint targets (normalised by the image height so losses are resolution-free).
        self.kp = torch.as_tensor(np.asarray(keypoints.xy, np.float32)) / self.image_h
        vis = np.clip(np.asarray(keypoints.visibility, np.float32), 0.0, 1.0)
        self.kp_w = torch.as_tensor(self.lmap.weight * vis)
        # MediaPipe 3D bone directions, in world axes of the frontal camera.
        w3 = mediapipe_world_to_body(keypoints.world_xyz)
        ia = [Keypoints2D.index(a) for a, _ in DIRECTION_PAIRS]
        ib = [Keypoints2D.index(b) for _, b in DIRECTION_PAIRS]
        d = w3[ib] - w3[ia]
        d = d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-9)
        self.dir_a, self.dir_b = ia, ib
        self.dir_target = torch.as_tensor(np.nan_to_num(d), dtype=torch.float32)
        self.dir_w = torch.as_tensor(np.minimum(vis[ia], vis[ib]) * np.isfinite(d).all(1))

        # Camera: least squares on the initial body's landmarks.
        with torch.no_grad():
            out = body.forward(torch.as_tensor(shape0)[None], self.pose0[None])
            lm = self.lmap.landmarks(out.vertices, out.joint_world)[0].numpy()
        scale, principal = solve_camera(lm, np.asarray(keypoints.xy, np.float64), self.kp_w.numpy() + 1e-6)
        self.log_scale = torch.tensor(math.log(max(scale, 1e-3) / self.image_h), requires_grad=True)
        self.offset = torch.as_tensor(principal / self.image_h, dtype=torch.float32).clone().requires_grad_(True)
        self.log_scale0 = self.log_scale.detach().clone()
        self.offset0 = self.offset.detach().clone()
        self.yaw_offset = 0.0

        # Per-joint prior weights and the limb twist axes (local +Y is along the bone).
        names_j = [str(n) for n in FIT_JOINTS]
        self.prior_w = torch.tensor([_JOINT_PRIOR.get(n, _LIMB_PRIOR) for n in names_j])
        self.is_limb = torch.tensor([n.split(".")[0] in _LIMBS for n in names_j], dtype=torch.float32)
        self.knees = [(body.joint_index(f"upperleg01.{s}"), body.joint_index(f"lowerleg01.{s}"),
                       body.joint_index(f"foot.{s}")) for s in ("L", "R")]
        self.root = body.joint_index("root")
        self.hip_pair = (body.joint_index("upperleg01.L"), body.joint_index("upperleg01.R"))
        self.ankle_pair = (body.joint_index("foot.L"), body.joint_index("foot.R"))
        self.neck = body.joint_index("neck01")
        limbs = [(f"{a}.{side}", f"{b}.{side}") for side in ("L", "R") for a, b in
                 (("upperarm01", "lowerarm01"), ("lowerarm01", "wrist"), ("upperleg01", "lowerleg01"),
                  ("lowerleg01", "foot"))]
        self.limb_a = [body.joint_index(a) for a, _ in limbs]
        self.limb_b = [body.joint_index(b) for _, b in limbs]
        with torch.no_grad():
            heads0 = out.joint_world[0, :, :3, 3]
            bone0 = heads0[self.limb_b] - heads0[self.limb_a]
            self.limb_depth0 = bone0[:, 1] / bone0.norm(dim=1).clamp_min(1e-6)
        self._targets: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    # -- parameters -------------------------------------------------------------------------------

    def shape(self) -> torch.Tensor:
        import torch

        logit = self.shape_logit0 + _SHAPE_STEP * self.shape_free * self.shape_logit
        return self.shape_lo + self.shape_span * torch.sigmoid(logit)

    def pose(self) -> torch.Tensor:
        local = self.pose0[self.fit_idx] @ axis_angle_to_matrix(self.theta)
        return self.pose0.index_put((torch_index(self.fit_idx),), local)

    def camera(self) -> OrthographicCamera:
        import torch

        s = torch.exp(self.log_scale) * self.image_h
        return OrthographicCamera(rotation=orbit_rotation(0.0, 0.0), center=np.zeros(3), scale=s,
                                  width=self.image_w, height=self.image_h, principal=self.offset * self.image_h)

    # -- losses -----------------------------------------------------------------------------------

    def target_mask(self, size: int) -> tuple[torch.Tensor, tuple[int, int]]:
        import cv2
        import torch

        if size not in self._targets:
            f = size / max(self.image_h, self.image_w)
            hw = (max(8, round(self.image_h * f)), max(8, round(self.image_w * f)))
            small = cv2.resize(self.mask, (hw[1], hw[0]), interpolation=cv2.INTER_AREA)
            self._targets[size] = (torch.as_tensor(small), hw)  # type: ignore[assignment]
        return self._targets[size]  # type: ignore[return-value]

    def losses(self, sil_size: int | None, use_shape: bool) -> dict[str, torch.Tensor]:
        import torch

        from ..render import get_rasterizer, soft_iou_loss

        opt = self.options
        shape = self.shape() if use_shape else self.shape().detach()
        out = self.body.forward(shape[None], self.pose()[None])
        # Stature = the user's height, exactly: the body is scaled uniformly by H / stature (about the
        # origin, so the feet stay on the ground). The "height" phenotype is frozen during the fit (it would
        # only duplicate the scale) and solved for the same stature at the end.
        z = out.rest_vertices[0, :, 2]
        k = self.height_m / (z.max() - z.min())
        verts = out.vertices * k
        joints = torch.cat([out.joint_world[..., :3], out.joint_world[..., 3:] * torch.cat(
            [k.expand(3), torch.ones(1)]).reshape(1, 1, 4, 1)], dim=-1)
        s = torch.exp(self.log_scale)
        lm = self.lmap.landmarks(verts, joints)[0]
        proj = torch.stack([lm[:, 0], -lm[:, 2]], dim=1) * s + self.offset
        r2 = ((proj - self.kp) ** 2).sum(1)
        terms: dict[str, torch.Tensor] = {}
        terms["keypoints"] = opt.keypoint_weight * (self.kp_w * _geman_mcclure(r2, 0.05)).sum() / self.kp_w.sum()

        d = lm[self.dir_b] - lm[self.dir_a]
        d = d / d.norm(dim=1, keepdim=True).clamp_min(1e-6)
        cos = (d * self.dir_target).sum(1)
        terms["directions"] = opt.direction_weight * (self.dir_w * (1.0 - cos)).sum() / self.dir_w.sum().clamp_min(1e-6)

        # Priors.
        tw = self.theta[:, 1] ** 2 * self.is_limb
        terms["pose_prior"] = opt.pose_prior_weight * ((self.prior_w * (self.theta**2).sum(1)).sum()
                                                       + _TWIST_PRIOR * tw.sum())
        heads = joints[0, :, :3, 3]
        forward = -joints[0, self.root, :3, :3] @ self._root_rest_y()
        knee = 0.0
        for hip, kn, ankle in self.knees:
            thigh = heads[kn] - heads[hip]
            shin = heads[ankle] - heads[kn]
            thigh = thigh / thigh.norm().clamp_min(1e-6)
            bend = shin - (shin @ thigh) * thigh
            knee = knee + torch.relu(bend @ forward) ** 2
        terms["knee"] = 10.0 * knee
        # Depth of the limbs stays near MediaPipe's (the initialisation): the only other depth cue, the
        # foreshortening of a bone of known length, is corrupted by the photo's perspective (a camera at
        # chest height shortens the legs) and by any error in the body's proportions.
        bone = heads[self.limb_b] - heads[self.limb_a]
        depth = bone[:, 1] / bone.norm(dim=1).clamp_min(1e-6)
        terms["limb_depth"] = opt.limb_depth_weight * ((depth - self.limb_depth0) ** 2).sum()
        # Balance: a standing person's neck and each ankle are roughly above and below the hips in depth
        # (the view axis, world y here): what keeps the legs and torso from swinging into the unobservable
        # depth when perspective or a proportion error makes them look short.
        hips = 0.5 * (heads[self.hip_pair[0]] + heads[self.hip_pair[1]])
        ankles = heads[list(self.ankle_pair), 1]
        terms["balance"] = opt.balance_weight * (((ankles - hips[1]) ** 2).sum() + (heads[self.neck, 1] - hips[1]) ** 2)
        # Gravity: people stand upright, and a pitch of the whole body barely changes a frontal image.
        up = joints[0, self.root, :3, :3] @ self._root_rest_up()
        terms["upright"] = opt.upright_weight * (1.0 - up[2])
        terms["shape_prior"] = opt.shape_prior_weight * (((shape - self.shape_mean) / self.shape_std) ** 2).sum()

        if sil_size is not None:
            target, hw = self.target_mask(sil_size)
            cam = self.camera()
            sil = get_rasterizer().silhouette(verts[0], self.faces, cam, hw, sigma=1.0)
            outside = (sil * (1.0 - target)).sum() / target.sum().clamp_min(1.0)
            terms["silhouette"] = opt.silhouette_weight * soft_iou_loss(sil, target)
            terms["outside"] = opt.outside_weight * opt.silhouette_weight * outside
        return terms

    def _root_rest_up(self) -> torch.Tensor:
        """The root's local axis that points up (+Z world) at rest."""
        import torch

        if not hasattr(self, "_root_up"):
            rest = self.body.rest_skeleton(self.body.default_shape).matrices[self.root, :3, :3]
            self._root_up = torch.as_tensor(rest.T @ np.array([0.0, 0.0, 1.0], np.float32), dtype=torch.float32)
        return self._root_up

    def _root_rest_y(self) -> torch.Tensor:
        """The root's local axis that points backwards (+Y world) at rest, so -R @ it is 'forward'."""
        import torch

        if not hasattr(self, "_root_back"):
            rest = self.body.rest_skeleton(self.body.default_shape).matrices[self.root, :3, :3]
            self._root_back = torch.as_tensor(rest.T @ np.array([0.0, 1.0, 0.0], np.float32), dtype=torch.float32)
        return self._root_back


def torch_index(idx: np.ndarray) -> torch.Tensor:
    import torch

    return torch.as_tensor(idx, dtype=torch.long)


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
) -> BodyFit:
    """Fit ``body`` (an anny model) to one person's landmarks and mask (same image), in metres.

    Args:
        keypoints: MediaPipe's 33 landmarks in the pixels of the image ``mask`` comes from.
        mask: (H, W) float32 person mask in [0, 1].
        height_m: the person's stature: sets the metric scale (see the module docstring).
        options: the schedule (see :class:`FitOptions`; the quality presets of :mod:`.stages` make them).
        progress: reported to as stage "fit" every few iterations (a cancel raises there).
        init_shape: start from these phenotypes (re-solved to ``height_m``) instead of the average adult.
        init_pose: start from this (J, 3, 3) pose instead of the MediaPipe initialisation.
    """
    with _single_threaded():
        return _fit_body(body, keypoints, mask, height_m, options or FitOptions(), progress or Silent(),
                         init_shape, init_pose)


@contextlib.contextmanager
def _single_threaded() -> Iterator[None]:
    """Run torch with one intra-op thread inside the block (restored after).

    Why: the fit is thousands of small ops on a 14k-vertex mesh and a <= 256 px image; a second thread
    gains nothing (measured 3.7 s with one thread against 4.3-5.0 s with two on an idle 2-core machine),
    and when another process shares the cores, two spinning threads per op can slow the whole fit down
    tenfold or more.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _fit_body(body: BodyModel, keypoints: Keypoints2D, mask: np.ndarray, height_m: float, options: FitOptions,
              progress: Progress, init_shape: np.ndarray | None, init_pose: np.ndarray | None) -> BodyFit:
    import torch

    t0 = time.perf_counter()
    progress.report("fit", 0.0, "initialising the body from the landmarks")
    prob = _Problem(body, keypoints, mask, height_m, options, init_shape, init_pose)
    timings = {"init": time.perf_counter() - t0}

    total = max(1, options.total_iterations)
    done = 0
    stages: list[tuple[str, int, int | None, bool]] = [("keypoints", options.keypoint_iterations, None, False)]
    for it, size in zip(options.silhouette_iterations, options.silhouette_sizes, strict=False):
        stages.append((f"silhouette_{size}", it, size, options.fit_shape))
    if options.yaw_hypotheses and init_pose is None:
        t_stage = time.perf_counter()
        done = _best_yaw_start(prob, options, progress, total)
        timings["yaw_search"] = time.perf_counter() - t_stage
    for name, iterations, size, use_shape in stages:
        t_stage = time.perf_counter()
        params = [prob.theta, prob.log_scale, prob.offset] + ([prob.shape_logit] if use_shape else [])
        if options.optimizer == "lbfgs":
            done = _run_lbfgs(prob, params, iterations, size, use_shape, progress, name, done, total)
        else:
            done = _run_adam(prob, options, iterations, size, use_shape, progress, name, done, total)
        timings[name] = time.perf_counter() - t_stage

    with torch.no_grad():
        final = {k: float(v) for k, v in prob.losses(options.silhouette_sizes[-1] if options.silhouette_sizes
                                                       else None, False).items()}
    fit = _finish(prob, final)
    fit.timings = {**timings, "total": time.perf_counter() - t0}
    progress.report("fit", 1.0, "body fitted")
    return fit


def _best_yaw_start(prob: _Problem, options: FitOptions, progress: Progress, total: int) -> int:
    """Multi-start over the body's yaw: the keypoint stage from MediaPipe's yaw and from offsets of it, keeping
    the start with the lowest loss (its parameters stay in ``prob``).

    Why: a wrong yaw is a local minimum the limbs compensate for (started from the true pose, the same
    objective is ~2 % lower, with half the keypoint error), and MediaPipe's yaw is off by 5-15 deg on
    synthetic people. The whole body turns with the root, so each start keeps MediaPipe's limb directions
    relative to the torso.
    """
    import torch

    base = prob.pose0.clone()
    rest = prob.body.rest_skeleton(prob.shape().detach().numpy())
    starts = []
    done = 0
    for offset in (0.0, *options.yaw_hypotheses):
        poser = Poser(rest, base.numpy())
        poser.rotate_world("root", rot_z(offset))
        prob.pose0 = torch.as_tensor(poser.as_float32())
        with torch.no_grad():
            prob.theta.zero_()
            prob.log_scale.copy_(prob.log_scale0)
            prob.offset.copy_(prob.offset0)
        params = [prob.theta, prob.log_scale, prob.offset]
        done = _run_lbfgs(prob, params, options.keypoint_iterations, None, False, progress,
                          f"yaw {offset:+.0f}", done, total)
        with torch.no_grad():
            loss = float(sum(prob.losses(None, False).values()))
        starts.append((loss, offset, prob.pose0.clone(), prob.theta.detach().clone(), prob.log_scale.detach().clone(),
                       prob.offset.detach().clone()))
    loss, offset, pose0, theta, log_scale, cam_offset = min(starts, key=lambda s: s[0])
    prob.pose0 = pose0
    with torch.no_grad():
        prob.theta.copy_(theta)
        prob.log_scale.copy_(log_scale)
        prob.offset.copy_(cam_offset)
    prob.yaw_offset = offset
    return done


def _run_lbfgs(prob: _Problem, params: list, iterations: int, size: int | None, use_shape: bool,
               progress: Progress, name: str, done: int, total: int) -> int:
    """L-BFGS with a strong-Wolfe line search: steps scale with the gradient and the curvature, so the
    weakly constrained directions (depth, yaw) hardly move, unlike Adam's unit-size steps.

    The stage ends on the best parameters it evaluated, not the last ones: a line search that
    overshoots along an ill-conditioned direction can overflow into NaN (seen once in ~100 synthetic
    fits, from a limb started exactly in the image plane), and every later step is then NaN too."""
    import torch

    opt = torch.optim.LBFGS(params, lr=1.0, max_iter=iterations, max_eval=int(iterations * 1.5),
                            history_size=20, tolerance_grad=1e-10, tolerance_change=1e-12,
                            line_search_fn="strong_wolfe")
    count = [0]
    best: list = [math.inf, [p.detach().clone() for p in params]]

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        loss = _LOSS_SCALE * sum(prob.losses(size, use_shape).values())
        value = float(loss.detach())
        if math.isfinite(value) and value < best[0]:
            best[0], best[1] = value, [p.detach().clone() for p in params]
        if not math.isfinite(value):  # nothing to learn here: a zero step direction ends the search
            return loss.detach().nan_to_num(nan=1e30, posinf=1e30)
        loss.backward()
        count[0] += 1
        if count[0] % 5 == 0:
            progress.report("fit", min(done + count[0], total) / total,
                            f"fitting the body ({name}, evaluation {count[0]})")
        return loss

    opt.step(closure)
    with torch.no_grad():
        for p, b in zip(params, best[1], strict=True):
            p.copy_(b)
    return done + iterations


def _run_adam(prob: _Problem, options: FitOptions, iterations: int, size: int | None, use_shape: bool,
              progress: Progress, name: str, done: int, total: int) -> int:
    import torch

    groups = [
        {"params": [prob.theta], "lr": options.learning_rate},
        {"params": [prob.log_scale, prob.offset], "lr": options.learning_rate * 0.1},
    ]
    if use_shape:
        groups.append({"params": [prob.shape_logit], "lr": options.learning_rate * 2})
    opt = torch.optim.Adam(groups)
    # Cosine decay to 5 %: Adam's steps are ~lr whatever the gradient's size, so without decay the
    # weakly constrained directions (depth, yaw) keep jittering at the end of a stage.
    n = max(iterations, 1)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * min(i / n, 1.0)))
    )
    for i in range(iterations):
        opt.zero_grad(set_to_none=True)
        loss = sum(prob.losses(size, use_shape).values())
        loss.backward()
        opt.step()
        sched.step()
        done += 1
        if i % 5 == 0:
            progress.report("fit", done / total, f"fitting the body ({name}, step {i + 1}/{iterations})")
    return done


#: Preconditioning of the shape variables (logits per unit of the optimised variable): the silhouette's
#: gradient w.r.t. a phenotype is ~100x weaker than w.r.t. a joint angle, and L-BFGS's first steps follow
#: the raw gradient, so without it the shape would hardly move in a few dozen iterations.
_SHAPE_STEP = 8.0

#: The losses are small numbers (fractions of the image height, squared); L-BFGS's tolerances and first
#: step are absolute, so it sees them scaled up.
_LOSS_SCALE = 1000.0


def _finish(prob: _Problem, losses: dict[str, float]) -> BodyFit:
    """Turn the optimised parameters into a grounded, centred, -Y facing body and the matching camera."""
    import torch

    body = prob.body
    with torch.no_grad():
        shape = prob.shape().numpy().astype(np.float32)
        # The fit scaled the body to the user's height; let the model's own height phenotype do it (out
        # of the model's reach with these phenotypes, the closest body is kept).
        with contextlib.suppress(ValueError):
            shape = body.solve_height(prob.height_m, shape).astype(np.float32)
        pose = prob.pose().numpy().astype(np.float64)
        scale = float(torch.exp(prob.log_scale)) * prob.image_h
        principal = prob.offset.numpy().astype(np.float64) * prob.image_h
        # Move the yaw out of the body into the camera: the asset faces -Y whatever way the person turned.
        rest = body.rest_skeleton(shape)
        poser = Poser(rest, pose)
        root = body.joint_index("root")
        world = poser.world()
        turn = world[root, :3, :3] @ rest.matrices[root, :3, :3].T
        yaw = math.degrees(math.atan2(turn[1, 0], turn[0, 0]))
        pivot = world[root, :3, 3].copy()
        poser.rotate_world("root", rot_z(-yaw))
        pose32 = poser.as_float32()
        out = body.forward(torch.as_tensor(shape)[None], torch.as_tensor(pose32)[None])
        v = out.vertices[0].numpy()
        lo, hi = v.min(0), v.max(0)
        translation = np.array([-(lo[0] + hi[0]) / 2, -(lo[1] + hi[1]) / 2, -lo[2]], np.float32)
        out = body.forward(torch.as_tensor(shape)[None], torch.as_tensor(pose32)[None],
                           torch.as_tensor(translation)[None])
    # Old body point X = Rz(yaw) (X' - t - h) + h; old camera: pixel = s R0 (X - 0)_xy + p.
    # So pixel = s R0 Rz(yaw) (X' - c') with c' = t + h - Rz(-yaw) h.
    rz = rot_z(yaw)
    rotation = orbit_rotation(0.0, 0.0) @ rz
    centre = translation.astype(np.float64) + pivot - rz.T @ pivot
    camera = OrthographicCamera(rotation=rotation, center=centre, scale=scale, width=prob.image_w,
                                height=prob.image_h, principal=principal)
    return BodyFit(
        shape=shape,
        pose=pose32,
        translation=translation,
        camera=camera,
        vertices=out.vertices[0].numpy().astype(np.float32),
        joint_world=out.joint_world[0].numpy().astype(np.float32),
        bone_lengths=out.bone_lengths[0].numpy().astype(np.float32),
        height_m=float(body.measure_height(shape[None])[0]),
        yaw_deg=float(yaw),
        losses=losses,
    )


def reframe_camera(camera: OrthographicCamera, to_canvas_scale: float, to_canvas_offset: tuple[float, float],
                   width: int, height: int) -> OrthographicCamera:
    """The same camera for the original photo, given the photo -> canvas map ``canvas = photo * k + o``
    (:class:`~strata.core.imaging.framing.CropTransform`'s ``scale`` and ``offset``)."""
    from dataclasses import replace

    k = float(to_canvas_scale)
    principal = (np.asarray(camera._principal(), np.float64) - np.asarray(to_canvas_offset, np.float64)) / k
    return replace(camera, scale=float(np.asarray(camera.scale)) / k, principal=principal, width=int(width),
                   height=int(height))
