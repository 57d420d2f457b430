"""PSHuman's multiview diffusion at full size on a GPU: the 40-step UNet loop and the VAE decode, per memory
policy, with peak memory, against the stock SD-2.1 UNet of the same widths (the reference: the same
network without the multiview attention, the least a user could run for this batch).

    .venv/bin/python bench/pshuman_gpu.py            # on a CUDA machine; random weights of the real shapes
    .venv/bin/python bench/pshuman_gpu.py --tiny     # a smoke run of the same code on the CPU (seconds)

What it measures (the issue's anchor, official UNet on an H200 with SDPA: 40 steps at batch 28 in 12.3 s under
autocast / 11.0 s in pure fp16, peak 6.4 GiB; decoding the 14 images at once 29.5 GiB, sliced 3.9 GiB):

* the loop: ``steps`` UNet evaluations at batch 28 (7 views x normal/colour x CFG) on 96 x 96 latents, with
  fp16 or bf16 weights, batched or sequential CFG (two batches of 14), optionally torch.compile;
* the decode of 14 latents with an SD-2.1-sized AutoencoderKL: all at once, and sliced (one image at a time);
* the reference: the stock diffusers UNet2DConditionModel with the same config, same batch and dtype.

Weights are random (the real ones are 5 GB a user downloads; the cost does not depend on their values). Ends
with one ``BENCH pshuman_gpu ...`` line. Keep the run short: a session has 15 minutes of GPU time in all.
"""

from __future__ import annotations

import argparse
import inspect
import time
from collections.abc import Callable

import torch

STEPS = 40
VIEWS = 7


def _unet_config(tiny: bool) -> dict:
    from strata.core.multiview.config import PSHUMAN_UNET_CONFIG

    config = dict(PSHUMAN_UNET_CONFIG)
    if tiny:
        config.update(block_out_channels=[32, 64, 64, 64], attention_head_dim=[2, 4, 4, 4], layers_per_block=1,
                      cross_attention_dim=32, projection_class_embeddings_input_dim=64, sample_size=24,
                      norm_num_groups=8)
    return config


def _stock_unet(config: dict) -> torch.nn.Module:
    """The reference: diffusers' own SD-2.1-unCLIP UNet with the same widths (no multiview attention)."""
    from diffusers import UNet2DConditionModel

    from strata.core.multiview.config import BLOCK_TYPES

    keys = set(inspect.signature(UNet2DConditionModel.__init__).parameters)
    stock = {k: v for k, v in config.items() if k in keys}
    stock["down_block_types"] = [BLOCK_TYPES[b] for b in config["down_block_types"]]
    stock["up_block_types"] = [BLOCK_TYPES[b] for b in config["up_block_types"]]
    stock["mid_block_type"] = BLOCK_TYPES.get(config.get("mid_block_type", ""), "UNetMidBlock2DCrossAttn")
    return UNet2DConditionModel(**stock)


def _timed(fn: Callable[[], object], device: torch.device) -> tuple[float, float]:
    """(seconds, peak GiB) of one call, after the allocator's peak is reset (CPU: peak 0)."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    fn()
    if device.type == "cuda":
        torch.cuda.synchronize()
        return time.perf_counter() - start, torch.cuda.max_memory_allocated() / 2**30
    return time.perf_counter() - start, 0.0


def _loop(unet: torch.nn.Module, config: dict, dtype: torch.dtype, device: torch.device, steps: int,
          sequential: bool) -> Callable[[], object]:
    """The denoising loop's UNet work: ``steps`` evaluations at batch 28 (or 2 x 14 with sequential CFG)."""
    side = config["sample_size"]
    batch = 2 * 2 * VIEWS
    sample = torch.randn(batch, config["in_channels"], side, side, device=device, dtype=dtype)
    text = torch.randn(batch, 77, config["cross_attention_dim"], device=device, dtype=dtype)
    labels = torch.randn(batch, config["projection_class_embeddings_input_dim"], device=device, dtype=dtype)

    def run() -> None:
        with torch.no_grad():
            for t in range(steps):
                timestep = torch.full((), 999 - t * 25, device=device)
                if sequential:  # [normal_uncond, normal_cond, colour_uncond, colour_cond]: uncond half, cond half
                    half = [slice(0, 7), slice(14, 21)], [slice(7, 14), slice(21, 28)]
                    for parts in half:
                        idx = torch.cat([torch.arange(s.start, s.stop, device=device) for s in parts])
                        unet(sample[idx], timestep, text[idx], class_labels=labels[idx])
                else:
                    unet(sample, timestep, text, class_labels=labels)

    return run


