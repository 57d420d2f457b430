"""Server settings, with the defaults every entry point (strata-server, tests, benches) shares."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_BIND = "tcp://127.0.0.1:5555"
DEFAULT_MAX_MESSAGE_MB = 2048
DEFAULT_MAX_QUEUE = 32
DEFAULT_KEEP_JOBS = 200


def default_data_dir() -> Path:
    """$STRATA_DATA_DIR, else $XDG_DATA_HOME/strata/server, else ~/.local/share/strata/server."""
    if os.environ.get("STRATA_DATA_DIR"):
        return Path(os.environ["STRATA_DATA_DIR"]).expanduser()
    base = os.environ.get("XDG_DATA_HOME") or os.path.join("~", ".local", "share")
    return Path(base).expanduser() / "strata" / "server"


def model_dir_option(value: Path | None, env: str, what: str) -> Path | None:
    """A user-supplied model directory (option, else environment variable), which must exist: a typo
    should fail at start-up with its name, not minutes later inside a job."""
    raw = value if value is not None else (Path(os.environ[env]) if os.environ.get(env) else None)
    if raw is None:
        return None
    path = raw.expanduser()
    if not path.is_dir():
        raise ValueError(f"{what} directory {path} does not exist (from {'the option' if value else env})")
    return path


@dataclass
class CurveServerKeys:
    """The server's CURVE key pair and the directory of client public keys it accepts."""

    public: bytes
    secret: bytes
    authorized_dir: Path


@dataclass
class ServerConfig:
    bind: str = DEFAULT_BIND
    data_dir: Path = field(default_factory=default_data_dir)
    curve: CurveServerKeys | None = None
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_MB << 20
    """Whole-message cap (typed `too_large` error); also each frame's hard cap (zmq MAXMSGSIZE:
    a bigger single frame makes libzmq drop the connection before the server sees it)."""
    max_queue: int = DEFAULT_MAX_QUEUE
    keep_jobs: int = DEFAULT_KEEP_JOBS
    heartbeat: float = 1.0
    """Seconds between heartbeat events to the subscribers of unfinished jobs."""
    weights_dir: Path | None = None
    """Where the user put downloaded diffusion weights (PSHuman_Unclip_768_6views/ inside it)."""
    smplx_dir: Path | None = None
    """Where the user put SMPL-X model files (smplx/SMPLX_NEUTRAL.npz inside it)."""
    device: str = "auto"
    """Torch device for every stage ("auto": $STRATA_DEVICE, else CUDA when present, else the CPU)."""
    dtype: str = "auto"
    """Precision of learned networks ("auto": float16 on CUDA, float32 on the CPU)."""
    threads: int | None | str = "auto"
    """torch intra-op threads while a job runs ("auto": 1 on the CPU, torch's default on CUDA)."""
    shutdown_grace: float = 5.0
    """Seconds a cancelled running job gets to reach its next progress check at shutdown."""
