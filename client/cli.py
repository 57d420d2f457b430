"""`strata`: the command-line client of a running strata-server.

Job parameters are generated from exchange/wire/jobs.py (JOB_SPECS), the same table the server validates
against and the Blender add-on builds its panel from, so the three never disagree.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..exchange.asset import AssetError, container
from ..exchange.client import DEFAULT_ADDRESS, Client, CurveKeys, RemoteError, ServerUnavailable
from ..exchange.wire.jobs import JOB_SPECS, JobSpec
from ..exchange.wire.protocol import ErrorCode, ProtocolError
from .outputs import WRITERS, OutputError, check_output, write_output
from .progress_bar import ProgressBar

EXIT_OK = 0
EXIT_JOB_FAILED = 1
EXIT_USAGE = 2
EXIT_NO_SERVER = 3
EXIT_CANCELLED = 4
EXIT_PROTOCOL = 5

USAGE_CODES = frozenset({ErrorCode.INVALID_PARAMS, ErrorCode.INVALID_INPUT, ErrorCode.TOO_LARGE, ErrorCode.NOT_FOUND})
PROTOCOL_CODES = frozenset({ErrorCode.BAD_MESSAGE, ErrorCode.BAD_REQUEST, ErrorCode.UNSUPPORTED_VERSION,
                            ErrorCode.UNKNOWN_TYPE, ErrorCode.UNKNOWN_JOB_KIND})
CANCEL_WAIT = 15.0
"""Seconds to wait, after Ctrl-C, for the server to confirm the cancel."""

EPILOG = f"""\
exit codes:
  0  success
  1  the job failed (its error code is printed), or the server cannot run it
  2  usage error or bad input (bad parameter, unreadable photo, unknown job id, unsupported --out)
  3  no server answered (start one with `strata-server`, or `make server`)
  4  the job was cancelled (Ctrl-C while waiting cancels it on the server)
  5  protocol or version mismatch between this client and the server

output formats (--out, by extension): {', '.join(WRITERS)}
server address: --server, else $STRATA_SERVER, else {DEFAULT_ADDRESS}
"""


class UsageError(Exception):
    """Bad command-line input found after parsing (exit 2)."""


# ---------------------------------------------------------------------------------------------
# parser


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def add_param_options(parser: argparse.ArgumentParser, spec: JobSpec) -> None:
    """One option per job parameter; unset options are not sent, so the server's defaults apply."""
    group = parser.add_argument_group(f"{spec.kind} parameters (defaults shown; the server fills them)")
    for p in spec.params:
        flag = "--" + p.name.replace("_", "-")
        limits = f" [{_number(p.min)}..{_number(p.max)}{p.unit}]" if p.min is not None or p.max is not None else ""
        text = f"{p.help}{limits} (default: {p.default!r})"
        if p.type is bool:
            group.add_argument(flag, dest=f"param_{p.name}", action=argparse.BooleanOptionalAction,
                               default=argparse.SUPPRESS, help=text)
        elif p.type is list:
            listed = f"; one of: {', '.join(map(str, p.choices))}" if p.choices else ""
            group.add_argument(flag, dest=f"param_{p.name}", type=_comma_list, default=argparse.SUPPRESS,
                               metavar="A,B,...", help=f"{p.help}, comma-separated{listed}")
        else:
            group.add_argument(flag, dest=f"param_{p.name}", type=p.type, choices=p.choices,
                               default=argparse.SUPPRESS, metavar=None if p.choices else p.type.__name__.upper(),
                               help=text)


