"""SMPL-X's skeleton as public facts, and how it sits on the anny body (pure data: cheap to import).

Why: motion capture (AMASS) and every SMPL-X fitting tool drive the 55 SMPL-X joints. Their names and
parent table are public (the ``smplx`` package's code); the model files are licensed and are not needed
for a rig. So an SMPL-X rig can be put on the embedded anny body: the same joints, names and hierarchy,
joint positions from anny's own skeleton, skin weights gathered from anny's bones.

Conventions, as SMPL-X and the MPI Blender add-on have them:

* **Rest pose**: a T-pose (arms horizontal, legs straight).
* **Joint frames**: every joint's rest frame is SMPL-X's canonical frame (X to the subject's left, Y up,
  Z forward); a pose is one axis-angle per joint in that frame, applied parents first. In Strata's world
  (Z up, facing -Y) that frame is :data:`CANONICAL` (a +90 degree turn about X), so a bone's pose
  rotation *is* the SMPL-X axis-angle, which is how the MPI add-on and AMASS importers write them
  (quaternion rotation mode). Bones therefore all point up (+Y of the canonical frame).
* **Pose vectors** (AMASS ``poses``): 55 x 3 axis-angles in joint order (root, 21 body joints, jaw, eyes,
  15 per hand); files with 52 joints (SMPL+H: no jaw or eyes) are read too.
"""

from __future__ import annotations

import numpy as np

from .joint_map import JointMap, SideJoints

SMPLX_JOINT_NAMES: list[str] = [
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee", "spine2", "left_ankle",
    "right_ankle", "spine3", "left_foot", "right_foot", "neck", "left_collar", "right_collar", "head",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "jaw",
    "left_eye_smplhf", "right_eye_smplhf",
    *[f"left_{f}{i}" for f in ("index", "middle", "pinky", "ring", "thumb") for i in (1, 2, 3)],
    *[f"right_{f}{i}" for f in ("index", "middle", "pinky", "ring", "thumb") for i in (1, 2, 3)],
]

SMPLX_PARENTS: np.ndarray = np.array(
    [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 15, 15, 15,
     20, 25, 26, 20, 28, 29, 20, 31, 32, 20, 34, 35, 20, 37, 38,
     21, 40, 41, 21, 43, 44, 21, 46, 47, 21, 49, 50, 21, 52, 53], np.int32)

#: SMPL-X's canonical frame (X left, Y up, Z forward) in Strata's world (X left, Z up, facing -Y): the
#: columns are where the canonical axes go. Every SMPL-X bone's rest frame.
CANONICAL: np.ndarray = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])

_FINGERS = {"thumb": 1, "index": 2, "middle": 3, "ring": 4, "pinky": 5}  # anny's finger numbers


def _anny_sources() -> dict[str, tuple[str, ...]]:
    """SMPL-X joint -> the anny (default rig) joints whose mean head is its position."""
    out: dict[str, tuple[str, ...]] = {
        "pelvis": ("upperleg01.L", "upperleg01.R"), "spine1": ("spine04",), "spine2": ("spine02",),
        "spine3": ("spine01",), "neck": ("neck01",), "head": ("head",), "jaw": ("head",),
    }
    for side, s in (("left", "L"), ("right", "R")):
        out.update({
            f"{side}_hip": (f"upperleg01.{s}",), f"{side}_knee": (f"lowerleg01.{s}",),
            f"{side}_ankle": (f"foot.{s}",), f"{side}_foot": (f"toe2-1.{s}", f"toe4-1.{s}"),
            f"{side}_collar": (f"clavicle.{s}",), f"{side}_shoulder": (f"upperarm01.{s}",),
            f"{side}_elbow": (f"lowerarm01.{s}",), f"{side}_wrist": (f"wrist.{s}",),
            f"{side}_eye_smplhf": (f"eye.{s}",),
        })
        for finger, n in _FINGERS.items():
            for i in (1, 2, 3):
                out[f"{side}_{finger}{i}"] = (f"finger{n}-{i}.{s}",)
    return out


