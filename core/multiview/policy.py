"""How the PSHuman pipeline spends GPU memory, as data: one frozen :class:`MemoryPolicy` per kind of machine.

Why data and not flags scattered through the pipeline: the same 14-image, 40-step generation must run on an
H100/H200 (fast, memory to spare), on a 16 GB card (CFG halves one after the other, models parked on the CPU
between stages) and on the CPU in tests (float32, tiny weights). The pipeline reads one policy; a server picks
a preset by name from its configuration, a test builds its own.

Measured anchors (the issue's GPU run of our UNet and diffusers' SD VAE at 768 px, float16):

* the denoising loop at batch 28 (both CFG branches at once) peaks at about 6.4 GiB; sequential CFG halves
  the activations (batch 14) at the cost of two UNet calls per step;
* decoding all 14 latents at once peaks at 29.5 GiB, one image at a time ("slicing") at 3.9 GiB, which is
  why every GPU preset slices (the decode is a fraction of a second per image either way);
* tiling trades a little seam blending for a flat peak at any size; only the smallest preset uses it.

Torch-free: importing this module costs nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

CFG_MODES = ("batched", "sequential")
OFFLOAD_MODES = ("none", "model", "sequential")


@dataclass(frozen=True)
class MemoryPolicy:
    """Precision, CFG batching, VAE slicing/tiling and CPU offload of one PSHuman run."""

    name: str = "custom"
    dtype: str | None = None
    """Weights and activations of the learned networks; None = the :class:`~strata.core.compute.ComputeEnv`'s."""
    vae_dtype: str | None = None
    """The VAE's own precision (e.g. "float32" where float16 decoding overflows); None = ``dtype``."""
    cfg: str = "batched"
    """"batched": one UNet call on all 28 images per step; "sequential": the unconditional and conditional
    halves (14 each) one after the other (same result, half the activation memory)."""
    vae_slicing: bool = True
    """Encode/decode one image at a time (29.5 GiB -> 3.9 GiB for the 14-image decode)."""
    vae_tiling: bool = False
    """Encode/decode in overlapping tiles (flat peak at any image size)."""
    offload: str = "none"
    """"none": every component stays on the device; "model": each component moves to the device only while it
    runs (UNet, VAE, CLIP one at a time); "sequential": weights stream to the device layer by layer (slowest,
    smallest; needs the ``accelerate`` package)."""

    def __post_init__(self) -> None:
        if self.cfg not in CFG_MODES:
            raise ValueError(f"cfg must be one of {CFG_MODES}, got {self.cfg!r}")
        if self.offload not in OFFLOAD_MODES:
            raise ValueError(f"offload must be one of {OFFLOAD_MODES}, got {self.offload!r}")
        for field_name in ("dtype", "vae_dtype"):
            value = getattr(self, field_name)
            if value is not None and value not in ("float32", "float16", "bfloat16"):
                raise ValueError(f"{field_name} must be float32, float16 or bfloat16, got {value!r}")


#: Named presets; :func:`memory_policy` looks them up.
PRESETS: dict[str, MemoryPolicy] = {
    # 80-141 GB (H100, H200): everything resident, both CFG branches in one call; slicing costs nothing here.
    "h100": MemoryPolicy(name="h100", dtype="float16", cfg="batched", vae_slicing=True),
    # 24-48 GB (4090, L40S, A6000): the 6.4 GiB loop fits batched; the decode must be sliced (issue #4's OOM).
    "24gb": MemoryPolicy(name="24gb", dtype="float16", cfg="batched", vae_slicing=True),
    # 16 GB: halve the loop's activations and keep only the running component on the GPU.
    "16gb": MemoryPolicy(name="16gb", dtype="float16", cfg="sequential", vae_slicing=True, offload="model"),
    # 8-12 GB: additionally tile the VAE and stream the UNet's weights (slow, but it runs).
    "8gb": MemoryPolicy(name="8gb", dtype="float16", cfg="sequential", vae_slicing=True, vae_tiling=True,
                        offload="sequential"),
    # Tests and CPU servers: float32 (CPU float16 is slow and inexact), nothing moved.
    "cpu-test": MemoryPolicy(name="cpu-test", dtype="float32", cfg="batched", vae_slicing=False),
}


def memory_policy(name: str | MemoryPolicy | None = None, *, device: str = "cpu") -> MemoryPolicy:
    """The policy named ``name`` (a :data:`PRESETS` key), ``name`` itself if already a policy, or for None the
    default of ``device``: "h100" on CUDA (a server that measured less memory names a smaller preset), else
    "cpu-test"."""
    if isinstance(name, MemoryPolicy):
        return name
    if name is None:
        name = "h100" if device.startswith("cuda") else "cpu-test"
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown memory policy {name!r}; presets: {', '.join(PRESETS)}") from None
