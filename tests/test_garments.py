"""The procedural garment library (core/garments): closed thick surfaces, skin weights, no interpenetration
in the rest pose and in test poses, determinism by seed, refit after a body-shape change, and the metric
itself checked on shapes with a known answer."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("anny")
pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: Outfits that use every style once (each is dressed on one body, inner first).
OUTFITS = [
    [("bottom", "trousers"), ("top", "tshirt"), ("shoes", "sneakers"), ("hair", "bob")],
    [("bottom", "skirt"), ("top", "longsleeve"), ("shoes", "boots"), ("hair", "long")],
    [("bottom", "shorts"), ("top", "hoodie"), ("shoes", "flats"), ("hair", "ponytail")],
    [("top", "dress"), ("hair", "bun")],
    [("bottom", "trousers"), ("top", "coat"), ("hair", "short")],
    [("top", "jacket")],
]


@pytest.fixture(scope="module")
def anny():
    from strata.core.body import get_body_model

    return get_body_model("anny")


@pytest.fixture(scope="module")
def frame(anny):
    from strata.core.garments.frame import body_frame

    shape = anny.default_shape
    return body_frame(anny, shape, anny.pose_preset("A", shape))


def dress(frame, outfit, seed=0):
    from strata.core.garments.styles import Dresser, garment_spec

    d = Dresser(frame)
    return [d.dress(garment_spec(k, s, np.random.default_rng([seed, i]))) for i, (k, s) in enumerate(outfit)]


def test_every_published_style_has_a_builder_and_defaults():
    from strata.core.garments.styles import BUILDERS, DEFAULTS
    from strata.exchange.wire.jobs import LAYER_ORDER, LAYER_STYLES

    published = {(k, s) for k, styles in LAYER_STYLES.items() for s in styles}
    assert published == set(BUILDERS) == set(DEFAULTS)
    assert set(LAYER_STYLES) == set(LAYER_ORDER[1:])
    assert {s for _, s in OUTFITS[0] + OUTFITS[1] + OUTFITS[2] + OUTFITS[3] + OUTFITS[4] + OUTFITS[5]} | {
        "flats"} >= {s for _, s in published}


def test_body_parts_and_limb_coordinates(frame):
    from strata.core.garments.frame import PARTS

    counts = {p: int(frame.part_mask(p).sum()) for p in PARTS}
    assert all(n > 50 for n in counts.values()), counts
    z = frame.vertices[:, 2]
    assert z[frame.part_mask("head")].mean() > z[frame.part_mask("torso")].mean() > z[frame.part_mask("shin")].mean()
    # the subject's left is +X; limb coordinates run 0 at the root joint to about 1 at the far one
    left = frame.part_mask("forearm") & (frame.side == 1)
    assert frame.vertices[left, 0].min() > 0
    assert 0.3 < np.nanmean(frame.arm_t[left]) < 1.0
    assert np.nanmean(frame.leg_t[frame.part_mask("shin")]) > np.nanmean(frame.leg_t[frame.part_mask("thigh")])


@pytest.mark.parametrize("outfit", OUTFITS, ids=lambda o: "+".join(s for _, s in o))
def test_garments_are_closed_skinned_and_outside_the_body_and_each_other(frame, outfit):
    from strata.core.garments.metrics import layer_penetration
    from strata.core.garments.piece import is_closed

    pieces = dress(frame, outfit)
    for (kind, style), p in zip(outfit, pieces, strict=True):
        assert is_closed(p.faces), f"{style}: not a closed, consistently wound surface"
        assert np.all(np.isfinite(p.vertices)) and p.uvs.shape == (len(p.vertices), 2)
        assert p.joints.shape == p.weights.shape == (len(p.vertices), 4)
        np.testing.assert_allclose(p.weights.sum(axis=1), 1.0, atol=1e-5)
        assert p.weights.min() >= 0 and p.joints.max() < 200
        assert p.hides.sum() > 0 or kind == "hair"
        # thick: the volume of a closed shell is positive and small (outward winding, two sheets)
        tri = p.vertices[p.faces]
        volume = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])).sum() / 6
        assert 0 < volume < 0.02, f"{style}: volume {volume:.4f} m^3"
    layers = [(frame.vertices, frame.faces)] + [(p.vertices, p.faces) for p in pieces]
    assert layer_penetration(layers) == [0.0] * len(pieces)


def test_garments_follow_the_armature_in_test_poses(anny, frame):
    """Walking and arms up keep every layer outside the body and the layers under it (<= 0.5 %). Sitting
    (80-degree hips) folds the body's own skin into itself at the lap: the garments' share inside is
    bounded, and most of it lies where the skin under them is itself inside the body."""
    from strata.core.garments.metrics import TEST_POSES, pose_penetration, posed_layers, test_pose

    outfit = OUTFITS[0]
    pieces = dress(frame, outfit)
    shape = anny.default_shape
    bind = anny.pose_preset("A", shape)
    layers = [(frame.vertices, frame.faces, frame.joints, frame.weights)] + [
        (p.vertices, p.faces, p.joints, p.weights) for p in pieces]
    raw, beyond = {}, {}
    for name in TEST_POSES:
        pose = test_pose(anny, shape, bind, name)
        posed = posed_layers(anny, shape, bind, pose, layers)
        moved = [float(np.abs(v - layer[0]).max()) for v, layer in zip(posed[1:], layers[1:], strict=True)]
        assert max(moved) > 0.1, f"{name}: no garment moved"
        raw[name], beyond[name] = pose_penetration(anny, shape, bind, pose, layers)
    print({k: [round(100 * x, 2) for x in v] for k, v in raw.items()},
          {k: [round(100 * x, 2) for x in v] for k, v in beyond.items()})
    assert max(raw["walk"]) <= 0.005 and max(raw["arms_up"]) <= 0.005
    assert max(raw["sit"]) <= 0.04
    assert max(raw["sit"]) > 0.01 > max(beyond["sit"])  # the body's own fold is most of it


@pytest.mark.parametrize("follow", [True, False])
def test_shorts_stay_out_of_the_thighs_when_sitting(anny, monkeypatch, follow):
    """A shell's vertex in the crotch, pushed out along its body vertex's normal, lies over other skin: with
    that skin's weights (:func:`skin_following_weights`) shorts stay outside the body beyond its own folds
    when sitting (<= 0.5 %: bench/layers.py's shorts and T-shirt, seed 7); with their source vertices'
    weights alone they sink into the thighs."""
    from strata.core.garments import shell
    from strata.core.garments.frame import skin_surface
    from strata.core.garments.metrics import pose_penetration, test_pose
    from strata.core.pipelines.generate import generate_layered

    if not follow:
        monkeypatch.setattr(shell.skin_following_weights, "__defaults__", (1e-9,))
    asset = generate_layered(anny, {"layers": ["body", "bottom:shorts", "top:tshirt"], "seed": 7,
                                    "texture_size": 256})
    layers = [(np.asarray(lay.mesh.vertices, np.float64) - asset.body.translation,
               np.asarray(lay.mesh.faces, np.int64), np.asarray(lay.skin.joints, np.int64),
               np.asarray(lay.skin.weights)) for lay in asset.layers[:2]]
    layers[0] = (layers[0][0], skin_surface(layers[0][1], len(layers[0][0]))[0], *layers[0][2:])
    shape, bind = asset.body.shape, asset.body.pose
    _, beyond = pose_penetration(anny, shape, bind, test_pose(anny, shape, bind, "sit"), layers)
    assert (beyond[0] <= 0.005) == follow, beyond


def test_garments_follow_anny_bodys_shape_keys(anny):
    """A layered anny human keeps its phenotypes as sliders (each end of each: anny's own body there) and its
    garments carry the same keys, bound to the body: heavier or male, the skirt and T-shirt stay outside it,
    where the same garments left alone sink in; and the skirt's hem between the legs stays whole (its
    offsets smoothed off the body: turned with the thighs' triangles, its edges stretched 5-fold)."""
    from strata.core.garments.metrics import layer_penetration
    from strata.core.pipelines.generate import generate_layered

    asset = generate_layered(anny, {"layers": ["body", "bottom:skirt", "top:tshirt"], "seed": 5,
                                    "texture_size": 256})
    names = asset.layers[0].mesh.shape_key_names
    assert "Heavier" in names and all(layer.mesh.shape_key_names == names for layer in asset.layers)
    meshes = [(np.asarray(layer.mesh.vertices, np.float64), np.asarray(layer.mesh.faces, np.int64))
              for layer in asset.layers]
    for key in ("Heavier", "Male"):
        k = names.index(key)
        moved = [(v + np.asarray(layer.mesh.shape_keys[k], np.float64), f)
                 for (v, f), layer in zip(meshes, asset.layers, strict=True)]
        assert max(layer_penetration(moved)) < 0.005, key  # bound: outside the reshaped body
        assert max(layer_penetration([moved[0], *meshes[1:]])) > 0.05, key  # not bound: sunk in
    (skirt, faces), keys = meshes[1], np.asarray(asset.layers[1].mesh.shape_keys[names.index("Male")], np.float64)
    edges = np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]]])
    before = np.linalg.norm(skirt[edges[:, 0]] - skirt[edges[:, 1]], axis=1)
    after = np.linalg.norm((skirt + keys)[edges[:, 0]] - (skirt + keys)[edges[:, 1]], axis=1)
    assert np.percentile(np.abs(after / before - 1.0), 99.9) < 0.6


