"""`echo`: the diagnostic job. Returns its input asset unchanged, or a tiny synthetic one.

It measures transport (bench/transport.py: the input's frames go back out as they came in, no copy,
no re-encoding, and its provenance is left alone because the result IS the input), and it tests
progress, cancellation (`hold`) and job errors (`fail`) without any model installed.
"""

from __future__ import annotations

import time

from ...exchange.asset.schema import HumanAsset
from ...exchange.asset.synthetic import make_asset
from ...exchange.wire.jobs import JOB_SPECS
from .base import Encoded, JobContext, JobError, JobKind

TICK = 0.1
"""Progress reports per second while holding: 10, so a cancel takes effect within 0.1 s."""


class EchoKind(JobKind):
    spec = JOB_SPECS["echo"]

    def run(self, ctx: JobContext) -> HumanAsset | Encoded:
        progress = ctx.progress
        hold: float = ctx.params["hold"]
        if hold > 0:
            start = time.monotonic()
            while (held := time.monotonic() - start) < hold:
                progress.report("hold", held / hold, f"{hold - held:.1f} s left")
                time.sleep(min(TICK, hold - held))
            progress.report("hold", 1.0, "")
        if ctx.params["fail"]:
            code = ctx.params["fail"]
            raise JobError(code, f"echo failed on request with code {code!r}", {"requested": True})
        source = ctx.input("asset")
        progress.report("echo", 1.0, "returning the input" if source else "returning a synthetic asset")
        if source is not None:
            return Encoded(source.frames)
        return make_asset(n_layers=1, vertices_per_layer=200)
