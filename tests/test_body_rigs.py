"""Every anny rig Strata supports: joint counts, Blender bone frames, presets, skinning, caching.

Marked slow: a rig whose anny cache is cold takes about a minute to build (each ~0.1-1 s once warm).
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("anny")

from strata.core.body import ANNY_RIGS, body_model_key, forward_kinematics_np, get_body_model  # noqa: E402
from strata.core.cache import process_cache  # noqa: E402
from strata.core.compute import ComputeEnv  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("rig", sorted(ANNY_RIGS))
def test_rig(rig):
    body = get_body_model("anny", rig)
    assert get_body_model("anny", rig) is body and body_model_key("anny", rig, ComputeEnv()) in process_cache()
    assert body.kind == ("anny" if rig == "anny" else f"anny/{rig}")
    assert body.num_joints == ANNY_RIGS[rig] and len(set(body.joint_names)) == body.num_joints
    assert (body.parents == -1).sum() == 1

    skel = body.rest_skeleton()
    assert (skel.lengths > 0.004).all()
    upper_l = skel.heads[body.joint_index(body.arm_chain("L")[0])]
    upper_r = skel.heads[body.joint_index(body.arm_chain("R")[0])]
    assert upper_l[0] > 0.1 > -0.1 > upper_r[0]  # subject's left at +X

    pose = body.pose_preset("T")
    with torch.no_grad():
        out = body.forward(pose=pose)
    assert abs(float(out.rest_vertices[0, :, 2].min())) < 1e-5
    heads = out.joint_heads[0].numpy()
    for side in "LR":
        upper, _, hand = (body.joint_index(n) for n in body.arm_chain(side))
        d = heads[hand] - heads[upper]
        assert abs(d[2]) / np.linalg.norm(d) < np.sin(np.radians(3))
    expected = forward_kinematics_np(out.rest_joint_world[0].numpy(), body.parents, pose)
    np.testing.assert_allclose(out.joint_world[0].numpy(), expected, atol=2e-4)

    idx, w = body.skin_weights()
    assert idx.max() < body.num_joints and np.allclose(w.sum(axis=1), 1.0, atol=1e-5)
    # Same mesh for every rig: the rig changes the skeleton, not the body.
    assert body.num_vertices == 13718 and len(body.faces) == 27420
