"""SMPL-X from the user's own files (`--smplx-dir`), on a synthetic SMPLX_NEUTRAL.npz with the real array
names and shapes that the test writes (SMPL-X's files are licensed: never committed, never downloaded).
The real loading code runs on it: the `smplx` package reads the file, the body is posed by SMPL-X's
skeleton, the `body` job makes an asset with SMPL-X bones and Shape/Exp shape keys, and a missing or wrong
file is an error that says what to put where."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("smplx")
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def smplx_dir(tmp_path_factory) -> Path:
    from synthetic_smplx import write_smplx_npz

    root = tmp_path_factory.mktemp("smplx_models")
    write_smplx_npz(root / "smplx" / "SMPLX_NEUTRAL.npz")
    write_smplx_npz(root / "smplx" / "SMPLX_FEMALE.npz", seed=1)
    return root


@pytest.fixture(scope="module")
def model(smplx_dir):
    from strata.core.body import get_body_model
    from strata.core.compute import ComputeEnv

    return get_body_model("smplx", env=ComputeEnv(smplx_dir=smplx_dir))


def test_missing_or_wrong_files_say_what_to_put_where(tmp_path):
    from synthetic_smplx import write_smplx_npz

    from strata.core.body import BodyModelError, get_body_model
    from strata.core.compute import ComputeEnv

    for env in (ComputeEnv(), ComputeEnv(smplx_dir=tmp_path / "nowhere"), ComputeEnv(smplx_dir=tmp_path)):
        with pytest.raises(BodyModelError) as err:
            get_body_model("smplx", env=env)
        text = str(err.value)
        assert "SMPLX_NEUTRAL.npz" in text and "smpl-x.is.tue.mpg.de" in text and "--smplx-dir" in text, text
        assert "Traceback" not in text
    write_smplx_npz(tmp_path / "smplx" / "SMPLX_NEUTRAL.npz", joints=52)  # an SMPL+H-sized file
    with pytest.raises(BodyModelError, match="not a usable SMPL-X model file|another hierarchy"):
        get_body_model("smplx", env=ComputeEnv(smplx_dir=tmp_path))


def test_the_model_is_smplx_posed_by_smplx_kinematics(model):
    from test_body_smplx import random_pose, smplx_joints

    from strata.core.body.smplx_skeleton import CANONICAL, SMPLX_JOINT_NAMES, SMPLX_PARENTS, pose_rotations

    assert model.kind == "smplx" and model.joint_names == SMPLX_JOINT_NAMES and model.num_vertices == 10475
    assert model.shape_names[:2] == ["Shape000", "Shape001"] and model.shape_names[10] == "Exp000"
    assert len(model.faces) == 20908 and model.uv_faces.shape == (20908, 3)
    shape = np.zeros(model.num_shape, np.float32)
    shape[1], shape[12] = 2.0, -1.5
    with torch.no_grad():
        rest = model.forward(shape[None])
    v = rest.rest_vertices[0].numpy()
    assert abs(float(v[:, 2].min())) < 1e-5  # on the ground
    np.testing.assert_allclose(rest.rest_joint_world[0, :, :3, :3].numpy(), np.broadcast_to(CANONICAL, (55, 3, 3)),
                               atol=1e-6)
    # The shape keys are exactly the shape's linear effect.
    with torch.no_grad():
        zero = model.forward().rest_vertices[0].numpy()
    dirs = model.shape_directions()
    moved, want = v - zero, 2.0 * dirs[1] - 1.5 * dirs[12]
    np.testing.assert_allclose(moved - moved.mean(0), want - want.mean(0), atol=1e-4)  # up to the grounding
    # A pose puts the joints where SMPL-X's kinematics puts them.
    template = rest.rest_joint_world[0, :, :3, 3].numpy() @ CANONICAL
    pose = random_pose(np.random.default_rng(4))
    with torch.no_grad():
        posed = model.forward(shape[None], pose_rotations(pose)[0][None]).joint_world[0, :, :3, 3].numpy()
    want = smplx_joints(template, SMPLX_PARENTS, pose) @ CANONICAL.T
    np.testing.assert_allclose(posed - posed[0], want - want[0], atol=2e-4)


def test_the_body_job_on_the_users_files(smplx_dir, tmp_path):
    """Through a server started with --smplx-dir: `welcome` says SMPL-X is there, `body --body-model smplx`
    gives SMPL-X bones and one shape key per coefficient, in the stored (A) pose."""
    from conftest import running_server

    from strata.exchange.client import Client, RemoteError

    with running_server(tmp_path / "data", smplx_dir=smplx_dir) as (server, address), \
            Client(address, timeout=30) as client:
        server.probe.wait(60)
        backends = client.hello()["capabilities"]["backends"]
        assert backends["body_model"]["smplx"]["ok"], backends["body_model"]["smplx"]
        asset = client.run("body", {"body_model": "smplx", "texture_size": 256, "height": 1.7})
        # The user's female file when asked for, said in the asset (and so in the fit written beside exports);
        # a gender whose file is missing is an error that names it.
        female = client.run("body", {"body_model": "smplx", "smplx_gender": "female", "texture_size": 256})
        with pytest.raises(RemoteError) as missing:
            client.run("body", {"body_model": "smplx", "smplx_gender": "male", "texture_size": 256})
        assert missing.value.code == "unavailable" and "SMPLX_MALE.npz is not in" in missing.value.message
        # An anny rig on an SMPL-X body is refused, not silently replaced by SMPL-X's.
        with pytest.raises(RemoteError) as refused:
            client.run("body", {"body_model": "smplx", "rig": "mixamo", "texture_size": 256})
        assert refused.value.code == "invalid_params" and "mixamo" in refused.value.message
    mesh = asset.layer("body").mesh
    assert asset.rig.joint_names[0] == "pelvis" and len(asset.rig.joint_names) == 55
    assert asset.body.model == "smplx" and asset.provenance.backends["body_model"] == "smplx"
    assert mesh.shape_key_names[:1] == ["Shape000"] and mesh.shape_keys.shape == (20, 10475, 3)
    assert float(np.abs(mesh.shape_keys).max()) > 0.0
    assert asset.body.extra["gender"] == "neutral" and female.body.extra["gender"] == "female"
    assert not np.allclose(female.layer("body").mesh.vertices, mesh.vertices)  # another file, another body
    from strata.client.outputs import write_smplx_pose
    from strata.exchange.asset import encode

    fit = np.load(write_smplx_pose(tmp_path / "female.glb", encode(female)))
    assert str(fit["gender"]) == "female" and fit["betas"].shape == (1, 10)
    with running_server(tmp_path / "data2") as (server, address), Client(address, timeout=30) as client:
        server.probe.wait(60)
        reason = client.hello()["capabilities"]["backends"]["body_model"]["smplx"]["reason"]
        assert "--smplx-dir" in reason


# --------------------------------------------------------------------------- a file with a body's geometry


@pytest.fixture(scope="module")
def body_smplx_dir(tmp_path_factory) -> Path:
    """An SMPL-X file whose content is a real body (anny's mesh on its SMPL-X rig): the photo fit and the
    garments need a surface, which random vertices are not."""
    from synthetic_smplx import write_body_smplx_npz

    root = tmp_path_factory.mktemp("smplx_body")
    write_body_smplx_npz(root / "smplx" / "SMPLX_NEUTRAL.npz")
    return root


def test_a_photo_on_the_users_smplx(body_smplx_dir):
    """`reconstruct --body-model smplx`: the photo is fitted with SMPL-X itself (its joints, its betas), the
    garments are built on it, and the posed result covers the photo's person."""
    from test_wardrobe import _front_iou

    from strata.core.body import get_body_model
    from strata.core.body.smplx_skeleton import SMPLX_JOINT_NAMES
    from strata.core.compute import ComputeEnv
    from strata.core.pipelines.reconstruct import reconstruct
    from strata.core.pipelines.synthetic_dressed import make_dressed_person
    from strata.exchange.wire.jobs import JOB_SPECS

    person = make_dressed_person(get_body_model("anny", "anny"), 2, size=(768, 576))
    params = JOB_SPECS["reconstruct"].validate({"body_model": "smplx", "height": person.height_m,
                                                "texture_size": 512})
    asset = reconstruct(person.png_bytes(cutout=False), params, env=ComputeEnv(smplx_dir=body_smplx_dir))
    # 1. SMPL-X through and through: the body model, its 55 joints, its coefficients.
    assert asset.body.model == "smplx" and asset.rig.joint_names == SMPLX_JOINT_NAMES
    assert asset.body.shape_names[0] == "Shape000" and "smplx" in asset.provenance.versions
    assert abs(asset.body.extra["height_m"] - person.height_m) < 0.02
    # 2. The garments the person wears, each skinned to SMPL-X's bones.
    assert [layer.kind for layer in asset.layers[1:]] == [item.split(":")[0] for item in person.layers[1:]]
    for layer in asset.layers:
        assert int(layer.skin.joints.max()) < 55
        np.testing.assert_allclose(layer.skin.weights.sum(1), 1.0, atol=1e-4)
    # 3. Posed by its armature, the layers cover the photo's person.
    assert _front_iou(asset, person.cutout[..., 3] / 255.0) >= 0.9


def test_layers_generated_on_the_users_smplx(body_smplx_dir):
    """`generate --body-model smplx`: the garment library dresses SMPL-X's body as it does anny's."""
    from strata.core.body import get_body_model
    from strata.core.compute import ComputeEnv
    from strata.core.garments.metrics import layer_penetration
    from strata.core.garments.piece import is_closed
    from strata.core.pipelines.generate import generate_layered
    from strata.exchange.wire.jobs import JOB_SPECS

    model = get_body_model("smplx", env=ComputeEnv(smplx_dir=body_smplx_dir))
    params = JOB_SPECS["generate"].validate({"layers": ["body", "bottom:skirt", "top:longsleeve", "hair:bob"],
                                             "seed": 5, "body_model": "smplx", "texture_size": 256})
    asset = generate_layered(model, params)
    assert asset.body.model == "smplx" and len(asset.rig.joint_names) == 55
    assert [layer.kind for layer in asset.layers] == ["body", "bottom", "top", "hair"]
    assert all(is_closed(np.asarray(layer.mesh.faces, np.int64)) for layer in asset.layers[1:])
    meshes = [(np.asarray(layer.mesh.vertices, np.float64), np.asarray(layer.mesh.faces, np.int64))
              for layer in asset.layers]
    assert max(layer_penetration(meshes[:1] + meshes[1:3])) < 0.005
    # The betas stay sliders, and the garments' keys (their binding to the body) move them with the body:
    # a much heavier body (the 'weight' direction at +3) still wears its skirt and top outside it.
    assert all(layer.mesh.shape_key_names == list(model.shape_names) for layer in asset.layers)
    k = model.shape_names.index("Shape004")  # this file's weight direction
    heavier = [(v + 3.0 * np.asarray(layer.mesh.shape_keys[k], np.float64), f)
               for (v, f), layer in zip(meshes, asset.layers, strict=True)]
    unbound = [heavier[0], *meshes[1:3]]
    assert max(layer_penetration(heavier[:3])) < 0.01 < max(layer_penetration(unbound))


def test_six_views_on_the_users_smplx(body_smplx_dir, monkeypatch, tmp_path):
    """The views path (PSHuman's after its diffusion: the body prior fitted to every view, the carved surface,
    layers) runs on SMPL-X: the prior is SMPL-X's, and the layers are skinned to its bones."""
    import io
    import zipfile

    from strata.core import carve
    from strata.core.body import get_body_model
    from strata.core.compute import ComputeEnv
    from strata.core.pipelines.reconstruct import reconstruct, view_steps
    from strata.core.reconstruct.synthetic_clothed import make_clothed_person, write_person_views
    from strata.exchange.wire import job_spec

    person = make_clothed_person(get_body_model("anny"), 5, garments=("shirt", "trousers"))
    write_person_views(person, tmp_path, size=256)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for path in sorted(tmp_path.glob("*.png")):
            archive.write(path, path.name)
    monkeypatch.setitem(carve.PRESETS, "fast", carve.FAST.with_(iterations=4, resolution=96))
    params = job_spec("reconstruct").validate({"quality": "fast", "texture_size": 512, "body_model": "smplx",
                                               "height": round(float(person.height_m), 3)})
    asset = reconstruct(buf.getvalue(), params, steps=view_steps(params), env=ComputeEnv(smplx_dir=body_smplx_dir))
    assert asset.body.model == "smplx" and len(asset.rig.joint_names) == 55
    assert {"bottom", "top"} <= {layer.kind for layer in asset.layers}
    assert all(int(layer.skin.joints.max()) < 55 for layer in asset.layers)


def test_landmarks_sit_on_smplx_vertices(model, body_smplx_dir):
    """On SMPL-X's topology the face and foot landmarks are the `smplx` package's own vertex ids; on a file
    of another topology they are left out of the fit (weight 0) and the joints carry the body."""
    from smplx.vertex_ids import vertex_ids

    from strata.core.body import get_body_model
    from strata.core.compute import ComputeEnv
    from strata.core.reconstruct.keypoints import landmark_map

    lmap = landmark_map(model)
    assert lmap.vertex_index[lmap.index("nose")] == vertex_ids["smplx"]["nose"]
    assert lmap.vertex_index[lmap.index("left_heel")] == vertex_ids["smplx"]["LHeel"]
    assert lmap.weight[lmap.index("nose")] > 0 and lmap.vertex_index[lmap.index("left_shoulder")] == -1
    other = landmark_map(get_body_model("smplx", env=ComputeEnv(smplx_dir=body_smplx_dir)))
    assert other.weight[other.index("nose")] == 0.0 and other.weight[other.index("left_wrist")] > 0
    assert other.joint_index[other.index("left_index")] == model.joint_index("left_index1")


def test_the_fit_beside_exports_puts_smplx_where_the_asset_is(body_smplx_dir, tmp_path):
    """The `_smplx.npz` written beside exports, fed to the `smplx` package itself (betas, expression, every
    pose, transl), gives back the asset's body where the asset has it (Y up): for the A-posed body job, and for
    a generated human moved onto the ground by its soles."""
    import smplx

    from strata.client.outputs import write_smplx_pose
    from strata.core.body import get_body_model
    from strata.core.body.smplx_skeleton import CANONICAL
    from strata.core.compute import ComputeEnv
    from strata.core.pipelines.body import build_body
    from strata.core.pipelines.generate import generate_layered
    from strata.exchange.asset import encode
    from strata.exchange.wire.jobs import JOB_SPECS

    model = get_body_model("smplx", env=ComputeEnv(smplx_dir=body_smplx_dir))
    reference = smplx.SMPLX(str(body_smplx_dir / "smplx" / "SMPLX_NEUTRAL.npz"), num_betas=10,
                            num_expression_coeffs=10, use_pca=False, flat_hand_mean=True, ext="npz")
    assets = [build_body(model, JOB_SPECS["body"].validate({"body_model": "smplx", "height": 1.8,
                                                             "texture_size": 256})),
              generate_layered(model, JOB_SPECS["generate"].validate({"layers": ["body", "shoes:boots"], "seed": 3,
                                                                       "body_model": "smplx", "texture_size": 256}))]
    for i, asset in enumerate(assets):
        fit = dict(np.load(write_smplx_pose(tmp_path / f"human{i}.glb", encode(asset))))
        args = {k: torch.as_tensor(fit[k], dtype=torch.float32) for k in (
            "betas", "expression", "global_orient", "body_pose", "jaw_pose", "leye_pose", "reye_pose",
            "left_hand_pose", "right_hand_pose", "transl")}
        with torch.no_grad():
            got = reference(**args).vertices[0].numpy()
        want = np.asarray(asset.layer("body").mesh.vertices, np.float64) @ CANONICAL  # Z up -> SMPL-X's Y up
        np.testing.assert_allclose(got, want, atol=2e-4)
