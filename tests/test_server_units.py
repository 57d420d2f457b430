"""The server's parts in isolation: bind policy and keys, the model cache, job progress and errors,
the job store, logs, output formats, the progress bar and the CLI's option table."""

from __future__ import annotations

import io
import json
import logging
import stat
import threading
import time
from pathlib import Path

import pytest

from strata.client import cli
from strata.client.outputs import OutputError, check_output
from strata.client.progress_bar import ProgressBar
from strata.core.progress import Cancelled
from strata.exchange.client import CurveKeys, Event, RemoteError, _as_event, generate_keys
from strata.exchange.wire import protocol
from strata.exchange.wire.jobs import JOB_SPECS
from strata.exchange.wire.protocol import ErrorCode, JobState
from strata.server.kinds import KINDS, JobError
from strata.server.kinds.base import module_exists
from strata.server.logs import JsonFormatter, TextFormatter, log_event
from strata.server.models import memory_report
from strata.server.security import SecurityError, check_bind, is_loopback, load_server_keys
from strata.server.store import JobRecord, JobStore
from strata.server.worker import JobProgress, error_of


@pytest.mark.parametrize("address, loopback", [
    ("tcp://127.0.0.1:5555", True), ("tcp://127.8.9.10:1", True), ("tcp://localhost:5555", True),
    ("tcp://[::1]:5555", True), ("ipc:///tmp/strata.sock", True), ("inproc://x", True),
    ("tcp://0.0.0.0:5555", False), ("tcp://*:5555", False), ("tcp://192.168.1.2:5555", False),
    ("tcp://eth0:5555", False), ("tcp://[::]:5555", False), ("ws://127.0.0.1:5555", False),
])
def test_loopback_policy(address, loopback):
    assert is_loopback(address) is loopback
    if not loopback:
        with pytest.raises(SecurityError, match="refusing to bind"):
            check_bind(address, None)


def test_keys_are_generated_loaded_and_kept(tmp_path):
    keys = generate_keys(tmp_path / "k", ["alice"])
    server = load_server_keys(keys)
    alice = CurveKeys.load(keys, "alice")
    assert alice.server_public == server.public and len(alice.client_secret) == 40
    assert (keys / "authorized_clients" / "alice.key").exists()
    assert stat.S_IMODE((keys / "server.key_secret").stat().st_mode) == 0o600
    generate_keys(keys, ["bob"])  # adding a client keeps the existing keys
    assert CurveKeys.load(keys, "alice") == alice and load_server_keys(keys).public == server.public
    with pytest.raises(FileNotFoundError, match="strata-server keys"):
        CurveKeys.load(keys, "carol")
    (keys / "authorized_clients" / "alice.key").unlink()
    (keys / "authorized_clients" / "bob.key").unlink()
    with pytest.raises(SecurityError, match="no authorized client keys"):
        load_server_keys(keys)


def test_memory_report():
    assert memory_report()["rss_bytes"] > 10 << 20


class FakeSink:
    def __init__(self):
        self.events = []

    def post(self, event, **fields):
        self.events.append((event, fields))


def test_job_progress_forwards_throttles_and_cancels():
    record = JobRecord("0123456789abcdef", "echo", {}, time.time())
    sink = FakeSink()
    progress = JobProgress(record, sink)
    for i in range(100):
        progress.report("loop", i / 100)
    progress.report("loop", 1.0)
    progress.report("next", 0.0, "hello")
    stages = [(f["stage"], f["fraction"]) for _, f in sink.events]
    assert stages[0] == ("loop", 0.0) and ("loop", 1.0) in stages and stages[-1] == ("next", 0.0)
    assert len(stages) < 20  # tight loops do not flood the client
    assert (record.stage, record.text) == ("next", "hello")
    record.cancel.set()
    with pytest.raises(Cancelled):
        progress.report("next", 0.5)
    assert set(progress.finish()) == {"loop", "next"}


