"""What the person in a photo wears, read from the photo and the body fitted to it (no parsing model).

No clothing-parsing network ships offline, so the decisions come from cues the fitted body makes cheap:
rasterized in the fitted camera, it says for every pixel of the person which body part lies under it and how
far along the limb (:class:`~strata.core.garments.frame.BodyFrame`'s ``arm_t``/``leg_t``), and which pixels
of the person's mask are *not* body (loose clothes, skirts, hair). Then:

1. **Skin colour** from the lower face (the band between the eyes and the chin, the middle of the head's
   width: hair rarely covers it); a pixel is skin when it is close to it in CIELAB, lightness counting less
   (shading changes lightness, not hue).
2. **Sleeves and legs**: the share of skin pixels along each arm (shoulder -> wrist) and leg (hip ->
   ankle), in bins, away from the limbs' edges (a fit a little off puts them over the torso); the garment
   ends at the first bare stretch from the root (so shoes over the ankles do not make shorts trousers).
3. **Skirt or trousers**: the silhouette between the legs. Between the two legs' inner edges (rows from below
   a crotch seam to the knees, where the gap is wide enough to judge), a skirt or a dress fills the gap
   with cloth; trousers leave it open. One cloth to the ankles must fill between the shins too (loose
   trousers close the gap at the thighs, not lower).
4. **Dress, coat or top**: one cloth from the chest over the thighs with a skirt's silhouette is a dress, or
   a coat when its sleeves are long and it reaches down the legs; the same colour to the ankles is a top
   and trousers (overalls, a suit).
5. **Shoes**: the feet are not skin; boots when the cloth of the feet runs up bare shins.
6. **Hair**: the top of the head is hair where it is not skin or where it has hair's fine texture of strands
   (hair as brown as the skin); its colour from there; its length from hair-coloured mask
   pixels *outside* the body beside the jaw (a bob, long hair) and beside the neck (long hair): outside,
   because the body's own shaded skin can be as dark as hair.

How well they do is measured on synthetic dressed people (:mod:`strata.core.pipelines.synthetic_dressed`) and
on the example photos; docs/layers.md keeps the figures.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..garments.frame import PARTS, BodyFrame
from ..garments.styles import GarmentSpec, garment_spec
from ..render import Camera, Rasterizer, get_rasterizer
from ..render.camera import camera_for_size

#: Distance in CIELAB (lightness divided by :data:`LIGHTNESS_SCALE`) below which a pixel is skin.
SKIN_DISTANCE = 11.0
LIGHTNESS_SCALE = 3.0
#: A limb bin is bare when at least this share of its pixels is skin.
BARE_SHARE = 0.5
#: Pixels of a part's edge left out of its colour statistics (a 768 px canvas).
CORE_PX = 4
#: Bins along a limb.
BINS = 10
#: The gap between the legs is cloth (a skirt, a dress) when at least this share of it is in the mask.
GAP_FILLED = 0.5
#: Two garment colours are "the same cloth" below this CIELAB distance.
SAME_CLOTH = 14.0
#: Width of hair beside the jaw (and the neck), as a share of the head's width, that reads as hair hanging there.
HAIR_SHARE = 0.25
#: CIELAB distance (lightness counted in full) below which the top of the head is bare skin.
BALD_DISTANCE = 10.0
#: Fine texture (:func:`_roughness`, CIELAB lightness) from which the top of the head is hair, whatever its
#: colour: bare scalps measure ~0.2, hair 1.3-5 on the synthetic people, 768 px photos.
HAIR_TEXTURE = 0.8
#: Sleeves at least this long (0 shoulder, 1 wrist) are long sleeves.
LONG_SLEEVE = 0.6


@dataclass
class Outfit:
    """The decisions (:attr:`garments`, inner first) and the cues they came from."""

    garments: list[GarmentSpec]
    skin_rgb: tuple[int, int, int]
    hair_rgb: tuple[int, int, int] | None
    cues: dict[str, float | str] = field(default_factory=dict)

    def labels(self) -> dict[str, str]:
        return labels([(g.kind, g.style) for g in self.garments])

    def summary(self) -> str:
        return ", ".join(f"{g.kind}: {g.style}" for g in self.garments) or "nothing"


def labels(choices: list[tuple[str, str]]) -> dict[str, str]:
    """What a front photo can show of an outfit, as labels decisions are scored on: ``top`` (top / coat /
    dress), ``sleeves`` (short / long), ``bottom`` (trousers / shorts / skirt; absent under a dress or a
    coat), ``shoes`` (yes / no), ``hair`` (none / short / long)."""
    from ..garments.styles import DEFAULTS

    styles = dict(choices)
    top = styles.get("top", "")
    out = {"top": top if top in ("coat", "dress") else "top"}
    if top:
        out["sleeves"] = "long" if DEFAULTS[("top", top)]["sleeve"] >= LONG_SLEEVE else "short"
    if top not in ("coat", "dress"):
        out["bottom"] = styles.get("bottom", "none")
    out["shoes"] = "yes" if "shoes" in styles else "no"
    hair = styles.get("hair", "")
    out["hair"] = "none" if not hair else "long" if hair in ("bob", "long") else "short"
    return out


@dataclass
class _Pixels:
    """The person's pixels with what the body says about them."""

    lab: np.ndarray
    """(H, W, 3) CIELAB of the image."""
    person: np.ndarray
    """(H, W) bool: inside the mask (eroded a little)."""
    part: np.ndarray
    """(H, W) int: the body part under the pixel, -1 where no body."""
    side: np.ndarray
    arm_t: np.ndarray
    leg_t: np.ndarray
    skin: np.ndarray | None = None
    """(H, W) bool: skin-coloured (set once the skin colour is known)."""

    def of(self, *names: str) -> np.ndarray:
        return self.person & np.isin(self.part, [PARTS.index(n) for n in names])

    def core(self, *names: str) -> np.ndarray:
        """:meth:`of`, away from the parts' edges (:data:`CORE_PX`): a fit a little off puts a limb's edge
        over the torso or the background, whose colours are not the limb's."""
        import cv2

        inside = np.isin(self.part, [PARTS.index(n) for n in names]).astype(np.uint8)
        size = 2 * CORE_PX + 1
        return self.person & (cv2.erode(inside, np.ones((size, size), np.uint8)) > 0)


