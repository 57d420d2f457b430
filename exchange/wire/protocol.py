"""Strata wire protocol v1: message types, their fields, error codes, and frame (de)coding.

Transport: ZeroMQ, client DEALER <-> server ROUTER. A message is a multipart ZeroMQ message:

    frame 0      msgpack map, the header: {"v": 1, "type": "...", "rid": ..., <fields>}
    frames 1..n  raw payload bytes (job inputs, asset arrays), described by the header

Large data never goes inside msgpack: raw frames move zero-copy and are several times faster.
The full specification, written for third-party client authors, is docs/protocol.md; this module
is its executable form and the one definition the server, the CLI and the Blender add-on share
(it depends on msgpack alone and imports nothing of ours outside this package).

Validation is strict: an unknown message type, a missing or unknown field, or a field of the wrong
type is a `ProtocolError` with a stable `code`, which the server sends back as an `error` message.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import msgpack

PROTOCOL_VERSION = 1
SUPPORTED_VERSIONS = (1,)
PROTOCOL_MINOR = 1
"""Additions that old clients may ignore (sent in `welcome`'s capabilities as `protocol_minor`):
1.1 adds list-valued job parameters (`"type": "list"` with an `item` type), `unavailable_kinds`, and
backends reported per stage from the server's backend registry."""
MAX_HEADER_BYTES = 1 << 20
"""Headers are small maps; anything bigger is a malformed or hostile message."""


class ErrorCode(StrEnum):
    """Stable error codes. Clients switch on these; the message text may change between releases.

    Job failures carry the pipeline's own codes (for example "no_person" or "image_too_large", see
    docs/protocol.md); a client that does not know a code treats it as `job_failed`.
    """

    BAD_MESSAGE = "bad_message"  # header frame missing or not a msgpack map
    BAD_REQUEST = "bad_request"  # a field is missing, unknown or of the wrong type
    UNSUPPORTED_VERSION = "unsupported_version"
    UNKNOWN_TYPE = "unknown_type"
    UNKNOWN_JOB_KIND = "unknown_job_kind"
    INVALID_PARAMS = "invalid_params"
    INVALID_INPUT = "invalid_input"
    TOO_LARGE = "too_large"
    NOT_FOUND = "not_found"
    NOT_FINISHED = "not_finished"
    CANCELLED = "cancelled"
    JOB_FAILED = "job_failed"
    BUSY = "busy"
    UNAVAILABLE = "unavailable"  # the job kind's pipeline or model is not installed on this server
    SHUTTING_DOWN = "shutting_down"
    INTERNAL = "internal"


class ProtocolError(Exception):
    """A request the server refuses, or a reply the client cannot use; carries a stable code."""

    def __init__(self, code: str, message: str, detail: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = str(code)
        self.message = message
        self.detail = detail or {}


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


# Field specs: name -> (accepted python types, required). "rid" (request id, any str/int chosen by
# the client and echoed back) and "v" are allowed on every message and are not listed.
_STR = (str,)
_NUM = (int, float)
_MAP = (dict,)
_LIST = (list,)
_INT = (int,)

CLIENT_MESSAGES: dict[str, dict[str, tuple[tuple[type, ...], bool]]] = {
    "hello": {"versions": (_LIST, True), "client": (_STR, False)},
    "submit": {"kind": (_STR, True), "params": (_MAP, False), "inputs": (_MAP, False)},
    "cancel": {"job_id": (_STR, True)},
    "status": {"job_id": (_STR, True)},
    "watch": {"job_id": (_STR, True)},
    "jobs": {"limit": (_INT, False)},
    "fetch": {"job_id": (_STR, True)},
    "release": {},
    "ping": {},
}

SERVER_MESSAGES: dict[str, dict[str, tuple[tuple[type, ...], bool]]] = {
    "welcome": {"version": (_INT, True), "server": (_STR, True), "capabilities": (_MAP, True)},
    "accepted": {"job_id": (_STR, True), "position": (_INT, True)},
    "progress": {"job_id": (_STR, True), "stage": (_STR, True), "fraction": (_NUM, True),
                 "text": (_STR, True), "elapsed": (_NUM, True)},
    "heartbeat": {"job_id": (_STR, True), "state": (_STR, True), "stage": (_STR, True),
                  "elapsed": (_NUM, True)},
    "result": {"job_id": (_STR, True), "frames": (_INT, True)},
    "error": {"code": (_STR, True), "message": (_STR, True), "detail": (_MAP, False),
              "job_id": (_STR, False)},
    "job": {"job": (_MAP, True)},
    "job_list": {"jobs": (_LIST, True)},
    "released": {"models": (_LIST, True), "memory": (_MAP, True)},
    "pong": {"time": (_NUM, True)},
}


@dataclass
class Message:
    """A decoded message: its type, header fields (without "v"/"type") and payload frames."""

    type: str
    fields: dict[str, Any]
    frames: list[Any] = field(default_factory=list)

    @property
    def rid(self) -> Any:
        return self.fields.get("rid")


def pack(type_: str, fields: dict[str, Any] | None = None, frames: Sequence[Any] = ()) -> list[Any]:
    """Frames of one message: the msgpack header followed by the payload frames, uncopied."""
    header = {"v": PROTOCOL_VERSION, "type": type_}
    if fields:
        header.update({k: v for k, v in fields.items() if v is not None})
    return [msgpack.packb(header, use_bin_type=True), *frames]


def error_frames(code: str, message: str, detail: dict | None = None, job_id: str | None = None,
                 rid: Any = None) -> list[Any]:
    return pack("error", {"code": str(code), "message": message, "detail": detail or {},
                          "job_id": job_id, "rid": rid})


def unpack(frames: Sequence[Any], *, from_client: bool) -> Message:
    """Decode and validate one message. Raises ProtocolError (with a stable code) on any defect,
    carrying the request id in `detail["rid"]` when it could be read, so errors can be matched."""
    if not frames:
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "empty message: expected a msgpack header frame")
    head = memoryview(frames[0]).cast("B")
    if head.nbytes > MAX_HEADER_BYTES:
        raise ProtocolError(ErrorCode.TOO_LARGE, f"header frame is {head.nbytes} bytes; the limit is "
                            f"{MAX_HEADER_BYTES}")
    try:
        header = msgpack.unpackb(head, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises many unrelated exception types
        raise ProtocolError(ErrorCode.BAD_MESSAGE,
                            f"header frame is not valid msgpack ({exc.__class__.__name__})") from None
    if not isinstance(header, dict):
        raise ProtocolError(ErrorCode.BAD_MESSAGE, "header frame must be a msgpack map")
    rid = header.get("rid")
    detail = {"rid": rid} if isinstance(rid, str | int) and not isinstance(rid, bool) else {}
    if rid is not None and not detail:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "rid must be a string or an integer")
    version = header.get("v")
    if version not in SUPPORTED_VERSIONS:
        raise ProtocolError(ErrorCode.UNSUPPORTED_VERSION,
                            f"protocol version {version!r} not supported; supported: "
                            f"{list(SUPPORTED_VERSIONS)}", detail)
    type_ = header.get("type")
    table = CLIENT_MESSAGES if from_client else SERVER_MESSAGES
    if type_ not in table:
        raise ProtocolError(ErrorCode.UNKNOWN_TYPE,
                            f"unknown message type {type_!r}; expected one of {', '.join(table)}", detail)
    spec = table[type_]
    fields = {k: v for k, v in header.items() if k not in ("v", "type")}
    for name, value in fields.items():
        if name == "rid":
            continue
        if name not in spec:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"{type_}: unknown field {name!r}", detail)
        types, _ = spec[name]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise ProtocolError(ErrorCode.BAD_REQUEST,
                                f"{type_}.{name}: expected {'/'.join(t.__name__ for t in types)}, "
                                f"got {type(value).__name__}", detail)
    for name, (_, required) in spec.items():
        if required and name not in fields:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"{type_}: missing field {name!r}", detail)
    return Message(type_, fields, list(frames[1:]))


