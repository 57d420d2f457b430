"""`make demo`: start a server, run the main job on the bundled photo, save the results, stop the server.

It is the path a new user takes, end to end and unmocked: a real `strata-server` subprocess, the real
client, the same output writers as the CLI (.strata, .glb and, when Blender's bpy is installed in
.venv-blender, .blend). Everything lands under out/ and the paths are printed at the end.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from ..exchange.client import Client, RemoteError, ServerUnavailable
from .outputs import OutputError, write_output
from .progress_bar import ProgressBar

REPO = Path(__file__).resolve().parent.parent
DEMO_PHOTO = REPO / "docs" / "examples" / "pexels-6311555.png"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data_dir: Path, log_path: Path) -> tuple[subprocess.Popen, str]:
    address = f"tcp://127.0.0.1:{free_port()}"
    exe = Path(sys.executable).with_name("strata-server")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "strata.server.main"]
    log = open(log_path, "ab")  # noqa: SIM115 - the server subprocess owns it for its lifetime
    proc = subprocess.Popen([*cmd, "--bind", address, "--data-dir", str(data_dir)], stdout=log, stderr=log)
    deadline = time.monotonic() + 120
    with Client(address, timeout=1.0) as client:
        while True:
            try:
                client.ping()
                return proc, address
            except ServerUnavailable:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the server did not start; see its log: {log_path}") from None


def stop_server(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def run_job(client: Client, title: str, kind: str, params: dict, outputs: list[Path], image: bytes | None = None):
    bar = ProgressBar(sys.stderr, title)
    job_id = client.submit(kind, params, image=image)
    client.wait(job_id, on_event=bar.update, timeout=1800)
    bar.close()
    frames = client.fetch_frames(job_id)
    written = []
    for path in outputs:
        try:
            written.append(write_output(path, frames))
        except OutputError as exc:
            print(f"  skipped {path.name}: {exc}", file=sys.stderr)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="strata-demo", description=__doc__)
    parser.add_argument("--photo", type=Path, default=DEMO_PHOTO)
    parser.add_argument("--out", type=Path, default=REPO / "out")
    parser.add_argument("--height", type=float, default=1.80, help="the person's height in metres")
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    blend = [out / "human.blend"] if (REPO / ".venv-blender").exists() else []

    print(f"Starting strata-server (log: {out / 'server.log'}) ...", file=sys.stderr)
    proc, address = start_server(out / "server", out / "server.log")
    written: list[Path] = []
    try:
        with Client(address, timeout=30) as client:
            caps = client.hello()["capabilities"]
            print(f"Server {address} on {caps.get('device', '?')}; job kinds: "
                  f"{', '.join(caps.get('job_kinds', {}))}", file=sys.stderr)
            written += run_job(client, "body", "body", {"height": args.height, "pose": "A"},
                               [out / "body.strata", out / "body.glb"])
            written += run_job(client, f"reconstruct {args.photo.name}", "reconstruct",
                               {"height": args.height}, [out / "human.strata", out / "human.glb", *blend],
                               image=args.photo.read_bytes())
    except RemoteError as exc:
        print(f"demo failed: [{exc.code}] {exc}", file=sys.stderr)
        return 1
    finally:
        stop_server(proc)
    print("\nDemo outputs:")
    for path in written:
        print(f"  {os.path.relpath(path)}  ({path.stat().st_size / 1e6:.1f} MB)")
    print("Open human.blend in Blender, or import human.glb anywhere glTF is read.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
