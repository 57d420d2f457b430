"""Synthetic CLOTHED people with known geometry and their true six views: test data for the views path.

Why: the multiview path (PSHuman's six views -> carving) must recover what a tight parametric body cannot:
loose clothes, a skirt that does not follow the legs, a hood. Painted clothes (:mod:`.synthetic`) have no
geometry, so quality there can only be measured on people whose garments are real surfaces. Each person
here is an anny body in a mildly randomised A-pose wearing, by choice:

* ``"shirt"`` / ``"trousers"``: loose clothes, the body surface pushed outward along its normals by a few
  centimetres where the garment is, smoothly (trousers flare towards the ankles);
* ``"skirt"``: a closed flared tube hanging from the hips to about the knees, wider than the legs at every
  height, so it fills the gap between them (built on the posed body: not skinned, it is test data);
* ``"hood"``: a closed shell of ~1.5 cm around the back and top of the head, open at the face.

The result is ONE triangle mesh: the concatenation of closed parts (the inflated body, the skirt, the hood),
whose union's outer surface is what views see. Legs inside the skirt and the head inside the hood are still in
the mesh; :attr:`ClothedPerson.outer_faces` marks the faces seen by at least one of the six views, which is
the surface to measure Chamfer distance and normal consistency against. World: metres, Z up, facing -Y, the
vertical axis through the body's centre at x = y = 0, the soles at z = 0 (the world :func:`read_views` builds).

:func:`render_views` renders the six views in the folder convention of :mod:`strata.core.render.views_io`
(orthographic, shared scale, normals in the front camera's frame); :func:`write_views` saves them. Everything
derives from one seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..body.base import BodyModel
from ..garments.piece import outward
from ..render.camera import OrthographicCamera
from ..render.views_io import VIEW_NAMES, VIEW_WEIGHTS, normals_from_world, views_camera, write_views
from ..views import View
from .posing import Poser
from .synthetic import random_shape

#: Garments :func:`make_clothed_person` can put on.
GARMENTS: tuple[str, ...] = ("shirt", "trousers", "skirt", "hood")
#: Share of the image height the clothed person spans in rendered views.
FILL = 0.88


@dataclass
class ClothedPerson:
    """One clothed person: the true geometry (see the module docstring for its world)."""

    vertices: np.ndarray
    """(N, 3) float32."""
    faces: np.ndarray
    """(F, 3) int64, counter-clockwise seen from outside (every part is closed and outward-wound)."""
    vertex_colors: np.ndarray
    """(N, 3) uint8 albedo."""
    face_colors: np.ndarray
    """(F, 3) uint8 albedo (mean of the corners)."""
    parts: dict[str, tuple[int, int]]
    """Part name ("body", "skirt", "hood") -> its [start, stop) range of faces."""
    garments: tuple[str, ...]
    height_m: float
    """The body's rest stature (what a user would type as their height)."""
    extent_m: float
    """The clothed mesh's vertical extent, crown (or hood) to sole: what a front mask's height shows."""
    body_vertices: np.ndarray
    """(Nb, 3) float32 the posed body before any garment (same world), for body-fit checks."""
    shape: np.ndarray
    pose: np.ndarray
    seed: int = 0
    outer_faces: np.ndarray | None = None
    """(F,) bool, faces seen by at least one of the six views (set by :func:`render_views`)."""
    info: dict[str, object] = field(default_factory=dict)


# --------------------------------------------------------------------------- mesh helpers


