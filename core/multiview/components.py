"""Every component of the PSHuman pipeline, loaded from a local checkpoint folder, strictly and offline.

Why our own loader and not ``DiffusionPipeline.from_pretrained``: the checkpoint's ``model_index.json`` names
the UNet class ``mvdiffusion.models_unclip.unet_mv2d_condition.UNetMV2DConditionModel``, a module that exists
only in the official repository (PSHuman issues #11/#18/#20), so diffusers cannot assemble the pipeline. Here
each component is built explicitly from its subfolder: our :class:`~.unet.PSHumanUNet` (through
:func:`~.loading.load_pshuman_unet`), diffusers' ``AutoencoderKL`` and ``StableUnCLIPImageNormalizer``,
transformers' CLIP vision encoder and image processor, and the two schedulers by the class their own
``scheduler_config.json`` names. The text encoder and tokenizer are used once, to compute the 14 fixed prompt
embeddings (what the official code ships precomputed as ``fixed_prompt_embeds_7view``), and then dropped:
they are 1.3 GB that the generation never touches again.

The folder layout (pengHTYX/PSHuman_Unclip_768_6views, the ``register_modules`` of its pipeline) is
:data:`LAYOUT`; anything missing is one :class:`~.errors.MultiviewUnavailableError` that lists every missing
piece. Nothing is downloaded (``local_files_only`` everywhere).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import MultiviewUnavailableError
from .loading import HINT, find_unet_folder, load_pshuman_unet
from .policy import MemoryPolicy, memory_policy

if TYPE_CHECKING:
    import torch

    from strata.core.compute import ComputeEnv

    from .unet import PSHumanUNet

#: Subfolder -> the files it must hold (any one of a tuple's alternatives), as in the Hugging Face repository.
LAYOUT: dict[str, tuple[tuple[str, ...], ...]] = {
    "unet": (("config.json",), ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin",
                                "diffusion_pytorch_model.safetensors.index.json")),
    "vae": (("config.json",), ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")),
    "image_encoder": (("config.json",), ("model.safetensors", "pytorch_model.bin")),
    "feature_extractor": (("preprocessor_config.json",),),
    "image_normalizer": (("config.json",), ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin")),
    "image_noising_scheduler": (("scheduler_config.json",),),
    "scheduler": (("scheduler_config.json",),),
    "text_encoder": (("config.json",), ("model.safetensors", "pytorch_model.bin")),
    "tokenizer": (("vocab.json", "tokenizer.json"), ("merges.txt", "tokenizer.json")),
}

#: The seven views of one group, in the UNet's order (the face close-up last), as the prompts name them.
PROMPT_VIEWS = ("front", "front_right", "right", "back", "left", "front_left", "face")
#: The fixed prompt of each (view, domain); "normal" then "color", as the official embeddings were made.
PROMPT = "a rendering image of 3D human, {view} view, {domain} map."


def prompts(domain: str) -> list[str]:
    """The 7 prompts of ``domain`` ("normal" or "color"), in view order."""
    return [PROMPT.format(view=v, domain=domain) for v in PROMPT_VIEWS]


@dataclass
class PSHumanComponents:
    """The loaded networks, processors and schedulers, plus the prompt embeddings computed at load time.

    ``prompt_embeds`` is (14, tokens, width): the 7 normal-map prompts then the 7 colour-map prompts, on the
    device in the UNet's dtype (the text encoder that made them is gone)."""

    unet: PSHumanUNet
    vae: Any  # diffusers.AutoencoderKL
    image_encoder: Any  # transformers.CLIPVisionModelWithProjection
    feature_extractor: Any  # transformers.CLIPImageProcessor
    image_normalizer: Any  # diffusers StableUnCLIPImageNormalizer
    image_noising_scheduler: Any  # a diffusers scheduler (DDPM in SD-2.1-unCLIP)
    scheduler: Any  # the sampler named by scheduler/scheduler_config.json
    prompt_embeds: torch.Tensor
    policy: MemoryPolicy
    device: torch.device
    dtype: torch.dtype
    root: Path

    @property
    def vae_scale_factor(self) -> int:
        """Pixels per latent cell (8 for SD's VAE)."""
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    @property
    def image_size(self) -> int:
        """The side of the square images the UNet was configured for (96 latents x 8 = 768 px)."""
        return int(self.unet.config.sample_size) * self.vae_scale_factor