def test_body_folds_are_where_the_skin_is_inside_the_body():
    """Known answer: a 'body' of two balls; posed, the second overlaps the first. Points over the second
    ball's skin inside the first are in a fold, others are not; with nothing overlapping there is none."""
    trimesh = pytest.importorskip("trimesh")
    from strata.core.garments.metrics import body_folds

    ball = trimesh.creation.icosphere(subdivisions=3, radius=0.1)
    n = len(ball.vertices)
    faces = np.concatenate([ball.faces, ball.faces + n])
    rest = np.concatenate([ball.vertices, ball.vertices + (0.5, 0, 0)])
    posed = np.concatenate([ball.vertices, ball.vertices + (0.15, 0, 0)])
    points = np.array([[0.5 - 0.11, 0, 0], [0.5 + 0.11, 0, 0], [0.5, 0.11, 0], [-0.11, 0, 0]])
    np.testing.assert_array_equal(body_folds(points, rest, posed, faces), [True, False, False, False])
    assert not body_folds(points, rest, rest, faces).any()


def test_the_same_seed_gives_the_same_garment_and_another_seed_another(frame):
    outfit = [("bottom", "skirt"), ("top", "tshirt")]
    a = dress(frame, outfit, seed=3)
    b = dress(frame, outfit, seed=3)
    c = dress(frame, outfit, seed=4)
    for p, q in zip(a, b, strict=True):
        np.testing.assert_array_equal(p.vertices, q.vertices)
    assert any(p.vertices.shape != r.vertices.shape or not np.allclose(p.vertices, r.vertices)
               for p, r in zip(a, c, strict=True))


