"""The procedural garment library: every style of every layer, as parameters and a builder.

Why procedural: no garment model ships offline, and a library built from the body itself fits any body the
body-model interface gives (any shape, anny or SMPL-X) with no assets to license. A style is a handful of
numbers (where the garment ends, how loose, how thick) read by one of three constructions: a shell that
follows the body (:mod:`.shell`), a loft that hangs free (:mod:`.loft`), and hair volumes (:mod:`.hair`).

Layers are dressed inner first (:class:`Dresser`): each remembers how far off the skin it reaches
(``occupied``, per body vertex) and adds its vertices to what later lofts must enclose, so a shirt goes over
the trousers' waistband and a coat's skirt over both.

The style names are the wire protocol's (``strata.exchange.wire.jobs.LAYER_STYLES``); a test checks that
every published style has a builder here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np

from .frame import BodyFrame
from .hair import cap, curtain, ellipsoid, tube
from .loft import build_loft
from .metrics import push_out
from .piece import Piece, merge
from .shell import build_shell, enclosing_base, smooth_field

GAP = 0.003
"""Air between a layer's inner sheet and what is under it (metres)."""


@dataclass(frozen=True)
class GarmentSpec:
    """One layer's choice: kind and style, and the numbers the style reads (all in [0, 1])."""

    kind: str
    style: str
    length: float = 0.5
    """Where it ends: down the leg for bottoms and skirts, down the hips for tops, up the shin for shoes,
    down the back for hair."""
    looseness: float = 0.3
    sleeve: float = 0.3
    """Tops: where the sleeve ends, 0 at the shoulder, 1 at the wrist."""
    thickness: float = 0.004
    """Metres between the inner and the outer sheet."""
    color: tuple[int, int, int] = (128, 128, 128)
    fabric: str = "cotton"

    @property
    def title(self) -> str:
        return STYLE_TITLES.get(self.style, self.style.replace("_", " ").title())


STYLE_TITLES = {"tshirt": "T-shirt", "longsleeve": "Long sleeve"}

#: Defaults per (kind, style); a seed jitters length and looseness a little around them.
DEFAULTS: dict[tuple[str, str], dict] = {
    ("bottom", "trousers"): dict(length=1.0, looseness=0.3, thickness=0.004, fabric="denim", color=(52, 72, 110)),
    ("bottom", "shorts"): dict(length=0.38, looseness=0.4, thickness=0.004, fabric="cotton", color=(150, 130, 95)),
    ("bottom", "skirt"): dict(length=0.5, looseness=0.4, thickness=0.003, fabric="cotton", color=(120, 40, 60)),
    ("top", "tshirt"): dict(length=0.45, looseness=0.3, sleeve=0.3, thickness=0.003, color=(225, 225, 220)),
    ("top", "longsleeve"): dict(length=0.5, looseness=0.3, sleeve=0.95, thickness=0.003, color=(70, 110, 80)),
    ("top", "hoodie"): dict(length=0.65, looseness=0.7, sleeve=0.97, thickness=0.006, fabric="knit",
                            color=(110, 110, 118)),
    ("top", "jacket"): dict(length=0.8, looseness=0.6, sleeve=0.98, thickness=0.007, fabric="leather",
                            color=(40, 36, 34)),
    ("top", "coat"): dict(length=0.55, looseness=0.6, sleeve=0.98, thickness=0.008, fabric="wool",
                          color=(120, 95, 70)),
    ("top", "dress"): dict(length=0.55, looseness=0.5, sleeve=0.15, thickness=0.003, color=(180, 30, 40)),
    ("shoes", "sneakers"): dict(length=0.93, looseness=0.2, thickness=0.006, fabric="canvas", color=(235, 235, 235)),
    ("shoes", "boots"): dict(length=0.72, looseness=0.3, thickness=0.007, fabric="leather", color=(70, 45, 30)),
    ("shoes", "flats"): dict(length=1.0, looseness=0.1, thickness=0.004, fabric="leather", color=(30, 30, 30)),
    ("hair", "short"): dict(length=0.2, looseness=0.3, thickness=0.012, fabric="hair", color=(60, 40, 25)),
    ("hair", "bob"): dict(length=0.5, looseness=0.4, thickness=0.014, fabric="hair", color=(90, 60, 35)),
    ("hair", "long"): dict(length=1.0, looseness=0.4, thickness=0.014, fabric="hair", color=(40, 28, 20)),
    ("hair", "ponytail"): dict(length=0.7, looseness=0.3, thickness=0.010, fabric="hair", color=(150, 110, 60)),
    ("hair", "bun"): dict(length=0.3, looseness=0.3, thickness=0.010, fabric="hair", color=(25, 20, 18)),
}


