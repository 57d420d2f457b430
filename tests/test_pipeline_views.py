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


def test_six_views_give_layers_coloured_by_every_view(views_zip, monkeypatch):
    """Layers on (the default for sent views): the carved surface split into the body and garments read from
    the front view; every garment closed, skinned and hiding the body under it, its texture the garment's
    own colour all round (each view colours what it sees of it), the body's the skin's."""
    from io import BytesIO

    from PIL import Image

    from strata.core import carve
    from strata.core.pipelines.reconstruct import LAYERED_VIEW_STEPS, reconstruct, view_steps
    from strata.exchange.asset import decode, encode
    from strata.exchange.wire import job_spec

    person, data = views_zip
    monkeypatch.setitem(carve.PRESETS, "fast", carve.FAST.with_(iterations=4, resolution=96))
    params = job_spec("reconstruct").validate({"quality": "fast", "texture_size": 1024,
                                               "height": round(float(person.height_m), 3)})
    assert view_steps(params) is LAYERED_VIEW_STEPS
    asset = decode(encode(reconstruct(data, params, steps=view_steps(params))))
    assert asset.provenance.backends["surface"] == "carve" and asset.provenance.backends["garments"] == "procedural"
    labels = asset.body.extra["outfit"]["labels"]
    assert labels["bottom"] == "trousers" and labels["top"] == "top"
    kinds = [layer.kind for layer in asset.layers]
    assert kinds[0] == "body" and {"bottom", "top"} <= set(kinds[1:])
    assert len(asset.layer("body").mesh.vertices) == len(person.body_vertices)  # the body's own topology

    def median_colour(layer) -> np.ndarray:
        rgb = np.asarray(Image.open(BytesIO(layer.texture.data)).convert("RGB"), np.float64).reshape(-1, 3)
        return np.median(rgb, axis=0)

    # The true colours: the person's albedo on the shins (trousers) and the chest (shirt).
    z = person.vertices[:, 2] - person.vertices[:, 2].min()
    shin = (z > 0.25 * person.extent_m) & (z < 0.4 * person.extent_m)
    chest = (z > 0.68 * person.extent_m) & (z < 0.72 * person.extent_m) & (np.abs(person.vertices[:, 0]) < 0.1)
    truth = {"bottom": np.median(person.vertex_colors[shin], axis=0),
             "top": np.median(person.vertex_colors[chest], axis=0)}

    def angle(a: np.ndarray, b: np.ndarray) -> float:  # between colours as RGB directions (shading scales them)
        return float(np.degrees(np.arccos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1))))

    assert angle(truth["bottom"], truth["top"]) > 15  # the check tells the two apart
    for layer in asset.layers[1:]:
        np.testing.assert_allclose(layer.skin.weights.sum(1), 1.0, atol=1e-5)
        assert layer.hides_body is not None and len(layer.hides_body) > 0
        if layer.kind in truth:
            colour, other = median_colour(layer), truth["top" if layer.kind == "bottom" else "bottom"]
            print(layer.kind, colour, truth[layer.kind], angle(colour, truth[layer.kind]), angle(colour, other))
            assert angle(colour, truth[layer.kind]) < 8 < angle(colour, other)


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
