"""What the panel shows, kept as plain Python: connection status, the running job, the last problem.

`Session.apply(update)` folds the connection's updates (connection.py) into this state on the main
thread; the panel only reads it. Errors are turned into plain words plus what to do about them here,
in one table, so every operator and the batch script explain a failure the same way. No bpy.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .connection import Update, refusal

ADVICE: dict[str, str] = {
    "server_unavailable": "Start one: with 'Run the server on this computer' ticked in the add-on preferences, "
                          "Connect starts it; or run `strata-server` in a terminal. Check the address there too.",
    "server_exited": "The local server stopped while starting. Open its log (shown in the Server panel) to see why; "
                     "usually the server environment path in the preferences is wrong or incomplete.",
    "server_setup": "Fix that in Edit > Preferences > Add-ons > Strata, then press Start again.",
    "server_lost": "Otherwise press Connect (or start the server again) and run the job again.",
    "unknown_job_kind": "This server is older than the add-on and does not know this job. Update the Strata server.",
    "unavailable": "The server lacks the models or packages for this job. Install them on the server "
                   "(see its log), or choose another mode.",
    "no_generate": "Update the Strata server to make them; meanwhile use the 'Photo' or 'Body' mode.",
    "invalid_params": "A setting is out of range for this server. Reset it to its default and run again.",
    "invalid_input": "The photo could not be read. Use a PNG, JPEG or WebP photo of one person.",
    "too_large": "The input is larger than the server accepts. Use a smaller photo.",
    "no_person": "Use a photo in which one person is fully visible, against a plain or uncluttered background.",
    "several_people": "Several people are in the photo. Crop it to one person, or untick 'strict'.",
    "busy": "The server's queue is full. Wait for running jobs to finish, then run again.",
    "cancelled": "The job was cancelled; nothing was imported.",
    "bad_result": "The server sent a result this add-on cannot read. Update the add-on and the server to the same "
                  "version.",
    "no_photo": "Pick a photo first (the folder icon next to 'Photo').",
    "unsupported_version": "The add-on and the server speak different protocol versions. Update both.",
    "shutting_down": "The server is shutting down. Start it again, then run again.",
    "out_of_memory": "The GPU ran out of memory. Press 'Free Memory', pick a faster quality preset, or close "
                     "other GPU programs.",
}
"""Error code -> what the user can do. Codes not listed get the generic advice."""

#: Problems about the inputs the user picks: a new photo, or another mode, makes them stale.
INPUT_PROBLEMS = frozenset({"no_photo", "invalid_input", "too_large", "no_person", "several_people",
                            "invalid_params", "no_generate", "unavailable", "cancelled"})

#: Model-cache names the panel shows, in words (the others are the pipeline's internals).
MODEL_WORDS = {"body_model/anny": "anny body", "body_model/smplx": "SMPL-X body", "pose/mediapipe": "MediaPipe pose",
               "segmentation/mediapipe": "MediaPipe person mask", "segmentation/rembg": "rembg person mask",
               "multiview/pshuman": "PSHuman views"}

GENERIC_ADVICE = "See the server log for details, then run again. If it keeps failing, report it with the log."


@dataclass
class Problem:
    """A failure in plain words: what happened and what to do."""

    code: str
    message: str
    advice: str

    @property
    def text(self) -> str:
        return f"{self.message} {self.advice}".strip()

    @property
    def about_inputs(self) -> bool:
        """Whether the user's next choice of photo or mode makes this problem stale."""
        return self.code in INPUT_PROBLEMS


def explain(code: str, message: str, detail: dict[str, Any] | None = None) -> Problem:
    advice = ADVICE.get(code, GENERIC_ADVICE)
    reason = (detail or {}).get("reason") or (detail or {}).get("unavailable_reason")
    if code == "unavailable" and reason:
        advice = f"{advice} ({reason})"
    message = message.strip() or code.replace("_", " ")
    if message[-1] not in ".!?)":
        message += "."
    return Problem(code, message[0].upper() + message[1:], advice)


@dataclass
class JobView:
    """The job the panel follows."""

    job_id: str
    kind: str
    token: int
    started: float = field(default_factory=time.monotonic)
    last_heard: float = field(default_factory=time.monotonic)
    stage: str = "queued"
    fraction: float = 0.0
    text: str = ""
    state: str = "queued"
    cancelling: bool = False
    """The user asked to cancel; the server stops it at its next progress step."""

    @property
    def heartbeat_age(self) -> float:
        return time.monotonic() - self.last_heard

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started


