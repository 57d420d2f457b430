"""Pose a body from bone *directions*: the small kinematic toolbox shared by the fit and the test scenes.

Why directions: both things that pose a body here think in directions, not joint angles. The fit's
initialisation gets 3D bone directions from MediaPipe's world landmarks ("the left forearm points
forward and down"), and the synthetic test people are made by choosing limb directions in plausible
ranges. Turning a direction into a local joint rotation needs the posed parent chain, so it is done
bone by bone, parents first, with numpy forward kinematics on the rest skeleton (microseconds; no
autograd needed, the results only initialise or generate).

Every rotation is the *minimal* one taking the current bone direction onto the target, so no twist is
added about the bone axis; twist is left to the fit (it barely shows in a silhouette anyway).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from ..body.base import (
    BodyModel,
    BodyModelError,
    Skeleton,
    forward_kinematics_np,
    rotation_between,
    world_to_local_rotation,
)
from ..body.joint_map import JointMap


def rot_x(deg: float) -> np.ndarray:
    """Rotation about world +X (positive: +Y towards +Z)."""
    a = np.radians(deg)
    c, s = np.cos(a), np.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def rot_y(deg: float) -> np.ndarray:
    """Rotation about world +Y (positive: +Z towards +X)."""
    a = np.radians(deg)
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rot_z(deg: float) -> np.ndarray:
    """Rotation about world +Z (positive: +X towards +Y, counter-clockwise seen from above)."""
    a = np.radians(deg)
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def axis_angle_matrix(v: np.ndarray) -> np.ndarray:
    """Rotation matrix of an axis-angle vector (radians), numpy."""
    v = np.asarray(v, np.float64)
    angle = float(np.linalg.norm(v))
    if angle < 1e-12:
        return np.eye(3)
    k = v / angle
    kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + np.sin(angle) * kx + (1.0 - np.cos(angle)) * kx @ kx


class Poser:
    """Accumulates local rotations on one rest skeleton, one world-space edit at a time.

    ``pose`` is the (J, 3, 3) local-rotation array of :mod:`strata.core.body.base`; every method keeps
    it consistent with the posed world matrices (``world()``), so edits can depend on earlier ones
    (aim the forearm *after* the upper arm moved).
    """

    def __init__(self, skeleton: Skeleton, pose: np.ndarray | None = None, joint_map: JointMap | None = None) -> None:
        self.skeleton = skeleton
        #: The skeleton's joints by role (:mod:`strata.core.body.joint_map`): which bone aims at which.
        self.joint_map = joint_map
        n = len(skeleton.joint_names)
        self.pose = np.tile(np.eye(3), (n, 1, 1)) if pose is None else np.asarray(pose, np.float64).copy()

    @classmethod
    def for_body(cls, body: BodyModel, shape: np.ndarray | None = None) -> Poser:
        """A poser on ``body``'s rest skeleton for ``shape``, with the body's joint map if it has one."""
        try:
            joint_map: JointMap | None = body.joint_map
        except BodyModelError:
            joint_map = None
        return cls(body.rest_skeleton(shape), joint_map=joint_map)

    def index(self, name: str) -> int:
        return self.skeleton.index(name)

    def world(self) -> np.ndarray:
        """(J, 4, 4) posed world matrices."""
        return forward_kinematics_np(self.skeleton.matrices, self.skeleton.parents, self.pose)

    def rotate_world(self, bone: str, rotation: np.ndarray) -> None:
        """Turn ``bone`` (and its children) about its head by ``rotation`` given in world axes."""
        j = self.index(bone)
        w = self.world()
        self.pose[j] = self.pose[j] @ world_to_local_rotation(w[j, :3, :3], rotation)

    def direction(self, bone: str, toward: str) -> np.ndarray:
        """Current unit direction from ``bone``'s head to ``toward``'s head."""
        w = self.world()
        d = w[self.index(toward), :3, 3] - w[self.index(bone), :3, 3]
        return d / max(float(np.linalg.norm(d)), 1e-12)

    def aim(self, bone: str, toward: str, target: Sequence[float] | np.ndarray) -> None:
        """Minimal rotation of ``bone`` so that head(bone) -> head(toward) points along ``target``."""
        self.rotate_world(bone, rotation_between(self.direction(bone, toward), np.asarray(target, np.float64)))

    def aim_limbs(self, targets: dict[str, np.ndarray], limbs: dict[str, tuple[str, str]] | None = None) -> None:
        """Aim several limb bones (keys of ``limbs``, default the joint map's :meth:`~JointMap.limbs`:
        ``{bone: (joint it aims at, description)}``), parents first."""
        if limbs is None:
            if self.joint_map is None:
                raise ValueError("aim_limbs needs limbs= or a Poser with a joint map")
            limbs = self.joint_map.limbs()
        order = _parents_first([self.index(b) for b in targets], self.skeleton.parents)
        names = self.skeleton.joint_names
        for j in order:
            bone = names[j]
            self.aim(bone, limbs[bone][0], targets[bone])

    def as_float32(self) -> np.ndarray:
        return self.pose.astype(np.float32)


def _parents_first(indices: Iterable[int], parents: np.ndarray) -> list[int]:
    def depth(j: int) -> int:
        d = 0
        while parents[j] >= 0:
            j = int(parents[j])
            d += 1
        return d

    return sorted(set(indices), key=depth)
