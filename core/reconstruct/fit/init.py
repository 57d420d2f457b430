"""Where the fit starts: a closed-form pose, yaw and camera from MediaPipe's landmarks (~50 ms).

1. **Shape**: the default adult solved to the user's height (done by the caller, :class:`.problem.FitProblem`).
2. **Yaw**: from MediaPipe's 3D shoulder and hip lines (mirror-averaged, see
   :mod:`strata.core.pose.mediapipe_backend`).
3. **Pose**: the torso leaned and each limb bone (upper arm, forearm, thigh, shin, foot) rotated so that its
   rest direction matches MediaPipe's 3D bone direction, whose depth component is kept at 80 % (it is
   MediaPipe's least reliable axis, 10-20 deg off on synthetic renders) and, for the upper arms, mostly
   replaced by the body's coronal plane (:func:`initial_pose`).
4. **Camera**: scale + offset by linear least squares on the 2D landmarks (:func:`solve_camera`).

MediaPipe's 3D directions only initialise: as a loss term (following them) they pulled even a true
starting pose 6 cm away.
"""

from __future__ import annotations

import math

import numpy as np

from ...body.base import BodyModel
from ...pose.keypoints import Keypoints2D
from ..posing import Poser, rot_z

#: How much of MediaPipe's depth each limb bone (by joint role) starts from; the rest is the depth the bone
#: would have in the body's coronal plane (the plane of the shoulders, hips and spine). See :func:`initial_pose`.
MEDIAPIPE_DEPTH_SHARE: dict[str, float] = {"upper_arm": 0.3, "forearm": 1.0, "thigh": 1.0, "shin": 1.0}

#: The part of MediaPipe's depth a limb direction keeps (see :func:`initial_pose`).
DEPTH_SHRINK = 0.8

#: Limb bone role -> the MediaPipe landmarks (without their "left_" / "right_" prefix) at its two ends.
_LIMB_LANDMARKS: dict[str, tuple[str, str]] = {
    "upper_arm": ("shoulder", "elbow"),
    "forearm": ("elbow", "wrist"),
    "thigh": ("hip", "knee"),
    "shin": ("knee", "ankle"),
}
_SIDE_PREFIX = {"L": "left_", "R": "right_"}


def mediapipe_world_to_body(world_xyz: np.ndarray) -> np.ndarray:
    """MediaPipe world landmarks (x right, y down, z away from the camera) -> this project's world axes
    for a camera on -Y looking along +Y (x right, y away from the camera, z up)."""
    w = np.asarray(world_xyz, np.float64)
    return np.stack([w[:, 0], w[:, 2], -w[:, 1]], axis=1)


def _unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 1e-9 else v


def initial_pose(body: BodyModel, shape: np.ndarray, keypoints: Keypoints2D,
                 depth_shrink: float = DEPTH_SHRINK) -> tuple[np.ndarray, float]:
    """(J, 3, 3) pose from MediaPipe's 3D landmarks, and the body's yaw (degrees).

    The yaw comes from the shoulder and hip lines (right -> left should point along +X when facing the
    camera); then the torso is leaned along MediaPipe's hip -> shoulder direction and each limb bone is
    rotated (minimally) onto its 3D direction, parents first. Joints are addressed by role through
    ``body.joint_map``.

    ``depth_shrink`` scales MediaPipe's depth component of each limb direction; on 8 synthetic people
    shrinks of 0.6 / 0.8 / 1.0 gave 4.9 / 4.8 / 4.9 cm mean vertex error after the fit. Measured and
    rejected: a forward-lean bias added to that depth (any bias made it worse).

    :data:`MEDIAPIPE_DEPTH_SHARE` blends, per bone, MediaPipe's depth with the depth that puts the bone in
    the body's coronal plane (``x * tan(yaw)`` for its image-plane direction ``x``). People standing for a
    photo mostly hold their upper arms out to the side in that plane, and MediaPipe's upper-arm depth is its
    worst: on 16 synthetic photos (with mirror-averaged landmarks) upper arms started 30 % from MediaPipe
    cut the fitted body's mean vertex error from 5.1 to 4.5 cm (all coronal: 4.45 cm; the 30 % keeps
    MediaPipe's sign for arms held forwards). Forearms (elbows bend forwards) and legs lost accuracy the
    same way, so they keep MediaPipe's depth; so did shins started as straight as their image direction
    allows (4.5 -> 5.1 cm).
    """
    jm = body.joint_map
    w = mediapipe_world_to_body(keypoints.world_xyz)
    idx = Keypoints2D.index
    if not np.all(np.isfinite(w)):
        return np.tile(np.eye(3, dtype=np.float32), (body.num_joints, 1, 1)), 0.0

    # 1. Yaw: the right -> left hip and shoulder lines.
    across = (w[idx("left_hip")] - w[idx("right_hip")]) + (w[idx("left_shoulder")] - w[idx("right_shoulder")])
    yaw = math.degrees(math.atan2(across[1], across[0]))
    poser = Poser.for_body(body, shape)
    poser.rotate_world(jm.root, rot_z(yaw))

    # 2. Torso: leaned only partly towards MediaPipe's estimate (its torso depth is the least reliable part).
    mid_hip = 0.5 * (w[idx("left_hip")] + w[idx("right_hip")])
    mid_sh = 0.5 * (w[idx("left_shoulder")] + w[idx("right_shoulder")])
    up = _unit(mid_sh - mid_hip)
    current = poser.direction(jm.spine_lower, jm.neck)
    lean = _unit(current + 0.7 * (up - current))
    poser.aim(jm.spine_lower, jm.neck, lean)

    # 3. Limbs: MediaPipe's bone directions with a tempered depth.
    # The bone in the body's coronal plane (yaw capped: seen nearly side-on the plane is edge-on).
    tan_yaw = math.tan(math.radians(float(np.clip(yaw, -70.0, 70.0))))
    targets = {}
    for group in (("upper_arm", "forearm"), ("thigh", "shin")):
        for side, prefix in _SIDE_PREFIX.items():
            for role in group:
                a, b = _LIMB_LANDMARKS[role]
                d = _unit(w[idx(prefix + b)] - w[idx(prefix + a)])
                # MediaPipe's depth (y here) is its least reliable axis: keep its sign but only part of its
                # size, so the fit starts off the plane (a limb exactly in the image plane is a saddle of the
                # 2D loss: foreshortening cannot tell forwards from backwards) without trusting a noisy
                # magnitude.
                alpha = MEDIAPIPE_DEPTH_SHARE[role]
                d[1] = alpha * (d[1] * depth_shrink) + (1.0 - alpha) * (d[0] * tan_yaw)
                targets[jm.side(role, side)] = _unit(d)
    poser.aim_limbs(targets)

    # 4. Feet: heel -> toe, tilted down (the ankle -> toe base points down more than heel -> toe does).
    for side, prefix in _SIDE_PREFIX.items():
        toe = _unit(w[idx(f"{prefix}foot_index")] - w[idx(f"{prefix}heel")])
        toe = _unit(toe + np.array([0.0, 0.0, -0.45]))
        if np.linalg.norm(toe) > 0:
            poser.aim(jm.side("foot", side), jm.side("toe", side), toe)
    return poser.as_float32(), yaw


def solve_camera(points_world: np.ndarray, keypoints_xy: np.ndarray, weights: np.ndarray) -> tuple[float, np.ndarray]:
    """Weighted least squares ``xy ~ s * (x, -z) + p`` for the frontal orthographic camera: (s, p).

    Closed form because the camera is linear in (s, p) once the body is fixed; it starts the keypoint
    stage close enough that L-BFGS only refines it.
    """
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
