"""The asset codec and the `.strata` container: exact round trips (frames, bytes, memory-mapped
files), a reader written from docs/asset-format.md alone, and rejection of corrupt input with the
precise `AssetError.path` of the offending field."""

from __future__ import annotations

import mmap
import re
import struct
from collections.abc import Callable
from dataclasses import fields, is_dataclass, replace
from pathlib import Path
from typing import Any

import msgpack
import numpy as np
import pytest

from strata.exchange.asset import (
    SCHEMA_VERSION,
    AssetError,
    BodyParams,
    HumanAsset,
    Layer,
    Mesh,
    Provenance,
    Texture,
    decode,
    encode,
    from_bytes,
    load,
    save,
    to_bytes,
)
from strata.exchange.asset.container import read_frames
from strata.exchange.asset.synthetic import make_asset


def random_pose(n_joints: int, seed: int = 2) -> np.ndarray:
    """(J, 4, 4) float32 pose: a random rotation per joint, and a translation on the root (joint 0)."""
    rng = np.random.default_rng(seed)
    q, r = np.linalg.qr(rng.normal(size=(n_joints, 3, 3)))
    q *= np.sign(np.diagonal(r, axis1=1, axis2=2))[:, None, :]
    q[np.linalg.det(q) < 0, :, 0] *= -1  # proper rotations
    pose = np.tile(np.eye(4), (n_joints, 1, 1))
    pose[:, :3, :3] = q
    pose[0, :3, 3] = (0.05, -0.1, 0.2)
    return pose.astype(np.float32)


def full_asset() -> HumanAsset:
    """Every field of the schema set, plus one layer with every optional field left out."""
    base = make_asset(2, 300, 16, n_joints=5, k=3)
    base = replace(base, rig=replace(base.rig, pose=random_pose(5), rest_pose="A"))
    rng = np.random.default_rng(1)
    bare = Layer("Scarf", "other", Mesh(np.asarray(rng.normal(size=(4, 3)), np.float32),
                                        np.array([[0, 1, 2], [0, 2, 3]], np.uint32)))
    body = BodyParams(
        model="anny",
        shape_names=["gender", "age", "height"],
        shape=np.array([0.5, 0.25, 0.75], np.float32),
        pose=np.tile(np.eye(3, dtype=np.float32), (5, 1, 1)),
        translation=np.array([0.0, 0.1, 0.0], np.float32),
        extra={"rig": "default", "height_m": 1.72, "camera": {"fov": 40.0, "tags": ["a", "b"]}},
    )
    prov = Provenance(
        job_kind="photo_to_human",
        backends={"segmentation": "mediapipe", "fit": "anny"},
        timings={"segmentation": 0.25, "fit": 3},
        versions={"strata": "0.1.0"},
        params={"layers": True, "resolution": 1024, "nested": {"x": [1, 2.5, None]}},
        input_hash="ab" * 32,
        created="2026-01-01T00:00:00Z",
        notes=["3 people found; used the largest"],
    )
    return replace(base, layers=[*base.layers, bare], body=body, provenance=prov)


def assert_same(a: Any, b: Any, path: str = "asset") -> None:
    """Field-by-field equality, arrays compared by dtype, shape and value."""
    if is_dataclass(a):
        assert type(a) is type(b), path
        for f in fields(a):
            assert_same(getattr(a, f.name), getattr(b, f.name), f"{path}.{f.name}")
    elif isinstance(a, np.ndarray):
        assert isinstance(b, np.ndarray), path
        assert b.dtype == a.dtype and b.shape == a.shape, path
        np.testing.assert_array_equal(b, a, err_msg=path)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), path
        for k in a:
            assert_same(a[k], b[k], f"{path}[{k!r}]")
    elif isinstance(a, list | tuple):
        assert isinstance(b, list | tuple) and len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{path}[{i}]")
    else:
        assert type(a) is type(b) and a == b, f"{path}: {a!r} != {b!r}"