def negotiate(client_versions: list[Any]) -> int:
    """The highest protocol version both sides speak, or ProtocolError."""
    common = [v for v in client_versions if isinstance(v, int) and v in SUPPORTED_VERSIONS]
    if not common:
        raise ProtocolError(ErrorCode.UNSUPPORTED_VERSION,
                            f"no common protocol version: client speaks {client_versions}, server "
                            f"speaks {list(SUPPORTED_VERSIONS)}")
    return max(common)


def input_frames(inputs: dict[str, Any], frames: Sequence[Any]) -> dict[str, tuple[str, list[Any]]]:
    """Resolve a submit's `inputs` map, {name: {"kind": "bytes"|"asset", "frames": [start, count],
    "filename"?: str}}, to {name: (kind, frames)}; frame 1 is the first payload frame. Every
    payload frame must belong to exactly one input."""
    out: dict[str, tuple[str, list[Any]]] = {}
    owner: dict[int, str] = {}
    for name, spec in inputs.items():
        where = f"submit.inputs[{name!r}]"
        if not isinstance(spec, dict):
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"{where}: expected a map")
        unknown = set(spec) - {"kind", "frames", "filename"}
        if unknown:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"{where}: unknown field {sorted(unknown)[0]!r}")
        kind = spec.get("kind")
        if kind not in ("bytes", "asset"):
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"{where}.kind: expected 'bytes' or 'asset'")
        rng = spec.get("frames")
        if (not isinstance(rng, list) or len(rng) != 2
                or not all(isinstance(x, int) and not isinstance(x, bool) for x in rng)):
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"{where}.frames: expected [start, count]")
        start, count = rng
        if start < 1 or count < 1 or start + count - 1 > len(frames):
            raise ProtocolError(ErrorCode.BAD_REQUEST,
                                f"{where}.frames: [{start}, {count}] outside the {len(frames)} payload frames")
        if kind == "bytes" and count != 1:
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"{where}: a bytes input is exactly one frame")
        for i in range(start, start + count):
            if i in owner:
                raise ProtocolError(ErrorCode.BAD_REQUEST, f"{where}: frame {i} already belongs to "
                                    f"input {owner[i]!r}")
            owner[i] = name
        out[name] = (kind, list(frames[start - 1: start - 1 + count]))
    if len(owner) != len(frames):
        stray = sorted(set(range(1, len(frames) + 1)) - set(owner))
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"submit: payload frames {stray} belong to no input")
    return out