def checkpoint_root(folder: str | Path) -> Path:
    """The checkpoint's root (the folder holding ``unet/``, ``vae/``, ...): ``folder`` itself, its ``unet/``'s
    parent, or the snapshot of a Hugging Face cache folder (``models--pengHTYX--PSHuman_Unclip_768_6views``)."""
    unet_dir = find_unet_folder(Path(folder))
    return unet_dir.parent if unet_dir.name == "unet" else unet_dir


def missing_parts(root: Path) -> list[str]:
    """Every ``sub/file`` of :data:`LAYOUT` absent under ``root`` (alternatives joined by " or ")."""
    missing = []
    for sub, requirements in LAYOUT.items():
        for alternatives in requirements:
            if not any((root / sub / name).is_file() for name in alternatives):
                missing.append(" or ".join(f"{sub}/{name}" for name in alternatives))
    return missing


def layout_text() -> str:
    """The expected layout, one line per subfolder (for error messages and docs)."""
    return "; ".join(f"{sub}/{{{', '.join(' | '.join(a) for a in req)}}}" for sub, req in LAYOUT.items())


def load_pshuman(folder: str | Path, env: ComputeEnv, policy: MemoryPolicy | str | None = None) -> PSHumanComponents:
    """Build every component from the checkpoint ``folder`` for ``env`` under ``policy`` (see the module doc).

    Components go to ``env.torch_device`` in the policy's dtype (else ``env.torch_dtype``), the VAE in
    ``policy.vae_dtype`` when given; with ``offload != "none"`` they stay on the CPU until they run.

    Raises:
        MultiviewUnavailableError: a package is missing, or the folder lacks a component (every missing file
            is named, with the expected layout), or a component's files cannot be read.
    """
    torch = _import_stack()
    policy = memory_policy(policy, device=env.device)
    # 1. the folder: one error listing everything missing, before any weight is read.
    try:
        root = checkpoint_root(folder)
    except MultiviewUnavailableError as exc:
        raise MultiviewUnavailableError(f"no PSHuman checkpoint in {folder}: expected {layout_text()}",
                                        hint=HINT, path=str(folder)) from exc
    missing = missing_parts(root)
    if missing:
        raise MultiviewUnavailableError(f"the PSHuman checkpoint in {root} is incomplete: missing "
                                        f"{', '.join(missing)} (expected {layout_text()})", hint=HINT,
                                        path=str(root), missing=missing)
    device = env.torch_device
    dtype = getattr(torch, policy.dtype) if policy.dtype else env.torch_dtype
    vae_dtype = getattr(torch, policy.vae_dtype) if policy.vae_dtype else dtype
    home = torch.device("cpu") if policy.offload != "none" else device
    # 2. the networks and processors, each from its own subfolder.
    from diffusers import AutoencoderKL
    from diffusers.pipelines.stable_diffusion.stable_unclip_image_normalizer import StableUnCLIPImageNormalizer
    from transformers import CLIPImageProcessor, CLIPVisionModelWithProjection

    unet = load_pshuman_unet(root, device=home, dtype=dtype)
    vae = _load(root, "vae", lambda p: AutoencoderKL.from_pretrained(p, local_files_only=True))
    image_encoder = _load(root, "image_encoder",
                          lambda p: CLIPVisionModelWithProjection.from_pretrained(p, local_files_only=True))
    feature_extractor = _load(root, "feature_extractor",
                              lambda p: CLIPImageProcessor.from_pretrained(p, local_files_only=True))
    normalizer = _load(root, "image_normalizer",
                       lambda p: StableUnCLIPImageNormalizer.from_pretrained(p, local_files_only=True))
    vae = vae.to(device=home, dtype=vae_dtype).eval()
    image_encoder = image_encoder.to(device=home, dtype=dtype).eval()
    normalizer = normalizer.to(device, dtype)  # two vectors, never offloaded (its own to(device, dtype))
    # 3. the schedulers, by the class their configs name.
    noising = load_scheduler(root / "image_noising_scheduler")
    scheduler = load_scheduler(root / "scheduler")
    # 4. the 14 prompt embeddings, once; the text encoder is dropped when this returns.
    embeds = encode_prompts(root, device=device, dtype=dtype)
    # 5. the memory policy's VAE switches and streamed weights.
    if policy.vae_slicing:
        vae.enable_slicing()
    if policy.vae_tiling:
        vae.enable_tiling()
    if policy.offload == "sequential":
        _stream_weights([unet, vae, image_encoder], device)
    return PSHumanComponents(unet=unet, vae=vae, image_encoder=image_encoder, feature_extractor=feature_extractor,
                             image_normalizer=normalizer, image_noising_scheduler=noising, scheduler=scheduler,
                             prompt_embeds=embeds, policy=policy, device=device, dtype=dtype, root=root)


