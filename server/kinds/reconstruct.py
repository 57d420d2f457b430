"""`reconstruct`: a rigged, textured human from one photo, via strata.core.pipelines.reconstruct.

Imported inside the job (the pipeline pulls in torch and the vision models); it gets the
ModelCache itself so it can keep each of its models warm under its own keys.

Contract with core (owned by the reconstruction engineers):
    strata.core.pipelines.reconstruct.reconstruct(image_bytes: bytes, params: dict,
                                                  progress: Progress, models: ModelCache) -> HumanAsset
"""

from __future__ import annotations

from ...exchange.asset.schema import HumanAsset
from ...exchange.wire.jobs import JOB_SPECS
from ...exchange.wire.protocol import ErrorCode
from .base import JobContext, JobError, JobKind, missing, require

PIPELINE = "strata.core.pipelines.reconstruct"


class ReconstructKind(JobKind):
    spec = JOB_SPECS["reconstruct"]

    def unavailable(self) -> str | None:
        return missing(PIPELINE)

    def run(self, ctx: JobContext) -> HumanAsset:
        pipeline = require(PIPELINE, self.name)
        image = ctx.input("image")
        if image is None:  # the spec marks it required, so the server already refused such a submit
            raise JobError(ErrorCode.INVALID_INPUT, "reconstruct needs an image input")
        return pipeline.reconstruct(bytes(image.data), ctx.params, ctx.progress, ctx.models)
