"""The two multiview attention processors of PSHuman's transformer blocks, on PyTorch's SDPA.

Both plug into a diffusers ``Attention`` module (its ``to_q/to_k/to_v/to_out`` hold the checkpoint's weights)
and only change *which tokens see each other*:

* :class:`JointDomainSelfAttention` (the block's ``attn1``): each image attends jointly over its own tokens and
  those of the same view in the other domain (normal + colour side by side on the sequence axis), then the face
  view's output is downsampled and blended 50/50 into the front view's top-centre tile. This is how the face
  close-up sharpens the front view at every self-attention layer ("noise-blending fusion").
* :class:`RowwiseMultiviewAttention` (``attn_mv``): body views only; each latent row attends to the same row of
  all body views. Valid because the body views are orthographic cameras at elevation 0, so a 3D point keeps its
  row across views.

Batch layout (fixed by the official pipeline): domains outermost, then groups of ``num_views`` views (the face
last), e.g. ``[normal_uncond(7), normal_cond(7), colour_uncond(7), colour_cond(7)]``. Latents must be square.
Attention masks are not supported (the official blocks assert there is none).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F  # noqa: N812  (attribute looked up at call time: tests count SDPA calls)

from .config import DOMAINS, FACE_BLEND_WEIGHT, FACE_TILE_DIVISOR, FACE_VIEW, FRONT_VIEW


def square_side(tokens: int) -> int:
    """The side of a square latent of ``tokens`` pixels; the multiview layouts are defined on square latents."""
    side = math.isqrt(tokens)
    if side * side != tokens:
        raise ValueError(f"multiview attention needs square latents, got {tokens} tokens per image")
    return side


def attend(attn, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """Multi-head scaled dot-product attention over (N, L, C) tensors with ``attn``'s heads and scale."""
    n, length, channels = query.shape
    heads = attn.heads
    head_dim = channels // heads

    def split(t: torch.Tensor) -> torch.Tensor:
        return t.reshape(t.shape[0], t.shape[1], heads, head_dim).transpose(1, 2)

    out = F.scaled_dot_product_attention(split(query), split(key), split(value), scale=attn.scale)
    return out.transpose(1, 2).reshape(n, length, channels)


def project_out(attn, hidden_states: torch.Tensor) -> torch.Tensor:
    """The output projection and its dropout (``to_out[0]``, ``to_out[1]``)."""
    return attn.to_out[1](attn.to_out[0](hidden_states))


def blend_face_into_front(hidden_states: torch.Tensor, num_views: int, side: int) -> torch.Tensor:
    """Mix each group's face features (downsampled to a third) into its front view's top-centre tile.

    Why: the face close-up is generated at 3x the front view's face resolution; pulling its features into the
    front view at every layer keeps the two consistent. The face branch is detached, as in the official code,
    so training never pushes the face through the front view's loss.
    """
    # 1. the tile: rows [0, side/3), columns [side/3, side - side/3); a third of the side exactly.
    tile = side // FACE_TILE_DIVISOR
    if side % FACE_TILE_DIVISOR:
        raise ValueError(f"the face->front blend needs a latent side divisible by 3 at every level, got {side}")
    # 2. one group of views per row: (groups, views, side, side, C).
    batch, tokens, channels = hidden_states.shape
    views = hidden_states.reshape(batch // num_views, num_views, side, side, channels)
    # 3. the face view, downsampled bilinearly to the tile size.
    face = views[:, FACE_VIEW].detach().permute(0, 3, 1, 2)
    face = F.interpolate(face, size=(tile, tile), mode="bilinear").permute(0, 2, 3, 1)
    # 4. blend it into the front view's tile, leaving every other pixel and view as it was.
    views = views.clone()
    front_tile = views[:, FRONT_VIEW, :tile, tile : side - tile]
    views[:, FRONT_VIEW, :tile, tile : side - tile] = (1 - FACE_BLEND_WEIGHT) * front_tile + FACE_BLEND_WEIGHT * face
    return views.reshape(batch, tokens, channels)


def _join_domains(t: torch.Tensor, domains: int) -> torch.Tensor:
    """(D*N, L, C) -> (N, D*L, C): image i of each domain side by side on the sequence axis."""
    total, length, channels = t.shape
    per_domain = t.reshape(domains, total // domains, length, channels)
    return per_domain.transpose(0, 1).reshape(-1, domains * length, channels)


def _split_domains(t: torch.Tensor, domains: int) -> torch.Tensor:
    """The inverse of :func:`_join_domains`."""
    n, joint, channels = t.shape
    length = joint // domains
    return t.reshape(n, domains, length, channels).transpose(0, 1).reshape(domains * n, length, channels)


class JointDomainSelfAttention:
    """``attn1``: self-attention of each view over both domains, then the face -> front blend."""

    def __init__(self, num_views: int, num_domains: int = len(DOMAINS)) -> None:
        self.num_views = num_views
        self.num_domains = num_domains

    def __call__(self, attn, hidden_states: torch.Tensor, encoder_hidden_states=None, attention_mask=None,
                 temb=None) -> torch.Tensor:
        # 1. check the layout: domains x groups x views, square latents, self-attention only.
        if attention_mask is not None or encoder_hidden_states is not None:
            raise ValueError("the joint-domain self-attention takes neither a mask nor encoder states")
        batch, tokens, _ = hidden_states.shape
        if batch % (self.num_domains * self.num_views):
            raise ValueError(f"batch {batch} is not {self.num_domains} domains x groups of {self.num_views} views")
        side = square_side(tokens)
        # 2. project, then put each view's normal and colour tokens in one sequence.
        query, key, value = (_join_domains(p(hidden_states), self.num_domains)
                             for p in (attn.to_q, attn.to_k, attn.to_v))
        # 3. attend and project out, back to one image per batch entry.
        out = _split_domains(project_out(attn, attend(attn, query, key, value)), self.num_domains)
        # 4. the face -> front blend, in every domain and group.
        return blend_face_into_front(out, self.num_views, side)


class RowwiseMultiviewAttention:
    """``attn_mv``: each latent row attends to the same row of every body view (the face is not passed in)."""

    def __init__(self, num_body_views: int) -> None:
        self.num_body_views = num_body_views

    def __call__(self, attn, hidden_states: torch.Tensor, encoder_hidden_states=None, attention_mask=None,
                 temb=None) -> torch.Tensor:
        # 1. check the layout: groups of body views, square latents.
        if attention_mask is not None or encoder_hidden_states is not None:
            raise ValueError("the row-wise multiview attention takes neither a mask nor encoder states")
        batch, tokens, channels = hidden_states.shape
        views = self.num_body_views
        if batch % views:
            raise ValueError(f"batch {batch} is not groups of {views} body views")
        side = square_side(tokens)
        groups = batch // views

        # 2. (groups*views, rows*cols, C) <-> (groups*rows, views*cols, C).
        def to_rows(t: torch.Tensor) -> torch.Tensor:
            t = t.reshape(groups, views, side, side, channels).transpose(1, 2)
            return t.reshape(groups * side, views * side, channels)

        def from_rows(t: torch.Tensor) -> torch.Tensor:
            t = t.reshape(groups, side, views, side, channels).transpose(1, 2)
            return t.reshape(batch, tokens, channels)

        # 3. project, attend along rows, project out.
        query, key, value = (to_rows(p(hidden_states)) for p in (attn.to_q, attn.to_k, attn.to_v))
        return from_rows(project_out(attn, attend(attn, query, key, value)))
