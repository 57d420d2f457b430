"""The GLB writer, checked by parsing its output back independently (JSON chunk + BIN chunk), by
trimesh, and, where node and the Khronos gltf-validator are installed, by the reference validator."""

from __future__ import annotations

import io
import json
import shutil
import struct
import subprocess
import time
from dataclasses import replace

import numpy as np
import pytest

from strata.exchange.asset import HumanAsset, Layer, Mesh, Provenance, Rig, Skin, Texture
from strata.exchange.asset.geometry import limit_influences, smooth_normals, split_uv_seams
from strata.exchange.asset.gltf import to_glb, write_glb
from strata.exchange.asset.synthetic import make_asset, png_bytes

C = np.array([[1, 0, 0], [0, 0, 1], [0, -1, 0]], np.float64)  # Z-up -> Y-up, written independently here

COMPONENT_DTYPES = {5120: np.int8, 5121: np.uint8, 5122: np.int16, 5123: np.uint16, 5125: np.uint32, 5126: np.float32}
TYPE_SIZES = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}


# ---------------------------------------------------------------------------------------------
# an independent GLB reader


def parse_glb(data: bytes) -> tuple[dict, bytes]:
    """JSON document and BIN chunk of a GLB, asserting the framing rules of the spec on the way."""
    magic, version, length = struct.unpack_from("<4sII", data, 0)
    assert magic == b"glTF" and version == 2
    assert length == len(data) and length % 4 == 0
    json_len, json_type = struct.unpack_from("<II", data, 12)
    assert json_type == 0x4E4F534A and json_len % 4 == 0
    text = data[20 : 20 + json_len]
    assert text.rstrip(b" ") == text.rstrip()  # padded with spaces only
    doc = json.loads(text.decode("utf-8"))
    pos = 20 + json_len
    binary = b""
    if pos < len(data):
        bin_len, bin_type = struct.unpack_from("<II", data, pos)
        assert bin_type == 0x004E4942 and bin_len % 4 == 0
        assert pos + 8 + bin_len == len(data)
        binary = data[pos + 8 : pos + 8 + bin_len]
        assert doc["buffers"][0]["byteLength"] <= bin_len <= doc["buffers"][0]["byteLength"] + 3
    return doc, binary


def accessor(doc: dict, binary: bytes, index: int) -> np.ndarray:
    acc = doc["accessors"][index]
    view = doc["bufferViews"][acc["bufferView"]]
    assert "byteStride" not in view  # tightly packed
    dtype = np.dtype(COMPONENT_DTYPES[acc["componentType"]]).newbyteorder("<")
    n = TYPE_SIZES[acc["type"]]
    start = view.get("byteOffset", 0) + acc.get("byteOffset", 0)
    assert start + acc["count"] * n * dtype.itemsize <= view.get("byteOffset", 0) + view["byteLength"]
    arr = np.frombuffer(binary, dtype, acc["count"] * n, start)
    return arr.reshape(acc["count"], n) if n > 1 else arr


