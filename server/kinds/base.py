"""The one small interface every job kind implements, and what a job sees while it runs.

A job kind is its `JobSpec` (from exchange/wire/jobs.py: parameters and inputs, validated by the server
before the job is queued), the stages it needs (so `welcome` advertises it only when the backend registry
has a runnable backend for each), plus `run(ctx)`, called on the single worker thread. It reports progress
through `ctx.progress` (which also raises `Cancelled` once the user cancelled), runs its stages with
`ctx.env` (the server's one compute environment: device, dtype, weights folders, threads) and keeps their
models in `ctx.models` (the one model cache), and returns a HumanAsset (the server fills its provenance,
encodes and validates it) or `Encoded` frames that are sent and stored as they are.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.machinery
import importlib.util
import logging
import sys
from dataclasses import dataclass, field
from typing import Any

from ...core.backends import REGISTRY
from ...core.cache import ModelCache
from ...core.compute import ComputeEnv
from ...core.errors import UnavailableError
from ...core.progress import Progress
from ...exchange.asset.schema import HumanAsset
from ...exchange.wire.jobs import JobSpec
from ...exchange.wire.protocol import ErrorCode


class JobError(Exception):
    """A job failure with a stable code (the protocol reports `code`, `message` and `detail`).

    Pipelines may raise their own exceptions instead: any exception with a string `code`
    attribute is reported the same way."""

    def __init__(self, code: str, message: str, detail: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = str(code)
        self.message = message
        self.detail = detail or {}


@dataclass(frozen=True)
class Encoded:
    """A result that is already asset frames (validated elsewhere): sent and stored without re-encoding."""

    frames: list[Any]


@dataclass
class JobInput:
    """One input of a submit: raw `frames` (zero-copy views of the received message) and, for an
    asset input, the `asset` decoded (and validated) from them."""

    name: str
    kind: str
    frames: list[Any]
    asset: HumanAsset | None = None
    filename: str | None = None

    @property
    def data(self) -> memoryview:
        """A bytes input's content, uncopied."""
        return memoryview(self.frames[0]).cast("B")

    @property
    def nbytes(self) -> int:
        return sum(memoryview(f).nbytes for f in self.frames)


@dataclass
class JobContext:
    job_id: str
    kind: str
    params: dict[str, Any]
    inputs: dict[str, JobInput]
    progress: Progress
    models: ModelCache
    log: logging.Logger
    env: ComputeEnv = field(default_factory=ComputeEnv)
    _hash: str | None = field(default=None, repr=False)

    def input(self, name: str) -> JobInput | None:
        return self.inputs.get(name)

    def input_hash(self) -> str:
        """sha256 (hex) of the input bytes: every frame of every input, inputs in name order; "" if none.
        Computed on demand because it costs ~1 s per GB and not every result needs it."""
        if self._hash is None:
            if not self.inputs:
                self._hash = ""
            else:
                digest = hashlib.sha256()
                for name in sorted(self.inputs):
                    for frame in self.inputs[name].frames:
                        digest.update(frame)
                self._hash = digest.hexdigest()
        return self._hash


class JobKind:
    """Base class of job kinds: subclasses set `spec` and implement `run`."""

    spec: JobSpec
    pipeline: str | None = None
    """The core module the kind runs (checked for presence without importing it)."""
    stages: tuple[str, ...] = ()
    """Registry stages it needs a runnable backend for (:mod:`strata.core.backends`)."""

    @property
    def name(self) -> str:
        return self.spec.kind

    def unavailable(self, env: ComputeEnv | None = None, *, stages: bool = True) -> str | None:
        """Why this kind cannot run under ``env`` (a missing module, a stage without a runnable backend), or
        None. Cheap: no imports (``env`` None: the device is not known yet, judge by packages and files).
        ``stages=False`` checks the pipeline module only."""
        if self.pipeline is not None and not module_exists(self.pipeline):
            return f"not installed: {self.pipeline}"
        for stage in self.stages if stages else ():
            ready = REGISTRY.is_ready(stage, env)
            if not ready:
                return ready.reason
        return None

    def run(self, ctx: JobContext) -> HumanAsset | Encoded:
        raise NotImplementedError


def module_exists(dotted: str) -> bool:
    """Whether `dotted` can be imported, found on the path WITHOUT importing it or its packages
    (which may pull in torch for seconds); only ancestors already imported are used."""
    if dotted in sys.modules:
        return True
    parts = dotted.split(".")
    for i in range(len(parts) - 1, 0, -1):
        parent = sys.modules.get(".".join(parts[:i]))
        if parent is not None:
            path = getattr(parent, "__path__", None)
            break
    else:
        i, spec = 1, importlib.util.find_spec(parts[0])
        if spec is None:
            return False
        path = spec.submodule_search_locations
    for j in range(i, len(parts)):
        if path is None:
            return False
        spec = importlib.machinery.PathFinder.find_spec(".".join(parts[: j + 1]), list(path))
        if spec is None:
            return False
        path = spec.submodule_search_locations
    return True


def require(dotted: str, kind: str) -> Any:
    """Import a pipeline module inside a job; its absence is a clean `unavailable` job error."""
    try:
        return importlib.import_module(dotted)
    except ModuleNotFoundError as exc:
        raise JobError(ErrorCode.UNAVAILABLE,
                       f"the {kind!r} job needs {dotted}, which is not installed on this server "
                       f"({exc.name} is missing)", {"module": dotted, "missing": exc.name or ""}) from None


def job_rig(ctx: JobContext, kind: str) -> tuple[str, str]:
    """``(body model, rig)`` of a job's ``body_model`` and ``rig`` params; a rig the model lacks (an anny rig
    on an SMPL-X body) is a clean `invalid_params` error."""
    body = require("strata.core.body", kind)
    model = str(ctx.params.get("body_model", "anny"))
    try:
        return model, body.rig_for(model, str(ctx.params.get("rig", "anny")))
    except ValueError as exc:
        raise JobError(ErrorCode.INVALID_PARAMS, f"{kind}.rig: {exc}", {"param": "rig"}) from None


def load_body_model(ctx: JobContext, model: str, rig: str, kind: str) -> Any:
    """The body model for a job, from the server's model cache (loaded with a progress line the first time);
    a model that cannot load here is a clean `unavailable` job error."""
    body = require("strata.core.body", kind)
    gender = str(ctx.params.get("smplx_gender", "neutral"))
    try:
        return body.watched_body_model(model, rig, env=ctx.env, cache=ctx.models, progress=ctx.progress,
                                       stage="load_model", gender=gender,
                                       announce=f"loading the {model} body model ({rig} rig, {ctx.env.device})")
    except UnavailableError as exc:
        raise JobError(ErrorCode.UNAVAILABLE, str(exc), {"model": model, "rig": rig}) from exc
