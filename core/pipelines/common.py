"""Pieces every pipeline needs to turn a posed body into asset parts."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from importlib import metadata

import numpy as np

from ..asset.schema import Rig, Skin, Texture
from ..body.base import BodyModel


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted smooth vertex normals (unit length; zero-area fans get +Z)."""
    v = vertices.astype(np.float64)
    f = faces.astype(np.int64)
    fn = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    n = np.zeros_like(v)
    for c in range(3):
        np.add.at(n, f[:, c], fn)
    length = np.linalg.norm(n, axis=1, keepdims=True)
    n = np.where(length > 1e-12, n / np.maximum(length, 1e-12), [0.0, 0.0, 1.0])
    return n.astype(np.float32)


def png_texture(rgb: np.ndarray) -> Texture:
    """Encode an (H, W, 3|4) uint8 image as the asset's PNG texture (fast compression: it is re-read
    by importers once, and level 6 costs ~4x the time for ~10 % smaller files)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, format="PNG", compress_level=3)
    return Texture(buf.getvalue())


def rig_from(model: BodyModel, joint_world: np.ndarray, lengths: np.ndarray) -> Rig:
    """The asset's rig with the given (J, 4, 4) joint matrices as the bind pose."""
    return Rig(
        kind=model.kind,
        joint_names=list(model.joint_names),
        parents=np.asarray(model.parents, np.int32),
        rest=np.asarray(joint_world, np.float32),
        lengths=np.maximum(np.asarray(lengths, np.float32), 1e-4),
    )


def skin_from(model: BodyModel, k: int = 4) -> Skin:
    idx, w = model.skin_weights(k)
    return Skin(idx.astype(np.uint16), w.astype(np.float32))


def versions(*packages: str) -> dict[str, str]:
    out = {}
    for name in ("strata", *packages):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