def quat_matrix(q: list[float]) -> np.ndarray:
    x, y, z, w = q
    return np.array([
        [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
        [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
        [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
    ])


def node_local(node: dict) -> np.ndarray:
    assert "matrix" not in node
    m = np.eye(4)
    m[:3, :3] = quat_matrix(node.get("rotation", [0, 0, 0, 1])) * np.asarray(node.get("scale", [1, 1, 1]))
    m[:3, 3] = node.get("translation", [0, 0, 0])
    return m


def node_worlds(doc: dict) -> dict[int, np.ndarray]:
    """Global matrix of every node reachable from the default scene."""
    out: dict[int, np.ndarray] = {}

    def walk(i: int, parent: np.ndarray) -> None:
        out[i] = parent @ node_local(doc["nodes"][i])
        for c in doc["nodes"][i].get("children", []):
            walk(c, out[i])

    for root in doc["scenes"][doc["scene"]]["nodes"]:
        walk(root, np.eye(4))
    return out


def primitive(doc: dict, binary: bytes, node: dict) -> dict[str, np.ndarray]:
    prim = doc["meshes"][node["mesh"]]["primitives"][0]
    out = {k: accessor(doc, binary, a) for k, a in prim["attributes"].items()}
    out["indices"] = accessor(doc, binary, prim["indices"]).reshape(-1, 3)
    return out


def layer_nodes(doc: dict) -> list[dict]:
    return [n for n in doc["nodes"] if "strata_layer_kind" in n.get("extras", {})]


@pytest.fixture(scope="module")
def asset() -> HumanAsset:
    return make_asset(3, 800, 32, n_joints=6)


@pytest.fixture(scope="module")
def glb(asset: HumanAsset) -> tuple[dict, bytes, bytes]:
    data = to_glb(asset)
    doc, binary = parse_glb(data)
    return doc, binary, data


# ---------------------------------------------------------------------------------------------
# structure


def test_buffer_views_aligned_and_in_bounds(glb):
    doc, binary, _ = glb
    for view in doc["bufferViews"]:
        assert view["byteOffset"] % 4 == 0
        assert view["byteOffset"] + view["byteLength"] <= len(binary)
    assert doc["asset"]["version"] == "2.0"
    pos = [doc["meshes"][n["mesh"]]["primitives"][0]["attributes"]["POSITION"] for n in layer_nodes(doc)]
    for i in pos:
        data = accessor(doc, binary, i)
        acc = doc["accessors"][i]
        assert acc["min"] == data.min(0).tolist() and acc["max"] == data.max(0).tolist()


def test_scene_hierarchy_and_layer_extras(asset, glb):
    doc, _, _ = glb
    (root_index,) = doc["scenes"][doc["scene"]]["nodes"]
    root = doc["nodes"][root_index]
    assert root["name"] == asset.name
    children = [doc["nodes"][c] for c in root["children"]]
    assert children[0]["name"] == "Armature"
    assert [c["name"] for c in children[1:]] == [lay.name for lay in asset.layers]
    assert [c["extras"]["strata_layer_kind"] for c in children[1:]] == [lay.kind for lay in asset.layers]
    for node in children[1:]:
        assert node["skin"] == 0 and not {"matrix", "translation", "rotation", "scale"} & node.keys()
        material = doc["materials"][doc["meshes"][node["mesh"]]["primitives"][0]["material"]]
        pbr = material["pbrMetallicRoughness"]
        assert pbr["metallicFactor"] == 0 and pbr["roughnessFactor"] == pytest.approx(0.8)
        assert "baseColorTexture" in pbr
    prov = doc["asset"]["extras"]["strata"]["provenance"]
    assert prov["job_kind"] == asset.provenance.job_kind and prov["notes"] == asset.provenance.notes


def test_one_skin_with_rig_hierarchy(asset, glb):
    doc, _, _ = glb
    rig = asset.rig
    (skin,) = doc["skins"]
    joints = skin["joints"]
    assert len(joints) == rig.n_joints
    assert [doc["nodes"][j]["name"] for j in joints] == rig.joint_names
    parent_of = {c: i for i, n in enumerate(doc["nodes"]) for c in n.get("children", [])}
    armature = skin["skeleton"]
    assert doc["nodes"][armature]["name"] == "Armature"
    for i, j in enumerate(joints):
        p = rig.parents[i]
        assert parent_of[j] == (armature if p < 0 else joints[p])


def test_inverse_bind_matrices_invert_joint_worlds(asset, glb):
    doc, binary, _ = glb
    skin = doc["skins"][0]
    ibm = accessor(doc, binary, skin["inverseBindMatrices"]).reshape(-1, 4, 4).transpose(0, 2, 1)
    worlds = node_worlds(doc)
    for i, j in enumerate(skin["joints"]):
        np.testing.assert_allclose(ibm[i] @ worlds[j], np.eye(4), atol=1e-5)
        expected = np.eye(4)
        expected[:3] = C @ asset.rig.rest[i, :3].astype(np.float64)
        np.testing.assert_allclose(worlds[j], expected, atol=1e-5)  # joint local frames are kept
        assert ibm[i, 3].tolist() == [0, 0, 0, 1]


def test_rig_with_parents_after_children_and_scaled_mirrored_joint():
    base = make_asset(1, 200, 8, n_joints=4)
    order = np.array([3, 1, 0, 2])  # permute joints so that parents come after their children
    inv = np.argsort(order)
    parents = np.where(base.rig.parents[order] < 0, -1, inv[np.maximum(base.rig.parents[order], 0)]).astype(np.int32)
    rest = base.rig.rest[order].copy()
    rest[1, :3, :3] *= 1.5
    rest[2, :3, 0] *= -1  # a mirrored joint (negative determinant)
    rig = Rig("odd", [base.rig.joint_names[i] for i in order], parents, rest, base.rig.lengths[order])
    skin = Skin(inv[base.layers[0].skin.joints].astype(np.uint16), base.layers[0].skin.weights)
    asset = replace(base, rig=rig, layers=[replace(base.layers[0], skin=skin)])
    doc, binary = parse_glb(to_glb(asset))
    skin = doc["skins"][0]
    ibm = accessor(doc, binary, skin["inverseBindMatrices"]).reshape(-1, 4, 4).transpose(0, 2, 1)
    worlds = node_worlds(doc)
    for i, j in enumerate(skin["joints"]):
        expected = np.eye(4)
        expected[:3] = C @ rest[i, :3].astype(np.float64)
        np.testing.assert_allclose(worlds[j], expected, atol=1e-5)
        np.testing.assert_allclose(ibm[i] @ worlds[j], np.eye(4), atol=1e-5)


def _posed(asset: HumanAsset, seed: int = 4) -> HumanAsset:
    """The asset with a pose: every joint turned up to 60 degrees, the root moved."""
    rng = np.random.default_rng(seed)
    n = asset.rig.n_joints
    pose = np.tile(np.eye(4), (n, 1, 1))
    for i in range(n):
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
        a = np.radians(rng.uniform(-60, 60))
        pose[i, :3, :3] = np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k
    pose[asset.rig.parents < 0, :3, 3] = (0.1, -0.2, 0.05)
    return replace(asset, rig=replace(asset.rig, pose=pose.astype(np.float32), rest_pose="A"))


def test_pose_on_the_joint_nodes_skins_the_rest_mesh_into_the_pose(asset, glb):
    """Meshes and inverse bind matrices stay the rest pose; the joint nodes carry the pose. Skinning the
    written mesh with the nodes' global matrices x the inverse bind matrices gives the posed mesh."""
    from strata.core.body.skinning import pose_vertices, posed_world

    posed = _posed(asset)
    doc, binary = parse_glb(to_glb(posed))
    assert binary == glb[1]  # meshes and inverse bind matrices: byte for byte the unposed asset's
    skin = doc["skins"][0]
    ibm = accessor(doc, binary, skin["inverseBindMatrices"]).reshape(-1, 4, 4).transpose(0, 2, 1)
    worlds = node_worlds(doc)
    joint_matrices = np.stack([worlds[j] @ ibm[i] for i, j in enumerate(skin["joints"])])
    rig = posed.rig
    world = posed_world(rig.rest, rig.parents, rig.pose)
    for i, j in enumerate(skin["joints"]):  # the nodes' globals are the posed joints, in glTF axes
        np.testing.assert_allclose(worlds[j][:3], C @ world[i, :3], atol=1e-5)
    for layer, node in zip(posed.layers, layer_nodes(doc), strict=True):
        p = primitive(doc, binary, node)
        rest = np.column_stack([p["POSITION"].astype(np.float64), np.ones(len(p["POSITION"]))])
        blended = np.einsum("nk,nkab->nab", p["WEIGHTS_0"].astype(np.float64), joint_matrices[p["JOINTS_0"]])
        skinned = np.einsum("nab,nb->na", blended, rest)[:, :3]
        n = layer.mesh.n_vertices  # the first N glTF vertices are the Strata vertices
        want = pose_vertices(layer.mesh.vertices, layer.skin.joints, layer.skin.weights, rig.rest, world) @ C.T
        np.testing.assert_allclose(skinned[:n], want, atol=1e-5)
        assert np.abs(want - layer.mesh.vertices @ C.T).max() > 0.1  # the pose really moves the mesh
    summary = doc["asset"]["extras"]["strata"]
    assert summary["schema_version"] == 2 and summary["rig"]["rest_pose"] == "A" and summary["rig"]["posed"]
    unposed = glb[0]["asset"]["extras"]["strata"]
    assert unposed["schema_version"] == 1 and unposed["rig"] == {"kind": "synthetic", "joints": asset.rig.n_joints}


# ---------------------------------------------------------------------------------------------
# vertices


def test_uv_seams_split_exactly_once_per_vertex_uv_pair(asset, glb):
    doc, binary, _ = glb
    for layer, node in zip(asset.layers, layer_nodes(doc), strict=True):
        m = layer.mesh
        p = primitive(doc, binary, node)
        corner_uv = m.uvs[m.uv_faces.reshape(-1)]
        pairs = np.unique(np.column_stack([m.faces.reshape(-1), corner_uv.view(np.uint32)]), axis=0)
        assert len(p["POSITION"]) == len(pairs) > m.n_vertices  # the sphere has a UV seam to split
        # Corner by corner, the glTF vertex carries that corner's position, UV (V flipped) and normal.
        out_corner = p["indices"].reshape(-1)
        expected_pos = (m.vertices[m.faces.reshape(-1)] @ C.T).astype(np.float32)
        np.testing.assert_array_equal(p["POSITION"][out_corner], expected_pos)
        expected_uv = np.column_stack([corner_uv[:, 0], 1 - corner_uv[:, 1]])
        np.testing.assert_allclose(p["TEXCOORD_0"][out_corner], expected_uv, atol=1e-7)
        np.testing.assert_allclose(p["NORMAL"][out_corner], m.normals[m.faces.reshape(-1)] @ C.T, atol=1e-6)
        # The first N glTF vertices are the Strata vertices, in order (so vertex indices stay valid).
        np.testing.assert_array_equal(p["POSITION"][: m.n_vertices], (m.vertices @ C.T).astype(np.float32))


def test_y_up_bounds(asset, glb):
    doc, binary, _ = glb
    pos = np.concatenate([primitive(doc, binary, n)["POSITION"] for n in layer_nodes(doc)])
    verts = np.concatenate([lay.mesh.vertices for lay in asset.layers])
    assert pos[:, 1].max() == pytest.approx(verts[:, 2].max())  # height is +Y
    assert pos[:, 1].min() == pytest.approx(verts[:, 2].min())
    assert pos[:, 2].max() == pytest.approx(-verts[:, 1].min())
    assert pos[:, 0].max() == pytest.approx(verts[:, 0].max())


def _triangle_asset(normals: bool) -> HumanAsset:
    """One triangle in front of the origin (at y = -1, facing -Y, Strata's front), wound CCW seen
    from the front."""
    v = np.array([[-0.1, -1, 0], [0.1, -1, 0], [0, -1, 0.2]], np.float32)
    f = np.array([[0, 1, 2]], np.uint32)
    n = np.tile(np.array([[0, -1, 0]], np.float32), (3, 1)) if normals else None
    return HumanAsset("tri", [Layer("Body", "body", Mesh(v, f, n))], Provenance("test"))


@pytest.mark.parametrize("normals", [True, False])
def test_strata_front_becomes_gltf_front(normals):
    doc, binary = parse_glb(to_glb(_triangle_asset(normals)))
    p = primitive(doc, binary, layer_nodes(doc)[0])
    np.testing.assert_allclose(p["POSITION"][:, 2], 1.0)  # y = -1 (in front) -> z = +1 (glTF front)
    np.testing.assert_allclose(p["NORMAL"], [[0, 0, 1]] * 3, atol=1e-7)  # given or computed, faces +Z
    a, b, c = p["POSITION"][p["indices"][0]]
    face_normal = np.cross(b - a, c - a)
    assert face_normal[2] > 0  # the winding still agrees with the normal: no mirroring
    assert "skins" not in doc and "JOINTS_0" not in doc["meshes"][0]["primitives"][0]["attributes"]


def test_computed_normals_are_unit_and_radial():
    asset = make_asset(1, 400, 8)
    layer = asset.layers[0]
    stripped = replace(asset, layers=[replace(layer, mesh=replace(layer.mesh, normals=None))])
    doc, binary = parse_glb(to_glb(stripped))
    p = primitive(doc, binary, layer_nodes(doc)[0])
    np.testing.assert_allclose(np.linalg.norm(p["NORMAL"], axis=1), 1, atol=1e-6)
    given = (layer.mesh.normals @ C.T)[: layer.mesh.n_vertices]
    cos = (p["NORMAL"][: layer.mesh.n_vertices] * given).sum(1)
    assert np.median(cos) > 0.9 and cos.min() > 0.0  # outward everywhere, radial on the stretched sphere


# ---------------------------------------------------------------------------------------------
# skin, textures, colours


def test_weights_normalised_and_joints_byte_for_small_rigs(asset, glb):
    doc, binary, _ = glb
    for layer, node in zip(asset.layers, layer_nodes(doc), strict=True):
        prim = doc["meshes"][node["mesh"]]["primitives"][0]
        assert doc["accessors"][prim["attributes"]["JOINTS_0"]]["componentType"] == 5121
        p = primitive(doc, binary, node)
        np.testing.assert_allclose(p["WEIGHTS_0"].sum(1), 1.0, atol=1e-6)
        n = layer.mesh.n_vertices
        np.testing.assert_array_equal(p["JOINTS_0"][:n], layer.skin.joints)
        np.testing.assert_allclose(p["WEIGHTS_0"][:n], layer.skin.weights, atol=1e-6)


def test_limit_influences_keeps_largest_merges_duplicates_and_pads():
    joints = np.array([[5, 1, 2, 3, 4, 0], [7, 7, 1, 2, 0, 0]], np.uint16)
    weights = np.array([[0.05, 0.3, 0.25, 0.2, 0.15, 0.05], [0.3, 0.3, 0.2, 0.2, 0, 0]], np.float32)
    j, w = limit_influences(joints, weights)
    row0 = dict(zip(j[0].tolist(), w[0].tolist(), strict=True))
    assert set(row0) == {1, 2, 3, 4}
    assert row0[1] == pytest.approx(0.3 / 0.9, abs=1e-6)
    row1 = {int(a): float(b) for a, b in zip(j[1], w[1], strict=True) if b > 0}
    assert row1 == pytest.approx({7: 0.6, 1: 0.2, 2: 0.2})
    j2, w2 = limit_influences(np.array([[3, 1]], np.uint16), np.array([[0.75, 0.25]], np.float32))
    assert j2.tolist() == [[3, 1, 0, 0]] and w2.tolist() == [[0.75, 0.25, 0, 0]]


def test_more_than_255_joints_use_unsigned_short():
    asset = make_asset(1, 300, 8, n_joints=300, k=6)
    doc, binary = parse_glb(to_glb(asset))
    prim = doc["meshes"][0]["primitives"][0]
    assert doc["accessors"][prim["attributes"]["JOINTS_0"]]["componentType"] == 5123
    assert len(doc["skins"][0]["joints"]) == 300
    weights = accessor(doc, binary, prim["attributes"]["WEIGHTS_0"])
    np.testing.assert_allclose(weights.sum(1), 1.0, atol=1e-6)
    joints = accessor(doc, binary, prim["attributes"]["JOINTS_0"])
    assert (joints[weights == 0] == 0).all()  # unused slots are joint 0, as the spec requires
    assert joints.max() >= 256


def test_textures_embedded_unchanged_and_shared(asset, glb):
    doc, binary, _ = glb
    assert len(doc["images"]) == len(asset.layers)
    for layer, image in zip(asset.layers, doc["images"], strict=True):
        view = doc["bufferViews"][image["bufferView"]]
        assert image["mimeType"] == "image/png"
        assert binary[view["byteOffset"] : view["byteOffset"] + view["byteLength"]] == layer.texture.data
    same = replace(asset, layers=[replace(lay, texture=asset.layers[0].texture) for lay in asset.layers])
    doc2, _ = parse_glb(to_glb(same))
    assert len(doc2["images"]) == 1 and len(doc2["textures"]) == len(asset.layers)


def test_vertex_colours_linear_and_only_without_texture(asset):
    layers = [replace(asset.layers[0], texture=None), asset.layers[1]]
    doc, binary = parse_glb(to_glb(replace(asset, layers=layers)))
    untextured, textured = layer_nodes(doc)
    assert "COLOR_0" not in doc["meshes"][textured["mesh"]]["primitives"][0]["attributes"]
    assert "baseColorTexture" not in doc["materials"][0]["pbrMetallicRoughness"]
    prim = doc["meshes"][untextured["mesh"]]["primitives"][0]
    acc = doc["accessors"][prim["attributes"]["COLOR_0"]]
    assert acc["normalized"] and acc["componentType"] == 5123 and acc["type"] == "VEC4"
    colour = accessor(doc, binary, prim["attributes"]["COLOR_0"])[: layers[0].mesh.n_vertices] / 65535.0
    srgb = layers[0].mesh.vertex_colors / 255.0
    linear = np.where(srgb[:, :3] <= 0.04045, srgb[:, :3] / 12.92, ((srgb[:, :3] + 0.055) / 1.055) ** 2.4)
    np.testing.assert_allclose(colour[:, :3], linear, atol=1e-4)
    np.testing.assert_allclose(colour[:, 3], srgb[:, 3], atol=1e-6)
    doc3, _ = parse_glb(to_glb(asset, colors_with_texture=True))
    assert all("COLOR_0" in m["primitives"][0]["attributes"] for m in doc3["meshes"])


# ---------------------------------------------------------------------------------------------
# awkward inputs


def test_loose_vertices_duplicate_uvs_empty_layer_and_odd_extras():
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 0, 1], [1, 0, 1], [5, 5, 5]], np.float32)  # vertex 4: no face
    f = np.array([[0, 1, 2], [2, 1, 3]], np.uint32)
    uvs = np.array([[0, 0], [1, 0], [0, 1], [1, 0], [0, 1], [1, 1]], np.float32)  # unwelded: 1 == 3, 2 == 4
    uvf = np.array([[0, 1, 2], [4, 3, 5]], np.uint32)
    tex = Texture(png_bytes(np.zeros((4, 4, 3), np.uint8)))
    empty = Mesh(np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint32))
    prov = Provenance("test", timings={"fit": float("nan")}, params={"blob": b"\x00\x01", "n": np.int64(3)})
    asset = HumanAsset("odd", [Layer("Body", "body", Mesh(v, f, None, uvs, uvf), tex), Layer("Hat", "other", empty)],
                       prov)
    src, uv, faces = split_uv_seams(asset.layers[0].mesh)
    assert len(src) == 5  # duplicate UV values are welded, so nothing is split; the loose vertex stays
    doc, binary = parse_glb(to_glb(asset))
    body, hat = layer_nodes(doc)
    assert "mesh" not in hat and hat["extras"]["strata_layer_kind"] == "other"
    p = primitive(doc, binary, body)
    assert len(p["POSITION"]) == 5 and p["POSITION"][4].tolist() == [5, 5, -5]
    prov_out = doc["asset"]["extras"]["strata"]["provenance"]
    assert prov_out["timings"]["fit"] is None and prov_out["params"] == {"blob": "<2 bytes>", "n": 3}
    # Where the bones go per shape key stays out: the glTF carries no shape keys (and would gain ~0.3 MB).
    from strata.exchange.asset.schema import BodyParams

    bones = {"names": ["Heavier"], "heads": [[[0.0, 0.0, 0.01]]], "tails": [[[0.0, 0.0, 0.01]]]}
    asset.body = BodyParams("anny", ["weight"], np.array([0.5], np.float32),
                            extra={"height_m": 1.7, "shape_key_bones": bones})
    doc, _ = parse_glb(to_glb(asset))
    assert doc["asset"]["extras"]["strata"]["body"] == {"model": "anny", "extra": {"height_m": 1.7}}


