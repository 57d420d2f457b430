"""The `strata` command against a real server: exit codes, progress output, outputs by extension,
and Ctrl-C cancelling the job on the server."""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from test_server_process import CLI_SCRIPT, ServerProcess, free_port

from strata.exchange.asset import container
from strata.exchange.asset.synthetic import make_asset
from strata.exchange.client import Client

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    srv = ServerProcess(tmp_path_factory.mktemp("cli") / "data").start()
    yield srv
    assert srv.stop() == 0, srv.stderr


def strata_command() -> list[str]:
    return [str(CLI_SCRIPT)] if CLI_SCRIPT.exists() else [sys.executable, "-m", "strata.client.cli"]


def run(*args: str, server: ServerProcess | None = None, cwd=None, timeout: float = 30) -> subprocess.CompletedProcess:
    address = server.address if server else f"tcp://127.0.0.1:{free_port()}"
    return subprocess.run([*strata_command(), "--server", address, *args], capture_output=True, text=True,
                           timeout=timeout, cwd=cwd)


def test_help_documents_exit_codes():
    result = subprocess.run([*strata_command(), "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    for line in ("0  success", "1  the job failed", "2  usage error", "3  no server answered", "4  the job was",
                 "5  protocol"):
        assert line in result.stdout
    assert "echo" not in result.stdout.split("options:")[0]  # the diagnostic command stays hidden


def test_no_server_exits_3_and_says_how_to_start_one():
    result = run("--timeout", "0.5", "ping")
    assert result.returncode == 3
    assert "strata-server" in result.stderr and "Traceback" not in result.stderr


def test_ping_status_and_release(server):
    result = run("ping", server=server)
    assert result.returncode == 0 and result.stdout.startswith("pong from")
    result = run("status", server=server)
    assert result.returncode == 0 and "echo: available" in result.stdout
    result = run("status", "--json", server=server)
    assert json.loads(result.stdout)["version"] == 1
    assert run("release", server=server).returncode == 0


def test_echo_job_with_progress_and_strata_output(server, tmp_path):
    out = tmp_path / "nested" / "echo.strata"
    result = run("echo", "--hold", "0.6", "--out", str(out), server=server)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out)
    assert container.load(out).provenance.job_kind == "echo"
    assert "echo: hold" in result.stderr and "100%" in result.stderr and "done in" in result.stderr


def test_echo_sends_an_asset_file_and_fetch_saves_it_again(server, tmp_path):
    asset = make_asset(2, 200, 8)
    source = tmp_path / "in.strata"
    container.save(asset, source)
    assert run("-q", "echo", "--in", str(source), "--out", str(tmp_path / "back.strata"), server=server).returncode == 0
    assert (tmp_path / "back.strata").read_bytes() == source.read_bytes()  # echoed byte for byte
    with Client(server.address) as client:
        job_id = client.jobs(1)[0]["job_id"]
    result = run("fetch", job_id, "--out", str(tmp_path / "fetched.strata"), server=server)
    assert result.returncode == 0 and (tmp_path / "fetched.strata").read_bytes() == source.read_bytes()
    if importlib.util.find_spec("strata.exchange.asset.gltf") is not None:
        result = run("fetch", job_id, "--out", str(tmp_path / "fetched.glb"), server=server)
        assert result.returncode == 0, result.stderr
        assert (tmp_path / "fetched.glb").read_bytes()[:4] == b"glTF"
    result = run("status", job_id, server=server)
    assert result.returncode == 0 and "state     done" in result.stdout
    result = run("jobs", server=server)
    assert result.returncode == 0 and job_id in result.stdout


