"""PSHuman's multiview diffusion as a :class:`~strata.core.views.MultiviewGenerator`: photo -> six views.

Why our own pipeline rather than the official ``StableUnCLIPImg2ImgPipeline`` subclass: the official one needs
xformers, autocast and a UNet module only its repository has; ours drives :class:`~.unet.PSHumanUNet` with
the same conditioning, reports progress (and honours a cancel) every step, follows a
:class:`~.policy.MemoryPolicy`, and returns views in Strata's convention (normals in the front camera's frame,
none mirrored, cameras in our world). What it reproduces, step by step (:meth:`PSHumanGenerator.generate`):

1. framing: the person at 740 px on a 768 white canvas (:func:`~strata.core.imaging.framing.frame_person`)
   and the face view, the canvas's fixed top-centre tile upscaled to full size;
2. CLIP image embeddings of the body canvas (6 body views) and the face tile (face view), passed through the
   unCLIP noise augmentation at noise level 0 (normalise, ``add_noise`` at t=0, un-normalise, append the
   level's sinusoidal embedding) -> the UNet's class labels; zeros for the unconditional branch;
3. the VAE latent of the same images (``latent_dist.mode() * scaling_factor``), concatenated channel-wise to
   the noisy latents (8 input channels); zeros for the unconditional branch;
4. the 14 fixed prompt embeddings (computed at load time, :mod:`.components`);
5. the denoising loop: ``steps`` (40) steps at CFG 3.0, batch ``[normal_uncond, normal_cond, colour_uncond,
   colour_cond] x 7`` in one call or as two calls of 14 (same result), sampler ``eta`` 1.0, one seeded CPU
   generator for every random draw (so a seed gives the same views on any device);
6. VAE decode (sliced/tiled per the policy) -> 7 normal maps + 7 colour images;
7. post-processing (:mod:`.postprocess`: un-mirror back/left, front colour = the canvas, face normal into the
   front's face tile, masks from the normal maps, unit normals) and cameras like
   :func:`~strata.core.render.views_io.views_camera`, scaled so the front mask spans the person's height.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from strata.core.imaging.framing import CANVAS_SIZE, PERSON_LONG_SIDE, FramedImage, face_tile, frame_person
from strata.core.progress import Progress, Silent
from strata.core.render.views_io import DEFAULT_HEIGHT_M, mask_rows, views_camera
from strata.core.views import PSHUMAN_VIEW_WEIGHTS, View

from .components import PSHumanComponents
from .postprocess import (
    VIEW_ORDER,
    DecodedViews,
    decode_unit_normals,
    fill_normals,
    mask_from_normal_map,
    to_pshuman_convention,
)

#: The stage name of the progress reports (one per denoising step).
STAGE = "views"
#: Released inference settings (configs/inference-768-6view.yaml).
STEPS, GUIDANCE, ETA, NOISE_LEVEL = 40, 3.0, 1.0, 0


@dataclass(frozen=True)
class Conditioning:
    """What steps 2-4 produce for the loop: each (14, ...) for one CFG branch, normal views then colour views."""

    class_labels: torch.Tensor
    image_latents: torch.Tensor
    prompt_embeds: torch.Tensor


class PSHumanGenerator:
    """Photo -> PSHuman's six body views (+ the face close-up on request), each with colour, mask, unit normals
    in the front camera's frame and an orthographic camera; see the module docstring for the steps."""

    name = "pshuman"

    def __init__(self, components: PSHumanComponents, *, steps: int = STEPS, guidance_scale: float = GUIDANCE,
                 eta: float = ETA, include_face: bool = False, height_m: float | None = None) -> None:
        if steps < 1:
            raise ValueError(f"steps must be at least 1, got {steps}")
        self.c = components
        self.steps = steps
        self.guidance_scale = guidance_scale
        self.eta = eta
        self.include_face = include_face
        self.height_m = height_m

    # -- the MultiviewGenerator interface ----------------------------------------------------------

    def generate(self, photo: View, *, seed: int | None = None, progress: Progress | None = None,
                 height_m: float | None = None) -> list[View]:
        """The six body views of the person in ``photo`` (image + mask), front first, then the face view if
        ``include_face``. ``height_m`` (else the generator's, else 1.70 m) sets the cameras' metric scale.

        ``progress.report("views", step / steps)`` runs before the loop and after every step, so a cancel (a
        :class:`~strata.core.progress.Cancelled` raised there) stops generation within one step."""
        progress = progress or Silent()
        generator = torch.Generator("cpu").manual_seed(int(seed) if seed is not None else
                                                       int(torch.randint(0, 2**31 - 1, ()).item()))
        size = self.c.image_size
        with torch.no_grad():
            framed, face = self._frame(photo, size)  # 1
            progress.report(STAGE, 0.0, "encoding the photo")
            cond = self._condition(framed.rgb, face, generator)  # 2-4
            latents = self._denoise(cond, generator, progress)  # 5
            decoded = self._decode(latents)  # 6
        return self._views(decoded, framed, photo, height_m)  # 7

    __call__ = generate

    # -- 1. framing ---------------------------------------------------------------------------------

    @staticmethod
    def _frame(photo: View, size: int) -> tuple[FramedImage, np.ndarray]:
        """The person at 740/768 of the canvas on white, and the face tile (top-centre third) at full size."""
        long_side = round(size * PERSON_LONG_SIDE / CANVAS_SIZE)
        framed = frame_person(photo.image, photo.mask, canvas_size=size, long_side=long_side)
        return framed, face_tile(framed.rgb, size=size).rgb

    # -- 2-4. conditioning --------------------------------------------------------------------------

    def _condition(self, body: np.ndarray, face: np.ndarray, generator: torch.Generator) -> Conditioning:
        """Class labels (step 2), image latents (step 3) and prompts (step 4) of the conditional branch."""
        c = self.c
        views = len(VIEW_ORDER)
        per_view = [0] * (views - 1) + [1]  # body image for the six body views, face tile for the face view
        index = torch.tensor(per_view + per_view)  # normal views, then colour views
        with self._on_device(c.image_encoder):
            pixels = c.feature_extractor(images=[body, face], return_tensors="pt").pixel_values
            embeds = c.image_encoder(pixels.to(c.device, c.dtype)).image_embeds  # (2, D)
        class_labels = self._noise_augment(embeds[index.to(embeds.device)], generator)  # (14, 2D)
        with self._on_device(c.vae):
            images = torch.from_numpy(np.stack([body, face])).permute(0, 3, 1, 2)
            images = (images.to(c.device, c.vae.dtype) / 255.0) * 2.0 - 1.0
            latents = c.vae.encode(images).latent_dist.mode() * c.vae.config.scaling_factor  # (2, 4, h, w)
        image_latents = latents[index.to(latents.device)].to(c.dtype)
        return Conditioning(class_labels=class_labels, image_latents=image_latents, prompt_embeds=c.prompt_embeds)

    def _noise_augment(self, embeds: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """unCLIP's noise augmentation at :data:`NOISE_LEVEL`, with the level's embedding appended (2D wide)."""
        from diffusers.models.embeddings import get_timestep_embedding
        from diffusers.utils.torch_utils import randn_tensor

        c = self.c
        level = torch.full((embeds.shape[0],), NOISE_LEVEL, device=embeds.device, dtype=torch.long)
        noise = randn_tensor(embeds.shape, generator=generator, device=embeds.device, dtype=embeds.dtype)
        scaled = c.image_normalizer.scale(embeds)
        noised = c.image_noising_scheduler.add_noise(scaled, noise=noise, timesteps=level)
        noised = c.image_normalizer.unscale(noised)
        level_embedding = get_timestep_embedding(level, embedding_dim=embeds.shape[-1], flip_sin_to_cos=True,
                                                 downscale_freq_shift=0).to(embeds.dtype)
        return torch.cat([noised, level_embedding], dim=1).to(c.dtype)

    # -- 5. the denoising loop ----------------------------------------------------------------------

    def _denoise(self, cond: Conditioning, generator: torch.Generator, progress: Progress) -> torch.Tensor:
        """(14, 4, h, w) clean latents: normal views then colour views."""
        c = self.c
        scheduler = type(c.scheduler).from_config(c.scheduler.config)  # a fresh state per generation
        scheduler.set_timesteps(self.steps, device=c.device)
        side = c.image_size // c.vae_scale_factor
        shape = (cond.image_latents.shape[0], c.unet.config.out_channels, side, side)
        from diffusers.utils.torch_utils import randn_tensor

        latents = randn_tensor(shape, generator=generator, device=c.device, dtype=c.dtype)
        latents = latents * scheduler.init_noise_sigma
        step_kwargs = _step_kwargs(scheduler, generator, self.eta)
        timesteps = scheduler.timesteps
        with self._on_device(c.unet):
            for i, t in enumerate(timesteps):
                noise = self._guided_noise(scheduler.scale_model_input(latents, t), t, cond)
                latents = scheduler.step(noise, t, latents, **step_kwargs, return_dict=False)[0]
                progress.report(STAGE, (i + 1) / len(timesteps), f"denoising step {i + 1}/{len(timesteps)}")
        return latents

    def _guided_noise(self, latents: torch.Tensor, t: torch.Tensor, cond: Conditioning) -> torch.Tensor:
        """``uncond + g * (cond - uncond)`` for the 14 latents, per the policy's CFG mode.

        Batched, the UNet sees ``[normal_uncond, normal_cond, colour_uncond, colour_cond]`` (28); sequential,
        ``[normal_uncond, colour_uncond]`` then ``[normal_cond, colour_cond]`` (14 each). The UNet mixes images
        only within a (domain, branch) group of 7 and between the two domains of one branch, so both layouts
        compute the same thing."""
        unet = self.c.unet
        zeros = torch.zeros_like
        normal, colour = latents.chunk(2)
        lat_n, lat_c = cond.image_latents.chunk(2)
        cls_n, cls_c = cond.class_labels.chunk(2)
        txt_n, txt_c = cond.prompt_embeds.chunk(2)
        if self.c.policy.cfg == "batched":
            sample = torch.cat([torch.cat([normal, zeros(lat_n)], 1), torch.cat([normal, lat_n], 1),
                                torch.cat([colour, zeros(lat_c)], 1), torch.cat([colour, lat_c], 1)])
            out = unet(sample, t, encoder_hidden_states=torch.cat([txt_n, txt_n, txt_c, txt_c]),
                       class_labels=torch.cat([zeros(cls_n), cls_n, zeros(cls_c), cls_c]), return_dict=False)[0]
            n_u, n_c, c_u, c_c = out.chunk(4)
            uncond, conditioned = torch.cat([n_u, c_u]), torch.cat([n_c, c_c])
        else:
            text = cond.prompt_embeds
            uncond = unet(torch.cat([latents, zeros(cond.image_latents)], 1), t, encoder_hidden_states=text,
                          class_labels=zeros(cond.class_labels), return_dict=False)[0]
            conditioned = unet(torch.cat([latents, cond.image_latents], 1), t, encoder_hidden_states=text,
                               class_labels=cond.class_labels, return_dict=False)[0]
        return uncond + self.guidance_scale * (conditioned - uncond)

    # -- 6. decoding --------------------------------------------------------------------------------

    def _decode(self, latents: torch.Tensor) -> DecodedViews:
        """uint8 normal maps and colour images (the VAE slices/tiles as the policy set it up at load)."""
        vae = self.c.vae
        with self._on_device(vae):
            images = vae.decode(latents.to(vae.dtype) / vae.config.scaling_factor, return_dict=False)[0]
        images = ((images.float() / 2 + 0.5).clamp(0, 1) * 255.0).round().to(torch.uint8)
        images = images.permute(0, 2, 3, 1).cpu().numpy()
        half = images.shape[0] // 2
        return DecodedViews(normals=images[:half], colours=images[half:])

    # -- 7. views in our convention -----------------------------------------------------------------

    def _views(self, decoded: DecodedViews, framed: FramedImage, photo: View, height_m: float | None) -> list[View]:
        """Post-process (see :mod:`.postprocess`) and attach masks, unit normals, weights and cameras."""
        fixed = to_pshuman_convention(decoded, framed.rgb)
        size = framed.rgb.shape[0]
        masks = {name: mask_from_normal_map(fixed.normals[i]) for i, name in enumerate(VIEW_ORDER)}
        masks["front"] = framed.alpha  # the front colour is the photo: its own mask is the truth
        top, sole = mask_rows(masks["front"])
        height = height_m or self.height_m or DEFAULT_HEIGHT_M
        if height <= 0:
            raise ValueError(f"height_m must be positive, got {height}")
        scale = (sole - top) / height
        normals = {name: decode_unit_normals(fixed.normals[i], masks[name]) for i, name in enumerate(VIEW_ORDER)}
        generated_front = mask_from_normal_map(fixed.normals[0]) > 0.5
        normals["front"] = fill_normals(decode_unit_normals(fixed.normals[0], generated_front.astype(np.float32)),
                                        generated_front, masks["front"])
        views = []
        for i, name in enumerate(VIEW_ORDER[:-1]):
            views.append(View(name=name, image=fixed.colours[i], mask=masks[name],
                              camera=views_camera(name, size, scale, float(sole)), normal=normals[name],
                              weight=PSHUMAN_VIEW_WEIGHTS[name],
                              exact_mask=name == "front" and photo.exact_mask))
        if self.include_face:
            views.append(self._face_view(fixed, masks["face"], normals["face"], views[0]))
        return views

    @staticmethod
    def _face_view(fixed: DecodedViews, mask: np.ndarray, normal: np.ndarray, front: View) -> View:
        """The face close-up: the front camera magnified onto the canvas's top-centre tile."""
        i = VIEW_ORDER.index("face")
        size = mask.shape[0]
        third = size // 3
        k = size / third
        cam = front.camera
        if cam is None:
            raise ValueError("the front view has no camera to magnify")
        camera = replace(cam, scale=float(cam.scale) * k, principal=(k * (size / 2 - third), k * size / 2))
        return View(name="face", image=fixed.colours[i], mask=mask, camera=camera,
                    normal=normal, weight=1.0)

    # -- memory policy: model offload -----------------------------------------------------------------

    @contextlib.contextmanager
    def _on_device(self, module: Any) -> Iterator[None]:
        """With offload "model", ``module`` visits the device only while the block runs."""
        if self.c.policy.offload != "model":
            yield
            return
        module.to(self.c.device)
        try:
            yield
        finally:
            module.to("cpu")
            if self.c.device.type == "cuda":
                torch.cuda.empty_cache()


def _step_kwargs(scheduler: Any, generator: torch.Generator, eta: float) -> dict[str, Any]:
    """``eta`` and ``generator`` for the samplers whose ``step`` takes them (DDIM: both; others: some)."""
    accepted = set(inspect.signature(scheduler.step).parameters)
    kwargs: dict[str, Any] = {}
    if "eta" in accepted:
        kwargs["eta"] = eta
    if "generator" in accepted:
        kwargs["generator"] = generator
    return kwargs
