"""Model-neutral names for the joints the body fit and the posing code need (pure data: cheap to import).

Why: the fit, its priors and the posing toolbox think in anatomy ("the left thigh", "the upper spine"),
while every body model spells its skeleton its own way (anny's ``upperleg01.L``, SMPL-X's ``left_hip``).
A :class:`JointMap` is that one translation per model: code asks for a *role* and gets the model's joint
name, so nothing outside the map itself hard-codes a model's joint names. Backends expose theirs as
:attr:`strata.core.body.base.BodyModel.joint_map`.

Roles:

* centre: ``root``, ``spine_lower``, ``spine_upper``, ``neck``, ``head``;
* per side ("L" = the subject's left, at +X; "R"): ``clavicle``, ``upper_arm``, ``forearm``, ``wrist``
  (the hand), ``thigh``, ``shin``, ``foot`` and ``toe`` (the bone whose head the foot aims at).

A joint is named by its bone *head*: the upper arm's joint is the shoulder, the forearm's the elbow.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

#: The two sides, the subject's left (+X) first.
SIDES: tuple[str, str] = ("L", "R")
_SIDE_WORDS = {"L": "left", "R": "right"}

#: Roles with one joint on the body's midline, root first.
CENTRE_ROLES: tuple[str, ...] = ("root", "spine_lower", "spine_upper", "neck", "head")
#: Roles with one joint per side.
SIDE_ROLES: tuple[str, ...] = ("clavicle", "upper_arm", "forearm", "wrist", "thigh", "shin", "foot", "toe")
#: The long limb bones: role -> (role of the joint it points at, its name in words).
LIMB_ROLES: dict[str, tuple[str, str]] = {
    "upper_arm": ("forearm", "upper arm"),
    "forearm": ("wrist", "forearm"),
    "thigh": ("shin", "thigh"),
    "shin": ("foot", "shin"),
}
#: Roles the body fit rotates (everything else, fingers and toes, stays at rest), in its parameter order.
FIT_ROLES: tuple[str, ...] = CENTRE_ROLES + tuple(r for r in SIDE_ROLES if r != "toe")


@dataclass(frozen=True)
class SideJoints:
    """One side's joint names (see the module docstring for the roles)."""

    clavicle: str
    upper_arm: str
    forearm: str
    wrist: str
    thigh: str
    shin: str
    foot: str
    toe: str


@dataclass(frozen=True)
class JointMap:
    """A body model's joint names by role (see the module docstring)."""

    root: str
    spine_lower: str
    spine_upper: str
    neck: str
    head: str
    left: SideJoints
    right: SideJoints

    def side(self, role: str, side: str) -> str:
        """The joint of a per-side ``role`` on ``side`` ("L" or "R")."""
        if role not in SIDE_ROLES:
            raise ValueError(f"{role!r} is not a per-side role; those are {SIDE_ROLES}")
        if side not in SIDES:
            raise ValueError(f"side must be 'L' or 'R', got {side!r}")
        return str(getattr(self.left if side == "L" else self.right, role))

    def joint(self, role: str, side: str | None = None) -> str:
        """The joint of ``role``: a centre role with ``side=None``, a per-side role with its side."""
        if side is not None:
            return self.side(role, side)
        if role not in CENTRE_ROLES:
            raise ValueError(f"{role!r} is not a centre role (those are {CENTRE_ROLES}); per-side roles need a side")
        return str(getattr(self, role))

    def fit_roles(self) -> tuple[tuple[str, str | None], ...]:
        """``(role, side)`` of each joint the fit rotates, in :meth:`fit_joints` order (side None: centre)."""
        centre = tuple((r, None) for r in FIT_ROLES if r in CENTRE_ROLES)
        sided = tuple((r, s) for r in FIT_ROLES if r in SIDE_ROLES for s in SIDES)
        return centre + sided

    def fit_joints(self) -> tuple[str, ...]:
        """The joints the fit rotates, in its parameter order: the centre ones, then each per-side role L, R."""
        return tuple(self.joint(role, side) for role, side in self.fit_roles())

    def limbs(self) -> dict[str, tuple[str, str]]:
        """Long limb bones: ``{bone: (joint whose head the bone aims at, description)}``, e.g.
        ``{"upperarm01.L": ("lowerarm01.L", "left upper arm"), ...}`` for anny (arms first, left first)."""
        out: dict[str, tuple[str, str]] = {}
        for pair in (("upper_arm", "forearm"), ("thigh", "shin")):
            for side in SIDES:
                for role in pair:
                    toward, words = LIMB_ROLES[role]
                    out[self.side(role, side)] = (self.side(toward, side), f"{_SIDE_WORDS[side]} {words}")
        return out

    def names(self) -> tuple[str, ...]:
        """Every joint the map names (centre roles, then each per-side role L, R)."""
        sided = tuple(self.side(r, s) for r in SIDE_ROLES for s in SIDES)
        return tuple(self.joint(r) for r in CENTRE_ROLES) + sided

    def missing(self, joint_names: Iterable[str]) -> list[str]:
        """The map's joints that are not in ``joint_names`` (empty when the map fits that skeleton)."""
        have = set(joint_names)
        return [n for n in self.names() if n not in have]
