"""The one registry of stage backends, and the one place a backend is chosen.

Every stage of every job (person mask, 2D pose, body model, rasterizer, body fit, clothed surface,
texture; multiview generation, carving, garments and layered generation as they arrive) has backends.
Each backend is *declared* once, as data (:class:`Backend`): its stage and name, what it needs (Python
packages, a CUDA device, weight files under the server's weights folder, facts about the input such as
"the photo has a cut-out") and a dotted path to the function that builds it. From those declarations:

* :meth:`Registry.availability` answers "can it run here, and if not, why" without importing the
  backend, so ``welcome``, ``strata status`` and the panel list exactly what will run;
* :meth:`Registry.choose` makes every "auto" choice: the available backend of highest ``priority``
  whose input facts hold; a named choice that cannot run raises :class:`BackendUnavailable` with the reason;
* :meth:`Registry.build` builds the chosen backend with the job's :class:`~strata.core.compute.ComputeEnv`
  and keeps it in the :class:`~strata.core.cache.ModelCache` under (backend, device, dtype, options).

Adding a backend is one :class:`Backend` entry in :mod:`strata.core.backends` plus its builder. Import
cost: the standard library only.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import UnavailableError

if TYPE_CHECKING:
    from .cache import ModelCache
    from .compute import ComputeEnv

#: The stages, in pipeline order. Stages without a backend yet are reserved for the parts that come next.
STAGES: tuple[str, ...] = (
    "segmentation", "pose", "body_model", "rasterizer", "body_fit", "surface", "texture", "rig",
    "multiview", "carve", "garments", "layered",
)


@dataclass(frozen=True)
class Availability:
    """Whether a backend can run here, and if not, a sentence saying why (for logs and the UI)."""

    ok: bool
    reason: str = ""

    def __bool__(self) -> bool:
        return self.ok

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "reason": self.reason}


class BackendUnavailable(UnavailableError):
    """A stage backend that cannot run here, or an unknown backend name."""


@dataclass(frozen=True)
class Backend:
    """One backend of one stage, declared as data (see the module docstring)."""

    stage: str
    name: str
    summary: str
    build: str
    """``"package.module:callable"``; called as ``callable(env, **options)`` (``env`` only if it takes it)."""
    modules: tuple[str, ...] = ()
    """Python packages it imports; each missing one is a reason it cannot run."""
    install: str = ""
    """How to get the missing packages, e.g. ``pip install 'strata[gpu]'``."""
    device: str = "any"
    """``"any"`` or ``"cuda"`` (needs the server to run on a CUDA device)."""
    weights: tuple[str, ...] = ()
    """Paths under the server's weights folder that must exist (files or folders)."""
    needs: tuple[str, ...] = ()
    """Facts about the input it needs to be chosen by "auto" or at all (e.g. "cutout")."""
    priority: int = 0
    """"auto" takes the available backend with the highest priority."""
    auto_device: str = "any"
    """``"cuda"``: runs anywhere when asked for by name, but "auto" takes it only on a CUDA device (a diffusion
    model that would take an hour on a CPU is never chosen for a user who did not ask for it)."""
    check: str | None = None
    """``"module:callable"`` returning an :class:`Availability` (``env`` passed if it takes it), for needs
    the fields above cannot say (rembg's weights live in its own folder)."""
    cached: bool = True
    """Keep the built object in the model cache (models); False for cheap per-job objects."""
    reads: tuple[str, ...] = ()
    """:class:`~strata.core.compute.ComputeEnv` folders it loads files from (``"smplx_dir"``): part of its cache
    key, so models from two folders are never taken for each other."""

    def availability(self, env: ComputeEnv | None) -> Availability:
        """Whether it can run under ``env``; cheap (no backend import) except for ``check``."""
        missing = [m for m in self.modules if not _module_present(m)]
        if missing:
            how = f" ({self.install})" if self.install else ""
            return Availability(False, f"needs the Python package{'s' * (len(missing) > 1)} "
                                       f"{', '.join(missing)}{how}")
        if self.device == "cuda":
            if env is None:
                return Availability(False, "needs CUDA (the server's device is still being probed)")
            if not env.is_cuda:
                return Availability(False, f"needs CUDA (this server runs on {env.device})")
        if self.weights:
            if env is None or env.weights_dir is None:
                return Availability(False, f"needs downloaded weights ({', '.join(self.weights)}): start the "
                                           "server with --weights-dir DIR (or $STRATA_WEIGHTS_DIR)")
            absent = [w for w in self.weights if not (env.weights_dir / w).exists()]
            if absent:
                return Availability(False, f"no weights in {env.weights_dir / absent[0]}")
        if self.check is not None:
            return _call(self.check, env)
        return Availability(True)

    def cache_key(self, env: ComputeEnv, options: Mapping[str, Any]) -> str:
        from .cache import model_key

        folders = {name: str(getattr(env, name)) for name in self.reads}
        return model_key(f"{self.stage}/{self.name}", env.device, env.dtype, **options, **folders)


