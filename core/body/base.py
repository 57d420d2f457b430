"""The body-model interface every backend (anny now, SMPL-X later) implements.

Why one interface: the fitting code, the server and the Blender add-on must not care which parametric
model made the body. They need the same few things from any of them: a triangle mesh with per-corner
UVs, a skeleton that Blender can rebuild exactly, skin weights, a differentiable ``forward`` and a few
helpers (pose presets, "make this person 1.80 m tall", a skin texture).

Frame conventions (the same as ``docs/asset-format.md``, i.e. Blender's):

* **Units**: metres.
* **Axes**: right-handed, **Z up**. At rest the body stands on the ground plane: the lowest rest
  vertex is at ``z = 0`` (the ``translation`` passed to ``forward`` is added on top of that).
* **Facing**: the subject faces **-Y**, so Blender's front view (camera looking along +Y) sees the
  face, and the subject's **left** side is at **+X** (``.L`` / ``_l`` / ``Left`` joints have x > 0).
* **Joint frames**: ``joint_world[j]`` is a 4x4 world matrix (column-vector convention,
  ``p_world = M @ [x, y, z, 1]``). Its translation is the joint (bone head); its local **+Y axis points
  from the head to the bone's tail**, ``tail = head + length * M[:3, 1]``; local X/Z carry the roll.
  This is exactly Blender's ``EditBone.matrix`` / ``PoseBone.matrix`` (armature space), so an
  armature can be built from ``rest_skeleton()`` with no conversion.
* **Pose**: ``pose[j]`` is a 3x3 rotation of joint j *relative to its rest orientation, expressed in
  the joint's own rest frame* -- Blender's ``PoseBone.matrix_basis`` rotation. Forward kinematics:
  ``W_j = W_parent @ inv(R_parent) @ R_j @ pose_j`` with ``R`` the rest matrices, and for a root
  ``W_j = R_j @ pose_j``. Identity everywhere gives the model's native rest pose. Rotations in world
  axes can be converted with :func:`world_to_local_rotation`.
* **Skinning**: linear blend skinning, ``v = sum_k w_k (W_k @ inv(R_k)) v_rest``.

This module imports only numpy at load time: ``torch`` is imported inside the functions that need it,
so cheap modules (the wire protocol, the CLI) can import :mod:`strata.core.body` without paying for it.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import UnavailableError

if TYPE_CHECKING:
    import torch

    from .joint_map import JointMap

#: Names accepted by :meth:`BodyModel.pose_preset`.
POSE_PRESETS = ("rest", "A", "T")

#: Arms point this many degrees below horizontal in the "A" preset.
A_POSE_ARM_ANGLE_DEG = 45.0


class BodyModelError(UnavailableError):
    """A body model cannot be built or used here (missing package, missing model files): the *unavailable*
    family of :mod:`strata.core.errors` (wire code ``unavailable``)."""


@dataclass(frozen=True)
class Skeleton:
    """A skeleton in one pose, in numpy: enough to build a Blender armature.

    ``matrices[j]`` follows the module's joint-frame convention (head at the translation, +Y to the
    tail). The rest skeleton of a body is what Blender's edit mode needs; a posed one what pose mode
    shows.
    """

    joint_names: list[str]
    parents: np.ndarray  # (J,) int32, -1 for the root
    matrices: np.ndarray  # (J, 4, 4) float32, world
    lengths: np.ndarray  # (J,) float32, metres, > 0

    @property
    def heads(self) -> np.ndarray:
        """(J, 3) joint positions (bone heads)."""
        return self.matrices[:, :3, 3]

    @property
    def tails(self) -> np.ndarray:
        """(J, 3) bone tails: head + length along the local +Y axis."""
        return self.matrices[:, :3, 3] + self.lengths[:, None] * self.matrices[:, :3, 1]

    def index(self, name: str) -> int:
        """Index of a joint by name (ValueError listing a few names if unknown)."""
        try:
            return self.joint_names.index(name)
        except ValueError:
            raise ValueError(f"unknown joint {name!r}; joints are e.g. {self.joint_names[:8]}") from None


@dataclass(frozen=True)
class BodyOutput:
    """Result of :meth:`BodyModel.forward`: torch tensors, float32, batch first.

    ``vertices`` and ``joint_world`` are posed and include ``translation``; ``rest_vertices`` and
    ``rest_joint_world`` are the same shaped body in its rest pose, grounded (min z = 0) but *without*
    the translation -- the armature's edit-mode state, with the translation as the object location.
    Inputs of batch 1 broadcast, so some fields may be expanded views: ``.clone()`` before writing in place.
    """

    vertices: torch.Tensor  # (B, N, 3)
    joint_world: torch.Tensor  # (B, J, 4, 4)
    rest_vertices: torch.Tensor  # (B, N, 3)
    rest_joint_world: torch.Tensor  # (B, J, 4, 4)
    bone_lengths: torch.Tensor  # (B, J)

    @property
    def joint_heads(self) -> torch.Tensor:
        """(B, J, 3) posed joint positions."""
        return self.joint_world[..., :3, 3]

    @property
    def joint_tails(self) -> torch.Tensor:
        """(B, J, 3) posed bone tails (head + length * local +Y)."""
        return self.joint_world[..., :3, 3] + self.bone_lengths[..., None] * self.joint_world[..., :3, 1]

    def skeleton(
        self, index: int = 0, *, rest: bool = False, joint_names: Sequence[str] = (), parents: np.ndarray | None = None
    ) -> Skeleton:
        """One batch element as a numpy :class:`Skeleton` (posed, or the rest one with ``rest=True``)."""
        mats = (self.rest_joint_world if rest else self.joint_world)[index]
        n = mats.shape[0]
        return Skeleton(
            joint_names=list(joint_names) or [str(i) for i in range(n)],
            parents=np.full(n, -1, np.int32) if parents is None else np.asarray(parents, np.int32),
            matrices=mats.detach().cpu().numpy().astype(np.float32),
            lengths=self.bone_lengths[index].detach().cpu().numpy().astype(np.float32),
        )


class BodyModel(abc.ABC):
    """A parametric human body: shape parameters + joint rotations -> posed, skinned mesh.

    Subclasses fill the static attributes in ``__init__`` (numpy arrays, float32 / int64) and implement
    :meth:`forward`, :meth:`skin_weights` and :meth:`arm_chain`. Everything else (presets, height
    solving, the texture) is written once here against that small surface.
    """

    #: Backend name, e.g. "anny" or "smplx".
    name: str
    #: Skeleton variant, e.g. "anny", "game_engine" (backends with a single rig repeat the name).
    rig: str
    #: torch device holding the model's tensors; ``forward`` moves its inputs there.
    device: torch.device
    joint_names: list[str]
    parents: np.ndarray  # (J,) int32, -1 root
    faces: np.ndarray  # (F, 3) int64 triangles, counter-clockwise seen from outside
    uvs: np.ndarray  # (U, 2) float32, origin bottom-left
    uv_faces: np.ndarray  # (F, 3) int64 indices into uvs, per corner
    shape_names: list[str]
    default_shape: np.ndarray  # (S,) float32
    shape_bounds: np.ndarray  # (S, 2) float32, the valid [low, high] of each shape parameter
    #: Shape parameter that mostly controls stature, used by :meth:`solve_height` (None: no such one).
    height_parameter: str | None = None
    #: For a model without linear shape directions: the shape keys an artist gets, as (key name, shape
    #: parameter, target value, keep the stature); see :meth:`shape_keys_rest`.
    shape_key_targets: tuple[tuple[str, str, float, bool], ...] = ()

    num_vertices: int

    @property
    def joint_map(self) -> JointMap:
        """The skeleton's joints by model-neutral role (:mod:`.joint_map`), what the body fit and the posing
        code address joints by. Backends whose rig has one override this.

        Raises:
            BodyModelError: this rig has no joint map (the fit cannot run on it).
        """
        raise BodyModelError(f"no joint map for {self.kind}")

    # --- sizes ---------------------------------------------------------------------------------------

    @property
    def num_joints(self) -> int:
        return len(self.joint_names)

    @property
    def num_shape(self) -> int:
        return len(self.shape_names)

    @property
    def kind(self) -> str:
        """Rig kind for the asset format: "anny" for the default rig, "anny/game_engine" otherwise."""
        return self.name if self.rig == self.name else f"{self.name}/{self.rig}"

    def joint_index(self, name: str) -> int:
        try:
            return self.joint_names.index(name)
        except ValueError:
            raise ValueError(f"{self.kind}: unknown joint {name!r}") from None

    # --- the backend's job ---------------------------------------------------------------------------

    @abc.abstractmethod
    def forward(
        self,
        shape: torch.Tensor | np.ndarray | None = None,
        pose: torch.Tensor | np.ndarray | None = None,
        translation: torch.Tensor | np.ndarray | None = None,
    ) -> BodyOutput:
        """Differentiable posed body.

        Args:
            shape: (B, S) or (S,) shape parameters (``shape_names`` order); None = ``default_shape``.
            pose: (B, J, 3, 3) or (J, 3, 3) local joint rotations (see the module docstring); None = rest.
            translation: (B, 3) or (3,) world translation in metres added after grounding; None = 0.

        Inputs with batch 1 broadcast against the others. Gradients flow to every tensor input.
        """

    @abc.abstractmethod
    def skin_weights(self, k: int | None = 4) -> tuple[np.ndarray, np.ndarray]:
        """Top-k skinning influences: ``(indices (N, K) int64, weights (N, K) float32)``.

        Rows are sorted by decreasing weight and renormalised to sum to 1; unused slots have weight 0.
        ``k=None`` returns all the model's native influences (what :meth:`forward` uses, so a Blender
        armature skinned with them deforms exactly like ``forward``); k=4 suits game engines / glTF.
        """

    @abc.abstractmethod
    def arm_chain(self, side: str) -> tuple[str, str, str]:
        """``(upper arm, forearm, hand)`` joint names for side "L" (+X) or "R" (-X).

        The presets rotate the upper arm so that upper-arm head -> forearm head points where wanted, then
        the forearm so that forearm head -> hand head does too.
        """

    # --- shared helpers ------------------------------------------------------------------------------

    def __call__(self, *args: Any, **kwargs: Any) -> BodyOutput:
        return self.forward(*args, **kwargs)

    def shape_key_shapes(self, shape: np.ndarray) -> tuple[list[str], np.ndarray] | None:
        """(names, (K, S) float32 shapes) each of :attr:`shape_key_targets` reaches at 1 from ``shape``, or None
        when the model has no such targets (a model with linear shape directions, or none left to reach).

        A target that keeps the stature has :attr:`height_parameter` solved again (where it can reach it), so
        the rig built for the asked height still fits; targets the shape already sits at (within 0.01) give
        no key."""
        shape = np.asarray(shape, np.float32).reshape(-1)
        chosen = [(key, self.shape_names.index(param), float(value), keep)
                  for key, param, value, keep in self.shape_key_targets
                  if abs(float(shape[self.shape_names.index(param)]) - float(value)) > 0.01]
        if not chosen:
            return None
        stature = float(self.measure_height(shape[None])[0])
        shapes = np.repeat(shape[None], len(chosen), axis=0)
        for row, (_, index, value, keep) in enumerate(chosen):
            shapes[row, index] = value
            if keep and self.height_parameter is not None:
                with contextlib.suppress(ValueError):  # out of reach: the target's own stature
                    shapes[row] = self.solve_height(stature, shapes[row])
        return [key for key, _, _, _ in chosen], shapes

    def shape_keys_rest(self, shape: np.ndarray, found: tuple[list[str], np.ndarray] | None = None
                        ) -> tuple[list[str], np.ndarray] | None:
        """(names, (K, N, 3) float32 offsets of the rest mesh) that keep ``shape`` editable as shape keys, or
        None when the model offers none.

        A model with linear shape directions (SMPL-X's betas) gives them, one key per coefficient. Otherwise
        each key is the model's own rest body at one of :meth:`shape_key_shapes` minus the body at ``shape``:
        a slider at 1 is exactly the model's body there (anny's phenotypes blend non-linearly, so a
        derivative would be right only near ``shape``). ``found``: those shapes, when the caller has them.
        """
        directions = getattr(self, "shape_directions", None)
        if directions is not None:
            return list(self.shape_names), directions()
        found = found or self.shape_key_shapes(shape)
        if found is None:
            return None
        import torch

        names, shapes = found
        batch = np.concatenate([np.asarray(shape, np.float32).reshape(1, -1), shapes])
        with torch.no_grad():
            rest = self.forward(shape=batch).rest_vertices.cpu().numpy().astype(np.float32)
        return names, rest[1:] - rest[:1]

    def shape_vector(self, **values: float) -> np.ndarray:
        """(S,) float32 shape from named values, the rest at their defaults: ``shape_vector(height=0.7)``."""
        unknown = set(values) - set(self.shape_names)
        if unknown:
            raise ValueError(f"{self.kind}: unknown shape parameter(s) {sorted(unknown)}; known: {self.shape_names}")
        shape = self.default_shape.astype(np.float32).copy()
        for key, value in values.items():
            shape[self.shape_names.index(key)] = value
        return shape

    def rest_skeleton(self, shape: np.ndarray | torch.Tensor | None = None) -> Skeleton:
        """Grounded rest skeleton for one shape (numpy): what a Blender armature is built from."""
        import torch

        with torch.no_grad():
            out = self.forward(shape=None if shape is None else _first(shape))
        return out.skeleton(0, rest=True, joint_names=self.joint_names, parents=self.parents)

    def measure_height(self, shape: np.ndarray | torch.Tensor | None = None) -> np.ndarray:
        """(B,) stature in metres: the z-extent of the rest mesh (top of the head, feet on the ground)."""
        import torch

        with torch.no_grad():
            rest = self.forward(shape=shape).rest_vertices
        z = rest[..., 2]
        return (z.amax(dim=1) - z.amin(dim=1)).cpu().numpy().astype(np.float64)

    def height_range(self, shape: np.ndarray | torch.Tensor | None = None) -> tuple[float, float]:
        """Lowest and highest stature reachable by :attr:`height_parameter` with the other parameters fixed."""
        param = self._require_height_parameter()
        i = self.shape_names.index(param)
        base = self._shape_np(shape)
        lo_hi = np.repeat(base[None], 2, axis=0)
        lo_hi[:, i] = self.shape_bounds[i]
        h = self.measure_height(lo_hi)
        return float(h.min()), float(h.max())

    def solve_height(
        self,
        height_m: float,
        shape: np.ndarray | torch.Tensor | None = None,
        *,
        tol_m: float = 1e-4,
        max_iter: int = 40,
    ) -> np.ndarray:
        """Shape (S,) float32 whose rest stature is ``height_m``, changing only :attr:`height_parameter`.

        Why a solver: model parameters are not metres (anny's "height" is a 0..1 blend weight whose
        effect also depends on age and gender), yet users ask for "--height 1.80". Stature is monotonic
        in the parameter (affine, for anny; rising or falling), so a bracketed regula falsi (Illinois
        variant, with bisection safety) converges in a handful of forward passes.

        Raises:
            ValueError: if ``height_m`` is outside :meth:`height_range` for the other parameters.
        """
        param = self._require_height_parameter()
        i = self.shape_names.index(param)
        base = self._shape_np(shape)
        lo, hi = (float(b) for b in self.shape_bounds[i])

        def f(x: float) -> float:
            s = base.copy()
            s[i] = x
            return float(self.measure_height(s[None])[0]) - height_m

        f_lo, f_hi = f(lo), f(hi)
        if f_lo > f_hi:  # stature falls as the parameter grows (an SMPL-X beta may): search it the other way
            lo, hi, f_lo, f_hi = hi, lo, f_hi, f_lo
        if f_lo > 0 or f_hi < 0:
            raise ValueError(
                f"{self.kind}: height {height_m:.3f} m is out of reach for this body; "
                f"{param} in [{min(lo, hi)}, {max(lo, hi)}] gives {min(f_lo, f_hi) + height_m:.3f} .. "
                f"{max(f_lo, f_hi) + height_m:.3f} m "
                "(change age/gender or the other parameters)"
            )
        x = lo
        side = 0
        for _ in range(max_iter):
            x = (lo * f_hi - hi * f_lo) / (f_hi - f_lo) if f_hi != f_lo else 0.5 * (lo + hi)
            if not min(lo, hi) < x < max(lo, hi):
                x = 0.5 * (lo + hi)
            fx = f(x)
            if abs(fx) <= tol_m:
                break
            if fx < 0:
                lo, f_lo = x, fx
                if side == -1:
                    f_hi *= 0.5
                side = -1
            else:
                hi, f_hi = x, fx
                if side == 1:
                    f_lo *= 0.5
                side = 1
        out = base.copy()
        out[i] = x
        return out

    def pose_preset(self, name: str, shape: np.ndarray | torch.Tensor | None = None) -> np.ndarray:
        """(J, 3, 3) float32 local rotations for a named pose.

        * ``"rest"``: the model's native rest pose (all identities). For anny that is already an A-pose:
          upper arms ~48 deg below horizontal, elbows slightly bent forward.
        * ``"A"``: straight arms, 45 deg below horizontal, in the frontal plane.
        * ``"T"``: straight arms, horizontal, in the frontal plane.

        Only the upper arms and forearms rotate (minimal rotations, so no added twist). The rotations are
        computed on ``shape``'s rest skeleton (default shape if None); other shapes get very nearly the
        same arm directions since the shape barely changes the rest bone directions.
        """
        identity = np.tile(np.eye(3, dtype=np.float32), (self.num_joints, 1, 1))
        if name == "rest":
            return identity
        if name not in POSE_PRESETS:
            raise ValueError(f"unknown pose preset {name!r}; expected one of {POSE_PRESETS}")
        down = np.radians(A_POSE_ARM_ANGLE_DEG if name == "A" else 0.0)
        skel = self.rest_skeleton(shape)
        pose = identity.astype(np.float64)
        for side, sign in (("L", 1.0), ("R", -1.0)):
            target = np.array([sign * np.cos(down), 0.0, -np.sin(down)])
            upper, fore, hand = (self.joint_index(n) for n in self.arm_chain(side))
            pose = _aim(skel, pose, bone=upper, toward=fore, target=target)
            pose = _aim(skel, pose, bone=fore, toward=hand, target=target)
        return pose.astype(np.float32)

    def skin_texture(self, tone: float | str | Sequence[float] = "medium", size: int = 2048) -> np.ndarray:
        """(size, size, 3) uint8 sRGB base-colour texture in this model's UV space.

        The default paints one uniform skin tone over every UV island and bleeds it into the gutters;
        backends that know their body parts (anny) override it to add lips, nails, eyes and mouth.
        """
        from .texture import paint_skin_texture

        return paint_skin_texture(self.uvs, self.uv_faces, size=size, tone=tone)

    def face_parts(self) -> tuple[list[str], np.ndarray] | None:
        """``(part names, (F,) int part index per face)`` if the backend knows its body parts, else None."""
        return None

    # --- internals -----------------------------------------------------------------------------------

    def _shape_np(self, shape: np.ndarray | torch.Tensor | None) -> np.ndarray:
        if shape is None:
            return self.default_shape.astype(np.float32).copy()
        arr = shape.detach().cpu().numpy() if hasattr(shape, "detach") else np.asarray(shape)
        arr = np.asarray(arr, np.float32).reshape(-1)
        if arr.shape != (self.num_shape,):
            raise ValueError(f"expected one shape of {self.num_shape} values, got {arr.shape}")
        return arr.copy()

    def _require_height_parameter(self) -> str:
        if self.height_parameter is None:
            raise BodyModelError(f"{self.kind} has no stature shape parameter to solve for")
        return self.height_parameter

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(kind={self.kind!r}, joints={self.num_joints}, "
            f"vertices={self.num_vertices}, faces={len(self.faces)})"
        )


# --- rotation / kinematics helpers (numpy, float64 internally) -----------------------------------------


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest rotation (3x3) taking direction ``a`` to direction ``b`` (Rodrigues' formula)."""
    a = np.asarray(a, np.float64) / np.linalg.norm(a)
    b = np.asarray(b, np.float64) / np.linalg.norm(b)
    v = np.cross(a, b)
    c = float(np.dot(a, b))
    if c < -1.0 + 1e-9:  # opposite: turn half a circle about any axis perpendicular to a
        axis = np.cross(a, [1.0, 0.0, 0.0])
        if np.linalg.norm(axis) < 1e-6:
            axis = np.cross(a, [0.0, 1.0, 0.0])
        axis /= np.linalg.norm(axis)
        return 2.0 * np.outer(axis, axis) - np.eye(3)
    vx = np.array([[0.0, -v[2], v[1]], [v[2], 0.0, -v[0]], [-v[1], v[0], 0.0]])
    return np.eye(3) + vx + vx @ vx / (1.0 + c)


