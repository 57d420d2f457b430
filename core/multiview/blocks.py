"""PSHuman's transformer block: self-attention over both domains, row-wise multiview attention, text
cross-attention, feed-forward.

Why built from a diffusers ``BasicTransformerBlock``: the released block is SD-2's block (same ``norm1/attn1/
norm2/attn2/norm3/ff`` names and shapes) plus ``norm_mv/attn_mv`` for the row-wise attention. Taking the
existing submodules over keeps the checkpoint's names, avoids allocating the block twice, and leaves only the
multiview wiring (processors and the body/face split) to this file.
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers.models.attention import BasicTransformerBlock
from diffusers.models.attention_processor import Attention, AttnProcessor2_0
from torch import nn

from .attention import JointDomainSelfAttention, RowwiseMultiviewAttention


class MultiviewTransformerBlock(nn.Module):
    """One transformer block of ``UNetMV2DConditionModel`` (``selfattn_block="self_rowwise"``, ``mvcd_attention``).

    Order per block, each with a pre-norm and a residual: 1 joint normal+colour self-attention with the
    face -> front blend, 2 row-wise attention across the body views (the face view passes through unchanged),
    3 cross-attention to the text embeddings, 4 GEGLU feed-forward.
    """

    def __init__(self, base: BasicTransformerBlock, num_views: int) -> None:
        super().__init__()
        # 1. only SD-2's plain block is the released one: layer norms, self + cross attention, no extras.
        plain = base.norm_type == "layer_norm" and base.pos_embed is None
        if not plain or base.only_cross_attention or base.attn2 is None:
            raise ValueError("the multiview block is built on a layer-norm self+cross-attention block")
        dim = base.dim
        self.num_views = num_views
        # 2. the submodules, in the checkpoint's order (attn_mv's output projection starts at zero, as trained).
        self.norm1 = base.norm1
        self.attn1 = base.attn1
        self.norm_mv = nn.LayerNorm(dim, eps=base.norm1.eps, elementwise_affine=base.norm_elementwise_affine)
        self.attn_mv = Attention(query_dim=dim, heads=base.num_attention_heads, dim_head=base.attention_head_dim,
                                 dropout=base.dropout, bias=base.attention_bias,
                                 upcast_attention=base.attn1.upcast_attention)
        nn.init.zeros_(self.attn_mv.to_out[0].weight)
        self.norm2 = base.norm2
        self.attn2 = base.attn2
        self.norm3 = base.norm3
        self.ff = base.ff
        # 3. the processors that make it multiview; cross-attention is plain SDPA.
        self.attn1.set_processor(JointDomainSelfAttention(num_views))
        self.attn_mv.set_processor(RowwiseMultiviewAttention(num_views - 1))
        self.attn2.set_processor(AttnProcessor2_0())

    def forward(self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None = None,
                encoder_hidden_states: torch.Tensor | None = None,
                encoder_attention_mask: torch.Tensor | None = None, timestep: Any = None,
                cross_attention_kwargs: dict[str, Any] | None = None, class_labels: Any = None,
                added_cond_kwargs: dict[str, Any] | None = None) -> torch.Tensor:
        """(B, H*W, C) -> (B, H*W, C); the signature is the one diffusers' ``Transformer2DModel`` calls."""
        if attention_mask is not None:
            raise ValueError("the multiview block takes no self-attention mask")
        # 1. joint-domain self-attention and the face -> front blend.
        hidden_states = self.attn1(self.norm1(hidden_states)) + hidden_states
        # 2. row-wise attention across the body views.
        hidden_states = self._rowwise(hidden_states)
        # 3. cross-attention to the prompt embeddings.
        hidden_states = self.attn2(self.norm2(hidden_states), encoder_hidden_states=encoder_hidden_states,
                                   attention_mask=encoder_attention_mask) + hidden_states
        # 4. feed-forward.
        return self.ff(self.norm3(hidden_states)) + hidden_states

    def _rowwise(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """Residual row-wise attention on the body views of every group; the face view (last) is untouched."""
        batch, tokens, channels = hidden_states.shape
        if batch % self.num_views:
            raise ValueError(f"batch {batch} is not groups of {self.num_views} views")
        groups = hidden_states.reshape(batch // self.num_views, self.num_views, tokens, channels)
        body, face = groups[:, :-1].reshape(-1, tokens, channels), groups[:, -1:]
        body = self.attn_mv(self.norm_mv(body)) + body
        body = body.reshape(batch // self.num_views, self.num_views - 1, tokens, channels)
        return torch.cat([body, face], dim=1).reshape(batch, tokens, channels)
