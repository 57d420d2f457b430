"""A synthetic SMPL-X model file with the real array names and shapes and random content, written by the
tests (SMPL-X's own files are licensed: never committed, never downloaded).

Shapes as in SMPLX_NEUTRAL.npz v1.1: 10,475 vertices, 20,908 faces, 55 joints in SMPL-X's hierarchy, 20
shape directions here (10 betas + 10 expressions; the real file has 400), posedirs for 54 joints, the hand
PCA and face landmark arrays. The content is a rough person so the body is body-sized: vertices scattered
around the joints of a T-posed skeleton, each joint regressed from its own vertices, each vertex skinned to
its joint (and a little to the parent).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

N_VERTS, N_FACES, N_JOINTS = 10475, 20908, 55
PARENTS = [-1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 15, 15, 15,
           20, 25, 26, 20, 28, 29, 20, 31, 32, 20, 34, 35, 20, 37, 38, 21, 40, 41, 21, 43, 44, 21, 46, 47, 21, 49, 50,
           21, 52, 53]


def skeleton() -> np.ndarray:
    """(55, 3) a T-posed SMPL-X skeleton in the canonical frame (Y up, the subject's left at +X), pelvis at
    the origin as in SMPL-X's template."""
    j = np.zeros((N_JOINTS, 3))
    offsets = {1: (0.06, -0.09, 0), 2: (-0.06, -0.09, 0), 3: (0, 0.11, 0), 4: (0.0, -0.38, 0), 5: (0.0, -0.38, 0),
               6: (0, 0.13, 0), 7: (0, -0.40, 0), 8: (0, -0.40, 0), 9: (0, 0.06, 0), 10: (0, -0.06, 0.12),
               11: (0, -0.06, 0.12), 12: (0, 0.21, 0), 13: (0.07, 0.11, 0), 14: (-0.07, 0.11, 0), 15: (0, 0.09, 0.02),
               16: (0.10, 0.03, 0), 17: (-0.10, 0.03, 0), 18: (0.26, 0, 0), 19: (-0.26, 0, 0), 20: (0.25, 0, 0),
               21: (-0.25, 0, 0), 22: (0, -0.02, 0.03), 23: (0.03, 0.04, 0.08), 24: (-0.03, 0.04, 0.08)}
    for k, o in offsets.items():
        j[k] = j[PARENTS[k]] + o
    for side, wrist, first in ((1, 20, 25), (-1, 21, 40)):
        for finger in range(5):
            base = first + 3 * finger
            j[base] = j[wrist] + (side * 0.09, 0, 0.03 * (finger - 2))
            j[base + 1] = j[base] + (side * 0.035, 0, 0)
            j[base + 2] = j[base + 1] + (side * 0.025, 0, 0)
    return j


def write_smplx_npz(path: Path, *, seed: int = 0, uvs: bool = True, joints: int = N_JOINTS) -> Path:
    """Write the synthetic model to ``path`` (``SMPLX_NEUTRAL.npz``); ``joints`` other than 55 makes a file
    of the wrong kind, ``uvs`` False leaves out ``vt``/``ft``."""
    rng = np.random.default_rng(seed)
    j = skeleton()
    owner = rng.integers(0, N_JOINTS, N_VERTS)
    owner[: N_JOINTS] = np.arange(N_JOINTS)  # every joint owns some vertices
    v = j[owner] + rng.normal(0.0, 0.025, (N_VERTS, 3))
    weights = np.zeros((N_VERTS, N_JOINTS))
    weights[np.arange(N_VERTS), owner] = 0.8
    parent = np.array(PARENTS)[owner]
    weights[np.arange(N_VERTS), np.where(parent < 0, owner, parent)] += 0.2
    regressor = np.zeros((N_JOINTS, N_VERTS))
    regressor[owner, np.arange(N_VERTS)] = 1.0
    regressor /= regressor.sum(axis=1, keepdims=True)
    kintree = np.stack([np.array(PARENTS, np.int64) % (2**32), np.arange(N_JOINTS)])[:, :joints]
    faces = np.stack([np.arange(N_FACES) % N_VERTS, (np.arange(N_FACES) + 1) % N_VERTS,
                      (np.arange(N_FACES) + 2) % N_VERTS], axis=1).astype(np.int64)
    arrays = {
        "v_template": v.astype(np.float64), "f": faces, "J_regressor": regressor[:joints],
        "kintree_table": kintree, "weights": weights[:, :joints],
        "shapedirs": rng.normal(0.0, 0.004, (N_VERTS, 3, 20)), "posedirs": np.zeros((N_VERTS, 3, 486), np.float32),
        "hands_componentsl": rng.normal(size=(45, 45)), "hands_componentsr": rng.normal(size=(45, 45)),
        "hands_meanl": np.zeros(45), "hands_meanr": np.zeros(45),
        "lmk_faces_idx": rng.integers(0, N_FACES, 51), "lmk_bary_coords": np.full((51, 3), 1 / 3),
        "dynamic_lmk_faces_idx": rng.integers(0, N_FACES, (79, 17)),
        "dynamic_lmk_bary_coords": np.full((79, 17, 3), 1 / 3),
    }
    if uvs:  # a grid in index order: the faces (consecutive indices) are small in UV space, as real ones are
        i = np.arange(11313)
        arrays["vt"] = np.stack([(i % 107) / 107, (i // 107) / 107], axis=1) + rng.uniform(0, 1e-3, (11313, 2))
        arrays["ft"] = faces.copy()
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return path


def write_body_smplx_npz(path: Path, *, seed: int = 0) -> Path:
    """Write an SMPL-X model file whose content is a real body: anny's mesh on its SMPL-X rig
    (:class:`~strata.core.body.anny_smplx.AnnySMPLX`), for the paths that need a body's geometry (the photo
    fit, garments, the photo's texture). The array names and layouts are the real file's; the counts are
    anny's (13,718 vertices), which is also how the real topology's landmark vertices are told apart.

    1. The rest mesh and joints: the rig's T-pose, pelvis at the origin, in SMPL-X's canonical frame.
    2. Weights: the rig's own; the joint regressor reproduces each joint exactly from its nearest vertices.
    3. Shape directions: anny's height first (what ``solve_height`` turns), then its other phenotypes, then
       small smooth bumps; expressions move the face a little."""
    import torch

    from strata.core.body import get_body_model
    from strata.core.body.anny_smplx import AnnySMPLX
    from strata.core.body.smplx_skeleton import CANONICAL

    rng = np.random.default_rng(seed)
    rig = AnnySMPLX(get_body_model("anny", "anny"))
    names = ["height"] + [n for n in rig.shape_names if n != "height"]
    base = np.asarray(rig.default_shape, np.float32)

    def rest(shape: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            out = rig.forward(shape[None])
        v, j = out.vertices[0].numpy().astype(np.float64), out.joint_world[0, :, :3, 3].numpy().astype(np.float64)
        return (v - j[0]) @ CANONICAL, (j - j[0]) @ CANONICAL  # row vectors: Strata -> canonical

    # 1-2. Rest mesh, joints, weights and an exact regressor.
    v, j = rest(base)
    n = len(v)
    regressor = np.zeros((N_JOINTS, n))
    for k in range(N_JOINTS):
        near = np.argsort(np.linalg.norm(v - j[k], axis=1))[:6]
        system = np.vstack([v[near].T, np.ones((1, 6))])  # affine weights: sum 1, reproduce the joint
        regressor[k, near] = np.linalg.lstsq(system, np.append(j[k], 1.0), rcond=None)[0]
    # 3. Shape and expression directions.
    dirs = []
    for name in names:
        step = base.copy()
        step[rig.shape_names.index(name)] += 0.15
        dirs.append(rest(step)[0] - v)
    head = rig._dense[:, SMPLX_HEAD] > 0.5
    for _ in range(10 - len(names)):
        centre = v[rng.integers(0, n)]
        dirs.append(0.004 * np.exp(-np.sum((v - centre) ** 2, 1) / 0.01)[:, None] * rng.normal(size=3))
    for _ in range(10):
        dirs.append(np.where(head[:, None], rng.normal(0.0, 0.001, (n, 3)), 0.0))
    faces = np.asarray(rig.faces, np.int64)
    arrays = {
        "v_template": v, "f": faces, "J_regressor": regressor,
        "kintree_table": np.stack([np.array(PARENTS, np.int64) % (2**32), np.arange(N_JOINTS)]),
        "weights": rig._dense, "shapedirs": np.stack(dirs, axis=-1),
        "posedirs": np.zeros((n, 3, 486), np.float32),
        "hands_componentsl": rng.normal(size=(45, 45)), "hands_componentsr": rng.normal(size=(45, 45)),
        "hands_meanl": np.zeros(45), "hands_meanr": np.zeros(45),
        "lmk_faces_idx": rng.integers(0, len(faces), 51), "lmk_bary_coords": np.full((51, 3), 1 / 3),
        "dynamic_lmk_faces_idx": rng.integers(0, len(faces), (79, 17)),
        "dynamic_lmk_bary_coords": np.full((79, 17, 3), 1 / 3),
        "vt": np.asarray(rig.uvs, np.float64), "ft": np.asarray(rig.uv_faces, np.int64),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **arrays)
    return path


SMPLX_HEAD = 15
