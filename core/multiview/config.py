"""The released PSHuman UNet's configuration, as data, and the facts of its multiview layout.

Why a copy here: the checkpoint's ``unet/config.json`` is what :func:`load_pshuman_unet` reads, but the tests
and the registry must know the released architecture without the 5 GB download. The values are transcribed
from the official ``UNetMV2DConditionModel`` defaults plus ``configs/inference-768-6view.yaml`` and
``from_pretrained_2d`` (pengHTYX/PSHuman at f2a6351): an SD-2.1-unCLIP UNet with 8 input channels, 7 views
(6 body views + 1 face close-up), joint normal/colour self-attention and row-wise multiview attention.

Torch-free: importing this module costs nothing.
"""

from __future__ import annotations

from typing import Any

#: Index of the front body view inside one group of views (the face is blended into it).
FRONT_VIEW = 0
#: The face close-up is the last view of each group (index ``num_views - 1``).
FACE_VIEW = -1
#: Domains generated jointly, in batch order: normal maps first, then colour images.
DOMAINS = ("normal", "colour")
#: The face feature map is blended into the front view's top-centre tile of this many rows/columns per side.
FACE_TILE_DIVISOR = 3
#: Weight of the face features in that blend (the official code mixes 50/50 at every self-attention layer).
FACE_BLEND_WEIGHT = 0.5

#: Block types of the official config and the diffusers blocks whose layout (resnets, transformer wrappers,
#: samplers) they share; only the transformer blocks inside differ, and those are swapped in by the model.
BLOCK_TYPES = {
    "CrossAttnDownBlockMV2D": "CrossAttnDownBlock2D",
    "UNetMidBlockMV2DCrossAttn": "UNetMidBlock2DCrossAttn",
    "CrossAttnUpBlockMV2D": "CrossAttnUpBlock2D",
    "DownBlock2D": "DownBlock2D",
    "UpBlock2D": "UpBlock2D",
}

#: The values of the official multiview switches that the released checkpoint uses; the model refuses others
#: (they select code paths, e.g. mid-level cross-domain attention or camera regressors, that it was not built
#: with and that this implementation does not carry).
RELEASED_SWITCHES: dict[str, Any] = {
    "mvcd_attention": True,
    "multiview_attention": True,
    "selfattn_block": "self_rowwise",
    "cd_attention_mid": False,
    "cd_attention_last": False,
    "regress_elevation": False,
    "regress_focal_length": False,
    "use_dino": False,
    "addition_downsample": False,
    "dual_cross_attention": False,
}

#: ``unet/config.json`` of pengHTYX/PSHuman_Unclip_768_6views (the SMPL-free 768 px, 7-view model).
PSHUMAN_UNET_CONFIG: dict[str, Any] = {
    "sample_size": 96,
    "in_channels": 8,
    "out_channels": 4,
    "center_input_sample": False,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "down_block_types": ["CrossAttnDownBlockMV2D", "CrossAttnDownBlockMV2D", "CrossAttnDownBlockMV2D", "DownBlock2D"],
    "mid_block_type": "UNetMidBlockMV2DCrossAttn",
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlockMV2D", "CrossAttnUpBlockMV2D", "CrossAttnUpBlockMV2D"],
    "only_cross_attention": False,
    "block_out_channels": [320, 640, 1280, 1280],
    "layers_per_block": 2,
    "downsample_padding": 1,
    "mid_block_scale_factor": 1,
    "act_fn": "silu",
    "norm_num_groups": 32,
    "norm_eps": 1e-05,
    "cross_attention_dim": 1024,
    "transformer_layers_per_block": 1,
    # diffusers' legacy naming: for SD-2 UNets this list is the number of heads per level (head size 64).
    "attention_head_dim": [5, 10, 20, 20],
    "dual_cross_attention": False,
    "use_linear_projection": True,
    "class_embed_type": "projection",
    "projection_class_embeddings_input_dim": 2048,
    "upcast_attention": True,
    "num_views": 7,
    "cd_attention_last": False,
    "cd_attention_mid": False,
    "multiview_attention": True,
    "sparse_mv_attention": True,
    "selfattn_block": "self_rowwise",
    "mvcd_attention": True,
    "regress_elevation": False,
    "regress_focal_length": False,
    "projection_camera_embeddings_input_dim": 2,
    "num_regress_blocks": 3,
    "use_dino": False,
    "addition_downsample": False,
}

#: Parameter count of that UNet (802 tensors), the figure the meta-device test checks against.
PSHUMAN_UNET_PARAMETERS = 919_783_684


def unsupported_switches(config: dict[str, Any]) -> dict[str, Any]:
    """The multiview switches in ``config`` that differ from the released checkpoint's, with their values."""
    return {k: config[k] for k, v in RELEASED_SWITCHES.items() if k in config and config[k] != v}