def read_outfit(image: np.ndarray, mask: np.ndarray, vertices: np.ndarray, frame: BodyFrame, camera: Camera,
                rasterizer: Rasterizer | None = None) -> Outfit:
    """The outfit of the person in ``image`` ((H, W, 3) uint8; ``mask`` (H, W) in [0, 1]), whose body
    ``frame`` (its labels; any pose) was fitted as ``vertices`` (N, 3) seen by ``camera``."""
    # 1. Every person pixel with the body part under it, and the skin colour from the lower face.
    px = _pixels(image, mask, vertices, frame, camera, rasterizer or get_rasterizer("torch"))
    skin_lab = _skin_colour(px)
    px.skin = _distance(px.lab, skin_lab) < SKIN_DISTANCE
    cues: dict[str, float | str] = {}
    # 2. Sleeves and legs: where each limb turns bare.
    sleeve = _covered_length(px, ("upper_arm", "forearm"), px.arm_t)
    legs = _covered_length(px, ("thigh", "shin"), px.leg_t)
    cues |= {"sleeve": sleeve, "legs": legs}
    # 3-4. Skirt or trousers from the gap between the legs; dress or coat from the cloth on the thighs.
    torso = px.core("torso")
    cloth = float((~px.skin[torso]).mean()) if torso.any() else 0.0
    cues["torso_cloth"] = cloth
    top_lab = _median(px.lab[torso & ~px.skin]) if cloth >= BARE_SHARE else None  # a bare chest: no top
    thigh_lab = _median(px.lab[px.core("thigh") & (px.leg_t < 0.35) & ~px.skin])
    shin_lab = _median(px.lab[px.core("shin") & (px.leg_t > 0.6) & (px.leg_t < 0.9) & ~px.skin])
    gap = _gap_filled(px)
    one_cloth = thigh_lab is not None and shin_lab is not None and _distance(thigh_lab, shin_lab) < SAME_CLOTH
    if gap >= GAP_FILLED and legs >= 0.9 and one_cloth:  # one cloth to the ankles: a long skirt fills between
        gap = min(gap, _gap_filled(px, "shin", (0.55, 0.85)))  # the shins too, loose trousers do not
    same = top_lab is not None and thigh_lab is not None and _distance(thigh_lab, top_lab) < SAME_CLOTH
    cues |= {"gap_filled": gap, "thighs_like_top": float(same)}
    garments: list[GarmentSpec] = []
    rgb = {name: _rgb(lab) for name, lab in (("top", top_lab), ("thigh", thigh_lab), ("shin", shin_lab))}
    # One cloth from the chest down over the legs with a skirt's silhouette (legs apart: cloth between them;
    # legs together: bare below the hem) is a dress, or a coat when its sleeves are long and it reaches past
    # the thighs (over trousers when the shins show another cloth); the same colour to the ankles is trousers
    # and a top (overalls, a suit).
    skirtlike = gap >= GAP_FILLED or (gap < 0 and legs < 0.75)
    reach = _top_reach(px, top_lab) if same else 0.0
    cues["top_reach"] = reach
    other_shins = shin_lab is not None and top_lab is not None and _distance(shin_lab, top_lab) >= SAME_CLOTH
    if same and skirtlike and (legs < 0.9 or other_shins) and sleeve >= LONG_SLEEVE and reach >= 0.3:
        garments.append(_spec("top", "coat", rgb["top"], length=float(np.clip(reach, 0.2, 0.9)), sleeve=sleeve))
        if legs >= 0.85 and other_shins:
            garments.insert(0, _spec("bottom", "trousers", rgb["shin"], length=1.0))
    elif same and skirtlike and legs < 0.9:
        garments.append(_spec("top", "dress", rgb["top"], length=float(np.clip(legs, 0.15, 1.0)), sleeve=sleeve))
    else:
        if legs >= 0.15 and thigh_lab is not None:
            style = "skirt" if gap >= GAP_FILLED else "trousers" if legs >= 0.75 else "shorts"
            garments.append(_spec("bottom", style, rgb["thigh"], length=float(np.clip(legs, 0.2, 1.0))))
        if top_lab is not None:
            style = "longsleeve" if sleeve >= LONG_SLEEVE else "tshirt"
            garments.append(_spec("top", style, rgb["top"], sleeve=max(sleeve, 0.12)))
    # 5. Shoes.
    feet = px.of("foot")
    if feet.sum() >= 20 and px.skin[feet].mean() < BARE_SHARE:
        foot_lab = _median(px.lab[feet & ~px.skin])
        boots = (not any(g.kind == "bottom" and g.style == "trousers" for g in garments) and legs < 0.75
                 and _boot_shaft(px, foot_lab))
        garments.append(_spec("shoes", "boots" if boots else "sneakers", _rgb(foot_lab)))
    # 6. Hair.
    hair_lab, hair_reach = _hair(px, skin_lab)
    cues["hair_reach"] = hair_reach
    if hair_lab is not None:
        style = "long" if hair_reach >= 2 * HAIR_SHARE else "bob" if hair_reach >= HAIR_SHARE else "short"
        garments.append(_spec("hair", style, _rgb(hair_lab)))
    return Outfit(garments=garments, skin_rgb=_rgb(skin_lab) or (200, 160, 130),
                  hair_rgb=_rgb(hair_lab) if hair_lab is not None else None, cues=cues)


