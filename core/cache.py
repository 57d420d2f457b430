"""The one model cache: every loaded model, graph, session or large precomputed buffer goes through it.

Why one: building an anny body costs seconds and ~100 MB, a MediaPipe graph a second, the diffusion
pipeline 5 GB of GPU memory. The server keeps them warm between jobs, and the user's "Free memory"
(``strata release``, the panel's button) must really drop them. Module-level caches scattered through the
code cannot be emptied from one place and silently keep a second copy per device; so there is one cache,
keyed by :func:`model_key` = (model, device, dtype), and :meth:`ModelCache.release` drops everything.

The process has one instance, :func:`process_cache`; the server uses it, and library callers get it by
default. Tests may build their own :class:`ModelCache` and pass it where a function takes ``cache=``.

A job that holds a model keeps it alive until it returns (ordinary Python references), so ``release``
never breaks a running job: it only stops the cache from keeping the model after it.
"""

from __future__ import annotations

import gc
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def model_key(model: str, device: str = "cpu", dtype: str = "float32", **options: Any) -> str:
    """The cache key of a model: ``model@device/dtype`` plus sorted options (e.g. ``rig=game_engine``).

    One key per (model, device, dtype): a GPU server never builds the same body twice, and a CPU copy
    of a model never stands in for the GPU one."""
    extra = "".join(f";{k}={options[k]}" for k in sorted(options) if options[k] is not None)
    return f"{model}@{device}/{dtype}{extra}"


class ModelCache:
    """Thread-safe get-or-load cache: one load per key even when two threads ask at once."""

    def __init__(self) -> None:
        self._models: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}

    def get(self, key: str, loader: Callable[[], T]) -> T:
        """The model for ``key``, calling ``loader()`` the first time."""
        with self._lock:
            if key in self._models:
                return self._models[key]
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:  # other keys and cache hits are not blocked while this one loads
            with self._lock:
                if key in self._models:
                    return self._models[key]
            model = loader()
            with self._lock:
                self._models[key] = model
                self._loading.pop(key, None)
            return model

    def lru(self, name: str, size: int) -> BoundedCache:
        """A small least-recently-used cache kept *in* this cache under ``name``, for derived buffers keyed by
        content (UV layouts, edge topologies): bounded, so meshes that change every job cannot grow it
        without limit, and dropped by :meth:`release` with everything else."""
        return self.get(model_key(name, size=size), lambda: BoundedCache(size))

    def peek(self, key: str) -> Any | None:
        """The model for ``key`` if it is loaded, else None (never loads)."""
        with self._lock:
            return self._models.get(key)

    def __contains__(self, key: str) -> bool:
        with self._lock:
            return key in self._models

    def loaded(self) -> list[str]:
        """Keys of the models held now."""
        with self._lock:
            return sorted(self._models)

    def release(self) -> list[str]:
        """Drop every model, collect the garbage and give freed GPU memory back to the driver.

        Returns the keys that were held. Nothing is closed explicitly: a running job may still hold a
        model, and its native resources go with its last reference."""
        with self._lock:
            held = dict(self._models)
            self._models.clear()
        keys = sorted(held)
        held.clear()
        gc.collect()
        torch = sys.modules.get("torch")  # never import torch just to release nothing
        if torch is not None and torch.cuda.is_available():
            torch.cuda.empty_cache()
        return keys


class BoundedCache:
    """A thread-safe LRU of at most ``size`` entries (see :meth:`ModelCache.lru`)."""

    def __init__(self, size: int) -> None:
        self.size = max(1, int(size))
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any, loader: Callable[[], T]) -> T:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = loader()  # outside the lock: a slow build does not block other keys
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._items)


_PROCESS_CACHE = ModelCache()


def process_cache() -> ModelCache:
    """The process's model cache (the server's, and the default of every ``cache=`` argument)."""
    return _PROCESS_CACHE
