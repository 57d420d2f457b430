"""What the server tells clients in `welcome`: runnable job kinds, backends per stage, device, memory, models.

Everything about backends comes from the one registry (:mod:`strata.core.backends`): each backend answers
for itself whether it can run under the server's :class:`~strata.core.compute.ComputeEnv`, with the
reason when it cannot. Resolving the environment means importing torch (seconds), and a hello must answer
in milliseconds, so a `Probe` resolves it in a background thread started with the server; until it is done,
`welcome` carries the answers that need no device (`probe: "running"`), and the worker waits for it before
the first job.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from ..core.backends import REGISTRY
from ..core.cache import ModelCache
from ..core.compute import ComputeEnv
from ..exchange.wire.jobs import spec_to_dict
from ..exchange.wire.protocol import PROTOCOL_MINOR, SUPPORTED_VERSIONS
from .config import ServerConfig
from .kinds import JobKind
from .logs import log_event
from .models import memory_report
from .version import SERVER_VERSION


class Probe:
    """The server's compute environment and the backends' availability under it, found once in the
    background (``ComputeEnv.resolve`` imports torch to look for CUDA)."""

    def __init__(self, config: ServerConfig, log: logging.Logger) -> None:
        self.config = config
        self.log = log
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self.env: ComputeEnv | None = None
        self.error = ""
        self.backends: dict[str, Any] = {}

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="strata-probe", daemon=True)
                self._thread.start()

    @property
    def state(self) -> str:
        return "done" if self._done.is_set() else ("running" if self._thread is not None else "not started")

    def wait(self, timeout: float | None = None) -> ComputeEnv:
        """The resolved environment (the worker calls this before its first job)."""
        self.start()
        self._done.wait(timeout)
        return self.env or self._fallback()

    def _fallback(self) -> ComputeEnv:
        return ComputeEnv(weights_dir=self.config.weights_dir, smplx_dir=self.config.smplx_dir)

    def _run(self) -> None:
        try:
            self.env = ComputeEnv.resolve(self.config.device, self.config.dtype, weights_dir=self.config.weights_dir,
                                          smplx_dir=self.config.smplx_dir, threads=self.config.threads)
        except Exception as exc:  # a broken torch or driver: say so, and run on the CPU
            self.error = f"{type(exc).__name__}: {exc}"
            self.env = self._fallback()
        try:
            self.backends = REGISTRY.report(self.env)
        except Exception as exc:  # a broken optional backend must not take the server down
            self.error = self.error or f"{type(exc).__name__}: {exc}"
        self._done.set()
        ready = {stage: [b for b, v in found.items() if v["ok"]] for stage, found in self.backends.items()}
        log_event(self.log, "probe.done", device=self.env.device, dtype=self.env.dtype,
                  backends=" ".join(f"{s}={','.join(b) or '-'}" for s, b in ready.items()), error=self.error)

    def snapshot(self) -> tuple[ComputeEnv | None, dict[str, Any]]:
        """(environment, backend report) as known now: before the probe is done, the environment is None and
        the report holds what needs no device (packages, weight files)."""
        if self._done.is_set():
            return self.env, self.backends
        return None, REGISTRY.report(None)


def job_kinds(kinds: dict[str, JobKind], env: ComputeEnv | None) -> tuple[dict[str, Any], dict[str, str]]:
    """(kinds that can run here, with their specs; {kind: why not} for the others)."""
    ready, refused = {}, {}
    for name, kind in kinds.items():
        reason = kind.unavailable(env)
        if reason is None:
            ready[name] = {**spec_to_dict(kind.spec), "available": True, "unavailable_reason": ""}
        else:
            refused[name] = reason
    return ready, refused


def capabilities(*, kinds: dict[str, JobKind], models: ModelCache, probe: Probe, data_dir: str,
                 limits: dict[str, Any], queue: dict[str, Any], curve: bool) -> dict[str, Any]:
    env, backends = probe.snapshot()
    ready, refused = job_kinds(kinds, env)
    device = env.describe() if env is not None else {"type": "unknown", "name": "finding the device"}
    return {
        "server_version": SERVER_VERSION,
        "protocol_versions": list(SUPPORTED_VERSIONS),
        "protocol_minor": PROTOCOL_MINOR,
        "job_kinds": ready,
        "unavailable_kinds": refused,
        "backends": backends,
        "device": device,
        "probe": probe.state,
        "memory": memory_report(),
        "models_loaded": models.loaded(),
        "data_dir": data_dir,
        "limits": limits,
        "queue": queue,
        "curve": curve,
        "model_dirs": {"weights": str(probe.config.weights_dir or ""), "smplx": str(probe.config.smplx_dir or "")},
    }
