"""Stage 7 of reconstruct: bake the photo into the body's UV texture, and fill what the camera did not see.

Per texel of the mesh's UV layout (rasterized once per layout and size, then cached):

1. **Where it is**: triangle + barycentrics -> 3D point and smooth normal.
2. **Seen?** The point projects into the photo, faces the camera, and passes the depth test against the
   camera's z-buffer (tolerance: 1.5 pixel footprints divided by the cosine, as in
   :func:`strata.core.render.texture.texel_visibility`), and lands inside the person mask.
3. **Photo colour**: bilinear sample of the photo *premultiplied by the mask*, divided by the bilinear
   mask, so texels on the silhouette border never pick up background colour. The mask is eroded first:
   by one pixel for a real cut-out's alpha (its border pixels are half background), by
   ``mask_margin_px`` for a mask a segmentation model guessed, whose border strays by a few pixels
   into the background (on a busy background that painted the body's outline with its colours).
4. **Fill colour** for everything else (the back, the sides, the torso behind an arm): a smooth colour
   field on the *mesh vertices*, harmonic (Laplace) interpolation of the colours of the vertices the
   photo shows squarely (cos >= 0.3, sampled from a mask-normalised blurred photo so a vertex that
   happens to land on a pupil or a seam does not spread it). The Laplacian is *anisotropic*: edges
   across the image's vertical conduct 50x better than vertical ones, so colour flows around the body
   rather than up and down it, and the back of a standing person takes the colours its sides have *at
   the same height* (a jacket's hem, a waistband, the hairline stay at their height instead of blurring
   into one gradient). Interpolated on the mesh, the fill is continuous across UV seams and never
   bleeds across the empty space between islands. The back of a body part takes the colours of its own
   sides: a denim jacket open over a white top gets a denim back, the back of the head the hair seen
   around the face, and no face, print or camera strap is copied onto the back. Mirroring the front
   (a back point takes the photo colour at its own pixel) was the other candidate and was rejected for
   exactly those cases; on uniformly coloured clothes both give the same colour.
5. **Blend**: ``w * photo + (1 - w) * fill`` with ``w`` a smoothstep of the viewing cosine (0 below
   0.1, 1 above 0.35): texels seen at grazing angles are stretched photo pixels, so they are replaced by
   the propagated colour gradually instead of showing streaks.
6. **Gutters**: every texel outside the UV islands takes the colour of the nearest island texel
   (OpenCV's labelled distance transform), so bilinear filtering and mip-maps never pull in black at
   island borders.

Cost at 2048^2 on two busy CPU cores with single-threaded torch: ~1.0 s (~2.6 M covered texels, all
vectorised numpy/OpenCV), plus ~1.5 s for the UV rasterization on the first call for a layout and size
(cached per process after that); 1024^2: ~0.35 s. Multi-threaded torch on an oversubscribed machine
makes the camera rasterization alone take ~0.8 s instead of 20 ms.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from strata.exchange.asset.geometry import smooth_normals

from ..progress import Progress, Silent
from ..render import Camera, Rasterizer, get_rasterizer
from ..render.camera import camera_for_size, rotation_matrix
from ..render.texture import fill_gutters, uv_coverage

if TYPE_CHECKING:
    from ..cache import ModelCache
    from ..views import View

#: Progress stage name reported by :func:`bake_texture`.
STAGE = "texture"

#: Viewing cosines below which a texel is all fill colour / above which it is all photo colour.
COS_FILL = 0.1
COS_PHOTO = 0.35
#: Vertices seen at least this squarely constrain the fill colour field.
COS_ANCHOR = 0.3
#: Depth-test tolerance in pixel footprints (divided by the cosine, capped at 10x).
DEPTH_TOL_PX = 1.5
#: Mask level a sample needs (after the mask is eroded by one pixel) to count as the person.
MASK_LEVEL = 0.5
#: Gaussian blur (px) of the photo that anchor vertices sample: about the vertex spacing in the photo.
ANCHOR_BLUR_PX = 2.0
#: Relative conductance of vertical mesh edges in the fill (1 = isotropic; module docstring, step 4).
FILL_VERTICAL = 0.02
#: Smallest texture side accepted.
MIN_SIZE = 16

@dataclass(frozen=True)
class _UVLayout:
    """Covered texels of one UV layout at one size (flat indices into the size x size image)."""

    size: int
    texel: np.ndarray  # (M,) int64 flat texel index
    tri: np.ndarray  # (M,) int64 face id
    bary: np.ndarray  # (M, 3) float32


def bake_texture(
    vertices: np.ndarray,
    faces: np.ndarray,
    uvs: np.ndarray,
    uv_faces: np.ndarray,
    camera: Camera,
    image: np.ndarray,
    mask: np.ndarray,
    *,
    size: int = 2048,
    mask_margin_px: int = 1,
    progress: Progress | None = None,
    rasterizer: Rasterizer | None = None,
    cache: ModelCache | None = None,
    base: np.ndarray | None = None,
) -> np.ndarray:
    """(size, size, 3) uint8 UV texture of the mesh from one photo (see the module docstring).

    Args:
        vertices: (N, 3) mesh in world metres, as the camera sees it (the clothed surface).
        faces: (F, 3) triangles; ``uv_faces`` (F, 3) indexes ``uvs`` (U, 2) per corner (v up, Blender).
        camera: maps world points to pixels of ``image`` (rescaled if the image has another size).
        image: (H, W, 3) uint8 photo (RGB; RGBA is accepted and its alpha ignored; floats in [0, 1] too).
        mask: (H, W) person mask in [0, 1].
        size: texture side in texels.
        mask_margin_px: photo pixels along the mask's border that are not trusted (step 3): 1 for a
            cut-out's alpha, more for a segmentation model's mask (see :func:`mask_margin`).
        progress: reports stage :data:`STAGE`; its ``Cancelled`` propagates.
        rasterizer: the job's rasterizer (default: the torch one on the CPU).
        cache: where the UV layout is kept between jobs (default: the process's model cache).
        base: (T, T, 3) uint8 texture in the same UV layout that unseen texels take instead of the fill field
            (a body under clothes: painted skin of the person's tone, not the clothes' colours spread over
            it); resized to ``size`` when it differs.
    """
    progress = progress or Silent()
    if size < MIN_SIZE:
        raise ValueError(f"texture size must be >= {MIN_SIZE}, got {size}")
    if mask_margin_px < 0:
        raise ValueError(f"mask_margin_px must be >= 0, got {mask_margin_px}")
    v = np.asarray(vertices, np.float32)
    f = np.asarray(faces, np.int64)
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] < 3:
        raise ValueError(f"image must be (H, W, 3), got {img.shape}")
    img = img[..., :3]
    if img.dtype.kind == "f":  # float photos in [0, 1] are accepted too
        img = np.clip(img * 255.0, 0, 255)
    h, w = img.shape[:2]
    m = np.asarray(mask, np.float32)
    if m.shape != (h, w):
        raise ValueError(f"mask {m.shape} does not match the image {img.shape[:2]}")
    cam, _, _ = camera_for_size(camera, (h, w))
    rast = rasterizer or get_rasterizer("torch")
    return _bake(v, f, uvs, uv_faces, [_Source(cam, img, m, int(mask_margin_px))], size, progress, rast, cache,
                 base=base)


def bake_texture_views(
    vertices: np.ndarray,
    faces: np.ndarray,
    uvs: np.ndarray,
    uv_faces: np.ndarray,
    views: Sequence[View],
    *,
    size: int = 2048,
    progress: Progress | None = None,
    rasterizer: Rasterizer | None = None,
    cache: ModelCache | None = None,
    base: np.ndarray | None = None,
) -> np.ndarray:
    """(size, size, 3) uint8 UV texture of the mesh from several views with cameras (PSHuman's six, or a
    photo alone): :func:`bake_texture`'s steps per view, combined; ``base`` as there.

    Where several views see a texel its colour is their average weighted by ``view.weight * cos^2``
    (squarely seen views dominate; PSHuman's colour projection weights views the same way), and how much of
    it replaces the fill colour is the best single view's blend weight; the fill field's anchors come from
    every view. With one view this is exactly :func:`bake_texture`. Masks are trusted to 1 pixel for views
    marked ``exact_mask``, else by :func:`mask_margin`.
    """
    progress = progress or Silent()
    if size < MIN_SIZE:
        raise ValueError(f"texture size must be >= {MIN_SIZE}, got {size}")
    sources = []
    for view in views:
        if view.camera is None:
            raise ValueError(f"view {view.name!r} has no camera: the texture needs to know where it looks from")
        cam, _, _ = camera_for_size(view.camera, view.size)
        sources.append(_Source(cam, np.asarray(view.image)[..., :3], np.asarray(view.mask, np.float32),
                               mask_margin(view.mask, view.exact_mask), float(view.weight)))
    if not sources:
        raise ValueError("no views to bake a texture from")
    rast = rasterizer or get_rasterizer("torch")
    return _bake(np.asarray(vertices, np.float32), np.asarray(faces, np.int64), uvs, uv_faces, sources, size,
                 progress, rast, cache, base)


@dataclass(frozen=True)
class _Source:
    """One image the texture is baked from: its camera (sized to it), pixels, person mask, trusted margin."""

    cam: Camera
    img: np.ndarray
    mask: np.ndarray
    margin: int
    weight: float = 1.0


def _bake(
    v: np.ndarray,
    f: np.ndarray,
    uvs: np.ndarray,
    uv_faces: np.ndarray,
    sources: Sequence[_Source],
    size: int,
    progress: Progress,
    rast: Rasterizer,
    cache: ModelCache | None,
    base: np.ndarray | None = None,
) -> np.ndarray:
    """The body of :func:`bake_texture` / :func:`bake_texture_views` (arguments validated, cameras sized)."""
    # 1. where each texel is, and its smooth normal
    progress.report(STAGE, 0.0, "rasterizing the UV layout")
    layout = uv_layout(uvs, uv_faces, size, rast, cache)
    vn = _vertex_normals(v, f)
    per_texel = _interpolate(np.hstack([v, vn]).astype(np.float32), f[layout.tri], layout.bary)
    pos, nrm = per_texel[:, 0:3], per_texel[:, 3:6]
    nrm /= np.maximum(np.linalg.norm(nrm, axis=1, keepdims=True), 1e-12)

    # 2. per source: the texels it sees and their colours, and the anchors of the fill field
    progress.report(STAGE, 0.3, "projecting the photo" if len(sources) == 1 else f"projecting {len(sources)} views")
    colour_sum = np.zeros((len(pos), 3), np.float32)
    weight_sum = np.zeros(len(pos), np.float32)
    blend = np.zeros(len(pos), np.float32)
    anchors = []
    for src in sources:
        seen_rgb, seen_w, seen_blend, anchor = _project(v, f, vn, pos, nrm, src, rast)
        colour_sum += seen_w[:, None] * seen_rgb
        weight_sum += seen_w
        blend = np.maximum(blend, seen_blend)
        anchors.append(anchor)

    # 3. the fill colour for what no view shows squarely, then the blend per texel
    progress.report(STAGE, 0.55, "sampling texels")
    if base is None:
        fill = _interpolate(_fill_colours(v, f, anchors, sources[0].cam), f[layout.tri], layout.bary)
    else:
        fill = _resized(base, size).reshape(-1, 3)[layout.texel].astype(np.float32)
    progress.report(STAGE, 0.8, "filling unseen texels")
    photo = colour_sum / np.maximum(weight_sum, 1e-12)[:, None]
    texel_rgb = blend[:, None] * photo + (1.0 - blend[:, None]) * fill

    # 4. the image, with gutters
    out = np.zeros((size * size, 3), np.float32)
    out[layout.texel] = texel_rgb
    covered = np.zeros(size * size, bool)
    covered[layout.texel] = True
    out = fill_gutters(out.reshape(size, size, 3), covered.reshape(size, size))
    progress.report(STAGE, 1.0, "texture baked")
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


def _project(v: np.ndarray, f: np.ndarray, vn: np.ndarray, pos: np.ndarray, nrm: np.ndarray, src: _Source,
             rast: Rasterizer) -> tuple[np.ndarray, np.ndarray, np.ndarray, tuple[np.ndarray, ...]]:
    """One source's part of the bake (module docstring, steps 2-3): per texel ``(colour, weight for the
    multi-view average (blend * view weight * cos^2), blend weight against the fill)``, and the fill
    field's anchors ``(colour (N, 3), weight (N,), premultiplied image, trusted mask)`` per vertex (weight 0:
    not an anchor; the images give the mean colour when no view has an anchor at all)."""
    cam, h, w = src.cam, src.img.shape[0], src.img.shape[1]
    # 1. the camera's z-buffer
    screen_v = np.asarray(cam.to_screen(v), np.float32)
    with torch.no_grad():
        frags = rast.rasterize(torch.as_tensor(screen_v).to(rast.device), f, h, w, perspective=cam.is_perspective)
    zbuf = frags.depth.cpu().numpy().astype(np.float32)
    # 2. the photo premultiplied by its trusted mask
    person = _eroded(src.mask, src.margin)
    premult = src.img.astype(np.float32) * person[..., None]
    # 3. texels: seen, squarely enough, inside the mask
    screen = np.asarray(cam.to_screen(pos), np.float32)
    to_cam = np.asarray(cam.towards_camera(pos), np.float32)
    cos = (nrm * to_cam).sum(1)
    seen = _depth_visible(screen, cos, zbuf, cam)
    colour, weight = _sample_masked(premult, person, screen[:, :2])
    blend = seen * (weight >= MASK_LEVEL) * _smoothstep(cos, COS_FILL, COS_PHOTO)
    average = blend * src.weight * np.clip(cos, 0.0, 1.0) ** 2
    # 4. anchors of the fill field
    rgb, weight = _anchors(v, vn, screen_v, cam, zbuf, premult, person)
    return colour, average.astype(np.float32), blend.astype(np.float32), (rgb, weight * src.weight, premult, person)


# --------------------------------------------------------------------------- UV layout


def _resized(image: np.ndarray, size: int) -> np.ndarray:
    from PIL import Image

    image = np.asarray(image)[..., :3]
    if image.shape[:2] == (size, size):
        return image
    return np.asarray(Image.fromarray(np.ascontiguousarray(image, np.uint8)).resize((size, size), Image.BILINEAR))


def uv_layout(uvs: np.ndarray, uv_faces: np.ndarray, size: int, rasterizer: Rasterizer | None = None,
              cache: ModelCache | None = None) -> _UVLayout:
    """Covered texels of a UV layout, kept in the model cache by content: the body's layout never changes
    between jobs, and rasterizing it at 2048^2 costs ~1.5 s on a CPU (a server warms it at start-up)."""
    from ..cache import process_cache

    uv = np.ascontiguousarray(np.asarray(uvs, np.float32))
    uf = np.ascontiguousarray(np.asarray(uv_faces, np.int64))
    digest = hashlib.blake2b(uv.tobytes() + uf.tobytes(), digest_size=8).hexdigest()

    def load() -> _UVLayout:
        tri_id, bary = uv_coverage(uv, uf, size, rasterizer)
        tri_id, bary = tri_id.reshape(-1), bary.reshape(-1, 3)
        texel = np.flatnonzero(tri_id >= 0)
        return _UVLayout(size=int(size), texel=texel, tri=tri_id[texel], bary=bary[texel])

    return (cache or process_cache()).lru("texture/uv_layouts", 4).get((digest, int(size)), load)


def _depth_visible(screen: np.ndarray, cos: np.ndarray, zbuf: np.ndarray, cam: Camera) -> np.ndarray:
    """(M,) float 1/0: in the image, facing the camera and not behind the z-buffer surface."""
    h, w = zbuf.shape
    px = np.floor(screen[:, 0]).astype(np.int64)
    py = np.floor(screen[:, 1]).astype(np.int64)
    inside = (px >= 0) & (px < w) & (py >= 0) & (py < h)
    z = zbuf[py.clip(0, h - 1), px.clip(0, w - 1)]
    foot = cam.pixel_footprint(torch.as_tensor(screen[:, 2])).numpy()
    tol = DEPTH_TOL_PX * foot / np.maximum(cos, 0.1)
    return (inside & (cos > 0) & (screen[:, 2] <= z + tol)).astype(np.float32)


def _sample_masked(premult: np.ndarray, person: np.ndarray, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bilinear samples of the mask-premultiplied photo, un-premultiplied; and the sampled mask.

    Returns ``(rgb (M, 3) float32 0..255, mask (M,) float32)``. Outside the image both are 0.
    """
    import cv2

    n = len(xy)
    cols = 2048
    rows = max(1, -(-n // cols))
    pad = rows * cols - n
    mx = np.concatenate([xy[:, 0] - 0.5, np.full(pad, -10.0, np.float32)]).reshape(rows, cols).astype(np.float32)
    my = np.concatenate([xy[:, 1] - 0.5, np.full(pad, -10.0, np.float32)]).reshape(rows, cols).astype(np.float32)
    stack = np.dstack([premult, person]).astype(np.float32)
    out = cv2.remap(stack, mx, my, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    out = out.reshape(-1, 4)[:n]
    wgt = out[:, 3]
    rgb = out[:, :3] / np.maximum(wgt, 1e-6)[:, None]
    return rgb, wgt


def mask_margin(mask: np.ndarray, from_alpha: bool) -> int:
    """The ``mask_margin_px`` for :func:`bake_texture`: 1 pixel for a cut-out's alpha; for a segmentation
    mask 0.5 % of the person's height in the photo (5 px for a 1000 px person, at least 2), about how
    far MediaPipe's mask strays from the true outline on synthetic photos (IoU 0.95-0.98)."""
    if from_alpha:
        return 1
    rows = np.flatnonzero(np.asarray(mask).max(axis=1) > 0.5)
    tall = int(rows[-1] - rows[0] + 1) if len(rows) else 0
    return max(2, round(0.005 * tall))


def _eroded(mask: np.ndarray, px: int = 1) -> np.ndarray:
    """Mask eroded by ``px`` pixels (a disc): photo pixels on or near the border are partly background."""
    import cv2

    m = np.clip(mask, 0.0, 1.0).astype(np.float32)
    if px <= 0:
        return m
    kernel = np.ones((3, 3), np.uint8) if px == 1 else cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1,) * 2)
    return cv2.erode(m, kernel)


def _interpolate(attr: np.ndarray, corners: np.ndarray, bary: np.ndarray) -> np.ndarray:
    """(M, C) barycentric blend of per-vertex ``attr`` (one corner at a time: ~4x faster than a
    (M, 3, C) gather and reduction for millions of texels)."""
    out = attr[corners[:, 0]] * bary[:, 0:1]
    out += attr[corners[:, 1]] * bary[:, 1:2]
    out += attr[corners[:, 2]] * bary[:, 2:3]
    return out


def _smoothstep(x: np.ndarray, lo: float, hi: float) -> np.ndarray:
    t = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
    return (t * t * (3.0 - 2.0 * t)).astype(np.float32)


# --------------------------------------------------------------------------- fill colours


def _anchors(v: np.ndarray, vn: np.ndarray, screen_v: np.ndarray, cam: Camera, zbuf: np.ndarray,
             premult: np.ndarray, person: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Vertex colours a view shows squarely (cos >= 0.3, well inside the mask, sampled from a mask-normalised
    blurred image so a vertex on a pupil or a seam does not spread it): ``(rgb (N, 3), weight (N,))``, weight
    0 where the view gives no anchor."""
    import cv2

    to_cam = np.asarray(cam.towards_camera(v), np.float32)
    cos = (vn * to_cam).sum(1)
    seen = _depth_visible(screen_v, cos, zbuf, cam) > 0
    blur_p = cv2.GaussianBlur(premult, (0, 0), ANCHOR_BLUR_PX)
    blur_m = cv2.GaussianBlur(person, (0, 0), ANCHOR_BLUR_PX)
    rgb, wgt = _sample_masked(blur_p, blur_m, screen_v[:, :2])
    # Anchors sit well inside the mask: the blurred mask is ~1 only a blur radius away from its border.
    anchor = seen & (cos >= COS_ANCHOR) & (wgt >= 0.9)
    return rgb, np.where(anchor, 10.0 * np.clip(cos, 0.0, 1.0), 0.0).astype(np.float64)


def _fill_colours(v: np.ndarray, f: np.ndarray, anchors: Sequence[tuple[np.ndarray, ...]],
                  cam: Camera) -> np.ndarray:
    """(N, 3) float32 vertex colours: the anchors' colours where the views show them squarely (weighted
    over views), harmonic elsewhere.

    Solves ``(L + W + eps I) c = W c_seen + eps c_mean`` with ``L`` the mesh graph Laplacian and ``W``
    the anchor weights: harmonic interpolation between anchors, and the mean colour in components no
    anchor reaches (the tongue inside the mouth). ``cam`` gives "up" for the anisotropy.
    """
    from scipy import sparse
    from scipy.sparse.linalg import splu

    n = len(v)
    wts = np.sum([a[1] for a in anchors], axis=0)
    rgb = np.sum([a[0] * a[1][:, None] for a in anchors], axis=0) / np.maximum(wts, 1e-12)[:, None]
    anchor = wts > 0
    if not anchor.any():  # the mean colour of the person in the images
        total = np.sum([a[2].reshape(-1, 3).sum(0) for a in anchors], axis=0)
        mean = total / max(float(np.sum([a[3].sum() for a in anchors])), 1e-6)
        return np.broadcast_to(mean.astype(np.float32), (n, 3)).copy()

    ij = np.sort(np.concatenate([f[:, [0, 1]], f[:, [1, 2]], f[:, [2, 0]]]), axis=1)
    code = np.unique(ij[:, 0] * n + ij[:, 1])
    ij = np.stack([code // n, code % n], axis=1)
    # Anisotropic conductance (module docstring, step 4): colour flows around the body, not up and down.
    e = v[ij[:, 1]] - v[ij[:, 0]]
    up = -np.asarray(rotation_matrix(cam).numpy()[1], np.float32)
    vert = (e @ up) ** 2 / np.maximum((e * e).sum(1), 1e-20)
    ew = FILL_VERTICAL + (1.0 - FILL_VERTICAL) * (1.0 - vert) ** 4  # diagonals of a triangulated grid: ~0.08
    adj = sparse.coo_matrix((np.concatenate([ew, ew]), (np.concatenate([ij[:, 0], ij[:, 1]]),
                                                        np.concatenate([ij[:, 1], ij[:, 0]]))), shape=(n, n)).tocsr()
    lap = sparse.diags(np.asarray(adj.sum(1)).ravel()) - adj
    eps = 1e-4
    mean = (rgb[anchor] * wts[anchor, None]).sum(0) / wts[anchor].sum()
    a = (lap + sparse.diags(wts + eps)).tocsc()
    rhs = wts[:, None] * np.where(anchor[:, None], rgb, 0.0) + eps * mean[None]
    return splu(a).solve(rhs).astype(np.float32)


def _vertex_normals(v: np.ndarray, f: np.ndarray) -> np.ndarray:
    return smooth_normals(v, f)