def _comma_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def params_from_args(args: argparse.Namespace, spec: JobSpec) -> dict[str, Any]:
    params = {p.name: getattr(args, f"param_{p.name}") for p in spec.params if hasattr(args, f"param_{p.name}")}
    spec.validate(params)  # ProtocolError(invalid_params) -> exit 2 before any server is involved
    return params


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="strata", description="Talk to a running strata-server.",
                                     epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", default=os.environ.get("STRATA_SERVER", DEFAULT_ADDRESS),
                        help="server address (default %(default)s)")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for a reply (default 5)")
    parser.add_argument("--curve-dir", type=Path, default=None, help="CURVE keys (server.key + clients/NAME)")
    parser.add_argument("--curve-client", default="client", help="client key name in --curve-dir")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, func: Callable[[argparse.Namespace], int], help_: str | None,
                **kwargs: Any) -> argparse.ArgumentParser:
        if help_ is not None:  # hidden commands get no `help`: argparse then leaves them out of the list
            kwargs["help"] = help_
        p = sub.add_parser(name, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)
        p.set_defaults(func=func)
        return p

    body = command("body", cmd_body, "build a rigged, textured body from shape parameters",
                   description=JOB_SPECS["body"].help)
    add_param_options(body, JOB_SPECS["body"])
    body.add_argument("--out", type=Path, default=Path("out/body.strata"), help="output file (default %(default)s)")
    generate = command("generate", cmd_generate, "generate a layered human: every garment its own object",
                       description=JOB_SPECS["generate"].help)
    add_param_options(generate, JOB_SPECS["generate"])
    generate.add_argument("--out", type=Path, default=Path("out/layered.strata"),
                          help="output file (default %(default)s)")

    rec = command("reconstruct", cmd_reconstruct, "reconstruct a rigged, textured human from one photo",
                  description=JOB_SPECS["reconstruct"].help)
    rec.add_argument("photo", type=Path, nargs="?", help="PNG, JPEG or WebP photo of one person")
    rec.add_argument("--views", type=Path, default=None, metavar="DIR",
                     help="instead of a photo: a folder with color_<view>.png and normal_<view>.png for the six "
                          "views front, front_right, right, back, left, front_left (docs/views.md)")
    add_param_options(rec, JOB_SPECS["reconstruct"])
    rec.add_argument("--out", type=Path, default=None, help="output file (default out/<photo name>.strata)")

    echo = command("echo", cmd_echo, None, description="diagnostic: run the echo job")
    add_param_options(echo, JOB_SPECS["echo"])
    echo.add_argument("--in", dest="input", type=Path, default=None, help="a .strata asset to send")
    echo.add_argument("--out", type=Path, default=None, help="output file (default: none)")

    status = command("status", cmd_status, "server capabilities, or one job's status")
    status.add_argument("job", nargs="?", help="job id")
    status.add_argument("--json", action="store_true", help="print JSON")

    jobs = command("jobs", cmd_jobs, "list recent jobs")
    jobs.add_argument("--limit", type=int, default=20)
    jobs.add_argument("--json", action="store_true", help="print JSON")

    fetch = command("fetch", cmd_fetch, "save a finished job's result")
    fetch.add_argument("job", help="job id")
    fetch.add_argument("--out", type=Path, required=True, help="output file (.strata, .glb, ...)")

    cancel = command("cancel", cmd_cancel, "cancel a queued or running job")
    cancel.add_argument("job", help="job id")

    try:  # `strata batch`, when this install has it (client/batch.py)
        from .batch import add_batch_parser
    except ImportError:
        pass
    else:
        add_batch_parser(sub)

    command("release", cmd_release, "free the server's cached models (and GPU memory)")
    ping = command("ping", cmd_ping, "check that a server answers")
    ping.add_argument("--count", type=int, default=1)
    return parser


# ---------------------------------------------------------------------------------------------
# helpers


def _client(args: argparse.Namespace) -> Client:
    curve = CurveKeys.load(args.curve_dir, args.curve_client) if args.curve_dir else None
    return Client(args.server, timeout=args.timeout, curve=curve)


def _err(message: str) -> None:
    print(f"strata: {message}", file=sys.stderr)


def exit_code_for(code: str) -> int:
    if code == ErrorCode.CANCELLED:
        return EXIT_CANCELLED
    if code in PROTOCOL_CODES:
        return EXIT_PROTOCOL
    if code in USAGE_CODES:
        return EXIT_USAGE
    return EXIT_JOB_FAILED


def _describe(error: ProtocolError) -> str:
    hint = error.detail.get("hint") if isinstance(error.detail, dict) else None
    return f"[{error.code}] {error.message}" + (f"\n  hint: {hint}" if hint else "")


def _run_job(args: argparse.Namespace, kind: str, params: dict[str, Any], out: Path | None, *,
             image: bytes | None = None, asset: Any = None, files: dict[str, bytes] | None = None) -> int:
    if out is not None:
        check_output(out)
    with _client(args) as client:
        welcome = client.hello()
        caps = welcome["capabilities"]
        info = caps.get("job_kinds", {}).get(kind)
        refused = (caps.get("unavailable_kinds") or {}).get(kind)
        if info is None and refused:
            _err(f"the server cannot run {kind!r} jobs: {refused}")
            return EXIT_JOB_FAILED
        if info is None:
            _err(f"the server at {args.server} does not run {kind!r} jobs (server {welcome['server']})")
            return EXIT_PROTOCOL
        if not info.get("available", True):
            _err(f"the server cannot run {kind!r} jobs: {info.get('unavailable_reason', 'unavailable')}")
            return EXIT_JOB_FAILED
        job_id = client.submit(kind, params, image=image, asset=asset, files=files)
        if not args.quiet:
            print(f"job {job_id} submitted to {args.server}", file=sys.stderr)
        return _follow(client, job_id, kind, out, quiet=args.quiet)


