"""Past results: every imported result is kept with a record and a thumbnail, to be imported again.

Why: an artist closes the scene, deletes a human, or wants the photo reconstructed yesterday in a new file;
the server may be gone or have dropped old jobs. The connection already saves each result's frames as
``results/<job>.strata``; beside it this module writes ``<job>.json`` (name, kind, time, photo) and
``<job>.png``, a thumbnail: the photo for a reconstruction, else a front view of the human drawn here (no
renderer needed: its vertices splatted into a small depth buffer and shaded by their depth).

The panel lists the newest :data:`SHOWN` records (:func:`records`) with their thumbnails and imports one again
through ``strata.import_asset``.
"""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bpy
import numpy as np

#: Records the panel lists (newest first).
SHOWN = 8
#: Thumbnail side (pixels).
THUMB = 96
#: Front-view colours of the layers by kind (the texture is not read back for a thumbnail).
KIND_RGB = {"body": (0.80, 0.62, 0.52), "bottom": (0.25, 0.32, 0.50), "top": (0.62, 0.30, 0.28),
            "shoes": (0.20, 0.20, 0.22), "hair": (0.30, 0.20, 0.12)}


@dataclass(frozen=True)
class Record:
    """One past result."""

    job_id: str
    name: str
    kind: str
    created: float
    source_image: str
    result: Path
    thumbnail: Path

    @property
    def when(self) -> str:
        return time.strftime("%d %b %H:%M", time.localtime(self.created))


def remember(result: str | Path, asset: Any, *, name: str, kind: str, job_id: str, source_image: str = "") -> None:
    """Write the record and the thumbnail beside a saved result (``results/<job>.strata``)."""
    path = Path(result)
    thumb = path.with_suffix(".png")
    with contextlib.suppress(Exception):  # a thumbnail that cannot be made is no reason to lose the record
        pixels = photo_thumbnail(source_image) if source_image else None
        save_png(thumb, front_view(asset) if pixels is None else pixels)
    path.with_suffix(".json").write_text(json.dumps({
        "job_id": job_id, "name": name, "kind": kind, "created": time.time(), "source_image": source_image}))


def records(folder: Path, limit: int = SHOWN) -> list[Record]:
    """The newest ``limit`` records in ``folder`` whose result file is still there."""
    out = []
    for meta in folder.glob("*.json"):
        result = meta.with_suffix(".strata")
        try:
            data = json.loads(meta.read_text())
        except (OSError, ValueError):
            continue
        if result.exists():
            out.append(Record(str(data.get("job_id", meta.stem)), str(data.get("name", meta.stem)),
                              str(data.get("kind", "")), float(data.get("created", meta.stat().st_mtime)),
                              str(data.get("source_image", "")), result, meta.with_suffix(".png")))
    return sorted(out, key=lambda r: r.created, reverse=True)[:limit]


# --------------------------------------------------------------------------- thumbnails


def front_view(asset: Any, size: int = THUMB) -> np.ndarray:
    """(size, size, 4) float RGBA: the human seen from the front (-Y), every layer's vertices splatted into
    a depth buffer, the nearest kept, shaded darker with depth; transparent around."""
    points, colours = [], []
    for layer in asset.layers:
        v = np.asarray(layer.mesh.vertices, np.float64)
        points.append(v)
        colours.append(np.broadcast_to(KIND_RGB.get(layer.kind, (0.6, 0.6, 0.6)), v.shape))
    p, c = np.concatenate(points), np.concatenate(colours)
    # 1. Fit the body's height (and width) into the square, feet at the bottom.
    lo, hi = p.min(axis=0), p.max(axis=0)
    scale = 0.92 * (size - 1) / max(hi[2] - lo[2], hi[0] - lo[0], 1e-6)
    col = np.round((p[:, 0] - 0.5 * (lo[0] + hi[0])) * scale + 0.5 * (size - 1)).astype(int)
    row = np.round((p[:, 2] - lo[2]) * scale + 0.04 * (size - 1)).astype(int)  # Blender images: row 0 = bottom
    depth = p[:, 1]  # smaller y is nearer the front camera
    ok = (col >= 0) & (col < size) & (row >= 0) & (row < size)
    col, row, depth, c = col[ok], row[ok], depth[ok], c[ok]
    # 2. The nearest point per pixel (sort far -> near so the near one is written last).
    order = np.argsort(-depth)
    image = np.zeros((size, size, 4))
    near = (depth - depth.min()) / max(np.ptp(depth), 1e-6)
    shade = (1.0 - 0.55 * near)[:, None]
    image[row[order], col[order], :3] = (c * shade)[order]
    image[row[order], col[order], 3] = 1.0
    return image


def photo_thumbnail(path: str, size: int = THUMB) -> np.ndarray | None:
    """(size, size, 4) float RGBA of the photo, fitted in the square; None when it cannot be read."""
    try:
        image = bpy.data.images.load(bpy.path.abspath(path), check_existing=False)
    except RuntimeError:
        return None
    try:
        w, h = image.size
        if not w or not h:
            return None
        f = size / max(w, h)
        sw, sh = max(1, round(w * f)), max(1, round(h * f))
        image.scale(sw, sh)
        pixels = np.empty(sw * sh * 4, np.float32)
        image.pixels.foreach_get(pixels)
    finally:
        bpy.data.images.remove(image)
    out = np.zeros((size, size, 4))
    y0, x0 = (size - sh) // 2, (size - sw) // 2
    out[y0:y0 + sh, x0:x0 + sw] = pixels.reshape(sh, sw, 4)
    return out


def save_png(path: Path, rgba: np.ndarray) -> None:
    """Write (H, W, 4) float RGBA (row 0 at the bottom, as Blender's images are) as a PNG."""
    h, w = rgba.shape[:2]
    image = bpy.data.images.new(f"strata-thumb-{path.stem}", w, h, alpha=True)
    try:
        image.pixels.foreach_set(np.ascontiguousarray(rgba, np.float32).reshape(-1))
        image.filepath_raw = str(path)
        image.file_format = "PNG"
        image.save()
    finally:
        bpy.data.images.remove(image)