def _vertex_normals(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals, numpy."""
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    vn = np.zeros_like(v)
    for k in range(3):
        np.add.at(vn, f[:, k], fn)
    return vn / np.maximum(np.linalg.norm(vn, axis=1, keepdims=True), 1e-12)


def _smooth(values: np.ndarray, faces: np.ndarray, iterations: int) -> np.ndarray:
    """Average a per-vertex field with its mesh neighbours ``iterations`` times (so garment edges taper)."""
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    edges = np.concatenate([edges, edges[:, ::-1]])
    deg = np.bincount(edges[:, 0], minlength=len(values)).astype(np.float64)
    out = values.astype(np.float64)
    for _ in range(iterations):
        acc = np.zeros_like(out)
        np.add.at(acc, edges[:, 0], out[edges[:, 1]])
        out = 0.5 * out + 0.5 * acc / np.maximum(deg, 1)[:, None] if out.ndim == 2 else \
            0.5 * out + 0.5 * acc / np.maximum(deg, 1)
    return out


def _grid_faces(rows: int, cols: int, offset: int, wrap: bool) -> np.ndarray:
    """Quads (as two triangles) of a rows x cols vertex grid numbered row-major from ``offset``."""
    out = []
    last = cols if wrap else cols - 1
    for i in range(rows - 1):
        for j in range(last):
            a, b = offset + i * cols + j, offset + i * cols + (j + 1) % cols
            c, d = a + cols, b + cols
            out += [(a, c, b), (b, c, d)]
    return np.array(out, np.int64).reshape(-1, 3)


# --------------------------------------------------------------------------- body, pose, classes


def _pose(body: BodyModel, shape: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An A-pose with random arm angles and legs a little apart (so a tight body shows a gap between them)."""
    poser = Poser(body.rest_skeleton(shape), body.pose_preset("A", shape))
    for side, sign in (("L", 1.0), ("R", -1.0)):
        down = np.radians(rng.uniform(35.0, 55.0))
        arm = np.array([sign * np.cos(down), rng.uniform(-0.15, 0.1), -np.sin(down)])
        upper, fore, hand = body.arm_chain(side)
        poser.aim(upper, fore, arm)
        poser.aim(fore, hand, arm)
        spread = np.radians(rng.uniform(6.0, 10.0))
        leg = np.array([sign * np.sin(spread), 0.0, -np.cos(spread)])
        poser.aim(f"upperleg01.{side}", f"lowerleg01.{side}", leg)
        poser.aim(f"lowerleg01.{side}", f"foot.{side}", leg)
        poser.aim(f"foot.{side}", f"toe3-1.{side}", np.array([0.0, -0.92, -0.39]))
    return poser.as_float32()


def _vertex_classes(body: BodyModel) -> np.ndarray:
    """(V,) per body vertex: 0 bare skin, 1 shirt region, 2 trousers region, 3 shoes, by its main skinning
    joint; the shirt's trunk part (spine joints) is 4 so that the skirt can enclose it without the arms."""
    idx, _ = body.skin_weights(1)
    names = body.joint_names

    def cls(name: str) -> int:
        if name.startswith("spine"):
            return 4
        if name.startswith(("clavicle", "shoulder", "upperarm", "lowerarm", "neck01")):
            return 1
        if name.startswith(("root", "pelvis", "upperleg", "lowerleg")):
            return 2
        if name.startswith(("foot", "toe")):
            return 3
        return 0

    per_vertex = np.array([cls(names[int(j)]) for j in idx[:, 0]], np.int64)
    parts = body.face_parts()
    if parts is not None:  # head, hands, eyes stay bare whatever their weights say
        part_names, part_index = parts
        bare = np.isin(part_index, [i for i, n in enumerate(part_names) if n not in ("body", "foot.L", "foot.R")])
        per_vertex[np.unique(body.faces[bare])] = 0
    return per_vertex


def _head_vertices(body: BodyModel, verts: np.ndarray) -> np.ndarray:
    """The head part's vertices (anny's "head" face part), falling back to the top 13% of the body."""
    parts = body.face_parts()
    if parts is not None and "head" in parts[0]:
        return verts[np.unique(body.faces[parts[1] == parts[0].index("head")])]
    z = verts[:, 2]
    return verts[z > z.min() + 0.87 * (z.max() - z.min())]


# --------------------------------------------------------------------------- garments


def _inflate(verts: np.ndarray, faces: np.ndarray, classes: np.ndarray, garments: Sequence[str],
             rng: np.random.Generator) -> np.ndarray:
    """Loose shirt/trousers: push clothed vertices out along their normals, tapered smoothly at the edges."""
    z = verts[:, 2]
    height = float(z.max() - z.min())
    offset = np.zeros(len(verts))
    if "shirt" in garments:
        offset[(classes == 1) | (classes == 4)] = rng.uniform(0.02, 0.035)
    if "trousers" in garments:
        t = np.clip(1.0 - z / (0.5 * height), 0.0, 1.0)  # 0 at the hips, 1 at the soles: flare downward
        offset[classes == 2] = (rng.uniform(0.02, 0.03) + rng.uniform(0.01, 0.03) * t)[classes == 2]
    offset = _smooth(offset, faces, 6)
    return (verts + offset[:, None] * _vertex_normals(verts, faces)).astype(np.float32)


def _sector_radius(points: np.ndarray, centre: np.ndarray, sectors: int) -> np.ndarray:
    """(sectors,) largest distance from ``centre`` (xy) of ``points`` in each angular sector, widened by one
    sector each side; empty sectors take their neighbours' value (0 if all are empty)."""
    d = points[:, :2] - centre[None]
    ang = (np.arctan2(d[:, 1], d[:, 0]) % (2 * np.pi)) / (2 * np.pi) * sectors
    r = np.zeros(sectors)
    np.maximum.at(r, ang.astype(np.int64) % sectors, np.linalg.norm(d, axis=1))
    return np.max([np.roll(r, -1), r, np.roll(r, 1)], axis=0)


def _skirt(verts: np.ndarray, classes: np.ndarray, joints: np.ndarray, body: BodyModel,
           rng: np.random.Generator, sectors: int = 64, levels: int = 14) -> tuple[np.ndarray, np.ndarray]:
    """A closed flared tube from just above the hips to below the knees, enclosing the legs at every height.

    Why the body profile: a plain cone would cut through spread thighs; each ring is at least the lower
    body's own radius in that direction plus a clearance, and never narrower than the ring above, so the skirt
    hangs instead of hugging the legs and closes the gap between them (its bottom is capped)."""
    names = body.joint_names
    hips = np.mean([joints[names.index(f"upperleg01.{s}"), :3, 3] for s in ("L", "R")], axis=0)
    knees = np.mean([joints[names.index(f"lowerleg01.{s}"), :3, 3] for s in ("L", "R")], axis=0)
    z_top = float(hips[2] + rng.uniform(0.06, 0.1))
    z_hem = float(knees[2] - rng.uniform(0.0, 0.12))
    lower = verts[(classes == 2) | (classes == 4)]  # trunk and legs: the hands hang at hip height, stay out
    centre = hips[:2].astype(np.float64)
    zs = np.linspace(z_top, z_hem, levels)
    band = 0.6 * abs(z_top - z_hem) / (levels - 1) + 0.01
    flare = rng.uniform(0.04, 0.12)
    rings = []
    prev = np.zeros(sectors)
    for m, z in enumerate(zs):
        r = _sector_radius(lower[np.abs(lower[:, 2] - z) < band], centre, sectors) + 0.012
        if m > 0:
            r = np.maximum(r, prev + flare / (levels - 1))  # flare out, never narrower than above
        r = np.maximum(np.convolve(np.r_[r[-2:], r, r[:2]], np.ones(5) / 5, "valid"), r - 0.005)
        prev = r
        a = np.arange(sectors) / sectors * 2 * np.pi
        rings.append(np.stack([centre[0] + r * np.cos(a), centre[1] + r * np.sin(a), np.full(sectors, z)], -1))
    v = np.concatenate([np.concatenate(rings), [[*centre, z_top], [*centre, z_hem]]]).astype(np.float32)
    f = [_grid_faces(levels, sectors, 0, wrap=True)]
    top, bottom = len(v) - 2, len(v) - 1
    last = (levels - 1) * sectors
    for j in range(sectors):
        k = (j + 1) % sectors
        f.append(np.array([[top, k, j], [bottom, last + j, last + k]], np.int64))
    faces = np.concatenate(f)
    return v, outward(v, faces)


def _hood(head: np.ndarray, rng: np.random.Generator, rows: int = 18, cols: int = 36,
          thickness: float = 0.015) -> tuple[np.ndarray, np.ndarray]:
    """A closed shell around the back and top of the head, open at the face: an ellipsoid cap (polar angle
    0-120 deg from the top, azimuth +-125 deg around the back) with an inner wall ``thickness`` inside."""
    lo, hi = head.min(0), head.max(0)
    centre = (lo + hi) / 2 + np.array([0.0, 0.01, 0.0])
    axes = (hi - lo) / 2 * 1.12 + rng.uniform(0.025, 0.04)
    theta = np.radians(np.linspace(0.0, 120.0, rows))
    phi_max = np.radians(rng.uniform(115.0, 130.0))
    phi = np.linspace(-phi_max, phi_max, cols)
    th, ph = np.meshgrid(theta, phi, indexing="ij")
    d = np.stack([np.sin(th) * np.sin(ph), np.sin(th) * np.cos(ph), np.cos(th)], -1).reshape(-1, 3)  # 0 = back
    outer = centre + d * axes
    inner = centre + d * (axes - thickness)
    v = np.concatenate([outer, inner]).astype(np.float32)
    n = rows * cols
    f = [_grid_faces(rows, cols, 0, wrap=False), _grid_faces(rows, cols, n, wrap=False)[:, ::-1]]
    rim = [(rows - 1) * cols + j for j in range(cols)] + [i * cols + cols - 1 for i in range(rows - 1, -1, -1)]
    rim += [i * cols for i in range(rows)]  # bottom edge, then the two opening edges, as one open loop
    for a, b in zip(rim[:-1], rim[1:], strict=True):
        f.append(np.array([[a, b, a + n], [b, b + n, a + n]], np.int64))
    faces = np.concatenate(f)
    return v, outward(v, faces)


# --------------------------------------------------------------------------- the person


def _colours(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"skin": rng.uniform([150, 100, 80], [240, 200, 170]), "shirt": rng.uniform(30, 230, 3),
            "trousers": rng.uniform(20, 200, 3), "shoes": rng.uniform(10, 100, 3), "skirt": rng.uniform(30, 230, 3),
            "hood": rng.uniform(30, 230, 3), "stripe": rng.uniform(30, 230, 3)}


def make_clothed_person(body: BodyModel, seed: int, *,
                        garments: Sequence[str] = ("shirt", "trousers", "hood")) -> ClothedPerson:
    """A clothed person (module docstring), deterministic in ``seed``; ``garments`` from :data:`GARMENTS`
    (empty = the bare body, the "tight" reference case)."""
    import torch

    garments = tuple(garments)
    unknown = [g for g in garments if g not in GARMENTS]
    if unknown:
        raise ValueError(f"unknown garments {unknown}; choose from {GARMENTS}")
    rng = np.random.default_rng(seed)
    # 1. body: a random adult shape in a randomised A-pose
    shape, height = random_shape(body, rng)
    pose = _pose(body, shape, rng)
    with torch.no_grad():
        out = body.forward(shape[None], pose[None])
    bare = out.vertices[0].numpy().astype(np.float64)
    joints = out.joint_world[0].numpy().astype(np.float64)
    faces = np.asarray(body.faces, np.int64)
    classes = _vertex_classes(body)
    palette = _colours(rng)
    # 2. loose shirt/trousers as geometry
    dressed = _inflate(bare, faces, classes, garments, rng)
    shirt = palette["shirt"] if "shirt" in garments else palette["skin"]
    colour_of = np.array([palette["skin"], shirt, palette["trousers"] if "trousers" in garments else palette["skin"],
                          palette["shoes"], shirt])
    parts_v, parts_f, parts_c, names = [dressed], [faces], [colour_of[classes]], ["body"]
    # 3. skirt and hood as closed parts of their own
    if "skirt" in garments:
        v, f = _skirt(dressed, classes, joints, body, rng)
        stripes = (np.sin(v[:, 2] * 2 * np.pi / rng.uniform(0.05, 0.12)) > 0.3)[:, None]
        parts_v.append(v), parts_f.append(f), names.append("skirt")
        parts_c.append(np.where(stripes, palette["stripe"], palette["skirt"]))
    if "hood" in garments:
        v, f = _hood(_head_vertices(body, bare), rng)
        parts_v.append(v), parts_f.append(f), parts_c.append(np.broadcast_to(palette["hood"], v.shape))
        names.append("hood")
    # 4. one mesh, recentred: the vertical axis through the body's centre at x = y = 0, soles at z = 0
    offsets = np.cumsum([0] + [len(v) for v in parts_v])
    verts = np.concatenate(parts_v).astype(np.float64)
    all_faces = np.concatenate([f + o for f, o in zip(parts_f, offsets[:-1], strict=True)])
    lo, hi = verts.min(0), verts.max(0)
    shift = np.array([-(lo[0] + hi[0]) / 2, -(lo[1] + hi[1]) / 2, -lo[2]])
    verts += shift
    vcol = np.clip(np.concatenate(parts_c), 0, 255).astype(np.uint8)
    fcol = vcol[all_faces].astype(np.float32).mean(1).round().astype(np.uint8)
    counts = np.cumsum([0] + [len(f) for f in parts_f])
    return ClothedPerson(
        vertices=verts.astype(np.float32), faces=all_faces, vertex_colors=vcol, face_colors=fcol,
        parts={n: (int(counts[i]), int(counts[i + 1])) for i, n in enumerate(names)}, garments=garments,
        height_m=height, extent_m=float(hi[2] - lo[2]), body_vertices=(bare + shift).astype(np.float32),
        shape=np.asarray(shape, np.float32), pose=pose, seed=seed, info={"shift": shift.tolist()},
    )


# --------------------------------------------------------------------------- views


def views_cameras(person: ClothedPerson, size: int = 512, fill: float = FILL) -> dict[str, OrthographicCamera]:
    """The six true cameras: one scale so the person spans ``fill`` of the height (and fits the width at
    every azimuth), the body's vertical centre on the image's centre row."""
    v = person.vertices
    radius = float(np.linalg.norm(v[:, :2], axis=1).max())
    scale = min(fill * size / person.extent_m, 0.96 * size / (2 * radius))
    sole = size / 2.0 + scale * person.extent_m / 2.0
    return {n: views_camera(n, size, scale, sole) for n in VIEW_NAMES}


def _render_one(person: ClothedPerson, camera: OrthographicCamera, ssaa: int) -> tuple[np.ndarray, ...]:
    """(rgb uint8, alpha float, world normals float, visible face ids) of one view, supersampled ``ssaa``x."""
    import torch
    import torch.nn.functional as F

    from ..render.registry import get_rasterizer
    from ..render.shade import default_light, vertex_normals

    rast = get_rasterizer("torch")
    big = camera.resized(camera.width * ssaa, camera.height * ssaa)
    v = torch.as_tensor(person.vertices, dtype=torch.float32)
    f = torch.as_tensor(person.faces)
    frags = rast.rasterize(torch.as_tensor(big.to_screen(v)), f, big.height, big.width, perspective=False)
    cover = frags.mask.float()
    n = rast.interpolate(vertex_normals(v, f), frags)
    n = n / n.norm(dim=-1, keepdim=True).clamp_min(1e-12) * cover[..., None]
    albedo = rast.interpolate(torch.as_tensor(person.vertex_colors, dtype=torch.float32) / 255.0, frags)
    light = default_light(big)
    rgb = albedo * (0.35 + 0.65 * (n @ light).clamp_min(0.0))[..., None] * cover[..., None]

    def pool(x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x.permute(2, 0, 1)[None], ssaa)[0].permute(1, 2, 0)

    alpha = pool(cover[..., None])[..., 0]
    rgb = pool(rgb) / alpha.clamp_min(1e-6)[..., None]
    normal = pool(n)
    normal = normal / normal.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    seen = torch.unique(frags.tri_id[frags.tri_id >= 0]).numpy()
    rgb8 = (rgb.clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()
    return rgb8, alpha.numpy().astype(np.float32), normal.numpy().astype(np.float32), seen


def render_views(person: ClothedPerson, size: int = 512, *, ssaa: int = 2, fill: float = FILL) -> list[View]:
    """The six true views (order of :data:`VIEW_NAMES`) in the views-folder convention: colour (Lambert,
    camera-relative light), alpha = antialiased coverage, unit normals in the FRONT camera's frame, the true
    orthographic cameras. Also sets ``person.outer_faces`` (faces seen by any view, at ``ssaa`` x ``size``)."""
    cams = views_cameras(person, size, fill)
    views, seen = [], np.zeros(len(person.faces), bool)
    for name in VIEW_NAMES:
        rgb, alpha, normal, ids = _render_one(person, cams[name], ssaa)
        seen[ids] = True
        normal = normals_from_world(normal) * (alpha > 0)[..., None]
        views.append(View(name=name, image=rgb, mask=alpha, camera=cams[name], normal=normal,
                          weight=VIEW_WEIGHTS[name], exact_mask=True))
    person.outer_faces = seen
    return views


def write_person_views(person: ClothedPerson, folder: str | Path, size: int = 512, **kwargs: object) -> list[View]:
    """Render the six views and write them (with ``views.json``, the true cameras) for ``strata reconstruct
    --views``; returns the views."""
    views = render_views(person, size, **kwargs)  # type: ignore[arg-type]
    write_views(folder, views)
    return views


def outer_mesh(person: ClothedPerson) -> tuple[np.ndarray, np.ndarray]:
    """(vertices, faces) of the faces seen by any of the six views: the surface reconstructions are measured
    against (Chamfer, normal consistency); needs :func:`render_views` first. Vertices are not compacted."""
    if person.outer_faces is None:
        raise ValueError("outer_faces is unknown: call render_views(person) first")
    return person.vertices, person.faces[person.outer_faces]
