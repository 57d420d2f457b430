"""The CLI's job progress display on stderr: stage name, percentage, elapsed time.

On a terminal it redraws one line in place; otherwise (logs, CI, tests) it prints a line whenever the
stage changes or the stage's progress crosses another 25 %, so the output stays short but readable.
"""

from __future__ import annotations

import time
from typing import TextIO

from ..exchange.client import Event

BAR_WIDTH = 24


class ProgressBar:
    def __init__(self, stream: TextIO, title: str) -> None:
        self.stream = stream
        self.title = title
        self.tty = stream.isatty()
        self.start = time.monotonic()
        self.stage = "queued"
        self.fraction = 0.0
        self.text = ""
        self._printed: tuple[str, int] | None = None
        self._drawn = False

    def update(self, event: Event) -> None:
        if event.type == "progress":
            self.stage = str(event.fields.get("stage", ""))
            self.fraction = float(event.fields.get("fraction", 0.0))
            self.text = str(event.fields.get("text", ""))
        elif event.type == "heartbeat" and event.fields.get("state") == "queued":
            self.stage = "queued"
        elif event.type != "heartbeat":
            return
        self._draw()

    def _draw(self) -> None:
        elapsed = time.monotonic() - self.start
        pct = int(self.fraction * 100)
        if self.tty:
            filled = int(self.fraction * BAR_WIDTH)
            bar = "#" * filled + "-" * (BAR_WIDTH - filled)
            line = f"\r{self.title} {self.stage:<14} [{bar}] {pct:3d}% {elapsed:6.1f}s {self.text}"
            self.stream.write(line[: 120] + "\x1b[K")
            self._drawn = True
        else:
            key = (self.stage, pct // 25)
            if key == self._printed:
                return
            self._printed = key
            self.stream.write(f"{self.title}: {self.stage} {pct}% {elapsed:.1f}s {self.text}".rstrip() + "\n")
        self.stream.flush()

    def close(self, message: str = "") -> None:
        """End the display (newline after an in-place bar) and print `message` if given."""
        if self._drawn:
            self.stream.write("\n")
            self._drawn = False
        if message:
            self.stream.write(message + "\n")
        self.stream.flush()