def garment_spec(kind: str, style: str, rng: np.random.Generator | None = None,
                 color: tuple[int, int, int] | None = None) -> GarmentSpec:
    """The style's defaults, jittered by ``rng`` (same seed, same garment), with ``color`` when given."""
    if (kind, style) not in DEFAULTS:
        known = ", ".join(s for k, s in DEFAULTS if k == kind) or "none"
        raise ValueError(f"no {kind} style {style!r}; known: {known}")
    values = dict(DEFAULTS[(kind, style)])
    if rng is not None:
        values["looseness"] = float(np.clip(values["looseness"] + rng.uniform(-0.15, 0.15), 0.0, 1.0))
        if kind in ("bottom", "top") and style not in ("trousers",):
            values["length"] = float(np.clip(values["length"] + rng.uniform(-0.08, 0.08), 0.0, 1.0))
        if color is None:
            jitter = rng.uniform(-25, 25, 3)
            values["color"] = tuple(int(np.clip(c + j, 0, 255)) for c, j in zip(values["color"], jitter, strict=True))
    if color is not None:
        values["color"] = tuple(int(c) for c in color)
    return GarmentSpec(kind=kind, style=style, **values)


@dataclass
class Dresser:
    """Dresses one body layer by layer, inner first (see the module docstring)."""

    frame: BodyFrame
    outline: np.ndarray | None = None
    """(N,) metres off the skin that a photo's clothed surface stands (reconstruction): every garment's outer
    sheet reaches at least that far, and lofts enclose that surface. None: the styles' own looseness only."""
    occupied: np.ndarray = field(init=False)
    """(N,) metres off the skin that the layers so far reach, per body vertex."""
    obstacles: np.ndarray = field(init=False)
    """(P, 3): the skin and every layer so far (what a loft must enclose)."""
    layers: list[tuple[np.ndarray, np.ndarray]] = field(init=False)
    """The garments dressed so far, ``(vertices, faces)``, inner first."""

    def __post_init__(self) -> None:
        self.occupied = np.zeros(len(self.frame.vertices))
        self.obstacles = self.frame.vertices[self.frame.skin]
        self.layers = []
        if self.outline is not None:  # the clothed surface, but not the arms: they hang beside a skirt, not in it
            f = self.frame
            trunk = f.skin & ~f.part_mask("upper_arm", "forearm", "hand")
            self.obstacles = np.concatenate([self.obstacles, (f.vertices + self.outline[:, None] * f.normals)[trunk]])

    def reach(self, thickness: float) -> np.ndarray:
        """(N,) the least inner-sheet offset for a garment ``thickness`` thick: its outer sheet at the
        photo's outline (zero without one)."""
        return np.zeros(len(self.frame.vertices)) if self.outline is None else self.outline - thickness

    def dress(self, spec: GarmentSpec) -> Piece:
        """Build ``spec``'s garment over what is already on, push out the few vertices a construction leaves
        inside the body or a lower layer (between toes, at rims), and remember it."""
        piece = BUILDERS[(spec.kind, spec.style)](self, spec)
        # The skin is one clean closed surface (its pseudo-normal sign is exact); layers of merged pieces may
        # overlap themselves, so their insides are confirmed by winding numbers.
        piece.vertices = push_out(piece.vertices, self.frame.vertices, self.frame.faces, GAP, confirm=False)
        for vertices, faces in self.layers:
            piece.vertices = push_out(piece.vertices, vertices, faces, GAP)
        self.remember(piece, spec.thickness)
        self.layers.append((piece.vertices, piece.faces))
        return piece

    def remember(self, piece: Piece, thickness: float) -> None:
        """Raise ``occupied`` under ``piece`` (its nearest sheet's distance plus its thickness; only where
        that sheet lies out along the skin's normal, not beside the piece's edge) and add it to the
        obstacles."""
        from scipy.spatial import cKDTree

        skin = np.flatnonzero(self.frame.skin)
        distance, nearest = cKDTree(piece.vertices).query(self.frame.vertices[skin])
        # Under the piece: its nearest vertex lies out along the skin's normal (not beside its edge).
        offset = piece.vertices[nearest] - self.frame.vertices[skin]
        along = np.einsum("nd,nd->n", offset, self.frame.normals[skin])
        aside = np.sqrt(np.maximum(distance**2 - along**2, 0.0))
        # Over it: out along the normal, not beside it (a collar 8 cm below the nape is not over the nape).
        near = (distance < 0.08) & (along > 0.5 * distance) & (aside < 0.015 + 0.25 * along)
        reach = distance[near] + thickness
        idx = skin[near]
        self.occupied[idx] = np.maximum(self.occupied[idx], reach)
        self.obstacles = np.concatenate([self.obstacles, piece.vertices])

    # -- constructions shared by styles ------------------------------------------------------------------

    def shell(self, cover: np.ndarray, loose: np.ndarray | float, thickness: float, smooth: int = 4,
              bridge: int = 0, follow_outline: bool = True) -> Piece:
        """A shell over ``cover``: ``GAP`` plus ``loose`` metres beyond whatever is already on, or out to the
        photo's outline when there is one and ``follow_outline``. ``bridge`` rounds of smoothing of the skin
        under it first (shoes over toes: :func:`.shell.enclosing_base`)."""
        f = self.frame
        base, clearance = enclosing_base(f, cover, bridge) if bridge else (None, 0.0)
        floor = self.occupied + clearance + GAP
        if self.outline is None or not follow_outline:
            inner = floor + np.broadcast_to(loose, self.occupied.shape)
        else:  # the photo's outline shapes it, not the style's ease
            inner = np.maximum(floor, self.reach(thickness))
        inner = smooth_field(f, inner, smooth) if smooth else inner  # smooth everywhere: no ruffled hem
        piece = build_shell(f, cover, np.maximum(inner, floor), thickness, base=base)
        if piece is None:
            raise ValueError("the garment covers no part of this body")
        return piece

    def skirt(self, top: float, hem: float, looseness: float, thickness: float) -> Piece:
        """A full loft from ``top`` down to ``hem`` around the hips' vertical axis."""
        f = self.frame
        centre = 0.5 * (f.landmarks["hip.L"] + f.landmarks["hip.R"])
        below = self.obstacles[(self.obstacles[:, 2] < top + 0.05) & (self.obstacles[:, 2] > hem - 0.05)]
        arms = f.vertices[f.part_mask("upper_arm", "forearm", "hand")]
        keep = ~_near(below, arms, 0.05)  # hands, arms and sleeves hang beside a skirt, not inside it
        if self.outline is not None:  # the obstacles hold the photo's clothed surface: no ease, no flare
            return build_loft(f, below[keep], centre, top, hem, ease=GAP, flare=0.0, thickness=thickness)
        return build_loft(f, below[keep], centre, top, hem, ease=GAP + 0.004 + 0.01 * looseness,
                          flare=0.05 + 0.35 * looseness, thickness=thickness)