def arrays_of(obj: Any) -> list[np.ndarray]:
    if is_dataclass(obj):
        return [a for f in fields(obj) for a in arrays_of(getattr(obj, f.name))]
    if isinstance(obj, list):
        return [a for x in obj for a in arrays_of(x)]
    return [obj] if isinstance(obj, np.ndarray) else []


@pytest.fixture(scope="module")
def asset() -> HumanAsset:
    return full_asset()


# ---------------------------------------------------------------------------------------------
# round trips


def test_encode_decode_round_trip(asset):
    frames = encode(asset)
    out = decode(frames)
    assert_same(asset, out)
    assert all(not a.flags.writeable for a in arrays_of(out))
    # Zero copy both ways: the decoded vertices are the very memory of the original arrays.
    assert np.shares_memory(out.layers[0].mesh.vertices, asset.layers[0].mesh.vertices)


def test_bytes_round_trip(asset):
    assert_same(asset, from_bytes(to_bytes(asset)))


def _mmap_of(arr: np.ndarray) -> mmap.mmap | None:
    base: Any = arr
    while isinstance(base, np.ndarray):
        base = base.base
    return base.obj if isinstance(base, memoryview) and isinstance(base.obj, mmap.mmap) else None


def test_strata_file_round_trip_is_memory_mapped(asset, tmp_path):
    path = tmp_path / "person.strata"
    save(asset, path)
    assert [p.name for p in tmp_path.iterdir()] == ["person.strata"]  # no leftover .part
    out = load(path)
    assert_same(asset, out)
    assert _mmap_of(out.layers[0].mesh.vertices) is not None
    assert all(not a.flags.writeable for a in arrays_of(out))
    assert path.read_bytes() == to_bytes(asset)


