"""A photo through PSHuman's path on the CPU with tiny random weights saved in the checkpoint's layout, as a
user's server would run it: the server finds the weights under --weights-dir, says so in `welcome`, and a
`reconstruct` job with multiview=pshuman goes photo -> six generated views -> body prior -> carving -> UV
texture -> rig; the result imports into Blender. (Random weights make random views: this proves the path,
not the quality, which needs the real weights and a GPU: bench/pshuman_gpu.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("anny")
pytest.importorskip("mediapipe")
pytest.importorskip("diffusers")
pytest.importorskip("transformers")
pytest.importorskip("xatlas")

REPO = Path(__file__).resolve().parents[1]
PHOTO = REPO / "docs" / "examples" / "pexels-6311555.png"


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    from test_multiview_pipeline import build_checkpoint

    root = tmp_path_factory.mktemp("weights")
    build_checkpoint(root / "PSHuman_Unclip_768_6views")
    return root


def test_photo_through_pshuman_on_the_server_and_into_blender(weights, tmp_path, monkeypatch):
    from conftest import running_server

    from strata.core import carve
    from strata.exchange.asset import container
    from strata.exchange.client import Client

    monkeypatch.setitem(carve.PRESETS, "fast", carve.FAST.with_(iterations=4, resolution=96))  # a short carve
    with running_server(tmp_path / "data", weights_dir=weights) as (server, address), \
            Client(address, timeout=30) as client:
        server.probe.wait(60)
        backends = client.hello()["capabilities"]["backends"]
        assert backends["multiview"]["pshuman"]["ok"], backends["multiview"]
        asset = client.run("reconstruct", {"multiview": "pshuman", "quality": "fast", "texture_size": 1024},
                           image=PHOTO.read_bytes())
    names = asset.provenance.backends
    assert names["multiview"] == "pshuman" and names["surface"] == "carve" and names["path"] == "multiview: pshuman"
    assert "generate_views" in asset.provenance.timings and asset.rig.rest_pose == "A" and asset.rig.pose is not None
    layer = asset.layer("body")
    assert layer.texture is not None and layer.mesh.uv_faces.shape == layer.mesh.faces.shape
    # Imported by the add-on's importer in Blender (bpy), saved as a .blend.
    if not (REPO / ".venv-blender" / "bin" / "python").is_file():
        pytest.skip(".venv-blender (bpy) is missing")
    from strata.client import blender_export

    container.save(asset, tmp_path / "pshuman.strata")
    blender_export.export(tmp_path / "pshuman.strata", tmp_path / "pshuman.blend")
    head = (tmp_path / "pshuman.blend").read_bytes()[:7]
    assert head == b"BLENDER" or head[:4] == b"\x28\xb5\x2f\xfd"  # plain, or zstd-compressed


def test_without_weights_the_photo_path_runs_and_says_why(tmp_path):
    """auto on a server without PSHuman's weights: the single-photo path, and the reason in the provenance;
    asked for by name, a clear `unavailable` error naming --weights-dir."""
    from strata.core.compute import ComputeEnv
    from strata.core.errors import UnavailableError
    from strata.core.pipelines.reconstruct import (
        LAYERED_MULTIVIEW_STEPS,
        LAYERED_STEPS,
        MULTIVIEW_STEPS,
        STEPS,
        choose_steps,
    )

    steps, name, why = choose_steps({"multiview": "auto"}, ComputeEnv())
    assert steps is LAYERED_STEPS and name == "" and "single-photo path" in why  # layers are on by default
    assert choose_steps({"multiview": "auto", "layers": False}, ComputeEnv())[0] is STEPS
    with pytest.raises(UnavailableError, match="--weights-dir"):
        choose_steps({"multiview": "pshuman"}, ComputeEnv())
    assert choose_steps({"multiview": "off", "layers": False}, ComputeEnv())[0] is STEPS
    with pytest.raises(UnavailableError, match="no weights in"):
        choose_steps({"multiview": "pshuman"}, ComputeEnv(weights_dir=tmp_path))
    (tmp_path / "PSHuman_Unclip_768_6views" / "unet").mkdir(parents=True)
    assert choose_steps({"multiview": "pshuman"}, ComputeEnv(weights_dir=tmp_path))[0] is LAYERED_MULTIVIEW_STEPS
    assert choose_steps({"multiview": "pshuman", "layers": False},
                        ComputeEnv(weights_dir=tmp_path))[0] is MULTIVIEW_STEPS
