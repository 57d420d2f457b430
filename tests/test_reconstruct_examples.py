"""Every example photo (../shared/examples/) -> a sane rigged, textured human, plus a turnaround artefact.

Sanity: no crash; stature 1.2-2.1 m (the default 1.70 m is the scale reference, so this checks the height
solve) and a body mesh of plausible size in its pose (a crouch is shorter than the stature); feet on the
ground, centred, facing -Y; a texture of the requested size that is not a flat colour; the asset survives
encode/decode (which validates every field). The turnaround (photo, then front / left / back / right
shaded renders) goes to ``out/turnarounds/<photo>.png`` for a person to look at.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("anny")
pytest.importorskip("mediapipe")

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT.parent / "shared" / "examples"
OUT = ROOT / "out" / "turnarounds"
PHOTOS = sorted(EXAMPLES.glob("*.png")) + sorted(EXAMPLES.glob("*.jpg")) if EXAMPLES.is_dir() else []


@pytest.mark.skipif(not PHOTOS, reason="no example photos in ../shared/examples")
@pytest.mark.parametrize("photo", PHOTOS, ids=[p.stem[:24] for p in PHOTOS])
def test_example_photo_gives_a_sane_human(photo: Path) -> None:
    from PIL import Image

    from strata.core.pipelines.reconstruct import reconstruct
    from strata.core.reconstruct.evaluate import asset_turnaround, posed_layers
    from strata.exchange.asset import decode, encode
    from strata.exchange.asset.schema import png_size
    from strata.exchange.wire import job_spec

    data = photo.read_bytes()
    params = job_spec("reconstruct").validate({"texture_size": 1024})
    asset = decode(encode(reconstruct(data, params)))

    assert 1.2 <= asset.body.extra["height_m"] <= 2.1
    body = asset.layer("body")
    # The photo's pose: the rest meshes (the body and every garment) posed by the rig, as Blender shows them.
    v = np.concatenate(posed_layers(asset))
    extent = v.max(0) - v.min(0)
    assert 0.8 <= extent[2] <= 2.2, f"posed height {extent[2]:.2f} m"
    assert extent[0] < 2.0 and extent[1] < 1.5, f"implausible spread {extent}"
    assert abs(v[:, 2].min()) < 1e-3 and np.allclose((v.min(0) + v.max(0))[:2] / 2, 0.0, atol=1e-3)
    rest = np.concatenate([layer.mesh.vertices for layer in asset.layers])  # the A-pose rest, on the ground
    assert abs(rest[:, 2].min()) < 1e-5 and asset.rig.rest_pose == "A" and asset.rig.pose is not None
    names = asset.rig.joint_names
    arm = asset.rig.rest[names.index("lowerarm01.L"), :3, 3] - asset.rig.rest[names.index("upperarm01.L"), :3, 3]
    assert 35 < np.degrees(np.arctan2(-arm[2], arm[0])) < 55, "the rest pose's arms are 45 degrees down"
    head = asset.rig.rest[names.index("head")]
    assert head[2, 3] > 0.5 * extent[2], "the head is up"
    assert body.texture is not None and png_size(body.texture.data) == (1024, 1024)
    tex = np.asarray(Image.open(io.BytesIO(body.texture.data)).convert("RGB"), np.float32)
    assert tex.std() > 5.0, "texture present, not a flat fill"
    assert body.skin is not None and body.skin.joints.shape == (len(body.mesh.vertices), 4)
    assert all(layer.skin is not None for layer in asset.layers)
    # The photo's human keeps anny's shape sliders, on the body and (bound to it) on every garment, with where
    # the bones go for each: made heavier, the clothes stay where they were relative to the body.
    from strata.core.garments.metrics import layer_penetration

    keys = body.mesh.shape_key_names
    assert "Heavier" in keys and all(layer.mesh.shape_key_names == keys for layer in asset.layers)
    assert np.asarray(asset.body.extra["shape_key_bones"]["heads"]).shape == (len(keys), len(names), 3)
    meshes = [(np.asarray(layer.mesh.vertices, np.float64), np.asarray(layer.mesh.faces, np.int64))
              for layer in asset.layers]
    k = keys.index("Heavier")
    heavier = [(v + np.asarray(layer.mesh.shape_keys[k], np.float64), f)
               for (v, f), layer in zip(meshes, asset.layers, strict=True)]
    if len(meshes) > 1:
        assert max(np.subtract(layer_penetration(heavier), layer_penetration(meshes))) < 0.005

    OUT.mkdir(parents=True, exist_ok=True)
    rgba = np.asarray(Image.open(photo).convert("RGBA"), np.float32)
    shown = (rgba[..., :3] * rgba[..., 3:] / 255 + 140 * (1 - rgba[..., 3:] / 255)).astype(np.uint8)
    Image.fromarray(asset_turnaround(asset, photo=shown)).save(OUT / f"{photo.stem}.png")
