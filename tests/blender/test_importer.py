"""strata.import_asset on a .strata file: collection, objects, armature, weights, materials, masks."""

from __future__ import annotations

import json
from pathlib import Path

import bpy
import numpy as np
import pytest

from .asset_builder import lbs_posed, make_test_asset
from .conftest import MODULE


@pytest.fixture(scope="module")
def asset(lib):
    return make_test_asset(lib.schema)


@pytest.fixture(scope="module")
def asset_file(lib, asset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("assets") / "tester.strata"
    lib.container.save(asset, path)
    return path


@pytest.fixture(scope="module")
def posed_asset(lib):
    return make_test_asset(lib.schema, posed=True)


@pytest.fixture(scope="module")
def posed_file(lib, posed_asset, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("assets") / "posed.strata"
    lib.container.save(posed_asset, path)
    return path


@pytest.fixture()
def imported(fresh_scene, asset_file: Path):
    assert bpy.ops.strata.import_asset(filepath=str(asset_file)) == {"FINISHED"}
    return bpy.data.collections["tester"]


def _objects(collection):
    """The collection's objects by layer name (meshes are named "<collection> <layer>") and the rig by name."""
    return {obj.get("strata_layer_name", obj.name) if obj.type == "MESH" else obj.name: obj
            for obj in collection.objects}


def test_collection_objects_and_properties(imported, asset) -> None:
    objs = _objects(imported)
    assert set(objs) == {"Body", "Top", "Shoes", "tester Rig"}
    rig = objs["tester Rig"]
    assert rig.type == "ARMATURE"
    for layer in asset.layers:
        obj = objs[layer.name]
        assert obj.type == "MESH"
        assert obj.parent is rig
        assert [m.type for m in obj.modifiers][-1] == "ARMATURE"
        assert obj.modifiers["Armature"].object is rig
        assert obj["strata_layer_kind"] == layer.kind
        assert json.loads(obj["strata_backends"]) == {"body": "numpy"}
        for key in ("strata_job_id", "strata_source_image"):
            assert key in obj
    assert imported["strata_asset_name"] == "tester"
    assert [scene.name for scene in bpy.data.scenes] == [bpy.context.scene.name]  # no helper scene left


def test_reimport_never_clobbers(imported, asset_file: Path) -> None:
    first = set(imported.objects)
    assert bpy.ops.strata.import_asset(filepath=str(asset_file)) == {"FINISHED"}
    second = [c for c in bpy.data.collections if c.name.startswith("tester") and c is not imported]
    assert len(second) == 1
    assert set(imported.objects) == first  # the first human is untouched
    assert len({o.name for o in second[0].objects} & {o.name for o in first}) == 0


def test_meshes_uvs_and_normals(imported, asset) -> None:
    objs = _objects(imported)
    for layer in asset.layers:
        mesh = objs[layer.name].data
        src = layer.mesh
        assert len(mesh.vertices) == src.n_vertices and len(mesh.polygons) == src.n_faces
        co = np.empty(3 * len(mesh.vertices), np.float32)
        mesh.attributes["position"].data.foreach_get("vector", co)
        np.testing.assert_array_equal(co.reshape(-1, 3), src.vertices)
        corners = np.empty(len(mesh.loops), np.int32)
        mesh.attributes[".corner_vert"].data.foreach_get("value", corners)
        np.testing.assert_array_equal(corners, np.asarray(src.faces).reshape(-1))
        if src.uvs is not None:
            uv = np.empty(2 * len(mesh.loops), np.float32)
            mesh.uv_layers["UVMap"].uv.foreach_get("vector", uv)
            np.testing.assert_array_equal(uv.reshape(-1, 2), src.uvs[src.uv_faces.reshape(-1)])
        if src.normals is not None:
            normals = np.empty(3 * len(mesh.loops), np.float32)
            mesh.corner_normals.foreach_get("vector", normals)
            np.testing.assert_allclose(normals.reshape(-1, 3), src.normals[corners], atol=1e-5)
        assert mesh.polygons[0].use_smooth


def test_armature_matches_rig_rest(imported, asset) -> None:
    rig = asset.rig
    arm = _objects(imported)["tester Rig"]
    bones = arm.data.bones
    assert [b.name for b in bones] == rig.joint_names
    for i, name in enumerate(rig.joint_names):
        bone = bones[name]
        rest = np.asarray(rig.rest[i], np.float64)
        head = rest[:3, 3]
        tail = head + rest[:3, 1] * rig.lengths[i]
        np.testing.assert_allclose(bone.head_local, head, atol=1e-5)
        np.testing.assert_allclose(bone.tail_local, tail, atol=1e-5)
        np.testing.assert_allclose(np.array(bone.matrix_local)[:3, :3], rest[:3, :3], atol=1e-5)  # roll
        parent = int(rig.parents[i])
        assert (bone.parent.name if bone.parent else None) == (rig.joint_names[parent] if parent >= 0 else None)
    assert all(pb.rotation_mode == "QUATERNION" for pb in arm.pose.bones)


def test_vertex_group_weights_are_exact(imported, asset) -> None:
    names = asset.rig.joint_names
    objs = _objects(imported)
    for layer in asset.layers:
        obj = objs[layer.name]
        index_to_joint = {vg.index: vg.name for vg in obj.vertex_groups if vg.name in names}
        want = np.zeros((layer.mesh.n_vertices, len(names)), np.float32)
        for k in range(layer.skin.joints.shape[1]):
            np.add.at(want, (np.arange(layer.mesh.n_vertices), layer.skin.joints[:, k]), layer.skin.weights[:, k])
        got = np.zeros_like(want)
        for v in obj.data.vertices:
            for g in v.groups:
                if g.group in index_to_joint:
                    got[v.index, names.index(index_to_joint[g.group])] = g.weight
        np.testing.assert_array_equal(got, want)  # bit-exact: no rounding anywhere


def test_materials_and_packed_textures(imported, asset) -> None:
    objs = _objects(imported)
    for layer in asset.layers:
        mat = objs[layer.name].data.materials[0]
        nodes = {n.type: n for n in mat.node_tree.nodes}
        assert "BSDF_PRINCIPLED" in nodes
        if layer.texture is not None:
            image = nodes["TEX_IMAGE"].image
            assert image.packed_file is not None
            assert tuple(image.size) == layer.texture.size
            assert bytes(image.packed_file.data) == layer.texture.data
        else:
            assert nodes["VERTEX_COLOR"].layer_name == "Color"
            attr = objs[layer.name].data.color_attributes["Color"]
            assert attr.data_type == "FLOAT_COLOR" and attr.domain == "POINT"
    top = objs["Top"].data.materials[0]
    bsdf = next(n for n in top.node_tree.nodes if n.type == "BSDF_PRINCIPLED")
    assert bsdf.inputs["Alpha"].is_linked  # the Top texture is RGBA


def test_garment_masks_body_without_deleting(imported, asset) -> None:
    objs = _objects(imported)
    body = objs["Body"]
    hides = asset.layer("top").hides_body
    group = body.vertex_groups["Hidden by Top"]
    members = [v.index for v in body.data.vertices if any(g.group == group.index for g in v.groups)]
    assert members == sorted(hides.tolist())
    mask = body.modifiers["Hide under Top"]
    assert mask.type == "MASK" and mask.vertex_group == group.name and mask.invert_vertex_group
    assert [m.type for m in body.modifiers] == ["MASK", "ARMATURE"]
    assert len(body.data.vertices) == asset.layer("body").mesh.n_vertices  # nothing deleted
    evaluated = body.evaluated_get(bpy.context.evaluated_depsgraph_get()).data
    assert len(evaluated.vertices) == len(body.data.vertices) - len(hides)
    # Hiding the garment from the panel shows the body under it; showing it hides the body again.
    assert bpy.ops.strata.garment_visibility(garment=objs["Top"].name) == {"FINISHED"}
    assert objs["Top"].hide_viewport and objs["Top"].hide_render and not mask.show_viewport
    evaluated = body.evaluated_get(bpy.context.evaluated_depsgraph_get()).data
    assert len(evaluated.vertices) == len(body.data.vertices)
    assert bpy.ops.strata.garment_visibility(garment=objs["Top"].name) == {"FINISHED"}
    assert not objs["Top"].hide_viewport and mask.show_viewport and mask.show_render


def test_two_imports_of_one_result_stay_two_humans(fresh_scene, asset_file, lib) -> None:
    """The same result imported twice (the History's Import Again): each human lists its own garments, and
    hiding one human's top shows that human's body only."""
    operators = __import__(f"{MODULE}.operators", fromlist=["human_garments"])
    for name in ("one", "two"):
        assert bpy.ops.strata.import_asset(filepath=str(asset_file), name=name) == {"FINISHED"}
    one, two = bpy.data.objects["one Body"], bpy.data.objects["two Body"]
    assert [o.name for o in operators.human_garments(bpy.data.objects["two Rig"])] == ["two Shoes", "two Top"]
    assert bpy.ops.strata.garment_visibility(garment="two Top") == {"FINISHED"}
    assert not two.modifiers["Hide under Top"].show_viewport and one.modifiers["Hide under Top"].show_viewport


def test_snap_to_ground_stands_the_posed_human_on_z0(fresh_scene, posed_file) -> None:
    """Imported above the ground (the cursor raised), the human as posed is stood on z = 0 by its armature."""
    import numpy as np

    fresh_scene.cursor.location = (0.3, 0.0, 0.75)
    assert bpy.ops.strata.import_asset(filepath=str(posed_file), name="high") == {"FINISHED"}
    arm = bpy.data.objects["high Rig"]
    bpy.context.view_layer.objects.active = arm
    assert bpy.ops.strata.snap_to_ground() == {"FINISHED"}
    depsgraph = bpy.context.evaluated_depsgraph_get()
    evaluated = [o.evaluated_get(depsgraph) for o in bpy.data.collections["high"].objects if o.type == "MESH"]
    lowest = min(min((e.matrix_world @ v.co).z for v in e.data.vertices) for e in evaluated)
    assert abs(lowest) < 1e-4 and arm.location.x == pytest.approx(0.3)
    assert not np.isclose(arm.location.z, 0.75)


def test_bad_file_reports_in_plain_words(fresh_scene, tmp_path: Path) -> None:
    bad = tmp_path / "broken.strata"
    bad.write_bytes(b"not a strata file")
    with pytest.raises(RuntimeError, match="not a valid Strata asset"):
        bpy.ops.strata.import_asset(filepath=str(bad))
    assert not any(c.name.startswith("broken") for c in bpy.data.collections)


@pytest.mark.parametrize("pattern", ["runs", "groups", "convert"])
def test_write_weights_paths_are_exact(addon, fresh_scene, pattern: str) -> None:
    """All three ways write_weights picks (run-length, exact groups, attribute_convert) are bit-exact."""
    import importlib

    importer = importlib.import_module(f"{addon.__name__}.importer")
    rng = np.random.default_rng(1)
    n, names = 3000, [f"bone{i}" for i in range(6)]
    joints = np.stack([rng.permutation(6)[:3] for _ in range(n)]).astype(np.uint16)
    if pattern == "runs":  # rows in blocks of 100 share everything
        joints = np.repeat(joints[::100], 100, axis=0)
        weights = np.repeat(rng.dirichlet([1, 1, 1], n // 100), 100, axis=0).astype(np.float32)
    elif pattern == "groups":  # few distinct values, shuffled: no runs
        weights = rng.choice([0.25, 0.5], size=(n, 3)).astype(np.float32)
        weights[:, 2] = 1 - weights[:, 0] - weights[:, 1]
        weights[weights[:, 2] < 0, 2] = 0
    else:  # every weight different
        weights = rng.dirichlet([1, 1, 1], n).astype(np.float32)
    mesh = bpy.data.meshes.new("w")
    mesh.vertices.add(n)
    obj = bpy.data.objects.new("w", mesh)
    bpy.context.scene.collection.objects.link(obj)
    calls = importer.write_weights(obj, joints, weights, names, bpy.context)
    want = np.zeros((n, 6), np.float32)
    for s in range(3):
        np.add.at(want, (np.arange(n), joints[:, s]), weights[:, s])
    got = np.zeros_like(want)
    index = {g.index: names.index(g.name) for g in obj.vertex_groups}
    for v in mesh.vertices:
        for g in v.groups:
            got[v.index, index[g.group]] = g.weight
    np.testing.assert_array_equal(got, want)
    if pattern == "convert":
        assert calls == 6  # one attribute_convert per joint
    elif pattern == "runs":
        assert calls <= 3 * (n // 100)  # one add() per (slot, block)
    else:
        assert calls <= 6 * 3  # one add() per (joint, distinct weight)


def test_degenerate_triangles_are_dropped_with_their_uvs(addon, lib, fresh_scene) -> None:
    import importlib

    importer = importlib.import_module(f"{addon.__name__}.importer")
    v = np.array([[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0]], np.float32)
    f = np.array([[0, 1, 2], [1, 3, 2], [1, 1, 3]], np.uint32)  # the last one is degenerate
    uv = v[:, :2].copy()
    mesh = importer.build_mesh("d", lib.schema.Mesh(v, f, None, uv, f.copy()))
    assert len(mesh.polygons) == 2 and len(mesh.loops) == 6
    assert len(mesh.uv_layers["UVMap"].uv) == 6


def test_import_is_one_undo_step(fresh_scene, posed_file: Path, posed_asset) -> None:
    """Undo takes the whole human away and redo brings it back, objects, armature, weights and pose.
    (From a script, operators push an undo step only when asked, as the UI does when a user clicks
    Import.)"""
    bpy.ops.ed.undo_push(message="before the import")
    assert bpy.ops.strata.import_asset("EXEC_DEFAULT", True, filepath=str(posed_file), name="undoable") == {"FINISHED"}
    assert "undoable" in bpy.data.collections
    assert bpy.ops.ed.undo() == {"FINISHED"}
    assert "undoable" not in bpy.data.collections
    assert not [o for o in bpy.data.objects if o.name.startswith(("Body", "Top", "Shoes", "undoable"))]
    assert bpy.ops.ed.redo() == {"FINISHED"}
    human = bpy.data.collections["undoable"]
    objs = {obj.name: obj for obj in human.objects}
    assert set(objs) == {"undoable Body", "undoable Top", "undoable Shoes", "undoable Rig"}  # named after the human
    body = objs["undoable Body"]
    assert len(body.vertex_groups) > 0 and body.modifiers["Armature"].object is objs["undoable Rig"]
    bones = objs["undoable Rig"].pose.bones
    for name, pose in zip(posed_asset.rig.joint_names, posed_asset.rig.pose, strict=True):
        np.testing.assert_allclose(np.array(bones[name].matrix_basis), pose, atol=1e-5)


# ---------------------------------------------------------------------------------------------
# the rest-pose contract: meshes and edit bones in the rest pose, the pose on the pose bones


def _evaluated_vertices(obj) -> np.ndarray:
    evaluated = obj.evaluated_get(bpy.context.evaluated_depsgraph_get())
    mesh = evaluated.to_mesh()
    try:
        co = np.empty(3 * len(mesh.vertices), np.float32)
        mesh.vertices.foreach_get("co", co)
    finally:
        evaluated.to_mesh_clear()
    return co.reshape(-1, 3)


def test_pose_goes_on_the_pose_bones_and_deforms_the_rest_meshes(fresh_scene, posed_file: Path, posed_asset) -> None:
    assert bpy.ops.strata.import_asset(filepath=str(posed_file)) == {"FINISHED"}
    objs = _objects(bpy.data.collections["posed"])
    arm = objs["posed Rig"]
    rig = posed_asset.rig
    assert arm["strata_rest_pose"] == "A"
    for i, name in enumerate(rig.joint_names):
        bone = arm.pose.bones[name]
        assert bone.rotation_mode == "QUATERNION"
        np.testing.assert_allclose(np.array(bone.matrix_basis), rig.pose[i], atol=1e-5)
        np.testing.assert_allclose(np.array(arm.data.bones[name].matrix_local), rig.rest[i], atol=1e-5)  # rest kept
    for obj in objs.values():  # the garment mask would drop body vertices from the evaluated mesh
        for mod in getattr(obj, "modifiers", []):
            if mod.type == "MASK":
                mod.show_viewport = False
    for layer in posed_asset.layers:
        want = lbs_posed(rig, layer.skin, layer.mesh.vertices)
        assert np.abs(want - layer.mesh.vertices).max() > 0.05  # the pose really moves every layer
        np.testing.assert_allclose(_evaluated_vertices(objs[layer.name]), want, atol=1e-4, err_msg=layer.name)
    arm.data.pose_position = "REST"  # the armature's Rest Position: the stored (A-pose) meshes
    for layer in posed_asset.layers:
        np.testing.assert_allclose(_evaluated_vertices(objs[layer.name]), layer.mesh.vertices, atol=1e-5,
                                   err_msg=layer.name)


def test_asset_without_pose_imports_in_its_rest(imported, asset) -> None:
    arm = _objects(imported)["tester Rig"]
    assert arm["strata_rest_pose"] == ""
    for bone in arm.pose.bones:
        np.testing.assert_array_equal(np.array(bone.matrix_basis), np.eye(4))


def test_shape_keys_become_sliders(fresh_scene, lib, tmp_path) -> None:
    """A body with shape keys (SMPL-X's Shape000... / Exp000...): a Basis and one slider each, at 0,
    ±5, and a slider at 1 moves the skin by exactly the stored offsets; anny's slide from 0 to 1."""
    asset = make_test_asset(lib.schema)
    mesh = asset.layers[0].mesh
    rng = np.random.default_rng(5)
    mesh.shape_keys = rng.normal(0.0, 0.01, (3, len(mesh.vertices), 3)).astype(np.float32)
    mesh.shape_key_names = ["Shape000", "Shape001", "Exp000"]
    path = tmp_path / "keys.strata"
    lib.container.save(asset, path)
    assert bpy.ops.strata.import_asset(filepath=str(path)) == {"FINISHED"}
    body = bpy.data.collections["keys"].objects["keys Body"]
    blocks = body.data.shape_keys.key_blocks
    assert [k.name for k in blocks] == ["Basis", "Shape000", "Shape001", "Exp000"]
    assert all(k.value == 0.0 and k.slider_min == -5.0 and k.slider_max == 5.0 for k in blocks[1:])
    co = np.zeros(len(mesh.vertices) * 3, np.float32)
    blocks["Shape001"].data.foreach_get("co", co)
    np.testing.assert_allclose(co.reshape(-1, 3) - mesh.vertices, mesh.shape_keys[1], atol=1e-6)
    # anny's keys (its body at one end of a phenotype at 1) slide from 0 to 1: no extrapolated bodies.
    mesh.shape_key_names = ["Female", "Heavier", "Old"]
    asset.body = lib.schema.BodyParams(model="anny", shape_names=["weight"], shape=np.array([0.5], np.float32))
    lib.container.save(asset, path)
    assert bpy.ops.strata.import_asset(filepath=str(path), name="anny keys") == {"FINISHED"}
    blocks = bpy.data.objects["anny keys Body"].data.shape_keys.key_blocks
    assert [(k.name, k.slider_min, k.slider_max) for k in blocks[1:]] == [
        ("Female", 0.0, 1.0), ("Heavier", 0.0, 1.0), ("Old", 0.0, 1.0)]


def test_bones_fit_the_shape_sliders(fresh_scene, lib, tmp_path) -> None:
    """An asset that says how its bones move with each shape key (anny's: the model's own joints there):
    *Fit Bones to Shape* puts each bone at the imported bone plus the keys' offsets times the sliders, keeps
    its roll, gives the same bones when pressed again, and the imported bones at 0."""
    asset = make_test_asset(lib.schema)
    mesh = asset.layers[0].mesh
    rng = np.random.default_rng(7)
    mesh.shape_keys = rng.normal(0.0, 0.01, (2, len(mesh.vertices), 3)).astype(np.float32)
    mesh.shape_key_names = ["Male", "Heavier"]
    heads, tails = rng.normal(0.0, 0.03, (2, 2, 4, 3))
    asset.body = lib.schema.BodyParams(model="anny", shape_names=["gender"], shape=np.array([0.5], np.float32),
                                       extra={"shape_key_bones": {"names": ["Male", "Heavier"],
                                                                  "heads": heads.tolist(), "tails": tails.tolist()}})
    path = tmp_path / "bones.strata"
    lib.container.save(asset, path)
    assert bpy.ops.strata.import_asset(filepath=str(path)) == {"FINISHED"}
    body, arm = bpy.data.objects["bones Body"], bpy.data.objects["bones Rig"]
    bones = arm.data.bones

    def state():
        return (np.array([b.head_local for b in bones]), np.array([b.tail_local for b in bones]),
                np.array([b.z_axis for b in bones]))

    rest_heads, rest_tails, rest_z = state()
    body.data.shape_keys.key_blocks["Male"].value = 1.0
    body.data.shape_keys.key_blocks["Heavier"].value = 0.5
    bpy.context.view_layer.objects.active = body
    assert bpy.ops.strata.fit_bones() == {"FINISHED"}
    fitted_heads, fitted_tails, fitted_z = state()
    np.testing.assert_allclose(fitted_heads, rest_heads + heads[0] + 0.5 * heads[1], atol=1e-5)
    np.testing.assert_allclose(fitted_tails, rest_tails + tails[0] + 0.5 * tails[1], atol=1e-5)
    assert (np.einsum("jd,jd->j", fitted_z, rest_z) > 0.9).all()  # rolls kept (axes turn only a little)
    assert bpy.ops.strata.fit_bones() == {"FINISHED"}
    np.testing.assert_allclose(state()[0], fitted_heads, atol=1e-6)  # from the imported bones: no drift
    for block in body.data.shape_keys.key_blocks[1:]:
        block.value = 0.0
    assert bpy.ops.strata.fit_bones() == {"FINISHED"}
    np.testing.assert_allclose(state()[0], rest_heads, atol=1e-5)
    assert body.mode == "OBJECT" and bpy.context.view_layer.objects.active == body


def test_garment_keys_follow_the_body_slider(fresh_scene, lib, tmp_path) -> None:
    """Garments with shape keys of the body's names (their binding to an SMPL-X body): each is driven by the
    body's slider, so moving one slider reshapes the body and the clothes together; a key the body lacks is
    left alone."""
    asset = make_test_asset(lib.schema)
    rng = np.random.default_rng(6)
    for layer, names in ((asset.layers[0], ["Shape000", "Shape001"]), (asset.layers[1], ["Shape001", "Own"])):
        layer.mesh.shape_keys = rng.normal(0.0, 0.01, (2, len(layer.mesh.vertices), 3)).astype(np.float32)
        layer.mesh.shape_key_names = names
    path = tmp_path / "dressed.strata"
    lib.container.save(asset, path)
    assert bpy.ops.strata.import_asset(filepath=str(path)) == {"FINISHED"}
    body = bpy.data.objects["dressed Body"]
    garment = bpy.data.objects[f"dressed {asset.layers[1].name}"]
    body.data.shape_keys.key_blocks["Shape001"].value = 2.5
    bpy.context.view_layer.update()
    keys = garment.data.shape_keys
    assert keys.key_blocks["Shape001"].value == pytest.approx(2.5)
    assert keys.key_blocks["Own"].value == 0.0 and keys.animation_data is not None
    assert [d.data_path for d in keys.animation_data.drivers] == ['key_blocks["Shape001"].value']


def test_a_human_lands_at_the_3d_cursor_named_after_itself(fresh_scene, asset_file) -> None:
    """Two imports do not pile up at the origin: each stands where the 3D cursor is, its objects named after
    it ("<name> Body"), so the second human's are not "Body.001"."""
    fresh_scene.cursor.location = (1.5, -2.0, 0.0)
    assert bpy.ops.strata.import_asset(filepath=str(asset_file), name="first") == {"FINISHED"}
    fresh_scene.cursor.location = (-1.0, 0.5, 0.0)
    assert bpy.ops.strata.import_asset(filepath=str(asset_file), name="second") == {"FINISHED"}
    for name, where in (("first", (1.5, -2.0, 0.0)), ("second", (-1.0, 0.5, 0.0))):
        objs = {o.name for o in bpy.data.collections[name].objects}
        assert objs == {f"{name} Body", f"{name} Top", f"{name} Shoes", f"{name} Rig"}
        assert tuple(bpy.data.objects[f"{name} Rig"].location) == pytest.approx(where)
        body = bpy.data.objects[f"{name} Body"]
        assert tuple(body.matrix_world.translation) == pytest.approx(where)  # parented: it moves with the rig