def test_garments_refit_a_changed_body(anny):
    """Bound to body triangles (MakeHuman's proxy idea): a heavier body, the same garments refitted, still
    outside it and still one layer over the other."""
    from strata.core.garments.binding import bind, refit
    from strata.core.garments.frame import body_frame
    from strata.core.garments.metrics import layer_penetration

    slim = anny.shape_vector(weight=0.2)
    heavy = anny.shape_vector(weight=0.9, muscle=0.7)
    f0 = body_frame(anny, slim, anny.pose_preset("A", slim))
    f1 = body_frame(anny, heavy, anny.pose_preset("A", heavy))
    pieces = dress(f0, OUTFITS[0][:2])
    refitted = [refit(bind(p.vertices, f0.vertices, f0.faces), f1.vertices, f0.faces) for p in pieces]
    moved = [float(np.linalg.norm(r - p.vertices, axis=1).mean()) for r, p in zip(refitted, pieces, strict=True)]
    assert min(moved) > 0.005  # the body changed under them and they followed
    layers = [(f1.vertices, f1.faces)] + [(r, p.faces) for r, p in zip(refitted, pieces, strict=True)]
    assert max(layer_penetration(layers)) <= 0.005
    # on the unchanged body, the binding reproduces the garment
    np.testing.assert_allclose(refit(bind(pieces[0].vertices, f0.vertices, f0.faces), f0.vertices, f0.faces),
                               pieces[0].vertices, atol=1e-6)


def test_penetration_metric_on_known_shapes():
    trimesh = pytest.importorskip("trimesh")
    from strata.core.garments.metrics import layer_penetration, push_out, signed_distance

    inner = trimesh.creation.icosphere(subdivisions=3, radius=1.0)
    outer = trimesh.creation.icosphere(subdivisions=3, radius=1.05)
    shrunk = trimesh.creation.icosphere(subdivisions=3, radius=0.9)
    layers = [(inner.vertices, inner.faces)]
    assert layer_penetration(layers + [(outer.vertices, outer.faces)]) == [0.0]
    assert layer_penetration(layers + [(shrunk.vertices, shrunk.faces)]) == [1.0]
    points = np.array([[0.0, 0.0, 0.5], [0.0, 0.0, 1.2], [0.99, 0.0, 0.0]])
    d = signed_distance(points, inner.vertices, inner.faces)
    assert d[0] < -0.4 and d[1] > 0.15 and abs(d[2]) < 0.02
    fixed = push_out(points, inner.vertices, inner.faces, 0.003)
    assert np.all(signed_distance(fixed, inner.vertices, inner.faces) > 0)
    np.testing.assert_array_equal(fixed[1], points[1])