@dataclass
class Registry:
    """Backends by stage; see the module docstring."""

    backends: dict[str, dict[str, Backend]] = field(default_factory=dict)

    def register(self, backend: Backend) -> Backend:
        if backend.stage not in STAGES:
            raise ValueError(f"unknown stage {backend.stage!r}; stages are {STAGES}")
        stage = self.backends.setdefault(backend.stage, {})
        if backend.name in stage or backend.name == "auto":
            raise ValueError(f"backend {backend.stage}/{backend.name} is already registered (or reserved)")
        stage[backend.name] = backend
        return backend

    def of(self, stage: str) -> list[Backend]:
        """The stage's backends, best ("auto" order) first."""
        return sorted(self.backends.get(stage, {}).values(), key=lambda b: -b.priority)

    def get(self, stage: str, name: str) -> Backend:
        try:
            return self.backends[stage][name]
        except KeyError:
            known = ", ".join(["auto", *(b.name for b in self.of(stage))])
            raise BackendUnavailable(f"unknown {stage} backend {name!r}", hint=f"Use one of: {known}.",
                                     stage=stage, backend=name) from None

    def names(self, stage: str) -> list[str]:
        return [b.name for b in self.of(stage)]

    def availability(self, env: ComputeEnv | None) -> dict[str, dict[str, Availability]]:
        """stage -> backend -> availability, for every registered backend."""
        return {stage: {b.name: b.availability(env) for b in self.of(stage)} for stage in STAGES
                if stage in self.backends}

    def report(self, env: ComputeEnv | None) -> dict[str, dict[str, dict[str, Any]]]:
        """:meth:`availability` as plain data with each backend's summary and needs (for ``welcome``)."""
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for stage in STAGES:
            if stage not in self.backends:
                continue
            out[stage] = {}
            for b in self.of(stage):
                out[stage][b.name] = {**b.availability(env).as_dict(), "summary": b.summary, "needs": list(b.needs)}
        return out

    def choose(self, stage: str, requested: str = "auto", env: ComputeEnv | None = None,
               facts: Iterable[str] = ()) -> Backend:
        """The backend a job runs for ``stage``: ``requested`` by name, or the best available for "auto".

        ``facts`` says what the input offers (e.g. {"cutout"}); a backend that needs a fact the input
        lacks is skipped by "auto" and refused by name.

        Raises:
            BackendUnavailable: unknown name, a named backend that cannot run, or nothing available.
        """
        have = set(facts)
        if requested != "auto":
            backend = self.get(stage, requested)
            lacking = [f for f in backend.needs if f not in have]
            if lacking:
                raise BackendUnavailable(f"the {requested} {stage} backend needs {_FACTS.get(lacking[0], lacking[0])}",
                                         hint="Choose 'auto' or another backend.", stage=stage, backend=requested)
            avail = backend.availability(env)
            if not avail:
                raise BackendUnavailable(f"the {requested} {stage} backend cannot run here: {avail.reason}",
                                         stage=stage, backend=requested)
            return backend
        reasons = []
        for backend in self.of(stage):
            if any(f not in have for f in backend.needs):
                continue
            if backend.auto_device == "cuda" and not (env is not None and env.is_cuda):
                reasons.append(f"{backend.name}: chosen automatically only on a CUDA device")
                continue
            avail = backend.availability(env)
            if avail:
                return backend
            reasons.append(f"{backend.name}: {avail.reason}")
        raise BackendUnavailable(f"no {stage} backend can run here" + (f" ({'; '.join(reasons)})" if reasons else ""),
                                 stage=stage, backend="auto")

    def build(self, stage: str, requested: str = "auto", *, env: ComputeEnv, cache: ModelCache | None = None,
              facts: Iterable[str] = (), **options: Any) -> Any:
        """Choose (:meth:`choose`) and build the backend with ``env`` and ``options``; cached backends come
        from ``cache`` (default: the process cache) under their (backend, device, dtype, options) key."""
        backend = self.choose(stage, requested, env, facts)
        return self.build_backend(backend, env=env, cache=cache, **options)

    def build_backend(self, backend: Backend, *, env: ComputeEnv, cache: ModelCache | None = None,
                      **options: Any) -> Any:
        def load() -> Any:
            return _call(backend.build, env, **options)

        if not backend.cached:
            return load()
        from .cache import process_cache

        return (cache or process_cache()).get(backend.cache_key(env, options), load)

    def is_ready(self, stage: str, env: ComputeEnv | None, facts: Iterable[str] = ()) -> Availability:
        """Whether "auto" finds a backend for ``stage`` (for job kinds: can this kind run here?)."""
        try:
            self.choose(stage, "auto", env, facts)
        except BackendUnavailable as exc:
            return Availability(False, exc.message)
        return Availability(True)


_FACTS = {"cutout": "a photo whose background is already removed (PNG with transparency)"}


def _module_present(name: str) -> bool:
    """Whether ``name`` is importable, without importing it (mediapipe takes ~1 s, rembg up to 30 s)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def resolve(path: str) -> Callable[..., Any]:
    """The callable named by ``"package.module:attr.attr"``."""
    module, _, attr = path.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _call(path: str, env: ComputeEnv | None, **options: Any) -> Any:
    """Call the function at ``path`` with ``env`` if its signature takes it, and ``options``."""
    fn = resolve(path)
    try:
        takes_env = "env" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        takes_env = False
    return fn(env=env, **options) if takes_env else fn(**options)
