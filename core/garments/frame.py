"""The body as garments see it: its skin surface in the bind pose, with body parts and coordinates along them.

Why one object: every garment style asks the same questions of the body ("which vertices are the thighs",
"how far down the leg is this vertex", "where is the waist", "which way is out here"), and answers must not
depend on the body model. Everything here is derived from a :class:`~strata.core.body.base.BodyModel`'s
skin weights and its joint map (roles, not joint names), so the garment library works on any model behind
that interface (anny now, SMPL-X next).

World: metres, Z up, the body faces -Y, soles at z = 0 (the body job's frame).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..body.base import BodyModel
from ..body.joint_map import SIDES

#: Body parts, each the set of joints between a role and the next role down the chain.
PARTS: tuple[str, ...] = ("head", "neck", "torso", "pelvis", "upper_arm", "forearm", "hand", "thigh", "shin", "foot")


@dataclass
class BodyFrame:
    """One body in its bind pose, read for dressing (see the module docstring)."""

    vertices: np.ndarray
    """(N, 3) float64, the model's full vertex array (garments index into it)."""
    faces: np.ndarray
    """(F, 3) int64: the skin only (the largest closed piece: no eyeballs, tongue or mouth cavity)."""
    normals: np.ndarray
    """(N, 3) unit vertex normals (area-weighted), smoothed a little so offsets do not crease."""
    joints: np.ndarray
    """(N, K) int64 skin influences (the model's top-4)."""
    weights: np.ndarray
    """(N, K) float32, rows sum to 1."""
    joint_world: np.ndarray
    """(J, 4, 4) bind-pose joint frames (the heads at ``[:, :3, 3]``)."""
    bone_lengths: np.ndarray
    """(J,) float32, the rig's bone lengths for this shape."""
    part: np.ndarray
    """(N,) int: index into :data:`PARTS` of the part that owns the vertex most."""
    side: np.ndarray
    """(N,) int8: +1 the subject's left (+X), -1 the right, 0 the midline parts."""
    arm_t: np.ndarray
    """(N,) float: 0 at the shoulder, 1 at the wrist (projection on that segment), NaN off the arms."""
    leg_t: np.ndarray
    """(N,) float: 0 at the hip joint, 1 at the ankle, NaN off the legs."""
    skin: np.ndarray
    """(N,) bool: the vertex is on the skin surface (used by :attr:`faces`)."""
    uv: np.ndarray
    """(N, 2) float32: the body's texture coordinate at one corner of each vertex (seams pick one side)."""
    landmarks: dict[str, np.ndarray] = field(default_factory=dict)
    """Named points: ``crotch``, ``waist``, ``chest``, ``neck``, ``head`` (centre), ``crown``, per side
    ``shoulder``, ``elbow``, ``wrist``, ``hip``, ``knee``, ``ankle`` (suffix ``.L`` / ``.R``)."""

    @property
    def height(self) -> float:
        return float(self.vertices[self.skin, 2].max() - self.vertices[self.skin, 2].min())

    def moved(self, offset: np.ndarray) -> BodyFrame:
        """The same frame translated by ``offset`` (3,) metres (a rest pose lifted onto the ground)."""
        from dataclasses import replace

        off = np.asarray(offset, np.float64)
        joint_world = self.joint_world.copy()
        joint_world[:, :3, 3] += off
        return replace(self, vertices=self.vertices + off, joint_world=joint_world,
                       landmarks={k: v + off for k, v in self.landmarks.items()})

    def part_mask(self, *names: str) -> np.ndarray:
        """(N,) bool: skin vertices owned by any of the named parts."""
        ids = [PARTS.index(n) for n in names]
        return np.isin(self.part, ids) & self.skin


def body_frame(model: BodyModel, shape: np.ndarray, pose: np.ndarray) -> BodyFrame:
    """The frame of ``model`` with ``shape`` in the bind pose ``pose`` ((J, 3, 3) local rotations)."""
    import torch

    # 1. The posed body and its skin surface.
    with torch.no_grad():
        out = model.forward(shape=np.asarray(shape, np.float32)[None], pose=np.asarray(pose, np.float32)[None])
    vertices = out.vertices[0].cpu().numpy().astype(np.float64)
    joint_world = out.joint_world[0].cpu().numpy().astype(np.float64)
    bone_lengths = out.bone_lengths[0].cpu().numpy().astype(np.float32)
    faces, skin = skin_surface(np.asarray(model.faces, np.int64), len(vertices))
    normals = vertex_normals(vertices, faces, smooth=2)
    joints, weights = model.skin_weights(4)
    # 2. Parts from the skin weights, by role.
    owner = part_of_joint(model)
    part_weight = np.zeros((len(vertices), len(PARTS)))
    for k in range(joints.shape[1]):
        np.add.at(part_weight, (np.arange(len(vertices)), owner[joints[:, k], 0]), weights[:, k])
    part = part_weight.argmax(axis=1)
    side_weight = np.zeros(len(vertices))
    for k in range(joints.shape[1]):
        side_weight += weights[:, k] * owner[joints[:, k], 1]
    side = np.sign(np.round(side_weight)).astype(np.int8)
    # 3. Landmarks and coordinates along the limbs.
    marks = _landmarks(model, joint_world, vertices[skin])
    arm_t = np.full(len(vertices), np.nan)
    leg_t = np.full(len(vertices), np.nan)
    for s, sign in zip(SIDES, (1, -1), strict=True):
        on = side == sign
        arm = on & np.isin(part, [PARTS.index(p) for p in ("upper_arm", "forearm", "hand")])
        leg = on & np.isin(part, [PARTS.index(p) for p in ("thigh", "shin", "foot")])
        arm_t[arm] = _along(vertices[arm], marks[f"shoulder.{s}"], marks[f"wrist.{s}"])
        leg_t[leg] = _along(vertices[leg], marks[f"hip.{s}"], marks[f"ankle.{s}"])
    uv = np.zeros((len(vertices), 2), np.float32)
    for c in range(3):
        uv[np.asarray(model.faces)[:, c]] = np.asarray(model.uvs)[np.asarray(model.uv_faces)[:, c]]
    return BodyFrame(vertices=vertices, faces=faces, normals=normals, joints=np.asarray(joints, np.int64),
                     weights=np.asarray(weights, np.float32), joint_world=joint_world, bone_lengths=bone_lengths,
                     part=part, side=side,
                     arm_t=arm_t, leg_t=leg_t, skin=skin, uv=uv, landmarks=marks)


