"""`generate`: a layered human from layer choices and a seed, via strata.core.pipelines.generate.

The registry's `garments` backend (`procedural`: the garment library of core/garments) dresses a body
(anny) layer by layer. The pipeline is imported inside the job, so the server serves every other kind while
it is absent.
"""

from __future__ import annotations

from ...core.errors import UnavailableError
from ...exchange.asset.schema import HumanAsset
from ...exchange.wire.jobs import JOB_SPECS
from ...exchange.wire.protocol import ErrorCode
from .base import JobContext, JobError, JobKind, require

BODY_MODEL = "anny"


class GenerateKind(JobKind):
    spec = JOB_SPECS["generate"]
    pipeline = "strata.core.pipelines.generate"
    stages = ("body_model", "garments")

    def run(self, ctx: JobContext) -> HumanAsset:
        pipeline = require(self.pipeline, self.name)
        body = require("strata.core.body", self.name)
        rig = ctx.params["rig"]
        # 1. The layer choices, refused before any model loads when they do not make one human.
        try:
            pipeline.parse_layers(ctx.params["layers"], ctx.params["colors"])
        except ValueError as exc:
            raise JobError(ErrorCode.INVALID_PARAMS, f"generate.layers: {exc}", {"param": "layers"}) from exc
        # 2. The body model (warm in the model cache after the first job).
        if body.body_model_key(BODY_MODEL, rig, ctx.env) not in ctx.models:
            ctx.progress.report("load_model", 0.0, f"loading the {BODY_MODEL} body model ({rig} rig)")
        try:
            model = body.get_body_model(BODY_MODEL, rig, env=ctx.env, cache=ctx.models)
        except UnavailableError as exc:
            raise JobError(ErrorCode.UNAVAILABLE, str(exc), {"model": BODY_MODEL, "rig": rig}) from exc
        # 3. Dress it.
        with ctx.env.torch_threads():
            return pipeline.generate_layered(model, ctx.params, ctx.progress, env=ctx.env)