# -- the styles ------------------------------------------------------------------------------------------


def _leg_cover(f: BodyFrame, length: float) -> np.ndarray:
    t = np.nan_to_num(f.leg_t, nan=0.0)
    legs = f.part_mask("thigh", "shin") & (t <= length)
    return legs | f.part_mask("pelvis") | (f.part_mask("torso") & (f.vertices[:, 2] < f.landmarks["waist"][2] + 0.02))


def trousers(d: Dresser, s: GarmentSpec) -> Piece:
    f = d.frame
    cover = _leg_cover(f, s.length)
    flare = s.looseness * (0.004 + 0.03 * np.clip(np.nan_to_num(f.leg_t, nan=0.0), 0, 1))
    return d.shell(cover, flare, s.thickness)


def skirt(d: Dresser, s: GarmentSpec) -> Piece:
    f = d.frame
    waist, hip, ankle = f.landmarks["waist"][2], f.landmarks["hip.L"][2], f.landmarks["ankle.L"][2]
    band = d.shell(f.part_mask("torso", "pelvis") & (f.vertices[:, 2] < waist + 0.02)
                   & (f.vertices[:, 2] > waist - 0.06), 0.0, s.thickness)
    d.remember(band, s.thickness)
    hem = hip - s.length * (hip - ankle)
    return merge([band, d.skirt(waist - 0.03, hem, s.looseness, s.thickness)])


