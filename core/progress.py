"""Progress reporting and cancellation for long computations, without any dependency.

Pipelines take a `Progress` and call `report(stage, fraction, text)` between stages and inside long
loops. The server's implementation forwards reports to the client and raises `Cancelled` from
`report` (or `check`) once the user cancelled, so a cancel takes effect at the next report.
"""

from __future__ import annotations

import time


class Cancelled(Exception):
    """The job was cancelled by its user; pipelines let it propagate."""


class Progress:
    """Base: records the stage timings; subclasses forward reports and decide on cancellation."""

    def __init__(self) -> None:
        self.stage = ""
        self.timings: dict[str, float] = {}
        self._stage_start = time.perf_counter()

    def report(self, stage: str, fraction: float, text: str = "") -> None:
        """Report progress of `stage` (fraction in [0, 1] within that stage)."""
        now = time.perf_counter()
        if stage != self.stage:
            if self.stage:
                self.timings[self.stage] = self.timings.get(self.stage, 0.0) + now - self._stage_start
            self.stage = stage
            self._stage_start = now
        self.check()
        self.emit(stage, min(max(float(fraction), 0.0), 1.0), text)

    def finish(self) -> dict[str, float]:
        """Close the current stage and return {stage: seconds}."""
        if self.stage:
            self.timings[self.stage] = self.timings.get(self.stage, 0.0) + time.perf_counter() - self._stage_start
            self.stage = ""
        return dict(self.timings)

    def check(self) -> None:
        """Raise Cancelled if the work should stop. The base never cancels."""

    def emit(self, stage: str, fraction: float, text: str) -> None:
        """Deliver a report. The base drops it."""


class Silent(Progress):
    """For library use and tests: timings only."""
