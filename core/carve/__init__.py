"""Explicit carving: continuous remeshing of a mesh against multiview normal maps and masks.

``carve(vertices, faces, views, options=..., rasterizer=...)`` is the entry point; :data:`PRESETS` holds
``fast`` (two CPU cores) and ``full`` (PSHuman's settings on a GPU). Modules: :mod:`.remesh` (split,
collapse, flip), :mod:`.optimizer` (Palfinger's adaptive optimiser and the options), :mod:`.losses`
(normal and silhouette terms), :mod:`.carve` (the loop), :mod:`.sphere` (icospheres).
"""

from __future__ import annotations

from .carve import carve
from .optimizer import FAST, FULL, PRESETS, AdaptiveMeshOptimizer, CarveOptions

__all__ = ["FAST", "FULL", "PRESETS", "AdaptiveMeshOptimizer", "CarveOptions", "carve"]