def test_file_layout_and_a_reader_written_from_the_docs(asset, tmp_path):
    """The worked example of docs/asset-format.md, kept in step with it: numpy + msgpack only."""
    path = tmp_path / "person.strata"
    save(asset, path)
    data = path.read_bytes()
    assert data[:8] == b"\x89STRATA\n"
    version, count = struct.unpack_from("<II", data, 8)
    assert version == 1
    lengths = struct.unpack_from(f"<{count}Q", data, 16)
    offset = -(-(16 + 8 * count) // 64) * 64
    frames = []
    for n in lengths:
        assert offset % 64 == 0
        frames.append(memoryview(data)[offset : offset + n])
        offset += -(-n // 64) * 64
    assert offset == len(data)
    header = msgpack.unpackb(frames[0], raw=False)
    assert header["format"] == "strata.asset" and header["version"] in (1, 2)

    def array(ref: dict | None) -> np.ndarray | None:
        if ref is None:
            return None
        return np.frombuffer(frames[ref["$frame"]], np.dtype(ref["dtype"]).newbyteorder("<")).reshape(ref["shape"])

    body = header["layers"][0]
    np.testing.assert_array_equal(array(body["mesh"]["vertices"]), asset.layers[0].mesh.vertices)
    np.testing.assert_array_equal(array(body["skin"]["weights"]), asset.layers[0].skin.weights)
    assert array(body["texture"]["data"]).tobytes() == asset.layers[0].texture.data
    np.testing.assert_array_equal(array(header["rig"]["rest"]), asset.rig.rest)
    assert header["rig"]["joint_names"] == asset.rig.joint_names
    np.testing.assert_array_equal(array(header["rig"].get("pose")), asset.rig.pose)  # v2 only
    assert header["rig"].get("rest_pose", "") == "A"
    assert header["layers"][2]["mesh"]["uvs"] is None and header["layers"][2]["texture"] is None


def test_version_is_the_lowest_that_holds_the_asset(asset):
    """A rig pose needs schema v2 (its frame would be unknown to a v1 reader); everything else is
    still written as v1, which v1 readers (add-ons released before v2) read."""
    assert msgpack.unpackb(encode(asset)[0])["version"] == 2 and SCHEMA_VERSION == 3
    unposed = replace(asset, rig=replace(asset.rig, pose=None))
    header = msgpack.unpackb(encode(unposed)[0])
    assert header["version"] == 1 and header["rig"]["pose"] is None and header["rig"]["rest_pose"] == "A"
    assert_same(unposed, decode(encode(unposed)))


def test_old_asset_without_the_new_fields_decodes_with_no_pose(asset):
    """A v1 header as v1 writers made it: no rig.pose, no rig.rest_pose keys at all."""
    frames = _frames(replace(asset, rig=replace(asset.rig, pose=None)))
    header = msgpack.unpackb(frames[0], raw=False)
    del header["rig"]["pose"], header["rig"]["rest_pose"]
    assert header["version"] == 1
    out = decode([msgpack.packb(header, use_bin_type=True), *frames[1:]])
    assert out.rig.pose is None and out.rig.rest_pose == ""
    np.testing.assert_array_equal(out.rig.rest, asset.rig.rest)


def test_shape_keys_round_trip_as_v3_and_are_checked(asset):
    """Shape keys (a body model's shape sliders) need schema v3; their names must match their count."""
    mesh = asset.layers[0].mesh
    keys = np.random.default_rng(0).normal(size=(2, mesh.n_vertices, 3)).astype(np.float32)
    keyed = replace(asset, layers=[replace(asset.layers[0], mesh=replace(mesh, shape_keys=keys,
                                                                         shape_key_names=["Shape000", "Exp000"])),
                                   *asset.layers[1:]])
    frames = encode(keyed)
    assert msgpack.unpackb(frames[0])["version"] == 3
    out = decode(frames)
    np.testing.assert_array_equal(out.layers[0].mesh.shape_keys, keys)
    assert out.layers[0].mesh.shape_key_names == ["Shape000", "Exp000"]
    header = msgpack.unpackb(frames[0], raw=False)
    header["layers"][0]["mesh"]["shape_key_names"] = ["Shape000"]
    with pytest.raises(AssetError, match=r"layers\[0\]\.mesh\.shape_key_names"):
        decode([msgpack.packb(header, use_bin_type=True), *frames[1:]])


def test_pose_round_trips_bit_exact(asset):
    out = decode(encode(asset))
    assert out.rig.pose.dtype == np.float32 and out.rig.pose.shape == (5, 4, 4)
    np.testing.assert_array_equal(out.rig.pose, asset.rig.pose)
    assert out.rig.rest_pose == "A"


# ---------------------------------------------------------------------------------------------
# corrupt input: every rejection names the field


def _layer(asset: HumanAsset, i: int, **changes) -> HumanAsset:
    layers = list(asset.layers)
    layers[i] = replace(layers[i], **changes)
    return replace(asset, layers=layers)


def _mesh(asset: HumanAsset, i: int, **changes) -> HumanAsset:
    return _layer(asset, i, mesh=replace(asset.layers[i].mesh, **changes))


def _set(arr: np.ndarray, index: Any, value: Any) -> np.ndarray:
    out = np.array(arr, copy=True)
    out[index] = value
    return out


def _png_header(width: int, height: int) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I4sII", 13, b"IHDR", width, height) + bytes(5) + bytes(4)


ASSET_CASES: dict[str, tuple[Callable[[HumanAsset], HumanAsset], str, str]] = {
    # name: (corruption, expected path, expected reason pattern)
    "face index out of range": (
        lambda a: _mesh(a, 0, faces=_set(a.layers[0].mesh.faces, (3, 1), a.layers[0].mesh.n_vertices)),
        "layers[0].mesh.faces", "out of range"),
    "uv index out of range": (
        lambda a: _mesh(a, 1, uv_faces=_set(a.layers[1].mesh.uv_faces, (0, 0), 10**6)),
        "layers[1].mesh.uv_faces", "out of range"),
    "joint index out of range": (
        lambda a: _layer(a, 1, skin=replace(a.layers[1].skin, joints=_set(a.layers[1].skin.joints, (5, 0), 5))),
        "layers[1].skin.joints", "out of range"),
    "hides_body out of range": (
        lambda a: _layer(a, 1, hides_body=np.array([0, a.layers[0].mesh.n_vertices], np.uint32)),
        "layers[1].hides_body", "out of range"),
    "NaN vertex": (lambda a: _mesh(a, 0, vertices=_set(a.layers[0].mesh.vertices, (2, 1), np.nan)),
                   "layers[0].mesh.vertices", "NaN"),
    "infinite rest matrix": (lambda a: replace(a, rig=replace(a.rig, rest=_set(a.rig.rest, (1, 0, 3), np.inf))),
                             "rig.rest", "infinite"),
    "normals of the wrong length": (lambda a: _mesh(a, 0, normals=a.layers[0].mesh.normals[:-1]),
                                    "layers[0].mesh.normals", "dimension 0"),
    "uvs without uv_faces": (lambda a: _mesh(a, 0, uv_faces=None), "layers[0].mesh.uv_faces", "together"),
    "bad PNG": (lambda a: _layer(a, 0, texture=Texture(b"GIF89a this is not a png image")),
                "layers[0].texture.data", "not a PNG"),
    "huge texture": (lambda a: _layer(a, 0, texture=Texture(_png_header(20000, 16))),
                     "layers[0].texture.data", "20000x16"),
    "jpeg texture": (lambda a: _layer(a, 0, texture=Texture(a.layers[0].texture.data, "image/jpeg")),
                     "layers[0].texture.mime", "unsupported"),
    "texture without uvs": (lambda a: _layer(a, 2, texture=a.layers[0].texture), "layers[2].texture", "uvs"),
    "weights not summing to 1": (
        lambda a: _layer(a, 0, skin=replace(a.layers[0].skin, weights=a.layers[0].skin.weights * 0.5)),
        "layers[0].skin.weights", "sum to 0.5"),
    "negative weight": (
        lambda a: _layer(a, 0, skin=replace(a.layers[0].skin, weights=_set(a.layers[0].skin.weights, (0, 0), -1))),
        "layers[0].skin.weights", "negative"),
    "skin without rig": (lambda a: replace(a, rig=None), "layers[0].skin", "need a rig"),
    "cyclic parents": (lambda a: replace(a, rig=replace(a.rig, parents=np.array([2, 0, 1, 2, 3], np.int32))),
                       "rig.parents", "own ancestor"),
    "self parent": (lambda a: replace(a, rig=replace(a.rig, parents=_set(a.rig.parents, 3, 3))),
                    "rig.parents", "own ancestor"),
    "parent out of range": (lambda a: replace(a, rig=replace(a.rig, parents=_set(a.rig.parents, 1, 5))),
                            "rig.parents", "-1..4"),
    "duplicate joint names": (lambda a: replace(a, rig=replace(a.rig, joint_names=["j"] * 5)),
                              "rig.joint_names", "unique"),
    "zero bone length": (lambda a: replace(a, rig=replace(a.rig, lengths=_set(a.rig.lengths, 0, 0))),
                         "rig.lengths", "positive"),
    "unknown layer kind": (lambda a: _layer(a, 1, kind="cape"), "layers[1].kind", "'cape' is not one of"),
    "no layers": (lambda a: replace(a, layers=[]), "layers", "at least one"),
    "body shape length": (lambda a: replace(a, body=replace(a.body, shape_names=["x"])), "body.shape", "dimension 0"),
    "pose for fewer joints": (lambda a: replace(a, rig=replace(a.rig, pose=a.rig.pose[:4])), "rig.pose", "dimension 0"),
    "NaN pose": (lambda a: replace(a, rig=replace(a.rig, pose=_set(a.rig.pose, (2, 0, 1), np.nan))), "rig.pose", "NaN"),
    "scaled pose": (lambda a: replace(a, rig=replace(a.rig, pose=_set(a.rig.pose, (3, slice(0, 3), 0),
                                                                         a.rig.pose[3, :3, 0] * 1.01))),
                    "rig.pose", r"joint 3 \('joint_03'\): the 3x3 block must be a rotation \(off by 0.02"),
    "mirrored pose": (lambda a: replace(a, rig=replace(a.rig, pose=_set(a.rig.pose, (1, slice(0, 3), 2),
                                                                           -a.rig.pose[1, :3, 2]))),
                      "rig.pose", r"joint 1 .*a reflection"),
    "projective pose": (lambda a: replace(a, rig=replace(a.rig, pose=_set(a.rig.pose, (4, 3, 0), 0.5))),
                        "rig.pose", r"joint 4 .*bottom row must be 0 0 0 1"),
    "unknown rest pose": (lambda a: replace(a, rig=replace(a.rig, rest_pose="a-pose")), "rig.rest_pose",
                          "'a-pose' is not one of 'A', 'T', ''"),
}


@pytest.mark.parametrize("case", list(ASSET_CASES))
def test_corrupt_asset_rejected_with_path(asset, case):
    corrupt, path, pattern = ASSET_CASES[case]
    with pytest.raises(AssetError) as err:
        decode(encode(corrupt(asset)))
    assert err.value.path == path, err.value
    assert re.search(pattern, err.value.reason), err.value


def _frames(asset: HumanAsset) -> list[bytes]:
    return [bytes(f) for f in encode(asset)]


def _header_edit(edit: Callable[[dict], Any]) -> Callable[[list[bytes]], list[bytes]]:
    def apply(frames: list[bytes]) -> list[bytes]:
        header = msgpack.unpackb(frames[0], raw=False)
        edit(header)
        return [msgpack.packb(header, use_bin_type=True), *frames[1:]]

    return apply


def _frame_edit(ref: Callable[[dict], dict], edit: Callable[[bytes], bytes]) -> Callable[[list[bytes]], list[bytes]]:
    def apply(frames: list[bytes]) -> list[bytes]:
        i = ref(msgpack.unpackb(frames[0], raw=False))["$frame"]
        return [*frames[:i], edit(frames[i]), *frames[i + 1 :]]

    return apply


def _vertices_ref(h: dict) -> dict:
    return h["layers"][0]["mesh"]["vertices"]


FRAME_CASES: dict[str, tuple[Callable[[list[bytes]], list[bytes]], str, str]] = {
    "wrong dtype": (_header_edit(lambda h: _vertices_ref(h).update(dtype="float64")),
                    "layers[0].mesh.vertices", "dtype 'float64', expected 'float32'"),
    "same-size wrong dtype": (_header_edit(lambda h: h["layers"][0]["mesh"]["faces"].update(dtype="int32")),
                              "layers[0].mesh.faces", "expected 'uint32'"),
    "wrong rank": (_header_edit(lambda h: _vertices_ref(h).update(shape=[_vertices_ref(h)["shape"][0] * 3])),
                   "layers[0].mesh.vertices", "2 non-negative dimensions"),
    "truncated frame": (_frame_edit(_vertices_ref, lambda f: f[:-4]), "layers[0].mesh.vertices", "holds"),
    "frame out of range": (_header_edit(lambda h: _vertices_ref(h).update({"$frame": 999})),
                           "layers[0].mesh.vertices", "out of range"),
    "frame referenced twice": (
        _header_edit(lambda h: h["layers"][1]["mesh"].update(vertices=h["layers"][0]["mesh"]["vertices"])),
        "layers[1].mesh.vertices", "referenced twice"),
    "unreferenced frame": (lambda fr: [*fr, b"\0" * 8], "frames", r"frames \[\d+\] are not referenced"),
    "missing name": (_header_edit(lambda h: h.pop("name")), "name", "missing"),
    "missing faces": (_header_edit(lambda h: h["layers"][0]["mesh"].pop("faces")), "layers[0].mesh.faces", "missing"),
    "missing rig rest": (_header_edit(lambda h: h["rig"].pop("rest")), "rig.rest", "missing"),
    "missing job kind": (_header_edit(lambda h: h["provenance"].pop("job_kind")), "provenance.job_kind", "missing"),
    "name of the wrong type": (_header_edit(lambda h: h.update(name=3)), "name", "expected str, got int"),
    "layer not a map": (_header_edit(lambda h: h["layers"].__setitem__(1, [])), "layers[1]", "expected map"),
    "bool is not a float": (_header_edit(lambda h: h["provenance"]["timings"].update(fit=True)),
                            "provenance.timings['fit']", "expected"),
    "wrong schema version": (_header_edit(lambda h: h.update(version=4)), "version", r"4 is not supported.*1, 2, 3"),
    "bool schema version": (_header_edit(lambda h: h.update(version=True)), "version", "not supported"),
    "rest pose not a string": (_header_edit(lambda h: h["rig"].update(rest_pose=1)), "rig.rest_pose",
                               "expected str, got int"),
    "not a strata asset": (_header_edit(lambda h: h.update(format="other")), "format", "not a Strata asset"),
    "header not msgpack": (lambda fr: [b"\xc1garbage", *fr[1:]], "header", "not a msgpack map"),
    "header not a map": (lambda fr: [msgpack.packb([1, 2]), *fr[1:]], "header", "expected map"),
}


@pytest.mark.parametrize("case", list(FRAME_CASES))
def test_corrupt_frames_rejected_with_path(asset, case):
    corrupt, path, pattern = FRAME_CASES[case]
    with pytest.raises(AssetError) as err:
        decode(corrupt(_frames(asset)))
    assert err.value.path == path, err.value
    assert re.search(pattern, err.value.reason), err.value


def test_no_frames_rejected():
    with pytest.raises(AssetError):
        decode([])


FILE_CASES: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "bad magic": (lambda d: b"\x89STRATX\n" + d[8:], "bad magic"),
    "text file": (lambda d: b"hello world, definitely not a strata file", "bad magic"),
    "too short": (lambda d: d[:10], "bad magic"),
    "truncated file": (lambda d: d[:-100], "truncated: frame"),
    "truncated frame table": (lambda d: d[:20], "frame table"),
    "container version": (lambda d: d[:8] + struct.pack("<I", 2) + d[12:], "container version 2"),
    "zero frames": (lambda d: d[:12] + struct.pack("<I", 0) + d[16:], "frame count 0"),
    "absurd frame count": (lambda d: d[:12] + struct.pack("<I", 2**31) + d[16:], "frame count"),
}


@pytest.mark.parametrize("case", list(FILE_CASES))
def test_corrupt_file_rejected(asset, case, tmp_path):
    corrupt, pattern = FILE_CASES[case]
    data = corrupt(to_bytes(asset))
    with pytest.raises(AssetError) as err:
        from_bytes(data)
    assert err.value.path == "file" and pattern in err.value.reason, err.value
    path = tmp_path / "bad.strata"
    path.write_bytes(data)
    with pytest.raises(AssetError) as err:
        load(path)
    assert err.value.path == "file"


def test_empty_file_rejected(tmp_path: Path):
    path = tmp_path / "empty.strata"
    path.write_bytes(b"")
    with pytest.raises(AssetError) as err:
        read_frames(path)
    assert err.value.path == "file" and "empty" in err.value.reason


def test_corrupt_content_in_a_valid_container(asset):
    """Container framing intact, asset inside broken: the codec's path comes through from_bytes."""
    bad = _layer(asset, 0, skin=replace(asset.layers[0].skin, weights=asset.layers[0].skin.weights * 2))
    with pytest.raises(AssetError) as err:
        from_bytes(to_bytes(bad))
    assert err.value.path == "layers[0].skin.weights"