def topological_order(parents: np.ndarray) -> list[int]:
    """Joint indices with every parent before its children (the arrays need not be sorted that way)."""
    parents = np.asarray(parents)
    children: dict[int, list[int]] = {}
    for j, p in enumerate(parents):
        children.setdefault(int(p), []).append(j)
    order: list[int] = []
    stack = list(reversed(children.get(-1, [])))
    while stack:
        j = stack.pop()
        order.append(j)
        stack.extend(reversed(children.get(j, [])))
    if len(order) != len(parents):
        raise ValueError("parents do not form a forest rooted at -1 (cycle?)")
    return order


def forward_kinematics_np(rest: np.ndarray, parents: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """(J, 4, 4) posed world matrices from rest world matrices and local rotations (module convention)."""
    rest = np.asarray(rest, np.float64)
    local = np.tile(np.eye(4), (len(parents), 1, 1))
    local[:, :3, :3] = pose
    world = np.empty_like(rest)
    for j in topological_order(parents):
        p = int(parents[j])
        if p < 0:
            world[j] = rest[j] @ local[j]
        else:
            world[j] = world[p] @ np.linalg.inv(rest[p]) @ rest[j] @ local[j]
    return world


def world_to_local_rotation(joint_world_rotation: np.ndarray, world_rotation: np.ndarray) -> np.ndarray:
    """Express an extra rotation given in world axes as a local pose rotation.

    If a joint's current world orientation is ``W`` (3x3) and it should additionally turn by ``G`` about
    world axes (about its own head), multiply its pose rotation on the right by ``W.T @ G @ W``.
    """
    w = np.asarray(joint_world_rotation, np.float64)
    return w.T @ np.asarray(world_rotation, np.float64) @ w


def _aim(skel: Skeleton, pose: np.ndarray, *, bone: int, toward: int, target: np.ndarray) -> np.ndarray:
    """Rotate ``bone`` (about its head) so that head(bone) -> head(toward) points along ``target``."""
    world = forward_kinematics_np(skel.matrices, skel.parents, pose)
    direction = world[toward, :3, 3] - world[bone, :3, 3]
    g = rotation_between(direction, target)
    pose = pose.copy()
    pose[bone] = pose[bone] @ world_to_local_rotation(world[bone, :3, :3], g)
    return pose


def _first(shape: Any) -> Any:
    """First row of a batched shape (or the shape itself if unbatched)."""
    arr = shape if hasattr(shape, "detach") else np.asarray(shape, np.float32)
    return arr[:1] if arr.ndim == 2 else arr
