"""The one compute environment: where tensors live, in which precision, where weights are, how many threads.

Why one object: every stage that loads a model or makes a tensor needs the same four answers, and each
answered on its own drifts (a fit on the CPU feeding a CUDA rasterizer, a weights folder one backend
knows and another does not). The server builds one :class:`ComputeEnv` from its configuration at start-up
and hands it to every job; library callers and tests build their own (``ComputeEnv()`` is the CPU).

Rules every stage follows:

* tensors are created on ``env.torch_device`` (never on torch's default device);
* learned networks run in ``env.torch_dtype``; geometry (fits, carving, skinning) stays float32 whatever
  the dtype, because its losses are small differences of large coordinates;
* user files are found under ``env.weights_dir`` / ``env.smplx_dir`` and nowhere else (nothing downloads);
* torch's intra-op thread count is set here, by :meth:`ComputeEnv.torch_threads`, and nowhere else.

Import cost: the standard library only; torch is imported by the methods that need it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import torch

DTYPES = ("float32", "float16", "bfloat16")

#: Intra-op threads on a CPU server. Measured on 2 cores: the body fit takes 3.7 s with one thread and
#: 4.3-5.0 s with two (thousands of small ops on a 14k-vertex mesh), and when another process shares the
#: cores, two spinning threads per op can slow a stage tenfold; the clothed surface and the texture bake
#: behave the same way.
CPU_THREADS = 1


@dataclass(frozen=True)
class ComputeEnv:
    """Device, dtype, user weight folders and threads, resolved once (see the module docstring).

    ``device`` is a concrete torch device string ("cpu", "cuda", "cuda:1"); ``"auto"`` is resolved by
    :meth:`resolve`, which a server calls once at start-up (it imports torch).
    """

    device: str = "cpu"
    dtype: str = "float32"
    weights_dir: Path | None = None
    smplx_dir: Path | None = None
    threads: int | None = CPU_THREADS
    """torch intra-op threads while a job runs; None leaves torch's own default (a GPU server)."""
    device_name: str = field(default="cpu", compare=False)
    """Human-readable device, e.g. "NVIDIA H200" (for ``welcome`` and the panel)."""

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(f"unknown dtype {self.dtype!r}; expected one of {DTYPES}")
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be at least 1, got {self.threads}")

    # -- construction ------------------------------------------------------------------------------

    @classmethod
    def resolve(cls, device: str = "auto", dtype: str = "auto", *, weights_dir: Path | None = None,
                smplx_dir: Path | None = None, threads: int | None | str = "auto") -> ComputeEnv:
        """An environment with every "auto" decided for this machine.

        1. device: ``$STRATA_DEVICE`` if set, else "cuda" when torch sees a GPU, else "cpu";
        2. dtype: float16 on CUDA (the diffusion UNet's measured anchor), float32 on the CPU;
        3. threads: :data:`CPU_THREADS` on the CPU, torch's default on a GPU server (its CPU work is small).
        """
        name = "cpu"
        if device == "auto":
            device = os.environ.get("STRATA_DEVICE") or ("cuda" if _cuda_available() else "cpu")
        if device.startswith("cuda"):
            name = _cuda_name(device)
        if dtype == "auto":
            dtype = "float16" if device.startswith("cuda") else "float32"
        if threads == "auto":
            threads = None if device.startswith("cuda") else CPU_THREADS
        return cls(device=device, dtype=dtype, weights_dir=weights_dir, smplx_dir=smplx_dir,
                   threads=threads, device_name=name)  # type: ignore[arg-type]

    def with_device(self, device: str) -> ComputeEnv:
        """The same environment on another device (tests; a second GPU)."""
        return replace(self, device=device)

    # -- what stages ask ---------------------------------------------------------------------------

    @property
    def is_cuda(self) -> bool:
        return self.device.startswith("cuda")

    @property
    def torch_device(self) -> torch.device:
        import torch

        return torch.device(self.device)

    @property
    def torch_dtype(self) -> torch.dtype:
        import torch

        return getattr(torch, self.dtype)

    def weights_path(self, *parts: str) -> Path | None:
        """``weights_dir / parts`` if a weights folder was configured, else None."""
        return None if self.weights_dir is None else self.weights_dir.joinpath(*parts)

    @contextlib.contextmanager
    def torch_threads(self) -> Iterator[None]:
        """Run the block with this environment's intra-op thread count (restored after).

        The one place Strata calls ``torch.set_num_threads``: jobs run inside it, so the setting follows
        the environment rather than whichever stage ran last."""
        if self.threads is None or importlib.util.find_spec("torch") is None:
            yield
            return
        import torch

        before = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        try:
            yield
        finally:
            torch.set_num_threads(before)

    def describe(self) -> dict[str, Any]:
        """Plain data for ``welcome`` / ``strata status``."""
        return {"type": "cuda" if self.is_cuda else "cpu", "device": self.device, "name": self.device_name,
                "dtype": self.dtype, "threads": self.threads,
                "weights_dir": str(self.weights_dir) if self.weights_dir else "",
                "smplx_dir": str(self.smplx_dir) if self.smplx_dir else ""}


def _cuda_available() -> bool:
    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def _cuda_name(device: str) -> str:
    try:
        import torch

        return str(torch.cuda.get_device_name(torch.device(device)))
    except Exception as exc:  # a broken driver must not stop the server from starting and saying so
        return f"{device} (unreadable: {exc})"
