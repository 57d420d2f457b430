"""The reconstruct pipeline's steps and the asset contract they end in: the standard rest pose, the
photo's pose on the armature, posing the rest mesh giving back the fitted surface."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("anny")
pytest.importorskip("mediapipe")


def _run(rest_pose: str, rig: str = "anny", seed: int = 2):
    from strata.core.body import get_body_model
    from strata.core.cache import process_cache
    from strata.core.compute import ComputeEnv
    from strata.core.pipelines.reconstruct import STEPS, ReconstructionState
    from strata.core.progress import Silent
    from strata.core.reconstruct.synthetic import make_person
    from strata.exchange.wire import job_spec

    person = make_person(get_body_model("anny"), seed, texture_size=256)
    params = job_spec("reconstruct").validate({"quality": "fast", "texture_size": 1024, "rest_pose": rest_pose,
                                               "rig": rig, "height": round(float(person.height_m), 4)})
    state = ReconstructionState(person.png_bytes(cutout=True), params, ComputeEnv(), process_cache(), Silent())
    for step in STEPS:
        step(state)
    return state


@pytest.fixture(scope="module")
def a_pose():
    return _run("A")


def _posed(state):
    from strata.core.body.skinning import pose_vertices, posed_world

    rig, skin = state.rig, state.skin
    world = posed_world(rig.rest, rig.parents, rig.pose)
    return pose_vertices(state.rest_surface, skin.joints, skin.weights, rig.rest, world), world


def test_posing_the_rest_mesh_gives_back_the_fitted_surface(a_pose):
    """The round trip rest -> posed against the photo-pose surface: the goal is <= 2 mm mean."""
    posed, world = _posed(a_pose)
    error = np.linalg.norm(posed - a_pose.surface, axis=1)
    print(f"round trip: mean {error.mean() * 1000:.4f} mm, max {error.max() * 1000:.4f} mm")
    assert error.mean() < 2e-3 and error.max() < 1e-2
    # and the armature's posed joints are the fitted skeleton's
    np.testing.assert_allclose(world[:, :3, 3], a_pose.fit.joint_world[:, :3, 3], atol=1e-4)


def test_the_rest_is_the_standard_a_pose_standing_on_the_ground(a_pose):
    import torch

    body, fit = a_pose.body, a_pose.fit
    rig = a_pose.rig
    assert rig.rest_pose == "A" and rig.pose.shape == (body.num_joints, 4, 4)
    assert abs(float(a_pose.rest_surface[:, 2].min())) < 1e-6
    # The rest skeleton is the body's own A preset (up to the lift that grounds the rest mesh).
    with torch.no_grad():
        out = body.forward(torch.as_tensor(fit.shape)[None], torch.as_tensor(body.pose_preset("A", fit.shape))[None])
    true_a = out.joint_world[0].numpy()
    lift = rig.rest[:, 2, 3] - true_a[:, 2, 3]
    assert np.ptp(lift) < 1e-5 and abs(lift[0]) < 0.05
    np.testing.assert_allclose(rig.rest[:, :3, :3], true_a[:, :3, :3], atol=1e-5)
    # The un-posed clothed surface sits on the A-pose body: clothes stand off it by centimetres, and no part
    # is left behind in the photo's pose (a raised knee un-posed lands on the straight leg).
    body_a = out.vertices[0].numpy() + np.array([0.0, 0.0, lift[0]])
    offset = np.linalg.norm(a_pose.rest_surface - body_a, axis=1)
    print(f"un-posed surface vs the A-pose body: mean {offset.mean() * 100:.2f} cm, "
          f"99 % {np.percentile(offset, 99) * 100:.2f} cm, max {offset.max() * 100:.2f} cm")
    assert offset.mean() < 0.02 and np.percentile(offset, 99) < 0.06
    # The photo's pose is on the armature: the legs of this person are not in the rest pose.
    assert np.abs(rig.pose[:, :3, :3] - np.eye(3)).max() > 0.1


@pytest.mark.slow
def test_other_rigs_get_their_own_t_pose():
    state = _run("T", rig="game_engine", seed=1)
    posed, _ = _posed(state)
    assert np.linalg.norm(posed - state.surface, axis=1).mean() < 2e-3
    names = state.rig.joint_names
    arm = state.rig.rest[names.index("lowerarm_l"), :3, 3] - state.rig.rest[names.index("upperarm_l"), :3, 3]
    assert abs(np.degrees(np.arctan2(arm[2], abs(arm[0])))) < 5, "T-pose arms are horizontal"
    assert state.rig.rest_pose == "T"
