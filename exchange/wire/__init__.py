"""Wire protocol v1 and job specs: msgpack + standard library only, relative imports only, because
the Blender add-on carries a copy of this package (build_addon.py)."""

from .jobs import JOB_SPECS, InputSpec, JobSpec, ParamSpec, job_spec, spec_from_dict, spec_to_dict
from .protocol import (
    PROTOCOL_VERSION,
    ErrorCode,
    JobState,
    Message,
    ProtocolError,
    error_frames,
    pack,
    unpack,
)

__all__ = [
    "JOB_SPECS", "PROTOCOL_VERSION", "ErrorCode", "InputSpec", "JobSpec", "JobState", "Message", "ParamSpec",
    "ProtocolError", "error_frames", "job_spec", "pack", "spec_from_dict", "spec_to_dict", "unpack",
]