#: SMPL-X joint -> anny joints placing it (see :func:`_anny_sources`).
ANNY_SOURCES: dict[str, tuple[str, ...]] = _anny_sources()

#: Where SMPL-X puts its jaw relative to the head joint (metres in Strata's world: forward and down); anny's
#: default rig has no jaw bone.
JAW_OFFSET = np.array([0.0, -0.025, -0.02])

#: anny joints whose skin goes to a SMPL-X joint other than their nearest placed ancestor's.
ANNY_OWNER_OVERRIDES: dict[str, str] = {
    "root": "pelvis", "pelvis.L": "pelvis", "pelvis.R": "pelvis", "spine05": "pelvis",
    **{f"toe{t}-{i}.{s}": f"{side}_foot" for s, side in (("L", "left"), ("R", "right"))
       for t in range(1, 6) for i in range(1, 4)},
}

#: The SMPL-X skeleton by role (the body fit, posing and garments address joints by role).
SMPLX_JOINT_MAP = JointMap(
    root="pelvis", spine_lower="spine1", spine_upper="spine3", neck="neck", head="head",
    left=SideJoints(clavicle="left_collar", upper_arm="left_shoulder", forearm="left_elbow", wrist="left_wrist",
                    thigh="left_hip", shin="left_knee", foot="left_ankle", toe="left_foot"),
    right=SideJoints(clavicle="right_collar", upper_arm="right_shoulder", forearm="right_elbow",
                     wrist="right_wrist", thigh="right_hip", shin="right_knee", foot="right_ankle",
                     toe="right_foot"),
)

SMPLX_ARM_CHAINS: dict[str, tuple[str, str, str]] = {
    "L": ("left_shoulder", "left_elbow", "left_wrist"),
    "R": ("right_shoulder", "right_elbow", "right_wrist"),
}


def axis_angle_to_matrix(rotvec: np.ndarray) -> np.ndarray:
    """(..., 3) axis-angle vectors -> (..., 3, 3) rotation matrices (Rodrigues)."""
    r = np.asarray(rotvec, np.float64)
    theta = np.linalg.norm(r, axis=-1, keepdims=True)
    axis = r / np.maximum(theta, 1e-12)
    x, y, z = axis[..., 0], axis[..., 1], axis[..., 2]
    zero = np.zeros_like(x)
    k = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1).reshape(r.shape[:-1] + (3, 3))
    s, c = np.sin(theta)[..., None], np.cos(theta)[..., None]
    eye = np.broadcast_to(np.eye(3), k.shape)
    return eye + s * k + (1 - c) * (k @ k)


def pose_rotations(poses: np.ndarray) -> np.ndarray:
    """(T, 55, 3, 3) local rotations from AMASS-style ``poses`` (T, 3 x joints): 55 joints (SMPL-X), or 52
    (SMPL+H: the hands follow the body directly, so jaw and eyes stay at rest)."""
    p = np.asarray(poses, np.float64)
    if p.ndim == 1:
        p = p[None]
    if p.ndim != 2 or p.shape[1] % 3 or p.shape[1] // 3 not in (22, 52, 55):
        raise ValueError(f"poses must be (frames, 66 | 156 | 165) axis-angles (22, 52 or 55 joints), got "
                         f"{tuple(np.shape(poses))}")
    joints = p.reshape(len(p), -1, 3)
    full = np.zeros((len(p), 55, 3))
    if joints.shape[1] == 55:
        full[:] = joints
    else:  # SMPL+H (52): root + 21 body, then the hands; SMPL (22): the body alone
        full[:, :22] = joints[:, :22]
        if joints.shape[1] == 52:
            full[:, 25:55] = joints[:, 22:52]
    return axis_angle_to_matrix(full)