def test_fabric_textures_are_seeded_and_coloured():
    from strata.core.garments.fabric import FABRICS, fabric_texture

    for fabric in FABRICS:
        a = fabric_texture((200, 40, 40), fabric, 64, seed=1)
        assert a.shape == (64, 64, 3) and a.dtype == np.uint8
        assert a[..., 0].mean() > 2 * a[..., 1].mean()  # red stays red
        np.testing.assert_array_equal(a, fabric_texture((200, 40, 40), fabric, 64, seed=1))
    with pytest.raises(ValueError, match="unknown fabric"):
        fabric_texture((0, 0, 0), "silk", 16)


@pytest.mark.parametrize("style", ["short", "bob", "long", "ponytail", "bun"])
def test_hair_lies_on_the_head_and_its_pieces_are_tied_on(frame, style):
    """Over a T-shirt (its collar must not lift the hair at the nape): the cap meets the skin at the hairline
    (no helmet rim), nothing floats off the head, and a bun or ponytail touches the cap it is tied to."""
    from scipy.spatial import cKDTree

    from strata.core.garments.frame import face_components
    from strata.core.garments.hair import scalp

    pieces = dress(frame, [("top", "tshirt"), ("hair", style)])
    hair = pieces[-1]
    label = face_components(hair.faces, len(hair.vertices))
    sizes = np.bincount(label)
    cap_faces = hair.faces[label == sizes.argmax()]
    cap_v = np.unique(cap_faces)
    skin = cKDTree(frame.vertices[frame.skin])
    to_skin = skin.query(hair.vertices[cap_v])[0]
    assert to_skin.max() < 0.04, f"{style}: the cap stands {to_skin.max():.3f} m off the head"
    # The hairline: cap vertices over the scalp's border lie within a few millimetres of the skin.
    cover = scalp(frame)
    mixed = cover[frame.faces].any(axis=1) & ~cover[frame.faces].all(axis=1)
    border = np.unique(frame.faces[mixed][cover[frame.faces[mixed]]])
    near_border = cKDTree(frame.vertices[border]).query(hair.vertices[cap_v])[0] < 0.004
    assert near_border.sum() > 20 and to_skin[near_border].max() < 0.008, style
    # Tied on: every other piece (bun, ponytail) touches or sinks into the cap.
    for other in np.flatnonzero(sizes)[np.flatnonzero(sizes) != sizes.argmax()]:
        part = np.unique(hair.faces[label == other])
        gap = cKDTree(hair.vertices[cap_v]).query(hair.vertices[part])[0].min()
        if style in ("ponytail", "bun"):
            assert gap < 0.005, f"{style}: a piece floats {gap:.3f} m off the cap"


def test_hair_strands_run_down_from_the_crown():
    """The hair shade on an upright cylinder with its own UVs (u around, v down): strands vary around the
    head far more than down a strand, whatever the UVs' orientation (u and v swapped: the same)."""
    from strata.core.garments.fabric import hair_shade

    k, m = 64, 16
    theta = np.linspace(0, 2 * np.pi, k, endpoint=False)
    z = np.linspace(0.0, -0.3, m)
    verts = np.stack([np.cos(theta)[None].repeat(m, 0) * 0.09, np.sin(theta)[None].repeat(m, 0) * 0.09,
                      z[:, None].repeat(k, 1)], -1).reshape(-1, 3)
    uv = np.stack([(np.arange(k) / k)[None].repeat(m, 0), (np.arange(m) / m)[:, None].repeat(k, 1)], -1)
    uv = uv.reshape(-1, 2) * 0.98 + 0.01
    idx = np.arange(m * k).reshape(m, k)
    quads = np.stack([idx[:-1, :-1], idx[1:, :-1], idx[1:, 1:], idx[:-1, 1:]], -1).reshape(-1, 4)
    faces = np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])
    for swap in (False, True):
        uvs = uv[:, ::-1] if swap else uv
        shade = hair_shade(verts, faces, uvs, faces, 256, seed=1, sheen=0.0)
        img = shade.T if swap else shade  # rows: v (down the strand), columns: u (around)
        band = img[40:200, 20:230]
        down = np.abs(np.diff(band, axis=0)).mean()
        around = np.abs(np.diff(band, axis=1)).mean()
        assert around > 4 * down, (swap, around, down)