class PhotoLike(Exception):
    code = "no_person"

    def __init__(self):
        super().__init__("No person found. Try another photo.")
        self.message = "No person found."
        self.hint = "Try another photo."
        self.details = {"people": 0, "path": Path("/x")}


def test_error_of_reads_codes_messages_details_and_hints():
    assert error_of(JobError("oops", "it broke", {"a": 1})) == ("oops", "it broke", {"a": 1})
    assert error_of(PhotoLike()) == ("no_person", "No person found.",
                                     {"people": 0, "path": "/x", "hint": "Try another photo."})
    assert error_of(protocol.ProtocolError(ErrorCode.INVALID_INPUT, "bad")) == ("invalid_input", "bad", {})
    assert error_of(ValueError("x")) is None


def test_store_recovers_unfinished_jobs_and_prunes(tmp_path):
    log = logging.getLogger("test")
    store = JobStore(tmp_path, keep=2, log=log)
    records = []
    for i, state in enumerate([JobState.DONE, JobState.RUNNING, JobState.QUEUED, JobState.FAILED, JobState.DONE]):
        record = JobRecord(f"{i:016x}", "echo", {}, 1000.0 + i, state=state)
        store.add(record)
        records.append(record)
    (tmp_path / "jobs" / records[4].job_id / "result.strata").write_bytes(b"")
    (tmp_path / "jobs" / "garbage").mkdir()
    (tmp_path / "jobs" / "garbage" / "job.json").write_text("{not json")
    restored = JobStore(tmp_path, keep=2, log=log)
    restored.load()
    states = {r.job_id: (r.state, (r.error or {}).get("code")) for r in restored.recent(10)}
    # keep=2: the two newest finished jobs stay; unfinished ones became failed (shutting_down) on load
    assert states == {records[4].job_id: (JobState.DONE, None),
                      records[3].job_id: (JobState.FAILED, None)}
    assert not (tmp_path / "jobs" / records[0].job_id).exists()
    assert restored.get("../../etc") is None and restored.get("nothex") is None


def test_text_and_json_logs_are_one_line_per_event():
    log = logging.getLogger("strata.test.logs")
    log.propagate = False
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        handler.setFormatter(TextFormatter())
        log_event(log, "job.done", job="ab", seconds=1.5, message="two words")
        handler.setFormatter(JsonFormatter())
        log_event(log, "job.done", job="ab", seconds=1.5)
    finally:
        log.removeHandler(handler)
    text, js = stream.getvalue().splitlines()
    assert text.split(" ", 2)[1:] == ["INFO", 'job.done job=ab seconds=1.5 message="two words"']
    data = json.loads(js)
    assert data["event"] == "job.done" and data["seconds"] == 1.5 and data["ts"].endswith("Z")


def test_output_formats(tmp_path):
    check_output(tmp_path / "a.strata")
    for bad in ("a.obj", "a"):
        with pytest.raises(OutputError, match="unknown output format"):
            check_output(tmp_path / bad)
    if module_exists("strata.exchange.asset.gltf"):
        check_output(tmp_path / "a.glb")
    else:
        with pytest.raises(OutputError, match="needs strata.exchange.asset.gltf"):
            check_output(tmp_path / "a.glb")


def test_module_exists_does_not_import():
    import sys

    assert module_exists("strata.exchange.asset.codec") and not module_exists("strata.core.nope.nothing")
    assert not module_exists("surely_not_a_module_xyz")
    if "torch" not in sys.modules:
        assert module_exists("torch") and "torch" not in sys.modules


def test_progress_bar_without_a_terminal_prints_stage_changes():
    out = io.StringIO()
    bar = ProgressBar(out, "echo")
    for fraction in (0.0, 0.1, 0.2, 0.3, 0.6, 1.0):
        bar.update(Event("progress", "j", {"stage": "hold", "fraction": fraction, "text": ""}))
    bar.update(Event("heartbeat", "j", {"state": "running", "stage": "hold"}))
    bar.close("done")
    lines = out.getvalue().splitlines()
    assert [line.split()[2] for line in lines[:-1]] == ["0%", "30%", "60%", "100%"]
    assert lines[0].startswith("echo: hold") and lines[-1] == "done"


