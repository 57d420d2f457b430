"""What the server tells clients in `welcome`: job kinds, backends per stage, device, memory, models.

Finding the device and the backends means importing torch and the core stage packages, which takes
seconds; a hello must answer in milliseconds. So a `Probe` runs once in a background thread (started
by the first hello) and `welcome` carries whatever it has found so far (`probe: "running"|"done"`).
Every stage is optional: a stage package that is absent or fails to import is reported, not fatal.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from ..exchange.wire.jobs import spec_to_dict
from ..exchange.wire.protocol import SUPPORTED_VERSIONS
from .kinds import JobKind
from .kinds.base import module_exists
from .logs import log_event
from .models import ModelCache, memory_report
from .version import SERVER_VERSION


def _availability(value: Any) -> dict[str, Any]:
    """core's Availability (ok + reason), a bool, or anything truthy, as {"ok": bool, "reason": str}."""
    return {"ok": bool(value), "reason": str(getattr(value, "reason", "") or "")}


def _segmentation() -> dict[str, Any]:
    module = importlib.import_module("strata.core.segmentation")
    return {name: _availability(a) for name, a in module.segmenter_availability().items()}


def _pose() -> dict[str, Any]:
    module = importlib.import_module("strata.core.pose")
    return {"mediapipe": _availability(module.mediapipe_pose_availability())}


def _render() -> dict[str, Any]:
    module = importlib.import_module("strata.core.render.registry")
    return {"torch": _availability(True), "nvdiffrast": _availability(module.nvdiffrast_available())}


def _generic(package: str) -> Callable[[], dict[str, Any]]:
    """Stages without a dedicated probe: `available_backends()` if the package defines it."""

    def probe() -> dict[str, Any]:
        module = importlib.import_module(package)
        fn = getattr(module, "available_backends", None)
        if not callable(fn):
            return {}
        found = fn()
        if isinstance(found, dict):
            return {str(name): _availability(a) for name, a in found.items()}
        return {str(name): _availability(True) for name in found}

    return probe


STAGES: dict[str, tuple[str, Callable[[], dict[str, Any]]]] = {
    "segmentation": ("strata.core.segmentation", _segmentation),
    "pose": ("strata.core.pose", _pose),
    "render": ("strata.core.render", _render),
    "body": ("strata.core.body", _generic("strata.core.body")),
}
"""Stage -> (package, probe). The probe returns {backend: {"ok": bool, "reason": str}}."""


def detect_device() -> dict[str, Any]:
    if not module_exists("torch"):
        return {"type": "cpu", "name": "torch not installed"}
    import torch

    if torch.cuda.is_available():
        index = torch.cuda.current_device()
        return {"type": "cuda", "name": torch.cuda.get_device_name(index), "index": index,
                "count": torch.cuda.device_count(), "torch": torch.__version__}
    return {"type": "cpu", "name": "cpu", "torch": torch.__version__}


class Probe:
    """Device and backends, found once in the background."""

    def __init__(self, log: logging.Logger) -> None:
        self.log = log
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.device: dict[str, Any] = {"type": "unknown", "name": "probing"}
        self.backends: dict[str, Any] = {}
        self.done = False

    def start(self) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="strata-probe", daemon=True)
                self._thread.start()

    @property
    def state(self) -> str:
        return "done" if self.done else ("running" if self._thread is not None else "not started")

    def _run(self) -> None:
        try:
            self.device = detect_device()
        except Exception as exc:
            self.device = {"type": "unknown", "name": f"device probe failed: {exc}"}
        backends: dict[str, Any] = {}
        for stage, (package, probe) in STAGES.items():
            if not module_exists(package):
                backends[stage] = {"installed": False, "backends": {}}
                continue
            try:
                backends[stage] = {"installed": True, "backends": probe()}
            except Exception as exc:  # a broken optional stage must not take the server down
                backends[stage] = {"installed": True, "backends": {}, "error": f"{type(exc).__name__}: {exc}"}
        self.backends = backends
        self.done = True
        log_event(self.log, "probe.done", device=self.device.get("name", ""),
                  stages=",".join(s for s, b in backends.items() if b.get("installed")))


def job_kinds(kinds: dict[str, JobKind]) -> dict[str, Any]:
    out = {}
    for name, kind in kinds.items():
        reason = kind.unavailable()
        out[name] = {**spec_to_dict(kind.spec), "available": reason is None, "unavailable_reason": reason or ""}
    return out


def capabilities(*, kinds: dict[str, JobKind], models: ModelCache, probe: Probe, data_dir: str,
                 limits: dict[str, Any], queue: dict[str, Any], curve: bool,
                 model_dirs: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "server_version": SERVER_VERSION,
        "protocol_versions": list(SUPPORTED_VERSIONS),
        "job_kinds": job_kinds(kinds),
        "backends": probe.backends,
        "device": probe.device,
        "probe": probe.state,
        "memory": memory_report(),
        "models_loaded": models.loaded(),
        "data_dir": data_dir,
        "limits": limits,
        "queue": queue,
        "curve": curve,
        "model_dirs": model_dirs or {},
    }
