"""Quality metrics of a reconstruction against a synthetic person's ground truth.

The metrics are the issue's: silhouette IoU in the input view and from the side, 2D keypoint error as a
share of the image height, and the fitted body's mean vertex error in centimetres.

Aligning the two worlds: the reconstruction lives in its own canonical frame (feet on the ground, centred,
facing -Y, the person's yaw moved into its camera), the ground truth in the frame it was rendered in.
Both cameras are orthographic and see the same image, so a fitted point maps into the ground truth's
frame through the image: its pixel position (through the fitted camera, then back through the true one)
and its depth along the view axis. That depth is relative: one orthographic view cannot say how far the
body is, so the depth translation is unobservable and is removed: by the median of the per-vertex depth
differences (a robust centroid alignment along the view axis: the shift that minimises the mean
absolute depth error; a plain centroid match lets one limb swung the wrong way shift the whole body).
The side view (azimuth 90, the person's left)
then renders both bodies with one orthographic camera framed on the ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..imaging.masks import mask_iou
from ..render.camera import Camera, OrthographicCamera, orthographic_view


@dataclass
class Metrics:
    """Per-person quality numbers (see the module docstring)."""

    iou_front: float
    iou_side: float
    keypoint_error: float  # mean, fraction of the image height
    keypoint_error_max: float
    vertex_error_cm: float
    part_error_cm: dict[str, float] = field(default_factory=dict)
    """Mean vertex error per body part (:func:`vertex_parts`), where the parts were given."""

    def as_dict(self) -> dict[str, float]:
        return {
            "iou_front": self.iou_front,
            "iou_side": self.iou_side,
            "keypoint_error_pct": 100 * self.keypoint_error,
            "keypoint_error_max_pct": 100 * self.keypoint_error_max,
            "vertex_error_cm": self.vertex_error_cm,
            **{f"{part}_error_cm": value for part, value in self.part_error_cm.items()},
        }


#: Body parts for :func:`vertex_parts`, by the prefix of the joint that moves a vertex most.
PART_PREFIXES: dict[str, tuple[str, ...]] = {
    "hands": ("wrist", "finger", "thumb", "index", "middle", "ring", "pinky", "metacarpal"),
    "arms": ("upperarm", "lowerarm", "shoulder", "clavicle"),
    "legs": ("upperleg", "lowerleg", "foot", "toe"),
    "head": ("neck", "head", "jaw", "eye", "tongue", "teeth", "special", "levator", "oris", "temporalis",
             "risorius"),
}


def vertex_parts(body: object) -> np.ndarray:
    """(N,) part name per vertex of ``body`` (head, arms, hands, legs, torso): the part of the joint
    with the largest skin weight. Why: the mean vertex error hides where it comes from; anny's hands
    alone are about a quarter of its vertices, so a wrist placed wrong weighs as much as the head."""
    index, _ = body.skin_weights(1)  # type: ignore[attr-defined]
    names = body.joint_names  # type: ignore[attr-defined]

    def part(name: str) -> str:
        return next((p for p, prefixes in PART_PREFIXES.items() if name.startswith(prefixes)), "torso")

    per_joint = np.array([part(str(n)) for n in names])
    return per_joint[np.asarray(index)[:, 0]]


def render_mask(vertices: np.ndarray, faces: np.ndarray, camera: Camera) -> np.ndarray:
    """(H, W) bool coverage of a mesh seen by ``camera`` (hard, at the camera's resolution)."""
    import torch

    from ..render import get_rasterizer

    rast = get_rasterizer()
    with torch.no_grad():
        screen = torch.as_tensor(np.asarray(camera.to_screen(np.array(vertices, np.float32))), dtype=torch.float32)
        frags = rast.rasterize(screen, faces, camera.height, camera.width, perspective=camera.is_perspective)
    return frags.mask.cpu().numpy()


def to_camera_frame(points: np.ndarray, camera: OrthographicCamera) -> np.ndarray:
    """(N, 3) world -> (N, 3) (pixel x, pixel y, depth in metres) for an orthographic camera."""
    rot = np.asarray(camera.rotation, np.float64)
    cam = (np.asarray(points, np.float64) - np.asarray(camera.center, np.float64)) @ rot.T
    principal = np.asarray(camera._principal(), np.float64)
    xy = cam[:, :2] * np.asarray(camera.scale, np.float64) + principal
    return np.concatenate([xy, cam[:, 2:]], axis=1)


def from_camera_frame(screen: np.ndarray, camera: OrthographicCamera) -> np.ndarray:
    """Inverse of :func:`to_camera_frame`."""
    rot = np.asarray(camera.rotation, np.float64)
    principal = np.asarray(camera._principal(), np.float64)
    xy = (screen[:, :2] - principal) / np.asarray(camera.scale, np.float64)
    cam = np.concatenate([xy, screen[:, 2:]], axis=1)
    return cam @ rot + np.asarray(camera.center, np.float64)


def map_into(points: np.ndarray, fitted: OrthographicCamera, truth: OrthographicCamera,
             reference: np.ndarray | None = None) -> np.ndarray:
    """Fitted-frame points -> the ground truth's frame through the shared image (module docstring).

    ``reference``: points in the truth frame to align the depth with (default: none, depth kept as the
    fitted camera sees it). With the same vertex count (same topology) the shift is the median of the
    per-vertex depth differences, the one minimising the mean absolute depth error, so a single limb
    swung the wrong way does not drag the whole body along; otherwise the centroids' depths are matched.
    """
    screen = to_camera_frame(points, fitted)
    out = from_camera_frame(screen, truth)
    if reference is not None:
        view = np.asarray(truth.rotation, np.float64)[2]
        depth_ref = np.asarray(reference, np.float64) @ view
        depth = out @ view
        if len(depth_ref) == len(depth):  # same topology: the shift minimising the mean absolute depth error
            shift = float(np.median(depth_ref - depth))
        else:
            shift = float(depth_ref.mean() - depth.mean())
        out = out + shift * view
    return out


def side_view_iou(fit_vertices: np.ndarray, fit_faces: np.ndarray, gt_vertices: np.ndarray, gt_faces: np.ndarray,
                  size: int = 512, azimuth: float = 90.0) -> float:
    """IoU of two meshes (already in one frame) seen from ``azimuth`` by one orthographic camera."""
    gt = np.asarray(gt_vertices, np.float64)
    lo, hi = gt.min(0), gt.max(0)
    centre = (lo + hi) / 2
    cam = orthographic_view(azimuth, 0.0, width=size, height=size, extent=(hi[2] - lo[2]) * 1.25, center=centre)
    return mask_iou(render_mask(fit_vertices, fit_faces, cam), render_mask(gt_vertices, gt_faces, cam))


def evaluate(
    *,
    result_vertices: np.ndarray,
    result_faces: np.ndarray,
    body_vertices: np.ndarray,
    body_landmarks: np.ndarray,
    camera: OrthographicCamera,
    gt_vertices: np.ndarray,
    gt_faces: np.ndarray,
    gt_landmarks: np.ndarray,
    gt_camera: OrthographicCamera,
    gt_mask: np.ndarray,
    parts: np.ndarray | None = None,
) -> Metrics:
    """All metrics for one person.

    ``result_*`` is the final surface (clothed), ``body_*`` the fitted body (same frame, ``camera`` maps both
    to the photo); ``gt_camera`` must be orthographic and map to the same photo as ``camera``.
    """
    front = mask_iou(render_mask(result_vertices, result_faces, camera), gt_mask)
    mapped_result = map_into(result_vertices, camera, gt_camera, reference=gt_vertices)
    side = side_view_iou(mapped_result, result_faces, gt_vertices, gt_faces)
    kp_fit = np.asarray(camera.project(np.asarray(body_landmarks, np.float64)))
    kp_gt = np.asarray(gt_camera.project(np.asarray(gt_landmarks, np.float64)))
    err = np.linalg.norm(kp_fit - kp_gt, axis=1) / gt_camera.height
    mapped_body = map_into(body_vertices, camera, gt_camera, reference=gt_vertices)
    per_vertex = np.linalg.norm(mapped_body - np.asarray(gt_vertices, np.float64), axis=1)
    part_error = {}
    if parts is not None:
        part_error = {str(p): 100.0 * float(per_vertex[parts == p].mean()) for p in np.unique(parts)}
    return Metrics(iou_front=front, iou_side=side, keypoint_error=float(err.mean()),
                   keypoint_error_max=float(err.max()), vertex_error_cm=100.0 * float(per_vertex.mean()),
                   part_error_cm=part_error)


def asset_turnaround(asset: object, size: int = 384, azimuths: tuple[float, ...] = (0.0, 90.0, 180.0, 270.0),
                     photo: np.ndarray | None = None) -> np.ndarray:
    """(size, k * size, 3) uint8 strip: the asset's layers together (body and garments), textured and shaded,
    in its pose from each azimuth (front, left side, back, right side by default) on grey, optionally
    preceded by the input photo."""
    from PIL import Image

    from ..render.shade import turnaround

    vertices, faces, uvs, uv_faces, atlas = textured_union(asset, posed_layers(asset))
    views = turnaround(vertices, faces, azimuths, size=size, ssaa=1, background=(0.55, 0.55, 0.55), texture=atlas,
                       uvs=uvs, uv_faces=uv_faces)
    strip = [v[..., :3] for v in views]
    if photo is not None:
        im = Image.fromarray(np.ascontiguousarray(photo[..., :3]))
        im = im.resize((max(1, round(im.width * size / im.height)), size))
        strip.insert(0, np.asarray(im))
    return np.concatenate(strip, axis=1)


def textured_union(asset: object, vertices: list[np.ndarray], tile: int = 512) -> tuple[np.ndarray, ...]:
    """``(vertices, faces, uvs, uv_faces, atlas)``: every layer of ``asset`` (at ``vertices``, one array per
    layer) as one mesh whose UVs index one texture atlas, a ``tile``-pixel square per layer (what a
    renderer with one texture needs to show a layered human)."""
    import io

    from PIL import Image

    layers = asset.layers  # type: ignore[attr-defined]
    cols = int(np.ceil(np.sqrt(len(layers))))
    atlas = np.full((cols * tile, cols * tile, 3), 128, np.uint8)
    vs, fs, us, ufs = [], [], [], []
    v_off = u_off = 0
    for i, (layer, v) in enumerate(zip(layers, vertices, strict=True)):
        row, col = divmod(i, cols)
        mesh = layer.mesh
        if layer.texture is not None:
            image = Image.open(io.BytesIO(layer.texture.data)).convert("RGB").resize((tile, tile))
            atlas[row * tile:(row + 1) * tile, col * tile:(col + 1) * tile] = np.asarray(image)
        uv = np.zeros((1, 2)) if mesh.uvs is None else np.clip(np.asarray(mesh.uvs, np.float64), 0.0, 1.0)
        uv_faces = (np.zeros_like(mesh.faces) if mesh.uv_faces is None else mesh.uv_faces).astype(np.int64)
        # UV origin bottom-left: tile (row, col) counted from the atlas's top-left corner.
        us.append((uv + np.array([col, cols - 1 - row])) / cols)
        vs.append(np.asarray(v, np.float32))
        fs.append(np.asarray(mesh.faces, np.int64) + v_off)
        ufs.append(uv_faces + u_off)
        v_off += len(v)
        u_off += len(uv)
    return (np.concatenate(vs), np.concatenate(fs), np.concatenate(us).astype(np.float32), np.concatenate(ufs),
            atlas)


def posed_layers(asset: object) -> list[np.ndarray]:
    """Every layer's vertices in the asset's pose (:func:`posed_vertices`)."""
    return [posed_vertices(asset, i) for i in range(len(asset.layers))]  # type: ignore[attr-defined]


def posed_vertices(asset: object, layer: int = 0) -> np.ndarray:
    """(N, 3) float32: a layer's vertices in the asset's pose. Meshes are stored in the rig's rest pose and
    ``Rig.pose`` poses them (docs/asset-format.md), exactly as Blender's armature and glTF viewers do."""
    from ..body.skinning import pose_vertices, posed_world

    lay, rig = asset.layers[layer], asset.rig  # type: ignore[attr-defined]
    vertices = np.array(lay.mesh.vertices, np.float32)
    if rig is None or rig.pose is None or lay.skin is None:
        return vertices
    world = posed_world(rig.rest, rig.parents, rig.pose)
    return pose_vertices(vertices, lay.skin.joints, lay.skin.weights, rig.rest, world).astype(np.float32)


def evaluate_asset(asset: object, body: object, truth: object) -> Metrics:
    """:func:`evaluate` for a ``reconstruct`` asset against a :class:`~.synthetic.SyntheticPerson`.

    The fitted body is rebuilt from the asset's body parameters (shape, pose, translation), the camera read
    from ``BodyParams.extra["camera"]`` (it maps the posed asset's world to the photo's pixels), and the
    surface posed by the rig (:func:`posed_vertices`): every layer together (the body and the garments).
    """
    import torch

    from ..render.camera import camera_from_dict
    from .keypoints import landmark_map

    params = asset.body  # type: ignore[attr-defined]
    with torch.no_grad():
        # Copies: decoded assets hold read-only arrays, which torch warns about.
        out = body.forward(torch.tensor(np.array(params.shape))[None],  # type: ignore[attr-defined]
                           torch.tensor(np.array(params.pose))[None], torch.tensor(np.array(params.translation))[None])
    lmap = landmark_map(body)  # type: ignore[arg-type]
    verts = out.vertices[0].numpy()
    result, faces, *_ = textured_union(asset, posed_layers(asset))  # the body and every garment together
    return evaluate(
        result_vertices=result,
        result_faces=faces,
        body_vertices=verts,
        body_landmarks=lmap.landmarks_np(verts, out.joint_world[0].numpy()),
        camera=camera_from_dict(params.extra["camera"]),
        gt_vertices=truth.vertices,  # type: ignore[attr-defined]
        gt_faces=np.asarray(body.faces, np.int64),  # type: ignore[attr-defined]
        gt_landmarks=lmap.landmarks_np(truth.vertices, truth.joint_world),  # type: ignore[attr-defined]
        gt_camera=truth.camera,  # type: ignore[attr-defined]
        gt_mask=truth.mask,  # type: ignore[attr-defined]
        parts=vertex_parts(body),
    )


# --------------------------------------------------------------------------- surfaces (the views path)


def sample_surface(vertices: np.ndarray, faces: np.ndarray, count: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """``count`` points spread uniformly over a mesh's area, and the unit normal of the face each lies on."""
    v = np.asarray(vertices, np.float64)
    f = np.asarray(faces, np.int64)
    cross = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    area = np.linalg.norm(cross, axis=1)
    face = rng.choice(len(f), size=count, p=area / area.sum())
    r1, r2 = rng.random(count), rng.random(count)
    s = np.sqrt(r1)
    bary = np.stack([1 - s, s * (1 - r2), s * r2], axis=1)
    points = np.einsum("pk,pkd->pd", bary, v[f[face]])
    return points, cross[face] / np.maximum(area[face], 1e-20)[:, None]


def surface_metrics(result_vertices: np.ndarray, result_faces: np.ndarray, truth_vertices: np.ndarray,
                    truth_faces: np.ndarray, count: int = 20000, seed: int = 0) -> dict[str, float]:
    """Symmetric Chamfer distance (the mean of both directions' mean point-to-surface distances, cm) and
    normal consistency (mean |cos| between a sample's normal and the normal of the closest face on the other
    surface, both directions): the issue's measures for a carved surface against the true one.

    Point-to-*surface*, not point-to-point: two samplings of the same 2 m^2 surface are ~0.5 cm apart on
    average at 20k points, a bias as large as the errors measured."""
    from ..body.skinning import closest_points

    rng = np.random.default_rng(seed)
    meshes = [(np.asarray(result_vertices, np.float64), np.asarray(result_faces, np.int64)),
              (np.asarray(truth_vertices, np.float64), np.asarray(truth_faces, np.int64))]
    distance, consistency = [], []
    for (v_from, f_from), (v_to, f_to) in (meshes, meshes[::-1]):
        points, normals = sample_surface(v_from, f_from, count, rng)
        face, _, dist = closest_points(v_to, f_to, points, candidates=16)
        n_to = np.cross(v_to[f_to[face, 1]] - v_to[f_to[face, 0]], v_to[f_to[face, 2]] - v_to[f_to[face, 0]])
        n_to /= np.maximum(np.linalg.norm(n_to, axis=1, keepdims=True), 1e-20)
        distance.append(dist.mean())
        consistency.append(np.abs((normals * n_to).sum(1)).mean())
    return {"chamfer_cm": float(np.mean(distance) * 100), "normal_consistency": float(np.mean(consistency))}
