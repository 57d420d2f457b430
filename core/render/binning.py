"""Vectorised pixel enumeration and keyed z-buffer helpers shared by the torch code paths.

Why this exists: a CPU rasterizer in torch cannot loop over pixels or triangles in
Python. Instead every primitive (triangle, contour edge) lists the pixels of its own
bounding box in one ragged, flattened batch ("bbox binning": ``repeat_interleave`` of
the primitive ids by box size), tests them all at once, and the winner per pixel is
picked with one ``scatter_reduce(amin)`` over 64-bit keys that pack
``(quantised depth or distance) << 32 | primitive id``. For a body mesh the triangles
are a few pixels wide, so the batch holds only ~4-10 candidates per triangle.
"""

from __future__ import annotations

import torch

#: Largest 64-bit key; marks "nothing here" in keyed buffers.
EMPTY_KEY = torch.iinfo(torch.int64).max
_ID_MASK = 0xFFFFFFFF


def pixel_ranges(
    lo_x: torch.Tensor, hi_x: torch.Tensor, lo_y: torch.Tensor, hi_y: torch.Tensor, width: int, height: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Inclusive pixel index ranges whose *centres* lie in ``[lo, hi]`` (clamped to the image).

    Pixel ``i`` has its centre at ``i + 0.5``, so the first centre >= lo is
    ``ceil(lo - 0.5)`` and the last <= hi is ``floor(hi - 0.5)``.
    """
    # Clamping lo to [0, size] and hi to [-1, size - 1] turns boxes that lie entirely off
    # the image into empty ones (hi < lo), which callers drop via box_counts() == 0.
    x0 = torch.ceil(lo_x - 0.5).clamp(0, width).long()
    x1 = torch.floor(hi_x - 0.5).clamp(-1, width - 1).long()
    y0 = torch.ceil(lo_y - 0.5).clamp(0, height).long()
    y1 = torch.floor(hi_y - 0.5).clamp(-1, height - 1).long()
    return x0, x1, y0, y1


def box_counts(x0: torch.Tensor, x1: torch.Tensor, y0: torch.Tensor, y1: torch.Tensor) -> torch.Tensor:
    """Number of pixels in each inclusive box (0 for empty boxes)."""
    return (x1 - x0 + 1).clamp_min(0) * (y1 - y0 + 1).clamp_min(0)


def chunk_bounds(counts: torch.Tensor, budget: int) -> list[tuple[int, int]]:
    """Split primitives into consecutive runs of about ``budget`` candidate pixels each.

    Why: bounds peak memory (about 100 bytes per candidate) when a few huge triangles
    cover the screen, while keeping the common case to a single batch.
    """
    n = int(counts.numel())
    if n == 0:
        return []
    total = int(counts.sum())
    if total <= budget:
        return [(0, n)]
    csum = torch.cumsum(counts, 0)
    cuts = torch.searchsorted(csum, torch.arange(budget, total, budget, device=counts.device), right=True)
    edges = sorted({0, n, *[int(c) for c in cuts.tolist() if 0 < int(c) < n]})
    return list(zip(edges[:-1], edges[1:], strict=True))


def pack_keys(quantised: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """64-bit keys ordering first by ``quantised`` (0 .. 2**31-1), then by ``ids`` (< 2**32)."""
    return (quantised << 32) | ids


def key_ids(keys: torch.Tensor) -> torch.Tensor:
    """Primitive id stored in the low 32 bits of keys; -1 where the key is :data:`EMPTY_KEY`."""
    return torch.where(keys == EMPTY_KEY, torch.full_like(keys, -1), keys & _ID_MASK)


def float_bits_key(values: torch.Tensor) -> torch.Tensor:
    """Order-preserving int64 for non-negative float32 values (their IEEE bit pattern).

    Why: distances are non-negative, and for those the raw float32 bits sort exactly like
    the floats, so no range is needed to quantise them.
    """
    return values.float().contiguous().view(torch.int32).long()


def scatter_min_keys(
    keys: torch.Tensor, index: torch.Tensor, size: int, out: torch.Tensor | None = None
) -> torch.Tensor:
    """Per-slot minimum key (``EMPTY_KEY`` where nothing landed); accumulates into ``out``."""
    if out is None:
        out = torch.full((size,), EMPTY_KEY, dtype=torch.int64, device=keys.device)
    if keys.numel():
        out.scatter_reduce_(0, index, keys, reduce="amin", include_self=True)
    return out
