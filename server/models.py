"""Models loaded once and kept warm across jobs, and the memory figures the server reports.

Loading a body model or a segmentation network takes seconds, so the server keeps them for the
whole process instead of per job; `release()` is the user's "free my GPU" button (Dream Textures'
"Release Generator", without killing the process).
"""

from __future__ import annotations

import gc
import os
import sys
import threading
from collections.abc import Callable
from typing import Any


class ModelCache:
    """Thread-safe get-or-load cache. The worker loads, the socket loop may release at any time: a job
    that holds a model keeps it alive until it returns (Python references), so release never breaks a
    running job, it only stops the cache from keeping the model after it."""

    def __init__(self) -> None:
        self._models: dict[str, Any] = {}
        self._on_release: dict[str, Callable[[], Any]] = {}
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}

    def get(self, key: str, loader: Callable[[], Any], on_release: Callable[[], Any] | None = None) -> Any:
        """The model for `key`, calling `loader()` the first time (once, even if two threads ask).
        `on_release` runs when the model is released: for loaders that keep a cache of their own."""
        if on_release is not None:
            with self._lock:
                self._on_release[key] = on_release
        with self._lock:
            if key in self._models:
                return self._models[key]
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:
            with self._lock:
                if key in self._models:
                    return self._models[key]
            model = loader()
            with self._lock:
                self._models[key] = model
                self._loading.pop(key, None)
            return model

    def loaded(self) -> list[str]:
        with self._lock:
            return sorted(self._models)

    def release(self) -> list[str]:
        """Drop every cached model and give freed GPU memory back to the driver; returns their keys."""
        with self._lock:
            keys = sorted(self._models)
            self._models.clear()
            hooks = list(dict.fromkeys(self._on_release.values()))  # each hook once
            self._on_release.clear()
        for hook in hooks:
            hook()
        gc.collect()
        torch = sys.modules.get("torch")  # never import torch just to release nothing
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()
        return keys


def process_rss_bytes() -> int:
    """Resident set size of this process (Linux /proc; peak RSS elsewhere as an approximation)."""
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak if sys.platform == "darwin" else peak * 1024


def memory_report() -> dict[str, Any]:
    """{"rss_bytes": ..., and with torch+CUDA loaded: "gpu_free_bytes", "gpu_total_bytes", "gpu_allocated_bytes"}."""
    report: dict[str, Any] = {"rss_bytes": process_rss_bytes()}
    torch = sys.modules.get("torch")
    if torch is not None:
        try:
            if torch.cuda.is_available():
                free, total = torch.cuda.mem_get_info()
                report.update(gpu_free_bytes=int(free), gpu_total_bytes=int(total),
                              gpu_allocated_bytes=int(torch.cuda.memory_allocated()))
        except Exception as exc:  # a broken driver must not break status requests
            report["gpu_error"] = str(exc)
    return report
