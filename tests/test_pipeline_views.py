"""The views path of `reconstruct` end to end, on a synthetic clothed person's six true views: the body prior
on all views, the carved surface, its UV atlas and texture, the rig, the rest-pose contract. The carve runs a
few steps here (its quality is measured by its own tests and bench); this checks the path holds together."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest

pytest.importorskip("anny")
pytest.importorskip("mediapipe")
pytest.importorskip("xatlas")
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _zip(folder) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as archive:
        for path in sorted(folder.iterdir()):
            if path.suffix == ".png":
                archive.write(path, path.name)
    return buf.getvalue()


@pytest.fixture(scope="module")
def views_zip(tmp_path_factory):
    from strata.core.body import get_body_model
    from strata.core.reconstruct.synthetic_clothed import make_clothed_person, write_person_views

    person = make_clothed_person(get_body_model("anny"), 5, garments=("shirt", "trousers"))
    folder = tmp_path_factory.mktemp("views")
    write_person_views(person, folder, size=256)
    return person, _zip(folder)


def test_six_views_give_a_carved_textured_rigged_human(views_zip, monkeypatch):
    from strata.core import carve
    from strata.core.body.skinning import pose_vertices, posed_world
    from strata.core.pipelines.reconstruct import VIEW_STEPS, reconstruct
    from strata.exchange.asset import decode, encode
    from strata.exchange.wire import job_spec

    person, data = views_zip
    monkeypatch.setitem(carve.PRESETS, "fast", carve.FAST.with_(iterations=4, resolution=96))
    params = job_spec("reconstruct").validate({"quality": "fast", "texture_size": 1024,
                                               "height": round(float(person.height_m), 3)})
    asset = decode(encode(reconstruct(data, params, steps=VIEW_STEPS)))
    layer = asset.layer("body")
    mesh, rig = layer.mesh, asset.rig
    assert asset.provenance.backends["surface"] == "carve" and "carve_surface" in asset.provenance.timings
    assert mesh.uvs is not None and mesh.uv_faces.shape == mesh.faces.shape and layer.texture is not None
    assert mesh.uvs.min() >= 0.0 and mesh.uvs.max() <= 1.0
    np.testing.assert_allclose(layer.skin.weights.sum(1), 1.0, atol=1e-5)
    # The rest-pose contract: the mesh stands in the A-pose, the rig poses it back into the views' pose.
    assert rig.rest_pose == "A" and rig.pose is not None and abs(float(mesh.vertices[:, 2].min())) < 1e-5
    posed = pose_vertices(mesh.vertices, layer.skin.joints, layer.skin.weights, rig.rest,
                          posed_world(rig.rest, rig.parents, rig.pose))
    # Posed, it is where the person is in the views (the fitted body, barely carved in 4 steps: ~2-3 cm).
    from scipy.spatial import cKDTree

    from strata.core.reconstruct.synthetic_clothed import outer_mesh

    truth, _ = outer_mesh(person)
    gap = cKDTree(truth).query(posed)[0]
    print(f"posed carved surface to the true outer surface: mean {gap.mean() * 100:.2f} cm")
    assert gap.mean() < 0.04


def test_bad_views_are_a_clear_error(views_zip):
    from strata.core.pipelines.reconstruct import VIEW_STEPS, reconstruct
    from strata.core.render.views_io import ViewsError

    _, data = views_zip
    archive = zipfile.ZipFile(io.BytesIO(data))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as out:  # the back view's colour image left out
        for info in archive.infolist():
            if info.filename != "color_back.png":
                out.writestr(info.filename, archive.read(info))
    with pytest.raises(ViewsError) as info:
        reconstruct(buf.getvalue(), {"height": 1.7}, steps=VIEW_STEPS)
    assert info.value.code == "views_missing_files" and "color_back.png" in str(info.value)
    with pytest.raises(ViewsError) as info:
        reconstruct(b"not a zip", {"height": 1.7}, steps=VIEW_STEPS)
    assert info.value.code == "views_unreadable"