def test_events_are_told_apart_from_replies():
    event = _as_event(protocol.unpack(protocol.pack("progress", {"job_id": "j", "stage": "s", "fraction": 0.5,
                                                                 "text": "", "elapsed": 0}), from_client=False))
    assert event.type == "progress" and event.job_id == "j" and not event.terminal
    reply = protocol.unpack(protocol.error_frames("not_found", "no", job_id="j", rid=3), from_client=False)
    assert _as_event(reply) is None  # an error with a rid answers a request
    terminal = _as_event(protocol.unpack(protocol.error_frames("cancelled", "c", job_id="j"), from_client=False))
    assert terminal.terminal and terminal.error().code == "cancelled" and terminal.asset is None


def test_cli_options_come_from_the_job_specs():
    parser = cli.build_parser()
    args = parser.parse_args(["body", "--height", "1.8", "--rig", "mixamo", "--texture-size", "512"])
    assert cli.params_from_args(args, JOB_SPECS["body"]) == {"height": 1.8, "rig": "mixamo", "texture_size": 512}
    args = parser.parse_args(["reconstruct", "me.png", "--strict"])
    assert cli.params_from_args(args, JOB_SPECS["reconstruct"]) == {"strict": True}
    for spec in JOB_SPECS.values():
        if spec.kind == "echo":
            continue
        help_text = parser._subparsers._group_actions[0].choices[spec.kind].format_help()
        for p in spec.params:
            assert "--" + p.name.replace("_", "-") in help_text


@pytest.mark.parametrize("code, exit_code", [
    ("cancelled", 4), ("invalid_params", 2), ("not_found", 2), ("too_large", 2), ("unsupported_version", 5),
    ("unknown_job_kind", 5), ("bad_request", 5), ("no_person", 1), ("internal", 1), ("busy", 1),
])
def test_cli_exit_codes(code, exit_code):
    assert cli.exit_code_for(code) == exit_code


def test_every_spec_kind_has_an_implementation():
    assert set(KINDS) == set(JOB_SPECS)


def test_client_works_vendored_without_the_strata_package(tmp_path):
    """The add-on carries the exchange package (client.py, asset/, wire/) as its own `_lib`: the client must
    need nothing else of ours (and no torch/PIL)."""
    import shutil
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    shutil.copytree(root / "exchange", tmp_path / "_lib", ignore=shutil.ignore_patterns("__pycache__"))
    code = ("import sys; import _lib.client as c; c.Client('tcp://127.0.0.1:1', timeout=0.1).close(); "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('strata', 'torch', 'PIL')]; "
            "assert not bad, bad")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_a_kind_without_a_runnable_backend_is_not_advertised_and_is_refused(tmp_path):
    """In-process server with a kind that needs a stage nothing can run: `welcome` lists it under
    `unavailable_kinds` with the registry's reason, and a submit is refused at once with `unavailable`."""
    from strata.exchange.client import Client
    from strata.server.config import ServerConfig
    from strata.server.kinds.echo import EchoKind
    from strata.server.loop import Server

    class NeedsMultiview(EchoKind):
        stages = ("multiview",)

    port = _free_port()
    config = ServerConfig(bind=f"tcp://127.0.0.1:{port}", data_dir=tmp_path / "data", device="cpu")
    config.data_dir.mkdir()
    server = Server(config, logging.getLogger("test"), kinds={"echo": NeedsMultiview()})
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    try:
        with Client(f"tcp://127.0.0.1:{port}", timeout=10) as client:
            server.probe.wait(30)
            caps = client.hello()["capabilities"]
            assert "echo" not in caps["job_kinds"]
            assert "no multiview backend can run here" in caps["unavailable_kinds"]["echo"]
            with pytest.raises(RemoteError) as info:
                client.submit("echo", {})
            assert info.value.code == "unavailable" and "multiview" in info.value.message
    finally:
        server.request_stop()
        thread.join(10)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
