"""`strata-server`: start the persistent server, or (`strata-server keys`) create CURVE keys, or (`strata-server
prepare`) build anny's rig data ahead.

Exit codes: 0 clean shutdown (SIGTERM/SIGINT), 1 could not start (address in use, data dir locked),
2 refused configuration (non-loopback bind without CURVE keys, unusable keys, bad options).
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import signal
import sys
import time
from pathlib import Path

import zmq

from ..exchange.client import generate_keys
from .config import (
    DEFAULT_BIND,
    DEFAULT_KEEP_JOBS,
    DEFAULT_MAX_MESSAGE_MB,
    DEFAULT_MAX_QUEUE,
    ServerConfig,
    default_data_dir,
    model_dir_option,
)
from .logs import log_event, setup_logging
from .loop import Server
from .security import SecurityError, check_bind, load_server_keys

EPILOG = """\
Exit codes: 0 clean shutdown, 1 could not start (address in use, data dir in use), 2 refused configuration.

The server binds loopback only. To accept other machines, create CURVE keys and pass them:
  strata-server keys --out ~/.config/strata/curve --client laptop
  strata-server --bind tcp://0.0.0.0:5555 --curve-dir ~/.config/strata/curve
and copy server.key and clients/laptop.key_secret to the client (strata --curve-dir DIR --curve-client laptop).
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="strata-server", description="The Strata GPU server (ZeroMQ, protocol v1).",
                                epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bind", default=DEFAULT_BIND, help="endpoint to bind (default %(default)s)")
    p.add_argument("--data-dir", type=Path, default=None,
                   help=f"jobs, results and server.log (default $STRATA_DATA_DIR or {default_data_dir()})")
    p.add_argument("--curve-dir", type=Path, default=None,
                   help="CURVE key directory (server.key_secret + authorized_clients/); required off loopback")
    p.add_argument("--weights-dir", type=Path, default=None,
                   help="downloaded diffusion weights (PSHuman_Unclip_768_6views/ inside); $STRATA_WEIGHTS_DIR")
    p.add_argument("--smplx-dir", type=Path, default=None,
                   help="SMPL-X model files (smplx/SMPLX_NEUTRAL.npz inside); $STRATA_SMPLX_DIR")
    p.add_argument("--device", default="auto",
                   help="torch device for every stage: auto (CUDA when present), cpu, cuda, cuda:1 (default auto; "
                        "$STRATA_DEVICE)")
    p.add_argument("--dtype", default="auto", choices=["auto", "float32", "float16", "bfloat16"],
                   help="precision of learned networks (auto: float16 on CUDA, float32 on the CPU)")
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads while a job runs (default: 1 on a CPU server, torch's own on CUDA)")
    p.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    p.add_argument("--log-json", action="store_true", help="log JSON lines instead of key=value text")
    p.add_argument("--max-message-mb", type=int, default=DEFAULT_MAX_MESSAGE_MB,
                   help="largest request accepted, in MiB (default %(default)s)")
    p.add_argument("--max-queue", type=int, default=DEFAULT_MAX_QUEUE, help="queued jobs before `busy`")
    p.add_argument("--keep-jobs", type=int, default=DEFAULT_KEEP_JOBS,
                   help="finished jobs kept on disk (default %(default)s)")
    return p


def _keys_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="strata-server keys", description=(
        "Create CURVE keys: the server's pair, and a pair per client whose public key is authorized. "
        "Existing keys are kept, so this also adds clients."))
    p.add_argument("--out", type=Path, required=True, help="key directory to create or extend")
    p.add_argument("--client", action="append", default=None,
                   help="client name (repeatable; default: client)")
    args = p.parse_args(argv)
    directory = generate_keys(args.out, args.client or ["client"])
    print(f"server keys:  {directory / 'server.key'} (public), {directory / 'server.key_secret'} (keep private)")
    for name in args.client or ["client"]:
        print(f"client {name!r}: {directory / 'clients' / (name + '.key_secret')} -> copy with server.key to "
              f"the client")
    print(f"start:  strata-server --bind tcp://0.0.0.0:5555 --curve-dir {directory}")
    return 0


