"""Synthetic assets of any size, for tests, benchmarks and the transport diagnostics.

Not a human: a stack of rigged, textured UV-spheres, one per layer, skinned to a chain of joints.
It exercises every field of the schema with valid data, at the sizes the benches need (300k
vertices, 2048² textures), without needing any body model installed.
"""

from __future__ import annotations

import io

import numpy as np

from .geometry import smooth_normals
from .schema import LAYER_KINDS, HumanAsset, Layer, Mesh, Provenance, Rig, Skin, Texture


def uv_sphere(n_rings: int, n_segments: int, radius: float, center: tuple[float, float, float]):
    """Vertices, faces, per-corner uvs/uv_faces and normals of a UV sphere (poles welded)."""
    theta = np.linspace(0, np.pi, n_rings + 1)[1:-1]
    phi = np.linspace(0, 2 * np.pi, n_segments, endpoint=False)
    t, p = np.meshgrid(theta, phi, indexing="ij")
    ring = np.stack([np.sin(t) * np.cos(p), np.sin(t) * np.sin(p), np.cos(t)], -1).reshape(-1, 3)
    normals = np.concatenate([[[0, 0, 1]], ring, [[0, 0, -1]]]).astype(np.float32)
    verts = (normals * radius + np.asarray(center, np.float32)).astype(np.float32)
    top, bottom = 0, len(verts) - 1

    def vid(r, s):
        return 1 + r * n_segments + (s % n_segments)

    faces = []
    for s in range(n_segments):
        faces.append((top, vid(0, s), vid(0, s + 1)))
        faces.append((bottom, vid(n_rings - 2, s + 1), vid(n_rings - 2, s)))
    r, s = np.meshgrid(np.arange(n_rings - 2), np.arange(n_segments), indexing="ij")
    r, s = r.ravel(), s.ravel()
    a, b, c, d = vid(r, s), vid(r + 1, s), vid(r + 1, s + 1), vid(r, s + 1)
    faces = np.concatenate([np.array(faces), np.stack([a, b, c], 1), np.stack([a, c, d], 1)]).astype(np.uint32)
    # UVs per corner: a (segments+1) x (rings+1) grid, so the seam at phi=0/2pi is split in UV only.
    uu, vv = np.meshgrid(np.linspace(0, 1, n_segments + 1), np.linspace(1, 0, n_rings + 1))
    uvs = np.stack([uu, vv], -1).reshape(-1, 2).astype(np.float32)

    def uid(r, s):
        return r * (n_segments + 1) + s

    uv_faces = []
    for s_ in range(n_segments):
        uv_faces.append((uid(0, s_), uid(1, s_), uid(1, s_ + 1)))
        uv_faces.append((uid(n_rings, s_), uid(n_rings - 1, s_ + 1), uid(n_rings - 1, s_)))
    uv_faces = np.concatenate([
        np.array(uv_faces),
        np.stack([uid(r + 1, s), uid(r + 2, s), uid(r + 2, s + 1)], 1),
        np.stack([uid(r + 1, s), uid(r + 2, s + 1), uid(r + 1, s + 1)], 1),
    ]).astype(np.uint32)
    return verts, faces, uvs, uv_faces, normals


def png_bytes(rgb: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def make_asset(
    n_layers: int = 2,
    vertices_per_layer: int = 500,
    texture_size: int = 64,
    n_joints: int = 4,
    k: int = 4,
    seed: int = 0,
    with_normals: bool = True,
) -> HumanAsset:
    """A valid rigged asset with `n_layers` textured sphere layers of about `vertices_per_layer`.

    `with_normals=False` leaves the (smooth) normals out, as Strata's pipelines do."""
    rng = np.random.default_rng(seed)
    segs = max(4, int(np.sqrt(vertices_per_layer * 2)))
    rings = max(3, vertices_per_layer // segs + 1)
    height = 1.7
    # A vertical chain of joints from the pelvis up, local +Y pointing up the chain (towards +Z).
    heads = np.linspace(0.1, height - 0.1, n_joints)
    rest = np.tile(np.eye(4, dtype=np.float32), (n_joints, 1, 1))
    rest[:, :3, :3] = np.array([[1, 0, 0], [0, 0, -1], [0, 1, 0]], np.float32)  # local Y -> world Z
    rest[:, 2, 3] = heads
    step = (heads[1] - heads[0]) if n_joints > 1 else 0.2
    rig = Rig("synthetic", [f"joint_{i:02d}" for i in range(n_joints)],
              np.arange(-1, n_joints - 1, dtype=np.int32), rest, np.full(n_joints, step, np.float32))
    layers = []
    for li in range(n_layers):
        radius = 0.3 + 0.02 * li
        v, f, uv, uvf, _ = uv_sphere(rings, segs, radius, (0.0, 0.0, height / 2))
        v[:, 2] = (v[:, 2] - height / 2) * (height / (2 * radius)) + height / 2  # stretch to a body-ish pill
        nrm = smooth_normals(v, f) if with_normals else None  # the stretched shape's own normals
        # Skin: the nearest joints by height, weights falling off with distance.
        d = np.abs(v[:, 2:3] - heads[None, :])
        kk = min(k, n_joints)
        idx = np.argsort(d, axis=1)[:, :kk]
        w = 1.0 / (np.take_along_axis(d, idx, 1) + 1e-3)
        w = (w / w.sum(1, keepdims=True)).astype(np.float32)
        tex = rng.integers(0, 255, (texture_size, texture_size, 3), dtype=np.uint8)
        colors = np.concatenate([rng.integers(0, 255, (len(v), 3)), np.full((len(v), 1), 255)], 1)
        layers.append(Layer(
            name=LAYER_KINDS[li % len(LAYER_KINDS)].capitalize() + ("" if li < len(LAYER_KINDS) else str(li)),
            kind=LAYER_KINDS[li % len(LAYER_KINDS)],
            mesh=Mesh(v, f, nrm, uv, uvf, colors.astype(np.uint8)),
            texture=Texture(png_bytes(tex)),
            skin=Skin(idx.astype(np.uint16), w),
            hides_body=None if li == 0 else np.arange(0, len(v), 7, dtype=np.uint32),
        ))
    return HumanAsset("synthetic", layers, Provenance("synthetic", notes=["generated for tests"]), rig=rig)
