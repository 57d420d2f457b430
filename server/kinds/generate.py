"""`generate`: a layered human from layer choices and a seed, via strata.core.pipelines.generate.

The registry's `garments` backend (`procedural`: the garment library of core/garments) dresses a body (anny,
or the user's SMPL-X with ``body_model``) layer by layer. The pipeline is imported inside the job, so the
server serves every other kind while it is absent.
"""

from __future__ import annotations

from ...exchange.asset.schema import HumanAsset
from ...exchange.wire.jobs import JOB_SPECS
from ...exchange.wire.protocol import ErrorCode
from .base import JobContext, JobError, JobKind, job_rig, load_body_model, require


class GenerateKind(JobKind):
    spec = JOB_SPECS["generate"]
    pipeline = "strata.core.pipelines.generate"
    stages = ("body_model", "garments")

    def run(self, ctx: JobContext) -> HumanAsset:
        pipeline = require(self.pipeline, self.name)
        # 1. The layer choices, refused before any model loads when they do not make one human.
        try:
            pipeline.parse_layers(ctx.params["layers"], ctx.params["colors"])
        except ValueError as exc:
            param = "colors" if "colour" in str(exc) else "layers"
            raise JobError(ErrorCode.INVALID_PARAMS, f"generate.{param}: {exc}", {"param": param}) from exc
        # 2. The body model (warm in the model cache after the first job).
        model = load_body_model(ctx, *job_rig(ctx, self.name), self.name)
        # 3. Dress it.
        with ctx.env.torch_threads():
            return pipeline.generate_layered(model, ctx.params, ctx.progress, env=ctx.env)
