"""The user's SMPL-X model (``SMPLX_{NEUTRAL,FEMALE,MALE}.npz``) behind :class:`BodyModel`.

Strata never ships or downloads SMPL-X: the files come from the user (``--smplx-dir DIR`` with them at
``DIR/smplx/``, or ``STRATA_SMPLX_DIR``, or the add-on's preference). They are read by the ``smplx``
package (its own loader checks the layout); the body is then posed here, the same way as the SMPL-X rig on
anny (:mod:`.smplx_rig`): SMPL-X's joints, names and canonical rest frames, linear blend skinning with
the model's weights. Pose-corrective shapes are left out, so a Blender armature deforms the asset exactly
as ``forward`` does.

Shape: the first ``betas`` shape coefficients (``Shape000``...) then ``expressions`` expression
coefficients (``Exp000``...), SMPL-X's own units (about -3 .. 3 standard deviations). The model's canonical
frame (Y up, facing +Z) is turned into Strata's (Z up, facing -Y) once, and the rest mesh stands on z = 0.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .base import BodyModel, BodyModelError, BodyOutput, topological_order
from .smplx_files import expected_layout, model_file
from .smplx_rig import SMPLXSkeletonMixin, batched, skinned_output
from .smplx_skeleton import CANONICAL, SMPLX_JOINT_NAMES, SMPLX_PARENTS


class SMPLXBody(SMPLXSkeletonMixin, BodyModel):
    """SMPL-X from the user's files (module docstring)."""

    name = "smplx"
    rig = "smplx"
    height_parameter = "Shape000"

    def __init__(self, folder: Path | str | None, gender: str = "neutral", *, betas: int = 10,
                 expressions: int = 10, device: str | torch.device = "cpu") -> None:
        path = model_file(folder, gender)
        self.gender, self.path, self.device = gender, path, torch.device(device)
        data = self._load(path, betas, expressions)
        # 1. The model's arrays, in Strata's world (Z up, facing -Y).
        c = torch.as_tensor(CANONICAL, dtype=torch.float32)
        self._template = data["v_template"] @ c.T
        self._shapedirs = torch.einsum("nds,ed->nes", data["shapedirs"], c)
        self._regressor = data["J_regressor"]
        self._weights = data["weights"]
        self._dense = self._weights.numpy().astype(np.float64)
        for name in ("_template", "_shapedirs", "_regressor", "_weights"):
            setattr(self, name, getattr(self, name).to(self.device))
        # 2. The static attributes every body model has.
        self.joint_names = list(SMPLX_JOINT_NAMES)
        self.parents = SMPLX_PARENTS.copy()
        self.faces = data["faces"]
        self.uvs, self.uv_faces = data["uvs"], data["uv_faces"]
        self.num_vertices = int(self._template.shape[0])
        n_betas, n_expr = data["n_betas"], data["n_expr"]
        self.shape_names = [f"Shape{i:03d}" for i in range(n_betas)] + [f"Exp{i:03d}" for i in range(n_expr)]
        self.default_shape = np.zeros(len(self.shape_names), np.float32)
        self.shape_bounds = np.tile(np.array([-5.0, 5.0], np.float32), (len(self.shape_names), 1))
        self._order = topological_order(self.parents)

    # --- BodyModel -----------------------------------------------------------------------------------

    def forward(self, shape: Any = None, pose: Any = None, translation: Any = None) -> BodyOutput:
        # 1. The shaped rest mesh (SMPL-X's T-pose) and its joints, standing on the ground.
        rest_v = self._shaped_rest(shape)
        lift = -rest_v[..., 2].amin(dim=1)
        up = torch.stack([torch.zeros_like(lift), torch.zeros_like(lift), lift], dim=-1)
        rest_v = rest_v + up[:, None]
        heads = torch.einsum("jn,bnd->bjd", self._regressor, rest_v)
        # 2. The skeleton's pose and the skinning.
        return skinned_output(rest_v, heads, self._weights, self._order,
                              batched(pose, (self.num_joints, 3, 3), self.device),
                              batched(translation, (3,), self.device))

    def canonical_pelvis(self, shape: Any) -> np.ndarray:
        """(3,) the pelvis joint of ``shape``'s body in SMPL-X's own frame (Y up, before Strata stands the mesh on
        the ground): where SMPL-X tools place it, so a fit written for them can say where the asset is."""
        with torch.no_grad():
            pelvis = (self._regressor[0] @ self._shaped_rest(shape)[0]).cpu().numpy().astype(np.float64)
        return np.asarray(CANONICAL, np.float64).T @ pelvis

    def _shaped_rest(self, shape: Any) -> torch.Tensor:
        """(B, N, 3) the rest mesh of ``shape`` (None: the mean) in SMPL-X's own frame, before grounding."""
        shape_t = batched(shape, (self.num_shape,), self.device)
        if shape_t is None:
            shape_t = torch.zeros(1, self.num_shape, device=self.device)
        return self._template[None] + torch.einsum("nds,bs->bnd", self._shapedirs, shape_t)

    def shape_directions(self) -> np.ndarray:
        """(S, N, 3) how each shape coefficient moves the rest mesh, per unit (the shape keys)."""
        return self._shapedirs.permute(2, 0, 1).cpu().numpy().astype(np.float32)

    # --- internals -----------------------------------------------------------------------------------

    @staticmethod
    def _load(path: Path, betas: int, expressions: int) -> dict[str, Any]:
        """The arrays this backend uses, read by the ``smplx`` package (its loader is the reference for the
        file's layout), with UVs from the file's ``vt``/``ft`` when it has them."""
        try:
            import smplx
        except ImportError as exc:
            raise BodyModelError(f"SMPL-X bodies need the 'smplx' package (pip install 'smplx==0.1.28'): "
                                 f"{exc}") from None
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # the package prints its warnings
                model = smplx.SMPLX(str(path), num_betas=betas, num_expression_coeffs=expressions, use_pca=False,
                                    flat_hand_mean=True, ext="npz")
        except Exception as exc:  # the package asserts and raises KeyError/ValueError on bad files
            raise BodyModelError(f"{path} is not a usable SMPL-X model file ({type(exc).__name__}: {exc}). "
                                 + expected_layout(path.parent.parent)) from None
        parents = model.parents.cpu().numpy().astype(np.int64)
        parents[0] = -1
        if len(parents) != 55 or not np.array_equal(parents, SMPLX_PARENTS):
            raise BodyModelError(f"{path} has {len(parents)} joints with another hierarchy than SMPL-X's 55: "
                                 "is it an SMPL or SMPL+H file? " + expected_layout(path.parent.parent))
        raw = np.load(path, allow_pickle=False)
        faces = np.asarray(model.faces, np.int64)
        if "vt" in raw.files and "ft" in raw.files:
            uvs, uv_faces = np.asarray(raw["vt"], np.float32), np.asarray(raw["ft"], np.int64)
        else:  # a cylinder around the body, so a texture can be painted; real files carry their own UVs
            v = np.asarray(model.v_template.cpu().numpy(), np.float64)
            angle = np.arctan2(v[:, 0], v[:, 2]) / (2 * np.pi) + 0.5
            height = (v[:, 1] - v[:, 1].min()) / max(float(np.ptp(v[:, 1])), 1e-9)
            uvs, uv_faces = np.stack([angle, height], 1).astype(np.float32), faces
        shapedirs = torch.cat([model.shapedirs, model.expr_dirs], dim=-1).float()
        return {"v_template": model.v_template.float(), "shapedirs": shapedirs,
                "J_regressor": model.J_regressor.float(), "weights": model.lbs_weights.float(), "faces": faces,
                "uvs": uvs, "uv_faces": uv_faces, "n_betas": int(model.shapedirs.shape[-1]),
                "n_expr": int(model.expr_dirs.shape[-1])}
