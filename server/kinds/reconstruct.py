"""`reconstruct`: a rigged, textured human from one photo, via strata.core.pipelines.reconstruct.

Imported inside the job (the pipeline pulls in torch and the vision models); it gets the server's compute
environment and the model cache, and builds each stage's backend through the registry.
"""

from __future__ import annotations

from ...exchange.asset.schema import HumanAsset
from ...exchange.wire.jobs import JOB_SPECS
from ...exchange.wire.protocol import ErrorCode
from .base import JobContext, JobError, JobKind, job_rig, require


class ReconstructKind(JobKind):
    spec = JOB_SPECS["reconstruct"]
    pipeline = "strata.core.pipelines.reconstruct"
    stages = ("segmentation", "pose", "body_model", "rasterizer", "body_fit", "surface", "texture", "rig",
              "garments")

    def run(self, ctx: JobContext) -> HumanAsset:
        pipeline = require(self.pipeline, self.name)
        job_rig(ctx, self.name)  # an anny rig asked for on an SMPL-X body: refused before any work
        image, views = ctx.input("image"), ctx.input("views")
        if (image is None) == (views is None):
            raise JobError(ErrorCode.INVALID_INPUT, "reconstruct takes either a photo (input 'image') or six views "
                           "(input 'views'), exactly one of them", {"inputs": sorted(ctx.inputs)})
        if views is not None:  # the views path: body prior on all views, carving, every view's colours
            return pipeline.reconstruct(bytes(views.data), ctx.params, ctx.progress, env=ctx.env, cache=ctx.models,
                                        steps=pipeline.view_steps(ctx.params))
        return pipeline.reconstruct(bytes(image.data), ctx.params, ctx.progress, env=ctx.env, cache=ctx.models)