def _follow(client: Client, job_id: str, kind: str, out: Path | None, *, quiet: bool) -> int:
    bar = None if quiet else ProgressBar(sys.stderr, kind)
    try:
        for event in client.events(job_id):
            if bar is not None:
                bar.update(event)
            if event.type == "result":
                if bar is not None:
                    bar.close(f"{kind}: done in {time.monotonic() - bar.start:.1f}s")
                if out is not None:
                    write_output(out, event.frames)
                    print(out)
                else:
                    asset = event.asset
                    print(f"job {job_id}: {asset.name!r}, {len(asset.layers)} layer(s), "
                          f"{sum(layer.mesh.n_vertices for layer in asset.layers)} vertices")
                return EXIT_OK
            error = event.error()
            if error is not None:
                if bar is not None:
                    bar.close()
                if error.code == ErrorCode.CANCELLED:
                    _err(f"job {job_id} was cancelled")
                    return EXIT_CANCELLED
                _err(f"job {job_id} failed {_describe(error)}")
                return EXIT_JOB_FAILED
    except KeyboardInterrupt:
        if bar is not None:
            bar.close()
        return _cancel_and_wait(client, job_id)
    raise AssertionError("events() ended without a terminal event")  # pragma: no cover


def _cancel_and_wait(client: Client, job_id: str) -> int:
    """Ctrl-C: cancel the job on the server (it would otherwise keep the GPU busy) and confirm."""
    _err(f"interrupted: cancelling job {job_id} on the server (Ctrl-C again to stop waiting)")
    try:
        client.cancel(job_id)
        for event in client.events(job_id, timeout=CANCEL_WAIT):
            if event.type == "result":
                _err(f"job {job_id} finished before the cancel took effect; `strata fetch {job_id} --out ...` "
                     f"saves it")
                break
            if event.terminal:
                _err(f"job {job_id} cancelled")
                break
    except (KeyboardInterrupt, TimeoutError):
        _err(f"not waiting any longer; the server has been asked to cancel job {job_id}")
    return EXIT_CANCELLED


# ---------------------------------------------------------------------------------------------
# commands


def cmd_body(args: argparse.Namespace) -> int:
    spec = JOB_SPECS["body"]
    return _run_job(args, "body", params_from_args(args, spec), args.out)


def cmd_generate(args: argparse.Namespace) -> int:
    return _run_job(args, "generate", params_from_args(args, JOB_SPECS["generate"]), args.out)


def cmd_reconstruct(args: argparse.Namespace) -> int:
    spec = JOB_SPECS["reconstruct"]
    params = params_from_args(args, spec)
    if (args.photo is None) == (args.views is None):
        raise UsageError("give a photo or --views DIR (one of them)")
    if args.views is not None:
        out = args.out or Path("out") / f"{args.views.resolve().name}.strata"
        check_output(out)
        return _run_job(args, "reconstruct", params, out, files={"views": _zip_views(args.views)})
    out = args.out or Path("out") / f"{args.photo.stem}.strata"
    check_output(out)
    try:
        image = args.photo.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read the photo {args.photo}: {exc.strerror or exc}") from None
    limit = spec.inputs[0].max_bytes
    if len(image) > limit:
        raise UsageError(f"{args.photo} is {len(image)} bytes; the server accepts photos up to {limit}")
    return _run_job(args, "reconstruct", params, out, image=image)


def _zip_views(folder: Path) -> bytes:
    """The views folder's PNGs (and views.json) in one uncompressed zip: the job's "views" input."""
    import io
    import zipfile

    if not folder.is_dir():
        raise UsageError(f"--views {folder}: not a folder")
    names = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".png" or p.name == "views.json")
    if not any(p.name.startswith("color_") for p in names):
        raise UsageError(f"--views {folder}: no color_<view>.png files in it (see docs/views.md)")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as archive:
        for path in names:
            archive.write(path, path.name)
    return buf.getvalue()


def cmd_echo(args: argparse.Namespace) -> int:
    params = params_from_args(args, JOB_SPECS["echo"])
    frames = None
    if args.input is not None:
        try:
            frames = container.read_frames(args.input)
        except (OSError, AssetError) as exc:
            raise UsageError(f"cannot read the asset {args.input}: {exc}") from None
    return _run_job(args, "echo", params, args.out, asset=frames)


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def _mb(n: Any) -> str:
    return f"{n / 1e6:.0f} MB" if isinstance(n, int | float) else "?"


