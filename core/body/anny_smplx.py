"""The SMPL-X rig on the anny body: 55 SMPL-X joints, no SMPL-X file needed (:mod:`.smplx_skeleton`).

How it is built from anny's default rig, per shape:

1. the anny body in a T-pose (SMPL-X's rest): its mesh is the rest mesh;
2. each SMPL-X joint placed at the mean head of its anny joints in that pose (the jaw just ahead of and
   below the head joint, which anny's default rig lacks);
3. every rest frame SMPL-X's canonical frame (:data:`~.smplx_skeleton.CANONICAL`), so a pose is SMPL-X's
   own axis-angles;
4. skin weights: each anny bone's weight goes to the SMPL-X joint that owns it (its nearest ancestor
   that places a SMPL-X joint; toes to the foot; root and hips to the pelvis).

``forward`` is then linear blend skinning of that rest mesh by the SMPL-X skeleton, differentiable in
shape and pose, the same as what a Blender armature built from it does (:mod:`.smplx_rig`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .base import BodyModel, BodyOutput, topological_order
from .smplx_rig import SMPLXSkeletonMixin, batched, skinned_output
from .smplx_skeleton import (
    ANNY_OWNER_OVERRIDES,
    ANNY_SOURCES,
    JAW_OFFSET,
    SMPLX_JOINT_NAMES,
    SMPLX_PARENTS,
)


class AnnySMPLX(SMPLXSkeletonMixin, BodyModel):
    """anny's body and shape parameters with SMPL-X's skeleton (module docstring)."""

    name = "anny"
    rig = "smplx"
    height_parameter = "height"

    def __init__(self, anny: BodyModel) -> None:
        if anny.rig != "anny":
            raise ValueError(f"the SMPL-X rig is placed from anny's default rig, not {anny.kind}")
        self._anny = anny
        self.device = anny.device
        self.joint_names = list(SMPLX_JOINT_NAMES)
        self.parents = SMPLX_PARENTS.copy()
        for attr in ("faces", "uvs", "uv_faces", "num_vertices", "shape_names", "default_shape", "shape_bounds",
                     "shape_key_targets"):
            setattr(self, attr, getattr(anny, attr))
        # 1. Where each SMPL-X joint comes from: an averaging matrix over anny's joints.
        n_src = anny.num_joints
        self._place = torch.zeros(len(SMPLX_JOINT_NAMES), n_src, device=self.device)
        for j, name in enumerate(SMPLX_JOINT_NAMES):
            sources = ANNY_SOURCES[name]
            for s in sources:
                self._place[j, anny.joint_index(s)] = 1.0 / len(sources)
        self._jaw = SMPLX_JOINT_NAMES.index("jaw")
        # 2. Skin: anny joint -> owning SMPL-X joint, then the native weights gathered.
        owner = _owners(anny)
        idx, w = anny.skin_weights(None)
        dense = np.zeros((anny.num_vertices, len(SMPLX_JOINT_NAMES)))
        for k in range(idx.shape[1]):
            np.add.at(dense, (np.arange(len(idx)), owner[idx[:, k]]), w[:, k])
        self._dense = dense / np.maximum(dense.sum(axis=1, keepdims=True), 1e-12)
        self._weights = torch.as_tensor(self._dense, dtype=torch.float32, device=self.device)
        self._order = topological_order(self.parents)
        self._t_poses: dict[bytes, torch.Tensor] = {}

    # --- BodyModel -----------------------------------------------------------------------------------

    def forward(self, shape: Any = None, pose: Any = None, translation: Any = None) -> BodyOutput:
        # 1. The anny body in its T-pose (SMPL-X's rest), standing on the ground.
        shape_t = batched(shape, (self.num_shape,), self.device)
        if shape_t is None:
            shape_t = torch.as_tensor(self.default_shape, device=self.device)[None]
        t_pose = self._t_pose(shape_t)
        anny_out = self._anny.forward(shape_t, t_pose)
        rest_v = anny_out.vertices
        lift = -rest_v[..., 2].amin(dim=1)
        rest_v = rest_v + _up(lift)[:, None]
        # 2. The SMPL-X joints there, then the skeleton's pose and skinning.
        heads = torch.einsum("jk,bkd->bjd", self._place, anny_out.joint_world[..., :3, 3]) + _up(lift)[:, None]
        jaw = torch.as_tensor(JAW_OFFSET, dtype=heads.dtype, device=self.device)
        heads = torch.cat([heads[:, :self._jaw], heads[:, self._jaw:self._jaw + 1] + jaw, heads[:, self._jaw + 1:]], 1)
        return skinned_output(rest_v, heads, self._weights, self._order,
                              batched(pose, (self.num_joints, 3, 3), self.device),
                              batched(translation, (3,), self.device))

    def face_parts(self) -> Any:
        return self._anny.face_parts()

    def skin_texture(self, *args: Any, **kwargs: Any) -> np.ndarray:
        return self._anny.skin_texture(*args, **kwargs)

    # --- internals -----------------------------------------------------------------------------------

    def _t_pose(self, shape: torch.Tensor) -> torch.Tensor:
        """anny's T-pose for the first shape of the batch (arm directions barely depend on the shape), kept
        for the last few shapes: solving it costs an anny forward pass, and a job calls ``forward`` on one
        shape many times (rest, A preset, rig transfer)."""
        key = shape[0].detach().cpu().numpy().astype(np.float32).tobytes()
        if key not in self._t_poses:
            if len(self._t_poses) >= 8:
                self._t_poses.pop(next(iter(self._t_poses)))
            preset = self._anny.pose_preset("T", np.frombuffer(key, np.float32).copy())
            self._t_poses[key] = torch.as_tensor(preset, device=self.device)
        return self._t_poses[key]


def _owners(anny: BodyModel) -> np.ndarray:
    """(J_anny,) the SMPL-X joint each anny joint's skin goes to: an override, else the SMPL-X joint placed
    at its nearest ancestor (itself included) that places one alone."""
    placed = {sources[0]: name for name, sources in ANNY_SOURCES.items() if len(sources) == 1 and name != "jaw"}
    out = np.zeros(anny.num_joints, np.int64)
    for j, name in enumerate(anny.joint_names):
        owner, k = ANNY_OWNER_OVERRIDES.get(name), j
        while owner is None and k >= 0:
            owner, k = placed.get(anny.joint_names[k]), int(anny.parents[k])
        out[j] = SMPLX_JOINT_NAMES.index(owner or "pelvis")
    return out


def _up(lift: torch.Tensor) -> torch.Tensor:
    return torch.stack([torch.zeros_like(lift), torch.zeros_like(lift), lift], dim=-1)
