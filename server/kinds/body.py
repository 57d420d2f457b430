"""`body`: a rigged, textured body from shape parameters (anny), via strata.core.pipelines.body.

The pipeline is imported inside the job, so the server starts and serves every other kind while it is
absent. The body model comes from the backend registry on the server's compute environment and stays warm
in the model cache (one per rig, device and dtype) until the user releases it.
"""

from __future__ import annotations

from ...core.errors import UnavailableError
from ...exchange.asset.schema import HumanAsset
from ...exchange.wire.jobs import JOB_SPECS
from ...exchange.wire.protocol import ErrorCode
from .base import JobContext, JobError, JobKind, require

BODY_MODEL = "anny"


class BodyKind(JobKind):
    spec = JOB_SPECS["body"]
    pipeline = "strata.core.pipelines.body"
    stages = ("body_model",)

    def run(self, ctx: JobContext) -> HumanAsset:
        pipeline = require(self.pipeline, self.name)
        body = require("strata.core.body", self.name)
        rig = ctx.params["rig"]
        key = body.body_model_key(BODY_MODEL, rig, ctx.env)
        if key not in ctx.models:
            ctx.progress.report("load_model", 0.0, f"loading the {BODY_MODEL} body model ({rig} rig, {ctx.env.device})")
        try:
            model = body.get_body_model(BODY_MODEL, rig, env=ctx.env, cache=ctx.models)
        except UnavailableError as exc:
            raise JobError(ErrorCode.UNAVAILABLE, str(exc), {"model": BODY_MODEL, "rig": rig}) from exc
        with ctx.env.torch_threads():
            return pipeline.build_body(model, ctx.params, ctx.progress)