def _print_capabilities(address: str, welcome: dict[str, Any]) -> None:
    caps = welcome["capabilities"]
    device = caps.get("device", {})
    memory = caps.get("memory", {})
    mem = f"rss {_mb(memory.get('rss_bytes'))}"
    if "gpu_total_bytes" in memory:
        mem += f", gpu {_mb(memory['gpu_free_bytes'])} free of {_mb(memory['gpu_total_bytes'])}"
    queue = caps.get("queue", {})
    print(f"server    {welcome['server']} at {address} (protocol {welcome['version']})")
    print(f"device    {device.get('type', '?')}: {device.get('name', '?')}")
    print(f"memory    {mem}")
    print(f"models    {', '.join(caps.get('models_loaded') or []) or 'none loaded'}")
    print(f"queue     running {queue.get('running') or '-'}, {queue.get('queued', 0)} queued")
    print(f"data dir  {caps.get('data_dir', '?')}")
    for name in caps.get("job_kinds", {}):
        print(f"job       {name}: available")
    for name, reason in (caps.get("unavailable_kinds") or {}).items():
        print(f"job       {name}: unavailable ({reason})")
    if caps.get("probe") != "done":
        print("backends  (still finding the device; ask again in a few seconds)")
    for stage, found in caps.get("backends", {}).items():
        ready = [name for name, v in found.items() if v.get("ok")]
        print(f"backends  {stage}: {', '.join(ready) or 'none can run'}")
        for name, v in found.items():
            if not v.get("ok"):
                print(f"            {name}: {v.get('reason') or 'unavailable'}")


def _print_job(job: dict[str, Any]) -> None:
    print(f"job       {job['job_id']} ({job['kind']})")
    print(f"state     {job['state']}" + (f", position {job['position']}" if "position" in job else ""))
    print(f"stage     {job.get('stage') or '-'} {job.get('fraction', 0) * 100:.0f}% {job.get('text', '')}".rstrip())
    print(f"elapsed   {job.get('elapsed', 0):.1f}s")
    print(f"params    {json.dumps(job.get('params', {}))}")
    if job.get("error"):
        print(f"error     [{job['error']['code']}] {job['error']['message']}")
    if job.get("result"):
        print(f"result    {job['result']['frames']} frames, {_mb(job['result']['bytes'])}")


def cmd_status(args: argparse.Namespace) -> int:
    with _client(args) as client:
        if args.job:
            job = client.status(args.job)
            if args.json:
                _print_json(job)
            else:
                _print_job(job)
        else:
            welcome = client.hello()
            if args.json:
                _print_json(welcome)
            else:
                _print_capabilities(args.server, welcome)
    return EXIT_OK


def cmd_jobs(args: argparse.Namespace) -> int:
    if args.limit < 1:
        raise UsageError("--limit must be at least 1")
    with _client(args) as client:
        jobs = client.jobs(args.limit)
    if args.json:
        _print_json(jobs)
        return EXIT_OK
    if not jobs:
        print("no jobs")
    for job in jobs:
        created = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(job["created"]))
        note = f"[{job['error']['code']}]" if job.get("error") else (job.get("stage") or "")
        print(f"{job['job_id']}  {created}  {job['kind']:<12} {job['state']:<9} {job.get('elapsed', 0):7.1f}s  {note}")
    return EXIT_OK


def cmd_fetch(args: argparse.Namespace) -> int:
    check_output(args.out)
    with _client(args) as client:
        frames = client.fetch_frames(args.job)
    write_output(args.out, frames)
    print(args.out)
    return EXIT_OK


def cmd_cancel(args: argparse.Namespace) -> int:
    with _client(args) as client:
        job = client.cancel(args.job)
    verb = {"running": "cancel requested for", "cancelled": "cancelled"}.get(job["state"], f"{job['state']}:")
    print(f"{verb} job {job['job_id']}")
    return EXIT_OK


def cmd_release(args: argparse.Namespace) -> int:
    with _client(args) as client:
        released = client.release()
    print(f"released {', '.join(released['models']) or 'no models'}; rss {_mb(released['memory'].get('rss_bytes'))}")
    return EXIT_OK


def cmd_ping(args: argparse.Namespace) -> int:
    with _client(args) as client:
        for _ in range(max(1, args.count)):
            print(f"pong from {args.server} in {client.ping() * 1000:.2f} ms")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Ctrl-C must reach us as KeyboardInterrupt (to cancel the job on the server) even when a parent
    # shell started us with SIGINT ignored, as non-interactive shells do for background commands.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return args.func(args)
    except ServerUnavailable as exc:
        _err(str(exc))
        return EXIT_NO_SERVER
    except RemoteError as exc:
        _err(_describe(exc))
        return exit_code_for(exc.code)
    except ProtocolError as exc:  # raised locally: bad parameters, or a reply we cannot read
        _err(_describe(exc))
        return EXIT_USAGE if exc.code == ErrorCode.INVALID_PARAMS else EXIT_PROTOCOL
    except (UsageError, OutputError) as exc:
        _err(str(exc))
        return EXIT_USAGE
    except OSError as exc:  # e.g. missing CURVE key files, unwritable --out
        _err(str(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        _err("interrupted")
        return EXIT_CANCELLED


if __name__ == "__main__":
    sys.exit(main())
