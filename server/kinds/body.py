"""`body`: a rigged, textured body from shape parameters (anny), via strata.core.pipelines.body.

The pipeline and the body-model registry are imported inside the job, so the server starts and
serves every other kind while they are absent. The model (one per rig and device) is kept warm in the
server's ModelCache; `release` also clears the registry's own cache so the memory really goes.

Contract with core (owned by the body engineers):
    strata.core.body.registry.get_body_model(name, rig, *, device) -> BodyModel   (BodyModelError if it cannot)
    strata.core.body.registry.clear_body_model_cache()
    strata.core.pipelines.body.build_body(model, params: dict, progress: Progress) -> HumanAsset
"""

from __future__ import annotations

from ...exchange.asset.schema import HumanAsset
from ...exchange.wire.jobs import JOB_SPECS
from ...exchange.wire.protocol import ErrorCode
from .base import JobContext, JobError, JobKind, compute_device, missing, require

PIPELINE = "strata.core.pipelines.body"
REGISTRY = "strata.core.body.registry"
BODY_MODEL = "anny"


class BodyKind(JobKind):
    spec = JOB_SPECS["body"]

    def unavailable(self) -> str | None:
        return missing(PIPELINE, REGISTRY)

    def run(self, ctx: JobContext) -> HumanAsset:
        pipeline = require(PIPELINE, self.name)
        registry = require(REGISTRY, self.name)
        rig, device = ctx.params["rig"], compute_device()
        key = f"body/{BODY_MODEL}/{rig}/{device}"
        if key not in ctx.models.loaded():
            ctx.progress.report("load_model", 0.0, f"loading the {BODY_MODEL} body model ({rig} rig, {device})")
        base = require("strata.core.body.base", self.name)
        try:
            model = ctx.models.get(key, lambda: registry.get_body_model(BODY_MODEL, rig, device=device),
                                   on_release=registry.clear_body_model_cache)
        except base.BodyModelError as exc:
            raise JobError(ErrorCode.UNAVAILABLE, str(exc), {"model": BODY_MODEL, "rig": rig}) from exc
        return pipeline.build_body(model, ctx.params, ctx.progress)