def _top_cover(f: BodyFrame, s: GarmentSpec) -> np.ndarray:
    z = f.vertices[:, 2]
    waist, crotch = f.landmarks["waist"][2], f.landmarks["crotch"][2]
    bottom = waist - s.length * (waist - crotch)
    arm_t = np.nan_to_num(f.arm_t, nan=0.0)
    body = f.part_mask("torso", "pelvis", "thigh") & (z >= bottom)
    return body | (f.part_mask("upper_arm", "forearm") & (arm_t <= s.sleeve))


def _top_shell(d: Dresser, s: GarmentSpec) -> Piece:
    f = d.frame
    z = f.vertices[:, 2]
    hang = np.clip((f.landmarks["chest"][2] - z) / 0.3, 0.0, 1.0)  # looser towards the hem
    return d.shell(_top_cover(f, s), s.looseness * (0.004 + 0.02 * hang), s.thickness)


def tshirt(d: Dresser, s: GarmentSpec) -> Piece:
    return _top_shell(d, s)


def hoodie(d: Dresser, s: GarmentSpec) -> Piece:
    f = d.frame
    body = _top_shell(d, s)
    d.remember(body, s.thickness)
    # The hood, down: a thick roll over the upper back and around the neck.
    z, y = f.vertices[:, 2], f.vertices[:, 1]
    roll = (f.part_mask("torso", "neck") & (z > f.landmarks["chest"][2] + 0.08) & (y > f.landmarks["neck"][1] - 0.02)
            & (z < f.landmarks["neck"][2] + 0.04))
    return merge([body, d.shell(roll, 0.01, 0.02, smooth=6)])


def coat(d: Dresser, s: GarmentSpec) -> Piece:
    f = d.frame
    upper = _top_shell(d, replace(s, length=0.1))  # to the waist: the skirt of the coat covers the rest
    d.remember(upper, s.thickness)
    hip, ankle = f.landmarks["hip.L"][2], f.landmarks["ankle.L"][2]
    # The skirt of the coat from the waist, over the upper part (which it encloses), so no step shows.
    tails = d.skirt(f.landmarks["waist"][2] + 0.02, hip - s.length * (hip - ankle), s.looseness * 0.6, s.thickness)
    return merge([upper, tails])


def dress(d: Dresser, s: GarmentSpec) -> Piece:
    f = d.frame
    bodice = _top_shell(d, replace(s, length=0.0, looseness=0.1))
    d.remember(bodice, s.thickness)
    hip, ankle = f.landmarks["hip.L"][2], f.landmarks["ankle.L"][2]
    lower = d.skirt(f.landmarks["waist"][2] + 0.03, hip - s.length * (hip - ankle), s.looseness, s.thickness)
    return merge([bodice, lower])


def shoes(d: Dresser, s: GarmentSpec) -> Piece:
    f = d.frame
    t = np.nan_to_num(f.leg_t, nan=0.0)
    if s.style == "flats":
        cover = f.part_mask("foot") & (f.vertices[:, 2] < f.landmarks["ankle.L"][2] - 0.01)
    else:
        cover = f.part_mask("foot") | (f.part_mask("shin") & (t >= s.length))
    # On a photo the fitted feet already stand on the soles the photo shows: no sole is added under them.
    sole = {"sneakers": 0.022, "boots": 0.028, "flats": 0.008}[s.style] if d.outline is None else 0.0
    down = np.clip(-f.normals[:, 2], 0.0, 1.0) ** 2  # the sole thickens under the foot
    # Shoes keep their own shape on a photo too: the clothed surface's feet are walls around the real ones.
    return d.shell(cover, 0.002 + 0.008 * s.looseness + sole * down, s.thickness, smooth=3, bridge=20,
                   follow_outline=False)


