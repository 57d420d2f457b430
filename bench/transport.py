"""Transport benchmark: a ~100 MB asset through the real server vs. a raw zmq echo of the same bytes.

    .venv/bin/python bench/transport.py [--mb 100] [--rounds 10]

Path 1 (asset): `Client.submit("echo", asset=...)` -> server validates (decodes) the asset, the echo job
re-sends the received frames -> the client decodes the result. Everything a real job's transport does,
minus the pipeline.
Path 2 (raw): a DEALER sends the same frames (zero-copy) to a ROUTER in another process that sends them
straight back: the ceiling for this machine.

MB/s counts the bytes moved per round trip (asset out + asset back, 10^6 bytes per MB). Both servers are
separate processes on loopback. The last line is machine-readable:

    BENCH transport asset_MBps=... raw_MBps=... ratio=...
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import zmq

from strata.exchange.asset import codec, synthetic
from strata.exchange.client import Client, ServerUnavailable

BYTES_PER_VERTEX = 110  # what make_asset's layers cost on the wire, measured; used to size the asset


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raw_echo_server(port: int) -> None:
    """Child process: echo every message back, zero-copy both ways."""
    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.bind(f"tcp://127.0.0.1:{port}")
    while True:
        parts = sock.recv_multipart(copy=False)
        if len(parts) == 2 and parts[1].bytes == b"quit":
            return
        sock.send_multipart(parts, copy=False)


def wait_for_server(address: str, deadline: float) -> None:
    while True:
        try:
            with Client(address, timeout=0.5) as client:
                client.ping()
                return
        except ServerUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def asset_round_trip(client: Client, asset) -> tuple[float, object]:
    start = time.perf_counter()
    job_id = client.submit("echo", asset=asset)
    result = client.wait(job_id)  # decoded: zero-copy views, validated
    return time.perf_counter() - start, result


def raw_round_trip(sock: zmq.Socket, frames: list) -> float:
    start = time.perf_counter()
    sock.send_multipart(frames, copy=False)
    back = sock.recv_multipart(copy=False)
    elapsed = time.perf_counter() - start
    assert len(back) == len(frames)
    return elapsed


def run_rounds(address: str, raw_port: int, asset, frames: list, rounds: int) -> tuple[list[float], list[float]]:
    """Alternate the two paths round by round, so both see the same machine load (shared 2-core boxes
    are noisy); the first round of each is a warm-up (and the correctness check)."""
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(f"tcp://127.0.0.1:{raw_port}")
    asset_times, raw_times = [], []
    try:
        with Client(address, timeout=30) as client:
            for i in range(rounds + 1):
                elapsed, result = asset_round_trip(client, asset)
                if i == 0:
                    assert np.array_equal(result.layers[0].mesh.vertices, asset.layers[0].mesh.vertices)
                else:
                    asset_times.append(elapsed)
                del result
                elapsed = raw_round_trip(sock, frames)
                if i:
                    raw_times.append(elapsed)
        sock.send_multipart([b"quit"])
    finally:
        sock.close()
    return asset_times, raw_times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=float, default=100.0, help="asset size in MB (default 100)")
    parser.add_argument("--rounds", type=int, default=15, help="timed round trips per path (default 15)")
    parser.add_argument("--raw-echo", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.raw_echo:
        raw_echo_server(args.raw_echo)
        return 0

    vertices = int(args.mb * 1e6 / BYTES_PER_VERTEX / 2)
    t0 = time.perf_counter()
    asset = synthetic.make_asset(n_layers=2, vertices_per_layer=vertices, texture_size=512, n_joints=32)
    frames = codec.encode(asset)
    nbytes = sum(memoryview(f).nbytes for f in frames)
    print(f"asset: {len(frames)} frames, {nbytes / 1e6:.1f} MB (built in {time.perf_counter() - t0:.1f} s)")

    port, raw_port = free_port(), free_port()
    address = f"tcp://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory(prefix="strata-bench-") as data_dir:
        server = subprocess.Popen(
            [sys.executable, "-m", "strata.server.main", "--bind", address, "--data-dir", data_dir,
             "--keep-jobs", "2", "--log-level", "WARNING"])
        raw = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--raw-echo", str(raw_port)])
        try:
            wait_for_server(address, time.monotonic() + 30)
            asset_times, raw_times = run_rounds(address, raw_port, asset, frames, args.rounds)
        finally:
            server.terminate()
            raw.terminate()
            server.wait(10)
            raw.wait(10)

    def report(name: str, times: list[float]) -> float:
        median = statistics.median(times)
        mbps = 2 * nbytes / 1e6 / median
        print(f"{name:>6}: median {median * 1000:7.1f} ms  min {min(times) * 1000:7.1f} ms  "
              f"max {max(times) * 1000:7.1f} ms  -> {mbps:7.0f} MB/s ({len(times)} round trips of "
              f"{2 * nbytes / 1e6:.0f} MB)")
        return mbps

    asset_mbps = report("asset", asset_times)
    raw_mbps = report("raw", raw_times)
    ratio = asset_mbps / raw_mbps
    print(f"asset path reaches {ratio:.0%} of raw zmq (goal: >= 1000 MB/s and >= 60 %)")
    print(f"BENCH transport asset_MBps={asset_mbps:.0f} raw_MBps={raw_mbps:.0f} ratio={ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