def load_scheduler(folder: Path) -> Any:
    """The diffusers scheduler that ``folder/scheduler_config.json`` names in ``_class_name``, from that config.

    Only diffusers' own scheduler classes are accepted (a config naming anything else is not this model)."""
    import diffusers

    path = folder / "scheduler_config.json"
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise MultiviewUnavailableError(f"cannot read {path}: {exc}", hint=HINT, path=str(path)) from exc
    name = str(config.get("_class_name", ""))
    cls = getattr(diffusers, name, None)
    if not (isinstance(cls, type) and issubclass(cls, diffusers.SchedulerMixin)):
        raise MultiviewUnavailableError(f"{path} names {name!r}, which is not a diffusers scheduler",
                                        hint=HINT, path=str(path))
    return cls.from_config(config)


def encode_prompts(root: Path, device: Any, dtype: Any) -> torch.Tensor:
    """(14, tokens, width) last hidden states of the checkpoint's CLIP text encoder for the 7 normal-map then the
    7 colour-map prompts, padded to the tokenizer's maximum length (how the official embeddings were made)."""
    import torch
    from transformers import CLIPTextModel, CLIPTokenizer

    tokenizer = _load(root, "tokenizer", lambda p: CLIPTokenizer.from_pretrained(p, local_files_only=True))
    encoder = _load(root, "text_encoder", lambda p: CLIPTextModel.from_pretrained(p, local_files_only=True))
    encoder = encoder.to(device=device, dtype=dtype).eval()
    tokens = tokenizer(prompts("normal") + prompts("color"), padding="max_length",
                       max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt")
    with torch.no_grad():
        embeds = encoder(tokens.input_ids.to(device))[0]
    del encoder  # the only reference: its weights go with it
    return embeds.to(dtype=dtype)


def _load(root: Path, sub: str, build: Any) -> Any:
    """``build(root / sub)``, with an unreadable or foreign component reported as unavailable, by name."""
    try:
        return build(str(root / sub))
    except MultiviewUnavailableError:
        raise
    except Exception as exc:  # transformers/diffusers raise OSError, ValueError, EnvironmentError, ... by case
        raise MultiviewUnavailableError(f"cannot load the PSHuman {sub} from {root / sub}: {exc}", hint=HINT,
                                        path=str(root / sub)) from exc


def _stream_weights(modules: list[Any], device: Any) -> None:
    """accelerate's sequential CPU offload: weights stay on the CPU and visit ``device`` layer by layer."""
    try:
        from accelerate import cpu_offload
    except ImportError as exc:
        raise MultiviewUnavailableError("the memory policy's sequential offload needs the Python package "
                                        "accelerate", hint="pip install accelerate, or choose a policy with "
                                        "offload 'model' or 'none'") from exc
    for module in modules:
        cpu_offload(module, execution_device=device)


def _import_stack() -> Any:
    """torch, after checking the packages every component needs (else: unavailable, with the fix)."""
    try:
        import diffusers  # noqa: F401
        import safetensors  # noqa: F401
        import torch
        import transformers  # noqa: F401
    except ImportError as exc:
        raise MultiviewUnavailableError(f"the PSHuman pipeline needs the Python package {exc.name}",
                                        hint="pip install 'strata[gpu]'") from exc
    return torch