def test_write_glb_matches_to_glb(tmp_path, asset):
    path = tmp_path / "a.glb"
    write_glb(asset, path)
    assert path.read_bytes() == to_glb(asset)
    assert [p.name for p in tmp_path.iterdir()] == ["a.glb"]


def test_trimesh_loads_it(asset, glb):
    trimesh = pytest.importorskip("trimesh")
    _, _, data = glb
    scene = trimesh.load(io.BytesIO(data), file_type="glb", process=False)
    meshes = list(scene.geometry.values())
    assert len(meshes) == len(asset.layers)
    doc, _, _ = glb
    counts = sorted(doc["accessors"][doc["meshes"][n["mesh"]]["primitives"][0]["attributes"]["POSITION"]]["count"]
                    for n in layer_nodes(doc))
    assert sorted(len(m.vertices) for m in meshes) == counts
    verts = np.concatenate([lay.mesh.vertices for lay in asset.layers]).astype(np.float64) @ C.T
    np.testing.assert_allclose(scene.bounds, [verts.min(0), verts.max(0)], atol=1e-5)


def test_large_asset_is_fast():
    asset = make_asset(4, 75_000, 16)
    to_glb(asset)
    start = time.perf_counter()
    data = to_glb(asset)
    elapsed = time.perf_counter() - start
    doc, _ = parse_glb(data)
    assert sum(doc["accessors"][m["primitives"][0]["attributes"]["POSITION"]]["count"] for m in doc["meshes"]) > 300_000
    assert elapsed < 2.0, f"to_glb took {elapsed:.2f} s for 300k vertices"