def part_of_joint(model: BodyModel) -> np.ndarray:
    """(J, 2) int: for each joint, its part (index into :data:`PARTS`) and side (+1 left, -1 right, 0)."""
    jm = model.joint_map
    parents = np.asarray(model.parents)
    out = np.zeros((model.num_joints, 2), np.int64)
    out[:, 0] = PARTS.index("torso")
    # Walk from the root: a joint inherits its parent's part unless it starts a new one.
    starts = {model.joint_index(jm.root): ("pelvis", 0), model.joint_index(jm.spine_lower): ("torso", 0),
              model.joint_index(jm.neck): ("neck", 0), model.joint_index(jm.head): ("head", 0)}
    for s, sign in zip(SIDES, (1, -1), strict=True):
        j = jm.left if s == "L" else jm.right
        starts.update({model.joint_index(j.clavicle): ("torso", sign),
                       model.joint_index(j.upper_arm): ("upper_arm", sign),
                       model.joint_index(j.forearm): ("forearm", sign), model.joint_index(j.wrist): ("hand", sign),
                       model.joint_index(j.thigh): ("thigh", sign), model.joint_index(j.shin): ("shin", sign),
                       model.joint_index(j.foot): ("foot", sign)})
    from ..body.base import topological_order

    for joint in topological_order(parents):
        if joint in starts:
            name, sign = starts[joint]
            out[joint] = (PARTS.index(name), sign)
        elif parents[joint] >= 0:
            out[joint] = out[parents[joint]]
    return out


def skin_surface(faces: np.ndarray, n_vertices: int) -> tuple[np.ndarray, np.ndarray]:
    """The faces of the largest connected piece (by face count) and the mask of the vertices it uses."""
    face_label = face_components(faces, n_vertices)
    keep = face_label == np.bincount(face_label).argmax()
    skin = np.zeros(n_vertices, bool)
    skin[faces[keep].reshape(-1)] = True
    return faces[keep], skin


def face_components(faces: np.ndarray, n_vertices: int) -> np.ndarray:
    """(F,) label of the vertex-connected piece each face belongs to."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    rows = np.concatenate([faces[:, 0], faces[:, 1], faces[:, 2]])
    cols = np.concatenate([faces[:, 1], faces[:, 2], faces[:, 0]])
    graph = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_vertices, n_vertices))
    _, label = connected_components(graph, directed=False)
    return label[faces[:, 0]]


def vertex_normals(vertices: np.ndarray, faces: np.ndarray, smooth: int = 0) -> np.ndarray:
    """(N, 3) area-weighted unit normals; ``smooth`` rounds of averaging over the one-ring (unused: +Z)."""
    n = np.zeros_like(vertices)
    face_n = np.cross(vertices[faces[:, 1]] - vertices[faces[:, 0]], vertices[faces[:, 2]] - vertices[faces[:, 0]])
    for c in range(3):
        np.add.at(n, faces[:, c], face_n)
    for _ in range(smooth):
        n = _unit(n)
        acc = n.copy()
        for a, b in ((0, 1), (1, 2), (2, 0)):
            np.add.at(acc, faces[:, a], n[faces[:, b]])
            np.add.at(acc, faces[:, b], n[faces[:, a]])
        n = acc
    n = _unit(n)
    n[np.linalg.norm(n, axis=1) < 0.5] = (0.0, 0.0, 1.0)
    return n


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def _along(points: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    d = end - start
    return (points - start) @ d / float(d @ d)


def _landmarks(model: BodyModel, joint_world: np.ndarray, skin_vertices: np.ndarray) -> dict[str, np.ndarray]:
    jm = model.joint_map
    head = joint_world[:, :3, 3]

    def at(name: str) -> np.ndarray:
        return head[model.joint_index(name)].copy()

    marks = {"neck": at(jm.neck), "chest": at(jm.spine_upper), "waist": at(jm.spine_lower)}
    for s in SIDES:
        j = jm.left if s == "L" else jm.right
        marks |= {f"shoulder.{s}": at(j.upper_arm), f"elbow.{s}": at(j.forearm), f"wrist.{s}": at(j.wrist),
                  f"hip.{s}": at(j.thigh), f"knee.{s}": at(j.shin), f"ankle.{s}": at(j.foot)}
    marks["crotch"] = 0.5 * (marks["hip.L"] + marks["hip.R"]) - np.array([0.0, 0.0, 0.08])
    top = skin_vertices[:, 2].max()
    # The head's centre: the middle of the head's vertices above the neck joint, at ear height.
    above = skin_vertices[skin_vertices[:, 2] > marks["neck"][2] + 0.05]
    centre = 0.5 * (above.min(axis=0) + above.max(axis=0)) if len(above) else at(jm.head)
    marks["head"] = np.array([centre[0], centre[1], 0.5 * (top + at(jm.head)[2])])
    marks["crown"] = np.array([centre[0], centre[1], top])
    return marks