def _prepare_main(argv: list[str]) -> int:
    from ..core.body import ANNY_RIGS, get_body_model, visible_build
    from ..core.progress import Progress

    p = argparse.ArgumentParser(prog="strata-server prepare", description=(
        "Build anny's data for the rigs a server will use, once, with progress (each rig's first use otherwise "
        "builds it inside a job: about 1.6 GB and a few minutes per rig on two cores)."))
    p.add_argument("--rigs", default="anny", help=f"comma-separated, of {','.join(ANNY_RIGS)}, or all (default "
                   "anny: the photo fit's and the smplx rig's base)")
    args = p.parse_args(argv)
    rigs = list(ANNY_RIGS) if args.rigs == "all" else [r.strip() for r in args.rigs.split(",") if r.strip()]
    unknown = [r for r in rigs if r not in ANNY_RIGS]
    if unknown:
        print(f"strata-server prepare: unknown rig {unknown[0]!r}; rigs: {', '.join(ANNY_RIGS)}, all", file=sys.stderr)
        return 2

    class Printed(Progress):
        def emit(self, stage: str, fraction: float, text: str) -> None:
            print(f"  {text}", flush=True)

    for rig in rigs:
        start = time.perf_counter()
        print(f"{rig} rig ...", flush=True)
        with visible_build(Printed(), "prepare", rig, every=10.0):
            get_body_model("anny", rig)
        print(f"{rig} rig ready ({time.perf_counter() - start:.1f} s)", flush=True)
    return 0


def _lock_data_dir(data_dir: Path) -> int | None:
    """An exclusive lock on <data-dir>/server.lock (two servers must not share job files)."""
    fd = os.open(data_dir / "server.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["keys"]:
        return _keys_main(argv[1:])
    if argv[:1] == ["prepare"]:
        return _prepare_main(argv[1:])
    args = _parser().parse_args(argv)
    data_dir = (args.data_dir or default_data_dir()).expanduser()
    data_dir.mkdir(parents=True, exist_ok=True)
    log = setup_logging(args.log_level, args.log_json, data_dir / "server.log")
    if args.max_message_mb < 1 or args.max_queue < 1 or args.keep_jobs < 1 or (args.threads or 1) < 1:
        log_event(log, "server.refused", logging.ERROR, reason="--max-message-mb, --max-queue, --keep-jobs and "
                  "--threads must be at least 1")
        return 2
    try:
        curve = load_server_keys(args.curve_dir) if args.curve_dir is not None else None
        check_bind(args.bind, curve)
        weights_dir = model_dir_option(args.weights_dir, "STRATA_WEIGHTS_DIR", "weights")
        smplx_dir = model_dir_option(args.smplx_dir, "STRATA_SMPLX_DIR", "SMPL-X")
    except (SecurityError, OSError, ValueError) as exc:
        log_event(log, "server.refused", logging.ERROR, reason=str(exc))
        return 2
    lock = _lock_data_dir(data_dir)
    if lock is None:
        log_event(log, "server.refused", logging.ERROR,
                  reason=f"another strata-server is using the data dir {data_dir} (see {data_dir / 'server.lock'})")
        return 1
    config = ServerConfig(bind=args.bind, data_dir=data_dir, curve=curve,
                          max_message_bytes=args.max_message_mb << 20, max_queue=args.max_queue,
                          keep_jobs=args.keep_jobs, weights_dir=weights_dir, smplx_dir=smplx_dir,
                          device=args.device, dtype=args.dtype,
                          threads=args.threads if args.threads is not None else "auto")
    server = Server(config, log)
    signal.signal(signal.SIGTERM, server.request_stop)
    signal.signal(signal.SIGINT, server.request_stop)
    try:
        code = server.serve()
    except zmq.ZMQError as exc:
        log_event(log, "server.bind_failed", logging.ERROR, bind=args.bind, error=str(exc),
                  hint="is another strata-server running on this address? choose another with --bind")
        return 1
    if not server.clean_exit:
        # The worker is stuck inside a pipeline stage that cannot see the cancel; don't wait for it.
        logging.shutdown()
        os._exit(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
