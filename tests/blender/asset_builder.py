"""Small, exact test assets built with numpy alone (no PIL: Blender's Python has none).

Layers are open tubes around the Z axis; the rig has a roll and a sideways bone, so bone
orientation is really checked; one layer has all-distinct weights (the importer's exact-sort path)
and one has weights shared along vertex rings (its run-length path).
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

import numpy as np


def png_bytes(pixels: np.ndarray) -> bytes:
    """An 8-bit RGB or RGBA PNG of `pixels` (H, W, 3|4) uint8."""
    h, w, c = pixels.shape
    raw = b"".join(b"\x00" + pixels[y].tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", w, h, 8, 2 if c == 3 else 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def tube(radius: float, z0: float, z1: float, rings: int, segments: int):
    """Vertices, triangles, per-corner uvs/uv_faces and normals of an open tube (UV seam split)."""
    z = np.linspace(z0, z1, rings)
    phi = np.linspace(0, 2 * np.pi, segments, endpoint=False)
    zz, pp = np.meshgrid(z, phi, indexing="ij")
    normals = np.stack([np.cos(pp), np.sin(pp), np.zeros_like(pp)], -1).reshape(-1, 3).astype(np.float32)
    verts = (normals * radius).astype(np.float32)
    verts[:, 2] = zz.ravel()
    r, s = np.meshgrid(np.arange(rings - 1), np.arange(segments), indexing="ij")
    r, s = r.ravel(), s.ravel()

    def vid(ri, si):
        return ri * segments + si % segments

    def uid(ri, si):
        return ri * (segments + 1) + si

    faces = np.concatenate([np.stack([vid(r, s), vid(r, s + 1), vid(r + 1, s + 1)], 1),
                            np.stack([vid(r, s), vid(r + 1, s + 1), vid(r + 1, s)], 1)]).astype(np.uint32)
    uv_faces = np.concatenate([np.stack([uid(r, s), uid(r, s + 1), uid(r + 1, s + 1)], 1),
                               np.stack([uid(r, s), uid(r + 1, s + 1), uid(r + 1, s)], 1)]).astype(np.uint32)
    uu, vv = np.meshgrid(np.linspace(0, 1, segments + 1), np.linspace(0, 1, rings))
    uvs = np.stack([uu, vv], -1).reshape(-1, 2).astype(np.float32)
    return verts, faces, uvs, uv_faces, normals


def _rotation(axis_y: np.ndarray, roll_deg: float) -> np.ndarray:
    """A rotation whose +Y is `axis_y`, rolled about it by `roll_deg`."""
    y = axis_y / np.linalg.norm(axis_y)
    helper = np.array([0.0, 0.0, 1.0]) if abs(y[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    x = np.cross(y, helper)
    x /= np.linalg.norm(x)
    z = np.cross(x, y)
    a = np.radians(roll_deg)
    x, z = np.cos(a) * x - np.sin(a) * z, np.sin(a) * x + np.cos(a) * z
    return np.stack([x, y, z], 1)


def make_test_asset(schema: Any, *, seed: int = 0) -> Any:
    """A 3-layer rigged asset (Body, Top, Shoes) built from the vendored schema module `schema`."""
    rng = np.random.default_rng(seed)
    heads = [(0.0, 0.0, 0.9), (0.0, 0.0, 1.2), (0.0, 0.0, 1.5), (0.05, 0.0, 1.4)]
    axes = [(0, 0, 1), (0, 0, 1), (0, 0, 1), (1, 0, 0)]
    rolls = [0.0, 30.0, -45.0, 90.0]
    lengths = np.array([0.3, 0.3, 0.2, 0.4], np.float32)
    rest = np.tile(np.eye(4, dtype=np.float32), (4, 1, 1))
    for i in range(4):
        rest[i, :3, :3] = _rotation(np.array(axes[i], float), rolls[i])
        rest[i, :3, 3] = heads[i]
    rig = schema.Rig("test", ["pelvis", "spine", "head", "left_arm"], np.array([-1, 0, 1, 1], np.int32), rest,
                     lengths)

    layers = []
    # Body: distinct random weights over 2 joints per vertex.
    v, f, uv, uvf, n = tube(0.2, 0.6, 1.6, 24, 32)
    joints = np.stack([np.full(len(v), 0), np.where(v[:, 2] > 1.1, 2, 1)], 1).astype(np.uint16)
    w0 = rng.uniform(0.1, 0.9, len(v)).astype(np.float32)
    weights = np.stack([w0, 1 - w0], 1).astype(np.float32)
    tex = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)
    layers.append(schema.Layer("Body", "body", schema.Mesh(v, f, n, uv, uvf), schema.Texture(png_bytes(tex)),
                               schema.Skin(joints, weights)))
    n_body = len(v)
    # Top: ring-shared weights (run-length path), covers the body's middle band.
    v, f, uv, uvf, n = tube(0.22, 1.0, 1.4, 10, 32)
    t = ((v[:, 2] - 1.0) / 0.4).astype(np.float32)
    ring_w = np.round(t, 3)
    weights = np.stack([1 - ring_w, ring_w], 1).astype(np.float32)
    weights[:, 1] = 1 - weights[:, 0]
    joints = np.tile(np.array([1, 2], np.uint16), (len(v), 1))
    body_z = layers[0].mesh.vertices[:, 2]
    hides = np.flatnonzero((body_z > 1.05) & (body_z < 1.35)).astype(np.uint32)
    rgba = np.dstack([rng.integers(0, 255, (8, 8, 3), dtype=np.uint8), np.full((8, 8, 1), 200, np.uint8)])
    layers.append(schema.Layer("Top", "top", schema.Mesh(v, f, n, uv, uvf), schema.Texture(png_bytes(rgba)),
                               schema.Skin(joints, weights), hides_body=hides))
    # Shoes: vertex colours only, rigid to the pelvis, no normals (smooth shading).
    v, f, uv, uvf, _ = tube(0.1, 0.0, 0.1, 3, 8)
    colors = np.concatenate([rng.integers(0, 255, (len(v), 3)), np.full((len(v), 1), 255)], 1).astype(np.uint8)
    layers.append(schema.Layer("Shoes", "shoes", schema.Mesh(v, f, None, None, None, colors), None,
                               schema.Skin(np.zeros((len(v), 1), np.uint16), np.ones((len(v), 1), np.float32))))
    assert n_body > 0
    prov = schema.Provenance("test", backends={"body": "numpy"}, notes=["made by tests/blender/asset_builder.py"])
    return schema.HumanAsset("tester", layers, prov, rig=rig)
