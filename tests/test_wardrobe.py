"""Garments read from a photo: decisions on synthetic dressed people, and the layered reconstruction."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from strata.core.body import get_body_model
from strata.core.garments.frame import body_frame
from strata.core.garments.piece import is_closed
from strata.core.imaging.masks import mask_iou
from strata.core.pipelines.synthetic_dressed import make_dressed_person, outfit_labels
from strata.core.reconstruct.evaluate import posed_layers, render_mask, textured_union
from strata.core.reconstruct.wardrobe import labels, read_outfit, skin_like
from strata.core.render.camera import camera_from_dict

SIZE = (768, 576)


@pytest.fixture(scope="module")
def model():
    return get_body_model("anny", "anny")


def test_labels_are_what_a_front_photo_shows():
    assert labels([("bottom", "skirt"), ("top", "tshirt"), ("hair", "bun")]) == {
        "top": "top", "sleeves": "short", "bottom": "skirt", "shoes": "no", "hair": "short"}
    # Under a dress or a coat the bottom is not judged; bob and long hair both hang beside the face.
    assert labels([("bottom", "trousers"), ("top", "coat"), ("shoes", "boots"), ("hair", "bob")]) == {
        "top": "coat", "sleeves": "long", "shoes": "yes", "hair": "long"}


def test_decisions_agree_with_the_known_garments(model):
    """Ten dressed people (random outfits and colours, posed, on clutter): the decisions read from each
    photo and its body agree with the known outfit on at least 90 % of the labels."""
    agree = total = 0
    misses = []
    for seed in range(10):
        person = make_dressed_person(model, seed, size=SIZE)
        frame = body_frame(model, person.shape, model.pose_preset("A", person.shape))
        outfit = read_outfit(person.photo, person.cutout[..., 3] / 255.0, person.posed[0], frame, person.camera)
        truth, got = outfit_labels(person.layers), outfit.labels()
        agree += sum(got.get(k) == v for k, v in truth.items())
        total += len(truth)
        misses += [(seed, k, v, got.get(k)) for k, v in truth.items() if got.get(k) != v]
        # Colours come from the photo: every garment's is a real colour, the skin's is skin-like.
        assert all(0 <= c <= 255 for g in outfit.garments for c in g.color)
        r, g_, b = outfit.skin_rgb
        assert r >= b, outfit.skin_rgb
    assert agree / total >= 0.9, misses


def test_a_bare_body_gets_no_garments(model):
    """A person with nothing on (the body's own skin texture) is read as wearing nothing."""
    person = make_dressed_person(model, 3, size=SIZE, layers=["body"], colours=[])
    frame = body_frame(model, person.shape, model.pose_preset("A", person.shape))
    outfit = read_outfit(person.photo, person.cutout[..., 3] / 255.0, person.posed[0], frame, person.camera)
    kinds = {g.kind for g in outfit.garments}
    assert not kinds & {"top", "bottom"}, outfit.summary()


def test_hair_as_brown_as_the_skin_is_hair(model, monkeypatch):
    """Hair of the skin's own colour is told from a bare scalp by its strands' fine texture; without that
    cue (the colour alone) the same photo reads as bald, and a bare head stays bald with it. The mask is cut
    to the body, as when a fit's head swallows the hair's volume (a reconstruction's body is fitted to the
    silhouette, hair included)."""
    from strata.core.reconstruct import wardrobe
    from strata.core.render.camera import camera_for_size

    def read(layers: list[str], colours: list[str]):
        person = make_dressed_person(model, 4, size=SIZE, layers=layers, colours=colours)
        frame = body_frame(model, person.shape, model.pose_preset("A", person.shape))
        mask = person.cutout[..., 3] / 255.0
        camera, _, _ = camera_for_size(person.camera, mask.shape)
        mask *= render_mask(person.posed[0], np.asarray(model.faces, np.int64), camera)  # nothing off the body
        return read_outfit(person.photo, mask, person.posed[0], frame, person.camera)

    # 1. The person's skin colour, read from the same person bare-headed, becomes the hair's.
    bare = read(["body", "top:tshirt"], ["#3050c0"])
    assert bare.labels()["hair"] == "none"
    skin = "#" + "".join(f"{c:02x}" for c in bare.skin_rgb)
    layers, colours = ["body", "top:tshirt", "hair:short"], ["#3050c0", skin]
    assert read(layers, colours).labels()["hair"] == "short"
    # 2. The colour alone cannot tell.
    monkeypatch.setattr(wardrobe, "HAIR_TEXTURE", float("inf"))
    assert read(layers, colours).labels()["hair"] == "none"


def _skin_in_full(image: np.ndarray, skin_rgb) -> np.ndarray:
    """(H, W) bool: pixels within the skin distance of the skin colour in CIELAB, lightness counted in full."""
    import cv2

    from strata.core.reconstruct.wardrobe import SKIN_DISTANCE

    lab = cv2.cvtColor(np.ascontiguousarray(image[..., :3]).astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    ref = cv2.cvtColor(np.asarray(skin_rgb, np.float32).reshape(1, 1, 3) / 255.0, cv2.COLOR_RGB2LAB)[0, 0]
    return np.linalg.norm(lab - ref, axis=-1) < SKIN_DISTANCE


def _front_iou(asset, mask: np.ndarray) -> float:
    """The posed result (every layer) against the photo's mask, in the photo camera the asset carries."""
    vertices, faces, *_ = textured_union(asset, posed_layers(asset))
    return mask_iou(render_mask(vertices, faces, camera_from_dict(asset.body.extra["camera"])), mask > 0.5)


@pytest.mark.parametrize("seed", [2, 5])
def test_photo_comes_back_in_layers(model, seed):
    """Through the whole reconstruction (fit included): the known garments come back as separate closed,
    skinned, textured layers that hide the body under them, and together they keep the photo's silhouette."""
    from strata.core.pipelines.reconstruct import reconstruct

    person = make_dressed_person(model, seed, size=SIZE)
    asset = reconstruct(person.png_bytes(cutout=False), {"height": person.height_m})
    # 1. The decisions, as the provenance reports them.
    outfit = asset.body.extra["outfit"]
    assert outfit["labels"] == outfit_labels(person.layers)
    assert asset.provenance.backends["garments"] == "procedural"
    # 2. Every garment its own layer: closed, 4 weights per vertex summing to 1, the body under it hidden.
    body, garments = asset.layers[0], asset.layers[1:]
    assert [g.kind for g in garments] == [item.split(":")[0] for item in person.layers[1:]]
    for g in garments:
        assert is_closed(np.asarray(g.mesh.faces, np.int64)), g.name
        assert g.skin.weights.shape[1] <= 4
        np.testing.assert_allclose(g.skin.weights.sum(1), 1.0, atol=1e-4)
        assert len(g.hides_body) > 0 and g.hides_body.max() < len(body.mesh.vertices)
        assert g.texture is not None and g.mesh.uvs.min() >= 0.0 and g.mesh.uvs.max() <= 1.0
        # No skin on the cloth (a hand beside a thigh is the body's), unless the cloth is skin-coloured.
        texels = np.asarray(Image.open(io.BytesIO(g.texture.data)).convert("RGB"))
        colour = np.asarray(Image.open(io.BytesIO(g.texture.data)).convert("RGB")).reshape(-1, 3).mean(0)
        skin = tuple(outfit["skin_rgb"])
        if not skin_like(colour.astype(np.uint8).reshape(1, 1, 3), skin)[0, 0]:
            # Hair's painted strands vary its lightness (their highlights may pass skin_like, which counts
            # lightness a third): there the skin is judged with its lightness in full.
            found = _skin_in_full(texels, skin) if g.kind == "hair" else skin_like(texels, skin)
            assert found.mean() < 0.02, (g.name, found.mean())
    # 3. The rest pose stands on the ground; posed by the rig the layers cover the photo's person.
    assert abs(min(float(layer.mesh.vertices[:, 2].min()) for layer in asset.layers)) < 1e-4
    assert _front_iou(asset, person.cutout[..., 3] / 255.0) >= 0.93


def test_layers_off_gives_one_clothed_surface(model):
    from strata.core.pipelines.reconstruct import reconstruct

    person = make_dressed_person(model, 2, size=SIZE)
    asset = reconstruct(person.png_bytes(), {"height": person.height_m, "layers": False})
    assert [layer.kind for layer in asset.layers] == ["body"]
    assert "outfit" not in asset.body.extra


def test_without_a_face_the_skin_comes_from_the_hands(model):
    """A photo cropped above the shoulders (no face to read the skin from) still gives an outfit."""
    person = make_dressed_person(model, 2, size=SIZE)
    frame = body_frame(model, person.shape, model.pose_preset("A", person.shape))
    mask = person.cutout[..., 3] / 255.0
    rows = np.flatnonzero(mask.max(1) > 0.5)
    mask[: rows.min() + int(0.2 * (rows.max() - rows.min()))] = 0.0  # the head and neck cut away
    outfit = read_outfit(person.photo, mask, person.posed[0], frame, person.camera)
    assert {"bottom", "top"} <= {g.kind for g in outfit.garments}, outfit.summary()


def test_layers_on_another_rig(model):
    """A rig other than the fitting one (game_engine): the garments are skinned to that rig's bones."""
    from strata.core.pipelines.reconstruct import reconstruct

    person = make_dressed_person(model, 5, size=SIZE)
    asset = reconstruct(person.png_bytes(), {"height": person.height_m, "rig": "game_engine", "texture_size": 512})
    assert len(asset.layers) > 1 and asset.body.extra["rig"] == "game_engine"
    for layer in asset.layers:
        assert int(layer.skin.joints.max()) < len(asset.rig.joint_names), layer.name
        np.testing.assert_allclose(layer.skin.weights.sum(1), 1.0, atol=1e-4)
