"""SMPL-X pose files (AMASS and SMPL-X fits) and the public facts they rely on: joint names, parents.

Pure numpy, shared by the compute core (the SMPL-X rig) and the Blender add-on (loading a pose file as an
action), so both read a file the same way.

Layouts read:

* **AMASS** (``poses`` (T, 165) SMPL-X, (T, 156) SMPL+H or (T, 66) body only; ``trans`` (T, 3);
  ``mocap_frame_rate`` or ``mocap_framerate``): axis-angles in joint order (root, 21 body joints, jaw,
  eyes, 15 per hand; SMPL+H has no jaw or eyes). Its world is Z up.
* **SMPL-X fits** (``global_orient``, ``body_pose``, ``jaw_pose``, ``leye_pose``, ``reye_pose``,
  ``left_hand_pose``, ``right_hand_pose``, ``transl``): the same joints in separate arrays; their world is
  SMPL-X's canonical one, Y up.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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
#: columns are where the canonical axes go; every SMPL-X bone's rest frame in the T rest.
CANONICAL: np.ndarray = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]])

#: SMPL-X fit arrays in joint order: (key, first joint, joints).
FIT_KEYS: tuple[tuple[str, int, int], ...] = (
    ("global_orient", 0, 1), ("body_pose", 1, 21), ("jaw_pose", 22, 1), ("leye_pose", 23, 1),
    ("reye_pose", 24, 1), ("left_hand_pose", 25, 15), ("right_hand_pose", 40, 15),
)


class PoseFileError(ValueError):
    """A pose file that is not one of the layouts above; the message says what was found."""


@dataclass
class PoseSequence:
    """Frames of SMPL-X poses: what a pose file holds, in SMPL-X's joint order."""

    rotations: np.ndarray
    """(T, 55, 3, 3) each joint's rotation in SMPL-X's canonical frame (the root's in the file's world)."""
    translation: np.ndarray
    """(T, 3) metres, the file's world."""
    fps: float
    up: str
    """"Z" (AMASS's world) or "Y" (SMPL-X's canonical world, fits)."""

    @property
    def frames(self) -> int:
        return len(self.rotations)


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


def rotation_to_quaternion(r: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotations -> (..., 4) unit quaternions (w, x, y, z), w >= 0 (Blender's order)."""
    m = np.asarray(r, np.float64)
    w = np.sqrt(np.clip(1.0 + m[..., 0, 0] + m[..., 1, 1] + m[..., 2, 2], 0.0, None)) / 2
    x = np.sqrt(np.clip(1.0 + m[..., 0, 0] - m[..., 1, 1] - m[..., 2, 2], 0.0, None)) / 2
    y = np.sqrt(np.clip(1.0 - m[..., 0, 0] + m[..., 1, 1] - m[..., 2, 2], 0.0, None)) / 2
    z = np.sqrt(np.clip(1.0 - m[..., 0, 0] - m[..., 1, 1] + m[..., 2, 2], 0.0, None)) / 2
    x = np.copysign(x, m[..., 2, 1] - m[..., 1, 2])
    y = np.copysign(y, m[..., 0, 2] - m[..., 2, 0])
    z = np.copysign(z, m[..., 1, 0] - m[..., 0, 1])
    q = np.stack([w, x, y, z], axis=-1)
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def read_pose_file(source: str | Path | bytes) -> PoseSequence:
    """A pose file (path or bytes of an ``.npz``) as a :class:`PoseSequence`; :class:`PoseFileError` names
    the keys found when it is neither layout."""
    try:
        data = np.load(io.BytesIO(source) if isinstance(source, bytes) else Path(source), allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise PoseFileError(f"not a readable .npz pose file: {exc}") from None
    keys = set(data.files)
    fps = next((float(data[k]) for k in ("mocap_frame_rate", "mocap_framerate", "fps") if k in keys), 30.0)
    if "poses" in keys:
        rotations = pose_rotations(data["poses"])
        trans = np.asarray(data["trans"], np.float64) if "trans" in keys else np.zeros((len(rotations), 3))
        up = "Z"
    elif "body_pose" in keys:
        frames = np.asarray(data["body_pose"]).reshape(-1, 63).shape[0]
        full = np.zeros((frames, 55, 3))
        for key, start, count in FIT_KEYS:
            if key in keys:
                full[:, start:start + count] = np.asarray(data[key], np.float64).reshape(frames, count, 3)
        rotations = axis_angle_to_matrix(full)
        trans = np.asarray(data["transl"], np.float64).reshape(frames, 3) if "transl" in keys else np.zeros((frames, 3))
        up = "Y"
    else:
        raise PoseFileError("a pose file holds 'poses' (AMASS) or 'body_pose' (an SMPL-X fit); this one has "
                            f"{sorted(keys) or 'nothing'}")
    if len(trans) != len(rotations):
        raise PoseFileError(f"{len(rotations)} poses but {len(trans)} translations")
    return PoseSequence(rotations=rotations, translation=trans, fps=fps, up=up)


def matrix_to_axis_angle(r: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotations -> (..., 3) axis-angle vectors (angle in [0, pi])."""
    q = rotation_to_quaternion(r)
    w = np.clip(q[..., :1], -1.0, 1.0)
    xyz = q[..., 1:]
    s = np.linalg.norm(xyz, axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(s, w)
    return np.where(s > 1e-12, xyz / np.maximum(s, 1e-12) * angle, 2.0 * xyz)


def fit_from_rig(joint_names: list[str], parents: np.ndarray, rest: np.ndarray,
                 pose: np.ndarray | None) -> dict[str, np.ndarray] | None:
    """An SMPL-X fit file's arrays (the layout :func:`read_pose_file` reads as ``up == "Y"``) for an asset
    rig in SMPL-X's joints, or None for any other rig.

    ``rest`` (J, 4, 4) are the bones' rest matrices and ``pose`` (J, 4, 4) their local poses (the asset's
    ``Rig.rest`` and ``Rig.pose``). A rest other than SMPL-X's T (the A-pose's arms) is taken out bone by bone:
    ``R_j = B_parent^T B_j L_j``; the root's rotation is read in SMPL-X's canonical world, and ``transl`` is
    the pelvis's move from its rest, in that world."""
    if list(joint_names) != SMPLX_JOINT_NAMES or not np.array_equal(np.asarray(parents), SMPLX_PARENTS):
        return None
    b = np.asarray(rest, np.float64)[:, :3, :3]
    local = np.tile(np.eye(4), (55, 1, 1)) if pose is None else np.asarray(pose, np.float64)
    rot = np.empty((55, 3, 3))
    for j, p in enumerate(SMPLX_PARENTS):
        rot[j] = (CANONICAL.T @ b[j] @ local[j, :3, :3]) if p < 0 else (b[p].T @ b[j] @ local[j, :3, :3])
    aa = matrix_to_axis_angle(rot)
    out = {key: aa[start:start + count].reshape(1, -1).astype(np.float32) for key, start, count in FIT_KEYS}
    out["transl"] = (CANONICAL.T @ b[0] @ local[0, :3, 3]).reshape(1, 3).astype(np.float32)
    return out
