"""Carry the fitted pose over to another of anny's skeletons (game_engine, mixamo, cmu_mb, makehuman).

The fit runs on anny's default rig, whose joints the landmark tables name. A user may ask for another
skeleton; all of anny's rigs share one mesh (same vertices, same topology) but differ in bones and skin
weights. So the fitted, posed mesh is the ground truth, and each target bone's world rotation is the
rigid rotation that best maps its skinned rest vertices onto the posed ones (weighted Procrustes / Kabsch
with the bone's own skin weights). Local rotations follow parents-first, and one forward pass of the
target rig gives a consistent skeleton (bone heads where its parents put them), shifted by the mean
residual (the rigs' roots are different pivots). Bones that move no vertex (roots, helpers) inherit their
parent's rotation. On a random synthetic pose the game_engine rig reproduces the anny-rig body to ~2 mm.
"""

from __future__ import annotations

import numpy as np

from strata.exchange.asset.schema import Rig, Skin

from ..body.base import BodyModel, topological_order
from .fit import BodyFit


def _kabsch(src: np.ndarray, dst: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Rotation R minimising sum w |R (src - mean) - (dst - mean)|^2 (weighted, no reflection)."""
    ws = w / w.sum()
    a = src - ws @ src
    b = dst - ws @ dst
    h = (a * ws[:, None]).T @ b
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(vt.T @ u.T))
    return vt.T @ np.diag([1.0, 1.0, d]) @ u.T


def transfer_pose(target: BodyModel, shape: np.ndarray, posed_vertices: np.ndarray,
                  translation: np.ndarray) -> np.ndarray:
    """(J, 3, 3) local rotations of ``target``'s rig reproducing ``posed_vertices`` (same mesh topology)."""
    import torch

    with torch.no_grad():
        out = target.forward(torch.as_tensor(shape)[None])
    rest_v = out.rest_vertices[0].numpy().astype(np.float64) + np.asarray(translation, np.float64)
    rest_j = out.rest_joint_world[0].numpy().astype(np.float64)
    posed = np.asarray(posed_vertices, np.float64)
    idx, wts = target.skin_weights(None)
    n_j = target.num_joints
    world_rot: list[np.ndarray | None] = [None] * n_j
    for j in range(n_j):
        sel = (idx == j) & (wts > 0.05)
        rows = np.nonzero(sel.any(axis=1))[0]
        if len(rows) >= 4:
            w = (wts * sel).sum(axis=1)[rows]
            world_rot[j] = _kabsch(rest_v[rows], posed[rows], w)
    pose = np.tile(np.eye(3), (n_j, 1, 1))
    world = np.zeros((n_j, 3, 3))  # posed world orientation of each joint frame
    parents = target.parents
    for j in topological_order(parents):
        p = int(parents[j])
        g = world_rot[j]
        if g is None:  # no vertices of its own: move rigidly with the parent
            g = world[p] @ rest_j[p, :3, :3].T if p >= 0 else np.eye(3)
        world[j] = g @ rest_j[j, :3, :3]
        # W_j = W_p inv(R_p) R_j pose_j  ->  pose_j = inv(R_j) R_p inv(W_p) W_j (rotation parts).
        base = rest_j[j, :3, :3] if p < 0 else world[p] @ rest_j[p, :3, :3].T @ rest_j[j, :3, :3]
        pose[j] = base.T @ world[j]
        if p >= 0:  # keep the FK-consistent orientation for the children
            world[j] = base @ pose[j]
    return pose.astype(np.float32)


def transfer_rig(target: BodyModel, fit: BodyFit) -> tuple[Rig, Skin, np.ndarray, np.ndarray]:
    """The fitted pose on ``target``'s skeleton: (rig with that bind pose, top-4 skin, pose, translation)."""
    import torch

    from ..body.skinning import rig_from, skin_from

    pose = transfer_pose(target, fit.shape, fit.vertices, fit.translation)
    translation = np.asarray(fit.translation, np.float32)
    shape = torch.as_tensor(fit.shape)[None]
    with torch.no_grad():
        # The rigs' roots sit at different points, so the same body rotation about them differs by a shift.
        first = target.forward(shape, torch.as_tensor(pose)[None], torch.as_tensor(translation)[None])
        translation = translation + (fit.vertices - first.vertices[0].numpy()).mean(0).astype(np.float32)
        out = target.forward(shape, torch.as_tensor(pose)[None], torch.as_tensor(translation)[None])
    joints = out.joint_world[0].numpy().astype(np.float32)
    lengths = out.bone_lengths[0].numpy().astype(np.float32)
    return rig_from(target, joints, lengths), skin_from(target), pose, translation