def _decode(vae: torch.nn.Module, latents: torch.Tensor, sliced: bool) -> Callable[[], object]:
    def run() -> None:
        with torch.no_grad():
            if sliced:
                for i in range(len(latents)):
                    vae.decode(latents[i : i + 1])
            else:
                vae.decode(latents)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="small config on the CPU: checks the script runs")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile'd UNet (fp16 batched)")
    args = parser.parse_args()
    from diffusers import AutoencoderKL

    from strata.core.multiview.unet import PSHumanUNet

    if not args.tiny and not torch.cuda.is_available():
        print("no CUDA device here: the full-size run needs a GPU (use --tiny for a smoke run on the CPU)")
        print("BENCH pshuman_gpu skipped=no_cuda")
        return
    device = torch.device("cpu" if args.tiny else "cuda")
    steps = args.steps or (2 if args.tiny else STEPS)
    config = _unet_config(args.tiny)
    dtypes = [torch.float32] if device.type == "cpu" else [torch.float16, torch.bfloat16]
    rows: dict[str, tuple[float, float]] = {}
    print(f"device {torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}, steps {steps}, "
          f"latents {config['sample_size']}^2, batch {4 * VIEWS}")

    # 1. Our UNet, per dtype and CFG policy; the stock UNet as the reference.
    for dtype in dtypes:
        name = str(dtype).split(".")[-1]
        ours = PSHumanUNet(**config).to(device=device, dtype=dtype).eval()
        _timed(_loop(ours, config, dtype, device, 1, False), device)  # warm-up: kernels, allocator
        rows[f"loop_{name}_batched"] = _timed(_loop(ours, config, dtype, device, steps, False), device)
        rows[f"loop_{name}_sequential"] = _timed(_loop(ours, config, dtype, device, steps, True), device)
        if args.compile and device.type == "cuda" and dtype == torch.float16:
            compiled = torch.compile(ours)
            _timed(_loop(compiled, config, dtype, device, 2, False), device)
            rows["loop_float16_compiled"] = _timed(_loop(compiled, config, dtype, device, steps, False), device)
        del ours
        stock = _stock_unet(config).to(device=device, dtype=dtype).eval()
        _timed(_loop(stock, config, dtype, device, 1, False), device)
        rows[f"reference_stock_{name}"] = _timed(_loop(stock, config, dtype, device, steps, False), device)
        del stock
        if device.type == "cuda":
            torch.cuda.empty_cache()

    # 2. The VAE decode of 14 images, at once and sliced.
    vae_kwargs = {} if not args.tiny else dict(block_out_channels=[16, 32], down_block_types=["DownEncoderBlock2D"] * 2,
                                              up_block_types=["UpDecoderBlock2D"] * 2, norm_num_groups=8,
                                              latent_channels=4)
    if not args.tiny:  # SD-2.1's VAE
        vae_kwargs = dict(block_out_channels=[128, 256, 512, 512], down_block_types=["DownEncoderBlock2D"] * 4,
                          up_block_types=["UpDecoderBlock2D"] * 4, layers_per_block=2, latent_channels=4)
    vae_dtype = dtypes[0]
    vae = AutoencoderKL(**vae_kwargs).to(device=device, dtype=vae_dtype).eval()
    latents = torch.randn(2 * VIEWS, 4, config["sample_size"], config["sample_size"], device=device, dtype=vae_dtype)
    _timed(_decode(vae, latents[:1], True), device)
    rows["decode_sliced"] = _timed(_decode(vae, latents, True), device)
    rows["decode_batched"] = _timed(_decode(vae, latents, False), device)

    for key, (seconds, peak) in rows.items():
        print(f"{key:28s} {seconds:8.2f} s   peak {peak:6.2f} GiB")
    fields = " ".join(f"{k}_s={v[0]:.2f} {k}_gib={v[1]:.2f}" for k, v in rows.items())
    print(f"BENCH pshuman_gpu device={device.type} steps={steps} {fields}")


if __name__ == "__main__":
    main()
