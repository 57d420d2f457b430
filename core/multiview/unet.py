"""``PSHumanUNet``: the released PSHuman multiview UNet (``UNetMV2DConditionModel``) on diffusers' UNet.

Why a ``UNet2DConditionModel`` subclass: outside its transformer blocks the released UNet *is* SD-2.1-unCLIP's
(time + 2048-d projection class embedding, resnets, samplers, 8 input channels), so diffusers' own blocks and
forward give those parts exactly; the model then swaps each transformer block for a
:class:`~.blocks.MultiviewTransformerBlock`. The config keeps the official key names and block types so that
the checkpoint's ``unet/config.json`` builds it unchanged and ``save_pretrained`` writes the same layout.

``forward(sample, timestep, encoder_hidden_states, class_labels)`` takes the batch with domains outermost and
groups of ``num_views`` views inside (face last): ``[normal_uncond, normal_cond, colour_uncond, colour_cond]``
x 7 views at CFG, or one CFG half (14). Latent sides must be multiples of 3 * 2**(levels - 1) (96 at 768 px).
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers.configuration_utils import register_to_config
from diffusers.models.attention import BasicTransformerBlock
from diffusers.models.unets.unet_2d_condition import UNet2DConditionModel

from .blocks import MultiviewTransformerBlock
from .config import BLOCK_TYPES, DOMAINS, FACE_TILE_DIVISOR, unsupported_switches


def _diffusers_block(name: str) -> str:
    """The diffusers block type that has the official block type's layout."""
    if name not in BLOCK_TYPES:
        raise ValueError(f"unknown UNet block type {name!r} (known: {', '.join(BLOCK_TYPES)})")
    return BLOCK_TYPES[name]