def test_job_failure_exits_1_with_its_code(server):
    result = run("echo", "--fail", "no_person", server=server)
    assert result.returncode == 1
    assert "[no_person]" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("args, message", [
    (["body", "--height", "3"], "above the maximum"),
    (["body", "--rig", "unreal"], "invalid choice"),
    (["echo", "--out", "x.obj"], "unknown output format"),
    (["reconstruct", "/no/such/photo.png"], "cannot read the photo"),
    (["reconstruct"], "give a photo or --views DIR"),
    (["reconstruct", "--views", "/no/such/folder"], "not a folder"),
    (["fetch", "0000000000000000", "--out", "x.strata"], "not_found"),
    (["echo", "--in", "/no/such/asset.strata"], "cannot read the asset"),
])
def test_bad_input_exits_2(server, tmp_path, args, message):
    result = run(*args, server=server, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and "Traceback" not in result.stderr


def test_body_command(server, tmp_path):
    result = run("body", "--height", "1.8", "--texture-size", "256", "--out", str(tmp_path / "b.strata"),
                 server=server)
    with Client(server.address) as client:
        available = client.hello()["capabilities"]["job_kinds"]["body"]["available"]
    if available:
        assert result.returncode == 0, result.stderr
        assert container.load(tmp_path / "b.strata").provenance.params["height"] == 1.8
    else:
        assert result.returncode == 1 and "cannot run 'body' jobs" in result.stderr


def test_ctrl_c_cancels_the_job_on_the_server(server, tmp_path):
    proc = subprocess.Popen([*strata_command(), "--server", server.address, "echo", "--hold", "30"],
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    line = ""
    deadline = time.monotonic() + 20
    while "echo: hold" not in line:  # wait until the job runs
        line = proc.stderr.readline()
        assert line and time.monotonic() < deadline, "the job never started"
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 4, err
    assert "cancelled" in err and "Traceback" not in err
    with Client(server.address) as client:
        job = client.jobs(1)[0]
    assert job["state"] == "cancelled" and job["params"]["hold"] == 30.0


def test_cancel_command(server):
    with Client(server.address) as client:
        job_id = client.submit("echo", {"hold": 30})
        result = run("cancel", job_id, server=server)
        assert result.returncode == 0 and job_id in result.stdout
        assert [e.type for e in client.events(job_id, timeout=10)][-1] == "error"
        assert client.status(job_id)["state"] == "cancelled"


def test_server_keys_command(tmp_path):
    script = CLI_SCRIPT.parent / "strata-server"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "strata.server.main"]
    result = subprocess.run([*command, "keys", "--out", str(tmp_path / "k"), "--client", "laptop"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for name in ("server.key", "server.key_secret", "authorized_clients/laptop.key", "clients/laptop.key_secret"):
        assert (tmp_path / "k" / name).exists()
    assert "--curve-dir" in result.stdout


def test_protocol_mismatch_exits_5():
    """A server that speaks another protocol version: the CLI says so instead of failing obscurely."""
    import threading

    import msgpack
    import zmq

    port = free_port()
    sock = zmq.Context.instance().socket(zmq.ROUTER)
    sock.bind(f"tcp://127.0.0.1:{port}")
    stop = threading.Event()

    def serve():
        while not stop.is_set():
            if sock.poll(50):
                identity, head = sock.recv_multipart()[:2]
                rid = msgpack.unpackb(head).get("rid")
                sock.send_multipart([identity, msgpack.packb({
                    "v": 1, "type": "error", "rid": rid, "code": "unsupported_version",
                    "message": "this server speaks protocol 2"})])

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        result = subprocess.run([*strata_command(), "--server", f"tcp://127.0.0.1:{port}", "status"],
                                capture_output=True, text=True, timeout=30)
    finally:
        stop.set()
        thread.join()
        sock.close(linger=0)
    assert result.returncode == 5
    assert "unsupported_version" in result.stderr and "protocol 2" in result.stderr


def test_reconstruct_views_sends_the_folder_and_reports_what_is_missing(server, tmp_path):
    """`strata reconstruct --views DIR` zips the folder into the job's `views` input; a folder missing a
    view fails with the views error naming the file (exit 1), not a crash."""
    from strata.exchange.asset.synthetic import png_bytes

    folder = tmp_path / "views"
    folder.mkdir()
    rgba = np.zeros((64, 64, 4), np.uint8)
    rgba[16:48, 24:40] = (128, 128, 255, 255)
    for name in ("front", "front_right", "right", "back", "left"):  # front_left is missing
        for kind in ("color", "normal"):
            (folder / f"{kind}_{name}.png").write_bytes(png_bytes(rgba))
    result = run("reconstruct", "--views", str(folder), "--out", str(tmp_path / "v.strata"), server=server)
    assert result.returncode == 1, result.stderr
    assert "views_missing_files" in result.stderr and "front_left" in result.stderr