def hair(d: Dresser, s: GarmentSpec) -> Piece:
    f = d.frame
    if d.outline is None:
        lift, reach = 0.004 + 0.012 * s.looseness, None
    else:  # a photo's hair volume is in the outline
        lift, reach = 0.0, d.reach(s.thickness)
    skin_and_below = d.obstacles  # what the hanging parts fall around (the cap joins them below)
    scalp_piece = cap(f, d.occupied, s.thickness, lift, reach)
    if scalp_piece is None:
        raise ValueError("this body has no scalp to put hair on")
    d.remember(scalp_piece, s.thickness)
    head, neck, chest = f.landmarks["head"], f.landmarks["neck"], f.landmarks["chest"]
    pieces = [scalp_piece]
    if s.style == "bob":
        pieces.append(curtain(f, skin_and_below, head[2] + 0.05, neck[2] + 0.03, 2.2, s.thickness, lift + 0.004,
                              curl=0.6 * s.thickness))
    elif s.style == "long":
        pieces.append(curtain(f, skin_and_below, head[2] + 0.05, neck[2] + 0.01, 2.0, s.thickness, lift + 0.004))
        # Down the back: as wide as the head, not the shoulders (what lies beside the spine is left out).
        hem = neck[2] - s.length * (neck[2] - chest[2]) - 0.05
        spine = d.obstacles[np.abs(d.obstacles[:, 0] - head[0]) < 0.08]
        pieces.append(curtain(f, spine, neck[2] + 0.05, hem, 2 * np.pi - 1.5, s.thickness, lift + 0.004))
    elif s.style == "ponytail":
        pieces.append(_ponytail(d, s, scalp_piece))
    elif s.style == "bun":
        radii = np.array([0.045, 0.04, 0.04])
        tie = _on_cap(scalp_piece, head, np.array([0.0, 0.6, 0.8]))
        pieces.append(ellipsoid(f, tie + 0.6 * radii[2] * _unit(np.array([0.0, 0.6, 0.8])), radii))
    return merge(pieces)


def _on_cap(cap_piece: Piece, head: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """The cap's outermost point in ``direction`` from the head's centre (where a ponytail or bun is tied)."""
    v = cap_piece.vertices
    u = _unit(direction)
    offset = v - head
    # Near the ray from the head's centre: the vertex furthest along it among those close to it.
    along = offset @ u
    aside = np.linalg.norm(offset - along[:, None] * u, axis=1)
    near = aside < max(0.015, float(np.quantile(aside, 0.01)))
    return v[near][np.argmax(along[near])]


def _ponytail(d: Dresser, s: GarmentSpec, cap_piece: Piece) -> Piece:
    """Tied at the back of the crown (sunk into the cap there), out a little, then hanging down the back of
    the head and neck a finger's width off them; it swells below the tie and tapers to the ends."""
    f = d.frame
    head, neck = f.landmarks["head"], f.landmarks["neck"]
    tie = _on_cap(cap_piece, head, np.array([0.0, 0.85, 0.5]))
    bottom = neck[2] - 0.05 - 0.15 * s.length
    heights = np.linspace(tie[2], bottom, 14)
    t = np.linspace(0.0, 1.0, len(heights))
    radii = 0.02 + 0.014 * np.sin(np.pi * np.clip(t * 1.6, 0, 1)) * (1 - t) + 0.006 * (1 - t)
    pts = d.obstacles
    path = []
    for z, r in zip(heights, radii, strict=True):
        near = pts[(np.abs(pts[:, 2] - z) < 0.02) & (np.abs(pts[:, 0] - head[0]) < 0.05)]
        back = float(near[:, 1].max()) if len(near) else tie[1]
        path.append([head[0], back + r + 0.004, z])
    path = np.array(path)
    path[0] = tie + np.array([0.0, 0.6 * radii[0], 0.0])  # its front sunk into the cap
    path[:, 1] = np.maximum.accumulate(path[:, 1])  # hangs out, never back into the neck
    return tube(f, path, radii)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-12)


BUILDERS: dict[tuple[str, str], Callable[[Dresser, GarmentSpec], Piece]] = {
    ("bottom", "trousers"): trousers, ("bottom", "shorts"): trousers, ("bottom", "skirt"): skirt,
    ("top", "tshirt"): tshirt, ("top", "longsleeve"): tshirt, ("top", "hoodie"): hoodie,
    ("top", "jacket"): tshirt, ("top", "coat"): coat, ("top", "dress"): dress,
    ("shoes", "sneakers"): shoes, ("shoes", "boots"): shoes, ("shoes", "flats"): shoes,
    ("hair", "short"): hair, ("hair", "bob"): hair, ("hair", "long"): hair, ("hair", "ponytail"): hair,
    ("hair", "bun"): hair,
}


def _near(points: np.ndarray, others: np.ndarray, radius: float) -> np.ndarray:
    from scipy.spatial import cKDTree

    if not len(others) or not len(points):
        return np.zeros(len(points), bool)
    distance, _ = cKDTree(others).query(points)
    return distance < radius
