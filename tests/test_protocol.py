"""Protocol v1 as data: pack/unpack, every validation error code, input frames, negotiation, job
parameters, and the asset frames a message carries (round trip and rejection of corrupt data)."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import msgpack
import numpy as np
import pytest

from strata.exchange.asset import AssetError, codec, container
from strata.exchange.asset.synthetic import make_asset
from strata.exchange.wire import protocol
from strata.exchange.wire.jobs import JOB_SPECS, job_spec, spec_from_dict, spec_to_dict
from strata.exchange.wire.protocol import ErrorCode, ProtocolError


def header(**fields) -> bytes:
    return msgpack.packb({"v": 1, **fields})


def unpack_error(frames, from_client=True) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        protocol.unpack(frames, from_client=from_client)
    return info.value


# ---------------------------------------------------------------------------------------------
# pack / unpack


CLIENT_EXAMPLES = {
    "hello": {"versions": [1], "client": "test"},
    "submit": {"kind": "echo", "params": {"hold": 1.0}, "inputs": {}},
    "cancel": {"job_id": "0123456789abcdef"},
    "status": {"job_id": "0123456789abcdef"},
    "watch": {"job_id": "0123456789abcdef"},
    "jobs": {"limit": 5},
    "fetch": {"job_id": "0123456789abcdef"},
    "release": {},
    "ping": {},
}
SERVER_EXAMPLES = {
    "welcome": {"version": 1, "server": "strata-server/0", "capabilities": {}},
    "accepted": {"job_id": "j", "position": 0},
    "progress": {"job_id": "j", "stage": "hold", "fraction": 0.5, "text": "", "elapsed": 1},
    "heartbeat": {"job_id": "j", "state": "running", "stage": "hold", "elapsed": 1.5},
    "result": {"job_id": "j", "frames": 2},
    "error": {"code": "internal", "message": "boom", "detail": {}, "job_id": "j"},
    "job": {"job": {}},
    "job_list": {"jobs": []},
    "released": {"models": [], "memory": {}},
    "pong": {"time": 1.0},
}


def test_every_message_type_has_an_example():
    assert set(CLIENT_EXAMPLES) == set(protocol.CLIENT_MESSAGES)
    assert set(SERVER_EXAMPLES) == set(protocol.SERVER_MESSAGES)


@pytest.mark.parametrize("type_", list(CLIENT_EXAMPLES))
def test_client_messages_round_trip(type_):
    frames = protocol.pack(type_, {**CLIENT_EXAMPLES[type_], "rid": 42}, [b"payload"])
    msg = protocol.unpack(frames, from_client=True)
    assert msg.type == type_ and msg.rid == 42 and msg.frames == [b"payload"]
    assert {k: v for k, v in msg.fields.items() if k != "rid"} == CLIENT_EXAMPLES[type_]


@pytest.mark.parametrize("type_", list(SERVER_EXAMPLES))
def test_server_messages_round_trip(type_):
    msg = protocol.unpack(protocol.pack(type_, SERVER_EXAMPLES[type_]), from_client=False)
    assert msg.type == type_ and msg.rid is None and msg.fields == SERVER_EXAMPLES[type_]


def test_pack_leaves_out_none_fields_and_keeps_frames_uncopied():
    payload = memoryview(bytearray(b"x" * 100))
    frames = protocol.pack("status", {"job_id": "j", "rid": None}, [payload])
    assert frames[1] is payload
    assert msgpack.unpackb(frames[0]) == {"v": 1, "type": "status", "job_id": "j"}


def test_error_frames():
    msg = protocol.unpack(protocol.error_frames("no_person", "nobody there", {"hint": "h"}, "j", rid="r1"),
                          from_client=False)
    assert msg.type == "error" and msg.rid == "r1"
    assert msg.fields == {"code": "no_person", "message": "nobody there", "detail": {"hint": "h"}, "job_id": "j",
                          "rid": "r1"}


def test_directions_are_separate():
    assert unpack_error([header(type="welcome", version=1, server="s", capabilities={})]).code == \
        ErrorCode.UNKNOWN_TYPE
    assert unpack_error([header(type="ping")], from_client=False).code == ErrorCode.UNKNOWN_TYPE


BAD = {
    "no frames": ([], ErrorCode.BAD_MESSAGE),
    "empty header": ([b""], ErrorCode.BAD_MESSAGE),
    "not msgpack": ([b"\xc1"], ErrorCode.BAD_MESSAGE),
    "truncated msgpack": ([header(type="ping")[:-2]], ErrorCode.BAD_MESSAGE),
    "not a map": ([msgpack.packb(["ping"])], ErrorCode.BAD_MESSAGE),
    "integer keys": ([msgpack.packb({1: 2})], ErrorCode.BAD_MESSAGE),
    "huge header": ([msgpack.packb({"v": 1, "type": "ping", "pad": "x" * (protocol.MAX_HEADER_BYTES + 1)})],
                    ErrorCode.TOO_LARGE),
    "bad rid": ([header(type="ping", rid=1.5)], ErrorCode.BAD_REQUEST),
    "bool rid": ([header(type="ping", rid=True)], ErrorCode.BAD_REQUEST),
    "no version": ([msgpack.packb({"type": "ping"})], ErrorCode.UNSUPPORTED_VERSION),
    "future version": ([msgpack.packb({"v": 2, "type": "ping"})], ErrorCode.UNSUPPORTED_VERSION),
    "no type": ([header()], ErrorCode.UNKNOWN_TYPE),
    "unknown type": ([header(type="teleport")], ErrorCode.UNKNOWN_TYPE),
    "unknown field": ([header(type="ping", extra=1)], ErrorCode.BAD_REQUEST),
    "missing field": ([header(type="status")], ErrorCode.BAD_REQUEST),
    "wrong type": ([header(type="status", job_id=7)], ErrorCode.BAD_REQUEST),
    "bool for int": ([header(type="jobs", limit=False)], ErrorCode.BAD_REQUEST),
    "list for map": ([header(type="submit", kind="echo", params=[])], ErrorCode.BAD_REQUEST),
}


@pytest.mark.parametrize("case", list(BAD))
def test_unpack_rejects(case):
    frames, code = BAD[case]
    error = unpack_error(frames)
    assert error.code == code and error.message


def test_errors_carry_the_rid_when_it_could_be_read():
    assert unpack_error([msgpack.packb({"v": 9, "type": "ping", "rid": "abc"})]).detail == {"rid": "abc"}
    assert unpack_error([header(type="nope", rid=3)]).detail == {"rid": 3}
    assert unpack_error([b"\xc1"]).detail == {}


def test_unpack_accepts_memoryviews_and_zmq_like_buffers():
    frames = [memoryview(bytearray(header(type="ping", rid=1))), memoryview(b"abc")]
    assert protocol.unpack(frames, from_client=True).frames[0] == b"abc"


# ---------------------------------------------------------------------------------------------
# negotiation


@pytest.mark.parametrize("versions, chosen", [([1], 1), ([1, 2], 1), ([3, 2, 1], 1), ([1, "1"], 1)])
def test_negotiate(versions, chosen):
    assert protocol.negotiate(versions) == chosen


@pytest.mark.parametrize("versions", [[], [2], ["1"], [None], [0]])
def test_negotiate_fails_without_a_common_version(versions):
    with pytest.raises(ProtocolError) as info:
        protocol.negotiate(versions)
    assert info.value.code == ErrorCode.UNSUPPORTED_VERSION


# ---------------------------------------------------------------------------------------------
# input frames


def test_input_frames_resolves_ranges():
    frames = [b"img", b"h", b"a1", b"a2"]
    out = protocol.input_frames({"image": {"kind": "bytes", "frames": [1, 1], "filename": "me.png"},
                                 "asset": {"kind": "asset", "frames": [2, 3]}}, frames)
    assert out == {"image": ("bytes", [b"img"]), "asset": ("asset", [b"h", b"a1", b"a2"])}
    assert protocol.input_frames({}, []) == {}


@pytest.mark.parametrize("inputs, n_frames", [
    ({"a": "bytes"}, 1),                                                    # spec not a map
    ({"a": {"kind": "bytes", "frames": [1, 1], "size": 3}}, 1),             # unknown key
    ({"a": {"kind": "file", "frames": [1, 1]}}, 1),                         # unknown kind
    ({"a": {"kind": "bytes", "frames": [1]}}, 1),                           # not [start, count]
    ({"a": {"kind": "bytes", "frames": [True, 1]}}, 1),                     # bools are not ints
    ({"a": {"kind": "bytes", "frames": [0, 1]}}, 1),                        # frame 0 is the header
    ({"a": {"kind": "asset", "frames": [1, 3]}}, 2),                        # past the end
    ({"a": {"kind": "bytes", "frames": [1, 2]}}, 2),                        # bytes is one frame
    ({"a": {"kind": "bytes", "frames": [1, 1]}, "b": {"kind": "asset", "frames": [1, 2]}}, 2),  # overlap
    ({"a": {"kind": "bytes", "frames": [1, 1]}}, 2),                        # stray frame
    ({}, 1),                                                                # stray frame, no inputs
])
def test_input_frames_rejects(inputs, n_frames):
    with pytest.raises(ProtocolError) as info:
        protocol.input_frames(inputs, [b"x"] * n_frames)
    assert info.value.code == ErrorCode.BAD_REQUEST


# ---------------------------------------------------------------------------------------------
# job parameters


def test_job_params_are_filled_with_defaults():
    spec = job_spec("body")
    params = spec.validate({"height": 2})
    assert params["height"] == 2.0 and isinstance(params["height"], float)
    assert params == {**spec.defaults(), "height": 2.0}


@pytest.mark.parametrize("kind, params", [
    ("body", {"height": 3.0}),
    ("body", {"height": 0.1}),
    ("body", {"height": math.nan}),
    ("body", {"height": "tall"}),
    ("body", {"gender": True}),
    ("body", {"rig": "unreal"}),
    ("body", {"texture_size": 2048.0}),
    ("body", {"wings": 2}),
    ("reconstruct", {"strict": 1}),
    ("echo", {"hold": -1}),
])
def test_job_params_are_validated(kind, params):
    with pytest.raises(ProtocolError) as info:
        job_spec(kind).validate(params)
    assert info.value.code == ErrorCode.INVALID_PARAMS
    assert info.value.detail["param"] in params


def test_unknown_job_kind():
    with pytest.raises(ProtocolError) as info:
        job_spec("teleport")
    assert info.value.code == ErrorCode.UNKNOWN_JOB_KIND


@pytest.mark.parametrize("kind", list(JOB_SPECS))
def test_job_specs_serialise_for_clients(kind):
    data = spec_to_dict(JOB_SPECS[kind])
    assert msgpack.unpackb(msgpack.packb(data)) == data  # plain data: survives the wire
    assert spec_from_dict(data) == JOB_SPECS[kind]


# ---------------------------------------------------------------------------------------------
# asset frames


@pytest.fixture(scope="module")
def asset():
    return make_asset(2, 200, 8, n_joints=4, k=3)


def test_asset_round_trip_is_zero_copy(asset):
    frames = codec.encode(asset)
    wire = [bytes(f) for f in frames]  # what arrives from a socket
    back = codec.decode(wire)
    np.testing.assert_array_equal(back.layers[1].mesh.faces, asset.layers[1].mesh.faces)
    assert back.layers[0].mesh.vertices.base is not None and not back.layers[0].mesh.vertices.flags.writeable
    again = np.frombuffer(codec.encode(back)[1], dtype=np.float32)  # re-encoding reuses the arrays' memory
    assert np.shares_memory(again, back.layers[0].mesh.vertices)


def _with_header(frames, change):
    head = msgpack.unpackb(frames[0])
    change(head)
    return [msgpack.packb(head), *frames[1:]]


def _frame_of(frames, pick):
    return msgpack.unpackb(frames[0]) and pick(msgpack.unpackb(frames[0]))["$frame"]


def _replace_frame(frames, pick, data):
    index = _frame_of(frames, pick)
    return [*frames[:index], data, *frames[index + 1:]]


def _vertices(h):
    return h["layers"][0]["mesh"]["vertices"]


def _array(dtype, values):
    return memoryview(np.asarray(values, dtype=dtype)).cast("B")


CORRUPT = {
    "truncated frame": (lambda f: _replace_frame(f, _vertices, bytes(f[_frame_of(f, _vertices)])[:-4]),
                        "layers[0].mesh.vertices"),
    "wrong dtype": (lambda f: _with_header(f, lambda h: h["layers"][0]["mesh"]["faces"].update(dtype="int64")),
                    "layers[0].mesh.faces"),
    "face index out of range": (lambda f: _replace_frame(
        f, lambda h: h["layers"][1]["mesh"]["faces"],
        bytes(_array("<u4", np.full_like(codec.decode(f).layers[1].mesh.faces, 10**6)))), "layers[1].mesh.faces"),
    "NaN vertex": (lambda f: _replace_frame(
        f, lambda h: h["layers"][0]["mesh"]["vertices"],
        bytes(_array("<f4", np.where(np.arange(codec.decode(f).layers[0].mesh.vertices.size).reshape(-1, 3) == 5,
                                     np.nan, codec.decode(f).layers[0].mesh.vertices)))),
                   "layers[0].mesh.vertices"),
    "bad PNG": (lambda f: _replace_frame(f, lambda h: h["layers"][0]["texture"]["data"], b"GIF89a" + bytes(100)),
                "layers[0].texture.data"),
    "weights not summing to 1": (lambda f: _replace_frame(
        f, lambda h: h["layers"][0]["skin"]["weights"],
        bytes(_array("<f4", np.asarray(codec.decode(f).layers[0].skin.weights) * 0.5))), "layers[0].skin.weights"),
    "cyclic parents": (lambda f: _replace_frame(f, lambda h: h["rig"]["parents"], bytes(_array("<i4", [1, 2, 3, 1]))),
                       "rig.parents"),
    "frame reference out of range": (lambda f: _with_header(
        f, lambda h: h["layers"][0]["mesh"]["vertices"].update({"$frame": 999})), "layers[0].mesh.vertices"),
    "not an asset": (lambda f: [msgpack.packb({"format": "other"})], "format"),
    "unreferenced frame": (lambda f: [*f, b"extra"], "frames"),
}


@pytest.mark.parametrize("case", list(CORRUPT))
def test_corrupt_asset_frames_are_rejected_with_the_field(asset, case):
    make, path = CORRUPT[case]
    frames = make(codec.encode(asset))
    with pytest.raises(AssetError) as info:
        codec.decode(frames)
    assert info.value.path == path


def test_strata_file_round_trip_and_corruption(asset, tmp_path):
    path = tmp_path / "a.strata"
    container.write_frames(path, codec.encode(asset))
    assert not (tmp_path / "a.strata.part").exists()
    back = container.load(path)
    np.testing.assert_array_equal(back.layers[0].skin.joints, asset.layers[0].skin.joints)
    data = path.read_bytes()
    with pytest.raises(AssetError, match="magic"):
        container.unpack_frames(b"NOTSTRATA" + data[9:])
    with pytest.raises(AssetError, match="truncated"):
        container.unpack_frames(data[: len(data) // 2])
    with pytest.raises(AssetError, match="truncated"):
        container.unpack_frames(data[:20])
    with pytest.raises(AssetError, match="version"):
        container.unpack_frames(data[:8] + struct.pack("<I", 7) + data[12:])


def _doc_row(p) -> str:
    if p.min is not None:
        limits = f"{p.min:g} .. {p.max:g}{p.unit}"
    else:
        limits = ", ".join(map(str, p.choices)) if p.choices else ""
    return f"| `{p.name}` | {p.type.__name__} | `{json.dumps(p.default)}` | {limits} | {p.help} |"


@pytest.mark.parametrize("kind", list(JOB_SPECS))
def test_protocol_doc_lists_the_job_parameters(kind):
    """docs/protocol.md section 9 must say what exchange/wire/jobs.py says (regenerate its tables with _doc_row)."""
    doc = (Path(__file__).resolve().parents[1] / "docs" / "protocol.md").read_text()
    section = doc.split(f"**`{kind}`**")[1].split("**`")[0]
    for p in JOB_SPECS[kind].params:
        assert _doc_row(p) in section, f"docs/protocol.md: {kind}.{p.name} row is out of date"


def test_protocol_doc_lists_every_error_code():
    doc = (Path(__file__).resolve().parents[1] / "docs" / "protocol.md").read_text()
    for code in ErrorCode:
        assert f"| `{code}` |" in doc, code


def test_list_parameters_validate_each_value_and_round_trip_through_welcome():
    """Protocol 1.1: list-valued parameters (layer choices for `generate`), each value checked."""
    from strata.exchange.wire.jobs import JobSpec, ParamSpec, spec_from_dict, spec_to_dict

    spec = JobSpec("generate", "test", (ParamSpec("layers", list, ["body"], "layer choices", max=5,
                                                  choices=("body", "bottom:skirt", "top:tshirt"), item=str),))
    assert spec.validate({"layers": ["body", "top:tshirt"]}) == {"layers": ["body", "top:tshirt"]}
    for bad, words in ((["body", "hat"], "not one of"), ("body", "expected a list"), ([1], "expected str"),
                       (["body"] * 6, "at most 5")):
        with pytest.raises(ProtocolError, match=words):
            spec.validate({"layers": bad})
    back = spec_from_dict(spec_to_dict(spec))
    layers = back.params[0]
    assert layers.type is list and layers.item is str and layers.choices == spec.params[0].choices
    assert back.validate({}) == {"layers": ["body"]}


def test_wire_tables_match_the_servers_real_tables():
    """The add-on builds its menus from exchange/wire/jobs.py without the core; these are core's tables."""
    from strata.core.backends import REGISTRY
    from strata.core.body import POSE_PRESETS
    from strata.core.body.registry import BODY_MODELS
    from strata.core.body.rigs import ANNY_RIGS
    from strata.core.reconstruct.stages import QUALITY_PRESETS
    from strata.exchange.wire import jobs

    assert tuple(ANNY_RIGS) == jobs.RIGS
    assert tuple(BODY_MODELS) == jobs.BODY_MODELS == tuple(REGISTRY.names("body_model"))
    assert tuple(POSE_PRESETS) == jobs.POSE_PRESETS
    assert tuple(QUALITY_PRESETS) == jobs.QUALITY_PRESETS
    assert ("auto", *REGISTRY.names("segmentation")) == jobs.SEGMENTERS
    assert set(jobs.REST_POSES) <= set(POSE_PRESETS)
    assert ("auto", "off", *REGISTRY.names("multiview")) == jobs.MULTIVIEW
    assert JOB_SPECS["reconstruct"].param("segmentation").choices == jobs.SEGMENTERS


def test_one_of_inputs_is_checked_and_published():
    """reconstruct takes a photo or six views, exactly one (protocol 1.1 `one_of`)."""
    from strata.exchange.wire.jobs import spec_from_dict, spec_to_dict

    spec = JOB_SPECS["reconstruct"]
    assert spec.one_of == ("image", "views")
    spec.check_inputs({"image"})
    spec.check_inputs({"views"})
    for given in (set(), {"image", "views"}):
        with pytest.raises(ProtocolError, match="exactly one of the inputs") as info:
            spec.check_inputs(given)
        assert info.value.code == "invalid_input"
    assert spec_from_dict(spec_to_dict(spec)).one_of == ("image", "views")