@dataclass
class Session:
    """Main-thread state of one connection."""

    address: str = ""
    connected: bool = False
    connecting: bool = False
    welcome: dict[str, Any] = field(default_factory=dict)
    problem: Problem | None = None
    jobs: dict[str, JobView] = field(default_factory=dict)
    """Accepted jobs that have not finished, by id."""
    waiting: dict[int, str] = field(default_factory=dict)
    """Submitted but not yet accepted: token -> job kind."""
    finished: dict[int, Update] = field(default_factory=dict)
    """Terminal update (result or failed) per token, for callers that wait on a token."""
    last_released: dict[str, Any] = field(default_factory=dict)
    notice: str = ""
    """News that is not a problem (a job cancelled as asked), shown until the next job."""

    # -- updates ------------------------------------------------------------------------------

    def apply(self, update: Update) -> Update | None:
        """Fold one update in; returns it when it is a result the caller must import."""
        kind, data = update.kind, update.data
        if kind == "connecting":
            self.connecting = True
        elif kind == "connected":
            self.connected, self.connecting = True, False
            self.welcome = dict(data)
            if self.problem is not None and self.problem.code in ("server_unavailable", "server_exited",
                                                                  "server_lost"):
                self.problem = None
        elif kind == "disconnected":
            self.connected, self.connecting = False, False
            if self.problem is None or self.problem.code != "server_lost":  # a lost job says more: keep it
                self.problem = explain(str(data.get("code", "server_unavailable")), str(data.get("message", "")))
        elif kind == "accepted":
            token = int(data["token"])
            self.waiting.pop(token, None)
            self.jobs[update.job_id] = JobView(update.job_id, str(data.get("kind", "")), token)
            self.problem, self.notice = None, ""
        elif kind in ("progress", "heartbeat"):
            job = self.jobs.get(update.job_id)
            if job is not None:
                job.last_heard = time.monotonic()
                job.stage = str(data.get("stage") or job.stage)
                if kind == "progress":
                    job.fraction = float(data.get("fraction", job.fraction))
                    job.text = str(data.get("text", ""))
                    job.state = "running"
                else:
                    job.state = str(data.get("state", job.state))
        elif kind == "result":
            job = self.jobs.pop(update.job_id, None)
            if job is not None:
                self.finished[job.token] = update
            return update
        elif kind == "failed":
            token = data.get("token")
            job = self.jobs.pop(update.job_id, None) if update.job_id else None
            if job is not None:
                token = job.token
            if isinstance(token, int):
                self.waiting.pop(token, None)
                self.finished[token] = update
            code = str(data.get("code", "job_failed"))
            if code == "unknown_job_kind" and data.get("kind") == "generate":
                code = "no_generate"
            if code == "cancelled":  # what the user asked for: news, not an error
                self.notice = ADVICE["cancelled"]
            else:
                self.problem = explain(code, str(data.get("message", "")), data.get("detail"))
        elif kind == "released":
            self.last_released = dict(data)
        return None

    def expect(self, token: int, kind: str) -> None:
        self.waiting[token] = kind

    def fail(self, code: str, message: str, detail: dict[str, Any] | None = None) -> Problem:
        """Record a problem found on the main thread (before anything was sent)."""
        self.problem = explain(code, message, detail)
        return self.problem

    def stopped_server(self) -> None:
        """The user stopped the server this Blender runs: its jobs end with it (no connection is left to say
        so), which the panel tells as news, not as an error."""
        lost = len(self.jobs) + len(self.waiting)
        self.jobs.clear()
        self.waiting.clear()
        self.connected = False
        if lost:
            self.notice = ("The server was stopped; the job that was running ended with it (nothing was "
                           "imported). Start the server to run it again." if lost == 1 else
                           f"The server was stopped; the {lost} jobs that were running ended with it.")

    # -- questions the panel and the operators ask --------------------------------------------

    @property
    def busy(self) -> bool:
        return bool(self.jobs or self.waiting)

    @property
    def current(self) -> JobView | None:
        """The most recently accepted unfinished job."""
        return next(reversed(self.jobs.values()), None) if self.jobs else None

    def job_kinds(self) -> dict[str, Any]:
        kinds = self.welcome.get("capabilities", {}).get("job_kinds", {})
        if isinstance(kinds, list):  # an older server may list names only
            return {name: {} for name in kinds}
        return kinds if isinstance(kinds, dict) else {}

    def supports(self, kind: str) -> tuple[bool, str]:
        """Whether the connected server offers `kind`, and if not, why (in words)."""
        if not self.job_kinds():
            return False, f"The server at {self.address} offers nothing to make"
        refused = refusal(self.welcome, kind)
        return (False, refused[1]) if refused is not None else (True, "")

    def backend_lines(self) -> list[tuple[str, str]]:
        """(text, state) lines from the server's registry report (protocol 1.1): per stage the backend "auto"
        will use (state "runs", or "none" when nothing can), then each backend that cannot run here with the
        server's reason (state "unavailable")."""
        report = self.welcome.get("capabilities", {}).get("backends") or {}
        lines: list[tuple[str, str]] = []
        if not isinstance(report, dict):
            return lines
        for stage, found in report.items():
            if not isinstance(found, dict) or not all(isinstance(v, dict) for v in found.values()):
                continue  # an older server's shape: nothing reliable to show
            ready = [name for name, v in found.items() if v.get("ok") and not v.get("needs")]
            ready = ready or [name for name, v in found.items() if v.get("ok")]
            label = stage.replace("_", " ").capitalize()
            lines.append((f"{label}: {ready[0] if ready else 'nothing can run'}", "runs" if ready else "none"))
            for name, v in found.items():
                if not v.get("ok"):
                    lines.append((f"{name}: {v.get('reason') or 'unavailable'}", "unavailable"))
        return lines

    def status_line(self) -> str:
        if self.connecting:
            return f"Connecting to {self.address}..."
        if not self.connected:
            return f"Not connected ({self.address})"
        caps = self.welcome.get("capabilities", {})
        device = caps.get("device", {}) or {}
        parts = [f"Connected: {self.welcome.get('server', 'server')}"]
        name = device.get("name") or device.get("type")
        if name:
            parts.append(str(name))
        memory = caps.get("memory", {}) or {}
        if "gpu_free_bytes" in memory:
            parts.append(f"{memory['gpu_free_bytes'] / 2**30:.1f} GiB GPU free")
        models = caps.get("models_loaded") or []
        # Model-cache keys ("body_model/anny@cpu/float32;rig=anny") are for logs: the panel names the models an
        # artist knows, and leaves out the pipeline's own tables (UV layouts, graphs, rasterizers).
        names = sorted({MODEL_WORDS[key] for key in (str(m).split("@")[0] for m in models) if key in MODEL_WORDS})
        parts.append(f"models: {', '.join(names)}" if names else "no models loaded")
        return " | ".join(parts)
