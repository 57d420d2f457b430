"""Fixtures shared by several test modules."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


def tiny_pshuman_unet_config(sample_size: int, cross_attention_dim: int = 12, class_dim: int = 10) -> dict[str, Any]:
    """The released PSHuman UNet config at a width that runs in milliseconds on a CPU: two levels (multiview
    cross-attention above a plain level), one layer per block. ``sample_size`` must be a multiple of 6 (the
    face tile is a third of the latent side at both levels)."""
    from strata.core.multiview import PSHUMAN_UNET_CONFIG

    return {
        **PSHUMAN_UNET_CONFIG,
        "sample_size": sample_size,
        "block_out_channels": [16, 32],
        "down_block_types": ["CrossAttnDownBlockMV2D", "DownBlock2D"],
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlockMV2D"],
        "layers_per_block": 1,
        "norm_num_groups": 8,
        "attention_head_dim": [2, 4],
        "cross_attention_dim": cross_attention_dim,
        "projection_class_embeddings_input_dim": class_dim,
    }


@contextlib.contextmanager
def running_server(data_dir: Path, **config: Any) -> Iterator[tuple[Any, str]]:
    """An in-process strata-server on a free loopback port (CPU), as a user's would run: ``(server, address)``.
    Stopped and joined on exit. ``config``: more ServerConfig fields (e.g. ``weights_dir``)."""
    from strata.server.config import ServerConfig
    from strata.server.loop import Server

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data_dir.mkdir(parents=True, exist_ok=True)
    server = Server(ServerConfig(bind=f"tcp://127.0.0.1:{port}", data_dir=data_dir, device="cpu", **config),
                    logging.getLogger("test"))
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        yield server, f"tcp://127.0.0.1:{port}"
    finally:
        server.request_stop()
        thread.join(30)


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run a module's tests with one torch intra-op thread (restored after): these tests check behaviour, and
    on a shared 2-core machine torch's intra-op threads can stall for milliseconds per op when a core is busy.
    Use with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