class PSHumanUNet(UNet2DConditionModel):
    """PSHuman's multiview UNet: same ``state_dict`` names and shapes as the official model, SDPA attention."""

    @register_to_config
    def __init__(
        self,
        sample_size: int | None = None,
        in_channels: int = 8,
        out_channels: int = 4,
        center_input_sample: bool = False,
        flip_sin_to_cos: bool = True,
        freq_shift: int = 0,
        down_block_types: tuple[str, ...] = ("CrossAttnDownBlockMV2D", "CrossAttnDownBlockMV2D",
                                             "CrossAttnDownBlockMV2D", "DownBlock2D"),
        mid_block_type: str | None = "UNetMidBlockMV2DCrossAttn",
        up_block_types: tuple[str, ...] = ("UpBlock2D", "CrossAttnUpBlockMV2D", "CrossAttnUpBlockMV2D",
                                           "CrossAttnUpBlockMV2D"),
        only_cross_attention: bool | tuple[bool, ...] = False,
        block_out_channels: tuple[int, ...] = (320, 640, 1280, 1280),
        layers_per_block: int | tuple[int, ...] = 2,
        downsample_padding: int = 1,
        mid_block_scale_factor: float = 1,
        act_fn: str = "silu",
        norm_num_groups: int | None = 32,
        norm_eps: float = 1e-5,
        cross_attention_dim: int | tuple[int, ...] = 1280,
        transformer_layers_per_block: int | tuple[int, ...] = 1,
        encoder_hid_dim: int | None = None,
        encoder_hid_dim_type: str | None = None,
        attention_head_dim: int | tuple[int, ...] = 8,
        num_attention_heads: int | tuple[int, ...] | None = None,
        dual_cross_attention: bool = False,
        use_linear_projection: bool = False,
        class_embed_type: str | None = None,
        addition_embed_type: str | None = None,
        addition_time_embed_dim: int | None = None,
        num_class_embeds: int | None = None,
        upcast_attention: bool = False,
        resnet_time_scale_shift: str = "default",
        resnet_skip_time_act: bool = False,
        resnet_out_scale_factor: float = 1.0,
        time_embedding_type: str = "positional",
        time_embedding_dim: int | None = None,
        time_embedding_act_fn: str | None = None,
        timestep_post_act: str | None = None,
        time_cond_proj_dim: int | None = None,
        conv_in_kernel: int = 3,
        conv_out_kernel: int = 3,
        projection_class_embeddings_input_dim: int | None = None,
        projection_camera_embeddings_input_dim: int | None = None,
        class_embeddings_concat: bool = False,
        mid_block_only_cross_attention: bool | None = None,
        cross_attention_norm: str | None = None,
        addition_embed_type_num_heads: int = 64,
        num_views: int = 7,
        cd_attention_last: bool = False,
        cd_attention_mid: bool = False,
        multiview_attention: bool = True,
        sparse_mv_attention: bool = True,
        selfattn_block: str = "self_rowwise",
        mvcd_attention: bool = True,
        regress_elevation: bool = False,
        regress_focal_length: bool = False,
        num_regress_blocks: int = 3,
        use_dino: bool = False,
        addition_downsample: bool = False,
        addition_channels: tuple[int, ...] | None = (1280, 1280, 1280),
    ) -> None:
        # 1. only the released variant: other switches select layers this model does not have.
        foreign = unsupported_switches({
            "mvcd_attention": mvcd_attention, "multiview_attention": multiview_attention,
            "selfattn_block": selfattn_block, "cd_attention_mid": cd_attention_mid,
            "cd_attention_last": cd_attention_last, "regress_elevation": regress_elevation,
            "regress_focal_length": regress_focal_length, "use_dino": use_dino,
            "addition_downsample": addition_downsample, "dual_cross_attention": dual_cross_attention})
        if foreign:
            raise ValueError(f"not the released PSHuman UNet: unsupported settings {foreign}")
        if num_views < 2:
            raise ValueError(f"num_views counts the body views plus the face view, got {num_views}")
        # 2. diffusers' UNet with the same layout; __wrapped__ skips its config registration so the config
        #    keeps the official keys and block names (ours was registered by the decorator above).
        UNet2DConditionModel.__init__.__wrapped__(
            self, sample_size=sample_size, in_channels=in_channels, out_channels=out_channels,
            center_input_sample=center_input_sample, flip_sin_to_cos=flip_sin_to_cos, freq_shift=freq_shift,
            down_block_types=tuple(_diffusers_block(b) for b in down_block_types),
            mid_block_type=_diffusers_block(mid_block_type) if mid_block_type else None,
            up_block_types=tuple(_diffusers_block(b) for b in up_block_types),
            only_cross_attention=only_cross_attention, block_out_channels=block_out_channels,
            layers_per_block=layers_per_block, downsample_padding=downsample_padding,
            mid_block_scale_factor=mid_block_scale_factor, act_fn=act_fn, norm_num_groups=norm_num_groups,
            norm_eps=norm_eps, cross_attention_dim=cross_attention_dim,
            transformer_layers_per_block=transformer_layers_per_block, encoder_hid_dim=encoder_hid_dim,
            encoder_hid_dim_type=encoder_hid_dim_type, attention_head_dim=attention_head_dim,
            num_attention_heads=num_attention_heads, dual_cross_attention=dual_cross_attention,
            use_linear_projection=use_linear_projection, class_embed_type=class_embed_type,
            addition_embed_type=addition_embed_type, addition_time_embed_dim=addition_time_embed_dim,
            num_class_embeds=num_class_embeds, upcast_attention=upcast_attention,
            resnet_time_scale_shift=resnet_time_scale_shift, resnet_skip_time_act=resnet_skip_time_act,
            resnet_out_scale_factor=resnet_out_scale_factor, time_embedding_type=time_embedding_type,
            time_embedding_dim=time_embedding_dim, time_embedding_act_fn=time_embedding_act_fn,
            timestep_post_act=timestep_post_act, time_cond_proj_dim=time_cond_proj_dim,
            conv_in_kernel=conv_in_kernel, conv_out_kernel=conv_out_kernel,
            projection_class_embeddings_input_dim=projection_class_embeddings_input_dim,
            class_embeddings_concat=class_embeddings_concat,
            mid_block_only_cross_attention=mid_block_only_cross_attention,
            cross_attention_norm=cross_attention_norm, addition_embed_type_num_heads=addition_embed_type_num_heads,
        )
        # 3. every transformer block becomes a multiview block.
        self._swap_transformer_blocks(num_views)

    def _swap_transformer_blocks(self, num_views: int) -> None:
        """Replace each SD transformer block by a multiview block that takes its submodules over."""
        for module in list(self.modules()):
            blocks = getattr(module, "transformer_blocks", None)
            if blocks is None:
                continue
            for i, block in enumerate(blocks):
                if isinstance(block, BasicTransformerBlock):
                    blocks[i] = MultiviewTransformerBlock(block, num_views)

    # The multiview processors carry the architecture; diffusers' generic processor switches would drop it.
    def set_attn_processor(self, processor: Any) -> None:  # noqa: D102
        raise NotImplementedError("PSHumanUNet's attention processors are part of its architecture (SDPA)")

    def set_default_attn_processor(self) -> None:  # noqa: D102
        raise NotImplementedError("PSHumanUNet's attention processors are part of its architecture (SDPA)")

    def check_batch(self, sample: torch.Tensor) -> None:
        """Refuse a batch the multiview attention cannot split, with the layout it expects."""
        views = self.config.num_views
        batch, _, height, width = sample.shape
        group = len(DOMAINS) * views
        if batch % group:
            raise ValueError(f"batch of {batch}: expected a multiple of {group} ({len(DOMAINS)} domains x "
                             f"{views} views, e.g. [normal_uncond, normal_cond, colour_uncond, colour_cond] x {views})")
        step = FACE_TILE_DIVISOR * 2 ** (len(self.config.block_out_channels) - 1)
        if height != width or height % step:
            raise ValueError(f"latents of {height}x{width}: expected square latents whose side is a multiple of {step}")

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor | float | int,
                encoder_hidden_states: torch.Tensor, class_labels: torch.Tensor | None = None,
                return_dict: bool = True, **kwargs: Any) -> Any:
        """The noise prediction for every image (an object with ``.sample``, or a 1-tuple without return_dict)."""
        self.check_batch(sample)
        return super().forward(sample, timestep, encoder_hidden_states, class_labels=class_labels,
                               return_dict=return_dict, **kwargs)
