"""`body`: a rigged, textured body from shape parameters (anny, or the user's SMPL-X), via
strata.core.pipelines.body.

The pipeline is imported inside the job, so the server starts and serves every other kind while it is
absent. The body model comes from the backend registry on the server's compute environment and stays warm
in the model cache (one per rig, device and dtype) until the user releases it.
"""

from __future__ import annotations

from ...exchange.asset.schema import HumanAsset
from ...exchange.wire.jobs import JOB_SPECS
from .base import JobContext, JobKind, job_rig, load_body_model, require


class BodyKind(JobKind):
    spec = JOB_SPECS["body"]
    pipeline = "strata.core.pipelines.body"
    stages = ("body_model",)

    def run(self, ctx: JobContext) -> HumanAsset:
        pipeline = require(self.pipeline, self.name)
        model = load_body_model(ctx, *job_rig(ctx, self.name), self.name)
        with ctx.env.torch_threads():
            return pipeline.build_body(model, ctx.params, ctx.progress)
