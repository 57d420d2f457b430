"""A UV atlas for a surface that has none (a carved mesh): xatlas charts packed into one square texture.

Why xatlas: carving changes the mesh's topology, so the body model's UV layout no longer applies; the asset
wants a real UV texture (per-corner UVs, a PNG), not vertex colours. xatlas (MIT) segments the surface
into charts of low distortion and packs them; the mesh stays welded (the asset stores UVs per corner).
"""

from __future__ import annotations

import numpy as np

#: Texels of padding between charts at the texture size packed for (mip-mapping and bilinear filtering
#: must not mix charts; the bake also fills the gutters).
PADDING_TEXELS = 4


def unwrap(vertices: np.ndarray, faces: np.ndarray, *, size: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """``(uvs (U, 2) float32 in [0, 1], origin bottom-left; uv_faces (F, 3) uint32)`` for the mesh.

    1. chart and pack with xatlas for a ``size`` x ``size`` texture (few optimisation passes: the charts of a
       carved body are simple, and the default settings cost 3x the time for no visible gain);
    2. check that xatlas kept the faces and their order (its per-corner vertex map gives the faces back);
    3. flip V into the asset's bottom-left origin.
    """
    import xatlas

    v = np.ascontiguousarray(vertices, np.float32)
    f = np.ascontiguousarray(faces, np.uint32)
    atlas = xatlas.Atlas()
    atlas.add_mesh(v, f)
    charts = xatlas.ChartOptions()
    charts.max_iterations = 1
    pack = xatlas.PackOptions()
    pack.resolution = int(size)
    pack.padding = PADDING_TEXELS
    pack.bilinear = True
    atlas.generate(charts, pack)
    vmapping, uv_faces, uvs = atlas[0]
    if uv_faces.shape != f.shape or not np.array_equal(vmapping[uv_faces], f):
        raise RuntimeError("xatlas changed the mesh's faces; cannot map its UVs back")
    uvs = np.asarray(uvs, np.float32).copy()
    uvs[:, 1] = 1.0 - uvs[:, 1]  # xatlas: origin top-left
    return uvs, np.asarray(uv_faces, np.uint32)
