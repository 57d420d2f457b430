"""Body layer without anny: cheap imports, the registry's errors, kinematics helpers, texture painting."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from strata.core.body import (
    BodyModelError,
    available_body_models,
    forward_kinematics_np,
    get_body_model,
    rotation_between,
    world_to_local_rotation,
)
from strata.core.body.base import topological_order
from strata.core.body.texture import paint_skin_texture, skin_tone_rgb
from strata.core.render.texture import fill_gutters, uv_coverage

# --- imports and registry --------------------------------------------------------------------------------


def test_import_is_cheap():
    code = (
        "import sys, strata.core.body, strata.core.body.registry, strata.core.body.texture\n"
        "strata.core.body.registry.smplx_availability(None)  # the server's capability probe calls it\n"
        "heavy = [m for m in ('torch', 'anny', 'warp', 'scipy') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_smplx_needs_user_files():
    with pytest.raises(BodyModelError, match="model files") as err:
        get_body_model("smplx")
    assert "SMPLX_NEUTRAL.npz" in str(err.value) and "--smplx-dir" in str(err.value)
    assert str(err.value).startswith("the SMPL-X body model cannot run here")  # its name, not the backend's
    with pytest.raises(BodyModelError, match="/data/smplx"):
        get_body_model("SMPLX", model_path="/data/smplx")


def test_registry_errors():
    with pytest.raises(BodyModelError, match="unknown body model"):
        get_body_model("mhx2")
    with pytest.raises(ValueError, match="unknown rig"):
        get_body_model("anny", rig="soma")
    with pytest.raises(BodyModelError, match="model_path"):
        get_body_model("anny", model_path="/tmp/x")
    models = available_body_models()
    assert models["anny"][0] == "anny" and {"game_engine", "mixamo", "cmu_mb"} <= set(models["anny"])


def test_missing_package_is_a_clear_error(monkeypatch):
    import strata.core.registry as registry
    from strata.core.cache import ModelCache
    from strata.core.errors import UnavailableError

    real = registry._module_present
    monkeypatch.setattr(registry, "_module_present", lambda n: n != "anny" and real(n))
    cache = ModelCache()
    with pytest.raises(BodyModelError, match="pip install") as info:
        get_body_model("anny", rig="cmu_mb", cache=cache)
    assert isinstance(info.value, UnavailableError) and info.value.code == "unavailable"
    assert cache.loaded() == []


# --- kinematics helpers ----------------------------------------------------------------------------------


def _rot(axis, deg):
    axis = np.asarray(axis, float) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    a = np.radians(deg)
    return np.eye(3) + np.sin(a) * k + (1 - np.cos(a)) * k @ k


@pytest.mark.parametrize(
    ("a", "b"), [([1, 0, 0], [0, 0, 1]), ([0, 1, 0], [0, 1, 0]), ([0, 0, 1], [0, 0, -1]), ([1, 2, 3], [-3, 1, 0.5])]
)
def test_rotation_between(a, b):
    r = rotation_between(a, b)
    np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-9)
    assert np.linalg.det(r) == pytest.approx(1.0)
    np.testing.assert_allclose(r @ (np.array(a) / np.linalg.norm(a)), np.array(b) / np.linalg.norm(b), atol=1e-9)


def test_topological_order_handles_unsorted_parents():
    parents = np.array([2, -1, 1, 0])  # 1 is the root, 2 its child, 0 child of 2, 3 child of 0
    order = topological_order(parents)
    assert sorted(order) == [0, 1, 2, 3]
    assert all(order.index(int(parents[j])) < order.index(j) for j in range(4) if parents[j] >= 0)
    with pytest.raises(ValueError):
        topological_order(np.array([1, 0]))


def test_forward_kinematics_chain():
    """Two bones along +Z (Blender frames: +Y of each bone points up the chain)."""
    to_up = rotation_between([0, 1, 0], [0, 0, 1])
    rest = np.tile(np.eye(4), (2, 1, 1))
    rest[:, :3, :3] = to_up
    rest[1, :3, 3] = [0, 0, 1]
    parents = np.array([-1, 0])
    pose = np.tile(np.eye(3), (2, 1, 1))
    np.testing.assert_allclose(forward_kinematics_np(rest, parents, pose), rest, atol=1e-12)
    # Bend the root 90 deg about world X: the child's head swings from +Z to -Y.
    world_bend = _rot([1, 0, 0], 90)
    pose[0] = world_to_local_rotation(rest[0, :3, :3], world_bend)
    out = forward_kinematics_np(rest, parents, pose)
    np.testing.assert_allclose(out[1, :3, 3], [0, -1, 0], atol=1e-12)
    np.testing.assert_allclose(out[0, :3, :3], world_bend @ rest[0, :3, :3], atol=1e-12)


# --- texture ---------------------------------------------------------------------------------------------

# Two UV islands (a quad of two triangles on the left, one triangle on the right).
_UVS = np.array([[0.05, 0.05], [0.45, 0.05], [0.45, 0.9], [0.05, 0.9], [0.6, 0.2], [0.95, 0.2], [0.8, 0.8]])
_UV_FACES = np.array([[0, 1, 2], [0, 2, 3], [4, 5, 6]])


def test_uv_coverage():
    face_id, bary = uv_coverage(_UVS, _UV_FACES, 64)
    assert face_id.shape == (64, 64) and bary.shape == (64, 64, 3)
    np.testing.assert_allclose(bary[face_id >= 0].sum(1), 1.0, atol=1e-5)
    assert set(np.unique(face_id)) == {-1, 0, 1, 2}
    # v = 0.5, u = 0.25 is in the quad; row 0 is v = 1 (origin bottom-left)
    assert face_id[32, 16] in (0, 1)
    assert face_id[2, 16] == -1 and face_id[63, 16] == -1  # above v = 0.9 / below v = 0.05
    assert face_id[int((1 - 0.3) * 64), int(0.8 * 64)] == 2


def test_fill_gutters_and_uniform_tone():
    tex = paint_skin_texture(_UVS, _UV_FACES, size=64, tone="tan")
    assert tex.shape == (64, 64, 3) and tex.dtype == np.uint8
    assert (tex == np.array([168, 117, 84], np.uint8)).all()  # islands and gutters alike: no seams
    img = np.zeros((4, 4, 3), np.float32)
    img[1, 1] = 5
    covered = np.zeros((4, 4), bool)
    covered[1, 1] = True
    assert (fill_gutters(img, covered) == 5).all()


def test_skin_tone_parsing():
    np.testing.assert_allclose(skin_tone_rgb("pale"), (243, 221, 205))
    np.testing.assert_allclose(skin_tone_rgb(0.0), (243, 221, 205))
    np.testing.assert_allclose(skin_tone_rgb(1.0), (72, 47, 33))
    mid = skin_tone_rgb(0.5)
    assert (skin_tone_rgb(1.0) < mid).all() and (mid < skin_tone_rgb(0.0)).all()
    np.testing.assert_allclose(skin_tone_rgb((1.0, 0.5, 0.25)), (255, 127.5, 63.75))
    np.testing.assert_allclose(skin_tone_rgb((200, 100, 50)), (200, 100, 50))
    with pytest.raises(ValueError):
        skin_tone_rgb("green")
