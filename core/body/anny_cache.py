"""anny's one-time data build, made visible.

Why: the first time a rig is used, anny builds its model data from MakeHuman's assets (~1.6 GB per rig under
``~/.cache/anny``, minutes on two cores) and caches it; afterwards the rig loads in under a second. A job that
meets that build must say so, with honest progress, instead of sitting silent at "loading"; and setup can do
the building ahead (``strata-server prepare``).

How: anny logs each builder it runs ("No cached model data found at ..., building model data..." then "Saved
built model data ..."). A logging handler on anny's logger turns those into steps, and a heartbeat thread
reports the step and the elapsed time every few seconds while one runs. Nothing is reported when anny finds
its cache (the usual case), so the wrapper costs nothing then.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from ..progress import Cancelled, Progress

#: The logger anny's builders write to (``anny.models.model_data`` and its siblings).
ANNY_LOGGER = "anny"
#: Builders a rig's first use may run: MakeHuman's data, the rig's model data, its compact form.
BUILDERS = 3
#: Seconds between reports while a builder runs.
HEARTBEAT_S = 2.0
STEP_TITLES = {"load_data": "reading MakeHuman's assets", "build_model_data": "building the rig's model data",
               "build_compact_model_data": "compacting it"}


class _BuildLog(logging.Handler):
    """Follows anny's builders from its log lines. They nest (the compact data is built from the model data,
    built from MakeHuman's assets), so the one at work is the innermost started and not yet saved."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.guard = threading.Lock()
        self.running: list[tuple[str, float]] = []
        self.done = 0

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        with self.guard:
            if message.startswith("No cached model data found"):
                found = re.search(r"/(\w+?)_[0-9a-f]{8,}\.safetensors", message)
                self.running.append((found.group(1) if found else "model data", time.monotonic()))
            elif message.startswith("Saved built model data") and self.running:
                self.running.pop()
                self.done += 1
                if self.running:  # the outer builder's own work starts now
                    self.running[-1] = (self.running[-1][0], time.monotonic())


@contextmanager
def visible_build(progress: Progress, stage: str, rig: str, every: float = HEARTBEAT_S) -> Iterator[None]:
    """Report anny's one-time builds that happen inside the block under ``stage`` (nothing when none does).

    A cancel the heartbeat meets cannot stop anny mid-build (its builders are one blocking call): it is
    raised when the block ends, so the job stops right after the build and the next job finds it cached."""
    log, logger = _BuildLog(), logging.getLogger(ANNY_LOGGER)
    level, stop = logger.level, threading.Event()
    cancelled: list[Cancelled] = []

    def heartbeat() -> None:
        while not stop.wait(every):
            with log.guard:
                if not log.running:
                    continue
                (current, since), done = log.running[-1], log.done
            step = STEP_TITLES.get(current, current.replace("_", " "))
            try:
                progress.report(stage, min(done / BUILDERS, 0.95),
                                f"first use of the {rig} rig: anny builds its data once (about 1.6 GB, a minute "
                                f"or more), step {done + 1} of up to {BUILDERS}: {step}, "
                                f"{time.monotonic() - since:.0f} s")
            except Cancelled as exc:
                cancelled.append(exc)
                return

    logger.addHandler(log)
    if level == logging.NOTSET or level > logging.INFO:
        logger.setLevel(logging.INFO)
    thread = threading.Thread(target=heartbeat, name="anny-build-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        logger.removeHandler(log)
        logger.setLevel(level)
    if cancelled:
        raise cancelled[0]
