"""SMPL-X's skeleton in torch: forward kinematics with canonical rest frames, then linear blend skinning.

Shared by the SMPL-X rig on anny (:mod:`.anny_smplx`) and the user's SMPL-X model (:mod:`.smplx_model`):
both give a rest mesh and 55 joint heads in Strata's world; every rest frame is SMPL-X's canonical one
(:data:`~.smplx_skeleton.CANONICAL`), so a pose is SMPL-X's own axis-angles. No pose-corrective shapes: a
Blender armature deforms the asset exactly as this does.
"""

from __future__ import annotations

import numpy as np
import torch

from .base import BodyOutput
from .joint_map import JointMap
from .smplx_skeleton import CANONICAL, SMPLX_ARM_CHAINS, SMPLX_JOINT_MAP, SMPLX_PARENTS

#: Shortest bone drawn (m): leaves (finger tips, eyes, jaw) get half their parent's length, at least this.
MIN_BONE = 0.015


class SMPLXSkeletonMixin:
    """What every body on SMPL-X's skeleton answers the same way, from its dense (N, 55) skin weights
    ``_dense``: top-k influences, the arm chains for the pose presets, the joint map by role."""

    _dense: np.ndarray
    num_joints: int

    def skin_weights(self, k: int | None = 4) -> tuple[np.ndarray, np.ndarray]:
        k = self.num_joints if k is None else int(k)
        idx = np.argsort(-self._dense, axis=1, kind="stable")[:, :k]
        w = np.clip(np.take_along_axis(self._dense, idx, axis=1), 0.0, None)
        w /= np.maximum(w.sum(axis=1, keepdims=True), 1e-12)
        return idx.astype(np.int64), w.astype(np.float32)

    def arm_chain(self, side: str) -> tuple[str, str, str]:
        if side not in SMPLX_ARM_CHAINS:
            raise ValueError(f"side must be 'L' or 'R', got {side!r}")
        return SMPLX_ARM_CHAINS[side]

    @property
    def joint_map(self) -> JointMap:
        return SMPLX_JOINT_MAP


def batched(value: object, tail: tuple[int, ...], device: torch.device) -> torch.Tensor | None:
    """float32 tensor on ``device`` with a leading batch axis (added if missing); None stays None."""
    if value is None:
        return None
    t = torch.as_tensor(value, dtype=torch.float32, device=device)
    if t.dim() == len(tail):
        t = t[None]
    if tuple(t.shape[1:]) != tail:
        raise ValueError(f"expected shape (B, {', '.join(map(str, tail))}), got {tuple(t.shape)}")
    return t


def skinned_output(rest_vertices: torch.Tensor, heads: torch.Tensor, weights: torch.Tensor, order: list[int],
                   pose: torch.Tensor | None, translation: torch.Tensor | None) -> BodyOutput:
    """The body posed by SMPL-X's skeleton: ``rest_vertices`` (B, N, 3) and joint ``heads`` (B, 55, 3) in
    Strata's world, ``weights`` (N, 55), ``pose`` (B, 55, 3, 3) or None, ``translation`` (B, 3) or None."""
    b = heads.shape[0]
    rest = torch.zeros(b, heads.shape[1], 4, 4, dtype=heads.dtype, device=heads.device)
    rest[..., :3, :3] = torch.as_tensor(CANONICAL, dtype=heads.dtype, device=heads.device)
    rest[..., :3, 3] = heads
    rest[..., 3, 3] = 1.0
    world = forward_kinematics(rest, SMPLX_PARENTS, order, pose)
    if translation is not None:
        world = world.clone()
        world[..., :3, 3] = world[..., :3, 3] + translation[:, None]
    skinning = world @ torch.linalg.inv(rest)
    per_vertex = torch.einsum("nj,bjrc->bnrc", weights, skinning)
    vertices = torch.einsum("bnrc,bnc->bnr", per_vertex[..., :3, :3], rest_vertices) + per_vertex[..., :3, 3]
    batch = max(vertices.shape[0], rest.shape[0])
    return BodyOutput(
        vertices=vertices.expand(batch, -1, -1),
        joint_world=world.expand(batch, -1, -1, -1),
        rest_vertices=rest_vertices.expand(batch, -1, -1),
        rest_joint_world=rest.expand(batch, -1, -1, -1),
        bone_lengths=bone_lengths(heads, SMPLX_PARENTS).expand(batch, -1),
    )


def forward_kinematics(rest: torch.Tensor, parents: np.ndarray, order: list[int],
                        pose: torch.Tensor | None) -> torch.Tensor:
    """(B, J, 4, 4) world matrices: ``W_j = W_parent inv(R_parent) R_j P_j`` (root: ``R_j P_j``)."""
    if pose is None:
        return rest
    b = max(rest.shape[0], pose.shape[0])
    p4 = torch.zeros(pose.shape[0], pose.shape[1], 4, 4, dtype=rest.dtype, device=rest.device)
    p4[..., :3, :3] = pose
    p4[..., 3, 3] = 1.0
    local = rest @ p4
    inv_rest = torch.linalg.inv(rest)
    world: list[torch.Tensor | None] = [None] * rest.shape[1]
    for j in order:
        p = int(parents[j])
        w = local[:, j] if p < 0 else world[p] @ inv_rest[:, p] @ local[:, j]
        world[j] = w.expand(b, 4, 4)
    return torch.stack(world, dim=1)


def bone_lengths(heads: torch.Tensor, parents: np.ndarray) -> torch.Tensor:
    """(B, J) display lengths: the distance to the first child, leaves half their parent's."""
    lengths = torch.full(heads.shape[:2], MIN_BONE, device=heads.device)
    children: dict[int, int] = {}
    for j, p in enumerate(parents):
        if p >= 0 and int(p) not in children:
            children[int(p)] = j
    for j in range(heads.shape[1]):
        if j in children:
            lengths[:, j] = torch.linalg.vector_norm(heads[:, children[j]] - heads[:, j], dim=-1).clamp_min(MIN_BONE)
    for j in range(heads.shape[1]):
        if j not in children and parents[j] >= 0:
            lengths[:, j] = (0.5 * lengths[:, int(parents[j])]).clamp_min(MIN_BONE)
    return lengths


