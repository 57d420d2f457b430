"""Small, exact test assets built with numpy alone (no PIL: Blender's Python has none).

Layers are open tubes around the Z axis; the rig has a roll and a sideways bone, so bone
orientation is really checked; one layer has all-distinct weights (the importer's exact-sort path)
and one has weights shared along vertex rings (its run-length path). `posed=True` adds a pose
(`Rig.pose`): every joint turned, the root moved; `lbs_posed` is where it puts the vertices.
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


def sample_pose(n_joints: int) -> np.ndarray:
    """(J, 4, 4) float32: joint j turned 20 + 10 j degrees about an axis of its own; the root (joint 0)
    also moved, as a fitted pose moves the pelvis."""
    pose = np.tile(np.eye(4, dtype=np.float32), (n_joints, 1, 1))
    for j in range(n_joints):
        pose[j, :3, :3] = _rotation(np.array([np.sin(j + 1.0), 1.0, np.cos(2.0 * j)]), 20.0 + 10.0 * j).T
    pose[0, :3, 3] = (0.05, -0.1, 0.02)
    return pose


def lbs_posed(rig: Any, skin: Any, vertices: np.ndarray) -> np.ndarray:
    """(N, 3) float64 rest vertices posed by `rig.pose` with linear blend skinning, written from the
    schema's formulas: W_j = W_parent @ inv(R_parent) @ R_j @ P_j (root: R_j @ P_j), v' = sum w S_j v."""
    rest = np.asarray(rig.rest, np.float64)
    pose = np.asarray(rig.pose, np.float64)
    world = np.zeros_like(rest)
    done = np.zeros(len(rest), bool)
    while not done.all():  # parents first, whatever the order
        for j, p in enumerate(np.asarray(rig.parents).tolist()):
            if not done[j] and (p < 0 or done[p]):
                world[j] = (rest[j] if p < 0 else world[p] @ np.linalg.inv(rest[p]) @ rest[j]) @ pose[j]
                done[j] = True
    skinning = world @ np.linalg.inv(rest)
    m = np.einsum("nk,nkab->nab", np.asarray(skin.weights, np.float64), skinning[np.asarray(skin.joints, np.int64)])
    return np.einsum("nab,nb->na", m[:, :3, :3], np.asarray(vertices, np.float64)) + m[:, :3, 3]


def make_test_asset(schema: Any, *, seed: int = 0, posed: bool = False) -> Any:
    """A 3-layer rigged asset (Body, Top, Shoes) built from the vendored schema module `schema`; with
    `posed`, its rig carries `sample_pose` and names the rest "A"."""
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
    if posed:
        rig.pose, rig.rest_pose = sample_pose(4), "A"

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
