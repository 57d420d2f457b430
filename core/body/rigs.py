"""Static facts about the skeletons the body backends offer (pure data: cheap to import).

Kept apart from the backends so a CLI or the server can list rigs and validate ``--rig`` without
importing torch or anny.
"""

from __future__ import annotations

from .joint_map import JointMap, SideJoints

#: Rigs anny 0.6.2 ships offline that Strata supports, with their joint counts (and "smplx", which Strata
#: builds on the default rig: no SMPL-X file needed). anny's own rigs use the
#: "blender" bone orientation (head/tail/roll from the rig files), which is what gives every joint a
#: +Y axis along its bone. anny's "soma" rig is left out: it has no bone tails, so it cannot follow that
#: convention.
ANNY_RIGS: dict[str, int] = {
    "anny": 104,  # MakeHuman default rig pruned by anny (no tongue/face-expression/breast bones)
    "makehuman": 163,  # the full MakeHuman default rig (face, tongue, breasts)
    "game_engine": 53,  # MakeHuman's game-engine rig (UE-style names: upperarm_l, ...)
    "mixamo": 52,  # Mixamo names (mixamorig:LeftArm, ...)
    "cmu_mb": 31,  # CMU motion-builder skeleton (BVH mocap retargeting)
    "smplx": 55,  # SMPL-X's joints, names and hierarchy, placed on the default rig (core/body/anny_smplx.py)
}

#: Per rig: side -> (upper arm, forearm, hand) joints, used by the A/T pose presets.
ANNY_ARM_CHAINS: dict[str, dict[str, tuple[str, str, str]]] = {
    "anny": {
        "L": ("upperarm01.L", "lowerarm01.L", "wrist.L"),
        "R": ("upperarm01.R", "lowerarm01.R", "wrist.R"),
    },
    "makehuman": {
        "L": ("upperarm01.L", "lowerarm01.L", "wrist.L"),
        "R": ("upperarm01.R", "lowerarm01.R", "wrist.R"),
    },
    "game_engine": {
        "L": ("upperarm_l", "lowerarm_l", "hand_l"),
        "R": ("upperarm_r", "lowerarm_r", "hand_r"),
    },
    "mixamo": {
        "L": ("mixamorig:LeftArm", "mixamorig:LeftForeArm", "mixamorig:LeftHand"),
        "R": ("mixamorig:RightArm", "mixamorig:RightForeArm", "mixamorig:RightHand"),
    },
    "cmu_mb": {
        "L": ("LeftArm", "LeftForeArm", "LeftHand"),
        "R": ("RightArm", "RightForeArm", "RightHand"),
    },
}


def _anny_side(s: str) -> SideJoints:
    """anny's (MakeHuman's) bones of one side: the "01" limb bones are the anatomical joints, the "02"
    bones twist helpers that stay at rest; ``toe3-1`` (the middle toe) is what the foot points at."""
    return SideJoints(clavicle=f"clavicle.{s}", upper_arm=f"upperarm01.{s}", forearm=f"lowerarm01.{s}",
                      wrist=f"wrist.{s}", thigh=f"upperleg01.{s}", shin=f"lowerleg01.{s}", foot=f"foot.{s}",
                      toe=f"toe3-1.{s}")


#: anny's default rig by role (:mod:`.joint_map`). spine04 sits just above the pelvis, spine02 at the chest.
ANNY_JOINT_MAP = JointMap(root="root", spine_lower="spine04", spine_upper="spine02", neck="neck01", head="head",
                          left=_anny_side("L"), right=_anny_side("R"))

#: Per rig, its joint map: only the rig the body fit runs on (the others are reached by rig transfer).
ANNY_JOINT_MAPS: dict[str, JointMap] = {"anny": ANNY_JOINT_MAP}

#: anny phenotypes, in the order its model expects them (all in [0, 1]).
ANNY_SHAPE_NAMES: list[str] = ["gender", "age", "muscle", "weight", "height", "proportions"]

#: anny's age phenotype -> years: its blend targets are MakeHuman's baby (1 year), child (11), young adult
#: (25) and old (90) at 0, 1/3, 2/3 and 1, interpolated linearly between them.
AGE_YEARS: tuple[tuple[float, float], ...] = ((0.0, 1.0), (1 / 3, 11.0), (2 / 3, 25.0), (1.0, 90.0))


def age_phenotype(years: float) -> float:
    """anny's age phenotype for an age in ``years`` (1-90; clamped), the inverse of :func:`age_years`."""
    import numpy as np

    return float(np.interp(years, [y for _, y in AGE_YEARS], [p for p, _ in AGE_YEARS]))


def age_years(phenotype: float) -> float:
    """Years for anny's age phenotype (0-1)."""
    import numpy as np

    return float(np.interp(phenotype, [p for p, _ in AGE_YEARS], [y for _, y in AGE_YEARS]))
