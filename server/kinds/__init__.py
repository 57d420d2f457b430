"""The registry of job kinds this server runs: the one place a new kind is added.

Each kind's parameters and inputs are declared in exchange/wire/jobs.py (shared with clients); its
implementation lives in a module here, with the registry stages it needs. A kind that cannot run here (its
pipeline not installed, a stage without a runnable backend) is listed under `unavailable_kinds` in
`welcome` with the reason, and a submit of it is refused with the error code `unavailable`.
"""

from __future__ import annotations

from .base import Encoded, JobContext, JobError, JobInput, JobKind
from .body import BodyKind
from .echo import EchoKind
from .generate import GenerateKind
from .reconstruct import ReconstructKind

KINDS: dict[str, JobKind] = {kind.name: kind for kind in (BodyKind(), ReconstructKind(), GenerateKind(), EchoKind())}

__all__ = ["KINDS", "Encoded", "JobContext", "JobError", "JobInput", "JobKind"]
