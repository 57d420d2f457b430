"""`strata batch INPUT_DIR --out OUT_DIR`: run a job per input on the server, then save every result.

Inputs (the folder's files, in name order):

* photos (.png .jpg .jpeg .webp) -> a `reconstruct` job each (`--param KEY=VALUE` sets its parameters);
* job files (*.json): {"kind": "body", "params": {...}, "image": "photo.png"?, "name": "..."?} -> any job kind.

Every result is written to OUT_DIR as `<name>.<format>` for each of `--format` (strata, glb, blend, fbx):
.strata and .glb from this environment, .blend and .fbx by ONE Blender run for the whole batch
(client/blender_export.py: the bpy of .venv-blender, or a Blender binary with `--blender`). A failure
(bad photo, failed job, failed export) is reported and the batch goes on; the summary lists them all
and the exit code is 1 if anything failed.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..exchange.asset import container
from ..exchange.client import DEFAULT_ADDRESS, Client, CurveKeys, RemoteError, ServerUnavailable
from ..exchange.wire.jobs import JOB_SPECS
from ..exchange.wire.protocol import ProtocolError

PHOTO_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
FORMATS = ("strata", "glb", "blend", "fbx")
BLENDER_FORMATS = ("blend", "fbx")
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_NO_SERVER = 0, 1, 2, 3
SERVER_START_WAIT = 120.0


@dataclass
class BatchJob:
    """One input and what became of it."""

    source: Path
    name: str
    kind: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    image: Path | None = None
    job_id: str = ""
    outputs: list[Path] = field(default_factory=list)
    error: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.error


def add_batch_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add `batch` to the `strata` command's subparsers (client/cli.py)."""
    p = subparsers.add_parser("batch", help="run a job per photo / job file in a folder and save every result",
                              description=__doc__.split("\n\n")[0], epilog=_EPILOG,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input_dir", type=Path, help="folder of photos and *.json job files")
    p.add_argument("--out", type=Path, required=True, help="folder for the results (created)")
    p.add_argument("--format", default="blend", help=f"comma-separated, of {','.join(FORMATS)} (default blend)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="a reconstruct parameter for the photos, e.g. --param quality=fast (repeatable)")
    # SUPPRESS: `strata --server X batch ...` and `strata batch ... --server X` both work.
    p.add_argument("--server", default=argparse.SUPPRESS, help=f"server address (default {DEFAULT_ADDRESS})")
    p.add_argument("--start-server", action="store_true",
                   help="start a temporary local strata-server from this environment for the batch")
    p.add_argument("--blender", default=None, help="a Blender 4.2+ executable for .blend/.fbx (default: the bpy "
                                                   "of .venv-blender)")
    p.add_argument("--blender-python", default=None, help="a Python with bpy, instead of .venv-blender")
    p.add_argument("--job-timeout", type=float, default=None, help="seconds per job before it is cancelled")
    p.set_defaults(func=run_batch)
    return p


_EPILOG = """\
job file example (body.json):  {"kind": "body", "params": {"height": 1.8, "rig": "game_engine"}}
exit codes: 0 all succeeded, 1 some input failed, 2 usage error, 3 no server answered
"""


def run_batch(args: argparse.Namespace) -> int:
    formats = [f.strip().lower().lstrip(".") for f in str(args.format).split(",") if f.strip()]
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown or not formats:
        return _usage(f"--format: unknown {', '.join(unknown) or '(empty)'}; use {','.join(FORMATS)}")
    if not args.input_dir.is_dir():
        return _usage(f"{args.input_dir} is not a folder")
    try:
        photo_params = _photo_params(args.param)
    except ValueError as exc:
        return _usage(str(exc))
    jobs = collect(args.input_dir, photo_params)
    if not jobs:
        return _usage(f"{args.input_dir} holds no photos ({', '.join(PHOTO_SUFFIXES)}) or *.json job files")
    args.out.mkdir(parents=True, exist_ok=True)
    address = getattr(args, "server", None) or os.environ.get("STRATA_SERVER", DEFAULT_ADDRESS)
    quiet = getattr(args, "quiet", False)
    curve = CurveKeys.load(args.curve_dir, args.curve_client) if getattr(args, "curve_dir", None) else None

    with tempfile.TemporaryDirectory(prefix="strata-batch-") as tmp, \
            _maybe_local_server(args.start_server, Path(tmp), quiet) as local_address:
        address = local_address or address
        client = Client(address, timeout=float(getattr(args, "timeout", 5.0)), curve=curve)
        with client:
            try:
                welcome = client.hello()
            except ServerUnavailable as exc:
                print(f"strata batch: {exc} (or pass --start-server)", file=sys.stderr)
                return EXIT_NO_SERVER
            kinds = welcome.get("capabilities", {}).get("job_kinds", {})
            for i, job in enumerate(jobs, 1):
                _run_one(client, job, kinds, Path(tmp), i, len(jobs), args.job_timeout, quiet)
        _write_results(jobs, formats, args.out, Path(tmp), args.blender, args.blender_python)
    _summary(jobs, args.out)
    return EXIT_OK if all(job.ok for job in jobs) else EXIT_FAILED


# ---------------------------------------------------------------------------------------------
# inputs


def _photo_params(pairs: list[str]) -> dict[str, Any]:
    spec = JOB_SPECS["reconstruct"]
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep:
            raise ValueError(f"--param {pair!r}: expected KEY=VALUE")
        try:
            p = spec.param(key.strip())
        except KeyError:
            raise ValueError(f"--param: reconstruct has no parameter {key!r}; it has "
                             f"{', '.join(q.name for q in spec.params)}") from None
        if p.type is bool:
            value: Any = raw.strip().lower() in ("1", "true", "yes", "on")
        else:
            try:
                value = p.type(raw.strip())
            except ValueError:
                raise ValueError(f"--param {key}: {raw!r} is not a {p.type.__name__}") from None
        params[p.name] = value
    try:
        spec.validate(params)
    except ProtocolError as exc:
        raise ValueError(f"--param: {exc.message}") from None
    return params


def collect(folder: Path, photo_params: dict[str, Any]) -> list[BatchJob]:
    """A BatchJob per photo or job file, named uniquely after the file."""
    jobs: list[BatchJob] = []
    names: set[str] = set()
    for path in sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")):
        suffix = path.suffix.lower()
        if suffix not in PHOTO_SUFFIXES and suffix != ".json":
            continue
        name = path.stem if path.stem not in names else f"{path.stem}-{suffix.lstrip('.')}"
        names.add(name)
        job = BatchJob(path, name)
        if suffix == ".json":
            _read_job_file(job)
        else:
            job.kind, job.params, job.image = "reconstruct", dict(photo_params), path
        jobs.append(job)
    return jobs


def _read_job_file(job: BatchJob) -> None:
    try:
        data = json.loads(job.source.read_text())
        if not isinstance(data, dict) or not isinstance(data.get("kind"), str):
            raise ValueError('expected an object like {"kind": "body", "params": {...}}')
        params = data.get("params", {})
        if not isinstance(params, dict):
            raise ValueError('"params" must be an object')
        job.kind, job.params = data["kind"], params
        if data.get("image"):
            job.image = (job.source.parent / str(data["image"])).resolve()
        if isinstance(data.get("name"), str) and data["name"].strip():
            job.name = data["name"].strip()
    except (OSError, ValueError) as exc:  # json.JSONDecodeError is a ValueError
        job.error = f"bad job file: {exc}"


# ---------------------------------------------------------------------------------------------
# jobs


def _run_one(client: Client, job: BatchJob, kinds: dict[str, Any], tmp: Path, index: int, total: int,
             timeout: float | None, quiet: bool) -> None:
    label = f"[{index}/{total}] {job.source.name}"
    start = time.monotonic()
    if not job.error:
        try:
            _check_kind(job.kind, kinds)
            image = job.image.read_bytes() if job.image is not None else None
            job.job_id = client.submit(job.kind, job.params, image=image)
            if not quiet:
                print(f"{label}: {job.kind} job {job.job_id}", file=sys.stderr, flush=True)
            for event in client.events(job.job_id, timeout=timeout):
                if event.type == "result":
                    container.write_frames(tmp / f"{job.name}.strata", event.frames)
                    break
                error = event.error()
                if error is not None:
                    raise error
        except (RemoteError, ProtocolError) as exc:
            job.error = f"[{exc.code}] {exc.message}"
        except TimeoutError as exc:
            job.error = str(exc)
            _cancel_quietly(client, job.job_id)
        except OSError as exc:
            job.error = f"cannot read {exc.filename}: {exc.strerror or exc}"
    job.seconds = time.monotonic() - start
    if not quiet:
        print(f"{label}: {'ok' if job.ok else 'FAILED ' + job.error} ({job.seconds:.1f} s)", file=sys.stderr,
              flush=True)


def _check_kind(kind: str, kinds: dict[str, Any]) -> None:
    if kinds and kind not in kinds:
        raise RemoteError("unknown_job_kind", f"the server has no {kind!r} job (it offers {', '.join(kinds)})")
    info = kinds.get(kind) or {}
    if info.get("available") is False:
        raise RemoteError("unavailable", f"the server cannot run {kind!r} jobs: "
                                         f"{info.get('unavailable_reason') or 'not installed'}")


def _cancel_quietly(client: Client, job_id: str) -> None:
    with suppress(ServerUnavailable, ProtocolError):  # best effort: the job's own timeout is the error shown
        client.cancel(job_id)


# ---------------------------------------------------------------------------------------------
# outputs


def _write_results(jobs: list[BatchJob], formats: list[str], out: Path, tmp: Path, blender: str | None,
                   blender_python: str | None) -> None:
    done = [job for job in jobs if job.ok]
    for job in done:
        staged = tmp / f"{job.name}.strata"
        try:
            if "strata" in formats:
                target = out / f"{job.name}.strata"
                shutil.copyfile(staged, target)
                job.outputs.append(target)
            if "glb" in formats:
                from ..exchange.asset import gltf

                target = out / f"{job.name}.glb"
                gltf.write_glb(container.load(staged), target)
                job.outputs.append(target)
        except Exception as exc:  # a writer bug must not lose the other results
            job.error = f"writing {job.name}: {type(exc).__name__}: {exc}"
    wanted = [f for f in formats if f in BLENDER_FORMATS]
    blender_jobs = [job for job in done if job.ok and wanted]
    if not blender_jobs:
        return
    from .blender_export import ExportError, export_many

    try:
        reports = export_many([(tmp / f"{job.name}.strata", [out / f"{job.name}.{f}" for f in wanted])
                               for job in blender_jobs], blender=blender, blender_python=blender_python)
    except ExportError as exc:
        for job in blender_jobs:
            job.error = f"Blender: {exc}"
        return
    for job, report in zip(blender_jobs, reports, strict=True):
        job.outputs += [Path(o) for o in report.get("outputs", [])]
        if not report.get("ok"):
            job.error = f"Blender: {report.get('error', 'failed')}"


def _summary(jobs: list[BatchJob], out: Path) -> None:
    ok = [job for job in jobs if job.ok]
    failed = [job for job in jobs if not job.ok]
    print(f"strata batch: {len(ok)} succeeded, {len(failed)} failed (results in {out})")
    for job in ok:
        print(f"  ok      {job.source.name}: {', '.join(p.name for p in job.outputs)}")
    for job in failed:
        print(f"  FAILED  {job.source.name}: {job.error}")


def _usage(message: str) -> int:
    print(f"strata batch: {message}", file=sys.stderr)
    return EXIT_USAGE


@contextmanager
def _maybe_local_server(start: bool, tmp: Path, quiet: bool) -> Iterator[str | None]:
    """With --start-server: a strata-server from this environment on a free loopback port, stopped after."""
    if not start:
        yield None
        return
    exe = Path(sys.executable).with_name("strata-server")
    cmd = [str(exe)] if exe.is_file() else [sys.executable, "-m", "strata.server.main"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    log = open(tmp / "server.log", "wb")  # noqa: SIM115 - the child writes it; closed below
    process = subprocess.Popen([*cmd, "--bind", address, "--data-dir", str(tmp / "server")], stdout=log,
                               stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        if not quiet:
            print(f"strata batch: started a server at {address} (pid {process.pid})", file=sys.stderr)
        deadline = time.monotonic() + SERVER_START_WAIT
        with Client(address, timeout=1.0) as probe:
            while True:
                try:
                    probe.ping()
                    break
                except ServerUnavailable:
                    if process.poll() is not None or time.monotonic() > deadline:
                        log.flush()
                        tail = (tmp / "server.log").read_text(errors="replace")[-2000:]
                        raise SystemExit(f"strata batch: the local server did not start:\n{tail}") from None
        yield address
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