def _validator() -> list[str] | None:
    """The Khronos gltf-validator through node, if both are installed (npm i gltf-validator)."""
    node = shutil.which("node")
    if node is None:
        return None
    probe = subprocess.run([node, "-e", "require.resolve('gltf-validator')"], capture_output=True)
    return [node] if probe.returncode == 0 else None


_VALIDATE_JS = """
const v = require('gltf-validator'); const chunks = [];
process.stdin.on('data', c => chunks.push(c));
process.stdin.on('end', () => v.validateBytes(new Uint8Array(Buffer.concat(chunks)))
  .then(r => console.log(JSON.stringify(r.issues))));
"""


@pytest.mark.parametrize("n_joints", [6, 300])
def test_khronos_validator_reports_no_errors(n_joints):
    node = _validator()
    if node is None:
        pytest.skip("node + gltf-validator not installed")
    asset = make_asset(2, 300, 8, n_joints=n_joints, k=6)
    layers = [replace(asset.layers[0], texture=None, mesh=replace(asset.layers[0].mesh, normals=None)),
              asset.layers[1]]
    out = subprocess.run([*node, "-e", _VALIDATE_JS], input=to_glb(replace(asset, layers=layers)),
                         capture_output=True, check=True, timeout=60)
    issues = json.loads(out.stdout)
    assert issues["numErrors"] == 0, issues["messages"]
    # The only warning allowed: skinned meshes sit under the asset's root node, which glTF allows.
    assert {m["code"] for m in issues["messages"] if m["severity"] <= 1} <= {"NODE_SKINNED_MESH_NON_ROOT"}


def test_smooth_normals_weight_faces_by_corner_angle() -> None:
    """Blender's own vertex normals weight each face by its corner angle, not its area; the asset's
    smooth normals must agree, or a mesh would shade differently in Blender and in glTF viewers."""
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 1, 1]], np.float32)
    # Two triangles of equal area meeting at vertex 0: one facing +Z with a 90 degree corner there,
    # one facing +X with a 45 degree corner there.
    f = np.array([[0, 1, 2], [0, 2, 3]], np.uint32)
    n = smooth_normals(v, f)
    np.testing.assert_allclose(n[0], np.array([1.0, 0.0, 2.0]) / np.sqrt(5.0), atol=1e-6)
    assert np.allclose(np.linalg.norm(n, axis=1), 1.0, atol=1e-6)
    loose = smooth_normals(np.zeros((1, 3), np.float32), np.zeros((0, 3), np.uint32))
    np.testing.assert_array_equal(loose, [[0.0, 0.0, 1.0]])  # a vertex no face uses points up
