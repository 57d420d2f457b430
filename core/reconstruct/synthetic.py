"""Synthetic people with known geometry: the ground truth the reconstruction's quality is measured on.

Why synthetic: a photo of a real person comes with no 3D truth, so the fit's accuracy (silhouette IoU,
keypoint error, vertex error in centimetres) can only be measured on people we made ourselves. Each one is
an anny body with a random adult shape and a random, plausible pose (limbs aimed at random directions in
anatomical ranges, a yaw within +-30 deg), wearing "clothes" painted into its UV texture (shirt, trousers
or shorts, shoes, with stripes and noise so the pose detector sees a textured person, not a mannequin),
rendered with the project's own rasterizer (antialiased) by an orthographic (or mildly perspective) camera
onto a cluttered background: random gradients, shapes, lines and noise. Everything derives from one seed.

The same painted body, rendered, is also returned as an RGBA cut-out, so tests cover both the
segmentation path (RGB on clutter) and the alpha path.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..body.base import BodyModel
from ..render.camera import Camera, OrthographicCamera, orbit_rotation, perspective_view
from .posing import Poser, rot_x, rot_y, rot_z

#: Default synthetic photo size (height, width): portrait, like most full-body photos.
PHOTO_SIZE = (1024, 768)


@dataclass
class SyntheticPerson:
    """One synthetic photo and its ground truth (all world quantities in metres, Z up, feet at z = 0).

    Attributes:
        photo: (H, W, 3) uint8, the person composited onto a cluttered background.
        cutout: (H, W, 4) uint8, the same render with a transparent background.
        mask: (H, W) float32 in [0, 1], antialiased coverage (the cut-out's alpha).
        vertices: (N, 3) float32 posed vertices.
        joint_world: (J, 4, 4) float32 posed joint matrices.
        camera: the camera mapping world points to the photo's pixels.
        height_m: the body's rest stature (the "true height" a user would type).
        shape, pose, translation: the body parameters that made it.
        yaw_deg: the body's turn about the vertical axis (0 = facing the camera).
        texture: (T, T, 3) uint8 the painted UV texture.
    """

    photo: np.ndarray
    cutout: np.ndarray
    mask: np.ndarray
    vertices: np.ndarray
    joint_world: np.ndarray
    camera: Camera
    height_m: float
    shape: np.ndarray
    pose: np.ndarray
    translation: np.ndarray
    yaw_deg: float
    texture: np.ndarray
    seed: int = 0
    info: dict[str, object] = field(default_factory=dict)

    def png_bytes(self, cutout: bool = False) -> bytes:
        """The photo (or the cut-out) encoded as PNG, i.e. what a user would upload."""
        return encode_png(self.cutout if cutout else self.photo)


def encode_png(image: np.ndarray) -> bytes:
    """(H, W, 3|4) uint8 as PNG bytes (fast compression: test photos are written once, read once)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def random_shape(body: BodyModel, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """A plausible adult shape and its stature: phenotypes spread around anny's defaults (SMPL-X: betas drawn
    from its normal body space), height 1.52-1.95 m."""
    values = {
        "gender": rng.uniform(0.0, 1.0),
        "age": rng.uniform(0.55, 0.85),
        "muscle": rng.uniform(0.25, 0.75),
        "weight": rng.uniform(0.25, 0.75),
        "proportions": rng.uniform(0.25, 0.75),
    }
    shape = body.shape_vector(**{k: float(v) for k, v in values.items() if k in body.shape_names})
    # SMPL-X's betas (standard deviations of its body space) other than the one stature is solved with.
    betas = [i for i, n in enumerate(body.shape_names) if n.startswith("Shape") and n != body.height_parameter]
    shape[betas] = np.clip(rng.normal(0.0, 0.8, len(betas)), -2.0, 2.0)
    lo, hi = body.height_range(shape)
    target = float(np.clip(rng.uniform(1.52, 1.95), lo + 0.01, hi - 0.01))
    shape = body.solve_height(target, shape)
    return shape, float(body.measure_height(shape[None])[0])


def _limb_direction(side: float, abduction: float, flexion: float) -> np.ndarray:
    """Unit direction: straight down, swung ``abduction`` deg out to ``side`` (+1 = +X), then ``flexion``
    deg forward (towards -Y, the way the person faces)."""
    d = rot_y(-side * abduction) @ np.array([0.0, 0.0, -1.0])
    return rot_x(-flexion) @ d


def _bend(direction: np.ndarray, angle: float, towards: np.ndarray) -> np.ndarray:
    """Rotate ``direction`` by ``angle`` deg in the plane it spans with ``towards``."""
    d = direction / np.linalg.norm(direction)
    t = towards - d * float(towards @ d)
    if np.linalg.norm(t) < 1e-6:
        return d
    t /= np.linalg.norm(t)
    a = np.radians(angle)
    return np.cos(a) * d + np.sin(a) * t


def random_pose(body: BodyModel, shape: np.ndarray, rng: np.random.Generator, *, max_yaw: float = 30.0) -> np.ndarray:
    """A plausible standing pose (J, 3, 3): arms anywhere from by the sides to slightly above horizontal,
    some forward/backward swing, bent elbows, legs apart or stepping, bent knees, a small spine bend,
    a turned head and a yaw of the whole body within ``max_yaw`` degrees.

    Swings along the view axis (arm and thigh flexion, elbow and knee bends) are kept moderate: from one
    orthographic view they show only as foreshortening, and the issue's quality bar is for people
    standing for a photo, not for arbitrary poses.
    """
    poser = Poser.for_body(body, shape)
    forward = np.array([0.0, -1.0, 0.0])
    targets = {}
    for side, s in (("L", 1.0), ("R", -1.0)):
        upper = _limb_direction(s, rng.uniform(12.0, 95.0), rng.uniform(-10.0, 25.0))
        fore = _bend(upper, rng.uniform(0.0, 60.0), forward + np.array([0.0, 0.0, 0.3]))
        thigh = _limb_direction(s, rng.uniform(0.0, 14.0), rng.uniform(-5.0, 10.0))
        shin = _bend(thigh, rng.uniform(0.0, 15.0), -forward)
        targets |= {f"upperarm01.{side}": upper, f"lowerarm01.{side}": fore}
        targets |= {f"upperleg01.{side}": thigh, f"lowerleg01.{side}": shin}
    # Spine and head first (their children, the arms, are aimed afterwards in world space).
    poser.rotate_world("spine03", rot_x(rng.uniform(-6.0, 8.0)) @ rot_y(rng.uniform(-6.0, 6.0)))
    poser.rotate_world("spine01", rot_z(rng.uniform(-8.0, 8.0)))
    poser.rotate_world("neck01", rot_x(rng.uniform(-8.0, 12.0)))
    poser.rotate_world("head", rot_z(rng.uniform(-18.0, 18.0)) @ rot_y(rng.uniform(-8.0, 8.0)))
    poser.aim_limbs(targets)
    # Keep the soles roughly level: undo the shin's tilt on the feet.
    for side in ("L", "R"):
        poser.aim(f"foot.{side}", f"toe3-1.{side}", np.array([0.0, -0.92, -0.39]))
    poser.rotate_world("root", rot_z(rng.uniform(-max_yaw, max_yaw)))
    return poser.as_float32()


def _garment_faces(body: BodyModel, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(F,) garment id per face (0 skin, 1 shirt, 2 trousers, 3 shoes) and the random colours."""
    idx, _ = body.skin_weights(1)
    names = body.joint_names
    main = [names[int(j)] for j in idx[:, 0]]
    long_sleeves = rng.random() < 0.5
    shorts = rng.random() < 0.35

    def garment(name: str) -> int:
        if name.startswith(("spine", "clavicle", "shoulder", "upperarm", "neck01")):
            return 1
        if name.startswith("lowerarm"):
            return 1 if long_sleeves else 0
        if name.startswith(("root", "pelvis", "upperleg")):
            return 2
        if name.startswith("lowerleg"):
            return 0 if shorts else 2
        if name.startswith(("foot", "toe")):
            return 3
        return 0

    per_vertex = np.array([garment(n) for n in main], np.int64)
    per_face = np.array([np.bincount(row, minlength=4).argmax() for row in per_vertex[body.faces]], np.int64)
    parts = body.face_parts()
    if parts is not None:  # heads, hands and eyes stay skin whatever their weights say
        part_names, part_index = parts
        bare = [i for i, n in enumerate(part_names) if n not in ("body", "foot.L", "foot.R")]
        per_face[np.isin(part_index, bare)] = 0
    palette = {
        "shirt": rng.uniform(20, 235, 3),
        "trousers": rng.uniform(15, 200, 3),
        "shoes": rng.uniform(10, 120, 3),
        "stripe": rng.uniform(20, 235, 3),
    }
    return per_face, palette


def paint_texture(body: BodyModel, rng: np.random.Generator, size: int = 1024) -> np.ndarray:
    """Skin texture of a random tone with painted clothes (stripes, noise), (size, size, 3) uint8."""
    from ..render.texture import rasterize_uv

    tex = body.skin_texture(tone=float(rng.uniform(0.05, 0.95)), size=size).astype(np.float32)
    garments, palette = _garment_faces(body, rng)
    frags = rasterize_uv(body.uvs, body.uv_faces, size)
    tri = frags.tri_id.numpy()
    covered = tri >= 0
    cls = np.zeros(tri.shape, np.int64)
    cls[covered] = garments[tri[covered]]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    period = rng.uniform(10.0, 30.0)
    stripes = (np.sin((yy + 0.3 * xx) * 2 * np.pi / period) > 0.35)[..., None]
    noise = rng.normal(0.0, 9.0, (size, size, 1)).astype(np.float32)
    for c, key in ((1, "shirt"), (2, "trousers"), (3, "shoes")):
        colour = np.broadcast_to(palette[key], tex.shape).astype(np.float32)
        if c == 1 and rng.random() < 0.6:
            colour = np.where(stripes, palette["stripe"], colour)
        sel = cls == c
        tex[sel] = (colour + noise)[sel]
    return np.clip(tex, 0, 255).astype(np.uint8)


def cluttered_background(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) uint8: a colour gradient with random rectangles, ellipses, lines and sensor noise."""
    import cv2

    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    c0, c1 = rng.uniform(30, 230, 3), rng.uniform(30, 230, 3)
    t = (x / width * rng.uniform(-1, 1) + y / height * rng.uniform(-1, 1)) % 1.0
    img = (c0 * (1 - t[..., None]) + c1 * t[..., None]).astype(np.uint8)
    img = np.ascontiguousarray(img)
    for _ in range(int(rng.integers(12, 30))):
        colour = tuple(int(v) for v in rng.uniform(0, 255, 3))
        kind = rng.integers(0, 3)
        p = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        if kind == 0:
            q = (p[0] + int(rng.integers(-250, 250)), p[1] + int(rng.integers(-250, 250)))
            cv2.rectangle(img, p, q, colour, -1 if rng.random() < 0.7 else int(rng.integers(2, 8)))
        elif kind == 1:
            axes = (int(rng.integers(10, 160)), int(rng.integers(10, 160)))
            cv2.ellipse(img, p, axes, float(rng.uniform(0, 180)), 0, 360, colour, -1)
        else:
            q = (int(rng.integers(0, width)), int(rng.integers(0, height)))
            cv2.line(img, p, q, colour, int(rng.integers(1, 10)))
    img = cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.5, 2.0)))
    noisy = img.astype(np.float32) + rng.normal(0.0, 4.0, img.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def make_person(
    body: BodyModel,
    seed: int,
    *,
    size: tuple[int, int] = PHOTO_SIZE,
    perspective: bool = False,
    max_yaw: float = 30.0,
    texture_size: int = 1024,
    fill: float | None = None,
) -> SyntheticPerson:
    """One synthetic person (see the module docstring), deterministic in ``seed``.

    Args:
        size: photo (height, width).
        perspective: render with a mild pinhole camera (35 deg vertical field of view at ~3.5 body heights)
            instead of the orthographic one the fit assumes, to test that approximation.
        fill: the body's share of the image height (default: random 0.7-0.88).
    """
    import torch

    from ..render.shade import render_rgba

    rng = np.random.default_rng(seed)
    shape, height = random_shape(body, rng)
    pose = random_pose(body, shape, rng, max_yaw=max_yaw)
    with torch.no_grad():
        out = body.forward(shape[None], pose[None])
    verts = out.vertices[0].numpy().astype(np.float32)
    joints = out.joint_world[0].numpy().astype(np.float32)
    turn = joints[0, :3, :3] @ out.rest_joint_world[0, 0, :3, :3].numpy().T  # root, relative to rest
    yaw = float(np.degrees(np.arctan2(turn[1, 0], turn[0, 0])))

    h, w = size
    lo, hi = verts.min(0), verts.max(0)
    fill = float(rng.uniform(0.7, 0.88)) if fill is None else fill
    scale = fill * h / (hi[2] - lo[2])
    scale = min(scale, 0.92 * w / max(hi[0] - lo[0], 1e-6))
    centre = np.array([(lo[0] + hi[0]) / 2, (lo[1] + hi[1]) / 2, (lo[2] + hi[2]) / 2])
    principal = np.array([w / 2 + rng.uniform(-0.05, 0.05) * w, h / 2 + rng.uniform(-0.03, 0.03) * h])
    camera: Camera
    if perspective:
        fov = 35.0
        focal = 0.5 * h / np.tan(np.radians(fov) / 2)
        distance = focal / scale  # same image scale at the body's centre
        base = perspective_view(0.0, 0.0, distance=float(distance), width=w, height=h, focal=float(focal),
                                target=centre)
        camera = replace(base, principal=principal)
    else:
        camera = OrthographicCamera(rotation=orbit_rotation(0.0, 0.0), center=centre, scale=float(scale), width=w,
                                    height=h, principal=principal)

    texture = paint_texture(body, rng, texture_size)
    rgba = render_rgba(verts, body.faces, camera, ssaa=2, texture=texture, uvs=body.uvs, uv_faces=body.uv_faces)
    alpha = rgba[..., 3:4].astype(np.float32) / 255.0
    background = cluttered_background(h, w, rng)
    photo = (rgba[..., :3].astype(np.float32) * alpha + background.astype(np.float32) * (1 - alpha) + 0.5)
    return SyntheticPerson(
        photo=photo.astype(np.uint8),
        cutout=rgba,
        mask=alpha[..., 0],
        vertices=verts,
        joint_world=joints,
        camera=camera,
        height_m=height,
        shape=np.asarray(shape, np.float32),
        pose=pose,
        translation=np.zeros(3, np.float32),
        yaw_deg=yaw,
        texture=texture,
        seed=seed,
        info={"perspective": perspective, "fill": fill},
    )