# --------------------------------------------------------------------------- the cues


def _pixels(image: np.ndarray, mask: np.ndarray, vertices: np.ndarray, frame: BodyFrame, camera: Camera,
            rast: Rasterizer) -> _Pixels:
    import cv2
    import torch

    h, w = mask.shape
    cam, _, _ = camera_for_size(camera, (h, w))
    screen = np.asarray(cam.to_screen(np.asarray(vertices, np.float64)), np.float32)
    screen = torch.as_tensor(screen, device=rast.device)
    with torch.no_grad():
        frags = rast.rasterize(screen, torch.as_tensor(frame.faces, device=rast.device), h, w,
                               perspective=cam.is_perspective)
    tri = frags.tri_id.cpu().numpy()
    bary = frags.bary.cpu().numpy()
    covered = tri >= 0
    corners = frame.faces[np.where(covered, tri, 0)]  # (H, W, 3)
    nearest = np.take_along_axis(corners, bary.argmax(-1)[..., None], -1)[..., 0]
    part = np.where(covered, frame.part[nearest], -1)

    def along(t: np.ndarray) -> np.ndarray:
        values = np.nan_to_num(t, nan=-1.0)[corners]
        return np.where(covered, (values * bary).sum(-1), np.nan)

    person = cv2.erode((mask >= 0.5).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    lab = cv2.cvtColor(np.ascontiguousarray(image[..., :3]).astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    return _Pixels(lab=lab, person=person, part=part, side=np.where(covered, frame.side[nearest], 0),
                   arm_t=along(frame.arm_t), leg_t=along(frame.leg_t))


def _skin_colour(px: _Pixels) -> np.ndarray:
    """The lower face's colour: the head's pixels between 55 % and 85 % of its height (crown to chin), in the
    middle half of its width; the median after dropping the darkest and lightest (eyes, teeth, shadow)."""
    head = px.of("head")
    rows, cols = np.nonzero(head)
    if len(rows) < 30:  # the face is not in the photo (cropped, seen from behind): the hands', else a mid tone
        hands = px.core("hand")
        return np.median(px.lab[hands], axis=0) if hands.sum() >= 30 else np.array([65.0, 14.0, 18.0], np.float32)
    top, bottom = rows.min(), rows.max()
    left, right = np.percentile(cols, 25), np.percentile(cols, 75)
    band = head.copy()
    y, x = np.mgrid[0:head.shape[0], 0:head.shape[1]]
    band &= (y >= top + 0.55 * (bottom - top)) & (y <= top + 0.85 * (bottom - top)) & (x >= left) & (x <= right)
    values = px.lab[band] if band.sum() >= 10 else px.lab[head]
    lightness = values[:, 0]
    keep = (lightness >= np.percentile(lightness, 20)) & (lightness <= np.percentile(lightness, 90))
    return np.median(values[keep], axis=0)


def _covered_length(px: _Pixels, parts: tuple[str, ...], t: np.ndarray) -> float:
    """Where along the limbs (0 at the root joint, 1 at the end) the cloth ends; 1.0 when it covers the
    limb, 0.0 when the whole limb is bare. Bins with few pixels are skipped; the two sides are pooled."""
    on = px.core(*parts) & np.isfinite(t)
    tt = np.clip(t[on], 0.0, 0.999)
    bins = (tt * BINS).astype(int)
    skin = px.skin[on]
    count = np.bincount(bins, minlength=BINS)
    bare = np.bincount(bins, weights=skin.astype(float), minlength=BINS) / np.maximum(count, 1)
    seen = count >= max(8, 0.02 * len(tt))
    if not seen.any():
        return 1.0
    # From the root down: the cloth ends at the first bare bin that the next seen bin confirms (from the root,
    # so shoes and boots over the ankles do not read as trousers).
    order = np.flatnonzero(seen)
    for i, b in enumerate(order):
        if bare[b] >= BARE_SHARE and (i + 1 == len(order) or bare[order[i + 1]] >= BARE_SHARE):
            return float((b + 1.0 - bare[b]) / BINS)  # the cloth's share of the first bare bin
    return 1.0


def _gap_filled(px: _Pixels, part: str = "thigh", span: tuple[float, float] = (0.2, 0.5)) -> float:
    """Share of the pixels between the two legs' inner edges (rows where both legs' ``part`` lies within
    ``span`` of the leg: by default from below a crotch seam, which loose shorts close, to the knees) that
    are in the mask; -1 when the legs touch in the image all the way (no gap to judge)."""
    limb = px.part == PARTS.index(part)
    left_leg, right_leg = limb & (px.side > 0), limb & (px.side < 0)
    knee = (px.leg_t >= span[0]) & (px.leg_t <= span[1])
    inside = total = 0
    for row in np.flatnonzero((left_leg & knee).any(1) & (right_leg & knee).any(1)):
        a_cols, b_cols = np.flatnonzero(left_leg[row] & knee[row]), np.flatnonzero(right_leg[row] & knee[row])
        # The subject's left leg is on the image's right (the person faces the camera).
        lo, hi = (b_cols.max(), a_cols.min()) if b_cols.mean() < a_cols.mean() else (a_cols.max(), b_cols.min())
        if hi - lo - 1 < max(3, 0.3 * min(len(a_cols), len(b_cols))):  # too narrow a gap to tell cloth from legs
            continue
        between = px.part[row, lo + 1:hi] < 0
        inside += int((px.person[row, lo + 1:hi] & between).sum())
        total += int(between.sum())
    return inside / total if total >= 30 else -1.0


def _top_reach(px: _Pixels, top_lab: np.ndarray) -> float:
    """How far down the legs (hip -> ankle) the top's cloth reaches (a coat's length)."""
    legs = px.of("thigh", "shin") & np.isfinite(px.leg_t) & ~px.skin
    like = legs & (_distance(px.lab, top_lab) < SAME_CLOTH)
    t = np.clip(px.leg_t[legs], 0, 0.999)
    share = (np.bincount((t * BINS).astype(int), weights=like[legs].astype(float), minlength=BINS)
             / np.maximum(np.bincount((t * BINS).astype(int), minlength=BINS), 1))
    reach = 0.0
    for b in range(BINS):
        reach += min(share[b], 1.0) / BINS
        if share[b] < 0.5:  # the hem's bin: its covered share counted, then stop
            break
    return reach


def _boot_shaft(px: _Pixels, foot_lab: np.ndarray | None) -> bool:
    """The feet's cloth runs up the lower shins."""
    if foot_lab is None:
        return False
    shins = px.of("shin") & (px.leg_t > 0.75)
    if shins.sum() < 20:
        return False
    return bool((~px.skin[shins] & (_distance(px.lab[shins], foot_lab) < SAME_CLOTH)).mean() > 0.5)


def _hair(px: _Pixels, skin_lab: np.ndarray) -> tuple[np.ndarray | None, float]:
    """``(hair colour or None, reach)``: reach is the share of hair beside the jaw, plus the share beside the
    neck when the jaw has hair (so >= 2 x :data:`HAIR_SHARE` reads as long hair)."""
    head = px.of("head")
    rows, cols = np.nonzero(head)
    if len(rows) < 30:
        return None, 0.0
    top, bottom = rows.min(), rows.max()
    left, right = cols.min(), cols.max()
    height = max(bottom - top, 1)
    y, x = np.mgrid[0:head.shape[0], 0:head.shape[1]]
    # Hair: the top of the head where it is not skin, and what of the mask around the head is not body.
    assert px.skin is not None
    crown = head & (y <= top + 0.3 * height)
    if crown.sum() < 10:
        return None, 0.0
    pad = int(0.35 * (right - left))
    around = (px.person & (px.part < 0) & (y >= top - height) & (y <= bottom + height)
              & (x >= left - pad) & (x <= right + pad))
    # Volume: mask above the scalp that is not body. Without it, a top of the head that is mostly skin and
    # has the face's colour (lightness included: hair as brown as the skin is darker or lighter) is bare.
    volume = around & (y <= top + 0.3 * height)
    has_volume = volume.sum() >= 0.05 * head.sum()
    # Strands: hair as brown as the skin still has their fine light-and-dark texture, which skin has not.
    textured = _roughness(px.lab[..., 0], crown) >= HAIR_TEXTURE
    bare = (~px.skin[crown]).mean() < BARE_SHARE
    if (not has_volume and not textured and bare
            and np.sqrt(((np.median(px.lab[crown], axis=0) - skin_lab) ** 2).sum()) < BALD_DISTANCE):
        return None, 0.0
    unlike_skin = crown & ~px.skin
    if ((crown if textured else unlike_skin) | around).sum() < 0.08 * head.sum():
        return None, 0.0
    # Its colour from the crown's pixels unlike skin when there are some (the darker strands of brown hair).
    colour_from = unlike_skin if unlike_skin.sum() >= 20 else crown if textured else volume | around
    hair_lab = _median(px.lab[colour_from])
    if hair_lab is None or (_distance(hair_lab, skin_lab) < SKIN_DISTANCE and not has_volume and not textured):
        return None, 0.0
    # Length: hair hanging beside the jaw (a bob, long hair) and beside the neck below the chin (long hair):
    # hair-coloured mask pixels outside the body there (the body's own shaded skin can be hair-coloured),
    # per row, as a share of the head's width.
    width = max(right - left, 1)
    hanging = px.person & (px.part < 0) & (_distance(px.lab, hair_lab) < SAME_CLOTH * 1.5)
    hanging &= (x >= left - pad) & (x <= right + pad)
    rows_jaw = slice(int(top + 0.6 * height), int(top + 0.95 * height) + 1)
    rows_neck = slice(int(bottom) + 1, int(bottom + 0.35 * height) + 1)
    jaw_share = float(hanging[rows_jaw].sum(1).mean() / width) if hanging[rows_jaw].size else 0.0
    below_share = float(hanging[rows_neck].sum(1).mean() / width) if hanging[rows_neck].size else 0.0
    reach = jaw_share + below_share if jaw_share >= HAIR_SHARE else jaw_share
    return hair_lab, reach


# --------------------------------------------------------------------------- small helpers


def _roughness(lightness: np.ndarray, region: np.ndarray) -> float:
    """Median fine texture of ``region``: |lightness - its Gaussian blur (sigma 1.5 px)|, CIELAB units."""
    import cv2

    if region.sum() < 10:
        return 0.0
    fine = np.abs(lightness - cv2.GaussianBlur(lightness, (0, 0), 1.5))
    return float(np.median(fine[region]))


def _spec(kind: str, style: str, rgb: tuple[int, int, int] | None, **values: float) -> GarmentSpec:
    """The library's spec of the style, with the photo's colour and cues (no seed jitter; looseness 0: the
    photo's silhouette shapes the garment)."""
    spec = garment_spec(kind, style, color=rgb)
    return replace(spec, looseness=0.0, **values)


def skin_like(image: np.ndarray, skin_rgb: tuple[int, int, int] | np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels of ``image`` (H, W, 3+) uint8 that have the colour of skin ``skin_rgb``, by the
    same measure that reads sleeve lengths (CIELAB, lightness weighed less)."""
    import cv2

    lab = cv2.cvtColor(np.ascontiguousarray(image[..., :3]).astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    ref = cv2.cvtColor(np.asarray(skin_rgb, np.float32).reshape(1, 1, 3) / 255.0, cv2.COLOR_RGB2LAB)[0, 0]
    return _distance(lab, ref) < SKIN_DISTANCE


def _distance(lab: np.ndarray, ref: np.ndarray) -> np.ndarray:
    d = lab - np.asarray(ref, np.float32)
    return np.sqrt((d[..., 0] / LIGHTNESS_SCALE) ** 2 + d[..., 1] ** 2 + d[..., 2] ** 2)


def _median(values: np.ndarray) -> np.ndarray | None:
    return np.median(values, axis=0) if len(values) >= 10 else None


def _rgb(lab: np.ndarray | None) -> tuple[int, int, int] | None:
    import cv2

    if lab is None:
        return None
    rgb = cv2.cvtColor(np.asarray(lab, np.float32).reshape(1, 1, 3), cv2.COLOR_LAB2RGB)[0, 0]
    return tuple(int(c) for c in np.clip(rgb * 255 + 0.5, 0, 255))  # type: ignore[return-value]
